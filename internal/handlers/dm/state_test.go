package dm

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRevCacheFetchesOncePerRevAndTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	c := newRevCache[string, int](10*time.Second, clock, 100)
	var fetches atomic.Int32
	release := make(chan struct{})
	fetch := func(context.Context) (int, error) {
		<-release
		return int(fetches.Add(1)), nil
	}
	ctx := context.Background()

	// Concurrent callers share one fetch.
	var wg sync.WaitGroup
	got := make([]int, 5)
	for i := range got {
		wg.Go(func() { got[i], _ = c.get(ctx, "k", "r1", fetch) })
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		c.mu.Lock()
		inFlight := c.m["k"] != nil && c.m["k"].flight != nil
		c.mu.Unlock()
		if inFlight || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches for 5 concurrent callers, want 1 (got %v)", fetches.Load(), got)
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		rev     string
		want    int32
	}{
		{"same rev is cached", 0, "r1", 1},
		{"older rev is cached", 0, "r0", 1},
		{"no rev is cached", 0, "", 1},
		{"newer rev fetches again", 0, "r2", 2},
		{"expired fetches again", 11 * time.Second, "r1", 3},
		{"and is cached again", 0, "r1", 3},
	} {
		mu.Lock()
		now = now.Add(tc.advance)
		mu.Unlock()
		if _, err := c.get(ctx, "k", tc.rev, fetch); err != nil {
			t.Fatal(err)
		}
		if n := fetches.Load(); n != tc.want {
			t.Errorf("%s: %d fetches, want %d", tc.name, n, tc.want)
		}
	}
	c.forget("k")
	if _, ok := c.peek("k"); ok {
		t.Errorf("forgotten value still cached")
	}
}

func TestFormTokensAreBoundSingleUseAndExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	f := newFormTokens([]byte("0123456789abcdef0123456789abcdef"), func() time.Time { return now })
	tok := f.issue("did:plc:a", "c1")
	for _, tc := range []struct {
		name, token, did, convo string
		ok                      bool
	}{
		{"its own form", tok, "did:plc:a", "c1", true},
		{"another conversation", tok, "did:plc:a", "c2", false},
		{"another account", tok, "did:plc:b", "c1", false},
		{"tampered", tok[:len(tok)-2] + "AA", "did:plc:a", "c1", false},
		{"garbage", "not-a-token", "did:plc:a", "c1", false},
	} {
		if _, _, ok := f.verify(tc.token, tc.did, tc.convo); ok != tc.ok {
			t.Errorf("%s: ok %v, want %v", tc.name, ok, tc.ok)
		}
	}
	nonce, exp, _ := f.verify(tok, "did:plc:a", "c1")
	u := newMemoryTokenUses(func() time.Time { return now })
	ctx := context.Background()
	if _, ok, _ := u.Claim(ctx, nonce, exp); !ok {
		t.Fatal("first claim refused")
	}
	if prev, ok, _ := u.Claim(ctx, nonce, exp); ok || prev.Sent {
		t.Errorf("second claim while sending: ok %v prev %+v", ok, prev)
	}
	u.Finish(ctx, nonce, "m1")
	if prev, ok, _ := u.Claim(ctx, nonce, exp); ok || !prev.Sent || prev.MessageID != "m1" {
		t.Errorf("claim after sending: ok %v prev %+v", ok, prev)
	}
	other := f.issue("did:plc:a", "c1")
	n2, e2, _ := f.verify(other, "did:plc:a", "c1")
	u.Claim(ctx, n2, e2)
	u.Finish(ctx, n2, "")
	if _, ok, _ := u.Claim(ctx, n2, e2); !ok {
		t.Errorf("a token whose send failed cannot be used again")
	}
	now = now.Add(tokenTTL)
	if _, _, ok := f.verify(tok, "did:plc:a", "c1"); ok {
		t.Errorf("expired token accepted")
	}
}
