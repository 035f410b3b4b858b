package metrics

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skydm/skydm/internal/live"
)

// collectTimeout bounds the outbox query of one scrape.
const collectTimeout = 5 * time.Second

// intervalBuckets are the poll interval buckets in seconds, around the
// official app's rates (4 s conversation, 30 s inbox, 60 s, 5 min hidden).
var intervalBuckets = []float64{1, 2, 4, 8, 15, 30, 60, 120, 300, 600, 1800}

// Hub is what the live-updates collector reads: *live.Hub.
type Hub interface{ Stats() live.Stats }

// Outbox is what the outbox collector reads: the number of outbox rows in
// each state (every state, zero counts included).
type Outbox interface {
	CountByState(ctx context.Context) (map[string]int, error)
}

// HostBudget is the upstream budget of one PDS host at one moment.
type HostBudget struct {
	Host  string  // URL host, as LabelHost
	Left  float64 // requests left in the bucket now
	Limit float64 // the bucket's size
}

// Budget is what the budget collector reads: internal/budget's snapshot.
type Budget interface{ Hosts() []HostBudget }

// BudgetFunc adapts a function to Budget.
type BudgetFunc func() []HostBudget

// Hosts calls f.
func (f BudgetFunc) Hosts() []HostBudget { return f() }

// WatchHub registers a collector reading h's Stats at scrape time.
func (m *Metrics) WatchHub(h Hub) { m.reg.MustRegister(hubCollector{h}) }

// WatchOutbox registers a collector querying o at scrape time.
func (m *Metrics) WatchOutbox(o Outbox) { m.reg.MustRegister(outboxCollector{o}) }

// WatchBudget registers a collector reading b at scrape time. Hosts past
// the host label's cap are left out.
func (m *Metrics) WatchBudget(b Budget) { m.reg.MustRegister(budgetCollector{b, m.labels}) }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	descPollers  = desc(NameLivePollers, "Live-update pollers running (at most one per signed-in user with a page open).")
	descInterval = desc(NameLivePollInterval, "Current poll interval of the running pollers, a snapshot at scrape time.")
	descUsers    = desc(NameLiveUsers, "Signed-in users with live-update state (a page connected, or within the grace period).")
	descSSE      = desc(NameLiveSSEConnections, "Open live-update (SSE) connections.")
	descStarted  = desc(NameLivePollersStarted, "Live-update pollers started since the process started.")
	descRows     = desc(NameOutboxRows, "Outbox rows (change-request DMs) by state.", LabelState)
	descLeft     = desc(NameBudgetLeft, "Upstream requests left in the host's budget now.", LabelHost)
	descLimit    = desc(NameBudgetLimit, "Size of the host's upstream budget.", LabelHost)
)

type hubCollector struct{ h Hub }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPollers, descInterval, descUsers, descSSE, descStarted} {
		ch <- d
	}
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	ch <- prometheus.MustNewConstMetric(descPollers, prometheus.GaugeValue, float64(st.Pollers))
	ch <- prometheus.MustNewConstMetric(descUsers, prometheus.GaugeValue, float64(st.Users))
	ch <- prometheus.MustNewConstMetric(descSSE, prometheus.GaugeValue, float64(st.Subscribers))
	ch <- prometheus.MustNewConstMetric(descStarted, prometheus.CounterValue, float64(st.PollersStarted))
	buckets := make(map[float64]uint64, len(intervalBuckets))
	sum := 0.0
	for _, d := range st.Intervals {
		s := d.Seconds()
		sum += s
		for _, b := range intervalBuckets {
			if s <= b {
				buckets[b]++
			}
		}
	}
	ch <- prometheus.MustNewConstHistogram(descInterval, uint64(len(st.Intervals)), sum, buckets)
}

type outboxCollector struct{ o Outbox }

func (c outboxCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descRows }

func (c outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	counts, err := c.o.CountByState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descRows, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(descRows, prometheus.GaugeValue, float64(n), state)
	}
}

type budgetCollector struct {
	b      Budget
	labels *labeler
}

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descLeft; ch <- descLimit }

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, hb := range c.b.Hosts() {
		host := c.labels.hosts.value(strings.ToLower(hb.Host))
		if host == valueOther {
			continue // two hosts past the cap would collide
		}
		ch <- prometheus.MustNewConstMetric(descLeft, prometheus.GaugeValue, hb.Left, host)
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, hb.Limit, host)
	}
}
