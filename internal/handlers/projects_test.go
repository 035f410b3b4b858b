package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/notify"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/websession"
)

const (
	bobDID   = "did:plc:bob00000000000000000000000"
	aliceDID = "did:plc:alice000000000000000000000"
	eveDID   = "did:plc:eve00000000000000000000000"
)

// createProject creates a project as the signed-in account and returns its
// page path.
func (a *projApp) createProject(name, description string) string {
	a.t.Helper()
	res := a.post("/projects", url.Values{"name": {name}, "description": {description}})
	loc := res.header.Get("Location")
	if res.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/projects/") {
		a.t.Fatalf("POST /projects: %d %q: %s", res.status, loc, testid(res.doc, "project-name-error").Text()+testid(res.doc, "error-message").Text())
	}
	return loc
}

// fileRequest files a change request on the project at path and returns
// the change request's page path.
func (a *projApp) fileRequest(projectPath, title, body string) string {
	a.t.Helper()
	res := a.post(projectPath+"/change-requests", url.Values{"title": {title}, "body": {body}})
	loc := res.header.Get("Location")
	if res.status != http.StatusSeeOther || !strings.HasPrefix(loc, "/change-requests/") {
		a.t.Fatalf("filing: %d %q: %s", res.status, loc, testid(res.doc, "cr-form-error").Text()+testid(res.doc, "error-message").Text())
	}
	return loc
}

func TestProjectCreatedShowsOnItsPageAndInTheList(t *testing.T) {
	a := newProjApp(t)
	bob := a.as(bobDID, "bob.test")
	path := bob.createProject("Widgets", "Make <b>better</b> widgets.\nSecond line.")

	res := bob.get(path)
	if res.status != http.StatusOK {
		t.Fatalf("GET %s: %d", path, res.status)
	}
	if got := strings.TrimSpace(testid(res.doc, "project-name").Text()); got != "Widgets" {
		t.Errorf("name %q", got)
	}
	if got := testid(res.doc, "project-description").Text(); got != "Make <b>better</b> widgets.\nSecond line." {
		t.Errorf("description %q", got)
	}
	if strings.Contains(res.body, "<b>better</b>") {
		t.Error("the description's markup reached the page unescaped")
	}
	if got := testid(res.doc, "project-owner").Text(); got != "bob.test" {
		t.Errorf("owner %q, want bob.test", got)
	}
	if testid(res.doc, "cr-form").Length() != 1 {
		t.Error("the owner sees no change request form")
	}
	list := bob.get("/projects")
	if n := testid(list.doc, "my-project").Length(); n != 1 {
		t.Errorf("%d projects under Your projects, want 1", n)
	}
	if href, _ := testid(list.doc, "my-project").Find(`[data-testid="project-link"]`).Attr("href"); href != path {
		t.Errorf("project link %q, want %q", href, path)
	}
	if cur, _ := list.doc.Find(`[data-testid="nav-projects"]`).Attr("aria-current"); cur != "page" {
		t.Errorf("nav Projects aria-current %q", cur)
	}
}

func TestProjectFormRejectsBadInputAndWritesNothing(t *testing.T) {
	cases := []struct {
		name, pname, desc string
		field, want       string
	}{
		{"empty name", "", "x", "project-name-error", "Name is required."},
		{"blank name", "   \t ", "", "project-name-error", "Name is required."},
		{"name too long", strings.Repeat("n", projects.ProjectNameMaxGraphemes+1), "", "project-name-error", "Name is too long: at most 100 characters"},
		{"name on two lines", "one\ntwo", "", "project-name-error", "Name must be a single line."},
		{"description too long", "ok", strings.Repeat("d", projects.ProjectDescriptionMaxGraphemes+1), "project-description-error", "Description is too long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newProjApp(t)
			bob := a.as(bobDID, "bob.test")
			res := bob.post("/projects", url.Values{"name": {c.pname}, "description": {c.desc}})
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", res.status)
			}
			if got := testid(res.doc, c.field).Text(); !strings.HasPrefix(got, c.want) {
				t.Errorf("%s = %q, want %q…", c.field, got, c.want)
			}
			if v, _ := testid(res.doc, "project-name").Attr("value"); v != c.pname {
				t.Errorf("name kept as %q", v)
			}
			if got := testid(res.doc, "project-description").Text(); got != strings.TrimPrefix(c.desc, "\n") {
				t.Errorf("description kept as %d bytes, want %d", len(got), len(c.desc))
			}
			if a.pds.writes() != 0 || a.count("projects") != 0 {
				t.Errorf("written: %d PDS writes, %d rows", a.pds.writes(), a.count("projects"))
			}
		})
	}
}

