package websession

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var (
	hashKey  = []byte("0123456789abcdef0123456789abcdef")
	blockKey = []byte("fedcba9876543210fedcba9876543210")
	alice    = Account{DID: "did:plc:alice0000000000000000000", SessionID: "s-alice", Handle: "alice.test", HasChatScope: true}
	bob      = Account{DID: "did:plc:bob00000000000000000000", SessionID: "s-bob", Handle: "bob.test"}
)

// browser keeps the cookie between requests like a browser would.
type browser struct {
	t      *testing.T
	store  *Store
	cookie *http.Cookie
	sets   int
}

func (b *browser) req() *http.Request {
	r := httptest.NewRequest("GET", "https://skydm.example/", nil)
	if b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	return r
}

func (b *browser) do(f func(w http.ResponseWriter, r *http.Request) error) *http.Cookie {
	b.t.Helper()
	rec := httptest.NewRecorder()
	if err := f(rec, b.req()); err != nil {
		b.t.Fatal(err)
	}
	for _, c := range rec.Result().Cookies() {
		if c.Name == b.store.CookieName() {
			b.sets++
			if c.MaxAge < 0 {
				b.cookie = nil
			} else {
				b.cookie = c
			}
			return c
		}
	}
	return nil
}

func (b *browser) add(a Account) *http.Cookie {
	return b.do(func(w http.ResponseWriter, r *http.Request) error { return b.store.Add(w, r, a) })
}

func TestAddSwitchRemove(t *testing.T) {
	b := &browser{t: t, store: New(hashKey, blockKey, true)}
	if _, ok := b.store.Current(b.req()); ok {
		t.Fatal("signed in with no cookie")
	}
	c1 := b.add(alice)
	if c1.Name != "__Host-skydm_session" || !c1.Secure || !c1.HttpOnly || c1.SameSite != http.SameSiteLaxMode || c1.Path != "/" || c1.Domain != "" {
		t.Fatalf("cookie attributes %+v", c1)
	}
	if len(c1.Value) > 1500 {
		t.Fatalf("cookie is %d bytes", len(c1.Value))
	}
	if got, ok := b.store.Current(b.req()); !ok || got != alice {
		t.Fatalf("Current = %+v %v", got, ok)
	}
	c2 := b.add(bob)
	if c2.Value == c1.Value {
		t.Fatal("cookie value not renewed at login")
	}
	if got, _ := b.store.Current(b.req()); got != bob {
		t.Fatalf("newest login not active: %+v", got)
	}
	if as := b.store.Accounts(b.req()); len(as) != 2 || as[0] != bob || as[1] != alice {
		t.Fatalf("Accounts = %+v", as)
	}
	b.do(func(w http.ResponseWriter, r *http.Request) error { return b.store.Switch(w, r, alice.DID) })
	if got, _ := b.store.Current(b.req()); got != alice {
		t.Fatalf("after Switch: %+v", got)
	}
	rec := httptest.NewRecorder()
	if err := b.store.Switch(rec, b.req(), "did:plc:carol0000000000000000000"); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("Switch to an account not signed in = %v", err)
	}
	b.do(func(w http.ResponseWriter, r *http.Request) error { return b.store.Remove(w, r, alice.DID) })
	if got, _ := b.store.Current(b.req()); got != bob {
		t.Fatalf("after removing the active account: %+v", got)
	}
	b.do(func(w http.ResponseWriter, r *http.Request) error { return b.store.Remove(w, r, bob.DID) })
	if b.cookie != nil {
		t.Fatal("cookie not deleted when the last account left")
	}
}

func TestSameAccountAgainReplacesIt(t *testing.T) {
	b := &browser{t: t, store: New(hashKey, blockKey, false)}
	b.add(alice)
	again := alice
	again.SessionID = "s-alice-2"
	again.HasChatScope = false
	b.add(again)
	as := b.store.Accounts(b.req())
	if len(as) != 1 || as[0] != again {
		t.Fatalf("Accounts = %+v", as)
	}
	if b.cookie.Name != "skydm_session" || b.cookie.Secure {
		t.Fatalf("sandbox cookie %+v", b.cookie)
	}
}

