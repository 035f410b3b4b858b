package projects

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/notify"
)

// Config configures a Service.
type Config struct {
	DB *sql.DB // required; opened by internal/db
	// Authority is the NSID authority of the record types: records are
	// <Authority>.project and <Authority>.changeRequest. "" →
	// DefaultAuthority ("dev.skydm"). cmd/web sets it from -nsid-authority.
	// An operator who changes it should publish lexicons/dev/skydm/*.json
	// under the new ids.
	Authority string
	// BaseURL is skydm's public base URL ("https://skydm.example"), for the
	// link in DMs. Required.
	BaseURL string
	// NotifierDID, when set, is the account that sends every change-request
	// DM instead of the requester. It must sign in to skydm like anyone
	// (OAuth with DM access); see package notify.
	NotifierDID syntax.DID
	// OnEnqueue is called after a change request and its DM are committed
	// (e.g. notify.Worker.Wake). Optional.
	OnEnqueue func()
	// WriteTimeout bounds each call to the user's PDS; default 20s.
	WriteTimeout time.Duration
	Now          func() time.Time // nil → time.Now
	Logger       *slog.Logger     // nil → discard
}

// Service creates projects and files change requests: it writes the
// records to the signed-in user's repository and indexes them.
type Service struct {
	cfg   Config
	cols  Collections
	store *Store
	base  string
	now   func() time.Time
	log   *slog.Logger
}

// NewService returns a Service. It returns an error when DB or BaseURL is
// missing or invalid, or the authority does not make valid NSIDs.
func NewService(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("projects: Config.DB is required")
	}
	cols, err := CollectionsFor(cfg.Authority)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("projects: Config.BaseURL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	if cfg.NotifierDID != "" {
		if _, err := syntax.ParseDID(cfg.NotifierDID.String()); err != nil {
			return nil, fmt.Errorf("projects: Config.NotifierDID: %w", err)
		}
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 20 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{
		cfg:   cfg,
		cols:  cols,
		store: NewStore(cfg.DB),
		base:  strings.TrimRight(cfg.BaseURL, "/"),
		now:   cfg.Now,
		log:   log.With("component", "projects"),
	}, nil
}

// Store returns the index, for the pages' queries.
func (s *Service) Store() *Store { return s.store }

// Collections returns the record collections in use.
func (s *Service) Collections() Collections { return s.cols }

// ChangeRequestURL returns the absolute URL of a change request's page,
// the link its DM carries.
func (s *Service) ChangeRequestURL(requester syntax.DID, rkey syntax.RecordKey) string {
	return s.base + ChangeRequestPath(requester, rkey)
}

// createRecord writes rec to repo through the user's session and returns
// its URI and CID.
func (s *Service) createRecord(ctx context.Context, api *atclient.APIClient, repo syntax.DID, col syntax.NSID, rec any) (syntax.ATURI, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	var out comatproto.RepoCreateRecord_Output
	err := api.Post(ctx, syntax.NSID("com.atproto.repo.createRecord"), map[string]any{
		"repo":       repo.String(),
		"collection": col.String(),
		"record":     rec,
	}, &out)
	if err != nil {
		return "", "", writeError(err)
	}
	uri, err := syntax.ParseATURI(out.Uri)
	if err != nil || out.Cid == "" {
		return "", "", apperr.Wrap(fmt.Errorf("createRecord returned uri %q cid %q: %v", out.Uri, out.Cid, err),
			apperr.Internal, "")
	}
	if did, err := uri.Authority().AsDID(); err != nil || did != repo || uri.Collection() != col {
		return "", "", apperr.Wrap(fmt.Errorf("createRecord returned %s for repo %s collection %s", uri, repo, col),
			apperr.Internal, "")
	}
	return uri, out.Cid, nil
}

// deleteRecord undoes createRecord when indexing failed, so that the
// repository holds nothing skydm does not know about. Best effort.
func (s *Service) deleteRecord(ctx context.Context, api *atclient.APIClient, uri syntax.ATURI) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WriteTimeout)
	defer cancel()
	err := api.Post(ctx, syntax.NSID("com.atproto.repo.deleteRecord"), map[string]any{
		"repo":       uri.Authority().String(),
		"collection": uri.Collection().String(),
		"rkey":       uri.RecordKey().String(),
	}, nil)
	if err != nil {
		s.log.Error("could not delete a record after indexing it failed", "uri", uri, "err", err)
	}
}

