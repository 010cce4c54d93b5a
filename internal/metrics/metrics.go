// Package metrics exposes what the relay does as Prometheus metrics.
//
// It adds no work to the request path beyond counting what the relay
// already reports: the usage record of each request (Recorder wraps the
// relay's UsageRecorder), the end of each HTTP request (Metrics.Request, the
// server's observer), the scheduler's state changes (Metrics is a
// scheduler.Observer) and token refresh outcomes. Gauges of state (account
// state, queues, database, quota) are read when Prometheus scrapes.
//
// Labels come only from the config (account ids, key names) or fixed sets
// (routes, platforms, status classes, token kinds), never from client
// input, so the number of series is bounded.
package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ccrelay/ccrelay/internal/relay"
	"github.com/ccrelay/ccrelay/internal/state"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// Account states, as ccrelay_account_state's state label.
const (
	StateAvailable = "available"
	StateCooling   = "cooling"
	StateDisabled  = "disabled"
	StateInvalid   = "invalid"
)

var accountStates = []string{StateAvailable, StateCooling, StateDisabled, StateInvalid}

// AccountState is one account as the account state gauge shows it.
type AccountState struct {
	ID, Platform string
	// State is one of StateAvailable, StateCooling, StateDisabled, StateInvalid.
	State string
}

// QuotaWindow is one subscription window's use.
type QuotaWindow struct {
	AccountID string
	// Window is the provider's window name from a fixed set (e.g. "5h", "7d").
	Window string
	// Utilization is the share used, 0..1.
	Utilization float64
}

// QuotaSource yields the subscription windows of every account (the quota
// work provides it; nil = no quota metrics).
type QuotaSource interface {
	QuotaWindows() []QuotaWindow
}

// KeyQueue is one relay key's concurrency queue.
type KeyQueue struct {
	// Key is the key's configured name.
	Key string
	// Depth is how many requests wait for a slot now.
	Depth int
}

// KeyQueueSource yields the relay keys' concurrency queues (the key policy
// provides it; nil = none). Waits are reported with Metrics.KeyQueueWait.
type KeyQueueSource interface {
	KeyQueues() []KeyQueue
}

// Sources are the scrape-time readings; any field may be nil.
type Sources struct {
	Accounts func() []AccountState
	// UsageQueue is the number of usage records not yet written.
	UsageQueue func() int
	// DatabaseOK reports whether usage and state are being written.
	DatabaseOK func() bool
	// RedisOK reports whether the cluster's Redis answers; present is false
	// without a cluster (then the gauge is absent).
	RedisOK func() (up, present bool)
	// ConfigStale reports whether the config file holds a config that could not be applied.
	ConfigStale func() bool
	Quota       QuotaSource
	KeyQueues   KeyQueueSource
	// ClusterDropped is how many items each of the relay's queues to the
	// cluster's Redis dropped since start, by queue name; nil, or a nil
	// map, without a cluster (then the counter is absent).
	ClusterDropped func() map[string]int64
}

// Metrics holds ccrelay's collectors and registry.
type Metrics struct {
	reg *prometheus.Registry
	src Sources

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	ttfb          *prometheus.HistogramVec
	tokens        *prometheus.CounterVec
	cost          *prometheus.CounterVec
	costUnknown   *prometheus.CounterVec
	failovers     *prometheus.CounterVec
	poolExhausted *prometheus.CounterVec
	cooldowns     *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	keyWait       *prometheus.HistogramVec

	accountState *prometheus.Desc
	quota        *prometheus.Desc
	keyQueue     *prometheus.Desc
	usageQueue   *prometheus.Desc
	dbUp         *prometheus.Desc
	redisUp      *prometheus.Desc
	configStale  *prometheus.Desc
	clusterDrops *prometheus.Desc
}

