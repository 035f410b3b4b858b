// Package oauth is skydm's atproto OAuth client, built on indigo's
// atproto/auth/oauth and closing its gaps:
//
//   - a SQLite ClientAuthStore (Store) with tokens, PKCE verifiers and DPoP
//     keys encrypted at rest, create-only auth requests that live 10 minutes,
//     and background collection of expired rows (Service.Run);
//   - discovery under an explicit policy: https only in production, plus
//     http://localhost[:port] only under Config.Sandbox;
//   - StartLogin saves the auth request (a failure is an error) and binds
//     `state` to the browser with a short-lived cookie; FinishLogin refuses
//     a callback from another browser, consumes the auth request before the
//     code exchange (a replayed callback never redeems a code twice), and
//     checks iss, sub and the issuer's authority over the DID;
//   - one live *ClientSession per (DID, session id) in the process with a
//     per-session refresh lock, so concurrent requests with an expired token
//     refresh it exactly once (the reference PDS deletes a session whose
//     refresh token is replayed);
//   - every message a person may see is an *apperr.Error.
//
// Two client modes: a confidential web client (Config.ClientKey set:
// private_key_jwt with ES256, client id PublicURL/oauth-client-metadata.json)
// and, only in the sandbox, the loopback public client
// (http://localhost?redirect_uri=http://127.0.0.1:PORT/oauth/callback&scope=…).
package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/identity"

	"github.com/skydm/skydm/internal/safehttp"
)

const userAgent = "skydm (+atproto OAuth)"

// Scope strings.
const (
	ScopeAtproto = "atproto"
	ScopeGeneric = "transition:generic"
	ScopeChat    = "transition:chat.bsky"
)

// DefaultScopes is what skydm asks for when Config.Scopes is empty.
func DefaultScopes() []string { return []string{ScopeAtproto, ScopeGeneric, ScopeChat} }

// Paths under PublicURL that the web layer must serve.
const (
	CallbackPath = "/oauth/callback"
	MetadataPath = "/oauth-client-metadata.json"
	JWKSPath     = "/oauth/jwks.json"
)

// Config configures a Service.
type Config struct {
	// PublicURL is where browsers reach skydm: "http://127.0.0.1:PORT" for
	// the loopback client (sandbox only) or "https://host[:port]" for the
	// confidential client.
	PublicURL string
	// Sandbox allows discovery over http://localhost[:port] and the
	// loopback client. Never in production.
	Sandbox bool
	// Scopes requested and declared; default DefaultScopes(). Must include
	// "atproto".
	Scopes []string
	// ClientKey is the ES256 (P-256) client assertion key; nil selects the
	// loopback public client, allowed only with Sandbox.
	ClientKey atcrypto.PrivateKey
	// ClientKeyID is the "kid" of ClientKey; "" derives one with KeyID.
	ClientKeyID string
	// InlineJWKS puts the public key in the client metadata ("jwks")
	// instead of pointing at JWKSPath ("jwks_uri").
	InlineJWKS bool
	// EncryptionKey is 32 bytes for AES-256-GCM of secrets at rest.
	EncryptionKey []byte
	// Directory resolves handles and DIDs (atid.NewProduction or
	// atid.NewSandbox).
	Directory identity.Directory
	// HTTPClient carries every request to auth servers and PDSes. nil: a
	// safehttp client (production policy; sandbox: loopback and http
	// allowed).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// OnRefresh, when set, is called after each refresh grant sent, with
	// its error (nil when the auth server issued new tokens): metrics.
	OnRefresh func(err error)
}

// Service is the OAuth client. Create with New; safe for concurrent use.
type Service struct {
	cfg          Config
	publicURL    string
	secure       bool // cookies get Secure and the __Host- prefix
	policy       policy
	clientConfig *atoauth.ClientConfig
	app          *atoauth.ClientApp
	store        *Store
	sessionSaves sessionUpdater // s.store; a failing one in tests
	httpClient   *http.Client
	dir          identity.Directory
	log          *slog.Logger
	now          func() time.Time
	stateKey     []byte
	gcEvery      time.Duration
	saveRetryMin time.Duration // first wait before saving unsaved tokens again

	mu      sync.Mutex
	live    map[sessionKey]*liveSession
	closed  bool           // Close was called
	closing chan struct{}  // closed by Close
	bg      sync.WaitGroup // token save retries
}

