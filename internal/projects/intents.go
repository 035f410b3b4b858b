package projects

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/budget"
	"github.com/skydm/skydm/internal/notify"
)

// Crash-safe filing. A change request is filed in three steps, so that a
// crash at any instant leaves either nothing or something to reconcile:
//
//  1. record the intent (rkey chosen up front, full record) in one
//     transaction, state "pending";
//  2. putRecord with that rkey (idempotent: a retry writes the same record);
//  3. in one transaction: intent → "filed", change request indexed, DM
//     queued.
//
// The reconciler checks every pending intent that no filing in this
// process is working on against the requester's repository: present →
// step 3 (exactly once: it is conditional on the intent still pending);
// absent → the intent is dropped once it is older than the settle time.
// Dropping, not writing again, because the requester was never told the
// request was filed (the process died, or they were shown an error): writing
// it later behind their back would file a request they may well have filed
// again, and the page must never show one that is not in their repository.
// Without a usable session for the requester the intent waits until they
// sign in again (Service.WakeReconciler from the OAuth callback).

// Intent states.
const (
	intentPending = "pending"
	intentFiled   = "filed"
)

// Sessions gives the reconciler an XRPC client acting as a requester
// (cmd/web adapts *oauth.Service). It returns an error when the account has
// no usable session; the intent is then kept.
type Sessions interface {
	APIClientForDID(ctx context.Context, did syntax.DID) (*atclient.APIClient, error)
}

// intent is one filing under way.
type intent struct {
	requester       syntax.DID
	rkey            syntax.RecordKey
	collection      syntax.NSID
	projectURI      syntax.ATURI
	record          ChangeRequestRecord
	requesterHandle string
	updatedAt       time.Time
}

func (in intent) key() string { return in.requester.String() + "/" + in.rkey.String() }

func (in intent) uri() syntax.ATURI {
	return syntax.ATURI("at://" + in.requester.String() + "/" + in.collection.String() + "/" + in.rkey.String())
}

// insertIntent records in as pending.
func (s *Store) insertIntent(ctx context.Context, in intent, now time.Time) error {
	rec, err := json.Marshal(in.record)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return withTx(ctx, s.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO change_request_intents (requester_did, rkey, collection,
			project_uri, record, requester_handle, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.requester.String(), in.rkey.String(), in.collection.String(), in.projectURI.String(), string(rec),
			in.requesterHandle, intentPending, now.UnixMilli(), now.UnixMilli())
		return err
	})
}

// dropIntent deletes a pending intent (its record is not in the repository).
func (s *Store) dropIntent(ctx context.Context, in intent) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.db.ExecContext(ctx, `DELETE FROM change_request_intents WHERE requester_did = ? AND rkey = ? AND state = ?`,
		in.requester.String(), in.rkey.String(), intentPending)
	return err
}

// pendingIntents returns up to limit pending intents, oldest first.
func (s *Store) pendingIntents(ctx context.Context, limit int) ([]intent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT requester_did, rkey, collection, project_uri, record,
		requester_handle, updated_at FROM change_request_intents WHERE state = ? ORDER BY created_at LIMIT ?`,
		intentPending, limit)
	if err != nil {
		return nil, fmt.Errorf("projects: pending intents: %w", err)
	}
	defer rows.Close()
	var out []intent
	for rows.Next() {
		var (
			in                                    intent
			requester, rkey, col, project, record string
			updated                               int64
		)
		if err := rows.Scan(&requester, &rkey, &col, &project, &record, &in.requesterHandle, &updated); err != nil {
			return nil, fmt.Errorf("projects: pending intents: %w", err)
		}
		if err := json.Unmarshal([]byte(record), &in.record); err != nil {
			return nil, fmt.Errorf("projects: intent %s/%s: %w", requester, rkey, err)
		}
		in.requester, in.rkey, in.collection = syntax.DID(requester), syntax.RecordKey(rkey), syntax.NSID(col)
		in.projectURI, in.updatedAt = syntax.ATURI(project), time.UnixMilli(updated)
		out = append(out, in)
	}
	return out, rows.Err()
}

// finishIntent marks the intent filed, indexes c and queues d (when not
// nil), in one transaction. It reports false, writing nothing, when the
// intent is no longer pending (finished or dropped already).
func (s *Store) finishIntent(ctx context.Context, in intent, c ChangeRequest, d *notify.Delivery) (bool, error) {
	var done bool
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := withTx(ctx, s.db, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE change_request_intents SET state = ?, updated_at = ?
			WHERE requester_did = ? AND rkey = ? AND state = ?`,
			intentFiled, c.IndexedAt.UnixMilli(), in.requester.String(), in.rkey.String(), intentPending)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err
		}
		if err := insertChangeRequestTx(ctx, tx, c, d); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done && err == nil, err
}

// begin and end bracket a filing in this process, so the reconciler leaves
// its intent alone meanwhile.
func (s *Service) begin(in intent) {
	s.imu.Lock()
	defer s.imu.Unlock()
	s.inflight[in.key()]++
}

func (s *Service) end(in intent) {
	s.imu.Lock()
	defer s.imu.Unlock()
	if s.inflight[in.key()]--; s.inflight[in.key()] <= 0 {
		delete(s.inflight, in.key())
	}
}