// latencyBuckets span a quick count_tokens to a long agentic stream.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// New builds the collectors and registers them (with the Go and process
// collectors) on a registry of their own.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), src: src}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_requests_total", Help: "API requests served, by route, platform, status class (2xx, 4xx, 5xx...) and account (\"none\" when no account served it).",
	}, []string{"route", "platform", "status_class", "account"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ccrelay_request_duration_seconds", Help: "Time from a request's arrival to its last byte, by platform and whether it streamed.", Buckets: latencyBuckets,
	}, []string{"platform", "stream"})
	m.ttfb = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ccrelay_time_to_first_byte_seconds", Help: "Time from a request's arrival to the upstream's first byte, by platform and account.", Buckets: latencyBuckets,
	}, []string{"platform", "account"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_tokens_total", Help: "Tokens the upstreams reported, by platform, account and kind (input, output, cache_creation, cache_read).",
	}, []string{"platform", "account", "kind"})
	m.cost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_cost_usd_total", Help: "Cost of requests with a known price, in US dollars, by account and relay key name (\"\" for an unnamed key).",
	}, []string{"account", "key"})
	m.costUnknown = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_cost_unknown_requests_total", Help: "Requests that used tokens of a model with no price (their cost is unknown, not 0), by account.",
	}, []string{"account"})
	m.failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_failovers_total", Help: "Attempts that failed and moved the request to another account, by platform.",
	}, []string{"platform"})
	m.poolExhausted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_pool_exhausted_total", Help: "Requests answered 503 because no account of the platform could serve.",
	}, []string{"platform"})
	m.cooldowns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_cooldowns_total", Help: "Cooldowns set on accounts, by account and kind (rate_limited, overloaded, unavailable, token_invalid...).",
	}, []string{"account", "kind"})
	m.refreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccrelay_token_refreshes_total", Help: "OAuth token refreshes, by account and result (ok, failed).",
	}, []string{"account", "result"})
	m.keyWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ccrelay_key_queue_wait_seconds", Help: "Time requests waited for a relay key's concurrency slot, by key name.",
		Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"key"})
	m.accountState = prometheus.NewDesc("ccrelay_account_state", "1 for the state each account is in (available, cooling, disabled, invalid), 0 for the others.", []string{"account", "platform", "state"}, nil)
	m.quota = prometheus.NewDesc("ccrelay_quota_utilization_ratio", "Share of a subscription window used (0..1), by account and window.", []string{"account", "window"}, nil)
	m.keyQueue = prometheus.NewDesc("ccrelay_key_queue_depth", "Requests waiting for a relay key's concurrency slot, by key name.", []string{"key"}, nil)
	m.usageQueue = prometheus.NewDesc("ccrelay_usage_queue_length", "Usage records waiting to be written to the database.", nil, nil)
	m.dbUp = prometheus.NewDesc("ccrelay_database_up", "1 when the database is being written, 0 when writes fail or it is read-only.", nil, nil)
	m.redisUp = prometheus.NewDesc("ccrelay_redis_up", "1 when the cluster's Redis answers, 0 when not (absent without a cluster).", nil, nil)
	m.configStale = prometheus.NewDesc("ccrelay_config_stale", "1 when the config file holds a config that could not be applied (the old one serves).", nil, nil)
	m.clusterDrops = prometheus.NewDesc("ccrelay_cluster_dropped_total",
		"Items this relay's queues to the cluster's Redis dropped for want of room, by queue: state (session and cooldown changes; a resync makes up for them), key_counters (relay-key charges and admissions), usage (usage records; each relay's database keeps them), request_log (request log rows for the cluster's shared index; each relay's database keeps them).",
		[]string{"queue"}, nil)
	m.reg.MustRegister(m.requests, m.duration, m.ttfb, m.tokens, m.cost, m.costUnknown, m.failovers, m.poolExhausted,
		m.cooldowns, m.refreshes, m.keyWait, scrapeCollector{m},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: nil})
}

// Registry is the registry the collectors are on (tests, other collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Request counts one finished HTTP request (the server's observer). path is
// matched against a fixed route table; account is a configured id or "".
func (m *Metrics) Request(path string, status int, account string) {
	route, platform := Route(path)
	if route == "" {
		return
	}
	if account == "" {
		account = "none"
	}
	m.requests.WithLabelValues(route, platform, statusClass(status), account).Inc()
}

