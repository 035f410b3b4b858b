package projectpages

import (
	"net/http/httptest"
	"testing"
)

func TestRetryRedirectsOnlyToOurOwnPages(t *testing.T) {
	for in, want := range map[string]string{
		"/change-requests/did:plc:alice000000000000000000000/3kabcdefghi22": "/change-requests/did:plc:alice000000000000000000000/3kabcdefghi22",
		"/change-requests?tab=mine":                                         "/change-requests?tab=mine",
		"https://evil.example/":                                             "/change-requests",
		"//evil.example/change-requests/x":                                  "/change-requests",
		"/change-requests/not-a-did/3kabcd":                                 "/change-requests",
		"/change-requests/did:plc:x/..":                                     "/change-requests",
		"":                                                                  "/change-requests",
	} {
		if got := safeBack(in); got != want {
			t.Errorf("safeBack(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPathDIDsAreReadAsSent(t *testing.T) {
	r := httptest.NewRequest("GET", "/projects/did:web:localhost%3A2590/3kabcdefghi22", nil)
	did, rkey, ok := didAndRkey(r, 2)
	if !ok || did != "did:web:localhost%3A2590" || rkey != "3kabcdefghi22" {
		t.Errorf("didAndRkey = %q %q %v", did, rkey, ok)
	}
}
