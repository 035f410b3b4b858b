package projects

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/notify/notifytest"
	"github.com/skydm/skydm/internal/pgtest"
)

const (
	alice    = syntax.DID("did:plc:alice")
	bob      = syntax.DID("did:plc:bob")
	carol    = syntax.DID("did:plc:carol")
	notifier = syntax.DID("did:plc:notifier")
)

type fixture struct {
	db  *sql.DB
	pds *fakePDS
	svc *Service
}

func openDB(t testing.TB) *sql.DB {
	t.Helper()
	sdb, err := db.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sdb.Close() })
	return sdb
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	sdb := openDB(t)
	cfg := Config{DB: sdb, BaseURL: "https://skydm.example/", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{db: sdb, pds: newFakePDS(t), svc: svc}
}

func (f *fixture) project(t testing.TB, owner syntax.DID, name string) Project {
	t.Helper()
	p, err := f.svc.CreateProject(context.Background(), f.pds.client(), owner, ProjectInput{Name: name, Description: "About " + name})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) rows(t testing.TB, table string) int {
	t.Helper()
	var n int
	if err := f.db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// failInserts makes every insert into table fail with the error "boom",
// with a trigger in the backend's own language.
func (f *fixture) failInserts(t testing.TB, table string) {
	t.Helper()
	stmts := []string{`CREATE TRIGGER fail_` + table + ` BEFORE INSERT ON ` + table + ` BEGIN SELECT RAISE(ABORT, 'boom'); END`}
	if db.DialectOf(f.db) == db.Postgres {
		stmts = []string{
			`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$`,
			`CREATE TRIGGER fail_` + table + ` BEFORE INSERT ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION boom()`,
		}
	}
	for _, q := range stmts {
		if _, err := f.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCreateProjectWritesTheRecordAndIndexesIt(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		f := newFixture(t, nil)
		ctx := context.Background()
		p, err := f.svc.CreateProject(ctx, f.pds.client(), bob, ProjectInput{Name: "  Widgets  ", Description: "Makes widgets.\r\nFast."})
		if err != nil {
			t.Fatal(err)
		}
		rec := f.pds.record(p.URI)
		if rec["$type"] != "dev.skydm.project" || rec["name"] != "Widgets" || rec["description"] != "Makes widgets.\nFast." || rec["createdAt"] == "" {
			t.Errorf("record = %v", rec)
		}
		if p.URI.Collection() != "dev.skydm.project" || p.OwnerDID != bob || p.Rkey == "" || p.CID == "" {
			t.Errorf("project = %+v", p)
		}
		got, err := f.svc.Store().Project(ctx, bob, p.Rkey)
		if err != nil || got.URI != p.URI || got.Name != "Widgets" || !got.CreatedAt.Equal(p.CreatedAt) {
			t.Fatalf("Store.Project = %+v, %v", got, err)
		}
		if p.Path() != "/projects/did:plc:bob/"+p.Rkey.String() {
			t.Errorf("path = %q", p.Path())
		}
		if _, err := f.svc.Store().Project(ctx, bob, "3kzzzzzzzzzzz"); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("missing project: %v, want NotFound", err)
		}
	})
}

func TestCreateProjectUnderAConfiguredAuthority(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.Authority = "com.example.tools" })
		p := f.project(t, bob, "Widgets")
		if p.URI.Collection() != "com.example.tools.project" || f.pds.record(p.URI)["$type"] != "com.example.tools.project" {
			t.Errorf("uri %s record %v", p.URI, f.pds.record(p.URI))
		}
		if _, err := NewService(Config{DB: f.db, BaseURL: "https://x", Authority: "not an authority"}); err == nil {
			t.Error("a bad authority was accepted")
		}
	})
}

