package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// run is the whole program: args are the command-line arguments without the
// program name. It runs a subcommand, or builds the app from the validated
// configuration and serves it until ctx is done, then shuts down
// gracefully. It returns flag.ErrHelp for -h, a configuration error listing
// every problem, or the first failure to start or serve.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		if cmd, ok := subcommands()[args[0]]; ok {
			return cmd(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	a, err := newApp(ctx, cfg, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	return a.serve(ctx, stdout)
}

// task is one goroutine of a running app; name prefixes its error.
type task struct {
	name string
	run  func(ctx context.Context) error
}

// tasks are the app's goroutines: the background work, each stopped by
// its context, and the server.
func (a *app) tasks() []task {
	return []task{
		{"oauth background work", a.auth.Run},
		{"send tokens collector", a.tokens.Run},
		{"outbox worker", a.outbox.Run},
		// Change requests cut off mid-filing (a crash) are settled at start
		// and then periodically.
		{"reconciler", func(ctx context.Context) error { a.projects.RunReconciler(ctx); return nil }},
		// The hub stops with its context, which is cancelled before
		// srv.Shutdown: its SSE streams end then, so Shutdown does not wait
		// for them.
		{"live updates", a.hub.Run},
		{"metrics", a.serveMetrics},
		{"serve", func(context.Context) error {
			var err error
			if a.cfg.TLSCert != "" {
				err = a.srv.ServeTLS(a.ln, a.cfg.TLSCert, a.cfg.TLSKey)
			} else {
				err = a.srv.Serve(a.ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		}},
	}
}

// serve runs the app's tasks until ctx is done or one of them fails, then
// shuts down (the server gracefully, within shutdownTimeout) and closes the
// app. It returns the first task's failure, or nil once ctx is done.
func (a *app) serve(ctx context.Context, stdout io.Writer) error {
	defer a.close()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	tasks := a.tasks()
	errc := make(chan error, len(tasks))
	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Go(func() {
			if err := t.run(runCtx); err != nil {
				errc <- fmt.Errorf("%s: %w", t.name, err)
			}
		})
	}
	a.log.Info("listening", "url", a.publicURL, "addr", a.ln.Addr().String(), "sandbox", a.cfg.Sandbox, "client", clientKind(a.cfg))
	fmt.Fprintf(stdout, "skydm listening on %s\n", a.publicURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	shutCtx, shutCancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer shutCancel()
	if err := a.srv.Shutdown(shutCtx); err != nil {
		a.log.Warn("graceful shutdown", "err", err)
		a.srv.Close()
	}
	wg.Wait()
	// Last: nothing refreshes tokens any more; store any the database refused.
	_ = a.auth.Close(shutCtx) // it logs the sessions it could not save
	a.log.Info("stopped")
	return runErr
}
