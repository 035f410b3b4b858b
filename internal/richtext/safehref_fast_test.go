package richtext

import "testing"

// parsedSafeHref is SafeHref with every candidate parsed (no shortcut).
func parsedSafeHref(raw string) bool {
	alwaysParse = true
	defer func() { alwaysParse = false }()
	_, ok := SafeHref(raw)
	return ok
}

// TestSafeHrefShortcutAgreesWithParsing: the plainAuthority shortcut, which
// skips url.Parse for plain http(s) URLs, never changes SafeHref's answer,
// over hosts and paths chosen to sit on every edge of it (ports, empty and
// odd hosts, user-info, IPv6, escapes, quotes, spaces, non-ASCII).
func TestSafeHrefShortcutAgreesWithParsing(t *testing.T) {
	hosts := []string{"example.com", "cdn.bsky.app", "a", "1.2.3.4", "host:8080", "host:", ":80", "-x-.y", "...", "h:1:2", "h:80x", "user@h", "[::1]", "h_x", "h%41"}
	rests := []string{"", "/", "/p/3", "/img/avatar/plain/did:plc:x/bafk@jpeg", "?q=1", "#frag", "/a b", `/"q"`, "/<x>", "/a%zz", "/a%41", "?x=%", "/é"}
	n := 0
	for _, scheme := range []string{"https://", "http://", "HTTPS://"} {
		for _, h := range hosts {
			for _, r := range rests {
				raw := scheme + h + r
				_, got := SafeHref(raw)
				if want := parsedSafeHref(raw); got != want {
					t.Errorf("SafeHref(%q) = %v, parsing says %v", raw, got, want)
				}
				n++
			}
		}
	}
	t.Logf("%d URLs agree", n)
}
