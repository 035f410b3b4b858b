package safehttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingListener is a loopback listener that counts accepted connections.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), accepted
}

func TestProductionRefusesInternalTargets(t *testing.T) {
	addr, accepted := countingListener(t)
	_, port, _ := net.SplitHostPort(addr)
	tests := []struct {
		name   string
		url    string
		opts   Options
		reason string
	}{
		{"plain http refused before dialing", "http://" + addr + "/", Options{}, "plain http"},
		{"loopback refused at dial", "https://" + addr + "/", Options{}, "loopback"},
		{"loopback via hostname refused at dial", "https://localhost:" + port + "/", Options{}, "loopback"},
		{"loopback over allowed http still refused", "http://" + addr + "/", Options{AllowHTTP: true}, "loopback"},
		{"ipv6 loopback refused", "https://[::1]:" + port + "/", Options{}, "loopback"},
		{"ipv4-mapped loopback refused", "https://[::ffff:127.0.0.1]:" + port + "/", Options{}, "loopback"},
		{"private 10/8 refused", "https://10.0.0.1:" + port + "/", Options{}, "private"},
		{"private 192.168 refused", "https://192.168.1.1/", Options{}, "private"},
		{"link-local metadata endpoint refused", "https://169.254.169.254/latest/meta-data", Options{}, "link-local"},
		{"cgnat refused", "https://100.64.0.1/", Options{}, "carrier-grade"},
		{"unspecified refused", "https://0.0.0.0:" + port + "/", Options{}, "network"},
		{"multicast refused", "https://224.0.0.1/", Options{}, "multicast"},
		{"ipv6 unique local refused", "https://[fd00::1]/", Options{}, "unique local"},
		{"file scheme refused", "file:///etc/passwd", Options{}, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(tt.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", tt.url, nil)
			resp, err := c.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("GET %s succeeded", tt.url)
			}
			if !errors.Is(err, ErrBlocked) {
				t.Fatalf("GET %s: %v, want ErrBlocked", tt.url, err)
			}
			var be *BlockedError
			if !errors.As(err, &be) || !strings.Contains(strings.ToLower(be.Reason), tt.reason) {
				t.Fatalf("GET %s: reason %v, want to mention %q", tt.url, err, tt.reason)
			}
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Fatalf("the loopback target saw %d connections", n)
	}
}

func TestBlockedReason(t *testing.T) {
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"2606:4700:4700::1111", false},
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"10.255.0.1", true}, {"172.16.0.1", true},
		{"172.31.255.255", true}, {"172.32.0.1", false}, {"192.168.0.1", true}, {"169.254.1.1", true},
		{"100.64.0.1", true}, {"100.127.255.255", true}, {"100.128.0.1", false}, {"0.0.0.0", true},
		{"255.255.255.255", true}, {"224.1.2.3", true}, {"::", true}, {"::1", true}, {"fe80::1", true},
		{"fc00::1", true}, {"ff02::1", true}, {"::ffff:127.0.0.1", true}, {"::ffff:8.8.8.8", true},
		{"64:ff9b::a00:1", true}, {"2002:a00:1::", true}, {"198.18.0.1", true}, {"192.0.2.1", true},
	}
	for _, tt := range tests {
		got := BlockedReason(netip.MustParseAddr(tt.addr)) != ""
		if got != tt.blocked {
			t.Errorf("BlockedReason(%s) blocked=%v, want %v", tt.addr, got, tt.blocked)
		}
	}
}

func TestSandboxAllowsLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	c := NewClient(Options{AllowPrivate: true, AllowHTTP: true})
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

func TestResponseBodyIsCapped(t *testing.T) {
	big := strings.Repeat("x", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		io.WriteString(w, big)
	}))
	defer srv.Close()
	c := NewClient(Options{AllowPrivate: true, AllowHTTP: true, MaxBodyBytes: 100})
	for _, p := range []string{"/declared", "/chunked"} {
		resp, err := c.Get(srv.URL + p)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if !errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("%s: %v, want ErrBodyTooLarge", p, err)
		}
	}
	exact := NewClient(Options{AllowPrivate: true, AllowHTTP: true, MaxBodyBytes: 1000})
	resp, err := exact.Get(srv.URL + "/chunked")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != 1000 {
		t.Fatalf("body exactly at the cap: %d bytes, %v", len(b), err)
	}
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := NewClient(Options{AllowPrivate: true, AllowHTTP: true, ResponseHeaderTimeout: 100 * time.Millisecond})
	t0 := time.Now()
	_, err := c.Get(srv.URL)
	if err == nil || time.Since(t0) > 5*time.Second {
		t.Fatalf("hanging server: err=%v after %v", err, time.Since(t0))
	}
}

func TestRedirectToInternalIsRefused(t *testing.T) {
	addr, accepted := countingListener(t)
	// A public-looking https server is not available offline; use the
	// transport directly with a base that "redirects" to loopback.
	c := NewClient(Options{})
	c.Transport.(*Transport).Base = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Host == "public.example" {
			return &http.Response{StatusCode: 302, Header: http.Header{"Location": {"http://" + addr + "/"}},
				Body: http.NoBody, Request: r}, nil
		}
		return nil, errors.New("unexpected dial")
	})
	_, err := c.Get("https://public.example/")
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("redirect to http loopback: %v", err)
	}
	if accepted.Load() != 0 {
		t.Fatal("connection made")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// countingResolver is a pure-Go resolver whose every DNS query is counted
// and fails.
func countingResolver() (*net.Resolver, *atomic.Int64) {
	n := &atomic.Int64{}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		n.Add(1)
		return nil, errors.New("no DNS in this test")
	}}, n
}

// TestNumericHostNamesRefusedBeforeAnyLookup: host names a browser or libc
// reads as an IPv4 address (inet_aton forms) are refused as such at once,
// with no DNS query and no connection.
func TestNumericHostNamesRefusedBeforeAnyLookup(t *testing.T) {
	addr, accepted := countingListener(t)
	_, port, _ := net.SplitHostPort(addr)
	res, lookups := countingResolver()
	c := NewClient(Options{Resolver: res})
	for _, host := range []string{
		"0x7f000001", "2130706433", "127.1", "0177.0.0.1", "0x7f.0.0.1", "017700000001", "127.0.1",
		"0x7f000001.", "10.1", "0xa9fea9fe", "3232235777", "0x7F000001", "08.8.8.8", "1.2.3.4.5", "0x",
	} {
		u := "https://" + host + ":" + port + "/"
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		resp, err := c.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s succeeded", u)
		}
		if !errors.Is(err, ErrBlocked) {
			t.Errorf("GET %s: %v, want ErrBlocked", u, err)
		}
		if err := CheckURLHost(host); !errors.Is(err, ErrBlocked) {
			t.Errorf("CheckURLHost(%q) = %v, want ErrBlocked", host, err)
		}
	}
	if n := lookups.Load(); n != 0 {
		t.Errorf("%d DNS queries for numeric host names", n)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections", n)
	}
	for _, host := range []string{"bsky.social", "8.8.8.8", "2606:4700:4700::1111", "1password.com", "x.0x1.com", "123.example"} {
		if err := CheckURLHost(host); err != nil {
			t.Errorf("CheckURLHost(%q) = %v, want nil", host, err)
		}
	}
}
