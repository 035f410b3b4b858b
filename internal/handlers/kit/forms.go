package kit

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/skydm/skydm/internal/apperr"
)

// maxFormBytes caps the body of every small form post.
const maxFormBytes = 16 << 10

// ParseForm reads a small url-encoded form body (see ReadForm).
func ParseForm(w http.ResponseWriter, r *http.Request) error {
	return ReadForm(w, r, maxFormBytes, "The form could not be read (it may be too long). Please try again.")
}

// ReadForm reads a url-encoded form body of at most limit bytes, reading
// no further. A larger body is TooLarge (413), any other unreadable body
// Invalid (400); both carry msg. Every form parser of the app is this one.
func ReadForm(w http.ResponseWriter, r *http.Request, limit int64, msg string) error {
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if err := r.ParseForm(); err != nil {
		code := apperr.Invalid
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			code = apperr.TooLarge
		}
		return apperr.Wrap(err, code, msg)
	}
	return nil
}

// Redirect answers with 303 See Other to target, not to be cached.
func Redirect(w http.ResponseWriter, r *http.Request, target string) {
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// WantsJSON reports whether the request is a script's that wants JSON
// (Accept: application/json).
func WantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// WriteJSON writes v as a JSON answer with status, not to be cached; a
// value that cannot be encoded becomes a 500 with a generic error.
func WriteJSON(k *Kit, w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		k.Log.Error("encode JSON answer", "err", err)
		status, b = http.StatusInternalServerError, []byte(`{"error":"Something went wrong on our side."}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
