package devchat

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/bluesky-social/indigo/atproto/identity"
)

// didDoc fetches and decodes the service's DID document; b is its JSON.
func (e *env) didDoc() (doc identity.DIDDocument, b []byte) {
	e.t.Helper()
	res, err := e.ts.Client().Get(e.ts.URL + "/.well-known/did.json")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ = io.ReadAll(res.Body)
	if err := json.Unmarshal(b, &doc); err != nil {
		e.t.Fatalf("%v: %s", err, b)
	}
	return doc, b
}

func TestDIDDocumentNamesTheLabelerService(t *testing.T) {
	e := newEnv(t, false)
	if got, want := e.srv.LabelerServiceRef(), "did:web:localhost%3A2590#atproto_labeler"; got != want {
		t.Errorf("LabelerServiceRef = %s, want %s", got, want)
	}
	doc, b := e.didDoc()
	for _, s := range doc.Service {
		if s.ID == "#atproto_labeler" {
			if s.Type != "AtprotoLabeler" || s.ServiceEndpoint != testEndpoint {
				t.Fatalf("labeler entry = %+v", s)
			}
			return
		}
	}
	t.Fatalf("did.json has no #atproto_labeler: %s", b)
}

func TestCreateReportIsRecorded(t *testing.T) {
	e := newEnv(t, false)
	alice, bob := e.user("alice"), e.user("bob")
	c := e.open(bob, alice)
	m := e.send(bob, c.Id, "buy my coins")
	subjects := []map[string]string{
		{"$type": "chat.bsky.convo.defs#messageRef", "did": bob.did.String(), "convoId": c.Id, "messageId": m.Id},
		{"$type": "com.atproto.admin.defs#repoRef", "did": bob.did.String()},
	}
	for i, subj := range subjects {
		r := e.proc(alice, "com.atproto.moderation.createReport", map[string]any{
			"reasonType": "com.atproto.moderation.defs#reasonSpam", "reason": "spam in my DMs", "subject": subj,
		})
		out := ok[createReportOutput](t, r)
		if out.ID != int64(i+1) || out.ReportedBy != alice.did.String() || out.ReasonType != "com.atproto.moderation.defs#reasonSpam" {
			t.Errorf("answer %d = %+v", i, out)
		}
	}
	reps := e.srv.Reports()
	if len(reps) != 2 {
		t.Fatalf("Reports() has %d, want 2", len(reps))
	}
	var got map[string]string
	if err := json.Unmarshal(reps[0].Subject, &got); err != nil || got["messageId"] != m.Id || got["convoId"] != c.Id {
		t.Errorf("first report's subject = %s", reps[0].Subject)
	}
	if reps[0].ReportedBy != alice.did || reps[0].Reason != "spam in my DMs" {
		t.Errorf("first report = %+v", reps[0])
	}
}

func TestCreateReportRefusesInputTheLexiconRefuses(t *testing.T) {
	e := newEnv(t, false)
	alice := e.user("alice")
	for name, body := range map[string]any{
		"no reasonType": map[string]any{"subject": map[string]string{"$type": "com.atproto.admin.defs#repoRef", "did": "did:plc:bob"}},
		"no subject":    map[string]any{"reasonType": "com.atproto.moderation.defs#reasonSpam"},
		"repoRef without a did": map[string]any{"reasonType": "com.atproto.moderation.defs#reasonSpam",
			"subject": map[string]string{"$type": "com.atproto.admin.defs#repoRef"}},
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, e.proc(alice, "com.atproto.moderation.createReport", body), http.StatusBadRequest, "InvalidRequest", "createReport")
		})
	}
	if n := len(e.srv.Reports()); n != 0 {
		t.Fatalf("refused reports were recorded: %d", n)
	}
}
