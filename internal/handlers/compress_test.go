package handlers

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/skydm/skydm/internal/lex/chat"
)

// chromeAcceptEncoding is what Chromium sends with every request.
const chromeAcceptEncoding = "gzip, deflate, br, zstd"

// decode returns body decoded by its Content-Encoding ("" is identity).
func decode(tb testing.TB, coding string, body []byte) []byte {
	tb.Helper()
	var r io.Reader
	switch coding {
	case "":
		return body
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			tb.Fatalf("gzip: %v", err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			tb.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		tb.Fatalf("unexpected Content-Encoding %q", coding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("%s: %v", coding, err)
	}
	return b
}

// fetch GETs path as the signed-in browser with the given request headers
// and returns the response with its body as it came over the wire (the
// client does not decode it).
func (a *testApp) fetch(path string, headers map[string]string) (*http.Response, []byte) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "identity") // or Go's client asks for gzip itself
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res, b
}

func hasVary(h http.Header, field string) bool {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), field) {
				return true
			}
		}
	}
	return false
}

func TestPagesAreCompressedOnlyWhenAcceptedAndNotForOtherSites(t *testing.T) {
	a := newDMApp(t)
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 0, 0)
	plain, want := a.fetch("/convos/c1", nil)
	if plain.StatusCode != http.StatusOK || plain.Header.Get("Content-Encoding") != "" || !hasVary(plain.Header, "Accept-Encoding") {
		t.Fatalf("without Accept-Encoding: %d, Content-Encoding %q, Vary %q", plain.StatusCode, plain.Header.Get("Content-Encoding"), plain.Header.Values("Vary"))
	}
	for _, tc := range []struct{ accept, site, coding string }{
		{"gzip", "none", "gzip"},
		{chromeAcceptEncoding, "none", "zstd"},
		{chromeAcceptEncoding, "same-origin", "zstd"},
		{"gzip;q=0, zstd;q=0", "none", ""},
		{chromeAcceptEncoding, "cross-site", ""}, // BREACH: another site's request
		{chromeAcceptEncoding, "same-site", ""},
	} {
		res, body := a.fetch("/convos/c1", map[string]string{"Accept-Encoding": tc.accept, "Sec-Fetch-Site": tc.site})
		if got := res.Header.Get("Content-Encoding"); got != tc.coding || res.StatusCode != http.StatusOK {
			t.Errorf("Accept-Encoding %q, Sec-Fetch-Site %s: %d, Content-Encoding %q, want %q", tc.accept, tc.site, res.StatusCode, got, tc.coding)
			continue
		}
		if !hasVary(res.Header, "Accept-Encoding") || !strings.Contains(res.Header.Get("Content-Security-Policy"), "'nonce-") {
			t.Errorf("%q: Vary %q, CSP %q", tc.accept, res.Header.Values("Vary"), res.Header.Get("Content-Security-Policy"))
		}
		page := decode(t, tc.coding, body)
		if !bytes.Contains(page, []byte(`data-testid="composer"`)) || len(page) < len(want)*9/10 {
			t.Errorf("%q: decoded page of %d B is not the conversation page (%d B identity)", tc.accept, len(page), len(want))
		}
	}
}

