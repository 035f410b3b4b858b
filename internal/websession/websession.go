// Package websession keeps who is signed in to skydm in this browser: a
// small encrypted, signed cookie (gorilla/sessions CookieStore) holding, for
// each signed-in account, its DID, the OAuth session id, handle, whether the
// chat scope was granted, and when it was added and last seen, plus which
// account is active. Idle and absolute expiry are enforced on the server
// from those timestamps, not left to the browser.
package websession

import (
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/gorilla/sessions"

	"github.com/skydm/skydm/internal/apperr"
)

// Account is one signed-in account in this browser.
type Account struct {
	DID          syntax.DID
	SessionID    string // OAuth session id (internal/oauth)
	Handle       string // may be "" when the handle could not be verified
	HasChatScope bool   // transition:chat.bsky was granted
}

// The expiry policy, and how many accounts one browser holds.
const (
	// IdleTimeout is how long an account may go unseen before it is
	// signed out of this browser.
	IdleTimeout = 30 * 24 * time.Hour
	// MaxAge is how long an account stays signed in at most, seen or not.
	MaxAge = 90 * 24 * time.Hour
	// MaxAccounts is how many accounts one browser may have signed in at
	// once; adding one more drops the least recently used.
	MaxAccounts = 5
	// touchEvery limits how often Touch rewrites the cookie.
	touchEvery = time.Hour
)

// Option customises a Store.
type Option func(*Store)

// WithClock sets the clock used for expiry (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// Store reads and writes the session cookie. Safe for concurrent use.
type Store struct {
	cs   *sessions.CookieStore
	name string
	now  func() time.Time
}

// New returns a Store. hashKey (32 or 64 random bytes) signs the cookie,
// blockKey (32 random bytes) encrypts it. With secure (production) the
// cookie is named "__Host-skydm_session" and marked Secure; otherwise it is
// "skydm_session" (plain-http sandbox). It is always HttpOnly, SameSite=Lax,
// Path=/. Bad key lengths surface as errors from Add/Switch/Remove.
func New(hashKey, blockKey []byte, secure bool, opts ...Option) *Store {
	s := &Store{
		cs:   sessions.NewCookieStore(hashKey, blockKey),
		name: "skydm_session",
		now:  time.Now,
	}
	if secure {
		s.name = "__Host-skydm_session"
	}
	for _, o := range opts {
		o(s)
	}
	s.cs.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(MaxAge / time.Second),
		Secure:   secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	s.cs.MaxAge(int(MaxAge / time.Second))
	return s
}

// CookieName returns the name of the session cookie.
func (s *Store) CookieName() string { return s.name }

// entry is the stored form of an Account (short JSON keys keep it small).
type entry struct {
	DID       string `json:"d"`
	SessionID string `json:"s"`
	Handle    string `json:"h,omitempty"`
	Chat      bool   `json:"c,omitempty"`
	Created   int64  `json:"t"` // unix seconds
	LastSeen  int64  `json:"l"`
}

type state struct {
	Accounts []entry `json:"a"`
	Active   string  `json:"x,omitempty"`
}

const valueKey = "v"

// load decodes the cookie; a missing, tampered or undecodable cookie is an
// empty state. Expired accounts are dropped; the second result says whether
// anything was dropped.
func (s *Store) load(r *http.Request) (state, bool) {
	var st state
	sess, err := s.cs.New(r, s.name)
	if err != nil || sess.IsNew {
		return st, err != nil
	}
	raw, ok := sess.Values[valueKey].(string)
	if !ok || json.Unmarshal([]byte(raw), &st) != nil {
		return state{}, true
	}
	now := s.now()
	kept := st.Accounts[:0]
	changed := false
	for _, e := range st.Accounts {
		if _, err := syntax.ParseDID(e.DID); err != nil || e.SessionID == "" {
			changed = true
			continue
		}
		if now.Sub(time.Unix(e.Created, 0)) >= MaxAge || now.Sub(time.Unix(e.LastSeen, 0)) >= IdleTimeout {
			changed = true
			continue
		}
		kept = append(kept, e)
	}
	st.Accounts = kept
	if st.Active != "" && st.find(st.Active) < 0 {
		st.Active = ""
		changed = true
	}
	if st.Active == "" && len(st.Accounts) > 0 {
		st.Active = st.Accounts[0].DID
		changed = true
	}
	return st, changed
}

func (st *state) find(did string) int {
	for i, e := range st.Accounts {
		if e.DID == did {
			return i
		}
	}
	return -1
}

func (e entry) account() Account {
	return Account{DID: syntax.DID(e.DID), SessionID: e.SessionID, Handle: e.Handle, HasChatScope: e.Chat}
}

// save writes st as a fresh cookie value (or deletes the cookie when empty).
func (s *Store) save(w http.ResponseWriter, r *http.Request, st state) error {
	sess := sessions.NewSession(s.cs, s.name)
	opts := *s.cs.Options
	sess.Options = &opts
	if len(st.Accounts) == 0 {
		sess.Options.MaxAge = -1
		http.SetCookie(w, sessions.NewCookie(s.name, "", sess.Options))
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return apperr.Wrap(err, apperr.Internal, "")
	}
	sess.Values[valueKey] = string(b)
	if err := s.cs.Save(r, w, sess); err != nil {
		return apperr.Wrap(err, apperr.Internal, "")
	}
	return nil
}

