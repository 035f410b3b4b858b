package projectpages

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/projects"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// ProjectService is what the project pages need of *projects.Service.
type ProjectService interface {
	// CreateProject writes a project record through api and indexes it;
	// errors are *apperr.Error (Invalid with a field Reason, PDS failures).
	CreateProject(ctx context.Context, api *atclient.APIClient, owner syntax.DID, in projects.ProjectInput) (projects.Project, error)
	// FileChangeRequest writes a change request through api, indexes it
	// and queues its DM; errors as CreateProject, plus NotFound.
	FileChangeRequest(ctx context.Context, api *atclient.APIClient, requester syntax.DID, projectURI string, in projects.ChangeRequestInput) (projects.ChangeRequest, error)
	// Store is the index the pages read.
	Store() *projects.Store
}

// APIClients gives the pages an XRPC client acting as a signed-in
// account; see kit.APIClients.
type APIClients = kit.APIClients

// Outbox is what the Retry button needs (*notify.Worker implements it).
type Outbox interface {
	// Retry requeues a DM that was not delivered; errors are *apperr.Error
	// (NotFound, Forbidden, Conflict, RateLimited) or database errors.
	Retry(ctx context.Context, outboxID int64, byDID syntax.DID) error
}

// Config is what the project and change-request pages need. When
// handlers.Config.Projects is nil their routes are not served.
type Config struct {
	Service ProjectService // required
	Clients APIClients     // required
	Outbox  Outbox         // required
	// Directory, when set, turns DIDs into handles on the pages; without it
	// (or when a lookup fails) DIDs are shown.
	Directory identity.Directory
}

// Pages are the project and change-request handlers.
type Pages struct {
	kit *kit.Kit
	cfg Config
}

// New returns the pages; it returns an error when Service, Clients or
// Outbox is missing.
func New(k *kit.Kit, cfg Config) (*Pages, error) {
	if cfg.Service == nil || cfg.Clients == nil || cfg.Outbox == nil {
		return nil, errors.New("handlers: Projects needs Service, Clients and Outbox")
	}
	return &Pages{kit: k, cfg: cfg}, nil
}

// maxLongFormBytes caps the body of the project and change-request forms:
// a description or body may be 30,000 bytes of UTF-8, which URL encoding
// can triple.
const maxLongFormBytes = 128 << 10

// writer returns the signed-in account of a form post with its form read
// (parseLongForm), or answers (sign in first, a form that can't be read)
// and returns false.
func (pg *Pages) writer(w http.ResponseWriter, r *http.Request) (*websession.Account, bool) {
	cur := kit.Current(r.Context())
	if cur == nil {
		pg.kit.Error(w, r, errSignInToWrite)
		return nil, false
	}
	if err := parseLongForm(w, r); err != nil {
		pg.kit.Error(w, r, err)
		return nil, false
	}
	return cur, true
}

// parseLongForm reads a url-encoded form of at most maxLongFormBytes.
func parseLongForm(w http.ResponseWriter, r *http.Request) error {
	return kit.ReadForm(w, r, maxLongFormBytes, "The form could not be read (it may be too long). Please shorten it and try again.")
}

// Page sizes.
const (
	listPageSize   = 50
	recentProjects = 20
	lookupTimeout  = 3 * time.Second
	lookupParallel = 8
)

var (
	errNoProject       = apperr.New(apperr.NotFound, "There is no project at this address. It may have been deleted, or the link may be wrong.")
	errNoChangeRequest = apperr.New(apperr.NotFound, "There is no change request at this address. It may have been deleted, or the link may be wrong.")
	errSignInToWrite   = apperr.New(apperr.Unauthorized, "Please sign in first.")
)

// List is GET /projects: the viewer's projects and the recent ones, with
// the form to create one.
func (pg *Pages) List(w http.ResponseWriter, r *http.Request) {
	pg.renderProjects(w, r, http.StatusOK, views.ProjectForm{})
}

