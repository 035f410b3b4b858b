// Package static holds the stylesheets, the small scripts and the icon that
// every page links to, embedded into the binary.
package static

import (
	"embed"
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing/fstest"

	"github.com/tdewolff/minify/v2"
	"github.com/tdewolff/minify/v2/css"
	"github.com/tdewolff/minify/v2/js"
)

//go:embed app.css app.js favicon.svg dm.css dm.js group.css group.js manage.css manage.js
var files embed.FS

// served is files as browsers get them, built once.
var served = build()

// FS returns the static files as they are served under /static/ (app.css,
// app.js, favicon.svg, dm.css, dm.js, group.css, group.js, manage.css,
// manage.js): the embedded CSS and JS minified (Minify), so the reasons
// written in them and their layout cost nothing on the wire. It never fails.
func FS() fs.FS { return served }

func build() fs.FS {
	out := fstest.MapFS{}
	entries, _ := fs.ReadDir(files, ".") // embedded: cannot fail
	for _, e := range entries {
		b, _ := fs.ReadFile(files, e.Name())
		if m, err := Minify(e.Name(), b); err == nil {
			b = m
		} else {
			b = Strip(e.Name(), b) // TestEveryFileMinifies keeps this path unused
		}
		out[e.Name()] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	return out
}

// minifier is github.com/tdewolff/minify for CSS and JS: it keeps every
// global name (the scripts share window.skydmLive), and renames and
// compacts only what no other file can see.
var minifier = func() *minify.M {
	m := minify.New()
	m.AddFunc("text/css", css.Minify)
	m.AddFunc("text/javascript", js.Minify)
	return m
}()

// Minify returns a CSS or JS file minified; other files as they are.
func Minify(name string, b []byte) ([]byte, error) {
	switch path.Ext(name) {
	case ".css":
		return minifier.Bytes("text/css", b)
	case ".js":
		return minifier.Bytes("text/javascript", b)
	}
	return b, nil
}

var cssComment = regexp.MustCompile(`(?s)/\*.*?\*/`)

// Strip returns a static file's body without its comments: /* … */ blocks
// in CSS, and whole-line // comments in JS (a line whose first non-blank
// characters are //, which in these scripts is never inside a string: they
// have no template literals). Blank lines go too; nothing else changes, so
// every rule and statement is byte for byte what the source says. Other
// files are returned as they are.
func Strip(name string, b []byte) []byte {
	var s string
	switch path.Ext(name) {
	case ".css":
		s = cssComment.ReplaceAllString(string(b), "")
	case ".js":
		s = string(b)
	default:
		return b
	}
	var out strings.Builder
	for line := range strings.Lines(s) {
		t := strings.TrimSpace(line)
		if t == "" || (path.Ext(name) == ".js" && strings.HasPrefix(t, "//")) {
			continue
		}
		out.WriteString(line)
	}
	return []byte(out.String())
}
