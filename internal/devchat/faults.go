package devchat

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Fault makes calls of a method fail, for tests. It applies after service
// auth, so a faulted call still counts in Calls.
//
// JSON (POST /_devchat/faults): {"method": "chat.bsky.convo.sendMessage",
// "status": 429, "count": 2, "retryAfter": "30s" or 30 (seconds),
// "ratelimitReset": "2026-01-02T15:04:05Z" or 1767366245 (unix seconds),
// "hang": false}.
type Fault struct {
	// Method is the NSID to fail, or "*" for every method.
	Method string
	// Status is the HTTP status to answer (400–599). Ignored when Hang.
	Status int
	// Count is how many calls fail; 0 means every call until ClearFaults.
	Count int
	// RetryAfter sets the Retry-After header (whole seconds, rounded up).
	// For 429 it defaults to the time until RatelimitReset.
	RetryAfter time.Duration
	// RatelimitReset is sent, for 429, as ratelimit-reset (unix seconds) along
	// with ratelimit-remaining: 0. Zero means now + RetryAfter (or + 60 s).
	RatelimitReset time.Time
	// Hang makes the call wait, answering nothing, until the client gives up
	// (the request context is cancelled), the Server is closed, or maxHang
	// has passed.
	Hang bool
}

type faultJSON struct {
	Method         string          `json:"method"`
	Status         int             `json:"status,omitempty"`
	Count          int             `json:"count,omitempty"`
	RetryAfter     json.RawMessage `json:"retryAfter,omitempty"`
	RatelimitReset json.RawMessage `json:"ratelimitReset,omitempty"`
	Hang           bool            `json:"hang,omitempty"`
}

// MarshalJSON encodes f as documented on Fault (retryAfter as a duration
// string, ratelimitReset as RFC 3339).
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Method: f.Method, Status: f.Status, Count: f.Count, Hang: f.Hang}
	if f.RetryAfter != 0 {
		j.RetryAfter, _ = json.Marshal(f.RetryAfter.String())
	}
	if !f.RatelimitReset.IsZero() {
		j.RatelimitReset, _ = json.Marshal(f.RatelimitReset.UTC().Format(time.RFC3339))
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the JSON documented on Fault; it fails on a malformed
// retryAfter or ratelimitReset.
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*f = Fault{Method: j.Method, Status: j.Status, Count: j.Count, Hang: j.Hang}
	if len(j.RetryAfter) > 0 {
		var secs float64
		var str string
		switch {
		case json.Unmarshal(j.RetryAfter, &secs) == nil:
			f.RetryAfter = time.Duration(secs * float64(time.Second))
		case json.Unmarshal(j.RetryAfter, &str) == nil:
			d, err := time.ParseDuration(str)
			if err != nil {
				return fmt.Errorf("retryAfter: %w", err)
			}
			f.RetryAfter = d
		default:
			return errors.New("retryAfter must be seconds or a duration string")
		}
	}
	if len(j.RatelimitReset) > 0 {
		var unix int64
		var t time.Time
		switch {
		case json.Unmarshal(j.RatelimitReset, &unix) == nil:
			f.RatelimitReset = time.Unix(unix, 0)
		case json.Unmarshal(j.RatelimitReset, &t) == nil:
			f.RatelimitReset = t
		default:
			return errors.New("ratelimitReset must be unix seconds or an RFC 3339 time")
		}
	}
	return nil
}

type activeFault struct {
	f         Fault
	remaining int // 0: until cleared
}

// InjectFault queues f: the next f.Count calls of f.Method fail as f says.
// Faults for the same method apply in the order injected. It returns an
// error when fault injection is off (Config.Faults) or f is invalid.
func (s *Server) InjectFault(f Fault) error {
	if !s.faultsOn {
		return errors.New("devchat: fault injection is off (Config.Faults)")
	}
	if f.Method != "*" {
		if _, err := syntax.ParseNSID(f.Method); err != nil {
			return fmt.Errorf("devchat: fault method %q is not an NSID or \"*\"", f.Method)
		}
	}
	if !f.Hang && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("devchat: fault status %d is not an HTTP error status", f.Status)
	}
	if f.Count < 0 || f.RetryAfter < 0 {
		return errors.New("devchat: fault count and retryAfter must not be negative")
	}
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = append(s.faults, &activeFault{f: f, remaining: f.Count})
	return nil
}

