package projects

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atclient"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/skydm/skydm/internal/budget"
)

// markSessions records whether the reconciler's contexts are
// budget.Background.
type markSessions struct {
	sessions
	mu    sync.Mutex
	marks []bool
}

func (m *markSessions) APIClientForDID(ctx context.Context, did syntax.DID) (*atclient.APIClient, error) {
	m.mu.Lock()
	m.marks = append(m.marks, budget.IsBackground(ctx))
	m.mu.Unlock()
	return m.sessions.APIClientForDID(ctx, did)
}

// TestReconcilerIsBackgroundWork: the reconciler's PDS calls leave the
// upstream budget's reserve to pages.
func TestReconcilerIsBackgroundWork(t *testing.T) {
	f := newFixture(t, nil)
	ms := &markSessions{sessions: sessions{pds: f.pds}}
	f.svc.cfg.Sessions = ms
	f.cutOff(t, f.project(t, bob, "Widgets"), "Written", true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.svc.RunReconciler(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for asked := false; !asked; {
		select {
		case <-deadline:
			t.Fatal("the reconciler asked for no session")
		case <-tick.C:
		}
		ms.mu.Lock()
		asked = len(ms.marks) > 0
		ms.mu.Unlock()
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if !ms.marks[0] {
		t.Error("the reconciler's context is not marked budget.Background")
	}
}
