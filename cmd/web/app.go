package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/chataccess"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/handlers"
	"github.com/skydm/skydm/internal/live"
	"github.com/skydm/skydm/internal/livepg"
	"github.com/skydm/skydm/internal/metrics"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/oauth"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/sendtokens"
	"github.com/skydm/skydm/internal/websession"
)

// productionImageOrigin is where Bluesky avatars are served from.
const productionImageOrigin = "https://cdn.bsky.app"

// app is skydm built from a validated config: listening, its database
// open, every service and the HTTP server made; serve runs it.
type app struct {
	cfg       config
	log       *slog.Logger
	ln        net.Listener
	publicURL string // cfg.PublicURL with the listening port filled in
	db        *sql.DB
	up        upstream
	refAlarm  *serviceRefAlarm // shared by every chat client made
	metrics   *metrics.Metrics // served on metricsLn (metrics.go), if any

	metricsLn  net.Listener
	metricsSrv *http.Server

	auth     *oauth.Service
	chats    *chataccess.Service // every chat client: pages, live updates, outbox
	outbox   *notify.Worker
	projects *projects.Service
	hub      *live.Hub
	pacer    *budget.Pacer     // the live pollers' share of a.up.budget
	tokens   *sendtokens.Store // the send forms' spent tokens, shared by the instances on a.db
	srv      *http.Server
}

// newApp builds the app of cfg, step by step: listen, open the database,
// reach the network, make the services, then the HTTP server. It returns
// the first step's error (having closed what it opened); ctx bounds the
// start-up checks and is the base of every request's context.
func newApp(ctx context.Context, cfg config, logger *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, log: logger, refAlarm: &serviceRefAlarm{log: logger},
		metrics: metrics.New(logger.With("component", "upstream"))}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if err := a.listen(); err != nil {
		return nil, err
	}
	if a.db, err = db.Open(ctx, cfg.DBPath); err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := a.reachNetwork(ctx); err != nil {
		return nil, err
	}
	if err := a.newServices(); err != nil {
		return nil, err
	}
	h, err := a.newHandler()
	if err != nil {
		return nil, err
	}
	a.srv = a.newServer(ctx, h)
	return a, nil
}

// listen opens the listener and fills in the public URL.
func (a *app) listen() error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	a.ln = ln
	if a.publicURL, err = resolvePublicURL(a.cfg, ln.Addr()); err != nil {
		return err
	}
	return a.listenMetrics()
}

// reachNetwork sets up the way to the atproto network (production or
// sandbox) and checks the chat service ref (checkChatServiceAtStart).
func (a *app) reachNetwork(ctx context.Context) error {
	up, err := newUpstreamVia(a.cfg, a.metrics.Transport) // counts every request sent upstream
	if err != nil {
		return err
	}
	a.metrics.WatchBudget(metrics.BudgetFunc(func() []metrics.HostBudget { return hostBudgets(up.budget) }))
	a.up = up
	if up.sandbox != nil {
		a.log.Warn("sandbox mode: identities and OAuth go to the local network; never use in production",
			"pds", up.sandbox.PDSURL, "plc", up.sandbox.PLCURL, "chat_service", up.chatService)
	}
	return checkChatServiceAtStart(ctx, up.dir, up.chatService, a.log)
}

// newServices makes OAuth, the outbox worker, the projects service and the
// live-updates hub.
func (a *app) newServices() error {
	cfg, chatService := a.cfg, a.up.chatService
	auth, err := oauth.New(oauth.Config{
		PublicURL:     a.publicURL,
		Sandbox:       cfg.Sandbox,
		Scopes:        cfg.Scopes,
		ClientKey:     cfg.ClientKey,
		EncryptionKey: cfg.EncryptionKey,
		Directory:     a.up.dir,
		HTTPClient:    a.up.httpClient,
		Logger:        a.log.With("component", "oauth"),
		OnRefresh:     a.metrics.TokenRefreshed,
	}, a.db)
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	a.auth = auth
	// One way to a chat client for the pages, live updates and the outbox,
	// with one rate-limit gate: a wait any of them learns holds for all.
	a.chats = chataccess.New(auth, chatService, chatproxy.NewGate(nil),
		append(a.refAlarm.options(), chatproxy.WithModerationService(a.up.moderation))...)
	// Change-request DMs: the outbox worker sends through the senders'
	// stored OAuth sessions (the same live sessions the pages use).
	oc := cfg.Outbox
	oc.DB, oc.Directory, oc.Logger = a.db, a.up.dir, a.log
	oc.Sender, oc.OnDelivered = outboxSender{a.chats}, a.metrics.Delivered
	if a.outbox, err = notify.New(oc); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	a.metrics.WatchOutbox(a.outbox)
	a.projects, err = projects.NewService(projects.Config{
		DB:          a.db,
		Authority:   cfg.NSIDAuthority,
		BaseURL:     a.publicURL,
		NotifierDID: cfg.NotifierDID,
		OnEnqueue:   a.outbox.Wake,
		Sessions:    oauthRepos{auth},
		Logger:      a.log,
	})
	if err != nil {
		return fmt.Errorf("projects: %w", err)
	}
	return nil
}