func TestChangeRequestFormRejectsBadInputAndKeepsTheDraft(t *testing.T) {
	emoji := strings.Repeat("🙂", 7600) // 7,600 characters but 30,400 bytes
	cases := []struct {
		name, title, body string
		field, want       string
	}{
		{"empty title", "", "a body", "cr-title-error", "Title is required."},
		{"title too long", strings.Repeat("t", projects.TitleMaxGraphemes+1), "a body", "cr-title-error", "Title is too long: at most 200 characters, and this one has 201."},
		{"empty body", "A title", "", "cr-body-error", "Body is required."},
		{"blank body", "A title", " \n\n ", "cr-body-error", "Body is required."},
		{"body too long", "A title", strings.Repeat("b", projects.BodyMaxGraphemes+1), "cr-body-error", "Body is too long: at most 10000 characters, and this one has 10001."},
		{"body too many bytes", "A title", emoji, "cr-body-error", "Body is too long: at most 30000 bytes of text"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newProjApp(t)
			path := a.as(bobDID, "bob.test").createProject("Widgets", "")
			writes := a.pds.writes()
			alice := a.as(aliceDID, "alice.test")
			res := alice.post(path+"/change-requests", url.Values{"title": {c.title}, "body": {c.body}})
			if res.status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400; page says %q", res.status, testid(res.doc, "error-message").Text())
			}
			if got := testid(res.doc, c.field).Text(); !strings.HasPrefix(got, c.want) {
				t.Errorf("%s = %q, want %q…", c.field, got, c.want)
			}
			if v, _ := testid(res.doc, "cr-title").Attr("value"); v != c.title {
				t.Errorf("title kept as %q", v)
			}
			if got := testid(res.doc, "cr-body").Text(); got != strings.TrimPrefix(c.body, "\n") {
				t.Errorf("body kept as %d bytes, want %d", len(got), len(c.body))
			}
			if got := strings.TrimSpace(testid(res.doc, "project-name").Text()); got != "Widgets" {
				t.Errorf("the project page was not shown again (name %q)", got)
			}
			if a.pds.writes() != writes || a.count("change_requests") != 0 || a.count("outbox") != 0 {
				t.Errorf("written: %d PDS writes, %d change requests, %d outbox rows",
					a.pds.writes()-writes, a.count("change_requests"), a.count("outbox"))
			}
		})
	}
}

func TestMissingProjectIsA404WithAClearMessage(t *testing.T) {
	a := newProjApp(t)
	alice := a.as(aliceDID, "alice.test")
	for _, path := range []string{
		"/projects/did:plc:nobody000000000000000000/3kabcdefghi22",
		"/projects/not-a-did/3kabcdefghi22",
		"/projects/did:plc:nobody000000000000000000/bad%20key",
	} {
		res := alice.get(path)
		if res.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.status)
		}
		if got := testid(res.doc, "error-message").Text(); !strings.Contains(got, "There is no project at this address") {
			t.Errorf("GET %s: message %q", path, got)
		}
	}
	res := alice.post("/projects/did:plc:nobody000000000000000000/3kabcdefghi22/change-requests",
		url.Values{"title": {"A title"}, "body": {"A body"}})
	if res.status != http.StatusNotFound || !strings.Contains(testid(res.doc, "error-message").Text(), "There is no project at this address") {
		t.Errorf("filing on a missing project: %d %q", res.status, testid(res.doc, "error-message").Text())
	}
	res = alice.get("/change-requests/did:plc:nobody000000000000000000/3kabcdefghi22")
	if res.status != http.StatusNotFound || !strings.Contains(testid(res.doc, "error-message").Text(), "There is no change request at this address") {
		t.Errorf("missing change request: %d %q", res.status, testid(res.doc, "error-message").Text())
	}
	if a.pds.writes() != 0 || a.count("change_requests") != 0 {
		t.Errorf("written: %d PDS writes, %d rows", a.pds.writes(), a.count("change_requests"))
	}
}

