package kit

import (
	"net/http"
	"strings"

	"github.com/klauspost/compress/gzhttp"
	"github.com/klauspost/compress/gzip"
)

// Compress returns the middleware that compresses the app's own answers,
// HTML pages and JSON for the pages' scripts, with zstd or gzip (gzhttp;
// zstd first when both are accepted equally, as gzhttp prefers) when the
// request accepts it; every answer gets Vary: Accept-Encoding. Left as
// they are:
//
//   - the live stream (text/event-stream): never compressed, and an
//     EventSource request (Accept: text/event-stream) does not even pass
//     through gzhttp, so each event is flushed to the connection as it is
//     written and a held connection costs nothing here;
//   - static files: Assets.Serve sends copies compressed once at start
//     (with Content-Encoding set, gzhttp passes them through);
//   - an answer to a request another site started (Sec-Fetch-Site
//     cross-site or same-site): BREACH needs an attacker to make the
//     browser fetch a page many times, each with a guess reflected next to
//     a secret, and to watch the compressed sizes. Pages carry no secret
//     repeated across answers (the send form's token and the CSP nonce are
//     new in every answer; forms are guarded by CrossOriginProtection, not
//     by the token), but message text is private, so pages another site
//     asks for go uncompressed: the browser marks those requests, and only
//     the attacker's requests lose compression.
func Compress() (func(http.Handler) http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(gzhttp.ContentTypes([]string{"text/html", "application/json"}),
		gzhttp.CompressionLevel(gzip.BestCompression)) // 8% smaller than the default for a page, as fast on these sizes
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		compressed := wrap(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
				next.ServeHTTP(w, r)
			case crossSite(r): // identity is right for any client: no Vary: Sec-Fetch-Site needed
				addVary(w.Header(), "Accept-Encoding")
				next.ServeHTTP(w, r)
			default:
				compressed(w, r)
			}
		})
	}, nil
}

// crossSite reports whether the browser says another site (or another
// subdomain) started the request. Browsers without Sec-Fetch-Site (and
// clients that are not browsers) are taken at their word.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return true
	}
	return false
}
