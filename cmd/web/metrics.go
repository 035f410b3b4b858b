package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Why a listener of its own rather than a bearer token on the public
// one: the metrics name the PDS hosts skydm's users are on and how busy
// the instance is, so they stay off the public network by where they are
// served, with no secret to hand out, rotate or leak into a scraper's
// config; every Prometheus deployment reaches a private port, and each
// instance of several has its own. The public listener has no /metrics
// (404).

// metrics checks -metrics-addr.
func (in *given) metrics(c *config, p *problems) {
	if in.metricsAddr == "" {
		return
	}
	if _, _, err := net.SplitHostPort(in.metricsAddr); err != nil {
		p.add(fMetricsAddr, "%q is not host:port", in.metricsAddr)
		return
	}
	c.MetricsAddr = in.metricsAddr
}

// listenMetrics opens the metrics listener when -metrics-addr is set.
func (a *app) listenMetrics() error {
	if a.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on %s (%s): %w", a.cfg.MetricsAddr, fMetricsAddr, err)
	}
	a.metricsLn = ln
	a.log.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	a.metricsSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return nil
}

// serveMetrics serves the metrics listener until ctx is done (nothing
// to do without one).
func (a *app) serveMetrics(ctx context.Context) error {
	if a.metricsLn == nil {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { a.metricsSrv.Close() }) // scrapes are short: no graceful wait
	defer stop()
	if err := a.metricsSrv.Serve(a.metricsLn); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
