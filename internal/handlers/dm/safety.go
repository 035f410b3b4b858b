package dm

import (
	"context"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/chatproxy"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/lex/chat"
	"github.com/skydm/skydm/internal/websession"
	"github.com/skydm/skydm/views"
)

// safetyChat is what the pages of reports and blocks need of Chat.
type safetyChat interface {
	// CreateReport sends a report to the moderation service
	// (com.atproto.moderation.createReport through the account's PDS).
	CreateReport(ctx context.Context, r chatproxy.Report) error
	// Block creates an app.bsky.graph.block record of subject in the
	// account's repository.
	Block(ctx context.Context, subject string) error
	// Unblock deletes the account's block records of subject; knownURI,
	// when set, is the one the viewer state names (viewer.blocking).
	Unblock(ctx context.Context, subject, knownURI string) error
	// GetNotificationPreferences and PutNotificationPreferences are
	// chat.bsky.notification.getPreferences / putPreferences.
	GetNotificationPreferences(ctx context.Context) (*chat.NotificationDefs_Preferences, error)
	PutNotificationPreferences(ctx context.Context, in chat.NotificationPutPreferences_Input) (*chat.NotificationDefs_Preferences, error)
}

// DefaultModerationName is Config.ModerationName when unset: where reports
// go by default (chatproxy.DefaultModerationService).
const DefaultModerationName = "Bluesky's moderation service"

// reportReasons are the reasons the report form offers, those the
// official app offers for a chat message (social-app useReportOptions
// chatMessage), plus misleading.
var reportReasons = []views.ReportReason{
	{Value: chatproxy.ReasonTypeSpam, Title: "Spam", Description: "Excessive or unwanted messages"},
	{Value: chatproxy.ReasonTypeSexual, Title: "Unwanted sexual content", Description: "Inappropriate messages or explicit links"},
	{Value: chatproxy.ReasonTypeRude, Title: "Anti-social behaviour", Description: "Harassment, trolling, or intolerance"},
	{Value: chatproxy.ReasonTypeMisleading, Title: "Misleading", Description: "Impersonation, scams or false claims"},
	{Value: chatproxy.ReasonTypeViolation, Title: "Illegal and urgent", Description: "Glaring violations of law or terms of service"},
	{Value: chatproxy.ReasonTypeOther, Title: "Other", Description: "An issue not included in these options"},
}

func knownReason(v string) bool {
	for _, r := range reportReasons {
		if r.Value == v {
			return true
		}
	}
	return false
}

func (s *Pages) moderationName() string {
	if s.dm.cfg.ModerationName != "" {
		return s.dm.cfg.ModerationName
	}
	return DefaultModerationName
}

// Report is GET /convos/{id}/report: the report form of the conversation,
// or of one of its messages (?message=<id>&sender=<did>); ?sent=1 is the
// thanks after the report was sent.
func (s *Pages) Report(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	if q.Get("sent") == "1" {
		s.renderReport(w, r, http.StatusOK, views.ReportVM{ConvoID: id, Sent: true})
		return
	}
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	vm, _, err := s.reportForm(ctx, c, acct.DID.String(), id, q.Get("message"), q.Get("sender"))
	if err != nil {
		s.kit.Error(w, r, err, kit.Retry())
		return
	}
	s.renderReport(w, r, http.StatusOK, vm)
}

