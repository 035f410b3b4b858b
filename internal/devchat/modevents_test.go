package devchat

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/lexicons/official"
)

// modStreamClient is a bare websocket client for subscribeModEvents.
type modStreamClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// subscribe opens subscribeModEvents as u with the given cursor ("" for
// none) and checks the upgrade.
func (e *env) subscribe(u *user, cursor string) *modStreamClient {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.ts.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	path := "/xrpc/chat.bsky.moderation.subscribeModEvents"
	if cursor != "" {
		path += "?cursor=" + cursor
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		path, e.ts.Listener.Addr(), e.token(u, "chat.bsky.moderation.subscribeModEvents"))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		b, _ := io.ReadAll(res.Body)
		e.t.Fatalf("upgrade: %d %v %s", res.StatusCode, res.Header, b)
	}
	return &modStreamClient{t: e.t, conn: conn, br: br}
}

// next reads one frame and returns its decoded header and body.
func (c *modStreamClient) next() (header, body map[string]any) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	if h[0] != 0x82 || h[1]&0x80 != 0 {
		c.t.Fatalf("want an unmasked final binary frame, got %x", h)
	}
	n := uint64(h[1])
	switch n {
	case 126:
		var b [2]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		_, _ = io.ReadFull(c.br, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		c.t.Fatal(err)
	}
	rest := payload
	hv, rest := decodeCBOR(c.t, rest)
	bv, rest := decodeCBOR(c.t, rest)
	if len(rest) != 0 {
		c.t.Fatalf("%d bytes after the frame's body", len(rest))
	}
	header, body = hv.(map[string]any), bv.(map[string]any)
	if header["op"] == int64(1) {
		checkModEvent(c.t, header["t"].(string), body)
	}
	return header, body
}

// modLexicons is the vendored lexicon catalog, loaded once.
var modLexicons = sync.OnceValues(func() (*lexicon.BaseCatalog, error) {
	cat := lexicon.NewBaseCatalog()
	return cat, cat.LoadEmbedFS(official.FS)
})

// eventCatalog is the catalog plus a record type whose record is one
// event object, for indigo's validator.
type eventCatalog struct {
	*lexicon.BaseCatalog
	record lexicon.SchemaRecord
}

const eventRecordRef = "skydm.devchat.test.modEvent"

func (c eventCatalog) Resolve(ref string) (*lexicon.Schema, error) {
	if ref == eventRecordRef || ref == eventRecordRef+"#main" {
		return &lexicon.Schema{ID: eventRecordRef + "#main", Def: c.record}, nil
	}
	return c.BaseCatalog.Resolve(ref)
}

// checkModEvent fails the test when an event (named "#eventX") is not
// what subscribeModEvents' lexicon says it is.
func checkModEvent(t *testing.T, name string, body map[string]any) {
	t.Helper()
	cat, err := modLexicons()
	if err != nil {
		t.Fatal(err)
	}
	def, err := cat.Resolve("chat.bsky.moderation.subscribeModEvents" + name)
	if err != nil {
		t.Fatalf("event %s is not in the lexicon: %v", name, err)
	}
	obj, ok := def.Def.(lexicon.SchemaObject)
	if !ok {
		t.Fatalf("event %s is a %T", name, def.Def)
	}
	rec := maps.Clone(body)
	rec["$type"] = eventRecordRef
	if err := lexicon.ValidateRecord(eventCatalog{cat, lexicon.SchemaRecord{Type: "record", Key: "any", Record: obj}}, rec, eventRecordRef, 0); err != nil {
		t.Errorf("event %s breaks the lexicon: %v: %v", name, err, body)
	}
}

// decodeCBOR decodes the one CBOR item at the start of b (the subset
// modevents.go writes).
func decodeCBOR(t *testing.T, b []byte) (any, []byte) {
	t.Helper()
	if len(b) == 0 {
		t.Fatal("CBOR: unexpected end")
	}
	major, info := b[0]>>5, b[0]&0x1f
	b = b[1:]
	var n uint64
	switch {
	case info < 24:
		n = uint64(info)
	case info == 24:
		n, b = uint64(b[0]), b[1:]
	case info == 25:
		n, b = uint64(binary.BigEndian.Uint16(b)), b[2:]
	case info == 26:
		n, b = uint64(binary.BigEndian.Uint32(b)), b[4:]
	case info == 27:
		n, b = binary.BigEndian.Uint64(b), b[8:]
	}
	switch major {
	case 0:
		return int64(n), b
	case 1:
		return -1 - int64(n), b
	case 3:
		return string(b[:n]), b[n:]
	case 4:
		out := []any{}
		for range n {
			var v any
			v, b = decodeCBOR(t, b)
			out = append(out, v)
		}
		return out, b
	case 5:
		out := map[string]any{}
		for range n {
			var k, v any
			k, b = decodeCBOR(t, b)
			v, b = decodeCBOR(t, b)
			out[k.(string)] = v
		}
		return out, b
	case 7:
		return map[uint64]any{20: false, 21: true, 22: nil}[n], b
	}
	t.Fatalf("CBOR: major type %d not expected", major)
	return nil, nil
}

