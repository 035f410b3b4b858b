package kit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/skydm/skydm/views"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// asset is one static file, held in memory with a content version.
type asset struct {
	body    []byte
	version string // first 12 hex digits of its SHA-256
	ctype   string
	enc     encoded // compressed copies, for compressible types
}

// Assets are the static files, read once at start.
type Assets struct {
	files map[string]asset // by name, e.g. "app.css"
}

// LoadAssets reads every regular file at the top of files.
func LoadAssets(files fs.FS) (*Assets, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, err
	}
	a := &Assets{files: map[string]asset{}}
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
		f := asset{body: b, version: hex.EncodeToString(sum[:6]), ctype: ctype}
		if compressible(ctype) {
			f.enc = encode(f.version, b)
		}
		a.files[e.Name()] = f
	}
	for _, need := range []string{"app.css", "app.js", "favicon.svg"} {
		if _, ok := a.files[need]; !ok {
			return nil, fmt.Errorf("missing %s", need)
		}
	}
	return a, nil
}

// URL returns /static/name?v=version.
func (a *Assets) URL(name string) string {
	return "/static/" + name + "?v=" + a.files[name].version
}

// Has reports whether there is a static file called name.
func (a *Assets) Has(name string) bool {
	_, ok := a.files[name]
	return ok
}

// Layout returns the URLs of the files every page links.
func (a *Assets) Layout() views.Assets {
	return views.Assets{CSS: a.URL("app.css"), JS: a.URL("app.js"), Icon: a.URL("favicon.svg")}
}

// Serve writes the file called name: with ?v= of its current version it
// may be cached for a year, otherwise for five minutes (ETag
// revalidation). Text files go compressed (brotli or gzip, made once at
// start) to a request that accepts it, with Vary: Accept-Encoding and an
// ETag of their own per encoding. It returns false, writing nothing, when
// there is no such file.
func (a *Assets) Serve(w http.ResponseWriter, r *http.Request, name string) bool {
	f, ok := a.files[name]
	if !ok || strings.Contains(name, "/") {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	body, etag := f.body, f.version
	if compressible(f.ctype) {
		addVary(h, "Accept-Encoding")
		var coding string
		if body, coding = f.enc.pick(r, f.body); coding != "" {
			h.Set("Content-Encoding", coding)
			etag += "-" + coding
		}
	}
	h.Set("ETag", `"`+etag+`"`)
	if r.URL.Query().Get("v") == f.version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=300")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	return true
}

// Version is the content version of the file called name ("" when none).
func (a *Assets) Version(name string) string { return a.files[name].version }