// Current returns the active account, or false when no account is signed
// in (or every account expired).
func (s *Store) Current(r *http.Request) (Account, bool) {
	st, _ := s.load(r)
	return st.current()
}

// Accounts returns every signed-in, unexpired account, active one first.
func (s *Store) Accounts(r *http.Request) []Account {
	st, _ := s.load(r)
	return st.accounts()
}

// Load is Current, Accounts and Touch with one decoding of the cookie, for
// middleware that needs all three on every request. Accounts for which
// keep (if not nil) returns false are signed out of this browser first, as
// Remove does, in the same cookie write. It returns the active account
// (false when none), every signed-in account (active first), and an
// *apperr.Error Internal only when the refreshed cookie cannot be written;
// the accounts are returned either way.
func (s *Store) Load(w http.ResponseWriter, r *http.Request, keep func(Account) bool) (Account, bool, []Account, error) {
	st, changed := s.load(r)
	if keep != nil {
		for _, e := range slices.Clone(st.Accounts) {
			if !keep(e.account()) {
				st.remove(e.DID)
				changed = true
			}
		}
	}
	cur, ok := st.current()
	if !ok {
		if changed {
			return Account{}, false, nil, s.save(w, r, st)
		}
		return Account{}, false, nil, nil
	}
	return cur, true, st.accounts(), s.touch(w, r, st, changed)
}

func (st *state) current() (Account, bool) {
	if i := st.find(st.Active); i >= 0 {
		return st.Accounts[i].account(), true
	}
	return Account{}, false
}

func (st *state) accounts() []Account {
	out := make([]Account, 0, len(st.Accounts))
	if i := st.find(st.Active); i >= 0 {
		out = append(out, st.Accounts[i].account())
	}
	for _, e := range st.Accounts {
		if e.DID != st.Active {
			out = append(out, e.account())
		}
	}
	return out
}

// Add signs acct in to this browser and makes it active, replacing an
// entry with the same DID (callers that want to revoke the replaced OAuth
// session should read Accounts first) and dropping the least recently seen
// account beyond MaxAccounts. A new cookie value is written every time. It
// returns an *apperr.Error: Invalid for an account without DID or session
// id, Internal when the cookie cannot be encoded.
func (s *Store) Add(w http.ResponseWriter, r *http.Request, acct Account) error {
	if _, err := syntax.ParseDID(acct.DID.String()); err != nil || acct.SessionID == "" {
		return apperr.New(apperr.Invalid, "That sign-in could not be completed. Please try again.")
	}
	st, _ := s.load(r)
	now := s.now().Unix()
	if i := st.find(acct.DID.String()); i >= 0 {
		st.Accounts = append(st.Accounts[:i], st.Accounts[i+1:]...)
	}
	for len(st.Accounts) >= MaxAccounts {
		oldest := 0
		for i, e := range st.Accounts {
			if e.LastSeen < st.Accounts[oldest].LastSeen {
				oldest = i
			}
		}
		st.Accounts = append(st.Accounts[:oldest], st.Accounts[oldest+1:]...)
	}
	st.Accounts = append(st.Accounts, entry{
		DID: acct.DID.String(), SessionID: acct.SessionID, Handle: acct.Handle, Chat: acct.HasChatScope,
		Created: now, LastSeen: now,
	})
	st.Active = acct.DID.String()
	return s.save(w, r, st)
}

// Switch makes the signed-in account did active (a user action). It
// returns *apperr.Error NotFound when did is not signed in here.
func (s *Store) Switch(w http.ResponseWriter, r *http.Request, did syntax.DID) error {
	st, _ := s.load(r)
	i := st.find(did.String())
	if i < 0 {
		return apperr.New(apperr.NotFound, "That account is not signed in in this browser.")
	}
	st.Active = did.String()
	st.Accounts[i].LastSeen = s.now().Unix()
	return s.save(w, r, st)
}

// Remove signs did out of this browser; if it was active, the next account
// becomes active. Removing an account that is not there is not an error.
// It returns *apperr.Error Internal only when the cookie cannot be written.
func (s *Store) Remove(w http.ResponseWriter, r *http.Request, did syntax.DID) error {
	st, _ := s.load(r)
	st.remove(did.String())
	return s.save(w, r, st)
}

// remove drops did; if it was active, the first remaining account becomes
// active.
func (st *state) remove(did string) {
	if i := st.find(did); i >= 0 {
		st.Accounts = slices.Delete(st.Accounts, i, i+1)
	}
	if st.Active == did {
		st.Active = ""
		if len(st.Accounts) > 0 {
			st.Active = st.Accounts[0].DID
		}
	}
}

// Touch records that the active account was seen now, rewriting the cookie
// at most once an hour (call it from middleware on authenticated requests),
// and drops expired accounts from the cookie. It returns an *apperr.Error
// Internal only when the cookie cannot be written.
func (s *Store) Touch(w http.ResponseWriter, r *http.Request) error {
	st, changed := s.load(r)
	return s.touch(w, r, st, changed)
}

// touch marks the active account of st as seen and saves st when that or
// an earlier change (expired accounts dropped) needs a new cookie.
func (s *Store) touch(w http.ResponseWriter, r *http.Request, st state, changed bool) error {
	if i := st.find(st.Active); i >= 0 {
		now := s.now().Unix()
		if time.Duration(now-st.Accounts[i].LastSeen)*time.Second >= touchEvery {
			st.Accounts[i].LastSeen = now
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.save(w, r, st)
}