func TestModEventsStreamBackfillsLiveAndRefusesFutureCursor(t *testing.T) {
	e := newEnv(t, false)
	mod, alice, bob := e.moderator(), e.user("alice"), e.user("bob")
	c := e.open(alice, bob)
	m := e.send(alice, c.Id, "first")
	e.send(bob, c.Id, "second: no event")

	// From the beginning: the convo's first message.
	back := e.subscribe(mod, "2222222222222")
	h, ev := back.next()
	if h["op"] != int64(1) || h["t"] != "#eventConvoFirstMessage" {
		t.Fatalf("header %v", h)
	}
	if ev["convoId"] != c.Id || ev["messageId"] != m.Id || ev["user"] != alice.did.String() ||
		fmt.Sprint(ev["recipients"]) != fmt.Sprint([]any{bob.did.String()}) || ev["rev"] != m.Rev {
		t.Fatalf("event %v", ev)
	}

	h, ev = back.next() // bob's reply accepted the request
	if h["t"] != "#eventChatAccepted" || ev["actorDid"] != bob.did.String() || ev["method"] != "message" || ev["convoId"] != c.Id {
		t.Fatalf("accepted by message: %v %v", h, ev)
	}

	// Live, without a cursor: a new group, renamed, a member removed.
	live := e.subscribe(mod, "")
	members := e.invitable("carol")
	g := e.createGroup(alice, "Live", members...)
	ok[chat.GroupEditGroup_Output](t, e.proc(alice, "chat.bsky.group.editGroup", map[string]any{"convoId": g.Id, "name": "Renamed"}))
	ok[map[string]any](t, e.proc(alice, "chat.bsky.group.removeMembers", map[string]any{"convoId": g.Id, "members": dids(members...)}))
	for _, s := range []*modStreamClient{live, back} {
		h, ev := s.next()
		if h["t"] != "#eventGroupChatCreated" || ev["convoId"] != g.Id || ev["groupName"] != "Live" ||
			ev["ownerDid"] != alice.did.String() || ev["groupMemberCount"] != int64(2) ||
			fmt.Sprint(ev["initialMemberDids"]) != fmt.Sprint([]any{members[0].did.String()}) {
			t.Fatalf("group created: %v %v", h, ev)
		}
		h, ev = s.next()
		if h["t"] != "#eventGroupChatUpdated" || ev["updateType"] != "name_changed" || ev["oldName"] != "Live" || ev["newName"] != "Renamed" {
			t.Fatalf("renamed: %v %v", h, ev)
		}
		h, ev = s.next()
		if h["t"] != "#eventGroupChatMemberLeft" || ev["leaveMethod"] != "kicked" || ev["subjectDid"] != members[0].did.String() ||
			ev["actorDid"] != alice.did.String() || ev["groupMemberCount"] != int64(1) {
			t.Fatalf("removed: %v %v", h, ev)
		}
	}

	// A cursor ahead of every event.
	future := e.subscribe(mod, "7zzzzzzzzzzzz")
	h, ev = future.next()
	if h["op"] != int64(-1) || ev["error"] != "FutureCursor" {
		t.Fatalf("future cursor: %v %v", h, ev)
	}
}

