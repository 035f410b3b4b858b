package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/views"
)

// asset is one static file, held in memory with a content version.
type asset struct {
	body    []byte
	version string // first 12 hex digits of its SHA-256
	ctype   string
}

// assets are the static files, read once at start.
type assets struct {
	files map[string]asset // by name, e.g. "app.css"
}

// loadAssets reads every regular file at the top of files.
func loadAssets(files fs.FS) (*assets, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	a := &assets{files: map[string]asset{}}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := fs.ReadFile(files, e.Name())
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		a.files[e.Name()] = asset{body: b, version: hex.EncodeToString(sum[:6]), ctype: ctype}
	}
	for _, need := range []string{"app.css", "app.js", "favicon.svg"} {
		if _, ok := a.files[need]; !ok {
			return nil, fmt.Errorf("missing %s", need)
		}
	}
	return a, nil
}

// url returns /static/name?v=version.
func (a *assets) url(name string) string {
	return "/static/" + name + "?v=" + a.files[name].version
}

func (a *assets) urls() views.Assets {
	return views.Assets{CSS: a.url("app.css"), JS: a.url("app.js"), Icon: a.url("favicon.svg")}
}

// static serves /static/NAME. With ?v= of the current version it may be
// cached for a year; otherwise for five minutes (ETag revalidation).
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	f, ok := s.assets.files[name]
	if !ok || strings.Contains(name, "/") {
		s.Error(w, r, apperr.New(apperr.NotFound, "There is no file at this address."))
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", `"`+f.version+`"`)
	if r.URL.Query().Get("v") == f.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}

// favicon answers browsers that ask for /favicon.ico regardless of the
// <link rel=icon> (e.g. on the continue page) with the SVG icon.
func (s *Server) favicon(w http.ResponseWriter, r *http.Request) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/static/favicon.svg"
	r2.URL.RawQuery = "v=" + s.assets.files["favicon.svg"].version
	s.static(w, r2)
}
