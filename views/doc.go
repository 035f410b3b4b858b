// Package views holds skydm's pages as templ components and the view
// models they render: the layout, one .templ file per page or feature,
// and the shared components (names, notices, messages).
//
// Every dynamic value reaches the page through templ's escaping; nothing
// here uses templ.Raw on data. Edit the .templ files and run
// `make generate` (go tool templ generate); the *_templ.go files are
// generated and committed.
package views
