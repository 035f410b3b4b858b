package oauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/safehttp"
	"github.com/skydm/skydm/internal/websession"
)

// stateCookieTTL matches the auth request lifetime.
const stateCookieTTL = DefaultAuthRequestTTL

// loginTarget is a parsed sign-in identifier.
type loginTarget struct {
	handle syntax.Handle // set for a handle
	did    syntax.DID    // set for a DID
	server string        // set for a PDS/entryway URL (normalised origin)
}

const msgBadIdentifier = "That doesn't look like a handle. Enter a handle such as alice.bsky.social, a DID, or your provider's https:// address."

// msgRefusedAddress is what every refused destination says (an IP address,
// a numeric or local-only host name, a private network): permanent, so
// never "try again".
const msgRefusedAddress = "That address can't be used to sign in. Use your provider's address, such as https://bsky.social."

// errRefusedAddress is the error for a destination the policy refuses.
func errRefusedAddress(cause error) error {
	return newErr(apperr.Invalid, ReasonBadIdentifier, msgRefusedAddress, cause)
}

// parseIdentifier checks the syntax of what the person typed, with no
// network access: a handle (leading @ and case ignored), a DID, or a
// PDS/entryway URL.
func (s *Service) parseIdentifier(raw string) (loginTarget, error) {
	id := strings.TrimSpace(raw)
	if id == "" {
		return loginTarget{}, newErr(apperr.Invalid, ReasonBadIdentifier,
			"Enter your handle (such as alice.bsky.social) to sign in.", nil)
	}
	lower := strings.ToLower(id)
	if strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "http://") {
		origin, err := s.policy.origin(id)
		if err != nil {
			if strings.HasPrefix(lower, "http://") && !s.cfg.Sandbox {
				return loginTarget{}, newErr(apperr.Invalid, ReasonBadIdentifier, "Sign-in addresses must start with https://.", err)
			}
			return loginTarget{}, errRefusedAddress(err)
		}
		return loginTarget{server: origin}, nil
	}
	id = strings.TrimPrefix(id, "@")
	if strings.HasPrefix(lower, "did:") {
		did, err := syntax.ParseDID(id)
		if err != nil || (did.Method() != "plc" && did.Method() != "web") {
			return loginTarget{}, newErr(apperr.Invalid, ReasonBadIdentifier,
				"That doesn't look like a valid DID (did:plc:… or did:web:…).", err)
		}
		if did.Method() == "web" {
			if err := s.policy.didWeb(did); err != nil {
				return loginTarget{}, errRefusedAddress(err)
			}
		}
		return loginTarget{did: did}, nil
	}
	h, err := syntax.ParseHandle(strings.ToLower(id))
	if err != nil {
		return loginTarget{}, newErr(apperr.Invalid, ReasonBadIdentifier, msgBadIdentifier, err)
	}
	h = h.Normalize()
	if h.IsInvalidHandle() || (!s.cfg.Sandbox && (!h.AllowedTLD() || h.TLD() == "test")) {
		return loginTarget{}, newErr(apperr.Invalid, ReasonBadIdentifier, msgBadIdentifier, nil)
	}
	return loginTarget{handle: h}, nil
}

// lookupError maps a Directory failure to a message for people.
func lookupError(err error, what string) error {
	switch {
	case errors.Is(err, safehttp.ErrBlocked):
		return errRefusedAddress(err)
	case errors.Is(err, identity.ErrHandleNotFound), errors.Is(err, identity.ErrDIDNotFound):
		return newErr(apperr.NotFound, ReasonAccountNotFound,
			fmt.Sprintf("We couldn't find the account %s. Check the spelling.", what), err)
	case errors.Is(err, identity.ErrHandleMismatch), errors.Is(err, identity.ErrHandleNotDeclared):
		return newErr(apperr.Invalid, ReasonHandleNotVerified,
			fmt.Sprintf("The handle %s isn't verified: the account it points to doesn't confirm it. Try signing in with your DID or your provider's address.", what), err)
	case errors.Is(err, identity.ErrHandleReservedTLD), errors.Is(err, identity.ErrInvalidHandle):
		return newErr(apperr.Invalid, ReasonBadIdentifier, msgBadIdentifier, err)
	default:
		return newErr(apperr.Unavailable, ReasonLookupFailed,
			fmt.Sprintf("We couldn't look up %s right now. Please try again in a moment.", what), err)
	}
}

