package signin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
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

// Pages are the sign-in, accounts and OAuth client handlers.
type Pages struct {
	kit        *kit.Kit
	auth       Auth
	sessions   Sessions
	clientDocs ClientDocs
	onSignIn   func(ctx context.Context, acct websession.Account)
}

// New returns the sign-in pages over auth and sessions. clientDocs, when
// set, is served at /oauth-client-metadata.json and /oauth/jwks.json
// (nil → both 404); onSignIn, when set, runs after an account signed in.
func New(k *kit.Kit, auth Auth, sessions Sessions, clientDocs ClientDocs, onSignIn func(ctx context.Context, acct websession.Account)) *Pages {
	return &Pages{kit: k, auth: auth, sessions: sessions, clientDocs: clientDocs, onSignIn: onSignIn}
}

// noChatScopeNotice is shown while the active account's session lacks
// transition:chat.bsky.
const noChatScopeNotice = "This account did not grant skydm access to your DMs. Sign in again and allow “Chat” on your server's consent screen."

// Home is the start page (GET / without DM access), with a notice when
// the account granted no DM access.
func (p *Pages) Home(w http.ResponseWriter, r *http.Request) {
	var h views.Home
	if cur := kit.Current(r.Context()); cur != nil && !cur.HasChatScope {
		h.Notice = noChatScopeNotice
	}
	p.kit.Render(w, r, http.StatusOK, views.HomePage(p.kit.Page(r, "", "home"), h))
}

// signInNotice returns the notice /signin?reason= shows: the query picks
// one of these, it never supplies text.
func signInNotice(reason string) string {
	switch reason {
	case "expired":
		return "Your session has ended. Please sign in again."
	default:
		return ""
	}
}

// SignIn is GET /signin: the sign-in form (?hint= fills it in, ?reason=
// picks a notice).
func (p *Pages) SignIn(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := views.SignInForm{Identifier: q.Get("hint"), Notice: signInNotice(q.Get("reason"))}
	p.renderSignIn(w, r, http.StatusOK, f)
}

func (p *Pages) renderSignIn(w http.ResponseWriter, r *http.Request, status int, f views.SignInForm) {
	title := "Sign in"
	if kit.Current(r.Context()) != nil {
		title = "Add another account"
	}
	p.kit.Render(w, r, status, views.SignInPage(p.kit.Page(r, title, "signin"), f))
}

// Account is GET /account: the accounts signed in on this browser.
func (p *Pages) Account(w http.ResponseWriter, r *http.Request) {
	if kit.Current(r.Context()) == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	p.kit.Render(w, r, http.StatusOK, views.AccountPage(p.kit.Page(r, "Accounts", "accounts")))
}

// Login starts the OAuth flow for the handle, DID or server in the form
// field "identifier". On success it shows ContinuePage, which sends the
// browser on to the authorization server; on failure it shows the sign-in
// form again with the message next to the field and the input kept.
func (p *Pages) Login(w http.ResponseWriter, r *http.Request) {
	if err := kit.ParseForm(w, r); err != nil {
		p.kit.Error(w, r, err)
		return
	}
	identifier := strings.TrimSpace(r.PostForm.Get("identifier"))
	f := views.SignInForm{Identifier: identifier}
	if identifier == "" {
		f.Error = "Enter your handle (like alice.bsky.social), your DID, or your server's address."
		p.renderSignIn(w, r, http.StatusBadRequest, f)
		return
	}
	authorizeURL, err := p.auth.StartLogin(r.Context(), w, r, identifier)
	err = tooSlow(r, err, hostOf(identifier))
	if err == nil {
		if u, perr := url.Parse(authorizeURL); perr != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			err = apperr.Wrap(perr, apperr.Internal, "")
			p.kit.Log.ErrorContext(r.Context(), "authorize URL is not an http(s) URL", "request_id", kit.RequestID(r.Context()))
		}
	}
	if err != nil {
		// Every failure of the sign-in form is shown next to its field.
		p.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
			f.Error = msg
			p.renderSignIn(w, r, status, f)
		}, apperr.NotFound, apperr.Internal, apperr.Unauthorized, apperr.Forbidden))
		return
	}
	p.kit.Render(w, r, http.StatusOK, views.ContinuePage(p.kit.Page(r, "", ""), authorizeURL))
}

