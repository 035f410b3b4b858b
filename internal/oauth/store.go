package oauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	atoauth "github.com/bluesky-social/indigo/atproto/auth/oauth"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Errors returned by Store; test with errors.Is.
var (
	// ErrNotFound: no such row, or it expired.
	ErrNotFound = errors.New("oauth store: not found")
	// ErrAuthRequestExists: SaveAuthRequestInfo with a state already saved.
	ErrAuthRequestExists = errors.New("oauth store: auth request already exists")
	// ErrAuthRequestUsed: the auth request was already consumed by a callback.
	ErrAuthRequestUsed = errors.New("oauth store: auth request already used")
	// ErrAuthRequestExpired: the auth request outlived its 10 minutes.
	ErrAuthRequestExpired = errors.New("oauth store: auth request expired")
	// ErrDecrypt: a stored secret could not be decrypted (wrong key or a
	// row tampered with / moved).
	ErrDecrypt = errors.New("oauth store: cannot decrypt stored secret (wrong encryption key?)")
)

// Default lifetimes of stored rows.
const (
	DefaultAuthRequestTTL = 10 * time.Minute
	DefaultSessionTTL     = 90 * 24 * time.Hour
)

var _ atoauth.ClientAuthStore = (*Store)(nil)

// StoreOptions tunes a Store. Zero values take the defaults.
type StoreOptions struct {
	Now            func() time.Time
	AuthRequestTTL time.Duration // default 10 minutes
	SessionTTL     time.Duration // rows not saved for this long are expired; default 90 days
}

// Store is a SQLite implementation of indigo's ClientAuthStore. Auth
// requests are create-only and live AuthRequestTTL; sessions are upserted
// by (DID, session id) and expire SessionTTL after their last save. The
// PKCE verifier, access and refresh tokens and DPoP private keys are stored
// encrypted with AES-256-GCM (random nonce per value, the row's identity and
// column name as additional data). Safe for concurrent use.
type Store struct {
	db             *sql.DB
	aead           cipher.AEAD
	now            func() time.Time
	authRequestTTL time.Duration
	sessionTTL     time.Duration
}

// NewStore returns a Store over db (already migrated by internal/db) using
// the 32-byte key for encryption at rest. It returns an error if the key is
// not 32 bytes.
func NewStore(db *sql.DB, encryptionKey []byte, o StoreOptions) (*Store, error) {
	if db == nil {
		return nil, errors.New("oauth store: nil database")
	}
	if len(encryptionKey) != 32 {
		return nil, fmt.Errorf("oauth store: encryption key must be 32 bytes, got %d", len(encryptionKey))
	}
	block, err := aes.NewCipher(encryptionKey)
	if err != nil {
		return nil, fmt.Errorf("oauth store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("oauth store: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AuthRequestTTL <= 0 {
		o.AuthRequestTTL = DefaultAuthRequestTTL
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = DefaultSessionTTL
	}
	return &Store{db: db, aead: aead, now: o.Now, authRequestTTL: o.AuthRequestTTL, sessionTTL: o.SessionTTL}, nil
}

const sealVersion = 1

// seal encrypts plaintext with a fresh random nonce, binding it to aad.
func (s *Store) seal(plaintext string, aad string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("oauth store: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+s.aead.Overhead())
	out = append(out, sealVersion)
	out = append(out, nonce...)
	return s.aead.Seal(out, nonce, []byte(plaintext), []byte(aad)), nil
}

// open reverses seal; any mismatch (key, aad, tampering) gives ErrDecrypt.
func (s *Store) open(sealed []byte, aad string) (string, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return "", ErrDecrypt
	}
	pt, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(aad))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(pt), nil
}

func sessionAAD(did syntax.DID, sessionID, column string) string {
	return "skydm/oauth_sessions|" + did.String() + "|" + sessionID + "|" + column
}

func authRequestAAD(state, column string) string {
	return "skydm/oauth_auth_requests|" + state + "|" + column
}

// --- sessions ---

// GetSession returns the stored session, or ErrNotFound when there is none
// or it has expired, or ErrDecrypt when its secrets cannot be decrypted.
func (s *Store) GetSession(ctx context.Context, did syntax.DID, sessionID string) (*atoauth.ClientSessionData, error) {
	row := s.db.QueryRowContext(ctx, `SELECT host_url, auth_server_url, token_endpoint, revocation_endpoint, scopes,
		access_token, refresh_token, dpop_authserver_nonce, dpop_host_nonce, dpop_private_key
		FROM oauth_sessions WHERE account_did = ? AND session_id = ? AND expires_at > ?`,
		did.String(), sessionID, s.now().UnixMilli())
	d := atoauth.ClientSessionData{AccountDID: did, SessionID: sessionID}
	var scopes string
	var access, refresh, key []byte
	err := row.Scan(&d.HostURL, &d.AuthServerURL, &d.AuthServerTokenEndpoint, &d.AuthServerRevocationEndpoint, &scopes,
		&access, &refresh, &d.DPoPAuthServerNonce, &d.DPoPHostNonce, &key)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("oauth store: get session: %w", err)
	}
	d.Scopes = strings.Fields(scopes)
	if d.AccessToken, err = s.open(access, sessionAAD(did, sessionID, "access_token")); err != nil {
		return nil, err
	}
	if d.RefreshToken, err = s.open(refresh, sessionAAD(did, sessionID, "refresh_token")); err != nil {
		return nil, err
	}
	if d.DPoPPrivateKeyMultibase, err = s.open(key, sessionAAD(did, sessionID, "dpop_private_key")); err != nil {
		return nil, err
	}
	return &d, nil
}

