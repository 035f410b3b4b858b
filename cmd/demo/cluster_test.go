package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/skydm/skydm/internal/testenv"
)

// The proxy sends requests to its targets in turn, keeps the browser's
// Host, and passes a live stream's event on as soon as the instance has
// flushed it, while the stream stays open.
func TestRoundRobin_alternatesKeepsHostAndStreams(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	backend := func(name string) *url.URL {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Instance", name)
			if r.URL.Path != "/events" {
				io.WriteString(w, r.Host)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: hello from "+name+"\n\n")
			w.(http.Flusher).Flush()
			select { // the stream stays open
			case <-release:
			case <-r.Context().Done():
			}
		}))
		t.Cleanup(s.Close)
		u, _ := url.Parse(s.URL)
		return u
	}
	proxy := httptest.NewServer(newRoundRobin([]*url.URL{backend("one"), backend("two")}))
	t.Cleanup(proxy.Close)

	var seen []string
	for range 4 {
		res, err := http.Get(proxy.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		seen = append(seen, res.Header.Get("X-Instance"))
		if want := strings.TrimPrefix(proxy.URL, "http://"); string(body) != want {
			t.Errorf("the instance saw Host %q, want the proxy's %q", body, want)
		}
	}
	if strings.Join(seen, " ") != "one two one two" && strings.Join(seen, " ") != "two one two one" {
		t.Errorf("requests went to %q, want the two instances in turn", seen)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, proxy.URL+"/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: hello from ") {
		t.Fatalf("first line of the open stream through the proxy: %q, %v (want the event, before the stream ends)", line, err)
	}
}

var (
	instanceRe = regexp.MustCompile(`instance \d+\s+(http://127\.0\.0\.1:\d+)`)
	pgDirRe    = regexp.MustCompile(`data in (\S+)\)`)
)

// TestRun_clusterServesTwoInstancesAndStopsEverything runs the demo with
// -cluster on free ports: the proxy's URL and both instances answer, the
// output names the instances, their pids and the logins, alice signs in
// through the proxy (her sign-in started on one instance and finished on
// the other) and sees her conversations on both and a live
// stream through the proxy, and after
// cancellation both web processes are gone, Postgres's directory is wiped
// and the proxy no longer answers.
func TestRun_clusterServesTwoInstancesAndStopsEverything(t *testing.T) {
	d := startDemo(t, "-cluster")
	base := d.url
	out := d.stdout.String()
	for _, want := range []string{"alice.test", "alice-pass", "bob.test", "bob-pass", "round-robin proxy at " + base, "Postgres"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	var instances []string
	for _, m := range instanceRe.FindAllStringSubmatch(out, -1) {
		instances = append(instances, m[1])
	}
	var pids []int
	for _, m := range pidRe.FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	pgDir := pgDirRe.FindStringSubmatch(out)
	if len(instances) != 2 || len(pids) != 2 || pgDir == nil {
		t.Fatalf("want two instance URLs, two pids and Postgres's directory in:\n%s", out)
	}
	for _, u := range append([]string{base, base}, instances...) { // the proxy twice: each instance once through it
		for _, path := range []string{"/healthz", "/signin"} {
			resp, err := http.Get(u + path)
			if err != nil {
				t.Fatalf("GET %s%s: %v", u, path, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s%s: %d\n%s", u, path, resp.StatusCode, body)
			}
		}
	}

	signInThroughProxy(t, base, "alice.test", "alice-pass")

	d.stop(t)
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("web process %d still exists after stop (kill 0: %v)", pid, err)
		}
	}
	for _, p := range []string{d.state, pgDir[1]} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after stop (stat: %v)", p, err)
		}
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Errorf("%s still answers after stop", base)
	}
}

// signInThroughProxy signs in as handle at base, the proxy, the way a
// browser does (two requests: one instance each), then loads the inbox
// twice (both instances) and opens the live stream.
func signInThroughProxy(t *testing.T, base, handle, password string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, u string, form url.Values, site string) (*http.Response, *goquery.Document) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", base)
		}
		req.Header.Set("Sec-Fetch-Site", site)
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, u, err)
		}
		defer res.Body.Close()
		doc, err := goquery.NewDocumentFromReader(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, doc
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, doc := send(http.MethodPost, base+"/oauth/login", url.Values{"identifier": {handle}}, "same-origin")
	authz, ok := doc.Find(`[data-testid="continue-link"]`).Attr("href")
	if !ok {
		t.Fatalf("no continue link after POST /oauth/login through the proxy")
	}
	callback, err := testenv.CompleteAuthorize(ctx, authz, handle, password, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(callback, base+"/") {
		t.Fatalf("the PDS sends the browser to %q, want the proxy %s", callback, base)
	}
	if res, doc := send(http.MethodGet, callback, nil, "cross-site"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback through the proxy: %d %q", res.StatusCode, doc.Find(`[data-testid="error-message"]`).Text())
	}
	for i := range 2 {
		res, doc := send(http.MethodGet, base+"/", nil, "same-origin")
		who, convos := doc.Find(`[data-testid="current-handle"]`).Text(), doc.Find(`[data-testid="convo-names"]`).Text()
		if res.StatusCode != http.StatusOK || who != handle || !strings.Contains(convos, "Weekend plans") {
			t.Fatalf("inbox %d through the proxy: %d, signed in as %q, conversations %q; want %s's, with Weekend plans", i, res.StatusCode, who, convos, handle)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("live stream through the proxy: %v %v", res, err)
	}
	defer res.Body.Close()
	if line, err := bufio.NewReader(res.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "retry:") {
		t.Fatalf("live stream's first line through the proxy: %q, %v", line, err)
	}
}
