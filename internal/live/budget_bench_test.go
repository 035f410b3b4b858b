package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/skydm/skydm/internal/budget"
)

// The per-state figures of the upstream budget (make bench), on the fake
// clock of the budget simulation: one user for 10 minutes in each state,
// counted at the PDS, beside the official app's per-client rates for the
// same state (social-app: 4 s in a conversation, 30 s on the messages
// screen, 5 min in the background, nothing when closed; 60 s elsewhere in
// the open app, which skydm has no page for).
func BenchmarkUpstreamRequestsPerUserPerMinute(b *testing.B) {
	type page struct{ convo, hidden bool }
	states := []struct {
		name     string
		official time.Duration // 0: no polls
		pages    []page
	}{
		{"conversation-visible", 4 * time.Second, []page{{convo: true}}},
		{"inbox-only", 30 * time.Second, []page{{}}},
		{"hidden-conversation-tab", 5 * time.Minute, []page{{convo: true, hidden: true}}},
		{"no-page", 0, nil},
		{"five-conversation-tabs", 4 * time.Second, []page{{convo: true}, {convo: true}, {convo: true}, {convo: true}, {convo: true}}},
	}
	const minutes = 10
	for _, st := range states {
		b.Run(st.name, func(b *testing.B) {
			var served int
			for b.Loop() {
				s := newBudgetSim(b, 1)
				for _, pg := range st.pages {
					s.pacer.SetHost(simUser(0).String(), simHost)
					if _, err := s.hub.subscribe(User{DID: simUser(0), SessionID: "s"}, pg.convo, pg.hidden, ""); err != nil {
						b.Fatal(err)
					}
				}
				if len(st.pages) > 0 {
					s.subscribed = 1 // one poller per user, however many pages
				}
				s.run(minutes*time.Minute, time.Second, nil)
				served = len(s.pds.served)
			}
			b.ReportMetric(float64(served)/minutes, "req/user/min")
			official := 0.0
			if st.official > 0 {
				official = time.Minute.Seconds() / st.official.Seconds()
			}
			b.ReportMetric(official, "official-req/min")
		})
	}
}

// BenchmarkUsersPerPDSHost: how many users one instance serves on one PDS
// host within the default budget at the official app's intervals (the
// pacer's fair share before it stretches anything), and the interval it
// stretches 200 conversations to.
func BenchmarkUsersPerPDSHost(b *testing.B) {
	var convoUsers, inboxUsers int
	var stretched time.Duration
	for b.Loop() {
		convoUsers = usersAtBase(DefaultConvoInterval)
		inboxUsers = usersAtBase(DefaultInboxInterval)
		s := newBudgetSim(b, 200)
		for i := range 200 {
			s.open(i, true)
		}
		s.run(2*time.Minute, time.Second, nil)
		stretched = s.pacer.Pace(simUser(0).String(), DefaultConvoInterval)
	}
	b.ReportMetric(float64(convoUsers), "users@4s")
	b.ReportMetric(float64(inboxUsers), "users@30s")
	b.ReportMetric(stretched.Seconds(), "s-interval@200convos")
}

// usersAtBase adds pollers at base on one host of a default budget until
// the pacer stretches them, and returns how many it kept at base.
func usersAtBase(base time.Duration) int {
	p := budget.NewPacer(budget.New(budget.Config{}), 0)
	for n := 0; ; n++ {
		key := fmt.Sprint("user", n)
		p.SetHost(key, simHost)
		if p.Pace(key, base) > base {
			return n
		}
	}
}