// newHandler makes the HTTP layer: the pages of projects and of DMs, the
// latter with live updates from one getLog poller per signed-in user; both
// get their chat clients from a.chats.
func (a *app) newHandler() (http.Handler, error) {
	cfg := a.cfg
	secure := publicURLIsHTTPS(a.publicURL)
	lc := cfg.Live
	a.pacer = budget.NewPacer(a.up.budget, 0)
	lc.Source, lc.Pacer = liveLogSource(a.chats, a.pacer), livePacer{a.pacer}
	lc.Logger = a.log.With("component", "live")
	if db.DialectOf(a.db) == db.Postgres {
		// Several instances may share the database: one polls each user.
		lc.Cluster = livepg.New(a.db, cfg.DBPath, livepg.Options{Logger: lc.Logger})
	}
	a.hub = live.New(lc)
	a.metrics.WatchHub(a.hub)
	a.tokens = sendtokens.New(a.db, nil, a.log.With("component", "sendtokens"))
	hcfg := handlers.Config{
		Auth:         a.auth,
		Sessions:     websession.New(cfg.HashKey, cfg.BlockKey, secure),
		PublicURL:    a.publicURL,
		ImageOrigins: a.up.imageOrigins,
		HSTS:         secure && !cfg.Sandbox,
		Health:       a.db.PingContext,
		Logger:       a.log,
		Projects: &handlers.Projects{
			Service: a.projects, Clients: a.auth, Outbox: a.outbox, Directory: a.up.dir,
		},
		OnSignIn:       a.onSignIn,
		PageDeadline:   cfg.Pages.Deadline,
		SignInDeadline: cfg.Pages.SignInDeadline,
		DMs: &handlers.DMs{
			Chats:           handlers.NewChatClients(a.chats),
			Directory:       a.up.dir,
			Hub:             a.hub,
			UpstreamTimeout: cfg.Pages.ChatTimeout,
			CountsTTL:       cfg.Pages.CountsTTL,
			ModerationName:  moderationName(a.up.moderation, a.up.sandbox != nil),
			TokenKey:        sendFormKey(cfg.EncryptionKey),
			Tokens:          a.tokens,
		},
	}
	if !cfg.loopback() {
		hcfg.ClientDocs = a.auth
	}
	return handlers.New(hcfg)
}

// sendFormKey is the key of the send forms' tokens, derived from the
// encryption key, which every instance on one database shares: a form
// rendered by one instance is accepted by another.
func sendFormKey(encryptionKey []byte) []byte {
	m := hmac.New(sha256.New, encryptionKey)
	m.Write([]byte("skydm send-form tokens"))
	return m.Sum(nil)
}

// onSignIn resumes the DMs parked until acct signed in again and wakes the
// reconciler: change requests cut off mid-filing may wait for this session.
func (a *app) onSignIn(ctx context.Context, acct websession.Account) {
	if err := a.outbox.Resume(ctx, acct.DID); err != nil {
		a.log.ErrorContext(ctx, "resuming parked DMs after sign-in", "did", acct.DID.String(), "err", err)
	}
	a.projects.WakeReconciler()
}

// newServer returns the HTTP server of h; requests' contexts are based on
// ctx without its cancellation (shutdown ends them gracefully).
func (a *app) newServer(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Longer than every request deadline (-page-deadline, -sign-in-deadline:
		// at most 10 s and 15 s), so the answer to a request cut off by its deadline
		// is always written; long-lived responses (SSE) extend it with
		// http.ResponseController.
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// close closes the database and the listener, those that are open.
func (a *app) close() {
	if a.db != nil {
		a.db.Close()
	}
	if a.ln != nil {
		a.ln.Close()
	}
	if a.metricsLn != nil {
		a.metricsLn.Close()
	}
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

// moderationName names the moderation service did in the report pages
// ("" for Bluesky's: the pages' default name).
func moderationName(did string, sandbox bool) string {
	switch {
	case did == chatproxy.DefaultModerationService:
		return ""
	case sandbox:
		return "the sandbox's moderation service (devchat)"
	}
	return "the moderation service " + did
}
