package devchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Record is one repository record.
type Record struct {
	URI   string          // at:// URI of the record
	CID   string          // CID of the record version read
	Value json.RawMessage // the record itself, as JSON
}

// RecordSource reads records from users' repositories.
type RecordSource interface {
	// GetRecord returns one record, ErrRecordNotFound when the repository has
	// no such record, or another error when it could not be read.
	GetRecord(ctx context.Context, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) (*Record, error)
	// ListRecords returns up to limit records of a collection starting at
	// cursor ("" for the first page) and the cursor of the next page ("" at
	// the end), or an error when the repository could not be read.
	ListRecords(ctx context.Context, did syntax.DID, collection syntax.NSID, cursor string, limit int) ([]Record, string, error)
}

// ErrRecordNotFound is returned by RecordSource.GetRecord for a missing record.
var ErrRecordNotFound = errors.New("devchat: record not found")

// NewHTTPRecordSource returns a RecordSource that reads records,
// unauthenticated, from each repository's PDS (found through dir) with
// com.atproto.repo.getRecord and com.atproto.repo.listRecords. Each call is
// bounded by a 10 s timeout on top of client's own.
func NewHTTPRecordSource(dir identity.Directory, client *http.Client) RecordSource {
	return &httpRecords{dir: dir, client: client}
}

type httpRecords struct {
	dir    identity.Directory
	client *http.Client
}

// maxRecordBytes caps a getRecord/listRecords response.
const maxRecordBytes = 4 << 20

func (h *httpRecords) GetRecord(ctx context.Context, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) (*Record, error) {
	q := url.Values{"repo": {did.String()}, "collection": {collection.String()}, "rkey": {rkey.String()}}
	var out struct {
		URI   string          `json:"uri"`
		CID   string          `json:"cid"`
		Value json.RawMessage `json:"value"`
	}
	if err := h.get(ctx, did, "com.atproto.repo.getRecord", q, &out); err != nil {
		return nil, err
	}
	return &Record{URI: out.URI, CID: out.CID, Value: out.Value}, nil
}

func (h *httpRecords) ListRecords(ctx context.Context, did syntax.DID, collection syntax.NSID, cursor string, limit int) ([]Record, string, error) {
	q := url.Values{"repo": {did.String()}, "collection": {collection.String()}, "limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out struct {
		Cursor  string `json:"cursor"`
		Records []struct {
			URI   string          `json:"uri"`
			CID   string          `json:"cid"`
			Value json.RawMessage `json:"value"`
		} `json:"records"`
	}
	if err := h.get(ctx, did, "com.atproto.repo.listRecords", q, &out); err != nil {
		return nil, "", err
	}
	recs := make([]Record, 0, len(out.Records))
	for _, r := range out.Records {
		recs = append(recs, Record{URI: r.URI, CID: r.CID, Value: r.Value})
	}
	return recs, out.Cursor, nil
}

// get calls an XRPC query on did's PDS and decodes the JSON answer into out.
func (h *httpRecords) get(ctx context.Context, did syntax.DID, nsid string, q url.Values, out any) error {
	ident, err := h.dir.LookupDID(ctx, did)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", did, err)
	}
	pds := strings.TrimRight(ident.PDSEndpoint(), "/")
	if pds == "" {
		return fmt.Errorf("%s has no PDS endpoint", did)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pds+"/xrpc/"+nsid+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", nsid, pds, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRecordBytes))
	if err != nil {
		return fmt.Errorf("%s on %s: %w", nsid, pds, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &e)
		if resp.StatusCode == http.StatusBadRequest &&
			(e.Error == "RecordNotFound" || strings.HasPrefix(e.Message, "Could not locate record")) {
			return ErrRecordNotFound
		}
		return fmt.Errorf("%s on %s: HTTP %d %s %s", nsid, pds, resp.StatusCode, e.Error, e.Message)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s on %s: bad JSON: %w", nsid, pds, err)
	}
	return nil
}

// Collections read by the service.
const (
	collProfile     = syntax.NSID("app.bsky.actor.profile")
	collDeclaration = syntax.NSID("chat.bsky.actor.declaration")
	collFollow      = syntax.NSID("app.bsky.graph.follow")
	rkeySelf        = syntax.RecordKey("self")
)

// profileTTL is how long a member's handle, display name and avatar are reused.
const profileTTL = 10 * time.Second

// profileInfo is what a profileViewBasic carries.
type profileInfo struct {
	handle      string
	displayName string
	avatar      string
}

type cachedProfile struct {
	info    profileInfo
	fetched time.Time
}

