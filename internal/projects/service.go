package projects

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
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
	// Sessions lets the reconciler check a cut-off filing against the
	// requester's repository (intents.go). Optional: without it pending
	// intents are kept, never checked.
	Sessions Sessions
	// ReconcileInterval is how often pending intents are checked; default 1m.
	ReconcileInterval time.Duration
	// SettleTime is how long after its last write an intent whose record
	// is absent is kept (a write of a dead process may still be landing)
	// before it is dropped; default 2×WriteTimeout.
	SettleTime time.Duration
	Now        func() time.Time // nil → time.Now
	Logger     *slog.Logger     // nil → discard
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
	tids  *syntax.TIDClock // record keys of change requests, chosen before the write
	wake  chan struct{}    // WakeReconciler

	imu      sync.Mutex
	inflight map[string]int // intents of filings under way in this process
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
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = time.Minute
	}
	if cfg.SettleTime <= 0 {
		cfg.SettleTime = 2 * cfg.WriteTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Service{
		cfg:      cfg,
		cols:     cols,
		store:    NewStore(cfg.DB),
		base:     strings.TrimRight(cfg.BaseURL, "/"),
		now:      cfg.Now,
		log:      log.With("component", "projects"),
		tids:     syntax.NewTIDClock(uint(mrand.IntN(1024))), // a TID's clock id is 10 bits
		wake:     make(chan struct{}, 1),
		inflight: map[string]int{},
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
	return s.writeRecord(ctx, api, "com.atproto.repo.createRecord", repo, col, map[string]any{
		"repo": repo.String(), "collection": col.String(), "record": rec,
	})
}

// putRecord writes rec at repo/col/rkey (idempotent: writing it again
// leaves the same record) and returns its URI and CID.
func (s *Service) putRecord(ctx context.Context, api *atclient.APIClient, repo syntax.DID, col syntax.NSID, rkey syntax.RecordKey, rec any) (syntax.ATURI, string, error) {
	return s.writeRecord(ctx, api, "com.atproto.repo.putRecord", repo, col, map[string]any{
		"repo": repo.String(), "collection": col.String(), "rkey": rkey.String(), "record": rec,
	})
}

func (s *Service) writeRecord(ctx context.Context, api *atclient.APIClient, method syntax.NSID, repo syntax.DID, col syntax.NSID, body map[string]any) (syntax.ATURI, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	var out comatproto.RepoCreateRecord_Output
	if err := api.Post(ctx, method, body, &out); err != nil {
		return "", "", writeError(err)
	}
	uri, err := syntax.ParseATURI(out.Uri)
	if err != nil || out.Cid == "" {
		return "", "", apperr.Wrap(fmt.Errorf("%s returned uri %q cid %q: %v", method, out.Uri, out.Cid, err),
			apperr.Internal, "")
	}
	if did, err := uri.Authority().AsDID(); err != nil || did != repo || uri.Collection() != col {
		return "", "", apperr.Wrap(fmt.Errorf("%s returned %s for repo %s collection %s", method, uri, repo, col),
			apperr.Internal, "")
	}
	return uri, out.Cid, nil
}

// deleteRecord undoes a write when indexing failed, so that the repository
// holds nothing skydm does not know about. Best effort: it reports whether
// the PDS confirmed the deletion.
func (s *Service) deleteRecord(ctx context.Context, api *atclient.APIClient, uri syntax.ATURI) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WriteTimeout)
	defer cancel()
	err := api.Post(ctx, syntax.NSID("com.atproto.repo.deleteRecord"), map[string]any{
		"repo":       uri.Authority().String(),
		"collection": uri.Collection().String(),
		"rkey":       uri.RecordKey().String(),
	}, nil)
	if err != nil {
		s.log.Error("could not delete a record after indexing it failed", "uri", uri, "err", err)
		return false
	}
	return true
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
			return &apperr.Error{Code: apperr.Unauthorized, Reason: apperr.ReasonSessionExpired,
				Message: "Your session has expired. Please sign in again; nothing was saved.", Err: err}
		case apiErr.StatusCode == 403:
			return &apperr.Error{Code: apperr.Forbidden, Reason: apperr.ReasonScopeMissing,
				Message: "skydm is not allowed to save records to your account. Sign in again and allow it; nothing was saved.", Err: err}
		case apiErr.StatusCode == 429:
			return &apperr.Error{Code: apperr.RateLimited, Reason: apperr.ReasonRateLimited,
				Message: "Your PDS asked us to slow down. Please wait a moment and try again; nothing was saved.", Err: err}
		case apiErr.StatusCode >= 500:
			return &apperr.Error{Code: apperr.Unavailable, Reason: apperr.ReasonUnavailable,
				Message: "Your PDS (the server that holds your account's data) is not answering. Please try again; nothing was saved.", Err: err}
		case apiErr.StatusCode >= 400:
			return &apperr.Error{Code: apperr.Invalid, Reason: ReasonRecordRefused,
				Message: "Your PDS did not accept this record; nothing was saved.", Err: err}
		}
	case errors.Is(err, context.DeadlineExceeded):
		return &apperr.Error{Code: apperr.Unavailable, Reason: apperr.ReasonUnavailable,
			Message: "Your PDS took too long to answer. Please try again; nothing was saved.", Err: err}
	case errors.Is(err, context.Canceled):
		return &apperr.Error{Code: apperr.Unavailable, Reason: apperr.ReasonCanceled, Message: "The request was canceled; nothing was saved.", Err: err}
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return &apperr.Error{Code: apperr.Unavailable, Reason: apperr.ReasonUnavailable,
			Message: "Your PDS (the server that holds your account's data) is not answering. Please try again; nothing was saved.", Err: err}
	}
	// indigo's OAuth session reports a dead refresh token as a plain error.
	if msg := strings.ToLower(err.Error()); strings.Contains(msg, "refresh") && strings.Contains(msg, "token") {
		return &apperr.Error{Code: apperr.Unauthorized, Reason: apperr.ReasonSessionExpired,
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
// project, and files the change request crash-safely (intents.go): it
// records the intent with a record key chosen here, writes the record to
// requesterDID's repository with putRecord through api (the requester's
// session), then indexes it and enqueues the DM to the project's owner in
// one SQLite transaction (idempotency key: change request URI × recipient).
// No DM is queued when the sender would be the owner (filing on your own
// project without a notifier). It returns an *apperr.Error: Unauthorized
// when requesterDID is empty, Invalid for bad input or a malformed project
// URI, NotFound when there is no such project (nothing is written in
// either case), the PDS failures of CreateProject, and Internal when
// indexing fails (the record is then deleted again, or, if even that
// fails, settled by the reconciler).
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
	in1 := intent{
		requester:  requesterDID,
		rkey:       syntax.RecordKey(s.tids.Next().String()),
		collection: s.cols.ChangeRequest,
		projectURI: project.URI,
		record: ChangeRequestRecord{
			Type:      s.cols.ChangeRequest.String(),
			Title:     in.Title,
			Body:      in.Body,
			Project:   &comatproto.RepoStrongRef{Uri: project.URI.String(), Cid: project.CID},
			CreatedAt: datetime(created),
		},
		requesterHandle: in.RequesterHandle,
	}
	s.begin(in1)
	defer s.end(in1)
	if err := s.store.insertIntent(ctx, in1, s.now()); err != nil {
		return ChangeRequest{}, apperr.Wrap(err, apperr.Internal, "")
	}
	_, cid, err := s.putRecord(ctx, api, requesterDID, in1.collection, in1.rkey, in1.record)
	if err != nil {
		s.abandon(ctx, api, in1, err)
		return ChangeRequest{}, err
	}
	c, _, err := s.finish(ctx, in1, cid)
	if err != nil {
		s.abandon(ctx, api, in1, err)
		return ChangeRequest{}, err
	}
	st, err := notify.StatusesFor(ctx, s.cfg.DB, []syntax.ATURI{c.URI})
	if err != nil {
		s.log.Error("reading the new change request's notification", "uri", c.URI, "err", err)
	}
	c.Notifications = st[c.URI]
	return c, nil
}

// abandon undoes a filing that failed after its intent was recorded: a PDS
// that refused the write (4xx) wrote nothing, so the intent is dropped;
// otherwise (the write may have happened, or indexing failed) the record is
// deleted, and the intent dropped once the PDS confirms it. When neither
// is certain the intent stays pending and the reconciler settles it.
func (s *Service) abandon(ctx context.Context, api *atclient.APIClient, in intent, err error) {
	var apiErr *atclient.APIError
	refused := errors.As(err, &apiErr) && apiErr.StatusCode >= 400 && apiErr.StatusCode < 500
	if !refused && !s.deleteRecord(ctx, api, in.uri()) {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := s.store.dropIntent(dctx, in); err != nil {
		s.log.Error("dropping an abandoned change request intent failed; the reconciler will", "uri", in.uri(), "err", err)
	}
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