func TestFileChangeRequestIndexesItAndQueuesTheDMTogether(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		woken := 0
		f := newFixture(t, func(c *Config) { c.OnEnqueue = func() { woken++ } })
		ctx := context.Background()
		p := f.project(t, bob, "Widgets")
		c, err := f.svc.FileChangeRequest(ctx, f.pds.client(), alice, p.URI.String(), ChangeRequestInput{Title: "Faster widgets", Body: "Please make them faster."})
		if err != nil {
			t.Fatal(err)
		}
		rec := f.pds.record(c.URI)
		ref, _ := rec["project"].(map[string]any)
		if rec["$type"] != "dev.skydm.changeRequest" || rec["title"] != "Faster widgets" || rec["body"] != "Please make them faster." ||
			ref["uri"] != p.URI.String() || ref["cid"] != p.CID {
			t.Errorf("record = %v", rec)
		}
		if woken != 1 {
			t.Errorf("OnEnqueue called %d times, want 1", woken)
		}
		n, ok := c.Notification()
		if !ok || n.State != notify.StateQueued || n.SenderDID != alice || n.RecipientDID != bob || n.RequesterDID != alice {
			t.Fatalf("notification = %+v", n)
		}
		var text, link string
		if err := f.db.QueryRow(`SELECT text, link_url FROM outbox WHERE id = ?`, n.ID).Scan(&text, &link); err != nil {
			t.Fatal(err)
		}
		wantLink := "https://skydm.example/change-requests/did:plc:alice/" + c.Rkey.String()
		if link != wantLink || !strings.Contains(text, "“Widgets”") || !strings.Contains(text, "“Faster widgets”") || !strings.Contains(text, wantLink) {
			t.Errorf("DM text %q link %q", text, link)
		}

		s := f.svc.Store()
		for name, list := range map[string]func() ([]ChangeRequest, string, error){
			"project's":   func() ([]ChangeRequest, string, error) { return s.ProjectChangeRequests(ctx, p.URI, ListOptions{}) },
			"incoming":    func() ([]ChangeRequest, string, error) { return s.IncomingChangeRequests(ctx, bob, ListOptions{}) },
			"requester's": func() ([]ChangeRequest, string, error) { return s.RequesterChangeRequests(ctx, alice, ListOptions{}) },
		} {
			got, next, err := list()
			if err != nil || len(got) != 1 || next != "" {
				t.Fatalf("%s list: %d items, next %q, err %v", name, len(got), next, err)
			}
			g := got[0]
			if g.URI != c.URI || g.ProjectName != "Widgets" || g.OwnerDID != bob || g.State != "open" || len(g.Notifications) != 1 ||
				g.Notifications[0].State != notify.StateQueued {
				t.Errorf("%s list item = %+v", name, g)
			}
		}
		if got, _, _ := s.IncomingChangeRequests(ctx, alice, ListOptions{}); len(got) != 0 {
			t.Errorf("alice's incoming list has %d items, want 0", len(got))
		}
		one, err := s.ChangeRequestByURI(ctx, c.URI)
		if err != nil || one.Title != "Faster widgets" || len(one.Notifications) != 1 {
			t.Errorf("ChangeRequestByURI = %+v, %v", one, err)
		}
	})
}

func TestFilingOnYourOwnProjectQueuesNoDM(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		f := newFixture(t, nil)
		p := f.project(t, bob, "Widgets")
		c, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), bob, p.URI.String(), ChangeRequestInput{Title: "T", Body: "B"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := c.Notification(); ok || f.rows(t, "outbox") != 0 {
			t.Errorf("a DM to oneself was queued")
		}
	})
}

func TestNotifierSendsTheDMAndNamesTheRequester(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		f := newFixture(t, func(c *Config) { c.NotifierDID = notifier })
		p := f.project(t, bob, "Widgets")
		c, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), alice, p.URI.String(),
			ChangeRequestInput{Title: "T", Body: "B", RequesterHandle: "alice.test"})
		if err != nil {
			t.Fatal(err)
		}
		n, _ := c.Notification()
		var text string
		f.db.QueryRow(`SELECT text FROM outbox WHERE id = ?`, n.ID).Scan(&text)
		if n.SenderDID != notifier || n.RequesterDID != alice || !strings.HasPrefix(text, "alice.test filed a change request for your project “Widgets”") {
			t.Errorf("sender %s requester %s text %q", n.SenderDID, n.RequesterDID, text)
		}
		if _, ok := f.pds.record(c.URI)["requesterHandle"]; ok {
			t.Error("the display-only handle was written to the record")
		}
	})
}

