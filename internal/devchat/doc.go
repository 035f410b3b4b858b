// Package devchat is a chat.bsky service for the sandbox: an in-memory
// stand-in for Bluesky's chat service (api.bsky.chat) that a PDS proxies to
// with the atproto-proxy header "did:web:localhost%3APORT#bsky_chat".
//
// Map of the package:
//
//   - server.go: Config, New, routing, the XRPC method table, error bodies.
//   - auth.go: the PDS-minted service token (indigo ServiceAuthValidator).
//   - convos.go: listing, getConvoForMembers (follow gate), accept, mute,
//     leave, read state.
//   - messages.go: getMessages, sendMessage(Batch), deleteMessageForSelf,
//     reactions.
//   - log.go: the per-user event log behind chat.bsky.convo.getLog.
//   - records.go: RecordSource (profiles, chat declarations, follows) and the
//     follow gate.
//   - groups.go: group convos (createGroup, addMembers, removeMembers,
//     editGroup, listMutualGroups) and membership changes.
//   - members.go: member views (directConvoMember, groupConvoMember,
//     pastGroupConvoMember), getConvoMembers, the group invitation check.
//   - lock.go: lockConvo/unlockConvo, the moderation lock, leaving a group.
//   - system.go: system messages and the group log events carrying them.
//   - joinlinks.go, joinrequests.go, joinlog.go: join links (previews, the
//     joinLink embed), join requests and their log events.
//   - faults.go: fault injection and call counting for tests.
//   - replies.go: replyTo targets and the embedded parent views.
//   - blocks.go: app.bsky.graph.block records (BlockedActor/BlockedSubject).
//   - unread.go: getUnreadCounts.
//   - notification.go: chat.bsky.notification get/putPreferences.
//   - reports.go: com.atproto.moderation.createReport, through the
//     #atproto_labeler service of the DID document.
//   - account.go: chat.bsky.actor.exportAccountData and deleteAccount.
//   - moderation.go: chat.bsky.moderation (for Config.Moderators only):
//     actor metadata, message context, convo views, updateActorAccess.
//   - modevents.go, modemit.go: subscribeModEvents, a websocket event
//     stream, and the events it carries.
//   - state.go, views.go, params.go: the model, its lexicon views, and input
//     checks.
//
// Direct (1:1) and group conversations are modelled (see convo in
// state.go), with join links and join requests.
package devchat