func TestExpiry(t *testing.T) {
	tests := []struct {
		name     string
		steps    []time.Duration // advance, then Touch
		final    time.Duration
		signedIn bool
	}{
		{"fresh login is signed in", nil, time.Hour, true},
		{"idle 29 days is signed in", nil, 29 * 24 * time.Hour, true},
		{"idle 30 days is signed out", nil, 30 * 24 * time.Hour, false},
		{"active every 20 days stays signed in until 90 days", []time.Duration{20 * 24 * time.Hour, 20 * 24 * time.Hour, 20 * 24 * time.Hour, 20 * 24 * time.Hour}, 9 * 24 * time.Hour, true},
		{"active every 20 days is signed out at 90 days", []time.Duration{20 * 24 * time.Hour, 20 * 24 * time.Hour, 20 * 24 * time.Hour, 20 * 24 * time.Hour}, 10 * 24 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			b := &browser{t: t, store: New(hashKey, blockKey, true, WithClock(c.Now))}
			b.add(alice)
			for _, d := range tt.steps {
				c.Add(d)
				b.do(func(w http.ResponseWriter, r *http.Request) error { return b.store.Touch(w, r) })
			}
			c.Add(tt.final)
			_, ok := b.store.Current(b.req())
			if ok != tt.signedIn {
				t.Fatalf("signed in = %v, want %v", ok, tt.signedIn)
			}
		})
	}
}

func TestTouchWritesAtMostHourly(t *testing.T) {
	c := &clock{now: time.Now()}
	b := &browser{t: t, store: New(hashKey, blockKey, true, WithClock(c.Now))}
	b.add(alice)
	before := b.sets
	for range 10 {
		c.Add(time.Minute)
		b.do(func(w http.ResponseWriter, r *http.Request) error { return b.store.Touch(w, r) })
	}
	if b.sets != before {
		t.Fatalf("Touch rewrote the cookie %d times within an hour", b.sets-before)
	}
	c.Add(time.Hour)
	b.do(func(w http.ResponseWriter, r *http.Request) error { return b.store.Touch(w, r) })
	if b.sets != before+1 {
		t.Fatal("Touch did not refresh last-seen after an hour")
	}
}

func TestTamperedOrForeignCookieIsIgnored(t *testing.T) {
	b := &browser{t: t, store: New(hashKey, blockKey, true)}
	b.add(alice)
	tampered := *b.cookie
	tampered.Value = tampered.Value[:len(tampered.Value)-4] + "AAAA"
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(&tampered)
	if _, ok := b.store.Current(r); ok {
		t.Fatal("tampered cookie accepted")
	}
	other := New([]byte("another-hash-key-another-hash-ke"), blockKey, true)
	r = httptest.NewRequest("GET", "/", nil)
	r.AddCookie(b.cookie)
	if _, ok := other.Current(r); ok {
		t.Fatal("cookie signed with another key accepted")
	}
}

func TestMaxAccounts(t *testing.T) {
	c := &clock{now: time.Now()}
	b := &browser{t: t, store: New(hashKey, blockKey, true, WithClock(c.Now))}
	for i := range MaxAccounts + 2 {
		c.Add(time.Minute)
		b.add(Account{DID: syntax.DID("did:plc:acct" + string(rune('a'+i)) + "00000000000000000000"), SessionID: "s"})
	}
	as := b.store.Accounts(b.req())
	if len(as) != MaxAccounts {
		t.Fatalf("%d accounts, want %d", len(as), MaxAccounts)
	}
	if as[0].DID != "did:plc:acctg00000000000000000000" {
		t.Fatalf("active %s", as[0].DID)
	}
	for _, a := range as {
		if a.DID == "did:plc:accta00000000000000000000" || a.DID == "did:plc:acctb00000000000000000000" {
			t.Fatalf("oldest account %s kept", a.DID)
		}
	}
	rec := httptest.NewRecorder()
	if err := b.store.Add(rec, b.req(), Account{DID: "not-a-did", SessionID: "x"}); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("Add(bad DID) = %v", err)
	}
}

func TestLoadIsCurrentAccountsAndTouchInOne(t *testing.T) {
	c := &clock{now: time.Now()}
	b := &browser{t: t, store: New(hashKey, blockKey, true, WithClock(c.Now))}
	load := func() (Account, bool, []Account) {
		var (
			cur  Account
			ok   bool
			accs []Account
		)
		b.do(func(w http.ResponseWriter, r *http.Request) error {
			var err error
			cur, ok, accs, err = b.store.Load(w, r, nil)
			return err
		})
		return cur, ok, accs
	}
	if _, ok, accs := load(); ok || accs != nil {
		t.Fatalf("signed out: ok=%v accounts=%v", ok, accs)
	}
	b.add(bob)
	b.add(alice)
	cur, ok, accs := load()
	if !ok || cur != alice || len(accs) != 2 || accs[0] != alice || accs[1] != bob {
		t.Fatalf("Load = %+v %v %+v, want alice active then bob", cur, ok, accs)
	}
	before := b.sets
	c.Add(time.Minute)
	load()
	if b.sets != before {
		t.Fatal("Load rewrote the cookie within the hour")
	}
	c.Add(time.Hour)
	load()
	if b.sets != before+1 {
		t.Fatal("Load did not refresh last-seen after an hour, as Touch does")
	}
}
