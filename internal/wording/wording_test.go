package wording

import (
	"strings"
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{24 * time.Hour: "24 hours", 72 * time.Hour: "3 days", time.Hour: "1 hour",
		90 * time.Minute: "90 minutes", 45 * time.Second: "45 seconds"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestEachReaderHasItsSentence: the follow gate, the closed inbox and a
// block are each worded once per reader: the sender (naming the person
// they wrote to), the requester (why, and a fix for them) and the owner
// (a fix for them); the fallbacks name nobody.
func TestEachReaderHasItsSentence(t *testing.T) {
	n := Delivery{Recipient: "carol.test", Sender: "alice.test", SenderIsFiler: true}
	for _, reason := range []string{"NotFollowedBySender", "MessagesDisabled", "Blocked"} {
		sender, ok := ToSender(reason, "carol.test")
		if !ok || !strings.Contains(sender, "carol.test") {
			t.Errorf("%s: to the sender %q (%v), want it to name carol.test", reason, sender, ok)
		}
		if generic, _ := ToSender(reason, ""); strings.Contains(generic, "carol") || generic == "" {
			t.Errorf("%s: generic sentence %q", reason, generic)
		}
		why, fix := ToRequester(reason, true, n, time.Hour)
		if why == "" || fix == "" || !strings.Contains(why, "carol.test") {
			t.Errorf("%s: to the requester %q / %q", reason, why, fix)
		}
		// A block is the one refusal whose fix is the same for both: only
		// removing it helps.
		if owner := ToOwner(reason, false, "alice.test"); owner == "" || (owner == fix) != (reason == "Blocked") {
			t.Errorf("%s: to the owner %q (the requester's fix is %q)", reason, owner, fix)
		}
	}
	if _, ok := ToSender("RateLimited", "carol.test"); ok {
		t.Error("a rate limit is worded as a refusal to the sender")
	}
	if why, _ := ToRequester("GivenUp", true, n, 24*time.Hour); !strings.Contains(why, "24 hours") {
		t.Errorf("given up: %q does not say for how long", why)
	}
}
