package projects

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/db"
	"github.com/skydm/skydm/internal/notify"
)

// Project is an indexed project record.
type Project struct {
	URI         syntax.ATURI
	CID         string
	OwnerDID    syntax.DID
	Rkey        syntax.RecordKey
	Name        string
	Description string
	CreatedAt   time.Time // the record's createdAt
	IndexedAt   time.Time
}

// Path returns the project's page path in skydm (ProjectPath).
func (p Project) Path() string { return ProjectPath(p.OwnerDID, p.Rkey) }

// ChangeRequest is an indexed change request with its project's name and
// the delivery state of its DM(s).
type ChangeRequest struct {
	URI          syntax.ATURI
	CID          string
	RequesterDID syntax.DID
	Rkey         syntax.RecordKey
	ProjectURI   syntax.ATURI
	ProjectCID   string // the version the requester saw (the record's strongRef)
	ProjectName  string
	OwnerDID     syntax.DID
	Title        string
	Body         string
	CreatedAt    time.Time // the record's createdAt
	IndexedAt    time.Time
	State        string // "open" or "closed"
	// Notifications are the outbox rows of this change request, oldest
	// first: one (to the owner) in practice; none when the requester owns
	// the project and no notifier is configured.
	Notifications []notify.Status
}

// Path returns the change request's page path in skydm
// (ChangeRequestPath).
func (c ChangeRequest) Path() string { return ChangeRequestPath(c.RequesterDID, c.Rkey) }

// Notification returns the first notification of the change request; ok
// is false when there is none.
func (c ChangeRequest) Notification() (s notify.Status, ok bool) {
	if len(c.Notifications) == 0 {
		return notify.Status{}, false
	}
	return c.Notifications[0], true
}

// ProjectPath is the path of a project's page: /projects/{owner DID}/{rkey}.
func ProjectPath(owner syntax.DID, rkey syntax.RecordKey) string {
	return "/projects/" + owner.String() + "/" + rkey.String()
}

// ChangeRequestPath is the path of a change request's page, the link in
// its DM: /change-requests/{requester DID}/{rkey}.
func ChangeRequestPath(requester syntax.DID, rkey syntax.RecordKey) string {
	return "/change-requests/" + requester.String() + "/" + rkey.String()
}

// ListOptions pages a list, newest first.
type ListOptions struct {
	Limit  int    // 1..200; 0 → 50
	Cursor string // from the previous page; "" → the newest
}

func (o ListOptions) limit() int {
	switch {
	case o.Limit <= 0:
		return 50
	case o.Limit > 200:
		return 200
	}
	return o.Limit
}

// cursor is (created_at ms, uri), opaque to callers.
func encodeCursor(createdAt time.Time, uri syntax.ATURI) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(createdAt.UnixMilli(), 10) + "|" + uri.String()))
}

func decodeCursor(s string) (int64, string, error) {
	if s == "" {
		return 0, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		ms, uri, ok := strings.Cut(string(b), "|")
		if ok {
			if n, err := strconv.ParseInt(ms, 10, 64); err == nil {
				return n, uri, nil
			}
		}
	}
	return 0, "", apperr.New(apperr.Invalid, "That page link is not valid. Start again from the first page.")
}

// Store is skydm's SQLite index of projects and change requests. Its
// queries return *apperr.Error NotFound for missing things, Invalid for a
// bad cursor, and wrapped database errors otherwise.
type Store struct {
	db *sql.DB
	// wmu serialises this Store's write transactions: SQLite admits one
	// writer at a time, and queueing on a Go mutex is fairer and faster
	// than SQLite's busy handler, which sleeps 1–100 ms between tries.
	wmu sync.Mutex
}

// NewStore returns a Store over db (opened by internal/db, migrated).
func NewStore(db *sql.DB) *Store { return &Store{db: db} }

const projectColumns = `uri, cid, owner_did, rkey, name, description, created_at, indexed_at`

func scanProject(sc interface{ Scan(...any) error }) (Project, error) {
	var (
		p                    Project
		uri, owner, rkey     string
		createdAt, indexedAt int64
	)
	if err := sc.Scan(&uri, &p.CID, &owner, &rkey, &p.Name, &p.Description, &createdAt, &indexedAt); err != nil {
		return Project{}, err
	}
	p.URI, p.OwnerDID, p.Rkey = syntax.ATURI(uri), syntax.DID(owner), syntax.RecordKey(rkey)
	p.CreatedAt, p.IndexedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(indexedAt).UTC()
	return p, nil
}

var errProjectNotFound = apperr.New(apperr.NotFound, "There is no project at that address. It may have been deleted, or the link may be wrong.")

func notFound(err error, nf *apperr.Error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		e := *nf
		return &e
	}
	return fmt.Errorf("projects: %s: %w", what, err)
}