func TestBadInputIsRefusedAndNothingIsWritten(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		f := newFixture(t, nil)
		p := f.project(t, bob, "Widgets")
		_, creates0, _ := f.pds.count()
		okTitle, okBody := "A title", "A body"
		family := "👩‍👩‍👧‍👦" // one grapheme, 25 bytes
		for _, tc := range []struct {
			name      string
			requester syntax.DID
			project   string
			title     string
			body      string
			code      apperr.Code
			reason    string
			msg       string // a fragment of the human message
		}{
			{"signed out", "", p.URI.String(), okTitle, okBody, apperr.Unauthorized, "", "Sign in"},
			{"empty title", alice, p.URI.String(), "", okBody, apperr.Invalid, ReasonInvalidTitle, "Title is required."},
			{"blank title", alice, p.URI.String(), " \t ", okBody, apperr.Invalid, ReasonInvalidTitle, "Title is required."},
			{"title of 201 characters", alice, p.URI.String(), strings.Repeat("x", 201), okBody, apperr.Invalid, ReasonInvalidTitle, "Title is too long: at most 200 characters, and this one has 201."},
			{"title over 2000 bytes", alice, p.URI.String(), strings.Repeat(family, 81), okBody, apperr.Invalid, ReasonInvalidTitle, "Title is too long: at most 2000 bytes"},
			{"title on two lines", alice, p.URI.String(), "one\ntwo", okBody, apperr.Invalid, ReasonInvalidTitle, "Title must be a single line."},
			{"title not UTF-8", alice, p.URI.String(), "bad \xff", okBody, apperr.Invalid, ReasonInvalidTitle, "not valid text"},
			{"empty body", alice, p.URI.String(), okTitle, "", apperr.Invalid, ReasonInvalidBody, "Body is required."},
			{"body of 10001 characters", alice, p.URI.String(), okTitle, strings.Repeat("y", 10001), apperr.Invalid, ReasonInvalidBody, "Body is too long: at most 10000 characters, and this one has 10001."},
			{"body over 30000 bytes", alice, p.URI.String(), okTitle, strings.Repeat(family, 1201), apperr.Invalid, ReasonInvalidBody, "Body is too long: at most 30000 bytes"},
			{"body with a NUL", alice, p.URI.String(), okTitle, "a\x00b", apperr.Invalid, ReasonInvalidBody, "control characters"},
			{"project URI garbage", alice, "not a uri", okTitle, okBody, apperr.Invalid, ReasonInvalidProject, "not the address of a skydm project"},
			{"project URI of another collection", alice, "at://did:plc:bob/app.bsky.feed.post/3kaaa", okTitle, okBody, apperr.Invalid, ReasonInvalidProject, "not the address"},
			{"project URI with a handle", alice, "at://bob.test/dev.skydm.project/" + p.Rkey.String(), okTitle, okBody, apperr.Invalid, ReasonInvalidProject, "not the address"},
			{"project URI without rkey", alice, "at://did:plc:bob/dev.skydm.project", okTitle, okBody, apperr.Invalid, ReasonInvalidProject, "not the address"},
			{"project that does not exist", alice, "at://did:plc:bob/dev.skydm.project/3kzzzzzzzzzzz", okTitle, okBody, apperr.NotFound, "", "There is no project at that address"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), tc.requester, tc.project, ChangeRequestInput{Title: tc.title, Body: tc.body})
				e := apperr.As(err)
				if e == nil || e.Code != tc.code || e.Reason != tc.reason || !strings.Contains(apperr.MessageOf(err), tc.msg) {
					t.Fatalf("err = %#v (%q), want %s %q containing %q", e, apperr.MessageOf(err), tc.code, tc.reason, tc.msg)
				}
			})
		}
		if _, creates, _ := f.pds.count(); creates != creates0 {
			t.Errorf("createRecord called %d times for bad input", creates-creates0)
		}
		if f.rows(t, "change_requests") != 0 || f.rows(t, "outbox") != 0 {
			t.Error("bad input left rows behind")
		}
	})
}

