package kit

import (
	"net/http"
	"strings"
	"time"
)

// returnCookie holds the local page to go back to after signing in.
const returnCookie = "return_to"

// returnTTL is how long SetReturnTo's page is remembered.
const returnTTL = 15 * time.Minute

// SetReturnTo remembers path, a local path such as "/join/abc1234", as the
// page to show after the next sign-in on this browser (TakeReturnTo); a
// path that is not local is ignored.
func SetReturnTo(w http.ResponseWriter, path string) {
	if !localPath(path) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: returnCookie, Value: path, Path: "/", MaxAge: int(returnTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// TakeReturnTo returns the page SetReturnTo remembered and forgets it, or
// fallback when there is none (or it is not a local path).
func TakeReturnTo(w http.ResponseWriter, r *http.Request, fallback string) string {
	c, err := r.Cookie(returnCookie)
	if err != nil {
		return fallback
	}
	http.SetCookie(w, &http.Cookie{Name: returnCookie, Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	if !localPath(c.Value) {
		return fallback
	}
	return c.Value
}

// localPath reports whether p is a path on this site: it starts with one
// "/" (not "//" or "/\", which browsers take for another host), at most
// 512 bytes of printable ASCII.
func localPath(p string) bool {
	if len(p) < 1 || len(p) > 512 || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f || p[i] == '\\' {
			return false
		}
	}
	return true
}