// ClearFaults removes every queued fault.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = nil
}

// Calls returns how many authenticated calls of the NSID method the server
// has received (faulted ones included); 0 for methods never called.
func (s *Server) Calls(method string) int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.calls[method]
}

func (s *Server) countCall(nsid string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.calls[nsid]++
}

// takeFault consumes one use of the first fault matching nsid.
func (s *Server) takeFault(nsid string) (Fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for i, af := range s.faults {
		if af.f.Method != nsid && af.f.Method != "*" {
			continue
		}
		if af.remaining > 0 {
			af.remaining--
			if af.remaining == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return af.f, true
	}
	return Fault{}, false
}

// errorName is the XRPC error name for a status a fault answers with.
func errorName(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "InvalidRequest"
	case http.StatusUnauthorized:
		return "AuthenticationRequired"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "XRPCNotSupported"
	case http.StatusRequestEntityTooLarge:
		return "PayloadTooLarge"
	case http.StatusTooManyRequests:
		return "RateLimitExceeded"
	case http.StatusNotImplemented:
		return "MethodNotImplemented"
	case http.StatusBadGateway:
		return "UpstreamFailure"
	case http.StatusServiceUnavailable:
		return "NotEnoughResources"
	case http.StatusGatewayTimeout:
		return "UpstreamTimeout"
	default:
		return "InternalServerError"
	}
}

// maxHang bounds a Hang fault: the PDS proxy does not cancel its upstream
// request when its client gives up, so without a bound a hung call would
// outlive the test that asked for it.
const maxHang = 2 * time.Minute

// applyFault answers a call the way f says.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault) {
	if f.Hang {
		t := time.NewTimer(maxHang)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-s.closed:
		case <-t.C:
		}
		return
	}
	e := &xrpcError{Status: f.Status, Name: errorName(f.Status), Message: "injected fault: " + http.StatusText(f.Status), Header: http.Header{}}
	retryAfter := f.RetryAfter
	if f.Status == http.StatusTooManyRequests {
		e.Message = "Rate Limit Exceeded"
		reset := f.RatelimitReset
		if reset.IsZero() {
			wait := f.RetryAfter
			if wait == 0 {
				wait = time.Minute
			}
			reset = s.now().Add(wait)
		}
		if retryAfter == 0 {
			retryAfter = max(time.Second, reset.Sub(s.now()))
		}
		e.Header.Set("RateLimit-Limit", "3000")
		e.Header.Set("RateLimit-Remaining", "0")
		e.Header.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
		e.Header.Set("RateLimit-Policy", "3000;w=300")
	}
	if retryAfter > 0 {
		e.Header.Set("Retry-After", strconv.FormatInt(int64(math.Ceil(retryAfter.Seconds())), 10))
	}
	writeXRPCError(w, e)
}

// servePostFault is POST /_devchat/faults: inject one Fault (JSON body).
func (s *Server) servePostFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeInput(r, &f); err != nil {
		xe := invalidf("%v", err)
		errors.As(err, &xe)
		writeXRPCError(w, xe)
		return
	}
	if err := s.InjectFault(f); err != nil {
		writeXRPCError(w, invalidf("%v", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"fault": f})
}

// serveDeleteFaults is DELETE /_devchat/faults: clear every fault.
func (s *Server) serveDeleteFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	writeJSON(w, http.StatusOK, map[string]any{})
}

// serveCalls is GET /_devchat/calls: {"calls": {"<nsid>": n, ...}}.
func (s *Server) serveCalls(w http.ResponseWriter, _ *http.Request) {
	s.faultMu.Lock()
	calls := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		calls[k] = v
	}
	s.faultMu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"calls": calls})
}