// sessionExists reports whether (did, sessionID) is stored and unexpired.
// It returns the database error on failure.
func (s *Store) sessionExists(ctx context.Context, did syntax.DID, sessionID string) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM oauth_sessions
		WHERE account_did = ? AND session_id = ? AND expires_at > ?`, did.String(), sessionID, s.now().UnixMilli()).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("oauth store: session exists: %w", err)
	}
	return true, nil
}

type sealedSession struct {
	access, refresh, key []byte
}

func (s *Store) sealSession(sess *atoauth.ClientSessionData) (sealedSession, error) {
	var out sealedSession
	var err error
	if sess.AccountDID == "" || sess.SessionID == "" {
		return out, errors.New("oauth store: session without DID or session id")
	}
	if out.access, err = s.seal(sess.AccessToken, sessionAAD(sess.AccountDID, sess.SessionID, "access_token")); err != nil {
		return out, err
	}
	if out.refresh, err = s.seal(sess.RefreshToken, sessionAAD(sess.AccountDID, sess.SessionID, "refresh_token")); err != nil {
		return out, err
	}
	if out.key, err = s.seal(sess.DPoPPrivateKeyMultibase, sessionAAD(sess.AccountDID, sess.SessionID, "dpop_private_key")); err != nil {
		return out, err
	}
	return out, nil
}

// SaveSession inserts or replaces the session with the same (DID, session
// id) and extends its life by SessionTTL. It returns an error only when the
// database write fails.
func (s *Store) SaveSession(ctx context.Context, sess atoauth.ClientSessionData) error {
	sealed, err := s.sealSession(&sess)
	if err != nil {
		return err
	}
	now := s.now()
	_, err = s.db.ExecContext(ctx, `INSERT INTO oauth_sessions (account_did, session_id, host_url, auth_server_url,
		token_endpoint, revocation_endpoint, scopes, access_token, refresh_token, dpop_authserver_nonce,
		dpop_host_nonce, dpop_private_key, created_at, updated_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_did, session_id) DO UPDATE SET
			host_url = excluded.host_url, auth_server_url = excluded.auth_server_url,
			token_endpoint = excluded.token_endpoint, revocation_endpoint = excluded.revocation_endpoint,
			scopes = excluded.scopes, access_token = excluded.access_token, refresh_token = excluded.refresh_token,
			dpop_authserver_nonce = excluded.dpop_authserver_nonce, dpop_host_nonce = excluded.dpop_host_nonce,
			dpop_private_key = excluded.dpop_private_key, updated_at = excluded.updated_at,
			expires_at = excluded.expires_at`,
		sess.AccountDID.String(), sess.SessionID, sess.HostURL, sess.AuthServerURL, sess.AuthServerTokenEndpoint,
		sess.AuthServerRevocationEndpoint, strings.Join(sess.Scopes, " "), sealed.access, sealed.refresh,
		sess.DPoPAuthServerNonce, sess.DPoPHostNonce, sealed.key,
		now.UnixMilli(), now.UnixMilli(), now.Add(s.sessionTTL).UnixMilli())
	if err != nil {
		return fmt.Errorf("oauth store: save session: %w", err)
	}
	return nil
}

// UpdateSession overwrites an existing, unexpired session (tokens, nonces)
// but never creates one, so a refresh racing a logout cannot resurrect the
// session. It returns ErrNotFound when the row is gone.
func (s *Store) UpdateSession(ctx context.Context, sess atoauth.ClientSessionData) error {
	sealed, err := s.sealSession(&sess)
	if err != nil {
		return err
	}
	now := s.now()
	res, err := s.db.ExecContext(ctx, `UPDATE oauth_sessions SET host_url = ?, auth_server_url = ?, token_endpoint = ?,
		revocation_endpoint = ?, scopes = ?, access_token = ?, refresh_token = ?, dpop_authserver_nonce = ?,
		dpop_host_nonce = ?, dpop_private_key = ?, updated_at = ?, expires_at = ?
		WHERE account_did = ? AND session_id = ? AND expires_at > ?`,
		sess.HostURL, sess.AuthServerURL, sess.AuthServerTokenEndpoint, sess.AuthServerRevocationEndpoint,
		strings.Join(sess.Scopes, " "), sealed.access, sealed.refresh, sess.DPoPAuthServerNonce, sess.DPoPHostNonce,
		sealed.key, now.UnixMilli(), now.Add(s.sessionTTL).UnixMilli(),
		sess.AccountDID.String(), sess.SessionID, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("oauth store: update session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteSession removes a session; deleting a missing one is not an error.
// It returns an error only when the database write fails.
func (s *Store) DeleteSession(ctx context.Context, did syntax.DID, sessionID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oauth_sessions WHERE account_did = ? AND session_id = ?`,
		did.String(), sessionID); err != nil {
		return fmt.Errorf("oauth store: delete session: %w", err)
	}
	return nil
}

