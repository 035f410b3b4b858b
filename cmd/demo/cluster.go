package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/skydm/skydm/internal/pgserver"
)

// clusterSize is how many web app instances -cluster starts.
const clusterSize = 2

// pgDirPrefix names the temporary directory of the demo's Postgres (one
// left by a demo that was killed is wiped by the next).
const pgDirPrefix = "skydm-demo-postgres-"

// demoCluster is -cluster's part: one Postgres, the web app instances on
// it, and the reverse proxy in front of them at the public URL.
type demoCluster struct {
	pg     *pgserver.Server
	webs   []*webProc
	proxy  *http.Server
	url    string        // the proxy's: what browsers open
	exited chan struct{} // closed when any instance has exited
}

// startCluster starts Postgres (a throw-away server, internal/pgserver),
// clusterSize web app instances sharing its database, the secrets and the
// public URL http://cfg.addr (the proxy, whose port names the loopback
// OAuth client), each on a free port of its own, and the proxy on
// cfg.addr. On error nothing is left running.
func startCluster(ctx context.Context, cfg webConfig) (_ *demoCluster, err error) {
	c := &demoCluster{url: "http://" + cfg.addr, exited: make(chan struct{})}
	var once sync.Once
	defer func() {
		if err != nil {
			err = errors.Join(err, c.stop())
		}
	}()
	if c.pg, err = pgserver.Start(pgDirPrefix); err != nil {
		var ni pgserver.NotInstalledError
		if errors.As(err, &ni) {
			return nil, fmt.Errorf("%w: -cluster needs Postgres (Debian: apt-get install postgresql)", err)
		}
		return nil, fmt.Errorf("starting Postgres: %w", err)
	}
	if err := c.pg.Exec(`CREATE DATABASE skydm`); err != nil {
		return nil, fmt.Errorf("creating the demo database: %w", err)
	}
	if cfg.secrets, err = newSecrets(); err != nil {
		return nil, err
	}
	cfg.publicURL, cfg.db = c.url, c.pg.URL("skydm")
	var targets []*url.URL
	for i := range clusterSize {
		inst := cfg
		if inst.addr, err = reserveWebAddr("127.0.0.1:0"); err != nil {
			return nil, err
		}
		inst.logName = fmt.Sprintf("web-%d.log", i+1)
		w, err := startWeb(ctx, inst)
		if err != nil {
			return nil, fmt.Errorf("web app %d: %w", i+1, err)
		}
		c.webs = append(c.webs, w)
		go func() {
			<-w.exited
			once.Do(func() { close(c.exited) })
		}()
		u, _ := url.Parse(w.url)
		targets = append(targets, u)
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("the proxy's address %s: %w", cfg.addr, err)
	}
	c.proxy = &http.Server{Handler: newRoundRobin(targets), ReadHeaderTimeout: 10 * time.Second}
	go c.proxy.Serve(ln)
	return c, nil
}

// stop stops the proxy, the instances and Postgres (wiping its data), and
// returns what went wrong.
func (c *demoCluster) stop() error {
	var err error
	if c.proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.proxy.Shutdown(ctx) // open live streams are cut when the instances stop
		cancel()
		c.proxy.Close()
	}
	for _, w := range c.webs {
		err = errors.Join(err, w.stop(webStopGrace))
	}
	if c.pg != nil {
		if perr := c.pg.Stop(); perr != nil {
			err = errors.Join(err, fmt.Errorf("stopping Postgres: %w", perr))
		}
	}
	return err
}

// logTails is the end of each instance's log.
func (c *demoCluster) logTails() string {
	var s string
	for i, w := range c.webs {
		s += fmt.Sprintf("web app %d (%s):\n%s\n", i+1, w.logPath, w.logTail())
	}
	return s
}

// newRoundRobin is a reverse proxy that sends each request to the next of
// targets in turn, keeping the browser's Host (the public URL's, which
// cross-origin checks compare with Origin) and adding X-Forwarded-*. It
// flushes every write at once (FlushInterval -1), so that live updates
// (SSE) stream through it.
func newRoundRobin(targets []*url.URL) http.Handler {
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			t := targets[(next.Add(1)-1)%uint64(len(targets))]
			r.SetURL(t)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "This skydm instance is not answering; reload to try another.", http.StatusBadGateway)
		},
	}
}

// printClusterSummary is printSummary's addition for -cluster: the
// instances behind the proxy and the database.
func printClusterSummary(w io.Writer, c *demoCluster) {
	fmt.Fprintf(w, "  cluster   %d web app instances behind a round-robin proxy at %s,\n", len(c.webs), c.url)
	fmt.Fprintf(w, "            sharing one Postgres (%s, data in %s):\n", c.pg.URL("skydm"), c.pg.Dir())
	for i, web := range c.webs {
		fmt.Fprintf(w, "    instance %d  %s\n", i+1, web.url)
	}
}
