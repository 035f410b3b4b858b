package projects

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/rivo/uniseg"

	"github.com/skydm/skydm/internal/apperr"
)

// DefaultAuthority is the NSID authority of skydm's record types when the
// operator configures none: records are dev.skydm.project and
// dev.skydm.changeRequest (lexicons/dev/skydm/*.json).
const DefaultAuthority = "dev.skydm"

// Record names under the authority.
const (
	ProjectRecordName       = "project"
	ChangeRequestRecordName = "changeRequest"
)

// Limits, mirroring lexicons/dev/skydm/*.json (a test keeps them equal).
// Graphemes are user-perceived characters (uniseg); bytes are UTF-8.
const (
	ProjectNameMaxGraphemes        = 100
	ProjectNameMaxBytes            = 1000
	ProjectDescriptionMaxGraphemes = 3000
	ProjectDescriptionMaxBytes     = 30000
	TitleMaxGraphemes              = 200
	TitleMaxBytes                  = 2000
	BodyMaxGraphemes               = 10000
	BodyMaxBytes                   = 30000
)

// Reasons set on validation errors (apperr.Error.Reason), one per form
// field, so a handler can mark the field.
const (
	ReasonInvalidName        = "InvalidName"
	ReasonInvalidDescription = "InvalidDescription"
	ReasonInvalidTitle       = "InvalidTitle"
	ReasonInvalidBody        = "InvalidBody"
	ReasonInvalidProject     = "InvalidProject"
)

// ReasonRecordRefused is set when the user's PDS did not accept a record
// write (a 4xx other than auth, scope and rate limits).
const ReasonRecordRefused = "InvalidRecord"

// Collections are the record collections (NSIDs) for one authority.
type Collections struct {
	Project       syntax.NSID // <authority>.project
	ChangeRequest syntax.NSID // <authority>.changeRequest
}

// CollectionsFor returns the collections under authority (a reversed
// domain such as "dev.skydm"; "" → DefaultAuthority). It returns an error
// when the authority does not make valid NSIDs.
func CollectionsFor(authority string) (Collections, error) {
	if authority == "" {
		authority = DefaultAuthority
	}
	p, err := syntax.ParseNSID(authority + "." + ProjectRecordName)
	if err != nil {
		return Collections{}, fmt.Errorf("projects: NSID authority %q: %w", authority, err)
	}
	c, err := syntax.ParseNSID(authority + "." + ChangeRequestRecordName)
	if err != nil {
		return Collections{}, fmt.Errorf("projects: NSID authority %q: %w", authority, err)
	}
	return Collections{Project: p, ChangeRequest: c}, nil
}

// ProjectInput is what a person types to create a project.
type ProjectInput struct {
	Name        string
	Description string
}

// ChangeRequestInput is what a person types to file a change request.
type ChangeRequestInput struct {
	Title string
	Body  string
	// RequesterHandle is only for display: when a notifier account sends
	// the DM, the text says who filed the request. It is not written to
	// the record. "" → the requester's DID is shown.
	RequesterHandle string
}

