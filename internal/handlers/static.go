package handlers

import (
	"net/http"
	"strings"

	"github.com/skydm/skydm/internal/apperr"
)

// static serves /static/NAME. With ?v= of the current version it may be
// cached for a year; otherwise for five minutes (ETag revalidation).
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	if !s.kit.Assets.Serve(w, r, strings.TrimPrefix(r.URL.Path, "/static/")) {
		s.kit.Error(w, r, apperr.New(apperr.NotFound, "There is no file at this address."))
	}
}

// favicon answers browsers that ask for /favicon.ico regardless of the
// <link rel=icon> (e.g. on the continue page) with the SVG icon.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/static/favicon.svg"
	r2.URL.RawQuery = "v=" + s.kit.Assets.Version("favicon.svg")
	s.static(w, r2)
}