// Project returns the project with this owner and record key.
func (s *Store) Project(ctx context.Context, owner syntax.DID, rkey syntax.RecordKey) (Project, error) {
	p, err := scanProject(s.db.QueryRowContext(ctx,
		`SELECT `+projectColumns+` FROM projects WHERE owner_did = ? AND rkey = ?`, owner.String(), rkey.String()))
	if err != nil {
		return Project{}, notFound(err, errProjectNotFound, "project")
	}
	return p, nil
}

// ProjectByURI returns the project with this AT URI.
func (s *Store) ProjectByURI(ctx context.Context, uri syntax.ATURI) (Project, error) {
	p, err := scanProject(s.db.QueryRowContext(ctx,
		`SELECT `+projectColumns+` FROM projects WHERE uri = ?`, uri.String()))
	if err != nil {
		return Project{}, notFound(err, errProjectNotFound, "project")
	}
	return p, nil
}

// ListProjects returns projects, newest first — all of them, or one
// owner's when owner is not "" — and the cursor of the next page ("" at
// the end).
func (s *Store) ListProjects(ctx context.Context, owner syntax.DID, opt ListOptions) ([]Project, string, error) {
	ms, curURI, err := decodeCursor(opt.Cursor)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT ` + projectColumns + ` FROM projects WHERE 1=1`
	var args []any
	if owner != "" {
		q += ` AND owner_did = ?`
		args = append(args, owner.String())
	}
	if opt.Cursor != "" {
		q += ` AND (created_at, uri) < (?, ?)`
		args = append(args, ms, curURI)
	}
	q += ` ORDER BY created_at DESC, uri DESC LIMIT ?`
	args = append(args, opt.limit()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("projects: list projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, "", fmt.Errorf("projects: list projects: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("projects: list projects: %w", err)
	}
	next := ""
	if len(out) > opt.limit() {
		out = out[:opt.limit()]
		last := out[len(out)-1]
		next = encodeCursor(last.CreatedAt, last.URI)
	}
	return out, next, nil
}

const crColumns = `c.uri, c.cid, c.requester_did, c.rkey, c.project_uri, c.project_cid, p.name, c.owner_did,
	c.title, c.body, c.created_at, c.indexed_at, c.state`

func scanChangeRequest(sc interface{ Scan(...any) error }) (ChangeRequest, error) {
	var (
		c                                   ChangeRequest
		uri, requester, rkey, project, ownr string
		createdAt, indexedAt                int64
	)
	if err := sc.Scan(&uri, &c.CID, &requester, &rkey, &project, &c.ProjectCID, &c.ProjectName, &ownr,
		&c.Title, &c.Body, &createdAt, &indexedAt, &c.State); err != nil {
		return ChangeRequest{}, err
	}
	c.URI, c.RequesterDID, c.Rkey = syntax.ATURI(uri), syntax.DID(requester), syntax.RecordKey(rkey)
	c.ProjectURI, c.OwnerDID = syntax.ATURI(project), syntax.DID(ownr)
	c.CreatedAt, c.IndexedAt = time.UnixMilli(createdAt).UTC(), time.UnixMilli(indexedAt).UTC()
	return c, nil
}

var errChangeRequestNotFound = apperr.New(apperr.NotFound, "There is no change request at that address. It may have been deleted, or the link may be wrong.")

// ChangeRequest returns one change request, by its requester and record
// key, with its notifications.
func (s *Store) ChangeRequest(ctx context.Context, requester syntax.DID, rkey syntax.RecordKey) (ChangeRequest, error) {
	c, err := scanChangeRequest(s.db.QueryRowContext(ctx, `SELECT `+crColumns+`
		FROM change_requests c JOIN projects p ON p.uri = c.project_uri
		WHERE c.requester_did = ? AND c.rkey = ?`, requester.String(), rkey.String()))
	if err != nil {
		return ChangeRequest{}, notFound(err, errChangeRequestNotFound, "change request")
	}
	list := []ChangeRequest{c}
	if err := s.attachStatuses(ctx, list); err != nil {
		return ChangeRequest{}, err
	}
	return list[0], nil
}

// ChangeRequestByURI returns one change request, by AT URI, with its
// notifications.
func (s *Store) ChangeRequestByURI(ctx context.Context, uri syntax.ATURI) (ChangeRequest, error) {
	did, err := uri.Authority().AsDID()
	if err != nil {
		e := *errChangeRequestNotFound
		return ChangeRequest{}, &e
	}
	return s.ChangeRequest(ctx, did, uri.RecordKey())
}

// ProjectChangeRequests returns a project's change requests with their
// notification state, newest first, and the next page's cursor.
func (s *Store) ProjectChangeRequests(ctx context.Context, projectURI syntax.ATURI, opt ListOptions) ([]ChangeRequest, string, error) {
	return s.listChangeRequests(ctx, `c.project_uri = ?`, projectURI.String(), opt)
}

// IncomingChangeRequests returns the change requests filed on owner's
// projects with their notification state, newest first, and the next
// page's cursor.
func (s *Store) IncomingChangeRequests(ctx context.Context, owner syntax.DID, opt ListOptions) ([]ChangeRequest, string, error) {
	return s.listChangeRequests(ctx, `c.owner_did = ?`, owner.String(), opt)
}

// RequesterChangeRequests returns the change requests requester filed,
// with their notification state, newest first, and the next page's cursor.
func (s *Store) RequesterChangeRequests(ctx context.Context, requester syntax.DID, opt ListOptions) ([]ChangeRequest, string, error) {
	return s.listChangeRequests(ctx, `c.requester_did = ?`, requester.String(), opt)
}

func (s *Store) listChangeRequests(ctx context.Context, where string, arg any, opt ListOptions) ([]ChangeRequest, string, error) {
	ms, curURI, err := decodeCursor(opt.Cursor)
	if err != nil {
		return nil, "", err
	}
	q := `SELECT ` + crColumns + ` FROM change_requests c JOIN projects p ON p.uri = c.project_uri WHERE ` + where
	args := []any{arg}
	if opt.Cursor != "" {
		q += ` AND (c.created_at, c.uri) < (?, ?)`
		args = append(args, ms, curURI)
	}
	q += ` ORDER BY c.created_at DESC, c.uri DESC LIMIT ?`
	args = append(args, opt.limit()+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("projects: list change requests: %w", err)
	}
	var out []ChangeRequest
	for rows.Next() {
		c, err := scanChangeRequest(rows)
		if err != nil {
			rows.Close()
			return nil, "", fmt.Errorf("projects: list change requests: %w", err)
		}
		out = append(out, c)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, "", fmt.Errorf("projects: list change requests: %w", err)
	}
	next := ""
	if len(out) > opt.limit() {
		out = out[:opt.limit()]
		last := out[len(out)-1]
		next = encodeCursor(last.CreatedAt, last.URI)
	}
	if err := s.attachStatuses(ctx, out); err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func (s *Store) attachStatuses(ctx context.Context, list []ChangeRequest) error {
	if len(list) == 0 {
		return nil
	}
	uris := make([]syntax.ATURI, len(list))
	for i, c := range list {
		uris[i] = c.URI
	}
	st, err := notify.StatusesFor(ctx, s.db, uris)
	if err != nil {
		return err
	}
	for i := range list {
		list[i].Notifications = st[list[i].URI]
	}
	return nil
}

// insertProject indexes a project record.
func (s *Store) insertProject(ctx context.Context, p Project) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return withTx(ctx, s.db, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO projects (`+projectColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			p.URI.String(), p.CID, p.OwnerDID.String(), p.Rkey.String(), p.Name, p.Description,
			p.CreatedAt.UnixMilli(), p.IndexedAt.UnixMilli())
		return err
	})
}

