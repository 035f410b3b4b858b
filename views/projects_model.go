package views

import (
	"strconv"
	"time"
)

// View models of the project and change-request pages. The handlers fill
// them from internal/projects and internal/notify; every string is
// untrusted and escaped by templ, and every link is a path the handlers
// built (never text a person typed).

// Delivery states as the pages style them: notify.State values.
const (
	DeliveryQueued       = "queued"
	DeliverySending      = "sending"
	DeliverySent         = "sent"
	DeliveryNotDelivered = "not_delivered"
	DeliveryParkedAuth   = "parked_auth"
	DeliveryGivenUp      = "given_up"
)

// Change request list tabs.
const (
	TabIncoming = "incoming" // change requests to the viewer's projects
	TabMine     = "mine"     // change requests the viewer filed
)

// ProjectVM is a project as pages show it.
type ProjectVM struct {
	Path        string // /projects/{owner}/{rkey}
	Name        string
	Description string
	OwnerDID    string
	OwnerName   string // handle, or the DID when unknown
	Created     time.Time
}

// DeliveryVM is the state of one change-request DM, as one viewer sees it.
type DeliveryVM struct {
	ID            int64
	State         string // one of the Delivery* constants
	Label         string // "Sent", "Not delivered", …
	Reason        string // why it is not (yet) delivered; "" when nothing to say
	Fix           string // what would let it through, addressed to this viewer; "" when none
	RecipientName string
	SenderName    string
	Attempts      int
	NextAttempt   time.Time // queued rows waiting after a failure
	SentAt        time.Time
	// ConvoPath links the DM conversation (/convos/{id}); set for the
	// conversation's members only.
	ConvoPath string
	// CanRetry offers the Retry button (requester or owner, retryable state).
	CanRetry bool
}

// RetryPath is where the Retry button posts.
func (d DeliveryVM) RetryPath() string { return "/outbox/" + strconv.FormatInt(d.ID, 10) + "/retry" }

// ChangeRequestVM is a change request as pages show it.
type ChangeRequestVM struct {
	Path          string // /change-requests/{requester}/{rkey}
	Title         string
	Body          string
	ProjectPath   string
	ProjectName   string
	RequesterDID  string
	RequesterName string
	OwnerDID      string
	OwnerName     string
	Created       time.Time
	// DeliveryVisible: the viewer is the requester or the owner, the only
	// ones shown whether (and why not) the owner was told.
	DeliveryVisible bool
	// Deliveries are its DMs (one, to the owner, in practice; none when
	// the owner filed it on their own project); empty unless
	// DeliveryVisible.
	Deliveries []DeliveryVM
}

// ProjectForm is the state of the "New project" form.
type ProjectForm struct {
	Name, Description string // as typed, kept on error
	NameError         string
	DescriptionError  string
	Error             string // a problem not tied to one field
}

// ChangeRequestForm is the state of the "Propose a change" form.
type ChangeRequestForm struct {
	Action      string // where it posts
	Title, Body string // as typed, kept on error
	TitleError  string
	BodyError   string
	Error       string // a problem not tied to one field
}

// ProjectsView is the /projects page.
type ProjectsView struct {
	Mine     []ProjectVM
	MineNext string // link to the next page of Mine; "" at the end
	Recent   []ProjectVM
	Form     ProjectForm
}

// ProjectView is a project's page.
type ProjectView struct {
	Project  ProjectVM
	IsOwner  bool
	Requests []ChangeRequestVM
	Next     string // link to older change requests; "" at the end
	Form     ChangeRequestForm
	// SignInPath is where a signed-out visitor goes to propose a change.
	SignInPath string
}

// ChangeRequestView is a change request's page.
type ChangeRequestView struct {
	CR          ChangeRequestVM
	IsRequester bool
	IsOwner     bool
}

// ChangeRequestsView is the /change-requests page.
type ChangeRequestsView struct {
	Tab  string // TabIncoming or TabMine
	Rows []ChangeRequestVM
	Next string // link to the next page; "" at the end
}

// Back is where a Retry on this tab returns to.
func (v ChangeRequestsView) Back() string { return "/change-requests?tab=" + v.Tab }

// TimeLabel renders t for people: "2 Jan 2006, 15:04 UTC"; "" for zero.
func TimeLabel(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

// DateAttr renders t for a <time datetime> attribute.
func DateAttr(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func tabCurrent(cur, tab string) string {
	if cur == tab {
		return "page"
	}
	return "false"
}
