package projects

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// fakePDS answers com.atproto.repo.createRecord, putRecord, getRecord and
// deleteRecord for any repo, keeping records in memory.
type fakePDS struct {
	mux *http.ServeMux

	mu      sync.Mutex
	tids    *syntax.TIDClock
	records map[string]map[string]any // uri → record
	creates int
	deletes int
	gets    int
	fail    []int // statuses for the next createRecord calls
}

func newFakePDS(t testing.TB) *fakePDS {
	p := &fakePDS{tids: syntax.NewTIDClock(0), records: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /xrpc/com.atproto.repo.createRecord", p.create)
	mux.HandleFunc("POST /xrpc/com.atproto.repo.putRecord", p.create)
	mux.HandleFunc("POST /xrpc/com.atproto.repo.deleteRecord", p.delete)
	mux.HandleFunc("GET /xrpc/com.atproto.repo.getRecord", p.get)
	p.mux = mux
	return p
}

// client returns an APIClient acting for nobody in particular (the fake
// does not check auth); repo is given per call. Its requests are served in
// process, without a socket, so that tests can run in a synctest bubble.
func (p *fakePDS) client() *atclient.APIClient {
	c := atclient.NewAPIClient("http://fakepds.test")
	c.Client = &http.Client{Transport: inProcess{p.mux}}
	return c
}

// inProcess is an http.RoundTripper that serves requests with h.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	res := rec.Result()
	res.Request = req
	return res, nil
}

func (p *fakePDS) failNext(statuses ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = append(p.fail, statuses...)
}

func (p *fakePDS) count() (records, creates, deletes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records), p.creates, p.deletes
}

func (p *fakePDS) record(uri syntax.ATURI) map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.records[uri.String()]
}

func xrpcError(w http.ResponseWriter, status int, name, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": name, "message": msg})
}

func (p *fakePDS) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Repo       string         `json:"repo"`
		Collection string         `json:"collection"`
		Rkey       string         `json:"rkey"`
		Record     map[string]any `json:"record"`
	}
	raw := json.NewDecoder(r.Body)
	if err := raw.Decode(&in); err != nil {
		xrpcError(w, 400, "InvalidRequest", err.Error())
		return
	}
	p.mu.Lock()
	p.creates++
	if len(p.fail) > 0 {
		st := p.fail[0]
		p.fail = p.fail[1:]
		p.mu.Unlock()
		name := map[int]string{401: "ExpiredToken", 429: "RateLimitExceeded", 400: "InvalidRecord"}[st]
		if name == "" {
			name = "InternalServerError"
		}
		xrpcError(w, st, name, "injected")
		return
	}
	if in.Record["$type"] != in.Collection {
		p.mu.Unlock()
		xrpcError(w, 400, "InvalidRecord", "record $type does not match collection")
		return
	}
	rkey := in.Rkey // putRecord
	if rkey == "" {
		rkey = p.tids.Next().String()
	}
	uri := "at://" + in.Repo + "/" + in.Collection + "/" + rkey
	p.records[uri] = in.Record
	p.mu.Unlock()
	cid := cidOf(in.Record)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"uri": uri, "cid": cid})
}

func (p *fakePDS) delete(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Repo, Collection, Rkey string
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		xrpcError(w, 400, "InvalidRequest", err.Error())
		return
	}
	p.mu.Lock()
	p.deletes++
	delete(p.records, "at://"+in.Repo+"/"+in.Collection+"/"+in.Rkey)
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte("{}"))
}

func cidOf(rec map[string]any) string {
	b, _ := json.Marshal(rec)
	sum := sha256.Sum256(b)
	return "bafyrei" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))[:52]
}

func (p *fakePDS) get(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	uri := "at://" + q.Get("repo") + "/" + q.Get("collection") + "/" + q.Get("rkey")
	p.mu.Lock()
	p.gets++
	rec, ok := p.records[uri]
	p.mu.Unlock()
	if !ok {
		xrpcError(w, 400, "RecordNotFound", "Could not locate record: "+uri)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"uri": uri, "cid": cidOf(rec), "value": rec})
}

// put stores rec at uri as if a write had reached the repository.
func (p *fakePDS) put(uri syntax.ATURI, rec map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.records[uri.String()] = rec
}
