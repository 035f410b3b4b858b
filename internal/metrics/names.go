// Package metrics is skydm's Prometheus metrics: one registry per app, the
// names in one place, an instrumented upstream RoundTripper and collectors
// that read the live hub, the outbox and the upstream budget at scrape time.
package metrics

// The metric names, all under Namespace. A slog line reporting the same
// thing carries the same name (the label names below, or the Attr*
// constants) as its attribute key.
const (
	Namespace = "skydm"

	// Upstream requests: every request leaving through the upstream
	// client, by LabelHost, LabelMethod and LabelStatus; 429s are
	// status="429".
	NameUpstreamRequests = "upstream_requests_total"
	// The upstream budget per host (internal/budget): requests left in
	// the bucket now, and the bucket's size.
	NameBudgetLeft  = "upstream_budget_left"
	NameBudgetLimit = "upstream_budget_limit"

	// Live updates (internal/live): running pollers, a snapshot of their
	// current intervals, signed-in users with state, open SSE streams and
	// pollers started since the start.
	NameLivePollers        = "live_pollers"
	NameLivePollInterval   = "live_poll_interval_seconds"
	NameLiveUsers          = "live_users"
	NameLiveSSEConnections = "live_sse_connections"
	NameLivePollersStarted = "live_pollers_started_total"

	// OAuth token refresh grants sent, by LabelOutcome.
	NameTokenRefreshes = "oauth_token_refreshes_total"

	// The outbox (internal/notify): rows by LabelState, and the time from
	// a row's queued_at to its sent_at.
	NameOutboxRows     = "outbox_rows"
	NameOutboxDelivery = "outbox_delivery_seconds"
)

// Label names, also the slog attribute keys of the same values.
const (
	LabelHost    = "host"    // URL host of an upstream request, lower case with port
	LabelMethod  = "method"  // XRPC NSID, a fixed name (see labeler) or "other"
	LabelStatus  = "status"  // HTTP status code, or "error" when no answer came
	LabelOutcome = "outcome" // "ok" or "error"
	LabelState   = "state"   // outbox row state (notify.State)
)

// Attribute keys of slog lines reporting a value a metric observes.
const (
	AttrDeliverySeconds = "delivery_seconds" // NameOutboxDelivery's observation
)

// Label values shared by several metrics.
const (
	valueOther  = "other" // a value past a label's cap or of no known kind
	statusError = "error" // no HTTP answer (transport error, cancelled)
	outcomeOK   = "ok"
	outcomeErr  = "error"
)