// ProjectRecord is the project record as written to the owner's repo.
type ProjectRecord struct {
	Type        string `json:"$type"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	CreatedAt   string `json:"createdAt"`
}

// ChangeRequestRecord is the change request record as written to the
// requester's repo.
type ChangeRequestRecord struct {
	Type      string                    `json:"$type"`
	Title     string                    `json:"title"`
	Body      string                    `json:"body"`
	Project   *comatproto.RepoStrongRef `json:"project"`
	CreatedAt string                    `json:"createdAt"`
}

// field describes one text field's rules.
type field struct {
	label        string // as people see it: "Title"
	reason       string
	required     bool
	multiline    bool
	maxGraphemes int
	maxBytes     int
}

var (
	fieldName        = field{"Name", ReasonInvalidName, true, false, ProjectNameMaxGraphemes, ProjectNameMaxBytes}
	fieldDescription = field{"Description", ReasonInvalidDescription, false, true, ProjectDescriptionMaxGraphemes, ProjectDescriptionMaxBytes}
	fieldTitle       = field{"Title", ReasonInvalidTitle, true, false, TitleMaxGraphemes, TitleMaxBytes}
	fieldBody        = field{"Body", ReasonInvalidBody, true, true, BodyMaxGraphemes, BodyMaxBytes}
)

func invalid(f field, msg string) error {
	return &apperr.Error{Code: apperr.Invalid, Reason: f.reason, Message: msg}
}

// clean normalises one field (trims surrounding white space, CRLF → LF)
// and checks it against the lexicon's limits and skydm's stricter rules
// (valid UTF-8, not blank when required, no control characters, one line
// for names and titles).
func (f field) clean(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", invalid(f, f.label+" contains bytes that are not valid text.")
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimSpace(s)
	if s == "" {
		if f.required {
			return "", invalid(f, f.label+" is required.")
		}
		return "", nil
	}
	for _, r := range s {
		if r == '\n' || r == '\t' {
			if !f.multiline && r == '\n' {
				return "", invalid(f, f.label+" must be a single line.")
			}
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "", invalid(f, f.label+" contains control characters.")
		}
	}
	if g := uniseg.GraphemeClusterCount(s); g > f.maxGraphemes {
		return "", invalid(f, fmt.Sprintf("%s is too long: at most %d characters, and this one has %d.", f.label, f.maxGraphemes, g))
	}
	if len(s) > f.maxBytes {
		return "", invalid(f, fmt.Sprintf("%s is too long: at most %d bytes of text, and this one has %d (some characters, such as emoji, take several bytes).", f.label, f.maxBytes, len(s)))
	}
	return s, nil
}

// ValidateProject checks a project against the lexicon and returns it
// normalised (trimmed). It returns an *apperr.Error (Invalid, Reason
// naming the field, Message naming it for people) on the first problem.
func ValidateProject(in ProjectInput) (ProjectInput, error) {
	name, err := fieldName.clean(in.Name)
	if err != nil {
		return ProjectInput{}, err
	}
	desc, err := fieldDescription.clean(in.Description)
	if err != nil {
		return ProjectInput{}, err
	}
	return ProjectInput{Name: name, Description: desc}, nil
}

// ValidateChangeRequest checks a change request against the lexicon and
// returns it normalised (trimmed). It returns an *apperr.Error (Invalid,
// Reason naming the field, Message naming it for people) on the first
// problem.
func ValidateChangeRequest(in ChangeRequestInput) (ChangeRequestInput, error) {
	title, err := fieldTitle.clean(in.Title)
	if err != nil {
		return ChangeRequestInput{}, err
	}
	body, err := fieldBody.clean(in.Body)
	if err != nil {
		return ChangeRequestInput{}, err
	}
	return ChangeRequestInput{Title: title, Body: body, RequesterHandle: strings.TrimSpace(in.RequesterHandle)}, nil
}

// ParseProjectURI checks that s is the AT URI of a project record in these
// collections: at://<did>/<authority>.project/<rkey>. It returns an
// *apperr.Error (Invalid, ReasonInvalidProject) otherwise.
func (c Collections) ParseProjectURI(s string) (syntax.ATURI, error) {
	bad := &apperr.Error{Code: apperr.Invalid, Reason: ReasonInvalidProject,
		Message: "That is not the address of a skydm project."}
	u, err := syntax.ParseATURI(strings.TrimSpace(s))
	if err != nil {
		bad.Err = err
		return "", bad
	}
	if _, err := u.Authority().AsDID(); err != nil {
		bad.Err = err
		return "", bad
	}
	if u.Collection() != c.Project || u.RecordKey() == "" {
		return "", bad
	}
	if _, err := syntax.ParseRecordKey(u.RecordKey().String()); err != nil {
		bad.Err = err
		return "", bad
	}
	return u.Normalize(), nil
}
