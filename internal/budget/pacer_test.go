package budget

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"
)

func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

// crowd paces n pollers prefix0… on pds.example at base.
func crowd(p *Pacer, prefix string, n int, base time.Duration) {
	for i := range n {
		key := fmt.Sprint(prefix, i)
		p.SetHost(key, "pds.example")
		p.Pace(key, base)
	}
}

func TestPacerLeavesFewPollersAlone(t *testing.T) {
	b, _, _ := newTestBudget(Config{})
	p := NewPacer(b, 0)
	// Background rate at the defaults: (2700-270)/300 × 0.75 ≈ 6.1/s: ten
	// conversations at 4 s (2.5/s) fit.
	for i := range 10 {
		key := fmt.Sprint("user", i)
		p.SetHost(key, "pds.example")
		if d := p.Pace(key, 4*time.Second); d != 4*time.Second {
			t.Fatalf("poller %d paced to %s; want its base 4s", i, d)
		}
	}
	if d := p.Pace("nobody-knows-my-host", 4*time.Second); d != 4*time.Second {
		t.Errorf("unknown host paced to %s; want the base", d)
	}
}

func TestPacerSharesTheBackgroundRateFairly(t *testing.T) {
	b, _, _ := newTestBudget(Config{})
	p := NewPacer(b, 0)
	const n = 200
	crowd(p, "user", n, 4*time.Second)
	_, rate := b.Pressure("pds.example")
	want := time.Duration(float64(n) / rate * float64(time.Second)) // N ÷ R_bg
	if d := p.Pace("user0", 4*time.Second); !within(d, want, 0.01) {
		t.Fatalf("200 conversations at 4 s: interval %s; want about %s (N ÷ background rate)", d, want)
	}
	// A user of another host is not slowed by this one's crowd.
	p.SetHost("elsewhere", "other.example")
	if d := p.Pace("elsewhere", 4*time.Second); d != 4*time.Second {
		t.Errorf("a poller on another host paced to %s", d)
	}
	s := p.Snapshot()
	if len(s) != 2 || s[1].Host != "pds.example" || s[1].Pollers != n || !within(time.Duration(s[1].Stretch*1e9), time.Duration(float64(n)/4/rate*1e9), 0.01) {
		t.Errorf("snapshot %+v", s)
	}
}

func TestPacerKeepsAVisibleConversationShortest(t *testing.T) {
	b, _, _ := newTestBudget(Config{})
	p := NewPacer(b, 0)
	crowd(p, "convo", 100, 4*time.Second)
	crowd(p, "inbox", 100, 30*time.Second)
	convo, inbox := p.Pace("convo0", 4*time.Second), p.Pace("inbox0", 30*time.Second)
	if convo <= 4*time.Second || !within(inbox, convo*30/4, 0.01) {
		t.Fatalf("convo %s, inbox %s; want both stretched by one factor (inbox 7.5× convo)", convo, inbox)
	}
	// Together they ask for exactly the background rate.
	_, rate := b.Pressure("pds.example")
	asked := 100/convo.Seconds() + 100/inbox.Seconds()
	if math.Abs(asked-rate) > 0.01*rate {
		t.Errorf("stretched pollers ask %.2f/s; background rate %.2f/s", asked, rate)
	}
}

func TestPacerStretchesSmoothlyAsTheBucketRunsLow(t *testing.T) {
	b, clk, _ := newTestBudget(Config{Limit: 1000, Window: 900 * time.Second})
	p := NewPacer(b, 0)
	p.SetHost("u", "pds.example")
	rt := b.Transport(&upstream{})
	// Capacity 100. Spend the bucket down with foreground requests and
	// watch the interval grow step by step, never jumping.
	prev := p.Pace("u", 4*time.Second)
	if prev != 4*time.Second {
		t.Fatalf("full bucket: %s", prev)
	}
	for range 99 {
		send(t, rt, context.Background(), "pds.example")
		d := p.Pace("u", 4*time.Second)
		if d < prev || float64(d) > float64(prev)*1.3 {
			t.Fatalf("interval went from %s to %s after one request", prev, d)
		}
		prev = d
	}
	if prev < 30*time.Second {
		t.Errorf("nearly empty bucket: interval %s; want at least 30s (up to 10× the base)", prev)
	}
	clk.Advance(900 * time.Second)
	if d := p.Pace("u", 4*time.Second); d != 4*time.Second {
		t.Errorf("refilled bucket: interval %s; want the base again", d)
	}
}

func TestPacerCapsAndForgetsStoppedPollers(t *testing.T) {
	b, clk, _ := newTestBudget(Config{})
	p := NewPacer(b, time.Minute)
	crowd(p, "user", 5000, 4*time.Second)
	if d := p.Pace("user0", 4*time.Second); d != time.Minute {
		t.Fatalf("5000 pollers: %s; want the cap 1m0s", d)
	}
	if d := p.Pace("user0", 10*time.Minute); d != 10*time.Minute {
		t.Errorf("a base above the cap paced to %s; want the base", d)
	}
	// Every poller but one stops: after twice its interval and the TTL
	// the crowd is forgotten and the last one polls at its base.
	for range 3 {
		clk.Advance(time.Minute)
		p.Pace("user0", 4*time.Second)
	}
	if d := p.Pace("user0", 4*time.Second); d != 4*time.Second {
		t.Errorf("alone again: %s; want 4s", d)
	}
	if s := p.Snapshot(); len(s) != 1 || s[0].Pollers != 1 {
		t.Errorf("snapshot %+v; want one poller", s)
	}
}