func (pg *Pages) renderProjects(w http.ResponseWriter, r *http.Request, status int, form views.ProjectForm) {
	ctx := r.Context()
	store := pg.cfg.Service.Store()
	v := views.ProjectsView{Form: form}
	var mine []projects.Project
	if cur := kit.Current(ctx); cur != nil {
		var next string
		var err error
		mine, next, err = store.ListProjects(ctx, cur.DID, projects.ListOptions{Limit: listPageSize, Cursor: r.URL.Query().Get("cursor")})
		if err != nil {
			pg.kit.Error(w, r, err)
			return
		}
		if next != "" {
			v.MineNext = "/projects?cursor=" + url.QueryEscape(next)
		}
	}
	recent, _, err := store.ListProjects(ctx, "", projects.ListOptions{Limit: recentProjects})
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	var dids []syntax.DID
	for _, p := range append(append([]projects.Project(nil), mine...), recent...) {
		dids = append(dids, p.OwnerDID)
	}
	names := pg.names(ctx, dids...)
	for _, p := range mine {
		v.Mine = append(v.Mine, projectVM(p, names))
	}
	for _, p := range recent {
		v.Recent = append(v.Recent, projectVM(p, names))
	}
	pg.kit.Render(w, r, status, views.ProjectsPage(pg.kit.Page(r, "Projects", "projects"), v))
}

// Create is POST /projects: it writes the project record and redirects to
// its page (PRG), or shows the form again with the message by its field.
func (pg *Pages) Create(w http.ResponseWriter, r *http.Request) {
	cur, ok := pg.writer(w, r)
	if !ok {
		return
	}
	form := views.ProjectForm{Name: r.PostForm.Get("name"), Description: r.PostForm.Get("description")}
	in := projects.ProjectInput{Name: form.Name, Description: form.Description}
	// Check the input before touching the session: bad input never
	// reaches the PDS, and the form comes back at once.
	if _, err := projects.ValidateProject(in); err != nil {
		pg.kit.Error(w, r, err, pg.onProjectForm(w, r, &form, err))
		return
	}
	api, err := pg.cfg.Clients.APIClient(r.Context(), *cur)
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	p, err := pg.cfg.Service.CreateProject(r.Context(), api, cur.DID, in)
	if err != nil {
		pg.kit.Error(w, r, err, pg.onProjectForm(w, r, &form, err))
		return
	}
	pg.kit.Log.InfoContext(r.Context(), "project created", "uri", p.URI.String(), "request_id", kit.RequestID(r.Context()))
	http.Redirect(w, r, p.Path(), http.StatusSeeOther)
}

// onProjectForm is the kit.Form option of the project form: the projects
// page again with err's message next to its field (or above the form) and
// the input kept. A PDS that refused the write (Forbidden) is shown there
// too: worth another try without retyping.
func (pg *Pages) onProjectForm(w http.ResponseWriter, r *http.Request, form *views.ProjectForm, err error) kit.ErrorOption {
	return kit.Form(func(status int, msg string) {
		*fieldOf(err, &form.Error, projects.ReasonInvalidName, &form.NameError, projects.ReasonInvalidDescription, &form.DescriptionError) = msg
		pg.renderProjects(w, r, status, *form)
	}, apperr.Forbidden)
}

// projectFromPath loads the project named by {owner}/{rkey}; it returns
// the NotFound error when the address is malformed or unknown.
func (pg *Pages) projectFromPath(r *http.Request) (projects.Project, error) {
	owner, rkey, ok := didAndRkey(r, 2)
	if !ok {
		return projects.Project{}, errNoProject
	}
	p, err := pg.cfg.Service.Store().Project(r.Context(), owner, rkey)
	if apperr.CodeOf(err) == apperr.NotFound {
		return projects.Project{}, errNoProject
	}
	return p, err
}

// Show is GET /projects/{owner}/{rkey}: a project with its change
// requests and the form to file one.
func (pg *Pages) Show(w http.ResponseWriter, r *http.Request) {
	p, err := pg.projectFromPath(r)
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	pg.renderProject(w, r, http.StatusOK, p, views.ChangeRequestForm{})
}