// errAuthServer is the error for a failed discovery step; a destination
// the policy refuses is permanent (errRefusedAddress).
func errAuthServer(err error) error {
	if errors.Is(err, safehttp.ErrBlocked) {
		return errRefusedAddress(err)
	}
	return newErr(apperr.Unavailable, ReasonAuthServer,
		"We couldn't reach your account's sign-in server, or it isn't set up correctly. Please try again in a moment.", err)
}

// StartLogin resolves identifier (a handle with or without @ in any case,
// a DID, or a PDS/entryway URL) to its authorization server, pushes an
// authorization request (PAR), saves it, sets the short-lived HttpOnly
// cookie that binds `state` to this browser, and returns the URL to
// redirect the browser to. Malformed identifiers are refused before any
// network request. Errors are *apperr.Error: Invalid (bad identifier,
// unverified handle), NotFound (unknown account), Unavailable (lookups,
// discovery or PAR failed), Internal (saving the request failed).
func (s *Service) StartLogin(ctx context.Context, w http.ResponseWriter, r *http.Request, identifier string) (string, error) {
	t, err := s.parseIdentifier(identifier)
	if err != nil {
		return "", err
	}
	var (
		accountDID *syntax.DID
		loginHint  string
		authServer string
	)
	if t.server != "" {
		// A PDS names its auth server; an entryway is its own.
		authServer, err = s.resolveAuthServerURL(ctx, t.server)
		if err != nil {
			s.log.Debug("oauth: no protected resource metadata; trying the URL as auth server", "url", t.server, "err", err)
			authServer = t.server
		}
	} else {
		var ident *identity.Identity
		if t.handle != "" {
			what := "@" + t.handle.String()
			ident, err = s.dir.LookupHandle(ctx, t.handle)
			if err != nil {
				return "", lookupError(err, what)
			}
			if ident.Handle.IsInvalidHandle() || ident.Handle != t.handle {
				return "", lookupError(identity.ErrHandleMismatch, what)
			}
			loginHint = t.handle.String()
		} else {
			ident, err = s.dir.LookupDID(ctx, t.did)
			if err != nil {
				return "", lookupError(err, t.did.String())
			}
			loginHint = t.did.String()
		}
		did := ident.DID
		accountDID = &did
		pds := ident.PDSEndpoint()
		if pds == "" {
			return "", newErr(apperr.NotFound, ReasonNoPDS,
				"This account doesn't name a hosting provider (PDS), so it can't sign in.", nil)
		}
		if authServer, err = s.resolveAuthServerURL(ctx, pds); err != nil {
			return "", errAuthServer(err)
		}
	}
	meta, err := s.resolveAuthServerMetadata(ctx, authServer)
	if err != nil {
		return "", errAuthServer(err)
	}
	info, err := s.app.SendAuthRequest(ctx, meta, s.cfg.Scopes, loginHint)
	if err != nil {
		return "", newErr(apperr.Unavailable, ReasonAuthServer,
			"Your account's sign-in server didn't accept the sign-in request. Please try again in a moment.", err)
	}
	info.AccountDID = accountDID
	if err := s.store.SaveAuthRequestInfo(ctx, *info); err != nil {
		return "", apperr.Wrap(err, apperr.Internal, "")
	}
	s.setStateCookie(w, info.State)

	q := url.Values{}
	q.Set("client_id", s.clientConfig.ClientID)
	q.Set("request_uri", info.RequestURI)
	return meta.AuthorizationEndpoint + "?" + q.Encode(), nil
}

// stateMAC returns the hex HMAC of state under the service's cookie key.
func (s *Service) stateMAC(state string) string {
	m := hmac.New(sha256.New, s.stateKey)
	m.Write([]byte(state))
	return hex.EncodeToString(m.Sum(nil))
}

// stateCookieName is per login (several tabs may sign in at once): a
// prefix of the MAC names the cookie, the whole MAC is its value.
func (s *Service) stateCookieName(mac string) string {
	if s.secure {
		return "__Host-skydm_login_" + mac[:16]
	}
	return "skydm_login_" + mac[:16]
}

func (s *Service) setStateCookie(w http.ResponseWriter, state string) {
	s.writeStateCookie(w, state, int(stateCookieTTL.Seconds()))
}

// clearStateCookie deletes the login's cookie once its auth request is
// spent: it binds nothing any more.
func (s *Service) clearStateCookie(w http.ResponseWriter, state string) {
	s.writeStateCookie(w, state, -1)
}

