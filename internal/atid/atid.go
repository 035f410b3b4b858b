// Package atid builds the identity directories skydm resolves handles and
// DIDs with: the production one (DNS and HTTPS well-known handles, the public
// PLC directory) and the sandbox one, which resolves everything through the
// loopback PLC and PDS and exists only under the explicit sandbox flag.
package atid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// maxDocBytes caps a DID document or handle-resolution response.
const maxDocBytes = 256 << 10

// NewProduction returns the directory used in production: indigo's
// BaseDirectory (DNS TXT and HTTPS well-known handles, plc.directory, did:web
// over https) with every HTTP request going through client, behind a cache.
func NewProduction(client *http.Client) identity.Directory {
	base := &identity.BaseDirectory{
		HTTPClient:            *client,
		TryAuthoritativeDNS:   true,
		SkipDNSDomainSuffixes: []string{".bsky.social"},
		UserAgent:             "skydm",
	}
	return identity.NewCacheDirectory(base, 10_000, 24*time.Hour, 2*time.Minute, 5*time.Minute)
}

// NewSandbox returns a directory for the loopback network: did:plc documents
// come from plcURL, did:web:localhost%3APORT documents over plain http from
// that port, and handles (the sandbox's *.test) from the PDS at pdsURL via
// com.atproto.identity.resolveHandle. Handles are still checked both ways: a
// DID whose document claims a handle that does not resolve back to it gets
// handle.invalid, as in production. Lookups are cached for a short time.
func NewSandbox(plcURL, pdsURL string, client *http.Client) identity.Directory {
	d := &sandboxDirectory{
		plc:    strings.TrimRight(plcURL, "/"),
		pds:    strings.TrimRight(pdsURL, "/"),
		client: client,
	}
	return identity.NewCacheDirectory(d, 1_000, 30*time.Second, time.Second, time.Second)
}

type sandboxDirectory struct {
	plc, pds string
	client   *http.Client
}

var _ identity.Directory = (*sandboxDirectory)(nil)

// ResolveHandle asks the sandbox PDS which DID a handle belongs to.
func (d *sandboxDirectory) ResolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error) {
	h = h.Normalize()
	if h.IsInvalidHandle() {
		return "", fmt.Errorf("can not resolve handle: %w", identity.ErrInvalidHandle)
	}
	u := d.pds + "/xrpc/com.atproto.identity.resolveHandle?handle=" + url.QueryEscape(h.String())
	var out struct {
		DID string `json:"did"`
	}
	status, err := d.getJSON(ctx, u, &out)
	switch {
	case status == http.StatusBadRequest || status == http.StatusNotFound:
		return "", fmt.Errorf("%w: %s", identity.ErrHandleNotFound, h)
	case err != nil:
		return "", fmt.Errorf("%w: %w", identity.ErrHandleResolutionFailed, err)
	}
	did, err := syntax.ParseDID(out.DID)
	if err != nil {
		return "", fmt.Errorf("%w: PDS returned an invalid DID: %w", identity.ErrHandleResolutionFailed, err)
	}
	return did, nil
}

// ResolveDID fetches the DID document of a did:plc from the sandbox PLC, or
// of a did:web on localhost over http.
func (d *sandboxDirectory) ResolveDID(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	var u string
	switch did.Method() {
	case "plc":
		u = d.plc + "/" + did.String()
	case "web":
		host, err := url.PathUnescape(did.Identifier())
		if err != nil || !(host == "localhost" || strings.HasPrefix(host, "localhost:")) {
			return nil, fmt.Errorf("%w: sandbox resolves only did:web on localhost, not %s", identity.ErrDIDResolutionFailed, did)
		}
		u = "http://" + host + "/.well-known/did.json"
	default:
		return nil, fmt.Errorf("%w: unsupported DID method %q", identity.ErrDIDResolutionFailed, did.Method())
	}
	var doc identity.DIDDocument
	status, err := d.getJSON(ctx, u, &doc)
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		return nil, fmt.Errorf("%w: %s", identity.ErrDIDNotFound, did)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", identity.ErrDIDResolutionFailed, err)
	}
	if doc.DID != did {
		return nil, fmt.Errorf("%w: document is for %s, not %s", identity.ErrDIDResolutionFailed, doc.DID, did)
	}
	return &doc, nil
}

// LookupHandle resolves a handle and checks that the DID's document claims it.
func (d *sandboxDirectory) LookupHandle(ctx context.Context, h syntax.Handle) (*identity.Identity, error) {
	h = h.Normalize()
	did, err := d.ResolveHandle(ctx, h)
	if err != nil {
		return nil, err
	}
	doc, err := d.ResolveDID(ctx, did)
	if err != nil {
		return nil, err
	}
	ident := identity.ParseIdentity(doc)
	declared, err := ident.DeclaredHandle()
	if err != nil {
		return nil, fmt.Errorf("could not verify handle/DID match: %w", err)
	}
	if declared != h {
		return nil, fmt.Errorf("%w: %s != %s", identity.ErrHandleMismatch, declared, h)
	}
	ident.Handle = declared
	return &ident, nil
}

// LookupDID resolves a DID and checks its declared handle both ways; a handle
// that does not resolve back gives handle.invalid, not an error.
func (d *sandboxDirectory) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	doc, err := d.ResolveDID(ctx, did)
	if err != nil {
		return nil, err
	}
	ident := identity.ParseIdentity(doc)
	declared, err := ident.DeclaredHandle()
	switch {
	case errors.Is(err, identity.ErrHandleNotDeclared):
		ident.Handle = syntax.HandleInvalid
	case err != nil:
		return nil, fmt.Errorf("could not parse handle from DID document: %w", err)
	default:
		back, err := d.ResolveHandle(ctx, declared)
		switch {
		case errors.Is(err, identity.ErrHandleNotFound):
			ident.Handle = syntax.HandleInvalid
		case err != nil:
			return nil, err
		case back != did:
			ident.Handle = syntax.HandleInvalid
		default:
			ident.Handle = declared
		}
	}
	return &ident, nil
}

// Lookup dispatches on the kind of identifier.
func (d *sandboxDirectory) Lookup(ctx context.Context, a syntax.AtIdentifier) (*identity.Identity, error) {
	if h, err := a.AsHandle(); err == nil {
		return d.LookupHandle(ctx, h)
	}
	if did, err := a.AsDID(); err == nil {
		return d.LookupDID(ctx, did)
	}
	return nil, fmt.Errorf("at-identifier neither a handle nor a DID")
}

// Purge is a no-op: the sandbox directory keeps no cache of its own.
func (d *sandboxDirectory) Purge(ctx context.Context, a syntax.AtIdentifier) error { return nil }

// getJSON GETs u and decodes a JSON body of at most maxDocBytes into out. It
// returns the HTTP status (0 when no response arrived) and an error for any
// non-200 answer.
func (d *sandboxDirectory) getJSON(ctx context.Context, u string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil {
		return resp.StatusCode, err
	}
	if len(body) > maxDocBytes {
		return resp.StatusCode, fmt.Errorf("response from %s is larger than %d bytes", u, maxDocBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp.StatusCode, nil
}
