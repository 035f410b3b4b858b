package devchat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/lex/lexval"
)

// fakeRecords is an in-memory RecordSource: did → collection → rkey → value.
type fakeRecords struct {
	mu      sync.Mutex
	repos   map[syntax.DID]map[syntax.NSID]map[string]json.RawMessage
	failFor map[syntax.DID]error // every read of that repo fails
	lists   int                  // ListRecords calls
}

func newFakeRecords() *fakeRecords {
	return &fakeRecords{repos: map[syntax.DID]map[syntax.NSID]map[string]json.RawMessage{}, failFor: map[syntax.DID]error{}}
}

func (f *fakeRecords) put(did syntax.DID, coll syntax.NSID, rkey string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.repos[did] == nil {
		f.repos[did] = map[syntax.NSID]map[string]json.RawMessage{}
	}
	if f.repos[did][coll] == nil {
		f.repos[did][coll] = map[string]json.RawMessage{}
	}
	f.repos[did][coll][rkey] = b
}

func (f *fakeRecords) del(did syntax.DID, coll syntax.NSID, rkey string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.repos[did][coll], rkey)
}

func (f *fakeRecords) fail(did syntax.DID, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failFor[did] = err
}

func (f *fakeRecords) GetRecord(_ context.Context, did syntax.DID, coll syntax.NSID, rkey syntax.RecordKey) (*Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failFor[did]; err != nil {
		return nil, err
	}
	v, ok := f.repos[did][coll][rkey.String()]
	if !ok {
		return nil, ErrRecordNotFound
	}
	return &Record{URI: fmt.Sprintf("at://%s/%s/%s", did, coll, rkey), CID: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Value: v}, nil
}