func (s *Service) writeStateCookie(w http.ResponseWriter, state string, maxAge int) {
	mac := s.stateMAC(state)
	value := mac
	if maxAge < 0 {
		value = ""
	}
	http.SetCookie(w, &http.Cookie{
		Name:     s.stateCookieName(mac),
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   s.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Service) stateCookieOK(r *http.Request, state string) bool {
	mac := s.stateMAC(state)
	c, err := r.Cookie(s.stateCookieName(mac))
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(c.Value), []byte(mac))
}

// FinishLogin handles the redirect back from the authorization server. In
// order: the state must be bound to this browser by StartLogin's cookie;
// the auth request is consumed (atomically, before anything else) so a
// replayed or concurrent callback can never redeem the code twice, and
// the login's state cookie is cleared; `iss` must equal the request's
// issuer (on an `error` answer too, which is then reported); the code is
// exchanged; the token's `sub` must be the account that started
// (if one did) and that account's PDS must name this issuer as its
// authorization server; the granted scope must include atproto. The
// session is saved under a new random session id. Errors are
// *apperr.Error with Reason StateMismatch, AuthRequestUsed,
// AuthRequestExpired, AccessDenied, IssuerMismatch, SubjectMismatch,
// ScopeMissing, CallbackInvalid, TokenExchangeFailed or
// AuthServerUnavailable.
func (s *Service) FinishLogin(ctx context.Context, w http.ResponseWriter, r *http.Request) (websession.Account, error) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		return websession.Account{}, newErr(apperr.Invalid, ReasonCallbackInvalid,
			"This sign-in link is incomplete. Please start signing in again.", nil)
	}
	if !s.stateCookieOK(r, state) {
		return websession.Account{}, newErr(apperr.Invalid, ReasonStateMismatch,
			"This sign-in was started in another browser, or too long ago. Please start signing in again from this browser.", nil)
	}
	info, err := s.store.ConsumeAuthRequest(ctx, state)
	if err == nil || errors.Is(err, ErrAuthRequestUsed) || errors.Is(err, ErrAuthRequestExpired) || errors.Is(err, ErrNotFound) {
		s.clearStateCookie(w, state) // spent, whatever happens next
	}
	switch {
	case errors.Is(err, ErrAuthRequestUsed):
		return websession.Account{}, newErr(apperr.Invalid, ReasonAuthRequestUsed,
			"This sign-in link was already used. If you are not signed in, please sign in again.", err)
	case errors.Is(err, ErrAuthRequestExpired), errors.Is(err, ErrNotFound):
		return websession.Account{}, newErr(apperr.Invalid, ReasonAuthRequestExpired,
			"This sign-in took too long and expired. Please start signing in again.", err)
	case err != nil:
		return websession.Account{}, apperr.Wrap(err, apperr.Internal, "")
	}
	// Every answer, an error too, must come from the issuer the request
	// went to (RFC 9207): otherwise it is forged or mixed up.
	iss := q.Get("iss")
	if iss == "" {
		return websession.Account{}, newErr(apperr.Invalid, ReasonCallbackInvalid,
			"This sign-in link is incomplete. Please start signing in again.", errors.New("callback without iss"))
	}
	if iss != info.AuthServerURL {
		return websession.Account{}, newErr(apperr.Invalid, ReasonIssuerMismatch,
			"This sign-in answer came from a different server than the one you signed in with. Please start again.",
			fmt.Errorf("callback iss %q, expected %q", iss, info.AuthServerURL))
	}
	if code := q.Get("error"); code != "" {
		cbErr := &atoauth.AuthRequestCallbackError{ErrorCode: code, ErrorDescription: q.Get("error_description")}
		if code == "access_denied" {
			return websession.Account{}, newErr(apperr.Forbidden, ReasonAccessDenied,
				"You declined the request, so you are not signed in. You can try again at any time.", cbErr)
		}
		return websession.Account{}, newErr(apperr.Unavailable, ReasonAuthServer,
			"Your account's sign-in server could not complete the sign-in. Please try again.", cbErr)
	}
	code := q.Get("code")
	if code == "" {
		return websession.Account{}, newErr(apperr.Invalid, ReasonCallbackInvalid,
			"This sign-in link is incomplete. Please start signing in again.", nil)
	}

	tok, err := s.app.SendInitialTokenRequest(ctx, code, *info)
	if err != nil {
		return websession.Account{}, newErr(apperr.Unavailable, ReasonTokenExchange,
			"Your account's sign-in server didn't complete the sign-in. Please try again.", err)
	}
	sessData := atoauth.ClientSessionData{
		AuthServerURL:                info.AuthServerURL,
		AuthServerTokenEndpoint:      info.AuthServerTokenEndpoint,
		AuthServerRevocationEndpoint: info.AuthServerRevocationEndpoint,
		Scopes:                       strings.Fields(tok.Scope),
		AccessToken:                  tok.AccessToken,
		RefreshToken:                 tok.RefreshToken,
		DPoPAuthServerNonce:          info.DPoPAuthServerNonce,
		DPoPHostNonce:                info.DPoPAuthServerNonce, // bootstrap host nonce from the auth server, as indigo does
		DPoPPrivateKeyMultibase:      info.DPoPPrivateKeyMultibase,
	}
	// From here on, tokens exist: revoke them if we refuse the result.
	fail := func(e error) (websession.Account, error) {
		s.revokeUnsaved(ctx, sessData)
		return websession.Account{}, e
	}

	sub, err := syntax.ParseDID(tok.Subject)
	if err != nil {
		return fail(newErr(apperr.Unavailable, ReasonSubjectMismatch,
			"Your account's sign-in server gave an invalid answer. Please try again.", err))
	}
	if info.AccountDID != nil && sub != *info.AccountDID {
		return fail(newErr(apperr.Forbidden, ReasonSubjectMismatch,
			"You signed in as a different account than the one you entered. Please start again.",
			fmt.Errorf("token sub %s, expected %s", sub, *info.AccountDID)))
	}
	// The issuer's authority over the DID: the DID's PDS must name it.
	ident, err := s.dir.LookupDID(ctx, sub)
	if err != nil {
		return fail(lookupError(err, sub.String()))
	}
	pds := ident.PDSEndpoint()
	if pds == "" {
		return fail(newErr(apperr.NotFound, ReasonNoPDS,
			"This account doesn't name a hosting provider (PDS), so it can't sign in.", nil))
	}
	if err := s.policy.endpoint(pds); err != nil {
		return fail(errAuthServer(err))
	}
	as, err := s.resolveAuthServerURL(ctx, pds)
	if err != nil {
		return fail(errAuthServer(err))
	}
	if as != info.AuthServerURL {
		return fail(newErr(apperr.Forbidden, ReasonIssuerMismatch,
			"That sign-in server isn't the one responsible for this account. Please sign in with your own provider.",
			fmt.Errorf("DID %s is governed by %s, not %s", sub, as, info.AuthServerURL)))
	}
	if !slices.Contains(sessData.Scopes, ScopeAtproto) {
		return fail(newErr(apperr.Forbidden, ReasonScopeMissing,
			"Your account's server didn't grant the access skydm needs. Please sign in again and approve the request.",
			fmt.Errorf("granted scope %q", tok.Scope)))
	}

	sessData.AccountDID = sub
	sessData.SessionID = randomID()
	sessData.HostURL = strings.TrimRight(pds, "/")
	if err := s.store.SaveSession(ctx, sessData); err != nil {
		return fail(apperr.Wrap(err, apperr.Internal, ""))
	}
	handle := ""
	if !ident.Handle.IsInvalidHandle() {
		handle = ident.Handle.String()
	}
	s.log.Info("oauth: signed in", "did", sub, "session_id", sessData.SessionID, "scopes", tok.Scope)
	return websession.Account{
		DID:          sub,
		SessionID:    sessData.SessionID,
		Handle:       handle,
		HasChatScope: slices.Contains(sessData.Scopes, ScopeChat),
	}, nil
}

// revokeUnsaved best-effort revokes tokens we obtained but refuse to keep.
func (s *Service) revokeUnsaved(ctx context.Context, d atoauth.ClientSessionData) {
	if d.AuthServerRevocationEndpoint == "" {
		return
	}
	key, err := parseDPoPKey(d.DPoPPrivateKeyMultibase)
	if err != nil {
		return
	}
	sess := &atoauth.ClientSession{Client: s.httpClient, Config: s.clientConfig, Data: &d, DPoPPrivateKey: key}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := sess.RevokeSession(rctx); err != nil {
		s.log.Warn("oauth: revoking refused tokens", "err", err)
	}
}

func randomID() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
