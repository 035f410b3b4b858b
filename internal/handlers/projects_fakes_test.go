package handlers

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/websession"
)

// projFakePDS answers com.atproto.repo.createRecord, putRecord and
// deleteRecord for any repo, counting the writes it received.
type projFakePDS struct {
	srv     *httptest.Server
	mu      sync.Mutex
	tids    *syntax.TIDClock
	creates int
}

func newProjFakePDS(t *testing.T) *projFakePDS {
	p := &projFakePDS{tids: syntax.NewTIDClock(0)}
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Repo       string         `json:"repo"`
			Collection string         `json:"collection"`
			Rkey       string         `json:"rkey"` // putRecord
			Record     map[string]any `json:"record"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		p.mu.Lock()
		p.creates++
		rkey := in.Rkey
		if rkey == "" {
			rkey = p.tids.Next().String()
		}
		p.mu.Unlock()
		b, _ := json.Marshal(in.Record)
		sum := sha256.Sum256(b)
		cid := "bafyrei" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:52]
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"uri": "at://" + in.Repo + "/" + in.Collection + "/" + rkey, "cid": cid})
	}
	mux.HandleFunc("POST /xrpc/com.atproto.repo.createRecord", write)
	mux.HandleFunc("POST /xrpc/com.atproto.repo.putRecord", write)
	mux.HandleFunc("POST /xrpc/com.atproto.repo.deleteRecord", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *projFakePDS) writes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.creates
}

// fakeClients hands out clients of the fake PDS, or err when set.
type fakeClients struct {
	pds *projFakePDS
	mu  sync.Mutex
	err error
}

func (f *fakeClients) APIClient(ctx context.Context, acct websession.Account) (*atclient.APIClient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	c := atclient.NewAPIClient(f.pds.srv.URL)
	c.Client = f.pds.srv.Client()
	return c, nil
}

func (f *fakeClients) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// noSender is a notify.Sender for a worker that never runs (only Retry is
// used here).
type noSender struct{}

func (noSender) Chat(context.Context, syntax.DID) (notify.Chat, error) {
	return nil, apperr.New(apperr.Unavailable, "not in these tests")
}

// projApp is a test app with the project pages over a real SQLite index,
// a fake PDS and a real (not running) outbox worker.
type projApp struct {
	*testApp
	db      *sql.DB
	pds     *projFakePDS
	clients *fakeClients
	svc     *projects.Service
	worker  *notify.Worker
}

func newProjApp(t *testing.T) *projApp {
	t.Helper()
	sdb, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "skydm.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	pds := newProjFakePDS(t)
	clients := &fakeClients{pds: pds}
	w, err := notify.New(notify.Config{DB: sdb, Sender: noSender{}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := projects.NewService(projects.Config{DB: sdb, BaseURL: "http://127.0.0.1:8080", OnEnqueue: w.Wake})
	if err != nil {
		t.Fatal(err)
	}
	dir := identity.NewMockDirectory()
	for did, handle := range map[string]string{bobDID: "bob.test", aliceDID: "alice.test", eveDID: "eve.test"} {
		dir.Insert(identity.Identity{DID: syntax.DID(did), Handle: syntax.Handle(handle)})
	}
	app := newTestApp(t, func(c *Config) {
		c.Projects = &Projects{Service: svc, Clients: clients, Outbox: w, Directory: dir}
	})
	return &projApp{testApp: app, db: sdb, pds: pds, clients: clients, svc: svc, worker: w}
}

// as returns a second browser (its own cookie jar) on the same server,
// signed in as did/handle.
func (a *projApp) as(did, handle string) *projApp {
	a.t.Helper()
	b := *a
	ta := *a.testApp
	jar, err := cookiejar.New(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	ta.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	b.testApp = &ta
	if did != "" {
		b.signIn(did, handle, true)
	}
	return &b
}

func (a *projApp) count(table string) int {
	a.t.Helper()
	var n int
	if err := a.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

// crossSite posts a form as another site's page would.
func (a *projApp) crossSite(path string, form url.Values) response {
	a.t.Helper()
	return a.postWith(path, form, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
}
