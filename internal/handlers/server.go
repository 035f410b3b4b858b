package handlers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/static"
)

// Auth is the part of the OAuth service the handlers use
// (*oauth.Service implements it). Every error is an *apperr.Error with a
// message fit for people.
type Auth interface {
	// StartLogin resolves identifier, starts an authorization request, binds
	// it to this browser with a short-lived cookie and returns the URL of the
	// authorization server's sign-in page.
	StartLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, identifier string) (authorizeURL string, err error)
	// FinishLogin completes the callback and returns the signed-in account.
	FinishLogin(ctx context.Context, w http.ResponseWriter, r *http.Request) (websession.Account, error)
	// Logout revokes the session's tokens and forgets the session.
	Logout(ctx context.Context, did syntax.DID, sessionID string) error
	// SessionActive reports whether the OAuth session still exists (it
	// has not ended: signed out, revoked, expired or refused by the auth
	// server), without asking the network. An error means it can't tell.
	SessionActive(ctx context.Context, did syntax.DID, sessionID string) (bool, error)
}

// ClientDocs serves the confidential client's public documents
// (*oauth.Service implements it).
type ClientDocs interface {
	ClientMetadata() atoauth.ClientMetadata
	JWKS() atoauth.JWKS
}

// Sessions is the browser's set of signed-in accounts
// (*websession.Store implements it).
type Sessions interface {
	Current(r *http.Request) (websession.Account, bool)
	// Load is Current, every signed-in account and Touch (idle expiry)
	// with one decoding of the cookie; accounts keep refuses are signed
	// out of the browser first.
	Load(w http.ResponseWriter, r *http.Request, keep func(websession.Account) bool) (websession.Account, bool, []websession.Account, error)
	Add(w http.ResponseWriter, r *http.Request, acct websession.Account) error
	Switch(w http.ResponseWriter, r *http.Request, did syntax.DID) error
	Remove(w http.ResponseWriter, r *http.Request, did syntax.DID) error
}

// Config is what New needs.
type Config struct {
	Auth     Auth
	Sessions Sessions
	// ClientDocs, when set, is served at /oauth-client-metadata.json and
	// /oauth/jwks.json (confidential client). When nil (loopback client in
	// the sandbox) both answer 404.
	ClientDocs ClientDocs
	// PublicURL is the app's origin as browsers see it, e.g.
	// "https://skydm.example"; it is trusted as an Origin for state-changing
	// requests.
	PublicURL string
	// ImageOrigins are the origins avatars may be loaded from (CSP img-src),
	// e.g. "https://cdn.bsky.app", or the sandbox PDS "http://localhost:2583".
	ImageOrigins []string
	// HSTS sends Strict-Transport-Security (production over https).
	HSTS bool
	// Health reports whether the app can serve (e.g. pings the database);
	// nil → always healthy.
	Health func(ctx context.Context) error
	// Static holds the files served under /static/; nil → the embedded ones.
	Static fs.FS
	// Projects, when set, serves the project and change-request pages
	// (projects.go).
	Projects *Projects
	// OnSignIn, when set, is called after an account signed in on this
	// browser (e.g. to resume DMs parked until it signed in again).
	OnSignIn func(ctx context.Context, acct websession.Account)
	// DMs, when set, serves the inbox, conversations and live updates
	// (dm.go); without it / is the start page.
	DMs *DMs
	// PageDeadline is the one deadline of every page and form, from the
	// request to the answer; 0 or more than 10 s → 10 s. Tests shorten it.
	PageDeadline time.Duration
	// SignInDeadline is the deadline of POST /oauth/login and GET
	// /oauth/callback; 0 or more than 15 s → 15 s.
	SignInDeadline time.Duration

	Logger *slog.Logger
}

// Server is skydm's HTTP handler: every route behind the middleware chain.
type Server struct {
	auth       Auth
	sessions   Sessions
	clientDocs ClientDocs
	health     func(ctx context.Context) error
	kit        *kit.Kit
	csp        kit.CSP
	hsts       bool
	publicURL  string
	handler    http.Handler
	projects   *Projects
	onSignIn   func(ctx context.Context, acct websession.Account)
	dm         *dmState
	deadlines  struct{ page, signIn time.Duration }
}

// New returns the app's handler with every route and middleware in place.
// It returns an error when Auth, Sessions or Logger is missing, or when
// PublicURL, an image origin or a static file cannot be used.
func New(cfg Config) (*Server, error) {
	if cfg.Auth == nil || cfg.Sessions == nil || cfg.Logger == nil {
		return nil, errors.New("handlers: Auth, Sessions and Logger are required")
	}
	if _, err := origin(cfg.PublicURL); err != nil {
		return nil, fmt.Errorf("handlers: public URL: %w", err)
	}
	for _, o := range cfg.ImageOrigins {
		if got, err := origin(o); err != nil || got != o {
			return nil, fmt.Errorf("handlers: image origin %q must be scheme://host[:port]", o)
		}
	}
	files := cfg.Static
	if files == nil {
		files = static.FS()
	}
	a, err := kit.LoadAssets(files)
	if err != nil {
		return nil, fmt.Errorf("handlers: static files: %w", err)
	}
	s := &Server{
		auth:       cfg.Auth,
		sessions:   cfg.Sessions,
		clientDocs: cfg.ClientDocs,
		health:     cfg.Health,
		csp:        kit.NewCSP(cfg.ImageOrigins),
		hsts:       cfg.HSTS,
		publicURL:  cfg.PublicURL,
		projects:   cfg.Projects,
		onSignIn:   cfg.OnSignIn,
	}
	var now func() time.Time
	if cfg.DMs != nil {
		now = cfg.DMs.Now
	}
	s.kit = kit.New(cfg.Logger, a, now, cfg.DMs != nil)
	s.deadlines.page = upTo(cfg.PageDeadline, kit.PageDeadline)
	s.deadlines.signIn = upTo(cfg.SignInDeadline, kit.SignInDeadline)
	if s.projects != nil {
		if err := s.projects.check(); err != nil {
			return nil, err
		}
	}
	if cfg.DMs != nil {
		if err := cfg.DMs.check(); err != nil {
			return nil, err
		}
		s.dm = newDMState(*cfg.DMs)
	}
	s.handler, err = s.routes()
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP serves a request through the middleware chain and the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// upTo returns d when it is in (0, limit], else limit.
func upTo(d, limit time.Duration) time.Duration {
	if d <= 0 || d > limit {
		return limit
	}
	return d
}

// origin returns scheme://host[:port] of an absolute http(s) URL.
func origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}
