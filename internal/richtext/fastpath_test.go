package richtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Every bidi control's UTF-8 encoding starts with one of the two bytes
// StripBidi looks for before it decodes anything.
func TestStripBidiFastPathCoversEveryBidiControl(t *testing.T) {
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !isBidiControl(r) {
			continue
		}
		if b := string(r)[0]; b != 0xE2 && b != 0xD8 {
			t.Fatalf("U+%04X starts with 0x%X, which StripBidi's fast path does not look for", r, b)
		}
		if got := StripBidi("a" + string(r) + "b"); got != "ab" {
			t.Fatalf("StripBidi(a U+%04X b) = %q", r, got)
		}
	}
}

// urlCharsByRune is the rule urlChars implements, decoding every rune.
func urlCharsByRune(s string) bool {
	for _, r := range s {
		if r <= ' ' || unsafeRune(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func TestURLCharsAgreesWithDecodingEveryRune(t *testing.T) {
	for _, s := range []string{"", "https://example.com/a?b#c", "https://exa mple.com", "https://x\x7f", "https://x\x00",
		"https://é.example/ü", "https://x/\u202e", "https://x/\u200b", "https://x/\ufeff", "https://x/\xff", "https://x/\ufffd",
		"https://x/\u0085", "https://x/\u00a0", "\t", strings.Repeat("é", 10)} {
		if got, want := urlChars(s), urlCharsByRune(s); got != want {
			t.Errorf("urlChars(%q) = %v, want %v", s, got, want)
		}
	}
}

func FuzzURLChars(f *testing.F) {
	f.Add("https://example.com/\u202e")
	f.Add("https://x/\xe2\x80")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := urlChars(s), urlCharsByRune(s); got != want {
			t.Fatalf("urlChars(%q) = %v, want %v", s, got, want)
		}
		want := s // StripBidi's rule, decoding every rune
		if strings.IndexFunc(s, isBidiControl) >= 0 {
			want = strings.Map(func(r rune) rune {
				if isBidiControl(r) {
					return -1
				}
				return r
			}, s)
		}
		if got := StripBidi(s); got != want {
			t.Fatalf("StripBidi(%q) = %q, want %q", s, got, want)
		}
	})
}