func TestStaticFilesCompressedWithTheirOwnETags(t *testing.T) {
	a := newTestApp(t)
	css := a.get("/").doc.Find(`link[rel="stylesheet"]`).AttrOr("href", "")
	plain, src := a.fetch(css, nil)
	if plain.Header.Get("Content-Encoding") != "" || !hasVary(plain.Header, "Accept-Encoding") || !strings.Contains(plain.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("identity: Content-Encoding %q, Vary %q, Cache-Control %q", plain.Header.Get("Content-Encoding"), plain.Header.Values("Vary"), plain.Header.Get("Cache-Control"))
	}
	etags := map[string]string{"": plain.Header.Get("ETag")}
	for _, tc := range []struct{ accept, coding string }{{"gzip", "gzip"}, {"gzip, br", "br"}, {chromeAcceptEncoding, "br"}, {"br;q=0, gzip", "gzip"}} {
		res, body := a.fetch(css, map[string]string{"Accept-Encoding": tc.accept})
		if got := res.Header.Get("Content-Encoding"); got != tc.coding {
			t.Errorf("%q: Content-Encoding %q, want %q", tc.accept, got, tc.coding)
			continue
		}
		if !bytes.Equal(decode(t, tc.coding, body), src) || len(body) >= len(src)/2 {
			t.Errorf("%q: %d B on the wire do not decode to the %d B file", tc.accept, len(body), len(src))
		}
		if !hasVary(res.Header, "Accept-Encoding") || len(res.Header.Values("Vary")) != 1 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
			t.Errorf("%q: Vary %q, Cache-Control %q", tc.accept, res.Header.Values("Vary"), res.Header.Get("Cache-Control"))
		}
		etags[tc.coding] = res.Header.Get("ETag")
	}
	if len(etags) != 3 || etags[""] == etags["br"] || etags["br"] == etags["gzip"] {
		t.Errorf("one ETag per encoding, got %q", etags)
	}
	// Revalidation: the browser's ETag for its encoding is current; another
	// encoding's is not the same representation.
	if res, _ := a.fetch(css, map[string]string{"Accept-Encoding": "gzip, br", "If-None-Match": etags["br"]}); res.StatusCode != http.StatusNotModified {
		t.Errorf("br revalidation: %d, want 304", res.StatusCode)
	}
	if res, _ := a.fetch(css, map[string]string{"Accept-Encoding": "gzip, br", "If-None-Match": etags[""]}); res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "br" {
		t.Errorf("identity ETag on a br request: %d %q, want 200 br", res.StatusCode, res.Header.Get("Content-Encoding"))
	}
}

// TestLiveStreamIsNeverCompressedAndFlushesEachEvent opens /events through
// the whole handler chain as Chromium does (Accept: text/event-stream and
// every encoding), and as a client that does not say it wants a stream:
// neither is compressed, and an event pushed after the stream opened
// arrives while the stream stays open.
func TestLiveStreamIsNeverCompressedAndFlushesEachEvent(t *testing.T) {
	hub, src := startHub(t)
	a := newDMApp(t, func(d *DMs) { d.Hub = hub })
	a.chat.addConvo("c1", profile(dmBob, "bob.test", "Bob"), "accepted", 0, 0)
	var streams []*bufio.Reader
	for _, accept := range []string{"text/event-stream", ""} {
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/events?convo=c1", nil)
		req.Header.Set("Accept-Encoding", chromeAcceptEncoding)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Content-Encoding") != "" {
			t.Fatalf("Accept %q: %d %q, Content-Encoding %q", accept, res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Encoding"))
		}
		streams = append(streams, bufio.NewReader(res.Body))
	}
	waitFor(t, "the poller's first call", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.calls > 1
	})
	for i, rev := range []string{"r01", "r02"} {
		src.push(createMessage("c1", rev, &chat.ConvoDefs_MessageView{Id: "m" + rev, Rev: rev, Text: "hi " + rev,
			SentAt: a.chat.now.Format(time.RFC3339), Sender: &chat.ConvoDefs_MessageViewSender{Did: dmBob}}))
		for _, s := range streams {
			if ev := readEventWithin(t, s, 5*time.Second); ev.id != rev || ev.name != "message" {
				t.Fatalf("event %d: %+v, want message %s", i, ev, rev)
			}
		}
	}
}

// readEventWithin reads the next named event of an open stream (other than
// "position", which tells a new stream where it is), failing
// the test when none is complete in d (the stream stays open: a reader
// that needs the stream's end would never get there).
func readEventWithin(t *testing.T, r *bufio.Reader, d time.Duration) sseEvent {
	t.Helper()
	got := make(chan sseEvent, 1)
	go func() {
		var ev sseEvent
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				close(got)
				return
			}
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "" && ev.name != "" && ev.name != "position":
				got <- ev
				return
			case line == "":
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			}
		}
	}()
	select {
	case ev, ok := <-got:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	return sseEvent{}
}
