package handlers

import (
	"context"
	"fmt"
	"net/http"

	"github.com/skydm/skydm/internal/apperr"
	"github.com/skydm/skydm/internal/handlers/kit"
	"github.com/skydm/skydm/internal/websession"
)

// routes returns every route of the app behind its middleware. Each
// handler lives in its feature room: s.signin (package signin), s.dm
// (package dm), s.projects (package projectpages); every failure is
// answered by kit.Error.
//
// Outermost first, for every request (package kit):
//
//	LogRequests    request id, one slog line per request (path only: never the query, which carries OAuth codes)
//	SecureHeaders  CSP with a fresh nonce, nosniff, referrer, COOP, permissions, HSTS in production
//	Compress       HTML and JSON gzip/zstd-compressed when accepted (never /events; static files compress themselves)
//	RecoverPanic   a panic becomes the 500 error page (with the nonce and headers above), logged with its stack
//	crossOrigin    http.CrossOriginProtection: a cross-site POST/PUT/DELETE/PATCH gets 403 before any handler runs
//	mux            the routes below; pages (page) and sign-in (signIn) also run:
//	  WithDeadline   one deadline on the request context, from the request to the answer (kit.PageDeadline,
//	                 kit.SignInDeadline): every outbound call uses it; /events (SSE) and static files have none
//	  LoadSession    the signed-in accounts into the context
//
// GET never changes state, except GET /oauth/callback, which is the OAuth
// redirect from the user's server and is bound to this browser by the state
// cookie StartLogin set (and PKCE).
func (s *Server) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	page := func(h http.Handler) http.Handler { // chain for everything that renders HTML
		return kit.WithDeadline(s.deadlines.page, s.kit.LoadSession(s.sessions, s.sessionActive, h))
	}
	signIn := func(h http.Handler) http.Handler { // the sign-in steps that talk to the person's servers
		return kit.WithDeadline(s.deadlines.signIn, s.kit.LoadSession(s.sessions, s.sessionActive, h))
	}

	mux.Handle("GET /{$}", page(http.HandlerFunc(s.home))) // the inbox, or the start page
	mux.Handle("GET /signin", page(http.HandlerFunc(s.signin.SignIn)))
	mux.Handle("GET /account", page(http.HandlerFunc(s.signin.Account)))
	mux.Handle("POST /account/switch", page(http.HandlerFunc(s.signin.SwitchAccount)))

	mux.Handle("POST /oauth/login", signIn(http.HandlerFunc(s.signin.Login)))
	mux.Handle("GET /oauth/callback", signIn(http.HandlerFunc(s.signin.Callback)))
	mux.Handle("POST /oauth/logout", page(http.HandlerFunc(s.signin.Logout)))
	mux.Handle("GET /oauth-client-metadata.json", http.HandlerFunc(s.signin.ClientMetadata))
	mux.Handle("GET /oauth/jwks.json", http.HandlerFunc(s.signin.JWKS))

	if s.dm != nil { // DMs (package dm)
		mux.Handle("GET /requests", page(http.HandlerFunc(s.dm.Requests))) // also /?tab=requests
		mux.Handle("GET /convos/new", page(http.HandlerFunc(s.dm.NewConvo)))
		mux.Handle("POST /convos/new", page(http.HandlerFunc(s.dm.NewConvoPost))) // handle → availability → open, or why not
		mux.Handle("POST /convos/read-all", page(http.HandlerFunc(s.dm.ReadAll)))
		mux.Handle("GET /convos/{id}", page(http.HandlerFunc(s.dm.Convo)))          // ?cursor= earlier, ?sel= message actions
		mux.Handle("POST /convos/{id}/messages", page(http.HandlerFunc(s.dm.Send))) // PRG; JSON for dm.js
		mux.Handle("POST /convos/{id}/accept", page(http.HandlerFunc(s.dm.Accept)))
		mux.Handle("POST /convos/{id}/leave", page(http.HandlerFunc(s.dm.Leave)))
		mux.Handle("POST /convos/{id}/mute", page(http.HandlerFunc(s.dm.Mute)))
		mux.Handle("POST /convos/{id}/unmute", page(http.HandlerFunc(s.dm.Unmute)))
		mux.Handle("POST /convos/{id}/read", page(http.HandlerFunc(s.dm.Read)))
		mux.Handle("POST /convos/{id}/messages/{mid}/delete", page(http.HandlerFunc(s.dm.DeleteMessage))) // for me
		mux.Handle("POST /convos/{id}/messages/{mid}/reactions", page(http.HandlerFunc(s.dm.AddReaction)))
		mux.Handle("POST /convos/{id}/messages/{mid}/reactions/remove", page(http.HandlerFunc(s.dm.RemoveReaction)))
		mux.Handle("GET /convos/{id}/link", page(http.HandlerFunc(s.dm.JoinLink)))      // the group's invite link
		mux.Handle("POST /convos/{id}/link", page(http.HandlerFunc(s.dm.JoinLinkPost))) // action: create, edit, disable, enable
		mux.Handle("GET /convos/{id}/join-requests", page(http.HandlerFunc(s.dm.JoinRequests)))
		mux.Handle("POST /convos/{id}/join-requests/read", page(http.HandlerFunc(s.dm.JoinRequestsRead)))
		mux.Handle("POST /convos/{id}/join-requests/{did}/approve", page(http.HandlerFunc(s.dm.ApproveJoinRequest)))
		mux.Handle("POST /convos/{id}/join-requests/{did}/reject", page(http.HandlerFunc(s.dm.RejectJoinRequest)))
		mux.Handle("GET /join/{code}", page(http.HandlerFunc(s.dm.Join))) // a join link: preview, Join / Ask to join
		mux.Handle("POST /join/{code}", page(http.HandlerFunc(s.dm.JoinPost)))
		mux.Handle("POST /join/{code}/withdraw", page(http.HandlerFunc(s.dm.JoinWithdraw)))
		mux.Handle("GET /settings/chat", page(http.HandlerFunc(s.dm.Settings))) // who may start a conversation with me
		mux.Handle("POST /settings/chat", page(http.HandlerFunc(s.dm.SettingsPost)))

		// groups: creating and managing (dm/groups.go, dm/members.go)
		mux.Handle("GET /convos/new-group", page(http.HandlerFunc(s.dm.NewGroup)))
		mux.Handle("POST /convos/new-group", page(http.HandlerFunc(s.dm.NewGroupPost)))           // every member checked, then createGroup
		mux.Handle("GET /convos/{id}/members", page(http.HandlerFunc(s.dm.Members)))              // ?cursor=, ?remove= (confirm step)
		mux.Handle("POST /convos/{id}/members/add", page(http.HandlerFunc(s.dm.AddGroupMembers))) // owner
		mux.Handle("POST /convos/{id}/members/remove", page(http.HandlerFunc(s.dm.RemoveMember))) // owner; never the owner
		mux.Handle("POST /convos/{id}/rename", page(http.HandlerFunc(s.dm.RenameGroup)))          // owner
		mux.Handle("POST /convos/{id}/lock", page(http.HandlerFunc(s.dm.LockGroup)))              // owner
		mux.Handle("POST /convos/{id}/unlock", page(http.HandlerFunc(s.dm.UnlockGroup)))          // owner

		mux.Handle("POST /settings/chat/notifications", page(http.HandlerFunc(s.dm.NotificationsPost))) // chat.bsky.notification.putPreferences
		mux.Handle("GET /convos/{id}/report", page(http.HandlerFunc(s.dm.Report)))                      // ?message=&sender= a message; ?sent=1 thanks
		mux.Handle("POST /convos/{id}/report", page(http.HandlerFunc(s.dm.ReportPost)))
		mux.Handle("POST /convos/{id}/block", page(http.HandlerFunc(s.dm.Block)))     // member=<did>; next=members → the members page
		mux.Handle("POST /convos/{id}/unblock", page(http.HandlerFunc(s.dm.Unblock))) // member=<did>
		if s.dm.Live() {
			mux.Handle("GET /events", http.HandlerFunc(s.dm.Events)) // live updates (SSE)
		}
	}

	if s.projects != nil { // projects and change requests (package projectpages)
		mux.Handle("GET /projects", page(http.HandlerFunc(s.projects.List)))
		mux.Handle("POST /projects", page(http.HandlerFunc(s.projects.Create))) // PRG to the project page
		mux.Handle("GET /projects/{owner}/{rkey}", page(http.HandlerFunc(s.projects.Show)))
		mux.Handle("POST /projects/{owner}/{rkey}/change-requests", page(http.HandlerFunc(s.projects.FileChangeRequest))) // PRG to the request
		mux.Handle("GET /projects/{owner}/{rkey}/change-requests", page(http.HandlerFunc(s.projects.ToProject)))
		mux.Handle("GET /change-requests", page(http.HandlerFunc(s.projects.ChangeRequests))) // tabs: incoming, mine
		mux.Handle("GET /change-requests/{requester}/{rkey}", page(http.HandlerFunc(s.projects.ChangeRequest)))
		mux.Handle("POST /outbox/{id}/retry", page(http.HandlerFunc(s.projects.OutboxRetry))) // retry an undelivered DM
	}

	mux.Handle("GET /static/", http.HandlerFunc(s.static))
	mux.Handle("GET /favicon.ico", http.HandlerFunc(s.favicon))
	mux.Handle("GET /healthz", http.HandlerFunc(s.healthz))
	mux.Handle("/", page(http.HandlerFunc(s.notFound)))

	cop := http.NewCrossOriginProtection()
	if err := cop.AddTrustedOrigin(mustOrigin(s.publicURL)); err != nil {
		return nil, fmt.Errorf("handlers: trusted origin: %w", err)
	}
	cop.SetDenyHandler(http.HandlerFunc(s.crossOriginDenied))

	compress, err := kit.Compress()
	if err != nil {
		return nil, fmt.Errorf("handlers: compression: %w", err)
	}
	return s.kit.LogRequests(kit.SecureHeaders(s.csp, s.hsts, compress(s.kit.RecoverPanic(cop.Handler(mux))))), nil
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.kit.Error(w, r, apperr.New(apperr.NotFound, "There is no page at this address."))
}

func (s *Server) crossOriginDenied(w http.ResponseWriter, r *http.Request) {
	s.kit.Log.WarnContext(r.Context(), "cross-origin request refused",
		"method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"),
		"sec_fetch_site", r.Header.Get("Sec-Fetch-Site"), "request_id", kit.RequestID(r.Context()))
	s.kit.Error(w, r, apperr.New(apperr.Forbidden, "This form was sent from another site, so it was refused. Please try again from skydm itself."))
}

func mustOrigin(raw string) string {
	o, _ := origin(raw) // checked in New
	return o
}

// sessionActive reports whether a's OAuth session still exists.
func (s *Server) sessionActive(ctx context.Context, a websession.Account) (bool, error) {
	return s.auth.SessionActive(ctx, a.DID, a.SessionID)
}

// home is GET /: the inbox for an account with DM access, else the start
// page (signed out, or a notice to sign in again with DM access).
func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if cur := kit.Current(r.Context()); s.dm != nil && cur != nil && cur.HasChatScope {
		s.dm.Home(w, r)
		return
	}
	s.signin.Home(w, r)
}