func TestSignedOutWritesGoToSignIn(t *testing.T) {
	a := newProjApp(t)
	path := a.as(bobDID, "bob.test").createProject("Widgets", "")
	writes := a.pds.writes()
	anon := a.as("", "")

	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/projects", url.Values{"name": {"Mine"}}},
		{path + "/change-requests", url.Values{"title": {"A title"}, "body": {"A body"}}},
		{"/outbox/1/retry", nil},
	} {
		res := anon.post(c.path, c.form)
		if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin") {
			t.Errorf("POST %s signed out: %d %q, want 303 /signin", c.path, res.status, res.header.Get("Location"))
		}
	}
	if res := anon.get("/change-requests"); res.status != http.StatusSeeOther || res.header.Get("Location") != "/signin" {
		t.Errorf("GET /change-requests signed out: %d %q", res.status, res.header.Get("Location"))
	}
	// Reading stays open, with a way to sign in instead of the forms.
	res := anon.get(path)
	if res.status != http.StatusOK || testid(res.doc, "cr-form").Length() != 0 || testid(res.doc, "propose-signin").Length() != 1 {
		t.Errorf("signed-out project page: %d, form %d, sign-in prompt %d", res.status,
			testid(res.doc, "cr-form").Length(), testid(res.doc, "propose-signin").Length())
	}
	res = anon.get("/projects")
	if res.status != http.StatusOK || testid(res.doc, "project-form").Length() != 0 || testid(res.doc, "recent-project").Length() != 1 {
		t.Errorf("signed-out projects page: %d, form %d, recent %d", res.status,
			testid(res.doc, "project-form").Length(), testid(res.doc, "recent-project").Length())
	}
	if a.pds.writes() != writes || a.count("projects") != 1 || a.count("change_requests") != 0 {
		t.Errorf("written while signed out: %d PDS writes, %d projects, %d change requests",
			a.pds.writes()-writes, a.count("projects"), a.count("change_requests"))
	}
}

func TestCrossOriginPostsAreRefusedAndWriteNothing(t *testing.T) {
	a := newProjApp(t)
	bob := a.as(bobDID, "bob.test")
	path := bob.createProject("Widgets", "")
	alice := a.as(aliceDID, "alice.test")
	crPath := alice.fileRequest(path, "A title", "A body")
	st := a.statusOf(crPath)
	if _, err := a.db.Exec(`UPDATE outbox SET state = 'not_delivered' WHERE id = ?`, st.ID); err != nil {
		t.Fatal(err)
	}
	writes, crs := a.pds.writes(), a.count("change_requests")

	for _, c := range []struct {
		path string
		form url.Values
	}{
		{"/projects", url.Values{"name": {"Forged"}}},
		{path + "/change-requests", url.Values{"title": {"Forged"}, "body": {"Forged"}}},
		{"/outbox/" + itoa(st.ID) + "/retry", url.Values{"back": {crPath}}},
	} {
		res := alice.crossSite(c.path, c.form)
		if res.status != http.StatusForbidden {
			t.Errorf("forged POST %s: %d, want 403", c.path, res.status)
		}
		if got := testid(res.doc, "error-message").Text(); !strings.Contains(got, "sent from another site") {
			t.Errorf("forged POST %s: message %q", c.path, got)
		}
	}
	if a.pds.writes() != writes || a.count("projects") != 1 || a.count("change_requests") != crs {
		t.Errorf("a forged form wrote: %d PDS writes, %d projects, %d change requests",
			a.pds.writes()-writes, a.count("projects"), a.count("change_requests"))
	}
	if got := a.statusOf(crPath); got.State != notify.StateNotDelivered {
		t.Errorf("a forged Retry requeued the DM: %s", got.State)
	}
}

