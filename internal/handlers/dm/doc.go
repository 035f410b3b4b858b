// Package dm is the DMs room: the inbox, a conversation, sending,
// conversation actions, starting a conversation, chat settings and the live
// renderer of /events, with their view models and the chat clients behind
// them.
//
// By file: dm.go (Config, Chat, what every handler shares), inbox.go,
// convo.go, send.go, actions.go, new.go, settings.go, live.go (the
// internal/live Renderer for dm.js), state.go (form tokens and caches),
// convert.go (chat views → view models), clients.go (the chatproxy-backed
// ChatClients).
package dm
