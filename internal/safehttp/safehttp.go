// Package safehttp builds the *http.Client skydm uses for every outbound
// request to hosts named by users or by other people's documents (identity
// resolution, OAuth metadata, PAR, token and PDS requests): bounded timeouts,
// a response size cap, https only, and an SSRF guard that refuses
// loopback, private, link-local, CGNAT, multicast, unspecified, reserved and
// IPv4-mapped addresses at dial time, after DNS resolution, so a hostname
// that resolves (or re-resolves) to an internal address is refused too.
package safehttp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configures NewClient. The zero value is the production policy.
type Options struct {
	// AllowPrivate disables the SSRF guard (sandbox only: the loopback
	// network). Never set in production.
	AllowPrivate bool
	// AllowHTTP permits plain http:// URLs (sandbox only).
	AllowHTTP bool

	DialTimeout           time.Duration // default 5s
	TLSHandshakeTimeout   time.Duration // default 5s
	ResponseHeaderTimeout time.Duration // default 10s
	Timeout               time.Duration // whole request incl. body; default 30s
	MaxBodyBytes          int64         // response body cap; default 4 MiB
	MaxRedirects          int           // default 5

	// Resolver looks host names up; nil is net.DefaultResolver.
	Resolver *net.Resolver
}

// ErrBlocked is wrapped by every error this package returns for a refused
// destination; test with errors.Is.
var ErrBlocked = errors.New("safehttp: destination refused")

// BlockedError says which destination was refused and why.
type BlockedError struct {
	Target string // "ip:port" or URL
	Reason string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("safehttp: refused %s: %s", e.Target, e.Reason)
}

// Is makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Is(target error) bool { return target == ErrBlocked }

// ErrBodyTooLarge is returned while reading a response body that exceeds
// Options.MaxBodyBytes.
var ErrBodyTooLarge = errors.New("safehttp: response body too large")

