package kit

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
)

// encoded is one static file's compressed copies, made once.
type encoded struct {
	br, gz []byte // nil when compressing would not make the file smaller
}

// compressible reports whether a static file of this Content-Type is text
// worth compressing (the icon is SVG: text too).
func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.HasPrefix(ctype, "image/svg+xml") ||
		strings.Contains(ctype, "javascript") || strings.Contains(ctype, "json")
}

// encodedCache holds every body compressed so far in this process, by its
// version (SHA-256 prefix): the files are embedded and immutable, and tests
// start many servers, so each body is compressed once at the highest level.
var encodedCache sync.Map // version → encoded

// encode returns body compressed with brotli (quality 11) and gzip (best),
// each only when it is smaller than body.
func encode(version string, body []byte) encoded {
	if e, ok := encodedCache.Load(version); ok {
		return e.(encoded)
	}
	var e encoded
	var br bytes.Buffer
	bw := brotli.NewWriterLevel(&br, brotli.BestCompression)
	bw.Write(body) // a bytes.Buffer cannot fail
	bw.Close()
	if br.Len() < len(body) {
		e.br = br.Bytes()
	}
	var gz bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // a valid level
	gw.Write(body)
	gw.Close()
	if gz.Len() < len(body) {
		e.gz = gz.Bytes()
	}
	encodedCache.Store(version, e)
	return e
}

// pick returns the body to send for a request and its Content-Encoding
// ("" for identity): brotli, then gzip, whichever the request accepts
// (Accept-Encoding, q > 0) and exists.
func (e encoded) pick(r *http.Request, identity []byte) ([]byte, string) {
	accept := r.Header.Values("Accept-Encoding")
	switch {
	case e.br != nil && accepts(accept, "br"):
		return e.br, "br"
	case e.gz != nil && accepts(accept, "gzip"):
		return e.gz, "gzip"
	}
	return identity, ""
}

// accepts reports whether the Accept-Encoding values list coding with a
// quality above zero (RFC 9110 §12.5.3; "*" is not taken as a yes, as
// gzhttp does not).
func accepts(values []string, coding string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(part, ";")
			if !strings.EqualFold(strings.TrimSpace(name), coding) {
				continue
			}
			q := 1.0
			for p := range strings.SplitSeq(params, ";") {
				if k, val, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
						q = f
					}
				}
			}
			return q > 0
		}
	}
	return false
}

// addVary adds field to the Vary header unless it is listed already.
func addVary(h http.Header, field string) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), field) {
				return
			}
		}
	}
	h.Add("Vary", field)
}
