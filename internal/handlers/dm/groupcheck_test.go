package dm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/chatproxy"
)

const (
	meDID    = "did:plc:me000000000000000000000"
	carolDID = "did:plc:carol0000000000000000000"
)

// fakeRepos is a PDS holding repositories' records: declarations by repo,
// and the subjects of follows and blocks by repo (answered 100 a page).
// A repo in remote is not held: listRecords fails for it.
type fakeRepos struct {
	decl    map[string]string // repo → declaration JSON ("" → none)
	follows map[string][]string
	blocks  map[string][]string
	remote  map[string]bool
	broken  bool // getRecord answers 500
}

func (f *fakeRepos) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	repo := q.Get("repo")
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/xrpc/com.atproto.repo.getRecord":
		if f.broken {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error":"InternalServerError"}`)
			return
		}
		d, ok := f.decl[repo]
		if !ok {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"RecordNotFound","message":"Could not locate record"}`)
			return
		}
		fmt.Fprintf(w, `{"uri":"at://%s/chat.bsky.actor.declaration/self","value":%s}`, repo, d)
	case "/xrpc/com.atproto.repo.listRecords":
		if f.remote[repo] {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":"InvalidRequest","message":"Could not find repo"}`)
			return
		}
		subjects := f.follows[repo]
		if q.Get("collection") == collBlock {
			subjects = f.blocks[repo]
		}
		start, _ := strconv.Atoi(q.Get("cursor"))
		end := min(start+100, len(subjects))
		out := map[string]any{"records": []any{}}
		var recs []any
		for _, s := range subjects[start:end] {
			recs = append(recs, map[string]any{"uri": "at://x", "cid": "c", "value": map[string]any{"subject": s}})
		}
		if recs != nil {
			out["records"] = recs
		}
		if end < len(subjects) {
			out["cursor"] = strconv.Itoa(end)
		}
		_ = json.NewEncoder(w).Encode(out)
	default:
		w.WriteHeader(404)
	}
}

// A member is refused for what their records say, as social-app's
// canBeAddedToGroup reads them; what cannot be read is left to the chat
// service.
func TestGroupInviteRefusalReadsTheRecords(t *testing.T) {
	many := make([]string, 250)
	for i := range many {
		many[i] = fmt.Sprintf("did:plc:other%d", i)
	}
	for _, tc := range []struct {
		name  string
		repos fakeRepos
		want  string
	}{
		{"groups from no one", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"all","allowGroupInvites":"none"}`}}, chatproxy.ReasonUserForbidsGroups},
		{"groups from all", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"none","allowGroupInvites":"all"}`}}, ""},
		{"following, and she follows me (page 3)", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"all","allowGroupInvites":"following"}`},
			follows: map[string][]string{carolDID: append(append([]string{}, many...), meDID)}}, ""},
		{"following, and she does not", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"all","allowGroupInvites":"following"}`},
			follows: map[string][]string{carolDID: many}}, chatproxy.ReasonNotFollowedBySender},
		{"unset falls back to allowIncoming", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"none"}`}}, chatproxy.ReasonUserForbidsGroups},
		{"no declaration is following", fakeRepos{}, chatproxy.ReasonNotFollowedBySender},
		{"unknown value refuses", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"all","allowGroupInvites":"friends"}`}}, chatproxy.ReasonUserForbidsGroups},
		{"I block her", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"all","allowGroupInvites":"all"}`},
			blocks: map[string][]string{meDID: {carolDID}}}, chatproxy.ReasonBlocked},
		{"she blocks me", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"all","allowGroupInvites":"all"}`},
			blocks: map[string][]string{carolDID: {meDID}}}, chatproxy.ReasonBlocked},
		{"her follows are on another PDS", fakeRepos{decl: map[string]string{carolDID: `{"allowIncoming":"all","allowGroupInvites":"following"}`},
			remote: map[string]bool{carolDID: true}}, ""},
		{"her declaration can't be read", fakeRepos{broken: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&tc.repos)
			defer srv.Close()
			api := atclient.NewAPIClient(srv.URL)
			me := syntax.DID(meDID)
			api.AccountDID = &me
			got, err := proxyChat{api: api}.GroupInviteRefusal(context.Background(), syntax.DID(carolDID))
			if err != nil || got != tc.want {
				t.Fatalf("GroupInviteRefusal = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
