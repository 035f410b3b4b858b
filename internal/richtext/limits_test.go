package richtext

import (
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/apperr"
)

func TestCheckLength(t *testing.T) {
	const family = "👨‍👩‍👧‍👦" // one grapheme, 25 bytes
	tests := []struct {
		name    string
		text    string
		wantErr string // "" = accepted
	}{
		{"short message is accepted", "hello", ""},
		{"1000 graphemes is accepted", strings.Repeat("a", 1000), ""},
		{"1001 graphemes is refused with the count", strings.Repeat("a", 1001), "Your message is 1,001 characters long; the limit is 1,000."},
		{"1204 combining graphemes counted as characters", strings.Repeat("e\u0301", 1204), "Your message is 1,204 characters long; the limit is 1,000."},
		{"400 family emoji (10000 bytes) is accepted", strings.Repeat(family, 400), ""},
		{"1000 family emoji is refused by the byte limit", strings.Repeat(family, 1000), "Your message is too long: it takes 25,000 bytes and the limit is 10,000"},
		{"10000 bytes is accepted", strings.Repeat(family, 399) + strings.Repeat("a", 25), ""},
		{"10001 bytes is refused", strings.Repeat(family, 400) + "a", "it takes 10,001 bytes"},
		{"blank message is refused", " \n\t", "Write a message before sending."},
		{"invalid UTF-8 is refused", "hi \xff", "cannot be sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckLength(tt.text)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckLength = %v, want nil", err)
				}
				return
			}
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid {
				t.Fatalf("CheckLength = %v, want *apperr.Error with code Invalid", err)
			}
			if !strings.Contains(apperr.MessageOf(err), tt.wantErr) {
				t.Fatalf("message %q does not contain %q", apperr.MessageOf(err), tt.wantErr)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1204: "-1,204"} {
		if got := thousands(n); got != want {
			t.Fatalf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
