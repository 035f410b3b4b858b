// Command devchat runs the sandbox chat.bsky service (internal/devchat) on
// loopback, resolving identities through the sandbox PLC and PDS.
//
//	devchat [-addr 127.0.0.1:2590] [-public-url http://localhost:2590]
//	        [-plc http://localhost:2582] [-pds http://localhost:2583] [-faults]
//
// Each flag's default can also come from the environment: DEVCHAT_ADDR,
// DEVCHAT_PUBLIC_URL, DEVCHAT_PLC, DEVCHAT_PDS, DEVCHAT_FAULTS=1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/skydm/skydm/internal/atid"
	"github.com/skydm/skydm/internal/devchat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "devchat:", err)
		os.Exit(1)
	}
}

// run starts the service and blocks until ctx is done. It prints one line to
// stdout once listening ("devchat <did> listening on http://127.0.0.1:PORT
// (public <url>)") and logs requests to stderr. It returns an error for bad
// flags, a non-loopback -addr, or when the listener cannot be opened.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devchat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "DEVCHAT_ADDR", "127.0.0.1:2590"), "listen address (loopback only)")
	publicURL := fs.String("public-url", getenv("DEVCHAT_PUBLIC_URL"), "public base URL; the DID is did:web of its host (default http://localhost:<port of -addr>)")
	plcURL := fs.String("plc", envOr(getenv, "DEVCHAT_PLC", "http://localhost:2582"), "sandbox PLC directory URL")
	pdsURL := fs.String("pds", envOr(getenv, "DEVCHAT_PDS", "http://localhost:2583"), "sandbox PDS URL (handle resolution)")
	faultsDefault, _ := strconv.ParseBool(getenv("DEVCHAT_FAULTS"))
	faults := fs.Bool("faults", faultsDefault, "enable fault injection (/_devchat endpoints)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}

	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", *addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		return fmt.Errorf("-addr %q: devchat binds only to 127.0.0.1", *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if *publicURL == "" {
		*publicURL = "http://localhost:" + strconv.Itoa(port)
	}

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	client := &http.Client{Timeout: 10 * time.Second}
	srv, err := devchat.New(devchat.Config{
		Endpoint:   *publicURL,
		Directory:  atid.NewSandbox(*plcURL, *pdsURL, client),
		HTTPClient: client,
		Faults:     *faults,
		Logger:     logger,
	})
	if err != nil {
		return err
	}

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Fprintf(stdout, "devchat %s listening on http://%s (public %s, faults %t)\n", srv.DID(), ln.Addr(), *publicURL, *faults)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = srv.Close() // release calls held by Hang faults
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		_ = hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
