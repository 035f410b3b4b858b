package devchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Config configures a Server.
type Config struct {
	// Endpoint is the public base URL of the service, e.g. "http://localhost:2590".
	// The service DID is derived from its host and port: did:web:localhost%3A2590.
	Endpoint string
	// Directory resolves issuer signing keys, handles and PDS endpoints.
	Directory identity.Directory
	// Records reads repository records (profiles, chat declarations, follows).
	// nil means reading them over HTTP from each member's PDS.
	Records RecordSource
	// HTTPClient is used for PDS record reads when Records is nil; nil means a
	// client with a 10 s timeout.
	HTTPClient *http.Client
	// Faults enables fault injection (InjectFault and the /_devchat endpoints).
	Faults bool
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// Now is the clock for revs, timestamps and token expiry; nil means time.Now.
	Now func() time.Time
	// Moderators are the DIDs of the moderation services trusted to call the
	// chat.bsky.moderation methods (moderation.go) with their own service
	// token; any other issuer gets 401 UntrustedIss. Empty means none.
	Moderators []syntax.DID
}

// Server is an in-memory chat.bsky service that behaves like Bluesky's chat
// service as seen through a PDS proxy. It is an http.Handler; all methods are
// safe for concurrent use.
type Server struct {
	did       syntax.DID
	endpoint  string
	dir       identity.Directory
	records   RecordSource
	faultsOn  bool
	log       *slog.Logger
	now       func() time.Time
	validator *auth.ServiceAuthValidator
	methods   map[string]method
	mux       *http.ServeMux
	// moderators may call chat.bsky.moderation (Config.Moderators).
	moderators []syntax.DID

	mu sync.Mutex // guards st
	st *state

	faultMu sync.Mutex // guards faults and calls
	faults  []*activeFault
	calls   map[string]int

	profMu   sync.Mutex // guards profiles
	profiles map[syntax.DID]cachedProfile

	closeOnce sync.Once
	closed    chan struct{} // closed by Close: hanging faults return
}

// Close releases calls held open by Hang faults, so that an http.Server
// shutdown does not wait for them: the PDS proxy keeps its upstream request
// open after its own client has given up. It always returns nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// New validates cfg and returns a Server. It returns an error when Endpoint is
// not an absolute http(s) URL without path, query or fragment, or when
// Directory is nil.
func New(cfg Config) (*Server, error) {
	if cfg.Directory == nil {
		return nil, errors.New("devchat: Config.Directory is required")
	}
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("devchat: Config.Endpoint %q must be an http(s) base URL such as http://localhost:2590", cfg.Endpoint)
	}
	did, err := syntax.ParseDID("did:web:" + strings.ReplaceAll(u.Host, ":", "%3A"))
	if err != nil {
		return nil, fmt.Errorf("devchat: no did:web for endpoint host %q: %w", u.Host, err)
	}
	s := &Server{
		did:      did,
		endpoint: u.Scheme + "://" + u.Host,
		dir:      cfg.Directory,
		records:  cfg.Records,
		faultsOn: cfg.Faults,
		log:      cfg.Logger,
		now:      cfg.Now,
		st:       newState(),
		calls:    map[string]int{},
		profiles: map[syntax.DID]cachedProfile{},
		closed:   make(chan struct{}),

		moderators: slices.Clone(cfg.Moderators),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.records == nil {
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		s.records = NewHTTPRecordSource(cfg.Directory, client)
	}
	s.validator = &auth.ServiceAuthValidator{Audience: did.String(), Dir: cfg.Directory}
	s.methods = s.routes()

	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /.well-known/did.json", s.serveDIDDoc)
	s.mux.HandleFunc("GET /xrpc/_health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"version": "devchat"})
	})
	s.mux.HandleFunc("/xrpc/{nsid}", s.serveXRPC)
	if s.faultsOn {
		s.mux.HandleFunc("POST /_devchat/faults", s.servePostFault)
		s.mux.HandleFunc("DELETE /_devchat/faults", s.serveDeleteFaults)
		s.mux.HandleFunc("GET /_devchat/calls", s.serveCalls)
	}
	return s, nil
}

// DID returns the service's did:web, e.g. did:web:localhost%3A2590.
func (s *Server) DID() syntax.DID { return s.did }

