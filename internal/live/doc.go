// Package live pushes a signed-in user's chat events to their open pages
// over Server-Sent Events.
//
// A map of the package:
//
//   - live.go: [Hub], [New], [Config] with its Default* values (the one
//     default of each tunable; cmd/web makes them flags), [Hub.Config],
//     [Hub.Run], [Stats] and the narrow interface the hub consumes,
//     [LogSource] (one chat.bsky.convo.getLog call for one [User]).
//   - poller.go: one poller goroutine per signed-in user (DID) with at least
//     one page connected, never one per tab. It starts at the current cursor
//     (the first getLog call is made without a cursor; its cursor is taken
//     and its logs, which may be the whole history, are not emitted), polls
//     every ConvoInterval while any of the user's visible pages is a
//     conversation page, every InboxInterval while another page is visible,
//     and every BackgroundInterval while all are hidden (?hidden=1); a page
//     shown again after all were hidden makes it call at once. It backs off
//     with full jitter on errors, waits until RetryAt on RateLimited, and
//     stops after Grace once the last page has gone. Unauthorized and Forbidden/ScopeMissing stop
//     polling for that session and send its pages an "auth" event.
//   - event.go: [Event], the decoded form of one log entry (or a control
//     event), shared read-only by every page of the user.
//   - sse.go: [Hub.Handler], the text/event-stream endpoint, the
//     [Renderer] it calls per event and page, and [JSONRenderer].
//
// # Fan-out and the drop policy
//
// Events are never copied per subscriber and the poller never blocks on
// one. The poller appends each user's events to one ring of Config.Buffer
// events (oldest dropped) and then does a non-blocking send on every
// subscription's one-slot notify channel. Each SSE handler reads the events
// after its own position from the ring at its own pace. A page that falls
// more than Buffer events behind, or reconnects with a Last-Event-ID older
// than the ring, gets a "resync" event (the page should reload) instead of
// a partial history. A page whose TCP connection stops draining is cut off
// by the per-write deadline; the browser reconnects with Last-Event-ID and
// resumes from the ring. Per connection the hub holds one small struct and
// one channel; the only goroutine is the HTTP handler's own.
//
// # Event ids
//
// Every log event is sent with its log rev as the SSE id. Events the
// [Renderer] drops for a page are sent as a bare "id:" line, so the page's
// Last-Event-ID still advances. Control events ("auth", "resync") carry no
// id. A stream opened without a position is sent one "position" event with
// the rev it starts after, so a page that reopens its stream (shown again,
// restored from the back/forward cache) can pass ?lastEventId= even when
// no event has come yet.
package live