// ReportPost is POST /convos/{id}/report (reason_type, details, and
// message and sender for a message): the report is sent and the answer
// redirects to the thanks. No reason type, an unknown one or text over
// 2000 characters keeps the form with what was written, and sends nothing.
func (s *Pages) ReportPost(w http.ResponseWriter, r *http.Request) {
	acct, c, id, ok := s.convoForm(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	ctx, cancel := s.upstreamCtx(r)
	defer cancel()
	vm, rep, err := s.reportForm(ctx, c, acct.DID.String(), id, f.Get("message"), f.Get("sender"))
	if err != nil {
		s.kit.Error(w, r, err)
		return
	}
	vm.Reason, vm.Details = f.Get("reason_type"), f.Get("details")
	rep.ReasonType, rep.Reason = vm.Reason, strings.TrimSpace(vm.Details)
	if !knownReason(rep.ReasonType) {
		rep.ReasonType = "" // CreateReport refuses it with the form's message
	}
	if err := c.CreateReport(ctx, rep); err != nil {
		s.kit.Error(w, r, err, kit.Form(func(status int, msg string) {
			vm.Error = msg
			s.renderReport(w, r, status, vm)
		}))
		return
	}
	kit.Redirect(w, r, views.ConvoActionURL(id, "report")+"?sent=1#"+views.NoticeID)
}

// reportForm reads the conversation and returns the form of a report of
// it, or of its message mid sent by sender, with the report to send. The
// sender must be a member other than the viewer; a conversation's report
// names its other member, a group's its owner (or first other member).
func (s *Pages) reportForm(ctx context.Context, c Chat, viewer, id, mid, sender string) (views.ReportVM, chatproxy.Report, error) {
	convo, err := c.GetConvo(ctx, id)
	if err != nil {
		return views.ReportVM{}, chatproxy.Report{}, err
	}
	members := otherMembers(convo, viewer, nil)
	vm := views.ReportVM{ConvoID: id, Reasons: reportReasons, Moderation: s.moderationName(), Subject: views.ReportConvo,
		Title: views.ConvoTitle(convoName(convo), members)}
	rep := chatproxy.Report{ConvoID: id}
	if g := groupOf(convo); g != nil {
		vm.Subject, vm.InGroup = views.ReportGroup, true
	}
	rep.DID = reportedMember(convo, viewer)
	if mid != "" {
		// A group's view lists only some members: its messages' senders
		// need only be accounts other than the viewer.
		if _, err := syntax.ParseDID(sender); !validID(mid) || err != nil || sender == viewer ||
			(!isOtherMember(members, sender) && groupOf(convo) == nil) {
			return vm, rep, errNoMessage
		}
		vm.Subject, vm.MessageID, vm.Sender = views.ReportMessage, mid, sender
		rep.MessageID, rep.DID = mid, sender
	}
	return vm, rep, nil
}

var errNoMessage = &apperr.Error{Code: apperr.NotFound, Reason: chatproxy.ReasonNotFound,
	Message: "That message is not in this conversation any more."}

func (s *Pages) renderReport(w http.ResponseWriter, r *http.Request, status int, vm views.ReportVM) {
	vm.Assets = s.dmAssets()
	if vm.Moderation == "" {
		vm.Moderation = s.moderationName()
	}
	title := "Report"
	if vm.Sent {
		title = "Report sent"
	}
	s.kit.Render(w, r, status, views.ReportPage(s.dmPage(r, title, s.cachedUnread(r)), vm))
}

func isOtherMember(members []views.MemberVM, did string) bool {
	for _, m := range members {
		if m.DID == did {
			return did != ""
		}
	}
	return false
}

// convoName is a group's name ("" for a direct conversation).
func convoName(v *chat.ConvoDefs_ConvoView) string {
	if g := groupOf(v); g != nil {
		return g.Name
	}
	return ""
}

// reportedMember is the member a conversation's report names (convoRef's
// did): the other member of a direct conversation; a group's owner, else
// its first other member.
func reportedMember(v *chat.ConvoDefs_ConvoView, viewer string) string {
	first := ""
	for _, p := range v.Members {
		if p == nil || p.Did == "" {
			continue
		}
		if isOwner(p) {
			return p.Did
		}
		if first == "" && p.Did != viewer {
			first = p.Did
		}
	}
	return first
}

// blockState is the block between the viewer and the other member of a
// direct conversation, from the member's viewer state; zero for a group.
func blockState(v *chat.ConvoDefs_ConvoView, viewer string) views.BlockVM {
	if v == nil || groupOf(v) != nil {
		return views.BlockVM{}
	}
	var other *chat.ActorDefs_ProfileViewBasic
	for _, p := range v.Members {
		if p != nil && p.Did != "" && p.Did != viewer {
			if other != nil {
				return views.BlockVM{} // not a direct conversation after all
			}
			other = p
		}
	}
	if other == nil {
		return views.BlockVM{}
	}
	b := views.BlockVM{DID: other.Did, Name: memberVM(other).Label()}
	if vs := other.Viewer; vs != nil {
		b.Blocking = vs.Blocking != nil && *vs.Blocking != ""
		b.BlockedBy = vs.BlockedBy != nil && *vs.BlockedBy
	}
	return b
}

// Block is POST /convos/{id}/block (member: a member's DID): an
// app.bsky.graph.block record of the member in the viewer's repository.
// The answer goes back to the conversation, or to its members page with
// next=members.
func (s *Pages) Block(w http.ResponseWriter, r *http.Request) { s.blockAction(w, r, true) }

// Unblock is POST /convos/{id}/unblock (member): the viewer's block
// records of the member are deleted.
func (s *Pages) Unblock(w http.ResponseWriter, r *http.Request) { s.blockAction(w, r, false) }

func (s *Pages) blockAction(w http.ResponseWriter, r *http.Request, block bool) {
	acct, c, id, ok := s.convoForm(w, r)
	if !ok {
		return
	}
	member, viewer := r.PostForm.Get("member"), acct.DID.String()
	target, code := views.ConvoURL(id), "unblocked"
	if block {
		code = "blocked"
	}
	if r.PostForm.Get("next") == "members" {
		target = views.ConvoActionURL(id, "members")
	}
	ctx, cancel := s.stepCtx(r, kit.ReloadReserve) // a failure shows the conversation again
	defer cancel()
	err := s.setBlock(ctx, c, viewer, id, member, block)
	if err != nil {
		s.kit.Error(w, r, err, s.onConvo(w, r, acct, c, id, "", ""))
		return
	}
	kit.Redirect(w, r, noticeURL(target, code))
}

// setBlock blocks or unblocks member of convo id. The member must be one
// of the conversation's members the convo view lists, other than the
// viewer; in a group, whose view lists only some members, any account.
func (s *Pages) setBlock(ctx context.Context, c Chat, viewer, id, member string, block bool) error {
	convo, err := c.GetConvo(ctx, id)
	if err != nil {
		return err
	}
	if _, err := syntax.ParseDID(member); err != nil || member == viewer {
		return errNotInConvo
	}
	p := memberOf(convo, member)
	if p == nil && groupOf(convo) == nil {
		return errNotInConvo
	}
	var knownURI string
	if p != nil && p.Viewer != nil && p.Viewer.Blocking != nil {
		knownURI = *p.Viewer.Blocking
	}
	if !block {
		return c.Unblock(ctx, member, knownURI)
	}
	if knownURI != "" {
		return nil // already blocked
	}
	return c.Block(ctx, member)
}

// errNotInConvo refuses a report or block naming someone not in the conversation.
var errNotInConvo = apperr.New(apperr.Invalid, "That account is not a member of this conversation.")

func memberOf(v *chat.ConvoDefs_ConvoView, did string) *chat.ActorDefs_ProfileViewBasic {
	if did == "" {
		return nil
	}
	for _, p := range v.Members {
		if p != nil && p.Did == did {
			return p
		}
	}
	return nil
}

// convoForm is convoClient for a POST: also the form, read.
func (s *Pages) convoForm(w http.ResponseWriter, r *http.Request) (websession.Account, Chat, string, bool) {
	acct, c, id, ok := s.convoClient(w, r)
	if !ok {
		return acct, nil, "", false
	}
	if err := parseDMForm(w, r); err != nil {
		s.kit.Error(w, r, err)
		return acct, nil, "", false
	}
	return acct, c, id, true
}
