// Package chatproxy makes typed chat.bsky.* calls for one signed-in account.
//
// The calls go to the account's PDS over the session's *atclient.APIClient
// (OAuth or password session) with the "Atproto-Proxy" header set to the chat
// service ref; the PDS forwards them to the chat service with a service-auth
// JWT. A map of the package:
//
//   - client.go: [New], [Client], its options and the one call path (do).
//   - convos.go and messages.go: one method per chat.bsky.* call skydm uses,
//     on conversations and on messages (replies, the log); groups.go
//     (groups, members, lock), joinlinks.go (join links and requests),
//     notification.go (chat notification preferences). Every method returns
//     an *apperr.Error on failure.
//   - report.go: com.atproto.moderation.createReport, through the same PDS
//     but proxied to the moderation service (#atproto_labeler).
//   - errors.go: the error taxonomy. Upstream failures (XRPC error bodies,
//     transport errors, timeouts, auth refresh failures) become an
//     *apperr.Error with a Code, a Reason from the Reason* constants and a
//     human Message; the upstream error is kept as Err and never shown.
//   - which.go: whether an unavailable call failed at the account's PDS
//     ("your server <host> is not answering") or at the chat service behind
//     it ("Bluesky's chat service is not answering").
//   - gate.go: [Gate], per account until when its PDS or chat service said
//     to wait; calls before then fail at once without a request.
//   - ratelimit.go: how response headers reach the error mapping. indigo's
//     atclient.APIError carries no headers, so [New] wraps the HTTP client's
//     transport; each call puts a fresh holder in its context and the
//     transport records the status and rate-limit headers of the responses
//     of that call into it (see respMeta).
//   - items.go: tolerant decoding of lists whose elements are unions
//     (messages, log entries, convo requests). Elements of a type this client
//     does not know are kept in order and marked unsupported, never an error.
package chatproxy