func (s *Service) busy(in intent) bool {
	s.imu.Lock()
	defer s.imu.Unlock()
	return s.inflight[in.key()] > 0
}

// finish builds the change request of in (its record at cid) and its DM,
// and commits them with the intent marked filed. It returns the change
// request and whether this call filed it.
func (s *Service) finish(ctx context.Context, in intent, cid string) (ChangeRequest, bool, error) {
	project, err := s.store.ProjectByURI(ctx, in.projectURI)
	if err != nil {
		return ChangeRequest{}, false, err
	}
	created, err := syntax.ParseDatetime(in.record.CreatedAt)
	if err != nil {
		return ChangeRequest{}, false, apperr.Wrap(err, apperr.Internal, "")
	}
	projectCID := project.CID
	if in.record.Project != nil {
		projectCID = in.record.Project.Cid
	}
	c := ChangeRequest{
		URI: in.uri(), CID: cid, RequesterDID: in.requester, Rkey: in.rkey,
		ProjectURI: project.URI, ProjectCID: projectCID, ProjectName: project.Name, OwnerDID: project.OwnerDID,
		Title: in.record.Title, Body: in.record.Body, CreatedAt: created.Time().UTC(), IndexedAt: s.now().UTC(), State: "open",
	}
	d, err := s.delivery(c, in.requesterHandle)
	if err != nil {
		return ChangeRequest{}, false, err
	}
	filed, err := s.store.finishIntent(ctx, in, c, d)
	if err != nil {
		return ChangeRequest{}, false, apperr.Wrap(err, apperr.Internal, "")
	}
	if filed && d != nil && s.cfg.OnEnqueue != nil {
		s.cfg.OnEnqueue()
	}
	return c, filed, nil
}

// getRecordCID returns the CID of the record at uri in its repository, or
// found=false when the repository has no such record.
func (s *Service) getRecordCID(ctx context.Context, api *atclient.APIClient, uri syntax.ATURI) (cid string, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	var out struct { // not comatproto.RepoGetRecord_Output: it refuses record types indigo does not know
		URI string `json:"uri"`
		CID string `json:"cid"`
	}
	err = api.Get(ctx, syntax.NSID("com.atproto.repo.getRecord"), map[string]any{
		"repo":       uri.Authority().String(),
		"collection": uri.Collection().String(),
		"rkey":       uri.RecordKey().String(),
	}, &out)
	var apiErr *atclient.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Name == "RecordNotFound":
		return "", false, nil
	case err != nil:
		return "", false, err
	case out.CID == "":
		return "", false, fmt.Errorf("getRecord %s returned no cid", uri)
	}
	return out.CID, true, nil
}

// WakeReconciler asks the reconciler for a pass soon (after a sign-in,
// whose session may let waiting intents be checked). It never blocks.
func (s *Service) WakeReconciler() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RunReconciler reconciles pending intents at once, then every
// ReconcileInterval and after each WakeReconciler, until ctx is done.
func (s *Service) RunReconciler(ctx context.Context) {
	ctx = budget.Background(ctx) // its PDS calls leave the upstream budget's reserve to pages
	t := time.NewTicker(s.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		if n, err := s.Reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("reconciling change requests failed", "err", err)
		} else if n > 0 {
			s.log.Info("reconciled change requests", "settled", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Reconcile checks every pending intent that no filing in this process is
// working on against the requester's repository, as described at the top
// of this file. It returns how many intents it settled (finished or
// dropped) and the first database error; an intent whose repository cannot
// be asked now (no session, PDS down) is kept for a later pass.
func (s *Service) Reconcile(ctx context.Context) (int, error) {
	list, err := s.store.pendingIntents(ctx, 500)
	if err != nil {
		return 0, err
	}
	apis := map[syntax.DID]*atclient.APIClient{}
	noSession := map[syntax.DID]bool{}
	settled := 0
	for _, in := range list {
		if ctx.Err() != nil {
			return settled, nil
		}
		if s.busy(in) || noSession[in.requester] {
			continue
		}
		log := s.log.With("uri", in.uri())
		api := apis[in.requester]
		if api == nil {
			if s.cfg.Sessions == nil {
				return settled, nil
			}
			api, err = s.cfg.Sessions.APIClientForDID(ctx, in.requester)
			if err != nil {
				log.Info("change request waits for its requester to sign in again", "err", err)
				noSession[in.requester] = true
				continue
			}
			apis[in.requester] = api
		}
		cid, found, err := s.getRecordCID(ctx, api, in.uri())
		switch {
		case err != nil:
			log.Warn("could not check an unfinished change request; will try again", "err", err)
		case found:
			if _, filed, err := s.finish(ctx, in, cid); err != nil {
				log.Error("finishing an unfinished change request failed", "err", err)
			} else if filed {
				settled++
				log.Info("finished a change request cut off mid-filing")
			}
		case s.now().Sub(in.updatedAt) < s.cfg.SettleTime:
			// A write the dead process sent may still be landing.
		default:
			if err := s.store.dropIntent(ctx, in); err != nil {
				return settled, err
			}
			settled++
			log.Info("dropped a change request that never reached the repository")
		}
	}
	return settled, nil
}
