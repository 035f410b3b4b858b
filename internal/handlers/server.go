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

	"github.com/skydm/skydm/internal/handlers/dm"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/handlers/projectpages"
	"github.com/skydm/skydm/internal/handlers/signin"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/static"
)

// Auth is the part of the OAuth service the handlers use
// (*oauth.Service implements it); see signin.Auth.
type Auth = signin.Auth

// ClientDocs serves the confidential client's public documents; see
// signin.ClientDocs.
type ClientDocs = signin.ClientDocs

// Sessions is the browser's set of signed-in accounts; see
// signin.Sessions.
type Sessions = signin.Sessions

// Projects is what the project and change-request pages need; see
// projectpages.Config.
type Projects = projectpages.Config

// DMs is what the DM pages need; see dm.Config.
type DMs = dm.Config

// NewChatClients returns the chatproxy-backed ChatClients of the DM pages;
// see dm.NewChatClients.
func NewChatClients(access dm.Access) dm.ChatClients { return dm.NewChatClients(access) }

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
	// (package projectpages).
	Projects *Projects
	// OnSignIn, when set, is called after an account signed in on this
	// browser (e.g. to resume DMs parked until it signed in again).
	OnSignIn func(ctx context.Context, acct websession.Account)
	// DMs, when set, serves the inbox, conversations and live updates
	// (package dm); without it / is the start page.
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
	projects   *projectpages.Pages
	signin     *signin.Pages
	onSignIn   func(ctx context.Context, acct websession.Account)
	dm         *dm.Pages
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
		onSignIn:   cfg.OnSignIn,
	}
	var now func() time.Time
	if cfg.DMs != nil {
		now = cfg.DMs.Now
	}
	s.kit = kit.New(cfg.Logger, a, now, cfg.DMs != nil)
	s.signin = signin.New(s.kit, cfg.Auth, cfg.Sessions, cfg.ClientDocs, cfg.OnSignIn)
	s.deadlines.page = upTo(cfg.PageDeadline, kit.PageDeadline)
	s.deadlines.signIn = upTo(cfg.SignInDeadline, kit.SignInDeadline)
	if cfg.Projects != nil {
		if s.projects, err = projectpages.New(s.kit, *cfg.Projects); err != nil {
			return nil, err
		}
	}
	if cfg.DMs != nil {
		dms := *cfg.DMs
		if dms.PublicURL == "" {
			dms.PublicURL = cfg.PublicURL
		}
		if s.dm, err = dm.New(s.kit, dms, cfg.Sessions.Current); err != nil {
			return nil, err
		}
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