func TestModEventsStreamIsForModeratorsOnly(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	e.moderator()
	r, err := e.raw(t.Context(), http.MethodGet, "chat.bsky.moderation.subscribeModEvents",
		"Bearer "+e.token(alice, "chat.bsky.moderation.subscribeModEvents"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, r, http.StatusUnauthorized, "UntrustedIss", "not a moderation service")
	if !strings.Contains(string(r.header.Get("Content-Type")), "json") {
		t.Fatalf("content type %q", r.header.Get("Content-Type"))
	}
}

// TestModEventsDropsASubscriberTooFarBehind: once a subscriber's backlog
// is full, the next event drops it (its stream then ends with
// ConsumerTooSlow) instead of blocking the service.
func TestModEventsDropsASubscriberTooFarBehind(t *testing.T) {
	e := newEnv(t, false)
	sub := &modSub{frames: make(chan []byte, 1), slow: make(chan struct{})}
	s := e.srv
	s.mu.Lock()
	s.st.mod.subs = map[*modSub]bool{sub: true}
	s.emitModLocked(s.nextTID(), "#eventRateLimitExceeded", map[string]string{"n": "1"})
	s.emitModLocked(s.nextTID(), "#eventRateLimitExceeded", map[string]string{"n": "2"})
	still := s.st.mod.subs[sub]
	s.mu.Unlock()
	select {
	case <-sub.slow:
	default:
		t.Fatal("a subscriber with a full backlog was not marked too slow")
	}
	if still || len(sub.frames) != 1 {
		t.Fatalf("still subscribed %v, %d frames queued", still, len(sub.frames))
	}
}

func TestModEventsForJoinLinksAndJoinRequests(t *testing.T) {
	e := newEnv(t, false)
	mod, alice, carol, dave := e.moderator(), e.user("alice"), e.user("carol"), e.user("dave")
	bob := e.invitable("bob")[0]
	g := e.createGroup(alice, "Club", bob)
	e.recs.follow(carol.did, alice.did)
	stream := e.subscribe(mod, "")
	l := e.createLink(alice, g.Id, "anyone", true)
	ok[chat.GroupRequestJoin_Output](t, e.requestJoin(carol, l.Code))
	ok[chat.GroupRequestJoin_Output](t, e.requestJoin(dave, l.Code))
	ok[chat.GroupApproveJoinRequest_Output](t, e.proc(alice, "chat.bsky.group.approveJoinRequest", map[string]any{"convoId": g.Id, "member": carol.did.String()}))
	ok[chat.GroupRejectJoinRequest_Output](t, e.proc(alice, "chat.bsky.group.rejectJoinRequest", map[string]any{"convoId": g.Id, "member": dave.did.String()}))

	h, ev := stream.next()
	if h["t"] != "#eventGroupChatUpdated" || ev["updateType"] != "join_link_created" || ev["joinLinkCode"] != l.Code ||
		ev["joinLinkRequiresApproval"] != true || ev["joinLinkFollowersOnly"] != false {
		t.Fatalf("link created: %v %v", h, ev)
	}
	for _, want := range []struct {
		who     *user
		follows bool
	}{{carol, true}, {dave, false}} {
		h, ev = stream.next()
		if h["t"] != "#eventGroupChatJoinRequest" || ev["actorDid"] != want.who.did.String() || ev["joinLinkCode"] != l.Code ||
			ev["subjectFollowsOwner"] != want.follows || ev["groupMemberCount"] != int64(2) {
			t.Fatalf("join request: %v %v", h, ev)
		}
	}
	h, ev = stream.next()
	if h["t"] != "#eventGroupChatJoinRequestApproved" || ev["subjectDid"] != carol.did.String() || ev["actorDid"] != alice.did.String() || ev["groupMemberCount"] != int64(3) {
		t.Fatalf("approved: %v %v", h, ev)
	}
	h, ev = stream.next()
	if h["t"] != "#eventGroupChatJoinRequestRejected" || ev["subjectDid"] != dave.did.String() || ev["groupMemberCount"] != int64(3) {
		t.Fatalf("rejected: %v %v", h, ev)
	}

	// Added by the owner (a request until accepted), then joining by a link
	// without approval.
	erin := e.invitable("erin")[0]
	ok[chat.GroupAddMembers_Output](t, e.proc(alice, "chat.bsky.group.addMembers", map[string]any{"convoId": g.Id, "members": dids(erin)}))
	h, ev = stream.next()
	if h["t"] != "#eventGroupChatMemberAdded" || ev["subjectDid"] != erin.did.String() || ev["requestMembersCount"] != int64(2) ||
		ev["subjectFollowsOwner"] != false || ev["groupMemberCount"] != int64(4) {
		t.Fatalf("member added: %v %v", h, ev)
	}
	ok[chat.GroupEditJoinLink_Output](t, e.proc(alice, "chat.bsky.group.editJoinLink", map[string]any{"convoId": g.Id, "requireApproval": false}))
	if h, ev = stream.next(); ev["updateType"] != "join_link_settings_changed" || ev["joinLinkRequiresApproval"] != false {
		t.Fatalf("link edited: %v %v", h, ev)
	}
	ok[chat.GroupRequestJoin_Output](t, e.requestJoin(dave, l.Code))
	h, ev = stream.next()
	if h["t"] != "#eventGroupChatMemberJoined" || ev["actorDid"] != dave.did.String() || ev["groupMemberCount"] != int64(5) {
		t.Fatalf("member joined: %v %v", h, ev)
	}
}
