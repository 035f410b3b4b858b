package budget

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultMaxInterval caps a stretched poll interval: the official app's
// rate for a client in the background (one poll per 5 minutes).
const DefaultMaxInterval = 5 * time.Minute

const (
	// Below fullAt of its bucket a host's intervals stretch further, in
	// proportion: at half of fullAt twice as long; minFill bounds that
	// factor (fullAt ÷ minFill = 10).
	fullAt  = 0.5
	minFill = 0.05
	// A poller not paced for twice its last interval plus pollerTTL is gone.
	pollerTTL = 30 * time.Second
	// sweepEvery bounds how often Pace looks for pollers that are gone.
	sweepEvery = time.Second
)

// Pacer stretches the poll intervals of background pollers so that those
// on one host together stay within what the host's bucket sustains for
// background work. Every poller asks for its base interval (a visible
// conversation's is the shortest); when the polls asked for on a host add
// up to more than its background rate, every interval there is stretched
// by the same factor, so N pollers at one base share the rate evenly (about
// N ÷ rate seconds apart) and a shorter base keeps the shorter interval. As
// the bucket runs low (below half full) intervals stretch further, smoothly.
// A Pacer is safe for concurrent use; create it with NewPacer.
type Pacer struct {
	b   *Budget
	max time.Duration

	mu        sync.Mutex
	pollers   map[string]*poller // by key (a user)
	demand    map[string]float64 // by host: polls per second asked for
	count     map[string]int     // by host: pollers paced
	stretch   map[string]float64 // by host: the factor of the last Pace
	lastSweep time.Time
}

// poller is one key's last request for pacing.
type poller struct {
	host  string
	base  time.Duration // 0 until paced
	seen  time.Time
	paced time.Duration
}

// NewPacer returns a Pacer drawing on b's buckets whose intervals are at
// most maxInterval (0: DefaultMaxInterval), or the base when that is longer.
func NewPacer(b *Budget, maxInterval time.Duration) *Pacer {
	if maxInterval <= 0 {
		maxInterval = DefaultMaxInterval
	}
	return &Pacer{b: b, max: maxInterval, pollers: map[string]*poller{},
		demand: map[string]float64{}, count: map[string]int{}, stretch: map[string]float64{}}
}

// SetHost records the upstream host (HostKey) key's polls go to; until it
// is known Pace returns the base interval.
func (p *Pacer) SetHost(key, host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pl := p.pollers[key]
	if pl == nil {
		p.pollers[key] = &poller{host: host, seen: p.b.now()}
		return
	}
	if pl.host != host {
		p.leave(pl)
		pl.host = host
		p.join(pl)
	}
}

// join and leave add and remove pl's demand on its host. Called with p.mu
// held.
func (p *Pacer) join(pl *poller) {
	if pl.base > 0 && pl.host != "" {
		p.demand[pl.host] += 1 / pl.base.Seconds()
		p.count[pl.host]++
	}
}

func (p *Pacer) leave(pl *poller) {
	if pl.base > 0 && pl.host != "" {
		p.demand[pl.host] -= 1 / pl.base.Seconds()
		if p.count[pl.host]--; p.count[pl.host] <= 0 {
			delete(p.demand, pl.host)
			delete(p.count, pl.host)
			delete(p.stretch, pl.host)
		}
	}
}

// Pace returns the interval key should poll at instead of base: base
// stretched by its host's load and fill, at most the Pacer's maximum (or
// base, if longer).
func (p *Pacer) Pace(key string, base time.Duration) time.Duration {
	if base <= 0 {
		return base
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.b.now()
	if now.Sub(p.lastSweep) >= sweepEvery {
		p.sweep(now)
	}
	pl := p.pollers[key]
	if pl == nil {
		pl = &poller{}
		p.pollers[key] = pl
	}
	pl.seen = now
	if pl.base != base {
		p.leave(pl)
		pl.base = base
		p.join(pl)
	}
	if pl.host == "" {
		pl.paced = base
		return base
	}
	fill, bgRate := p.b.Pressure(pl.host)
	k := 1.0
	if d := p.demand[pl.host]; bgRate > 0 && d > bgRate {
		k = d / bgRate
	}
	if fill < fullAt {
		k *= fullAt / max(fill, minFill)
	}
	p.stretch[pl.host] = k
	d := min(time.Duration(float64(base)*k), max(p.max, base))
	pl.paced = d
	return d
}

// sweep forgets pollers that have not asked for longer than twice their
// interval (their poller stopped). Called with p.mu held.
func (p *Pacer) sweep(now time.Time) {
	p.lastSweep = now
	for k, pl := range p.pollers {
		if now.Sub(pl.seen) > 2*pl.paced+pollerTTL {
			p.leave(pl)
			delete(p.pollers, k)
		}
	}
}

// PaceState is a snapshot of the pacing of one host.
type PaceState struct {
	Host    string
	Pollers int     // pollers paced on the host
	Demand  float64 // polls per second their base intervals ask for
	Stretch float64 // the factor intervals were last stretched by (1: none)
}

// Snapshot returns the pacing of every host with pollers, sorted by host.
func (p *Pacer) Snapshot() []PaceState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]PaceState, 0, len(p.count))
	for h, n := range p.count {
		out = append(out, PaceState{Host: h, Pollers: n, Demand: p.demand[h], Stretch: max(1, p.stretch[h])})
	}
	slices.SortFunc(out, func(a, b PaceState) int { return strings.Compare(a.Host, b.Host) })
	return out
}
