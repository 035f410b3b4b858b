// Package signin is the sign-in room: the sign-in and accounts pages, the
// OAuth login, callback and logout handlers, and the client documents.
package signin
