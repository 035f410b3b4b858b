package metrics

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestRequestLabels: the method label is the NSID of an XRPC path, a fixed
// name for the few well-known and OAuth paths, else "other"; no label ever
// carries a DID, a handle, a query or a URL.
func TestRequestLabels(t *testing.T) {
	for _, c := range []struct {
		url, host, method string
	}{
		{"https://morel.us-east.host.bsky.network/xrpc/chat.bsky.convo.sendMessage", "morel.us-east.host.bsky.network", "chat.bsky.convo.sendMessage"},
		{"http://127.0.0.1:2583/xrpc/chat.bsky.convo.getLog?cursor=abc", "127.0.0.1:2583", "chat.bsky.convo.getLog"},
		{"https://PDS.Example.COM/xrpc/com.atproto.repo.getRecord?repo=did:plc:abc", "pds.example.com", "com.atproto.repo.getRecord"},
		{"https://pds.example.com/xrpc/not-an-nsid", "pds.example.com", "other"},
		{"https://pds.example.com/xrpc/chat.bsky.convo.sendMessage/extra", "pds.example.com", "other"},
		{"https://pds.example.com/xrpc/", "pds.example.com", "other"},
		{"https://pds.example.com/.well-known/oauth-protected-resource", "pds.example.com", "oauth-protected-resource"},
		{"https://bsky.social/.well-known/oauth-authorization-server", "bsky.social", "oauth-authorization-server"},
		{"https://bsky.social/oauth/par", "bsky.social", "oauth.par"},
		{"https://bsky.social/oauth/token", "bsky.social", "oauth.token"},
		{"https://bsky.social/oauth/revoke", "bsky.social", "oauth.revoke"},
		{"https://plc.directory/did:plc:ewvi7nxzyoun6zhxrhs64oiz", "plc.directory", "plc"},
		{"https://plc.directory/did:plc:ewvi7nxzyoun6zhxrhs64oiz/log/audit", "plc.directory", "plc"},
		// Handle and did:web resolution name the account in the host: both go to "other".
		{"https://alice.example.com/.well-known/atproto-did", "other", "atproto-did"},
		{"https://alice.example.com/.well-known/did.json", "other", "did.json"},
		{"https://pds.example.com/some/page?x=did:plc:abc", "pds.example.com", "other"},
		{"https://pds.example.com/", "pds.example.com", "other"},
	} {
		u, err := url.Parse(c.url)
		if err != nil {
			t.Fatal(err)
		}
		l := newLabeler()
		if host, method := l.request(u); host != c.host || method != c.method {
			t.Errorf("%s: host %q method %q, want %q %q", c.url, host, method, c.host, c.method)
		}
	}
}

// TestRequestLabelsAreBounded: however many hosts and NSIDs a hostile
// network makes skydm meet (redirects, sign-in attempts naming made-up
// PDSes), the label sets stop growing at their caps and the rest is
// "other".
func TestRequestLabelsAreBounded(t *testing.T) {
	l := newLabeler()
	hosts, methods := map[string]bool{}, map[string]bool{}
	for i := range 10 * maxLabelValues {
		u, _ := url.Parse(fmt.Sprintf("https://pds%d.example.com/xrpc/com.example.m%d", i, i))
		h, m := l.request(u)
		hosts[h], methods[m] = true, true
	}
	if len(hosts) != maxLabelValues+1 || !hosts["other"] {
		t.Errorf("%d host values, want %d and other", len(hosts), maxLabelValues)
	}
	if len(methods) != maxLabelValues+1 || !methods["other"] {
		t.Errorf("%d method values, want %d and other", len(methods), maxLabelValues)
	}
	// A host seen before the cap keeps its own label after it.
	if h, _ := l.request(&url.URL{Scheme: "https", Host: "pds0.example.com", Path: "/"}); h != "pds0.example.com" {
		t.Errorf("known host became %q", h)
	}
}

func TestStatusLabel(t *testing.T) {
	for code, want := range map[int]string{200: "200", 429: "429", 502: "502", 99: "other", 600: "other", 1234: "other"} {
		if got := statusLabel(code); got != want {
			t.Errorf("statusLabel(%d) = %q, want %q", code, got, want)
		}
	}
	if strings.Contains(statusError, "0") {
		t.Errorf("statusError %q looks like a code", statusError)
	}
}
