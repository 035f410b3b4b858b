package static

import (
	"io/fs"
	"strings"
	"testing"
)

// TestServedFilesKeepEveryRuleAndDropComments: what is served has no
// comment left, and every non-comment line of the source is still there,
// in order.
func TestServedFilesKeepEveryRuleAndDropComments(t *testing.T) {
	for _, name := range []string{"app.css", "dm.css", "app.js", "dm.js", "group.css", "group.js", "manage.css", "manage.js"} {
		src, _ := fs.ReadFile(files, name)
		got, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) >= len(src) {
			t.Errorf("%s: served %d B, source %d B: nothing stripped", name, len(got), len(src))
		}
		if strings.Contains(string(got), "/*") && strings.HasSuffix(name, ".css") {
			t.Errorf("%s: a CSS comment is served", name)
		}
		rest, inComment := string(got), false
		for line := range strings.Lines(string(src)) {
			tl := strings.TrimSpace(line)
			if strings.HasPrefix(tl, "/*") {
				inComment = true
			}
			if inComment || tl == "" || strings.HasPrefix(tl, "//") {
				inComment = inComment && !strings.Contains(tl, "*/")
				continue // comment lines (CSS comments start their lines here)
			}
			i := strings.Index(rest, line)
			if i < 0 {
				t.Fatalf("%s: source line %q is not served (in order)", name, line)
			}
			rest = rest[i+len(line):]
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
