package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/handlers"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/websession"
)

// productionImageOrigins are where Bluesky avatars are served from.
const productionImageOrigin = "https://cdn.bsky.app"

// shutdownTimeout bounds the graceful shutdown.
const shutdownTimeout = 10 * time.Second

// run is the whole program: args are the command-line arguments without the
// program name. It serves until ctx is done, then shuts down gracefully. It
// returns flag.ErrHelp for -h, a configuration error listing every problem,
// or the first failure to start or serve.
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
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	publicURL, err := resolvePublicURL(cfg, ln.Addr())
	if err != nil {
		return err
	}

	sqlDB, err := db.Open(ctx, cfg.DBPath)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	defer sqlDB.Close()

	up, err := newUpstream(cfg)
	if err != nil {
		return err
	}
	dir, httpClient, imageOrigins, chatService := up.dir, up.httpClient, up.imageOrigins, up.chatService
	if up.sandbox != nil {
		logger.Warn("sandbox mode: identities and OAuth go to the local network; never use in production",
			"pds", up.sandbox.PDSURL, "plc", up.sandbox.PLCURL, "chat_service", chatService)
	}
	if err := checkChatServiceAtStart(ctx, dir, chatService, logger); err != nil {
		return err
	}
	refAlarm := &serviceRefAlarm{log: logger}

	authService, err := oauth.New(oauth.Config{
		PublicURL:     publicURL,
		Sandbox:       cfg.Sandbox,
		Scopes:        cfg.Scopes,
		ClientKey:     cfg.ClientKey,
		EncryptionKey: cfg.EncryptionKey,
		Directory:     dir,
		HTTPClient:    httpClient,
		Logger:        logger.With("component", "oauth"),
	}, sqlDB)
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	// Change-request DMs: the outbox worker sends through the senders'
	// stored OAuth sessions (the same live sessions the pages use).
	worker, err := notify.New(notify.Config{
		DB:            sqlDB,
		Sender:        &oauthSender{sessions: authService, chatService: chatService, opts: refAlarm.options()},
		Directory:     dir,
		Logger:        logger,
		LeaseDuration: cfg.OutboxLease,
	})
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	projectService, err := projects.NewService(projects.Config{
		DB:          sqlDB,
		Authority:   cfg.NSIDAuthority,
		BaseURL:     publicURL,
		NotifierDID: cfg.NotifierDID,
		OnEnqueue:   worker.Wake,
		Sessions:    oauthRepos{authService},
		Logger:      logger,
	})
	if err != nil {
		return fmt.Errorf("projects: %w", err)
	}
	secure := publicURLIsHTTPS(publicURL)
	hcfg := handlers.Config{
		Auth:         authService,
		Sessions:     websession.New(cfg.HashKey, cfg.BlockKey, secure),
		PublicURL:    publicURL,
		ImageOrigins: imageOrigins,
		HSTS:         secure && !cfg.Sandbox,
		Health:       sqlDB.PingContext,
		Logger:       logger,
		Projects: &handlers.Projects{
			Service: projectService, Clients: authService, Outbox: worker, Directory: dir,
		},
		OnSignIn: func(ctx context.Context, acct websession.Account) {
			if err := worker.Resume(ctx, acct.DID); err != nil {
				logger.ErrorContext(ctx, "resuming parked DMs after sign-in", "did", acct.DID.String(), "err", err)
			}
			projectService.WakeReconciler() // change requests cut off mid-filing may wait for this session
		},
	}
	if !cfg.loopback() {
		hcfg.ClientDocs = authService
	}
	// DMs: pages through each account's live OAuth session; live updates
	// from one getLog poller per signed-in user (internal/live).
	// One rate-limit gate for pages and live updates (chatproxy.Gate).
	gate := chatproxy.NewGate(nil)
	hub := live.New(live.Config{Source: liveLogSource(authService, chatService, gate, refAlarm.options()...), Logger: logger.With("component", "live")})
	hcfg.DMs = &handlers.DMs{
		Chats:     handlers.NewChatClients(authService, chatService, gate, refAlarm.options()...),
		Directory: dir,
		Hub:       hub,
	}
	h, err := handlers.New(hcfg)
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Longer than every request deadline (handlers: pages 10 s, sign-in 15 s), so
		// the answer to a request cut off by its deadline is always written; long-lived
		// responses (SSE) extend it with http.ResponseController.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 5)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := authService.Run(runCtx); err != nil {
			errc <- fmt.Errorf("oauth background work: %w", err)
		}
	})
	wg.Go(func() {
		if err := worker.Run(runCtx); err != nil {
			errc <- fmt.Errorf("outbox worker: %w", err)
		}
	})
	// Change requests cut off mid-filing (a crash) are settled at start
	// and then periodically.
	wg.Go(func() { projectService.RunReconciler(runCtx) })
	// The hub stops with runCtx, which is cancelled before srv.Shutdown:
	// its SSE streams end then, so Shutdown does not wait for them.
	wg.Go(func() {
		if err := hub.Run(runCtx); err != nil {
			errc <- fmt.Errorf("live updates: %w", err)
		}
	})
	wg.Go(func() {
		var err error
		if cfg.TLSCert != "" {
			err = srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve: %w", err)
		}
	})
	logger.Info("listening", "url", publicURL, "addr", ln.Addr().String(), "sandbox", cfg.Sandbox, "client", clientKind(cfg))
	fmt.Fprintf(stdout, "skydm listening on %s\n", publicURL)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	shutCtx, shutCancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer shutCancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		logger.Warn("graceful shutdown", "err", err)
		srv.Close()
	}
	wg.Wait()
	// Last: nothing refreshes tokens any more; store any the database refused.
	_ = authService.Close(shutCtx) // it logs the sessions it could not save
	logger.Info("stopped")
	return runErr
}

// resolvePublicURL fills in the listening address: no public URL (loopback
// client) → http://<addr>; a public URL with port 0 → the listening port.
func resolvePublicURL(cfg config, addr net.Addr) (string, error) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "", fmt.Errorf("listening on a non-TCP address %s", addr)
	}
	if cfg.PublicURL == "" {
		return fmt.Sprintf("http://127.0.0.1:%d", tcp.Port), nil
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return "", err
	}
	if u.Port() == "0" {
		u.Host = net.JoinHostPort(u.Hostname(), fmt.Sprint(tcp.Port))
	}
	return u.String(), nil
}

func publicURLIsHTTPS(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Scheme == "https"
}

func clientKind(cfg config) string {
	if cfg.loopback() {
		return "loopback"
	}
	return "confidential"
}

// keygen prints fresh secrets as environment lines. It fails only if the
// system random source does.
func keygen(stdout io.Writer) error {
	secret := make([]byte, 64)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	enc, err := oauth.GenerateEncryptionKey()
	if err != nil {
		return err
	}
	key, err := oauth.GenerateClientKey()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "SKYDM_SESSION_SECRET=%s\nSKYDM_ENCRYPTION_KEY=%s\nSKYDM_CLIENT_KEY=%s\n",
		base64.StdEncoding.EncodeToString(secret), enc, key)
	return err
}
