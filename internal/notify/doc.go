// Package notify is skydm's outbox: it delivers the DMs that tell a
// project's owner about a change request, reliably and honestly.
//
// # Flow
//
// internal/projects writes a change request's index row and its outbox row
// ([Enqueue]) in one SQLite transaction, after the record exists in the
// requester's repository. The idempotency key is (change request URI,
// recipient DID), a unique constraint. A [Worker], owned by the web app's
// run function, leases due rows (one short UPDATE … RETURNING; no
// transaction is ever held across a network call) and delivers each with
// chat.bsky.convo.getConvoAvailability → getConvoForMembers → sendMessage
// through the narrow [Sender] and [Chat] interfaces declared here.
//
// # Never twice: the delivery marker
//
// Every DM ends with a visible marker, "(skydm #k3f9q2zd)": eight base32
// characters of SHA-256(change request URI, recipient DID) ([DeliveryMarker]).
// Just before sendMessage the worker records send_started_at and the convo
// id. Any later attempt of a row with send_started_at set — after a crash
// between sending and marking sent, a lost response, a timeout, an expired
// lease — first reads the convo's messages back to when that first send
// began (getMessages, newest first, at most MarkerPages pages of 100) and
// marks the row sent if a message from the sender carries the marker. The marker is deliberately visible: it is short,
// honest about where the DM came from, and checkable by anyone.
//
// # Failures
//
//   - Transient (network, per-call timeout, 5xx, 429, anything unknown):
//     retried with full-jitter exponential backoff (BaseBackoff·2^n, at most
//     MaxBackoff), never earlier than a RetryAt the chat service gave (capped
//     at MaxRetryAfter, one hour). A per-sender circuit breaker opens after
//     BreakerThreshold consecutive transient failures and holds all that
//     sender's rows for BreakerCooldown; a rate limit holds them until its
//     reset. After MaxAge of failures (24 hours) the row is given_up with the
//     reason recorded ("Bluesky's chat service kept failing for 24 hours.").
//   - Permanent refusals (NotFollowedBySender, MessagesDisabled, Blocked,
//     RecipientNotFound, …) stop at once: not_delivered, with a human Reason
//     naming the accounts and a Fix addressed to the requester.
//   - Auth failures (SessionExpired, ScopeMissing) park the row
//     (parked_auth) until the sender signs in again: the login handler calls
//     [Worker.Resume]. As a fallback, every ParkedRecheck one parked row per
//     sender is tried again, and any successful send resumes the sender's
//     other parked rows.
//
// [Worker.Retry] is the UI's retry action (for the requester or the
// owner) for rows that were not delivered.
//
// # States
//
// queued → sending (leased) → sent | not_delivered | parked_auth | given_up;
// back to queued after a transient failure, Retry or Resume. Each row keeps
// attempts, reason_code, last_error_reason (human), fix, next_attempt_at,
// convo_id and sent_message_id.
//
// # Files
//
//   - outbox.go: the row's [State] and [Status], [Delivery].
//   - store.go: every SQL statement on the outbox table — the worker's
//     (lease, mark sent, requeue, park, resume, Retry) and [Enqueue] and
//     the status queries.
//   - classify.go: an error from a chat call becomes a failure (permanent,
//     auth, transient) with a reason code; explain words it for people.
//   - policy.go: the pure retry policy — a failure's class and the row's
//     history in, "retry at", "park", "not delivered" or "give up" out.
//   - breaker.go: the per-sender circuit breakers the policy updates.
//   - worker.go: the loop — lease due rows, make the chat calls, write the
//     policy's decision; resume a sender's parked rows after a success, and
//     recheck parked rows now and then.
//   - resume.go: [Worker.Resume] (after a sign-in) and [Worker.Retry] (the
//     UI's button).
//   - config.go: [Config] and its Default* values, the [Sender] and [Chat]
//     the worker is given, and [New].
//   - message.go: the DM's text, link facet and delivery marker.
//
// # Who sends
//
// By default the requester's own session sends the DM. An operator may
// configure a notifier account instead (projects.Config.NotifierDID): the
// sender is then fixed when the row is enqueued and the worker asks Sender
// for the notifier's DID. The notifier signs in to skydm like anyone else
// (OAuth, with DM access) — the operator signs in once as that account and
// sets its DID in the configuration; owners who accept DMs only from
// accounts they follow then follow the notifier once. If the notifier's
// session expires its rows park until the operator signs it in again.
package notify