// ServiceRef returns the value for the atproto-proxy header, e.g.
// "did:web:localhost%3A2590#bsky_chat".
func (s *Server) ServiceRef() string { return s.did.String() + "#bsky_chat" }

// ServeHTTP serves the DID document, the chat.bsky XRPC methods and, when
// Faults is on, the /_devchat admin endpoints. It logs one line per request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	s.mux.ServeHTTP(rec, r)
	name := r.URL.Path
	if nsid, ok := strings.CutPrefix(r.URL.Path, "/xrpc/"); ok {
		name = nsid
	}
	status := rec.status
	if status == 0 && r.Context().Err() != nil {
		status = 499 // client went away before an answer (a hang fault)
	} else if status == 0 {
		status = http.StatusOK
	}
	s.log.Info("request", "method", name, "http", r.Method, "status", status,
		"iss", rec.iss, "duration", time.Since(start).Round(time.Microsecond))
}

// recorder remembers the status and the authenticated issuer for the log line.
type recorder struct {
	http.ResponseWriter
	status int
	iss    string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (Hijack).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) serveDIDDoc(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"@context": []string{"https://www.w3.org/ns/did/v1"},
		"id":       s.did.String(),
		"service": []map[string]string{{
			"id":              "#bsky_chat",
			"type":            "BskyChatService",
			"serviceEndpoint": s.endpoint,
		}, {
			"id":              "#" + labelerServiceID, // reports.go
			"type":            "AtprotoLabeler",
			"serviceEndpoint": s.endpoint,
		}},
	})
}

// method is one XRPC method: a query (GET) or a procedure (POST).
type method struct {
	procedure bool
	handle    func(ctx context.Context, viewer syntax.DID, r *http.Request) (any, error)
}

// routes is the table of every implemented XRPC method.
func (s *Server) routes() map[string]method {
	q := func(h func(context.Context, syntax.DID, *http.Request) (any, error)) method {
		return method{handle: h}
	}
	p := func(h func(context.Context, syntax.DID, *http.Request) (any, error)) method {
		return method{procedure: true, handle: h}
	}
	m := map[string]method{
		"chat.bsky.actor.getStatus":            q(s.getStatus),
		"chat.bsky.convo.listConvos":           q(s.listConvos),
		"chat.bsky.convo.listConvoRequests":    q(s.listConvoRequests),
		"chat.bsky.convo.getConvo":             q(s.getConvo),
		"chat.bsky.convo.getConvoForMembers":   q(s.getConvoForMembers),
		"chat.bsky.convo.getConvoAvailability": q(s.getConvoAvailability),
		"chat.bsky.convo.getMessages":          q(s.getMessages),
		"chat.bsky.convo.getLog":               q(s.getLog),
		"chat.bsky.convo.getUnreadCounts":      q(s.getUnreadCounts),
		"chat.bsky.convo.sendMessage":          p(s.sendMessage),
		"chat.bsky.convo.sendMessageBatch":     p(s.sendMessageBatch),
		"chat.bsky.convo.updateRead":           p(s.updateRead),
		"chat.bsky.convo.updateAllRead":        p(s.updateAllRead),
		"chat.bsky.convo.acceptConvo":          p(s.acceptConvo),
		"chat.bsky.convo.muteConvo":            p(s.muteConvo),
		"chat.bsky.convo.unmuteConvo":          p(s.unmuteConvo),
		"chat.bsky.convo.leaveConvo":           p(s.leaveConvo),
		"chat.bsky.convo.deleteMessageForSelf": p(s.deleteMessageForSelf),
		"chat.bsky.convo.addReaction":          p(s.addReaction),
		"chat.bsky.convo.removeReaction":       p(s.removeReaction),
		// Groups (groups.go, members.go, lock.go).
		"chat.bsky.group.createGroup":      p(s.createGroup),
		"chat.bsky.group.addMembers":       p(s.addMembers),
		"chat.bsky.group.removeMembers":    p(s.removeMembers),
		"chat.bsky.group.editGroup":        p(s.editGroup),
		"chat.bsky.group.listMutualGroups": q(s.listMutualGroups),
		"chat.bsky.convo.getConvoMembers":  q(s.getConvoMembers),
		"chat.bsky.convo.lockConvo":        p(s.lockConvo),
		"chat.bsky.convo.unlockConvo":      p(s.unlockConvo),
		// notification.go, reports.go, account.go
		"chat.bsky.notification.getPreferences": q(s.getPreferences),
		"chat.bsky.notification.putPreferences": p(s.putPreferences),
		"com.atproto.moderation.createReport":   p(s.createReport),
		"chat.bsky.actor.exportAccountData":     q(s.exportAccountData),
		"chat.bsky.actor.deleteAccount":         p(s.deleteAccount),
	}
	maps.Copy(m, s.joinRoutes())
	maps.Copy(m, s.modRoutes()) // moderation.go
	return m
}

