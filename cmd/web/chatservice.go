package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"

	"github.com/skydm/skydm/internal/chatproxy"
)

// chatServiceCheckTimeout bounds the look-up of the chat service's DID
// document at start and in `web check`.
const chatServiceCheckTimeout = 10 * time.Second

// errServiceRefWrong marks a definite answer: the DID document resolved
// and lacks the service, or its endpoint. Every other look-up error, "not
// found" included, may be transient (an offline or misconfigured resolver
// answers NXDOMAIN too).
var errServiceRefWrong = errors.New("the chat service reference is wrong")

// chatServiceType is the type of a chat service entry in a DID document
// (did:web:api.bsky.chat has #bsky_chat of this type).
const chatServiceType = "BskyChatService"

// resolveChatService looks up the DID document of ref ("did:…#service")
// through dir (the app's identity directory: safehttp in production, the
// sandbox's resolvers with -sandbox) and returns the endpoint of its
// #service entry, as a user's PDS will when it proxies a chat call. It
// returns an error wrapping errServiceRefWrong when ref is not a service
// ref or the document has no such service, one that is not a chat service
// (chatServiceType), or no usable endpoint (the error
// lists the services it has), and any look-up error otherwise.
func resolveChatService(ctx context.Context, dir identity.Directory, ref string) (string, error) {
	did, id, err := parseServiceRef(ref)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errServiceRefWrong, err)
	}
	ctx, cancel := context.WithTimeout(ctx, chatServiceCheckTimeout)
	defer cancel()
	ident, err := dir.LookupDID(ctx, did)
	switch {
	case errors.Is(err, identity.ErrDIDNotFound):
		return "", fmt.Errorf("the DID document of %s was not found: %w", did, err)
	case err != nil:
		return "", fmt.Errorf("looking up the DID document of %s: %w", did, err)
	}
	svc, ok := ident.Services[id]
	if !ok {
		have := make([]string, 0, len(ident.Services))
		for k := range ident.Services {
			have = append(have, "#"+k)
		}
		slices.Sort(have)
		if len(have) == 0 {
			have = []string{"none"}
		}
		return "", fmt.Errorf("%w: the DID document of %s has no service #%s (it has: %s); Bluesky's chat service is %s",
			errServiceRefWrong, did, id, strings.Join(have, ", "), defaultChatService)
	}
	if svc.Type != chatServiceType {
		// e.g. devchat's #atproto_labeler: the same document, but the
		// moderation service, which answers no chat call.
		return "", fmt.Errorf("%w: the service #%s in the DID document of %s is a %q, not a chat service (%s); Bluesky's chat service is %s",
			errServiceRefWrong, id, did, svc.Type, chatServiceType, defaultChatService)
	}
	if u, err := url.Parse(svc.URL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("%w: the service #%s in the DID document of %s has no usable endpoint (%q)", errServiceRefWrong, id, did, svc.URL)
	}
	return svc.URL, nil
}

// checkChatServiceAtStart refuses to start with a chat service ref that
// cannot work: it returns an error naming -chat-service when
// resolveChatService gives a definite answer. When the look-up fails for
// another reason (network, DNS, the service's host down) it logs a warning
// and returns nil: such failures pass, and a server that will not start
// while its chat service's host is briefly unreachable would also keep
// sign-in and projects down and crash-loop under its supervisor. `web
// check` repeats the check, and a wrong ref met later is logged by
// serviceRefAlarm.
func checkChatServiceAtStart(ctx context.Context, dir identity.Directory, ref string, log *slog.Logger) error {
	endpoint, err := resolveChatService(ctx, dir, ref)
	switch {
	case errors.Is(err, errServiceRefWrong):
		return fmt.Errorf("%s %s: %w", fChatService, ref, err)
	case err != nil:
		log.Warn("could not check the chat service at start; starting anyway (DMs fail until its DID document resolves; run `web check` to check again)",
			"chat_service", ref, "err", err)
	default:
		log.Info("chat service", "chat_service", ref, "endpoint", endpoint)
	}
	return nil
}

// serviceRefAlarm says, once per process and loudly, that users' PDSes
// cannot resolve the configured chat service ref: skydm's configuration is
// wrong, which no retry will fix.
type serviceRefAlarm struct {
	once    sync.Once
	modOnce sync.Once // the moderation service's (reports), said apart
	log     *slog.Logger
}

// options returns the chatproxy options that report to a.
func (a *serviceRefAlarm) options() []chatproxy.Option {
	return []chatproxy.Option{chatproxy.WithServiceRefProblem(a.report)}
}

func (a *serviceRefAlarm) report(ref string, err error) {
	if strings.HasSuffix(ref, "#atproto_labeler") {
		a.modOnce.Do(func() {
			a.log.Error("moderation service is wrong: users' PDSes cannot resolve its #atproto_labeler, so every report fails until "+
				fModeration.String()+" is fixed and skydm restarted (skydm's configuration, not an outage; logged once)",
				"moderation_service", ref, "err", err)
		})
		return
	}
	a.once.Do(func() {
		a.log.Error("chat service ref is wrong: users' PDSes cannot resolve it, so every DM call fails until "+
			fChatService.String()+" is fixed and skydm restarted (skydm's configuration, not an outage; logged once)",
			"chat_service", ref, "err", err)
	})
}