func TestProjectValidation(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		for _, tc := range []struct {
			name string
			in   ProjectInput
			msg  string
		}{
			{"empty name", ProjectInput{Name: ""}, "Name is required."},
			{"name of 101 characters", ProjectInput{Name: strings.Repeat("n", 101)}, "Name is too long: at most 100 characters"},
			{"description of 3001 characters", ProjectInput{Name: "ok", Description: strings.Repeat("d", 3001)}, "Description is too long: at most 3000 characters"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if _, err := ValidateProject(tc.in); apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(apperr.MessageOf(err), tc.msg) {
					t.Errorf("err = %v, want Invalid %q", err, tc.msg)
				}
			})
		}
		if got, err := ValidateProject(ProjectInput{Name: strings.Repeat("n", 100), Description: ""}); err != nil || len(got.Name) != 100 {
			t.Errorf("a name at the limit was refused: %v", err)
		}
	})
}

func TestPDSFailuresSaveNothing(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		for _, tc := range []struct {
			status int
			code   apperr.Code
		}{
			{503, apperr.Unavailable},
			{401, apperr.Unauthorized},
			{429, apperr.RateLimited},
			{400, apperr.Invalid},
		} {
			t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
				f := newFixture(t, nil)
				p := f.project(t, bob, "Widgets")
				f.pds.failNext(tc.status)
				_, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), alice, p.URI.String(), ChangeRequestInput{Title: "T", Body: "B"})
				if apperr.CodeOf(err) != tc.code || strings.Contains(apperr.MessageOf(err), "injected") {
					t.Fatalf("err = %v (%q), want %s without upstream text", err, apperr.MessageOf(err), tc.code)
				}
				if f.rows(t, "change_requests") != 0 || f.rows(t, "outbox") != 0 {
					t.Error("a failed write left rows behind")
				}
			})
		}
	})
}

func TestIndexFailureDeletesTheRecordAgain(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		f := newFixture(t, nil)
		p := f.project(t, bob, "Widgets")
		f.failInserts(t, "outbox")
		records0, _, _ := f.pds.count()
		_, err := f.svc.FileChangeRequest(context.Background(), f.pds.client(), alice, p.URI.String(), ChangeRequestInput{Title: "T", Body: "B"})
		if apperr.CodeOf(err) != apperr.Internal || strings.Contains(apperr.MessageOf(err), "boom") {
			t.Fatalf("err = %v, want Internal with a generic message", err)
		}
		records, _, deletes := f.pds.count()
		if records != records0 || deletes != 1 {
			t.Errorf("records %d (was %d), deletes %d: the orphan record was not deleted", records, records0, deletes)
		}
		// The outbox insert failed, so the change request row rolled back too.
		if f.rows(t, "change_requests") != 0 {
			t.Error("the change request row survived its outbox row's failure")
		}
	})
}