func (pg *Pages) renderProject(w http.ResponseWriter, r *http.Request, status int, p projects.Project, form views.ChangeRequestForm) {
	ctx := r.Context()
	list, next, err := pg.cfg.Service.Store().ProjectChangeRequests(ctx, p.URI,
		projects.ListOptions{Limit: listPageSize, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	viewer := pg.viewerDID(r)
	names := pg.names(ctx, append(changeRequestDIDs(list), p.OwnerDID)...)
	form.Action = p.Path() + "/change-requests"
	v := views.ProjectView{
		Project:    projectVM(p, names),
		IsOwner:    viewer != "" && viewer == p.OwnerDID,
		Form:       form,
		SignInPath: "/signin",
	}
	for _, c := range list {
		v.Requests = append(v.Requests, pg.changeRequestVM(c, viewer, names))
	}
	if next != "" {
		v.Next = p.Path() + "?cursor=" + url.QueryEscape(next)
	}
	pg.kit.Render(w, r, status, views.ProjectPage(pg.kit.Page(r, p.Name, "projects"), v))
}

// toProject sends a GET of the form's address (a bookmarked or reopened
// error page) to the project page.
func (pg *Pages) ToProject(w http.ResponseWriter, r *http.Request) {
	owner, rkey, ok := didAndRkey(r, 2)
	if !ok {
		pg.kit.Error(w, r, errNoProject)
		return
	}
	http.Redirect(w, r, projects.ProjectPath(owner, rkey), http.StatusSeeOther)
}

// FileChangeRequest is POST /projects/{owner}/{rkey}/change-requests: it
// files the change request (and queues its DM) and redirects to it.
func (pg *Pages) FileChangeRequest(w http.ResponseWriter, r *http.Request) {
	cur, ok := pg.writer(w, r)
	if !ok {
		return
	}
	p, err := pg.projectFromPath(r)
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	form := views.ChangeRequestForm{Title: r.PostForm.Get("title"), Body: r.PostForm.Get("body")}
	in := projects.ChangeRequestInput{Title: form.Title, Body: form.Body, RequesterHandle: cur.Handle}
	if _, err := projects.ValidateChangeRequest(in); err != nil {
		pg.kit.Error(w, r, err, pg.onChangeRequestForm(w, r, p, &form, err))
		return
	}
	api, err := pg.cfg.Clients.APIClient(r.Context(), *cur)
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	c, err := pg.cfg.Service.FileChangeRequest(r.Context(), api, cur.DID, p.URI.String(), in)
	if err != nil {
		pg.kit.Error(w, r, err, pg.onChangeRequestForm(w, r, p, &form, err))
		return
	}
	pg.kit.Log.InfoContext(r.Context(), "change request filed", "uri", c.URI.String(), "project", p.URI.String(), "request_id", kit.RequestID(r.Context()))
	http.Redirect(w, r, c.Path(), http.StatusSeeOther)
}

// onChangeRequestForm is the kit.Form option of the change-request form on
// the project page pr, as onProjectForm.
func (pg *Pages) onChangeRequestForm(w http.ResponseWriter, r *http.Request, pr projects.Project, form *views.ChangeRequestForm, err error) kit.ErrorOption {
	return kit.Form(func(status int, msg string) {
		*fieldOf(err, &form.Error, projects.ReasonInvalidTitle, &form.TitleError, projects.ReasonInvalidBody, &form.BodyError) = msg
		pg.renderProject(w, r, status, pr, *form)
	}, apperr.Forbidden)
}

// ChangeRequest is GET /change-requests/{requester}/{rkey}: one change
// request with its DM delivery.
func (pg *Pages) ChangeRequest(w http.ResponseWriter, r *http.Request) {
	requester, rkey, ok := didAndRkey(r, 2)
	if !ok {
		pg.kit.Error(w, r, errNoChangeRequest)
		return
	}
	ctx := r.Context()
	c, err := pg.cfg.Service.Store().ChangeRequest(ctx, requester, rkey)
	if apperr.CodeOf(err) == apperr.NotFound {
		err = errNoChangeRequest
	}
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	viewer := pg.viewerDID(r)
	names := pg.names(ctx, changeRequestDIDs([]projects.ChangeRequest{c})...)
	v := views.ChangeRequestView{
		CR:          pg.changeRequestVM(c, viewer, names),
		IsRequester: viewer != "" && viewer == c.RequesterDID,
		IsOwner:     viewer != "" && viewer == c.OwnerDID,
	}
	pg.kit.Render(w, r, http.StatusOK, views.ChangeRequestPage(pg.kit.Page(r, c.Title, "change-requests"), v))
}

// ChangeRequests is GET /change-requests: the incoming and mine tabs.
func (pg *Pages) ChangeRequests(w http.ResponseWriter, r *http.Request) {
	cur := kit.Current(r.Context())
	if cur == nil {
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	tab := views.TabIncoming
	if q.Get("tab") == views.TabMine {
		tab = views.TabMine
	}
	opt := projects.ListOptions{Limit: listPageSize, Cursor: q.Get("cursor")}
	store := pg.cfg.Service.Store()
	var (
		list []projects.ChangeRequest
		next string
		err  error
	)
	if tab == views.TabMine {
		list, next, err = store.RequesterChangeRequests(ctx, cur.DID, opt)
	} else {
		list, next, err = store.IncomingChangeRequests(ctx, cur.DID, opt)
	}
	if err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	names := pg.names(ctx, changeRequestDIDs(list)...)
	v := views.ChangeRequestsView{Tab: tab}
	for _, c := range list {
		v.Rows = append(v.Rows, pg.changeRequestVM(c, cur.DID, names))
	}
	if next != "" {
		v.Next = "/change-requests?tab=" + tab + "&cursor=" + url.QueryEscape(next)
	}
	pg.kit.Render(w, r, http.StatusOK, views.ChangeRequestsPage(pg.kit.Page(r, "Change requests", "change-requests"), v))
}

// OutboxRetry is POST /outbox/{id}/retry: requeues an undelivered DM and
// goes back to the page it was pressed on.
func (pg *Pages) OutboxRetry(w http.ResponseWriter, r *http.Request) {
	cur, ok := pg.writer(w, r)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		pg.kit.Error(w, r, apperr.New(apperr.NotFound, "We could not find that notification."))
		return
	}
	// The cookie alone is not enough: the OAuth session behind it must still
	// exist (not signed out elsewhere, not revoked), as for every write.
	if _, err := pg.cfg.Clients.APIClient(r.Context(), *cur); err != nil {
		pg.kit.Error(w, r, err)
		return
	}
	back := safeBack(r.PostForm.Get("back"))
	err = pg.cfg.Outbox.Retry(r.Context(), id, cur.DID)
	switch {
	case err == nil:
		pg.kit.Log.InfoContext(r.Context(), "notification retry", "outbox_id", id, "request_id", kit.RequestID(r.Context()))
	case apperr.CodeOf(err) == apperr.Conflict:
		// Already sent or already waiting (a second click): the page
		// shows which.
	default:
		pg.kit.Error(w, r, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// safeBack returns where a Retry returns to: a change request page or one
// of the list's tabs, rebuilt from parsed parts so a form can never
// redirect elsewhere; /change-requests otherwise.
func safeBack(v string) string {
	switch v {
	case "/change-requests?tab=" + views.TabIncoming, "/change-requests?tab=" + views.TabMine:
		return v
	}
	parts := strings.Split(v, "/")
	if len(parts) == 4 && parts[0] == "" && parts[1] == "change-requests" {
		if did, rkey, ok := parseDIDAndRkey(parts[2], parts[3]); ok {
			return projects.ChangeRequestPath(did, rkey)
		}
	}
	return "/change-requests"
}

// didAndRkey reads the DID and record key at segments i and i+1 of the
// request's path as sent (not percent-decoded: a did:web with a port
// carries "%3A", which is part of the DID). ok is false when either is
// malformed.
func didAndRkey(r *http.Request, i int) (syntax.DID, syntax.RecordKey, bool) {
	parts := strings.Split(r.URL.EscapedPath(), "/")
	if len(parts) <= i+1 {
		return "", "", false
	}
	return parseDIDAndRkey(parts[i], parts[i+1])
}

func parseDIDAndRkey(d, k string) (syntax.DID, syntax.RecordKey, bool) {
	did, err := syntax.ParseDID(d)
	if err != nil {
		return "", "", false
	}
	rkey, err := syntax.ParseRecordKey(k)
	if err != nil || rkey == "." || rkey == ".." {
		return "", "", false
	}
	return did, rkey, true
}

func (pg *Pages) viewerDID(r *http.Request) syntax.DID {
	if cur := kit.Current(r.Context()); cur != nil {
		return cur.DID
	}
	return ""
}

// fieldOf returns where a form shows err: the field whose reason err has
// (reason1 → field1, reason2 → field2), else above the form (general).
func fieldOf(err error, general *string, reason1 string, field1 *string, reason2 string, field2 *string) *string {
	switch apperr.ReasonOf(err) {
	case reason1:
		return field1
	case reason2:
		return field2
	}
	return general
}
