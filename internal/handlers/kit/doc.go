// Package kit is what every feature room of the HTTP layer shares: the
// request context (viewer, CSP nonce, request id), the middleware, page
// rendering, the deadlines, form reading and the one error path (Error).
// It imports no feature package.
package kit