func TestExpiredSessionOnWriteSignsInAgainAndWritesNothing(t *testing.T) {
	a := newProjApp(t)
	bob := a.as(bobDID, "bob.test")
	a.clients.fail(&apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired", Message: "gone"})
	res := bob.post("/projects", url.Values{"name": {"Widgets"}})
	if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/signin?") ||
		!strings.Contains(res.header.Get("Location"), "reason=expired") {
		t.Errorf("%d %q, want 303 to /signin?…reason=expired", res.status, res.header.Get("Location"))
	}
	if a.pds.writes() != 0 || a.count("projects") != 0 {
		t.Errorf("written: %d, %d", a.pds.writes(), a.count("projects"))
	}
}

func TestRetryWithAnEndedSessionSignsInAgainAndRequeuesNothing(t *testing.T) {
	a := newProjApp(t)
	path := a.as(bobDID, "bob.test").createProject("Widgets", "")
	alice := a.as(aliceDID, "alice.test")
	crPath := alice.fileRequest(path, "A title", "A body")
	st := a.statusOf(crPath)
	if _, err := a.db.Exec(`UPDATE outbox SET state = 'not_delivered' WHERE id = ?`, st.ID); err != nil {
		t.Fatal(err)
	}
	// The cookie still names alice, but her OAuth session is gone
	// (signed out in another browser, or revoked at her PDS).
	a.clients.fail(&apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired", Message: "gone"})
	res := alice.post("/outbox/"+itoa(st.ID)+"/retry", url.Values{"back": {crPath}})
	if res.status != http.StatusSeeOther || !strings.Contains(res.header.Get("Location"), "reason=expired") {
		t.Errorf("%d %q, want 303 to /signin?…reason=expired", res.status, res.header.Get("Location"))
	}
	if got := a.statusOf(crPath); got.State != notify.StateNotDelivered {
		t.Errorf("a retry without a live session requeued the DM: %s", got.State)
	}
}

func (a *projApp) statusOf(crPath string) notify.Status {
	a.t.Helper()
	parts := strings.Split(crPath, "/")
	c, err := a.svc.Store().ChangeRequest(context.Background(), syntax.DID(parts[2]), syntax.RecordKey(parts[3]))
	if err != nil {
		a.t.Fatal(err)
	}
	st, ok := c.Notification()
	if !ok {
		a.t.Fatalf("%s has no notification", crPath)
	}
	return st
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestFilingShowsTheDMStateToBothSidesAndRetryRequeues(t *testing.T) {
	a := newProjApp(t)
	bob := a.as(bobDID, "bob.test")
	path := bob.createProject("Widgets", "")
	alice := a.as(aliceDID, "alice.test")
	crPath := alice.fileRequest(path, "Faster widgets", "Please make them faster.")

	res := alice.get(crPath)
	if res.status != http.StatusOK {
		t.Fatalf("GET %s: %d", crPath, res.status)
	}
	for id, want := range map[string]string{
		"cr-title": "Faster widgets", "cr-body": "Please make them faster.",
		"cr-requester": "alice.test", "cr-project-link": "Widgets",
	} {
		if got := strings.TrimSpace(testid(res.doc, id).Text()); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	if href, _ := testid(res.doc, "cr-project-link").Attr("href"); href != path {
		t.Errorf("project link %q, want %q", href, path)
	}
	if st, _ := testid(res.doc, "delivery").Attr("data-state"); st != "queued" {
		t.Errorf("delivery state %q, want queued", st)
	}
	if testid(res.doc, "delivery-retry").Length() != 0 {
		t.Error("Retry offered for a queued DM")
	}

	// The chat service refused it: both sides see why, each with their fix.
	st := a.statusOf(crPath)
	if _, err := a.db.Exec(`UPDATE outbox SET state = 'not_delivered', reason_code = 'NotFollowedBySender',
		last_error_reason = 'bob.test only accepts DMs from accounts they follow.',
		fix = 'Ask them to follow you, or to allow DMs from everyone, then retry.' WHERE id = ?`, st.ID); err != nil {
		t.Fatal(err)
	}
	res = alice.get(crPath)
	if got := testid(res.doc, "delivery-state").Text(); got != "Not delivered" {
		t.Errorf("state label %q", got)
	}
	if got := testid(res.doc, "delivery-reason").Text(); got != "bob.test only accepts DMs from accounts they follow." {
		t.Errorf("reason %q", got)
	}
	if got := testid(res.doc, "delivery-fix").Text(); !strings.Contains(got, "Ask them to follow you") {
		t.Errorf("requester's fix %q", got)
	}
	incoming := bob.get("/change-requests")
	row := testid(incoming.doc, "cr-row")
	if row.Length() != 1 {
		t.Fatalf("bob's incoming list has %d rows", row.Length())
	}
	if got := row.Find(`[data-testid="delivery-reason"]`).Text(); got != "bob.test only accepts DMs from accounts they follow." {
		t.Errorf("incoming reason %q", got)
	}
	if got := row.Find(`[data-testid="delivery-fix"]`).Text(); !strings.Contains(got, "follow alice.test") {
		t.Errorf("owner's fix %q, want it to say to follow alice.test", got)
	}
	if cur, _ := testid(incoming.doc, "tab-incoming").Attr("aria-current"); cur != "page" {
		t.Errorf("incoming tab not current")
	}
	mine := alice.get("/change-requests?tab=mine")
	if testid(mine.doc, "cr-row").Length() != 1 || testid(mine.doc, "cr-row-owner").Text() != "bob.test" {
		t.Errorf("alice's Mine tab: %d rows, owner %q", testid(mine.doc, "cr-row").Length(), testid(mine.doc, "cr-row-owner").Text())
	}

	// Someone else may not retry it.
	eve := a.as(eveDID, "eve.test")
	res = eve.post("/outbox/"+itoa(st.ID)+"/retry", url.Values{"back": {crPath}})
	if res.status != http.StatusForbidden {
		t.Errorf("Retry by a stranger: %d, want 403", res.status)
	}
	if got := a.statusOf(crPath); got.State != notify.StateNotDelivered {
		t.Fatalf("a stranger's Retry changed the state to %s", got.State)
	}
	if testid(eve.get(crPath).doc, "delivery-retry").Length() != 0 {
		t.Error("Retry offered to a stranger")
	}

	// The owner retries from the incoming list and is sent back there.
	res = bob.post("/outbox/"+itoa(st.ID)+"/retry", url.Values{"back": {"/change-requests?tab=incoming"}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/change-requests?tab=incoming" {
		t.Fatalf("Retry by the owner: %d %q", res.status, res.header.Get("Location"))
	}
	if got := a.statusOf(crPath); got.State != notify.StateQueued || got.Reason != "" {
		t.Errorf("after Retry: %s %q, want queued without a reason", got.State, got.Reason)
	}
	// A second click finds it already queued: back to the page, no error.
	res = alice.post("/outbox/"+itoa(st.ID)+"/retry", url.Values{"back": {crPath}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != crPath {
		t.Errorf("second Retry: %d %q, want 303 %s", res.status, res.header.Get("Location"), crPath)
	}

	// Sent: the requester and the owner see it with the conversation link;
	// a stranger sees no delivery state at all.
	if _, err := a.db.Exec(`UPDATE outbox SET state = 'sent', convo_id = 'convo-1', sent_at = 1700000000000 WHERE id = ?`, st.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		who   *projApp
		state string
		link  string
	}{{alice, "sent", "/convos/convo-1"}, {bob, "sent", "/convos/convo-1"}, {eve, "", ""}} {
		doc := c.who.get(crPath).doc
		if st, _ := testid(doc, "delivery").Attr("data-state"); st != c.state {
			t.Errorf("state %q, want %q", st, c.state)
		}
		if href, _ := testid(doc, "delivery-convo").Attr("href"); href != c.link {
			t.Errorf("conversation link %q, want %q", href, c.link)
		}
	}
}

func TestSignInCallsOnSignIn(t *testing.T) {
	var got []string
	app := newTestApp(t, func(c *Config) {
		c.OnSignIn = func(ctx context.Context, acct websession.Account) { got = append(got, acct.DID.String()) }
	})
	app.signIn(aliceDID, "alice.test", true)
	if len(got) != 1 || got[0] != aliceDID {
		t.Fatalf("OnSignIn calls %v, want [%s]", got, aliceDID)
	}
}

func TestGetOfTheFilingAddressGoesToTheProject(t *testing.T) {
	a := newProjApp(t)
	path := a.as(bobDID, "bob.test").createProject("Widgets", "")
	res := a.as(aliceDID, "alice.test").get(path + "/change-requests")
	if res.status != http.StatusSeeOther || res.header.Get("Location") != path {
		t.Errorf("GET %s/change-requests: %d %q, want 303 %s", path, res.status, res.header.Get("Location"), path)
	}
	if a.count("change_requests") != 0 {
		t.Error("a GET wrote something")
	}
}

func TestProjectsWithAnEndedSessionShowsTheSignedOutState(t *testing.T) {
	app := newProjApp(t)
	app.signIn(bobDID, "bob.test", true)
	if res := app.get("/projects"); testid(res.doc, "project-form").Length() != 1 {
		t.Fatal("signed in: no create form")
	}
	app.auth.endSession("ses-1")
	res := app.get("/projects")
	if res.status != http.StatusOK || testid(res.doc, "project-form").Length() != 0 || testid(res.doc, "projects-signin").Length() != 1 {
		t.Fatalf("/projects after the session ended: status %d, create form %d, sign-in prompt %d; want the signed-out page",
			res.status, testid(res.doc, "project-form").Length(), testid(res.doc, "projects-signin").Length())
	}
}
