package devchat

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/skydm/skydm/internal/lex/lexval"
)

// Reports: devchat is also the sandbox's moderation service. Its DID
// document lists an #atproto_labeler service, so a PDS forwards
// com.atproto.moderation.createReport sent with the header
// "atproto-proxy: <devchat DID>#atproto_labeler" here, with a service token
// (aud the bare DID, lxm the method) like the chat methods'.

// labelerServiceID is the DID document service id of the report endpoint.
const labelerServiceID = "atproto_labeler"

// LabelerServiceRef returns the atproto-proxy header value that sends
// com.atproto.moderation.createReport to this service, e.g.
// "did:web:localhost%3A2590#atproto_labeler".
func (s *Server) LabelerServiceRef() string { return s.did.String() + "#" + labelerServiceID }

// Report is one com.atproto.moderation.createReport the service received.
type Report struct {
	ID         int64
	ReasonType string // e.g. com.atproto.moderation.defs#reasonSpam
	Reason     string // "" when none was given
	// Subject is the report's subject as sent: a com.atproto.admin.defs#repoRef,
	// a com.atproto.repo.strongRef, or (from Bluesky's app, reporting a chat
	// message) a chat.bsky.convo.defs#messageRef.
	Subject    json.RawMessage
	ReportedBy syntax.DID
	CreatedAt  time.Time
}

// Reports returns every report received so far, oldest first.
func (s *Server) Reports() []Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.st.reports)
	for i := range out {
		out[i].Subject = slices.Clone(out[i].Subject)
	}
	return out
}

// createReportOutput is com.atproto.moderation.createReport's output; the
// subject is echoed as sent, whatever member of the open union it is.
type createReportOutput struct {
	ID         int64           `json:"id"`
	ReasonType string          `json:"reasonType"`
	Reason     *string         `json:"reason,omitempty"`
	Subject    json.RawMessage `json:"subject"`
	ReportedBy string          `json:"reportedBy"`
	CreatedAt  string          `json:"createdAt"`
}

// createReport records a report whose input the lexicon accepts.
func (s *Server) createReport(_ context.Context, viewer syntax.DID, r *http.Request) (any, error) {
	var in struct {
		ReasonType string          `json:"reasonType"`
		Reason     *string         `json:"reason"`
		Subject    json.RawMessage `json:"subject"`
	}
	if err := decodeValidated(r, "com.atproto.moderation.createReport", &in); err != nil {
		return nil, err
	}
	s.mu.Lock()
	rep := Report{
		ID:         int64(len(s.st.reports) + 1),
		ReasonType: in.ReasonType,
		Subject:    slices.Clone(in.Subject),
		ReportedBy: viewer,
		CreatedAt:  s.now(),
	}
	if in.Reason != nil {
		rep.Reason = *in.Reason
	}
	s.st.reports = append(s.st.reports, rep)
	s.mu.Unlock()
	return &createReportOutput{
		ID: rep.ID, ReasonType: rep.ReasonType, Reason: in.Reason, Subject: in.Subject,
		ReportedBy: viewer.String(), CreatedAt: datetime(rep.CreatedAt),
	}, nil
}

// decodeValidated reads a procedure's JSON input, checks it against the
// method's lexicon (an InvalidRequest naming the field otherwise) and
// decodes it into v.
func decodeValidated(r *http.Request, nsid string, v any) error {
	b, err := readInput(r)
	if err != nil {
		return err
	}
	if err := lexval.Input(nsid, b); err != nil {
		msg, _, _ := strings.Cut(err.Error(), "\n") // without the echoed body
		return invalidf("%s", msg)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return invalidf("Input must be valid JSON: %v", err)
	}
	return nil
}