func TestListsPageNewestFirst(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
		var mu sync.Mutex
		f := newFixture(t, func(c *Config) {
			c.Now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(time.Second)
				return now
			}
		})
		ctx := context.Background()
		p := f.project(t, bob, "Widgets")
		var want []syntax.ATURI
		for i := 0; i < 5; i++ {
			c, err := f.svc.FileChangeRequest(ctx, f.pds.client(), alice, p.URI.String(), ChangeRequestInput{Title: fmt.Sprint("T", i), Body: "B"})
			if err != nil {
				t.Fatal(err)
			}
			want = append([]syntax.ATURI{c.URI}, want...)
		}
		var got []syntax.ATURI
		cursor := ""
		for pages := 0; ; pages++ {
			list, next, err := f.svc.Store().ProjectChangeRequests(ctx, p.URI, ListOptions{Limit: 2, Cursor: cursor})
			if err != nil || pages > 5 {
				t.Fatalf("page %d: %v", pages, err)
			}
			for _, c := range list {
				got = append(got, c.URI)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("pages = %v, want %v", got, want)
		}
		if _, _, err := f.svc.Store().ProjectChangeRequests(ctx, p.URI, ListOptions{Cursor: "!!"}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("bad cursor: %v, want Invalid", err)
		}
		projects, _, err := f.svc.Store().ListProjects(ctx, "", ListOptions{})
		if err != nil || len(projects) != 1 {
			t.Errorf("ListProjects = %d, %v", len(projects), err)
		}
	})
}

// Two hundred change requests filed at once by ten users, delivered by a
// running worker: 200 rows, 200 DMs, no duplicates, and no error — in
// particular no SQLITE_BUSY — reaches anyone. It runs in a synctest bubble
// (the fake PDS is served in process): the worker's clock, its call
// timeouts and the deadline below are bubble time, which moves only while
// everything in the bubble is blocked, so a loaded machine slows it down
// but cannot make it fail.
func TestTwoHundredConcurrentFilingsAllDeliveredOnce(t *testing.T) {
	pgtest.Each(t, func(t *testing.T) {
		synctest.Test(t, twoHundredConcurrentFilings)
	})
}

func twoHundredConcurrentFilings(t *testing.T) {
	sdb := openDB(t)
	chat := notifytest.NewServer(nil)
	svc, err := NewService(Config{DB: sdb, BaseURL: "https://skydm.example"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: sdb, pds: newFakePDS(t), svc: svc}

	users := make([]syntax.DID, 10)
	projects := make([]Project, 10)
	for i := range users {
		users[i] = syntax.DID(fmt.Sprintf("did:plc:user%02d", i))
		projects[i] = f.project(t, users[i], fmt.Sprint("Project ", i))
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
		filed  []ChangeRequest
		client = f.pds.client()
	)
	for i, u := range users {
		for j := 0; j < 20; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := projects[(i+1+j%9)%10] // never the user's own project
				c, err := svc.FileChangeRequest(context.Background(), client, u, p.URI.String(),
					ChangeRequestInput{Title: fmt.Sprintf("Change %d from %d", j, i), Body: "Details."})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				filed = append(filed, c)
			}()
		}
	}
	wg.Wait()
	if len(errs) != 0 {
		t.Fatalf("%d filings failed; first: %v", len(errs), errs[0])
	}
	if len(filed) != 200 || f.rows(t, "change_requests") != 200 || f.rows(t, "outbox") != 200 {
		t.Fatalf("filed %d, rows %d, outbox %d; want 200", len(filed), f.rows(t, "change_requests"), f.rows(t, "outbox"))
	}

	w, err := notify.New(notify.Config{DB: sdb, Sender: chat.Sender(), PollInterval: 5 * time.Millisecond, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		var sent int
		sdb.QueryRow(`SELECT count(*) FROM outbox WHERE state = 'sent'`).Scan(&sent)
		if sent == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 200 sent", sent)
		}
		<-tick.C
	}
	all := chat.AllMessages()
	seen := map[string]bool{}
	for _, m := range all {
		if seen[m.Text] {
			t.Errorf("duplicate DM: %q", m.Text)
		}
		seen[m.Text] = true
	}
	if len(all) != 200 || chat.Calls(notifytest.MethodSend, "") != 200 {
		t.Errorf("DMs %d, sendMessage calls %d; want 200 and 200", len(all), chat.Calls(notifytest.MethodSend, ""))
	}
}
