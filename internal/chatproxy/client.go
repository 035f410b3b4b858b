package chatproxy

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	lexutil "github.com/bluesky-social/indigo/lex/util"

	"github.com/skydm/skydm/internal/apperr"
)

// Client makes chat.bsky.* calls for one account through its PDS. It is
// cheap to make (one per request is fine) and safe for concurrent use.
type Client struct {
	api       *atclient.APIClient
	ref       string
	now       func() time.Time
	recipient string
	refWrong  func(ref string, err error)
	gate      *Gate
	gateKey   string
	modDID    string // reports (report.go); "" → DefaultModerationService
}

// Option configures a Client.
type Option func(*Client)

// WithClock sets the clock used to turn a relative Retry-After into RetryAt.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *Client) {
		if now != nil {
			c.now = now
		}
	}
}

// WithServiceRefProblem sets a function called, with the service ref and
// the error, whenever a call fails because the PDS cannot resolve the
// service ref (ReasonServiceRefWrong): a mistake in skydm's configuration,
// not an outage, which the operator must hear about. It is called on every
// such failure; report decides how often to log.
func WithServiceRefProblem(report func(ref string, err error)) Option {
	return func(c *Client) { c.refWrong = report }
}

// WithGate makes the Client honour and feed g for the account key (its
// DID): while the account's PDS or chat service has said to wait, calls
// fail at once with RateLimited (see Gate).
func WithGate(g *Gate, key string) Option {
	return func(c *Client) {
		c.gate, c.gateKey = g, key
	}
}

// New returns a Client that sends every call through api with the
// Atproto-Proxy header set to serviceRef (e.g. "did:web:api.bsky.chat#bsky_chat").
// It does not change api: it works on a shallow copy (api.WithService) whose
// HTTP client is a copy of api.Client with a transport that records response
// rate-limit headers (see ratelimit.go); api.Auth (OAuth DPoP session or
// password session) is kept, and uses that client. api must not be nil. An
// empty serviceRef is not rejected here; every call then fails as
// Unavailable (the PDS answers "No service configured").
func New(api *atclient.APIClient, serviceRef string, opts ...Option) *Client {
	c := &Client{now: time.Now, ref: serviceRef}
	for _, o := range opts {
		o(c)
	}
	base := *api
	if base.Headers == nil {
		// WithService clones the headers and sets one; a nil map (OAuth
		// sessions without a User-Agent) would panic.
		base.Headers = http.Header{}
	}
	proxied := base.WithService(serviceRef)
	now := c.now
	proxied.Client = wrapHTTPClient(api.Client, func() time.Time { return now() })
	c.api = proxied
	return c
}

// ForRecipient returns a copy of c whose error messages about the other
// person name them ("Carol only accepts messages from people they follow.")
// instead of saying "This account". name is a display name or handle; it is
// cleaned of control characters and shortened. An empty name gives the
// generic wording.
func (c *Client) ForRecipient(name string) *Client {
	cp := *c
	cp.recipient = cleanName(name)
	return &cp
}

// do runs one call with a fresh response-metadata holder in its context and
// maps its error.
func (c *Client) do(ctx context.Context, call func(ctx context.Context) error) error {
	return c.doVia(ctx, c.ref, call)
}

// doVia is do for a call proxied to the service ref (the chat service's,
// or the moderation service's for reports): a ServiceRefWrong failure is
// reported to the operator hook with ref.
func (c *Client) doVia(ctx context.Context, ref string, call func(ctx context.Context) error) error {
	if c.gate != nil {
		if err := c.gate.check(c.gateKey); err != nil {
			return err
		}
	}
	cctx, meta := withRespMeta(ctx)
	err := c.whichFailed(ctx, mapError(call(cctx), meta, c.recipient, c.now))
	if c.gate != nil {
		c.gate.record(c.gateKey, err)
	}
	if c.refWrong != nil && apperr.ReasonOf(err) == ReasonServiceRefWrong {
		c.refWrong(ref, err)
	}
	return err
}

// query runs a GET and returns the raw JSON body.
func (c *Client) query(ctx context.Context, nsid string, params map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	err := c.do(ctx, func(ctx context.Context) error {
		return c.api.LexDo(ctx, lexutil.Query, "", nsid, params, nil, &buf)
	})
	if err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func invalid(k kind, recipient string) error {
	return &apperr.Error{Code: k.code, Reason: k.reason, Message: k.msg(recipient)}
}

func needConvoID(id string) error {
	if strings.TrimSpace(id) == "" {
		return invalid(kConvoNotFound, "")
	}
	return nil
}

func needMessageID(id string) error {
	if strings.TrimSpace(id) == "" {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "No message was given."}
	}
	return nil
}

func needMembers(members []string) error {
	if len(members) == 0 || len(members) > 10 {
		return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "Choose who to message."}
	}
	for _, m := range members {
		if !strings.HasPrefix(m, "did:") {
			return &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidRequest, Message: "Choose who to message."}
		}
	}
	return nil
}

// clampLimit keeps a page size in the lexicon range 1..100; 0 (or less)
// leaves it to the server.
func clampLimit(n int64) int64 {
	switch {
	case n <= 0:
		return 0
	case n > 100:
		return 100
	}
	return n
}

func setStr(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

type missingField string

func (f missingField) Error() string { return "missing field " + string(f) }

func errMissing(field string) error { return missingField(field) }