// insertChangeRequest indexes a change request and, when d is not nil,
// enqueues its DM, in one transaction (the benchmarks' shortcut; filing
// goes through finishIntent).
func (s *Store) insertChangeRequest(ctx context.Context, c ChangeRequest, d *notify.Delivery) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return withTx(ctx, s.db, func(tx *sql.Tx) error { return insertChangeRequestTx(ctx, tx, c, d) })
}

// insertChangeRequestTx indexes a change request and, when d is not nil,
// enqueues its DM, inside tx.
func insertChangeRequestTx(ctx context.Context, tx *sql.Tx, c ChangeRequest, d *notify.Delivery) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO change_requests (uri, cid, requester_did, rkey, project_uri,
		project_cid, owner_did, title, body, created_at, indexed_at, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open')`,
		c.URI.String(), c.CID, c.RequesterDID.String(), c.Rkey.String(), c.ProjectURI.String(),
		c.ProjectCID, c.OwnerDID.String(), c.Title, c.Body, c.CreatedAt.UnixMilli(), c.IndexedAt.UnixMilli()); err != nil {
		return err
	}
	if d == nil {
		return nil
	}
	_, err := notify.Enqueue(ctx, tx, *d, c.IndexedAt)
	return err
}

// withTx runs fn in one transaction (BEGIN IMMEDIATE on SQLite, with
// internal/db's DSN) and commits it. A failure that trying again cures
// (db.Retryable: SQLITE_BUSY, which busy_timeout makes rare, or a Postgres
// deadlock) is retried a few times so that it never reaches a person.
func withTx(ctx context.Context, sdb *sql.DB, fn func(*sql.Tx) error) error {
	var err error
	for try := 0; try < 4; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(try*try) * 25 * time.Millisecond):
			}
		}
		err = func() error {
			tx, err := sdb.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := fn(tx); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if !db.Retryable(err) {
			return err
		}
	}
	return err
}