func (f *fakeRecords) ListRecords(_ context.Context, did syntax.DID, coll syntax.NSID, cursor string, limit int) ([]Record, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if err := f.failFor[did]; err != nil {
		return nil, "", err
	}
	var keys []string
	for k := range f.repos[did][coll] {
		if k > cursor {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	next := ""
	if len(keys) > limit {
		keys = keys[:limit]
		next = keys[limit-1]
	}
	var out []Record
	for _, k := range keys {
		out = append(out, Record{URI: fmt.Sprintf("at://%s/%s/%s", did, coll, k), Value: f.repos[did][coll][k]})
	}
	return out, next, nil
}

// setAllowIncoming writes (or, with "", deletes) a chat declaration.
func (f *fakeRecords) setAllowIncoming(did syntax.DID, allow string) {
	if allow == "" {
		f.del(did, collDeclaration, "self")
		return
	}
	f.put(did, collDeclaration, "self", map[string]string{"$type": "chat.bsky.actor.declaration", "allowIncoming": allow})
}

// follow records that who follows whom.
func (f *fakeRecords) follow(who, whom syntax.DID) {
	f.put(who, collFollow, syntax.NewTIDNow(0).String(), map[string]string{"$type": "app.bsky.graph.follow", "subject": whom.String(), "createdAt": "2026-01-01T00:00:00Z"})
}

// user is a test account with a signing key in the mock directory.
type user struct {
	did    syntax.DID
	handle string
	key    atcrypto.PrivateKey
}

// env is a Server behind httptest with a mock directory and fake records.
type env struct {
	t    *testing.T
	srv  *Server
	ts   *httptest.Server
	dir  *identity.MockDirectory
	recs *fakeRecords
}

const testEndpoint = "http://localhost:2590"

func newEnv(t *testing.T, faults bool) *env {
	t.Helper()
	dir := identity.NewMockDirectory()
	recs := newFakeRecords()
	srv, err := New(Config{Endpoint: testEndpoint, Directory: dir, Records: recs, Faults: faults, Moderators: []syntax.DID{moderatorDID}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{t: t, srv: srv, ts: ts, dir: dir, recs: recs}
}

// user creates an account (K-256 key, like a PDS repo key) that allows
// incoming chats from everyone unless the test changes its declaration.
func (e *env) user(name string) *user {
	e.t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		e.t.Fatal(err)
	}
	return e.userWithKey(name, key, "all")
}

func (e *env) userWithKey(name string, key atcrypto.PrivateKey, allow string) *user {
	e.t.Helper()
	pub, err := key.PublicKey()
	if err != nil {
		e.t.Fatal(err)
	}
	u := &user{did: syntax.DID("did:plc:" + name), handle: name + ".test", key: key}
	e.dir.Insert(identity.Identity{
		DID:    u.did,
		Handle: syntax.Handle(u.handle),
		Keys:   map[string]identity.VerificationMethod{"atproto": {Type: "Multikey", PublicKeyMultibase: pub.Multibase()}},
		Services: map[string]identity.ServiceEndpoint{
			"atproto_pds": {Type: "AtprotoPersonalDataServer", URL: "http://pds.invalid"},
		},
	})
	e.recs.setAllowIncoming(u.did, allow)
	return u
}

// moderatorDID is the moderation service every test env trusts
// (Config.Moderators); env.moderator creates its account.
const moderatorDID = syntax.DID("did:plc:moderator")

// moderator is the trusted moderation service, with a signing key.
func (e *env) moderator() *user {
	e.t.Helper()
	return e.user(strings.TrimPrefix(moderatorDID.String(), "did:plc:"))
}

// token signs a service token from u for method, as the PDS does.
func (e *env) token(u *user, method string) string {
	e.t.Helper()
	nsid := syntax.NSID(method)
	tok, err := auth.SignServiceAuth(u.did, e.srv.DID().String(), time.Minute, &nsid, u.key)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// resp is an HTTP answer.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// xerr decodes an XRPC error body.
func (r resp) xerr() (name, message string) {
	var b struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(r.body, &b)
	return b.Error, b.Message
}

// raw sends a request with an explicit Authorization header ("" for none).
func (e *env) raw(ctx context.Context, httpMethod, method, authz string, params url.Values, body any) (resp, error) {
	u := e.ts.URL + "/xrpc/" + method
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	var rd io.Reader
	if body != nil {
		if b, ok := body.([]byte); ok {
			rd = bytes.NewReader(b)
		} else {
			b, err := json.Marshal(body)
			if err != nil {
				return resp{}, err
			}
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(ctx, httpMethod, u, rd)
	if err != nil {
		return resp{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	res, err := e.ts.Client().Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	r := resp{status: res.StatusCode, header: res.Header, body: b}
	if err == nil {
		e.checkLexicon(method, r)
	}
	return r, err
}

// genericErrors are the XRPC error names any method may answer.
var genericErrors = map[string]bool{
	"InvalidRequest": true, "AuthenticationRequired": true, "AuthMissing": true, "ExpiredToken": true,
	"InvalidToken": true, "MethodNotImplemented": true, "InternalServerError": true, "UpstreamFailure": true,
	"UpstreamTimeout": true, "NotEnoughResources": true, "RateLimitExceeded": true, "PayloadTooLarge": true,
}

// checkLexicon fails the test when devchat's answer to a chat.bsky method
// is not what the vendored official lexicon says: a 200 body must match the
// output schema, and an error must be generic or one the method declares.
// Every devchat test goes through raw, so devchat cannot drift from the
// published schema unnoticed.
func (e *env) checkLexicon(method string, r resp) {
	if !strings.HasPrefix(method, "chat.bsky.") && method != "com.atproto.moderation.createReport" {
		return
	}
	if r.status == http.StatusOK && r.header.Get("Content-Type") == "application/jsonl" {
		return // exportAccountData: no schema for JSON lines (account_test.go reads them)
	}
	if r.status == http.StatusOK {
		if err := lexval.Output(method, r.body); err != nil {
			e.t.Errorf("devchat's answer to %s breaks the lexicon: %v", method, err)
		}
		return
	}
	if r.status == http.StatusUnauthorized {
		return // service-auth refusals (BadJwt*, JwtExpired) come before any method
	}
	if name, _ := r.xerr(); !genericErrors[name] {
		if err := lexval.Error(method, name); err != nil {
			e.t.Errorf("devchat's error for %s breaks the lexicon: %v", method, err)
		}
	}
}

// query calls a query as u.
func (e *env) query(u *user, method string, params url.Values) resp {
	e.t.Helper()
	r, err := e.raw(context.Background(), http.MethodGet, method, "Bearer "+e.token(u, method), params, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// proc calls a procedure as u.
func (e *env) proc(u *user, method string, body any) resp {
	e.t.Helper()
	r, err := e.raw(context.Background(), http.MethodPost, method, "Bearer "+e.token(u, method), nil, body)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// ok decodes a 200 answer into out, failing the test otherwise.
func ok[T any](t *testing.T, r resp) *T {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var out T
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatalf("decode %T: %v: %s", out, err, r.body)
	}
	return &out
}

// wantErr checks an XRPC error answer.
func wantErr(t *testing.T, r resp, status int, name, msgContains string) {
	t.Helper()
	gotName, gotMsg := r.xerr()
	if r.status != status || gotName != name || !strings.Contains(gotMsg, msgContains) {
		t.Fatalf("got %d %q %q, want %d %q containing %q", r.status, gotName, gotMsg, status, name, msgContains)
	}
}

// open returns a's direct convo with b (getConvoForMembers).
func (e *env) open(a, b *user) *chat.ConvoDefs_ConvoView {
	e.t.Helper()
	return ok[chat.ConvoGetConvoForMembers_Output](e.t, e.query(a, "chat.bsky.convo.getConvoForMembers", url.Values{"members": {b.did.String()}})).Convo
}

// send sends text into a convo as u.
func (e *env) send(u *user, convoID, text string) *chat.ConvoDefs_MessageView {
	e.t.Helper()
	return ok[chat.ConvoDefs_MessageView](e.t, e.proc(u, "chat.bsky.convo.sendMessage", map[string]any{
		"convoId": convoID, "message": map[string]any{"text": text},
	}))
}

// convo returns u's view of a convo.
func (e *env) convo(u *user, id string) *chat.ConvoDefs_ConvoView {
	e.t.Helper()
	return ok[chat.ConvoGetConvo_Output](e.t, e.query(u, "chat.bsky.convo.getConvo", url.Values{"convoId": {id}})).Convo
}

// list returns u's listConvos ids with the given params.
func (e *env) list(u *user, params url.Values) ([]string, *chat.ConvoListConvos_Output) {
	e.t.Helper()
	out := ok[chat.ConvoListConvos_Output](e.t, e.query(u, "chat.bsky.convo.listConvos", params))
	var ids []string
	for _, c := range out.Convos {
		ids = append(ids, c.Id)
	}
	return ids, out
}

// logTypes returns the $type of each event in a getLog answer.
func logTypes(out *chat.ConvoGetLog_Output) []string {
	var types []string
	for _, l := range out.Logs {
		b, _ := json.Marshal(l)
		var v struct {
			Type string `json:"$type"`
		}
		_ = json.Unmarshal(b, &v)
		types = append(types, strings.TrimPrefix(v.Type, "chat.bsky.convo.defs#"))
	}
	return types
}

// logRev returns the rev of a getLog event.
func logRev(l *chat.ConvoGetLog_Output_Logs_Elem) string {
	b, _ := json.Marshal(l)
	var v struct {
		Rev string `json:"rev"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Rev
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
