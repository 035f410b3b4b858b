package oauth

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/pgtest"
	"github.com/skydm/skydm/internal/safehttp"
	"github.com/skydm/skydm/internal/websession"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openDB(t testing.TB) *sql.DB {
	t.Helper()
	d, err := db.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func testKey() []byte {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(i + 1)
	}
	return k
}

type harness struct {
	t      testing.TB
	svc    *Service
	fake   *fakeAS
	dir    *countingDir
	mock   *identity.MockDirectory
	ct     *countingTransport
	clock  *fakeClock
	db     *sql.DB
	did    syntax.DID
	handle syntax.Handle
	cfg    Config // svc's, for another instance on db
}

const testPublicURL = "http://127.0.0.1:8080"

func newHarness(t testing.TB, mods ...func(*Config)) *harness {
	t.Helper()
	fake := newFakeAS(t)
	mock := identity.NewMockDirectory()
	h := &harness{
		t: t, fake: fake, mock: mock, dir: &countingDir{Directory: mock},
		clock: &fakeClock{now: time.Now()},
		db:    openDB(t),
		did:   syntax.DID("did:plc:alice0000000000000000000"), handle: syntax.Handle("alice.test"),
	}
	mock.Insert(fake.identityFor(h.did, h.handle))
	base := safehttp.NewClient(safehttp.Options{AllowPrivate: true, AllowHTTP: true})
	h.ct = &countingTransport{base: base.Transport}
	base.Transport = h.ct
	cfg := Config{
		PublicURL:     testPublicURL,
		Sandbox:       true,
		EncryptionKey: testKey(),
		Directory:     h.dir,
		HTTPClient:    base,
		Now:           h.clock.Now,
	}
	for _, m := range mods {
		m(&cfg)
	}
	svc, err := New(cfg, h.db)
	if err != nil {
		t.Fatal(err)
	}
	h.svc, h.cfg = svc, cfg
	return h
}

// start runs StartLogin and returns the authorize URL and the cookies the
// browser got.
func (h *harness) start(identifier string) (string, []*http.Cookie, error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", testPublicURL+"/login", nil)
	u, err := h.svc.StartLogin(context.Background(), rec, req, identifier)
	return u, rec.Result().Cookies(), err
}

// callback runs FinishLogin for query q with the given cookies.
func (h *harness) callback(q url.Values, cookies []*http.Cookie) (websession.Account, error) {
	req := httptest.NewRequest("GET", testPublicURL+CallbackPath+"?"+q.Encode(), nil)
	for _, c := range cookies {
		req.AddCookie(c)
	}
	return h.svc.FinishLogin(context.Background(), httptest.NewRecorder(), req)
}

// login performs a whole sign-in as the harness account.
func (h *harness) login() websession.Account {
	h.t.Helper()
	u, cookies, err := h.start(h.handle.String())
	if err != nil {
		h.t.Fatalf("StartLogin: %v", err)
	}
	acct, err := h.callback(h.fake.approve(u, h.did), cookies)
	if err != nil {
		h.t.Fatalf("FinishLogin: %v", err)
	}
	return acct
}