// writeError maps a failed repository write to an *apperr.Error.
func writeError(err error) error {
	if apperr.As(err) != nil {
		return err
	}
	var apiErr *atclient.APIError
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.StatusCode == 401 || apiErr.Name == "ExpiredToken" || apiErr.Name == "InvalidToken" || apiErr.Name == "AuthMissing":
			return &apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired",
				Message: "Your session has expired. Please sign in again; nothing was saved.", Err: err}
		case apiErr.StatusCode == 403:
			return &apperr.Error{Code: apperr.Forbidden, Reason: "ScopeMissing",
				Message: "skydm is not allowed to save records to your account. Sign in again and allow it; nothing was saved.", Err: err}
		case apiErr.StatusCode == 429:
			return &apperr.Error{Code: apperr.RateLimited, Reason: "RateLimited",
				Message: "Your PDS asked us to slow down. Please wait a moment and try again; nothing was saved.", Err: err}
		case apiErr.StatusCode >= 500:
			return &apperr.Error{Code: apperr.Unavailable, Reason: "Unavailable",
				Message: "Your PDS (the server that holds your account's data) is not answering. Please try again; nothing was saved.", Err: err}
		case apiErr.StatusCode >= 400:
			return &apperr.Error{Code: apperr.Invalid, Reason: "InvalidRecord",
				Message: "Your PDS did not accept this record; nothing was saved.", Err: err}
		}
	case errors.Is(err, context.DeadlineExceeded):
		return &apperr.Error{Code: apperr.Unavailable, Reason: "Unavailable",
			Message: "Your PDS took too long to answer. Please try again; nothing was saved.", Err: err}
	case errors.Is(err, context.Canceled):
		return &apperr.Error{Code: apperr.Unavailable, Reason: "Canceled", Message: "The request was canceled; nothing was saved.", Err: err}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return &apperr.Error{Code: apperr.Unavailable, Reason: "Unavailable",
			Message: "Your PDS (the server that holds your account's data) is not answering. Please try again; nothing was saved.", Err: err}
	}
	// indigo's OAuth session reports a dead refresh token as a plain error.
	if msg := strings.ToLower(err.Error()); strings.Contains(msg, "refresh") && strings.Contains(msg, "token") {
		return &apperr.Error{Code: apperr.Unauthorized, Reason: "SessionExpired",
			Message: "Your session has expired. Please sign in again; nothing was saved.", Err: err}
	}
	return apperr.Wrap(err, apperr.Internal, "")
}

// datetime formats t as an atproto datetime (UTC, milliseconds).
func datetime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// CreateProject validates in, writes a project record to ownerDID's
// repository through api (the owner's session), and indexes it. It returns
// an *apperr.Error: Unauthorized when ownerDID is empty, Invalid for bad
// input (nothing is written), Unauthorized/Forbidden/Unavailable/
// RateLimited when the PDS refuses or fails (nothing is saved), and
// Internal when indexing fails (the record is then deleted again).
func (s *Service) CreateProject(ctx context.Context, api *atclient.APIClient, ownerDID syntax.DID, in ProjectInput) (Project, error) {
	if ownerDID == "" || api == nil {
		return Project{}, apperr.New(apperr.Unauthorized, "Sign in to create a project.")
	}
	in, err := ValidateProject(in)
	if err != nil {
		return Project{}, err
	}
	created := s.now().UTC().Truncate(time.Millisecond)
	rec := ProjectRecord{Type: s.cols.Project.String(), Name: in.Name, Description: in.Description, CreatedAt: datetime(created)}
	uri, cid, err := s.createRecord(ctx, api, ownerDID, s.cols.Project, rec)
	if err != nil {
		return Project{}, err
	}
	p := Project{URI: uri, CID: cid, OwnerDID: ownerDID, Rkey: uri.RecordKey(), Name: in.Name,
		Description: in.Description, CreatedAt: created, IndexedAt: s.now().UTC()}
	if err := s.store.insertProject(ctx, p); err != nil {
		s.deleteRecord(ctx, api, uri)
		return Project{}, apperr.Wrap(err, apperr.Internal, "")
	}
	return p, nil
}

