// Package kit is what every feature room of the HTTP layer shares: the
// request context (viewer, request id), the middleware (the per-request
// CSP nonce among it), page rendering, the deadlines, form reading and the
// one error path (Kit.Error). It imports no feature package.
package kit
