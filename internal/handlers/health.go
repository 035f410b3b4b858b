package handlers

import (
	"net/http"

	"github.com/skydm/skydm/internal/handlers/kit"
)

// healthz answers "ok" when the app can serve (Config.Health), else 503.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.health != nil {
		if err := s.health(r.Context()); err != nil {
			s.kit.Log.ErrorContext(r.Context(), "health check failed", "err", err, "request_id", kit.RequestID(r.Context()))
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("unavailable\n"))
			return
		}
	}
	w.Write([]byte("ok\n"))
}