// FileChangeRequest validates in, checks that projectURI names an indexed
// project, writes a change request record to requesterDID's repository
// through api (the requester's session), then indexes it and enqueues the
// DM to the project's owner in one SQLite transaction (idempotency key:
// change request URI × recipient). No DM is queued when the sender would
// be the owner (filing on your own project without a notifier). It returns
// an *apperr.Error: Unauthorized when requesterDID is empty, Invalid for
// bad input or a malformed project URI, NotFound when there is no such
// project (nothing is written in either case), the PDS failures of
// CreateProject, and Internal when indexing fails (the record is then
// deleted again).
func (s *Service) FileChangeRequest(ctx context.Context, api *atclient.APIClient, requesterDID syntax.DID, projectURI string, in ChangeRequestInput) (ChangeRequest, error) {
	if requesterDID == "" || api == nil {
		return ChangeRequest{}, apperr.New(apperr.Unauthorized, "Sign in to file a change request.")
	}
	in, err := ValidateChangeRequest(in)
	if err != nil {
		return ChangeRequest{}, err
	}
	puri, err := s.cols.ParseProjectURI(projectURI)
	if err != nil {
		return ChangeRequest{}, err
	}
	project, err := s.store.ProjectByURI(ctx, puri)
	if err != nil {
		return ChangeRequest{}, err
	}
	created := s.now().UTC().Truncate(time.Millisecond)
	rec := ChangeRequestRecord{
		Type:      s.cols.ChangeRequest.String(),
		Title:     in.Title,
		Body:      in.Body,
		Project:   &comatproto.RepoStrongRef{Uri: project.URI.String(), Cid: project.CID},
		CreatedAt: datetime(created),
	}
	uri, cid, err := s.createRecord(ctx, api, requesterDID, s.cols.ChangeRequest, rec)
	if err != nil {
		return ChangeRequest{}, err
	}
	c := ChangeRequest{
		URI: uri, CID: cid, RequesterDID: requesterDID, Rkey: uri.RecordKey(),
		ProjectURI: project.URI, ProjectCID: project.CID, ProjectName: project.Name, OwnerDID: project.OwnerDID,
		Title: in.Title, Body: in.Body, CreatedAt: created, IndexedAt: s.now().UTC(), State: "open",
	}
	d, err := s.delivery(c, in.RequesterHandle)
	if err != nil {
		s.deleteRecord(ctx, api, uri)
		return ChangeRequest{}, err
	}
	if _, err := s.store.insertChangeRequest(ctx, c, d); err != nil {
		s.deleteRecord(ctx, api, uri)
		return ChangeRequest{}, apperr.Wrap(err, apperr.Internal, "")
	}
	if d != nil && s.cfg.OnEnqueue != nil {
		s.cfg.OnEnqueue()
	}
	st, err := notify.StatusesFor(ctx, s.cfg.DB, []syntax.ATURI{c.URI})
	if err != nil {
		s.log.Error("reading the new change request's notification", "uri", c.URI, "err", err)
	}
	c.Notifications = st[c.URI]
	return c, nil
}

// delivery builds the DM for c, or nil when the sender would be the owner.
func (s *Service) delivery(c ChangeRequest, requesterHandle string) (*notify.Delivery, error) {
	sender := c.RequesterDID
	filedBy := ""
	if s.cfg.NotifierDID != "" {
		sender = s.cfg.NotifierDID
		filedBy = requesterHandle
		if filedBy == "" {
			filedBy = c.RequesterDID.String()
		}
	}
	if sender == c.OwnerDID {
		return nil, nil
	}
	msg, err := notify.ChangeRequestMessage(notify.MessageParams{
		ProjectName:  c.ProjectName,
		Title:        c.Title,
		URL:          s.ChangeRequestURL(c.RequesterDID, c.Rkey),
		SubjectURI:   c.URI,
		RecipientDID: c.OwnerDID,
		FiledBy:      filedBy,
	})
	if err != nil {
		return nil, apperr.Wrap(err, apperr.Internal, "")
	}
	return &notify.Delivery{
		SubjectURI:   c.URI,
		RequesterDID: c.RequesterDID,
		SenderDID:    sender,
		RecipientDID: c.OwnerDID,
		Message:      msg,
	}, nil
}
