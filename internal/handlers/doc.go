// Package handlers holds skydm's HTTP layer: every route (routes.go), the
// middleware chains, the page handlers and the one error path (Error).
package handlers