// Callback finishes the OAuth flow, adds the account to this browser and
// goes back to the page that asked to sign in (kit.SetReturnTo), else home
// (which says so when DM access was not granted).
func (p *Pages) Callback(w http.ResponseWriter, r *http.Request) {
	acct, err := p.auth.FinishLogin(r.Context(), w, r)
	if err != nil {
		p.kit.Error(w, r, tooSlow(r, err, hostOf(r.URL.Query().Get("iss"))))
		return
	}
	var replaced string // the session this browser held for the same account
	for _, a := range kit.ViewerFrom(r.Context()).Accounts {
		if a.DID == acct.DID && a.SessionID != acct.SessionID {
			replaced = a.SessionID
		}
	}
	if err := p.sessions.Add(w, r, acct); err != nil {
		p.kit.Error(w, r, err)
		return
	}
	if replaced != "" {
		if err := p.auth.Logout(r.Context(), acct.DID, replaced); err != nil {
			p.kit.Log.WarnContext(r.Context(), "revoking the replaced session failed", "err", err, "did", acct.DID.String(), "request_id", kit.RequestID(r.Context()))
		}
	}
	p.kit.Log.InfoContext(r.Context(), "signed in", "did", acct.DID.String(), "chat_scope", acct.HasChatScope, "request_id", kit.RequestID(r.Context()))
	if p.onSignIn != nil {
		p.onSignIn(r.Context(), acct)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, kit.TakeReturnTo(w, r, "/"), http.StatusSeeOther) // e.g. the /join page that sent them to sign in
}

// ReasonServerTooSlow is the Reason of a sign-in cut off by its deadline.
const ReasonServerTooSlow = "ServerTooSlow"

// tooSlow returns err as "your server is too slow" when the request's
// deadline (kit.SignInDeadline) passed during it, naming the host that was
// being asked (from the failed request's URL, else fallback), and err
// unchanged otherwise.
func tooSlow(r *http.Request, err error, fallback string) error {
	if err == nil || (!errors.Is(err, context.DeadlineExceeded) && r.Context().Err() != context.DeadlineExceeded) {
		return err
	}
	host := fallback
	var ue *url.Error
	if errors.As(err, &ue) {
		if h := hostOf(ue.URL); h != "" {
			host = h
		}
	}
	msg := "Your server is too slow to answer, so signing in could not finish. Please try again in a while."
	if host != "" {
		msg = "Your server " + host + " is too slow to answer, so signing in could not finish. Please try again in a while."
	}
	return &apperr.Error{Code: apperr.Unavailable, Reason: ReasonServerTooSlow, Message: msg, Err: err}
}

// hostOf returns the host[:port] of an absolute http(s) URL, or "".
func hostOf(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") {
		return ""
	}
	return u.Host
}

// accountFromForm returns the signed-in account named by the form field
// "did", or the active one when the field is empty.
func accountFromForm(r *http.Request) (did syntax.DID, sessionID string, ok bool) {
	v := kit.ViewerFrom(r.Context())
	if v.Current == nil {
		return "", "", false
	}
	raw := strings.TrimSpace(r.PostForm.Get("did"))
	if raw == "" {
		return v.Current.DID, v.Current.SessionID, true
	}
	for _, a := range v.Accounts {
		if a.DID.String() == raw {
			return a.DID, a.SessionID, true
		}
	}
	if v.Current.DID.String() == raw {
		return v.Current.DID, v.Current.SessionID, true
	}
	return "", "", false
}

// Logout signs one account (form field "did", default the active one) out:
// its tokens are revoked and it is removed from this browser.
func (p *Pages) Logout(w http.ResponseWriter, r *http.Request) {
	if err := kit.ParseForm(w, r); err != nil {
		p.kit.Error(w, r, err)
		return
	}
	did, sessionID, ok := accountFromForm(r)
	if !ok {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	if err := p.auth.Logout(r.Context(), did, sessionID); err != nil {
		// Still forget it here: a server that cannot be reached must not
		// keep someone signed in on this browser.
		p.kit.Log.WarnContext(r.Context(), "logout: revoking the session failed", "err", err, "did", did.String(), "request_id", kit.RequestID(r.Context()))
	}
	if err := p.sessions.Remove(w, r, did); err != nil {
		p.kit.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// SwitchAccount makes another signed-in account (form field "did") active.
func (p *Pages) SwitchAccount(w http.ResponseWriter, r *http.Request) {
	if err := kit.ParseForm(w, r); err != nil {
		p.kit.Error(w, r, err)
		return
	}
	if kit.Current(r.Context()) == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	did, _, ok := accountFromForm(r)
	if !ok {
		p.kit.Error(w, r, apperr.New(apperr.NotFound, "That account is not signed in on this browser."))
		return
	}
	if err := p.sessions.Switch(w, r, did); err != nil {
		p.kit.Error(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// ClientMetadata serves the confidential client's metadata document; 404
// for the loopback client, whose metadata lives in its client_id.
func (p *Pages) ClientMetadata(w http.ResponseWriter, r *http.Request) {
	if p.clientDocs == nil {
		p.kit.Error(w, r, apperr.New(apperr.NotFound, "There is no page at this address."))
		return
	}
	p.writeJSON(w, r, p.clientDocs.ClientMetadata())
}

// JWKS serves the confidential client's public keys; 404 for the loopback
// client.
func (p *Pages) JWKS(w http.ResponseWriter, r *http.Request) {
	if p.clientDocs == nil {
		p.kit.Error(w, r, apperr.New(apperr.NotFound, "There is no page at this address."))
		return
	}
	p.writeJSON(w, r, p.clientDocs.JWKS())
}

func (p *Pages) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		p.kit.Error(w, r, apperr.Wrap(err, apperr.Internal, ""))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(b)
}
