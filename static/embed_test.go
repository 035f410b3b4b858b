package static

import (
	"io/fs"
	"strings"
	"testing"
)

// TestEveryFileMinifies: every CSS and JS file is served minified (no
// file falls back to Strip), smaller than its source, without comments.
func TestEveryFileMinifies(t *testing.T) {
	for _, name := range []string{"app.css", "dm.css", "app.js", "dm.js", "group.css", "group.js", "manage.css", "manage.js"} {
		src, _ := fs.ReadFile(files, name)
		want, err := Minify(name, src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: served is not the minified source", name)
		}
		if len(got) >= len(Strip(name, src)) {
			t.Errorf("%s: served %d B, no smaller than the source without comments", name, len(got))
		}
		if strings.Contains(string(got), "/*") || strings.Contains(string(got), "\n//") {
			t.Errorf("%s: a comment is served", name)
		}
	}
	if b, _ := fs.ReadFile(FS(), "favicon.svg"); len(b) == 0 {
		t.Error("favicon.svg not served")
	}
}

func TestStripJS(t *testing.T) {
	in := "// head\nvar a = 1; // kept: not a whole line\n\n  // indented\nvar b = \"//x\";\n"
	want := "var a = 1; // kept: not a whole line\nvar b = \"//x\";\n"
	if got := string(Strip("x.js", []byte(in))); got != want {
		t.Errorf("Strip = %q, want %q", got, want)
	}
}
