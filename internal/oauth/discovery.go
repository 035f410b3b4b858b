package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/safehttp"
)

// maxMetadataBytes caps an OAuth metadata document.
const maxMetadataBytes = 64 << 10

// policy decides which server URLs discovery may use. Production: https,
// a hostname (not a refused IP literal), no explicit port, no path, query,
// fragment or credentials — what indigo's Resolver accepts. Sandbox adds
// exactly http://localhost[:port] (the loopback PDS); it is never enabled
// in production.
type policy struct {
	sandbox bool
}

// origin checks raw as a server origin and returns it normalised as
// scheme://host[:port] (no trailing slash).
func (p policy) origin(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Path != "" && u.Path != "/" {
		return "", fmt.Errorf("server URL %q has a path", raw)
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("server URL %q has a query or fragment", raw)
	}
	if err := p.checkHost(u); err != nil {
		return "", err
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// didWeb checks the host a did:web names (its first segment, a port
// %3A-encoded) as a server URL's host, so a DID naming an IP address or a
// numeric, local-only or port-qualified name is refused before any lookup.
// The sandbox's did:web:localhost%3APORT is allowed only in the sandbox.
func (p policy) didWeb(did syntax.DID) error {
	seg, _, _ := strings.Cut(did.Identifier(), ":")
	host, err := url.PathUnescape(seg)
	if err != nil || host == "" || strings.ContainsAny(host, "/?#@") {
		return fmt.Errorf("did:web host %q is not a host name", seg)
	}
	u := &url.URL{Scheme: "https", Host: host}
	if p.sandbox && u.Hostname() == "localhost" {
		u.Scheme = "http"
	}
	return p.checkHost(u)
}

// endpoint checks a full endpoint URL (path allowed, no fragment).
func (p policy) endpoint(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Fragment != "" {
		return fmt.Errorf("endpoint %q has a fragment", raw)
	}
	return p.checkHost(u)
}

func (p policy) checkHost(u *url.URL) error {
	if u.User != nil {
		return fmt.Errorf("URL %q carries credentials", u.Redacted())
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("URL %q has no host", u.Redacted())
	}
	if p.sandbox && u.Scheme == "http" && host == "localhost" {
		return nil
	}
	if u.Scheme != "https" {
		return fmt.Errorf("URL %q is not https", u.Redacted())
	}
	if u.Port() != "" {
		return fmt.Errorf("URL %q has an explicit port", u.Redacted())
	}
	if !p.sandbox {
		if err := safehttp.CheckURLHost(host); err != nil {
			return err
		}
		if localTLD(host) {
			return fmt.Errorf("URL %q names a local-only host", u.Redacted())
		}
	}
	return nil
}

// localTLD reports hostnames that never resolve on the public internet.
func localTLD(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	tld := host[strings.LastIndex(host, ".")+1:]
	switch tld {
	case "localhost", "local", "internal", "arpa", "invalid", "example", "onion", "alt", "test", "home", "lan":
		return true
	}
	return false
}

// getJSON fetches u (no redirects) and decodes a JSON body of at most
// maxMetadataBytes into out; any status other than 200 is an error.
func getJSON(ctx context.Context, c *http.Client, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	noRedirect := *c
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxMetadataBytes {
		return fmt.Errorf("GET %s: document larger than %d bytes", u, maxMetadataBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: bad JSON: %w", u, err)
	}
	return nil
}

type protectedResource struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
}

// resolveAuthServerURL reads a resource server's (PDS's)
// /.well-known/oauth-protected-resource and returns its first
// authorization server's origin, checked against the policy.
func (s *Service) resolveAuthServerURL(ctx context.Context, hostURL string) (string, error) {
	origin, err := s.policy.origin(hostURL)
	if err != nil {
		return "", err
	}
	var doc protectedResource
	if err := getJSON(ctx, s.httpClient, origin+"/.well-known/oauth-protected-resource", &doc); err != nil {
		return "", err
	}
	if doc.Resource != "" {
		res, err := s.policy.origin(doc.Resource)
		if err != nil || res != origin {
			return "", fmt.Errorf("protected resource document of %s names resource %q", origin, doc.Resource)
		}
	}
	if len(doc.AuthorizationServers) == 0 {
		return "", fmt.Errorf("protected resource document of %s names no authorization server", origin)
	}
	return s.policy.origin(doc.AuthorizationServers[0])
}

// resolveAuthServerMetadata fetches and validates an authorization server's
// metadata; the issuer must be exactly the origin it was fetched from.
func (s *Service) resolveAuthServerMetadata(ctx context.Context, serverURL string) (*atoauth.AuthServerMetadata, error) {
	origin, err := s.policy.origin(serverURL)
	if err != nil {
		return nil, err
	}
	var m atoauth.AuthServerMetadata
	if err := getJSON(ctx, s.httpClient, origin+"/.well-known/oauth-authorization-server", &m); err != nil {
		return nil, err
	}
	if err := s.policy.validateAuthServerMetadata(&m, origin); err != nil {
		return nil, err
	}
	return &m, nil
}

// validateAuthServerMetadata repeats every check of indigo's
// AuthServerMetadata.Validate, with the policy deciding which URLs are
// acceptable (indigo's accepts https without a port only), and checks all
// endpoints, not only the authorization endpoint.
func (p policy) validateAuthServerMetadata(m *atoauth.AuthServerMetadata, origin string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", atoauth.ErrInvalidAuthServerMetadata, fmt.Sprintf(format, args...))
	}
	if m.Issuer == "" {
		return bad("empty issuer")
	}
	if _, err := p.origin(m.Issuer); err != nil {
		return bad("issuer URL %q: %v", m.Issuer, err)
	}
	if m.Issuer != origin {
		return bad("issuer %q does not match %s", m.Issuer, origin)
	}
	for name, e := range map[string]string{
		"authorization_endpoint":                m.AuthorizationEndpoint,
		"token_endpoint":                        m.TokenEndpoint,
		"pushed_authorization_request_endpoint": m.PushedAuthorizationRequestEndpoint,
	} {
		if e == "" {
			return bad("%s is required", name)
		}
		if err := p.endpoint(e); err != nil {
			return bad("%s: %v", name, err)
		}
	}
	if ae, _ := url.Parse(m.AuthorizationEndpoint); ae.RawQuery != "" || ae.ForceQuery {
		return bad("authorization_endpoint has a query")
	}
	if m.RevocationEndpoint != "" {
		if err := p.endpoint(m.RevocationEndpoint); err != nil {
			return bad("revocation_endpoint: %v", err)
		}
	}
	need := []struct {
		list []string
		v    string
		name string
	}{
		{m.ResponseTypesSupported, "code", "response_types_supported"},
		{m.GrantTypesSupported, "authorization_code", "grant_types_supported"},
		{m.GrantTypesSupported, "refresh_token", "grant_types_supported"},
		{m.CodeChallengeMethodsSupported, "S256", "code_challenge_methods_supported"},
		{m.TokenEndpointAuthMethodsSupoorted, "none", "token_endpoint_auth_methods_supported"},
		{m.TokenEndpointAuthMethodsSupoorted, "private_key_jwt", "token_endpoint_auth_methods_supported"},
		{m.TokenEndpointAuthSigningAlgValuesSupported, "ES256", "token_endpoint_auth_signing_alg_values_supported"},
		{m.ScopesSupported, "atproto", "scopes_supported"},
		{m.DPoPSigningAlgValuesSupported, "ES256", "dpop_signing_alg_values_supported"},
	}
	for _, n := range need {
		if !slices.Contains(n.list, n.v) {
			return bad("%s must include %q", n.name, n.v)
		}
	}
	if slices.Contains(m.TokenEndpointAuthSigningAlgValuesSupported, "none") {
		return bad("token_endpoint_auth_signing_alg_values_supported must not include none")
	}
	if !m.AuthorizationReponseISSParameterSupported {
		return bad("authorization_response_iss_parameter_supported must be true")
	}
	if !m.RequirePushedAuthorizationRequests {
		return bad("require_pushed_authorization_requests must be true")
	}
	if m.RequireRequestURIRegistration != nil && !*m.RequireRequestURIRegistration {
		return bad("require_request_uri_registration must be undefined or true")
	}
	if !m.ClientIDMetadataDocumentSupported {
		return bad("client_id_metadata_document_supported must be true")
	}
	return nil
}