// NewClient returns an *http.Client with the given policy. It never fails:
// zero durations and sizes take the defaults above. Environment proxies are
// ignored (a proxy would bypass the dial-time guard).
func NewClient(o Options) *http.Client {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.TLSHandshakeTimeout <= 0 {
		o.TLSHandshakeTimeout = 5 * time.Second
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 5
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	if !o.AllowPrivate {
		dialer.Control = guardControl
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    10,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    o.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  o.ResponseHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	max := o.MaxRedirects
	return &http.Client{
		Timeout:   o.Timeout,
		Transport: &Transport{Base: tr, AllowHTTP: o.AllowHTTP, AllowPrivate: o.AllowPrivate, MaxBodyBytes: o.MaxBodyBytes},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= max {
				return fmt.Errorf("safehttp: stopped after %d redirects", max)
			}
			return nil
		},
	}
}

// Transport enforces the scheme policy and the body size cap on top of
// Base. It is exported so callers can wrap a transport of their own (tests,
// instrumentation) with the same policy.
type Transport struct {
	Base         http.RoundTripper
	AllowHTTP    bool
	AllowPrivate bool // skip CheckURLHost (sandbox only)
	MaxBodyBytes int64
}

// RoundTrip refuses non-https URLs (unless AllowHTTP) and hosts
// CheckURLHost refuses (unless AllowPrivate) with a *BlockedError before
// any lookup or connection is made, and caps the response body.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch req.URL.Scheme {
	case "https":
	case "http":
		if !t.AllowHTTP {
			closeBody(req)
			return nil, &BlockedError{Target: redact(req), Reason: "plain http is not allowed, only https"}
		}
	default:
		closeBody(req)
		return nil, &BlockedError{Target: redact(req), Reason: "unsupported URL scheme"}
	}
	if !t.AllowPrivate {
		if err := CheckURLHost(req.URL.Hostname()); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if t.MaxBodyBytes > 0 && resp.Body != nil {
		if resp.ContentLength > t.MaxBodyBytes {
			resp.Body.Close()
			return nil, fmt.Errorf("%w: %d bytes declared, limit %d", ErrBodyTooLarge, resp.ContentLength, t.MaxBodyBytes)
		}
		resp.Body = &capReader{rc: resp.Body, left: t.MaxBodyBytes}
	}
	return resp, nil
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// redact returns scheme://host/path without query or credentials.
func redact(req *http.Request) string {
	return req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
}

type capReader struct {
	rc   io.ReadCloser
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// Allow reading EOF exactly at the limit; anything more is an error.
		var one [1]byte
		n, err := c.rc.Read(one[:])
		if n > 0 {
			return 0, ErrBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capReader) Close() error { return c.rc.Close() }

// guardControl runs after DNS resolution, just before connect(2), for every
// address the dialer tries.
func guardControl(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &BlockedError{Target: address, Reason: "unparseable address"}
	}
	if reason := BlockedReason(ap.Addr()); reason != "" {
		return &BlockedError{Target: address, Reason: reason}
	}
	return nil
}

var blockedPrefixes = []struct {
	p      netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved address"},
	{netip.MustParsePrefix("::/128"), "unspecified address"},
	{netip.MustParsePrefix("::1/128"), "loopback address"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible address"},
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64 address"},
	{netip.MustParsePrefix("100::/64"), "discard-only address"},
	{netip.MustParsePrefix("2001::/32"), "Teredo address"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation address"},
	{netip.MustParsePrefix("2002::/16"), "6to4 address"},
	{netip.MustParsePrefix("fc00::/7"), "private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "multicast address"},
}

// BlockedReason returns why addr may not be dialled from production, or ""
// when it is a public unicast address.
func BlockedReason(addr netip.Addr) string {
	if !addr.IsValid() {
		return "invalid address"
	}
	if addr.Zone() != "" {
		return "scoped (zoned) address"
	}
	if addr.Is4In6() {
		return "IPv4-mapped address"
	}
	for _, b := range blockedPrefixes {
		if b.p.Contains(addr) {
			return b.reason
		}
	}
	if !addr.IsGlobalUnicast() {
		return "not a global unicast address"
	}
	return ""
}

// CheckURLHost reports, without any network access, whether a URL's host
// is refused before it is looked up: an IP literal the guard would refuse,
// or a numeric host name, one whose last label is a number ("127.1",
// "0x7f000001", "2130706433", "0177.0.0.1"), which browsers and inet_aton
// read as an IPv4 address whatever DNS says. Numeric names are refused in
// every form (also those naming a public address: nobody's server is
// reached that way), so they never reach DNS. Other host names are checked
// at dial time. It returns a *BlockedError or nil.
func CheckURLHost(host string) error {
	if a, err := netip.ParseAddr(host); err == nil {
		r := BlockedReason(a)
		if u := BlockedReason(a.Unmap()); a.Is4In6() && u != "" {
			r = u // say what it maps to, as the dial-time guard would
		}
		if r != "" {
			return &BlockedError{Target: host, Reason: r}
		}
		return nil
	}
	if !endsInNumber(host) {
		return nil
	}
	if a, ok := parseInetAton(strings.TrimSuffix(host, ".")); ok {
		if r := BlockedReason(a); r != "" {
			return &BlockedError{Target: host, Reason: r + " (written as a number)"}
		}
	}
	return &BlockedError{Target: host, Reason: "numeric host name (an IPv4 address in a non-standard form)"}
}

// endsInNumber is the WHATWG URL host parser's test for an IPv4 host: the
// last label (ignoring one trailing dot) is decimal digits or 0x and hex
// digits.
func endsInNumber(host string) bool {
	host = strings.TrimSuffix(host, ".")
	last := host[strings.LastIndex(host, ".")+1:]
	if last == "" {
		return false
	}
	if h, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		return strings.Trim(h, "0123456789abcdef") == ""
	}
	return strings.Trim(last, "0123456789") == ""
}

// parseInetAton parses 1 to 4 dot-separated numbers (decimal, 0x hex or
// 0-prefixed octal) as inet_aton does: the last one fills the remaining
// bytes. It reports false when s is not such an address.
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		base, digits := 10, p
		switch lp := strings.ToLower(p); {
		case strings.HasPrefix(lp, "0x"):
			base, digits = 16, lp[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		n, err := strconv.ParseUint(digits, base, 32)
		if err != nil || digits == "" {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return netip.Addr{}, false
			}
			v = v<<8 | n
			continue
		}
		rest := uint(4 - i) // bytes the last part fills
		if n >= 1<<(8*rest) {
			return netip.Addr{}, false
		}
		v = v<<(8*rest) | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