// New validates cfg and returns a Service storing its state in db (opened
// and migrated by internal/db). It returns an error describing the first
// configuration problem: a PublicURL that does not fit the client mode, a
// missing key outside the sandbox, a non-P-256 key, an encryption key that
// is not 32 bytes, scopes without "atproto", or no Directory.
func New(cfg Config, db *sql.DB) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OnRefresh == nil {
		cfg.OnRefresh = func(error) {}
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = DefaultScopes()
	}
	if !slices.Contains(cfg.Scopes, ScopeAtproto) {
		return nil, errors.New("oauth: scopes must include \"atproto\"")
	}
	if cfg.Directory == nil {
		return nil, errors.New("oauth: Directory is required")
	}
	if len(cfg.EncryptionKey) != 32 {
		return nil, fmt.Errorf("oauth: EncryptionKey must be 32 bytes, got %d", len(cfg.EncryptionKey))
	}
	pub, err := url.Parse(strings.TrimRight(cfg.PublicURL, "/"))
	if err != nil || pub.Host == "" || pub.Path != "" || pub.RawQuery != "" || pub.Fragment != "" || pub.User != nil {
		return nil, fmt.Errorf("oauth: PublicURL %q must be scheme://host[:port] with no path", cfg.PublicURL)
	}
	publicURL := pub.Scheme + "://" + pub.Host
	callback := publicURL + CallbackPath

	var cc atoauth.ClientConfig
	if cfg.ClientKey == nil {
		if !cfg.Sandbox {
			return nil, errors.New("oauth: ClientKey is required outside the sandbox (the loopback client is for development only)")
		}
		if pub.Scheme != "http" || pub.Hostname() != "127.0.0.1" || pub.Port() == "" {
			return nil, fmt.Errorf("oauth: the loopback client needs PublicURL http://127.0.0.1:PORT, got %q", cfg.PublicURL)
		}
		cc = atoauth.NewLocalhostConfig(callback, cfg.Scopes)
	} else {
		if pub.Scheme != "https" {
			return nil, fmt.Errorf("oauth: the confidential client needs an https PublicURL, got %q", cfg.PublicURL)
		}
		if net.ParseIP(pub.Hostname()) != nil {
			return nil, errors.New("oauth: PublicURL must be a hostname, not an IP address")
		}
		cc = atoauth.NewPublicConfig(publicURL+MetadataPath, callback, cfg.Scopes)
		kid := cfg.ClientKeyID
		if kid == "" {
			if kid, err = KeyID(cfg.ClientKey); err != nil {
				return nil, fmt.Errorf("oauth: client key: %w", err)
			}
		}
		if err := cc.SetClientSecret(cfg.ClientKey, kid); err != nil {
			return nil, fmt.Errorf("oauth: client key: %w", err)
		}
	}
	cc.UserAgent = userAgent

	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = safehttp.NewClient(safehttp.Options{AllowPrivate: cfg.Sandbox, AllowHTTP: cfg.Sandbox})
	}
	store, err := NewStore(db, cfg.EncryptionKey, StoreOptions{Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, cfg.EncryptionKey)
	mac.Write([]byte("skydm oauth state cookie v1"))

	s := &Service{
		cfg:          cfg,
		publicURL:    publicURL,
		secure:       pub.Scheme == "https",
		policy:       policy{sandbox: cfg.Sandbox},
		clientConfig: &cc,
		store:        store,
		sessionSaves: store,
		httpClient:   httpClient,
		dir:          cfg.Directory,
		log:          cfg.Logger,
		now:          cfg.Now,
		stateKey:     mac.Sum(nil),
		gcEvery:      5 * time.Minute,
		saveRetryMin: time.Second,
		live:         make(map[sessionKey]*liveSession),
		closing:      make(chan struct{}),
	}
	s.app = &atoauth.ClientApp{
		Client:   httpClient,
		Resolver: &atoauth.Resolver{Client: httpClient, UserAgent: userAgent},
		Dir:      cfg.Directory,
		Config:   &cc,
		Store:    store,
	}
	return s, nil
}

// Store returns the SQLite ClientAuthStore the Service uses.
func (s *Service) Store() *Store { return s.store }

// ClientID returns the OAuth client id.
func (s *Service) ClientID() string { return s.clientConfig.ClientID }

// ClientMetadata returns the client metadata document, served at
// MetadataPath for the confidential client (the loopback client's metadata
// is implied by its client id, so this is informational there).
func (s *Service) ClientMetadata() atoauth.ClientMetadata {
	m := s.clientConfig.ClientMetadata()
	name := "skydm"
	m.ClientName = &name
	if s.clientConfig.IsConfidential() {
		uri := s.publicURL
		m.ClientURI = &uri
		if s.cfg.InlineJWKS {
			jwks := s.JWKS()
			m.JWKS = &jwks
		} else {
			ju := s.publicURL + JWKSPath
			m.JWKSURI = &ju
		}
	} else {
		native := "native"
		m.ApplicationType = &native
	}
	return m
}

// JWKS returns the public client key set, served at JWKSPath (empty for the
// loopback client).
func (s *Service) JWKS() atoauth.JWKS {
	j := s.clientConfig.PublicJWKS()
	for i := range j.Keys {
		j.Keys[i].Use = "sig"
	}
	return j
}

// Run deletes expired auth requests and sessions now and every few
// minutes until ctx is done, then returns nil. Failures are logged.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.gcEvery)
	defer t.Stop()
	for {
		ar, ss, err := s.store.DeleteExpired(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("oauth: deleting expired rows", "err", err)
		case ar+ss > 0:
			s.log.Info("oauth: deleted expired rows", "auth_requests", ar, "sessions", ss)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