// --- auth requests ---

// SaveAuthRequestInfo stores a new auth request for AuthRequestTTL. It is
// create-only: a second save with the same state returns
// ErrAuthRequestExists.
func (s *Store) SaveAuthRequestInfo(ctx context.Context, info atoauth.AuthRequestData) error {
	if info.State == "" {
		return errors.New("oauth store: auth request without state")
	}
	verifier, err := s.seal(info.PKCEVerifier, authRequestAAD(info.State, "pkce_verifier"))
	if err != nil {
		return err
	}
	key, err := s.seal(info.DPoPPrivateKeyMultibase, authRequestAAD(info.State, "dpop_private_key"))
	if err != nil {
		return err
	}
	var did sql.NullString
	if info.AccountDID != nil {
		did = sql.NullString{String: info.AccountDID.String(), Valid: true}
	}
	now := s.now()
	res, err := s.db.ExecContext(ctx, `INSERT INTO oauth_auth_requests (state, auth_server_url, account_did, scopes,
		request_uri, token_endpoint, revocation_endpoint, dpop_authserver_nonce, pkce_verifier, dpop_private_key,
		created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (state) DO NOTHING`,
		info.State, info.AuthServerURL, did, strings.Join(info.Scopes, " "), info.RequestURI,
		info.AuthServerTokenEndpoint, info.AuthServerRevocationEndpoint, info.DPoPAuthServerNonce, verifier, key,
		now.UnixMilli(), now.Add(s.authRequestTTL).UnixMilli())
	if err != nil {
		return fmt.Errorf("oauth store: save auth request: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrAuthRequestExists
	}
	return nil
}

const authRequestCols = `state, auth_server_url, account_did, scopes, request_uri, token_endpoint,
	revocation_endpoint, dpop_authserver_nonce, pkce_verifier, dpop_private_key`

func (s *Store) scanAuthRequest(row *sql.Row) (*atoauth.AuthRequestData, error) {
	var info atoauth.AuthRequestData
	var did sql.NullString
	var scopes string
	var verifier, key []byte
	if err := row.Scan(&info.State, &info.AuthServerURL, &did, &scopes, &info.RequestURI,
		&info.AuthServerTokenEndpoint, &info.AuthServerRevocationEndpoint, &info.DPoPAuthServerNonce,
		&verifier, &key); err != nil {
		return nil, err
	}
	if did.Valid {
		d, err := syntax.ParseDID(did.String)
		if err != nil {
			return nil, fmt.Errorf("oauth store: stored DID: %w", err)
		}
		info.AccountDID = &d
	}
	info.Scopes = strings.Fields(scopes)
	var err error
	if info.PKCEVerifier, err = s.open(verifier, authRequestAAD(info.State, "pkce_verifier")); err != nil {
		return nil, err
	}
	if info.DPoPPrivateKeyMultibase, err = s.open(key, authRequestAAD(info.State, "dpop_private_key")); err != nil {
		return nil, err
	}
	return &info, nil
}

// GetAuthRequestInfo returns an unexpired, unconsumed auth request, or
// ErrNotFound.
func (s *Store) GetAuthRequestInfo(ctx context.Context, state string) (*atoauth.AuthRequestData, error) {
	row := s.db.QueryRowContext(ctx, `SELECT `+authRequestCols+` FROM oauth_auth_requests
		WHERE state = ? AND consumed_at IS NULL AND expires_at > ?`, state, s.now().UnixMilli())
	info, err := s.scanAuthRequest(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil && !errors.Is(err, ErrDecrypt) {
		return nil, fmt.Errorf("oauth store: get auth request: %w", err)
	}
	return info, err
}

// ConsumeAuthRequest atomically marks the auth request used and returns it,
// so that of two callbacks with the same state only one ever gets it. It
// returns ErrAuthRequestUsed when it was consumed before,
// ErrAuthRequestExpired when it is too old, and ErrNotFound when unknown.
// The consumed row stays (without effect) until it expires, so replays get
// ErrAuthRequestUsed rather than ErrNotFound.
func (s *Store) ConsumeAuthRequest(ctx context.Context, state string) (*atoauth.AuthRequestData, error) {
	now := s.now().UnixMilli()
	row := s.db.QueryRowContext(ctx, `UPDATE oauth_auth_requests SET consumed_at = ?
		WHERE state = ? AND consumed_at IS NULL AND expires_at > ?
		RETURNING `+authRequestCols, now, state, now)
	info, err := s.scanAuthRequest(row)
	if err == nil || errors.Is(err, ErrDecrypt) {
		return info, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("oauth store: consume auth request: %w", err)
	}
	var consumed sql.NullInt64
	var expires int64
	err = s.db.QueryRowContext(ctx, `SELECT consumed_at, expires_at FROM oauth_auth_requests WHERE state = ?`, state).
		Scan(&consumed, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("oauth store: consume auth request: %w", err)
	case consumed.Valid:
		return nil, ErrAuthRequestUsed
	default:
		return nil, ErrAuthRequestExpired
	}
}

// DeleteAuthRequestInfo removes an auth request; a missing one is not an
// error. It returns an error only when the database write fails.
func (s *Store) DeleteAuthRequestInfo(ctx context.Context, state string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oauth_auth_requests WHERE state = ?`, state); err != nil {
		return fmt.Errorf("oauth store: delete auth request: %w", err)
	}
	return nil
}

// DeleteExpired removes expired auth requests and sessions and returns how
// many rows of each it deleted. It returns an error when a delete fails.
func (s *Store) DeleteExpired(ctx context.Context) (authRequests, sessions int64, err error) {
	now := s.now().UnixMilli()
	res, err := s.db.ExecContext(ctx, `DELETE FROM oauth_auth_requests WHERE expires_at <= ?`, now)
	if err != nil {
		return 0, 0, fmt.Errorf("oauth store: delete expired auth requests: %w", err)
	}
	authRequests, _ = res.RowsAffected()
	res, err = s.db.ExecContext(ctx, `DELETE FROM oauth_sessions WHERE expires_at <= ?`, now)
	if err != nil {
		return authRequests, 0, fmt.Errorf("oauth store: delete expired sessions: %w", err)
	}
	sessions, _ = res.RowsAffected()
	return authRequests, sessions, nil
}
