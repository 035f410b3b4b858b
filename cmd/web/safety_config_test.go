package main

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/skydm/skydm/internal/chatproxy"
)

// TestModerationServiceIsConfigured: reports go to Bluesky's moderation
// service unless -moderation-service names another DID; in the sandbox,
// to devchat; a ref with a fragment is refused, naming the flag.
func TestModerationServiceIsConfigured(t *testing.T) {
	env := baseEnv(t, writeState(t))
	get := func(k string) string { return env[k] }
	c, err := parseConfig(nil, get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	up, err := newUpstream(c)
	if err != nil {
		t.Fatal(err)
	}
	if up.moderation != "did:web:localhost%3A3" || moderationName(up.moderation, true) != "the sandbox's moderation service (devchat)" {
		t.Errorf("sandbox moderation service %q", up.moderation)
	}
	c, err = parseConfig([]string{"-moderation-service", chatproxy.DefaultModerationService}, get, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if up, _ := newUpstream(c); up.moderation != chatproxy.DefaultModerationService || moderationName(up.moderation, true) != "" {
		t.Errorf("given moderation service %q", up.moderation)
	}
	env["SKYDM_MODERATION_SERVICE"] = "did:web:mod.example#atproto_labeler"
	if _, err := parseConfig(nil, get, io.Discard); err == nil || !strings.Contains(err.Error(), "-moderation-service (SKYDM_MODERATION_SERVICE)") {
		t.Errorf("ref with a fragment: %v", err)
	}
}

// TestWrongModerationServiceIsLoggedApart: a labeler the PDS cannot reach
// is logged naming -moderation-service, and does not use up the one alarm
// about the chat service.
func TestWrongModerationServiceIsLoggedApart(t *testing.T) {
	var buf strings.Builder
	a := &serviceRefAlarm{log: slog.New(slog.NewTextHandler(&buf, nil))}
	a.report("did:web:mod.example#atproto_labeler", errors.New("x"))
	a.report("did:web:mod.example#atproto_labeler", errors.New("x"))
	a.report("did:web:chat.example#bsky_chat", errors.New("x"))
	out := buf.String()
	if strings.Count(out, "level=ERROR") != 2 || !strings.Contains(out, "-moderation-service") || !strings.Contains(out, "-chat-service") {
		t.Errorf("log:\n%s", out)
	}
}
