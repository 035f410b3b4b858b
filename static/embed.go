// Package static holds the stylesheet, the small script and the icon that
// every page links to, embedded into the binary.
package static

import (
	"embed"
	"io/fs"
)

//go:embed app.css app.js favicon.svg dm.css dm.js
var files embed.FS

// FS returns the embedded static files, named as they are served under
// /static/ (app.css, app.js, favicon.svg, dm.css, dm.js). It never fails.
func FS() fs.FS { return files }
