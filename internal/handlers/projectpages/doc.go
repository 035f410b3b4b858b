// Package projectpages is the projects room: the project and
// change-request pages and the Retry of an undelivered DM, with their view
// models (named so as not to clash with internal/projects, the service
// they show).
package projectpages
