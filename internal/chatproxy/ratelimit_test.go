package chatproxy

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAtFromHeaders(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	date := time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header map[string]string
		want   time.Time
	}{
		{"no headers gives zero", nil, time.Time{}},
		{"retry-after seconds is relative to receipt", map[string]string{"Retry-After": "120"}, now.Add(2 * time.Minute)},
		{"retry-after zero is now", map[string]string{"Retry-After": "0"}, now},
		{"retry-after http date is absolute", map[string]string{"Retry-After": date.Format(http.TimeFormat)}, date},
		{"ratelimit-reset unix seconds is absolute", map[string]string{"RateLimit-Reset": "1772604000"}, time.Unix(1772604000, 0)},
		{"small ratelimit-reset is a delay", map[string]string{"RateLimit-Reset": "30"}, now.Add(30 * time.Second)},
		{"retry-after wins over ratelimit-reset", map[string]string{"Retry-After": "1", "RateLimit-Reset": "1772604000"}, now.Add(time.Second)},
		{"garbage retry-after falls back to ratelimit-reset", map[string]string{"Retry-After": "soon", "RateLimit-Reset": "1772604000"}, time.Unix(1772604000, 0)},
		{"negative values give zero", map[string]string{"Retry-After": "-5", "RateLimit-Reset": "-1"}, time.Time{}},
		{"absurd values give zero", map[string]string{"Retry-After": "99999999999", "RateLimit-Reset": "999999999999999"}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h.Set(k, v)
			}
			if tt.header == nil {
				h = nil
			}
			if got := retryAt(h, now); !got.Equal(tt.want) {
				t.Fatalf("retryAt = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"  Carol  ", "Carol"},
		{"Ca\nrol\t\x00x", "Ca rol x"},
		{"a\u2028b", "a b"},
	}
	for _, tt := range tests {
		if got := cleanName(tt.in); got != tt.want {
			t.Errorf("cleanName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