// Observe counts one usage record (tokens, cost, latency, failovers).
func (m *Metrics) Observe(r usage.Record) {
	platform := r.Platform
	stream := "false"
	if r.Stream {
		stream = "true"
	}
	m.duration.WithLabelValues(platform, stream).Observe(r.Latency.Seconds())
	if r.Attempts > 1 {
		m.failovers.WithLabelValues(platform).Add(float64(r.Attempts - 1))
	}
	if r.AccountID == "" {
		if r.Status == http.StatusServiceUnavailable && r.Attempts == 0 {
			m.poolExhausted.WithLabelValues(platform).Inc()
		}
		return
	}
	if r.TTFB > 0 {
		m.ttfb.WithLabelValues(platform, r.AccountID).Observe(r.TTFB.Seconds())
	}
	for _, t := range [...]struct {
		kind string
		n    int64
	}{{"input", r.InputTokens}, {"output", r.OutputTokens}, {"cache_creation", r.CacheCreationTokens}, {"cache_read", r.CacheReadTokens}} {
		if t.n > 0 {
			m.tokens.WithLabelValues(platform, r.AccountID, t.kind).Add(float64(t.n))
		}
	}
	switch {
	case r.CostKnown:
		m.cost.WithLabelValues(r.AccountID, r.KeyName).Add(float64(r.CostMicros) / 1e6)
	case r.InputTokens+r.OutputTokens > 0:
		m.costUnknown.WithLabelValues(r.AccountID).Inc()
	}
}

// Refreshed counts one OAuth refresh of account.
func (m *Metrics) Refreshed(account string, ok bool) {
	res := "ok"
	if !ok {
		res = "failed"
	}
	m.refreshes.WithLabelValues(account, res).Inc()
}

// KeyQueueWait records how long a request waited for key's concurrency slot.
func (m *Metrics) KeyQueueWait(key string, d time.Duration) {
	m.keyWait.WithLabelValues(key).Observe(d.Seconds())
}

// CooldownChanged counts cooldowns as they are set (scheduler.Observer).
func (m *Metrics) CooldownChanged(c state.Cooldown, cleared bool) {
	if !cleared {
		m.cooldowns.WithLabelValues(c.AccountID, c.Kind).Inc()
	}
}

// SessionChanged is part of scheduler.Observer; sessions are not counted.
func (m *Metrics) SessionChanged(state.Binding, bool) {}

// AccountUsed is part of scheduler.Observer; use is counted from usage.
func (m *Metrics) AccountUsed(string, time.Time) {}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// Route names the route of path and its platform: the API's from the
// relay's route table, the server's own paths here; "" for paths that are
// not counted (/health, /metrics).
func Route(path string) (route, platform string) {
	switch {
	case path == "/health" || path == "/metrics":
		return "", ""
	case strings.HasPrefix(path, "/admin/"):
		return "admin", "none"
	case strings.HasPrefix(path, "/dashboard"):
		return "dashboard", "none"
	}
	return relay.MetricLabels(path)
}

// scrapeCollector reads the state gauges when Prometheus scrapes.
type scrapeCollector struct{ m *Metrics }

func (c scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	m := c.m
	for _, d := range []*prometheus.Desc{m.accountState, m.quota, m.keyQueue, m.usageQueue, m.dbUp, m.redisUp, m.configStale, m.clusterDrops} {
		ch <- d
	}
}

func (c scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	m, s := c.m, c.m.src
	if s.Accounts != nil {
		for _, a := range s.Accounts() {
			for _, st := range accountStates {
				ch <- prometheus.MustNewConstMetric(m.accountState, prometheus.GaugeValue, b2f(a.State == st), a.ID, a.Platform, st)
			}
		}
	}
	if s.Quota != nil {
		for _, w := range s.Quota.QuotaWindows() {
			ch <- prometheus.MustNewConstMetric(m.quota, prometheus.GaugeValue, w.Utilization, w.AccountID, w.Window)
		}
	}
	if s.KeyQueues != nil {
		for _, q := range s.KeyQueues.KeyQueues() {
			ch <- prometheus.MustNewConstMetric(m.keyQueue, prometheus.GaugeValue, float64(q.Depth), q.Key)
		}
	}
	if s.UsageQueue != nil {
		ch <- prometheus.MustNewConstMetric(m.usageQueue, prometheus.GaugeValue, float64(s.UsageQueue()))
	}
	if s.DatabaseOK != nil {
		ch <- prometheus.MustNewConstMetric(m.dbUp, prometheus.GaugeValue, b2f(s.DatabaseOK()))
	}
	if s.RedisOK != nil {
		if up, ok := s.RedisOK(); ok {
			ch <- prometheus.MustNewConstMetric(m.redisUp, prometheus.GaugeValue, b2f(up))
		}
	}
	if s.ConfigStale != nil {
		ch <- prometheus.MustNewConstMetric(m.configStale, prometheus.GaugeValue, b2f(s.ConfigStale()))
	}
	if s.ClusterDropped != nil {
		for q, n := range s.ClusterDropped() {
			ch <- prometheus.MustNewConstMetric(m.clusterDrops, prometheus.CounterValue, float64(n), q)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