// profile returns did's handle (Directory; "handle.invalid" when it does not
// resolve or verify) and display name and avatar (from its
// app.bsky.actor.profile/self record; empty when missing or unreadable).
func (s *Server) profile(ctx context.Context, did syntax.DID) profileInfo {
	now := s.now()
	s.profMu.Lock()
	c, ok := s.profiles[did]
	s.profMu.Unlock()
	if ok && now.Sub(c.fetched) < profileTTL {
		return c.info
	}

	info := profileInfo{handle: syntax.HandleInvalid.String()}
	pds := ""
	if ident, err := s.dir.LookupDID(ctx, did); err == nil {
		info.handle = ident.Handle.String()
		pds = strings.TrimRight(ident.PDSEndpoint(), "/")
	}
	if rec, err := s.records.GetRecord(ctx, did, collProfile, rkeySelf); err == nil {
		var p struct {
			DisplayName string `json:"displayName"`
			Avatar      *struct {
				Ref struct {
					Link string `json:"$link"`
				} `json:"ref"`
			} `json:"avatar"`
		}
		if json.Unmarshal(rec.Value, &p) == nil {
			info.displayName = p.DisplayName
			if p.Avatar != nil && p.Avatar.Ref.Link != "" && pds != "" {
				info.avatar = pds + "/xrpc/com.atproto.sync.getBlob?" +
					url.Values{"did": {did.String()}, "cid": {p.Avatar.Ref.Link}}.Encode()
			}
		}
	}

	s.profMu.Lock()
	s.profiles[did] = cachedProfile{info: info, fetched: now}
	s.profMu.Unlock()
	return info
}

// Chat declaration values (chat.bsky.actor.declaration allowIncoming).
const (
	allowAll       = "all"
	allowFollowing = "following"
	allowNone      = "none"
)

// maxFollowPages bounds the walk through a recipient's follows.
const maxFollowPages = 200

// checkGate decides whether sender may start (or keep writing into an
// unaccepted) conversation with recipient, the way Bluesky's chat service
// does: the recipient's chat.bsky.actor.declaration/self allowIncoming
// ("following" when missing or unknown), and for "following" whether the
// recipient follows the sender. It returns nil, or the error to answer.
func (s *Server) checkGate(ctx context.Context, sender, recipient syntax.DID) *xrpcError {
	if _, err := s.dir.LookupDID(ctx, recipient); err != nil {
		if errors.Is(err, identity.ErrDIDNotFound) {
			return badRequest("RecipientNotFound", "recipient does not exist")
		}
		return upstreamFailure("could not resolve the recipient's DID")
	}
	d, e := s.declaration(ctx, recipient)
	if e != nil {
		return e
	}
	switch allowOf(d.AllowIncoming) {
	case allowAll:
		return nil
	case allowNone:
		return badRequest("MessagesDisabled", "recipient has disabled incoming messages")
	}
	follows, err := s.follows(ctx, recipient, sender)
	if err != nil {
		s.log.Warn("reading follows", "did", recipient.String(), "err", err)
		return upstreamFailure("could not read the recipient's follows")
	}
	if !follows {
		return badRequest("NotFollowedBySender", "recipient requires incoming messages to come from someone they follow")
	}
	return nil
}

// chatDeclaration is what devchat acts on in a chat.bsky.actor.declaration.
type chatDeclaration struct {
	AllowIncoming     string `json:"allowIncoming"`
	AllowGroupInvites string `json:"allowGroupInvites"`
}

// declaration reads did's chat.bsky.actor.declaration/self (zero when there
// is none), or returns the error to answer when it cannot be read.
func (s *Server) declaration(ctx context.Context, did syntax.DID) (chatDeclaration, *xrpcError) {
	var d chatDeclaration
	rec, err := s.records.GetRecord(ctx, did, collDeclaration, rkeySelf)
	switch {
	case errors.Is(err, ErrRecordNotFound):
	case err != nil:
		s.log.Warn("reading chat declaration", "did", did.String(), "err", err)
		return d, upstreamFailure("could not read the chat declaration of " + did.String())
	default:
		_ = json.Unmarshal(rec.Value, &d) // a malformed record counts as none
	}
	return d, nil
}

// allowOf is a declaration's allow value as the service applies it: "all"
// and "none" as written, anything else (missing, unknown) "following".
func allowOf(v string) string {
	if v == allowAll || v == allowNone {
		return v
	}
	return allowFollowing
}

// follows reports whether who has an app.bsky.graph.follow record whose
// subject is whom.
func (s *Server) follows(ctx context.Context, who, whom syntax.DID) (bool, error) {
	return s.hasSubject(ctx, who, collFollow, whom)
}

// hasSubject reports whether who has a record in collection (a follow, a
// block) whose subject is whom.
func (s *Server) hasSubject(ctx context.Context, who syntax.DID, collection syntax.NSID, whom syntax.DID) (bool, error) {
	found := false
	err := s.eachSubject(ctx, who, collection, func(subject, _ string) bool {
		found = subject == whom.String()
		return !found // stop at the first
	})
	return found && err == nil, err
}

func upstreamFailure(message string) *xrpcError {
	return &xrpcError{Status: http.StatusBadGateway, Name: "UpstreamFailure", Message: message}
}
