package handlers

import (
	"fmt"
	"net/http"

	"github.com/skydm/skydm/internal/apperr"
)

// routes returns every route of the app behind its middleware.
//
// Outermost first, for every request:
//
//	logRequests    request id, one slog line per request (path only: never the query, which carries OAuth codes)
//	secureHeaders  CSP with a fresh nonce, nosniff, referrer, COOP, permissions, HSTS in production
//	recoverPanic   a panic becomes the 500 error page (with the nonce and headers above), logged with its stack
//	crossOrigin    http.CrossOriginProtection: a cross-site POST/PUT/DELETE/PATCH gets 403 before any handler runs
//	mux            the routes below; pages also run loadSession (the signed-in accounts into the context)
//
// GET never changes state, except GET /oauth/callback, which is the OAuth
// redirect from the user's server and is bound to this browser by the state
// cookie StartLogin set (and PKCE).
func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	page := s.loadSession // chain for everything that renders HTML

	mux.Handle("GET /{$}", page(http.HandlerFunc(s.dmHome))) // the inbox, or the start page (dm_inbox.go)
	mux.Handle("GET /signin", page(http.HandlerFunc(s.signIn)))
	mux.Handle("GET /account", page(http.HandlerFunc(s.account)))
	mux.Handle("POST /account/switch", page(http.HandlerFunc(s.switchAccount)))

	mux.Handle("POST /oauth/login", page(http.HandlerFunc(s.login)))
	mux.Handle("GET /oauth/callback", page(http.HandlerFunc(s.callback)))
	mux.Handle("POST /oauth/logout", page(http.HandlerFunc(s.logout)))
	mux.Handle("GET /oauth-client-metadata.json", http.HandlerFunc(s.clientMetadata))
	mux.Handle("GET /oauth/jwks.json", http.HandlerFunc(s.jwks))

	s.projectRoutes(mux, page) // projects.go
	s.dmRoutes(mux, page)      // dm.go

	mux.Handle("GET /static/", http.HandlerFunc(s.static))
	mux.Handle("GET /favicon.ico", http.HandlerFunc(s.favicon))
	mux.Handle("GET /healthz", http.HandlerFunc(s.healthz))
	mux.Handle("/", page(http.HandlerFunc(s.notFound)))

	cop := http.NewCrossOriginProtection()
	if err := cop.AddTrustedOrigin(mustOrigin(s.publicURL)); err != nil {
		return nil, fmt.Errorf("handlers: trusted origin: %w", err)
	}
	cop.SetDenyHandler(http.HandlerFunc(s.crossOriginDenied))

	return s.logRequests(s.secureHeaders(s.recoverPanic(cop.Handler(mux)))), nil
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.Error(w, r, apperr.New(apperr.NotFound, "There is no page at this address."))
}

func (s *Server) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	s.log.WarnContext(r.Context(), "cross-origin request refused",
		"method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"),
		"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "request_id", requestID(r.Context()))
	s.Error(w, r, apperr.New(apperr.Forbidden, "This form was sent from another site, so it was refused. Please try again from skydm itself."))
}

func mustOrigin(raw string) string {
	o, _ := origin(raw) // checked in New
	return o
}