// serveXRPC runs one XRPC call: method lookup (501), service auth (401), call
// counting, fault injection, HTTP verb check, then the handler.
func (s *Server) serveXRPC(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("nsid")
	m, ok := s.methods[name]
	if !ok {
		writeXRPCError(w, &xrpcError{Status: http.StatusNotImplemented, Name: "MethodNotImplemented", Message: "Method Not Implemented"})
		return
	}
	nsid := syntax.NSID(name)
	var viewer syntax.DID
	var aerr *xrpcError
	if !publicMethods[name] || r.Header.Get("Authorization") != "" {
		viewer, aerr = s.authenticate(r, nsid)
	}
	if aerr != nil {
		writeXRPCError(w, aerr)
		return
	}
	if rec, ok := w.(*recorder); ok {
		rec.iss = viewer.String()
	}
	s.countCall(name)
	if f, ok := s.takeFault(name); ok {
		s.applyFault(w, r, f)
		return
	}
	want := http.MethodGet
	if m.procedure {
		want = http.MethodPost
	}
	if r.Method != want && !(r.Method == http.MethodHead && want == http.MethodGet) {
		writeXRPCError(w, invalidf("Incorrect HTTP method (%s) expected %s", r.Method, want))
		return
	}
	if xe := s.refuseDisabled(name, viewer); xe != nil { // moderation.go
		writeXRPCError(w, xe)
		return
	}
	out, err := m.handle(withViewer(r.Context(), viewer), viewer, r)
	if err != nil {
		var xe *xrpcError
		if !errors.As(err, &xe) {
			s.log.Error("handler failed", "method", name, "iss", viewer.String(), "err", err)
			xe = &xrpcError{Status: http.StatusInternalServerError, Name: "InternalServerError", Message: "Internal Server Error"}
		}
		writeXRPCError(w, xe)
		return
	}
	if h, ok := out.(http.Handler); ok { // a subscription's stream (modevents.go)
		h.ServeHTTP(w, r)
		return
	}
	if b, ok := out.(jsonLines); ok { // account.go
		w.Header().Set("Content-Type", "application/jsonl")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// xrpcError is an XRPC error response: status plus the lexicon-style body
// {"error": Name, "message": Message}.
type xrpcError struct {
	Status  int
	Name    string
	Message string
	Header  http.Header
}

func (e *xrpcError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Name, e.Message) }

// invalidf is a 400 InvalidRequest.
func invalidf(format string, args ...any) *xrpcError {
	return &xrpcError{Status: http.StatusBadRequest, Name: "InvalidRequest", Message: fmt.Sprintf(format, args...)}
}

// badRequest is a 400 with a lexicon-declared error name.
func badRequest(name, message string) *xrpcError {
	return &xrpcError{Status: http.StatusBadRequest, Name: name, Message: message}
}

func writeXRPCError(w http.ResponseWriter, e *xrpcError) {
	for k, vs := range e.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	writeJSON(w, e.Status, map[string]string{"error": e.Name, "message": e.Message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"InternalServerError","message":"could not encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// maxBody caps procedure input.
const maxBody = 1 << 20

// decodeInput reads a procedure's JSON body into v.
func decodeInput(r *http.Request, v any) error {
	b, err := readInput(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return invalidf("Input must be valid JSON: %v", err)
	}
	return nil
}

// readInput returns a procedure's JSON body, checking its encoding and size.
func readInput(r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		return nil, invalidf("Wrong request encoding (Content-Type): %q, expected application/json", ct)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, invalidf("could not read request body")
	}
	if len(b) > maxBody {
		return nil, &xrpcError{Status: http.StatusRequestEntityTooLarge, Name: "PayloadTooLarge", Message: "request entity too large"}
	}
	return b, nil
}
