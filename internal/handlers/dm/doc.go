// Package dm is the DMs room: the inbox, a conversation, sending,
// conversation actions, starting a conversation, chat settings and the live
// renderer of /events, with their view models and the chat clients behind
// them.
//
// By file: dm.go (Config, Chat, what every handler shares), inbox.go,
// convo.go, send.go, actions.go, new.go, settings.go, live.go (the
// internal/live Renderer for dm.js), state.go (form tokens and caches),
// convert.go (chat views → view models), clients.go (the chatproxy-backed
// ChatClients). Groups: groupview.go (a group on the conversation and inbox
// pages), groups.go (new group), groupcheck.go (each member checked before
// a group is created or grows), members.go (the members page and the
// owner's actions), joinlinks.go, joinowner.go and join.go (the invite link,
// join requests, /join/{code}), replies.go (?reply=, ?at=), safety.go and
// blocks.go (reports, blocks). Each feature file declares the chat calls it
// needs in its own small interface, which Chat embeds.
//
// These live in one room because they are one feature to the person: the
// same layout with the unread count, the same chat clients, form tokens and
// assets, the same live stream.
package dm
