// Package config is ccrelay's typed configuration: the TOML file the original
// Claude Relay RS reads, plus ccrelay's additions, loaded strictly (unknown keys
// and wrong types are errors with their line), defaulted in one place and
// validated with every problem reported at once.
package config

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/accounttype"
)

// Account types. The first four are the original's; gemini-api is new. What
// each one means lives in internal/accounttype; these names are kept for
// the code that names one type on purpose.
const (
	TypeClaudeOAuth     = "claude-oauth"
	TypeClaudeAPI       = "claude-api"
	TypeGemini          = "gemini"
	TypeGeminiAPI       = "gemini-api"
	TypeOpenAIResponses = "openai-responses"
	TypeClaudeToken     = "claude-token"
	TypeCodexOAuth      = "codex-oauth"
	TypeOpenAICompat    = "openai-compatible"
)

// AccountTypes lists every accepted account type, in documentation order
// (accounttype's registry).
var AccountTypes = accounttype.Names()

// Config is the whole configuration file.
type Config struct {
	// APIKeys are the relay keys clients must present. Empty disables auth and
	// usage is recorded as "anonymous". Must stand at the top level, before any
	// [table] header.
	APIKeys []string `toml:"api_keys"`
	// AdminKeys guard the admin API (/admin/v1/...) and the dashboard
	// (/dashboard). Empty (the default) turns both off: they answer 404. An
	// admin key is not a relay key and a relay key is not an admin key. Like
	// api_keys it must stand at the top level. New.
	AdminKeys []string `toml:"admin_keys"`
	// AllowUnauthenticated serves every client when no relay key is
	// configured. Default false: without a key only loopback clients are
	// served (protected mode). New.
	AllowUnauthenticated bool `toml:"allow_unauthenticated"`
	// TrustedProxies lists the addresses (IPs or CIDRs) whose
	// X-Forwarded-For header is believed for the client address. Default
	// none: the TCP peer is the client. New.
	TrustedProxies []string `toml:"trusted_proxies"`
	// Server holds the listener, storage, logging and timeout settings.
	Server ServerConfig `toml:"server"`
	// Session holds sticky-session and cooldown settings.
	Session SessionConfig `toml:"session"`
	// Accounts is the pool of upstream accounts.
	Accounts []AccountConfig `toml:"accounts"`
	// Models maps model names clients ask for (e.g. OpenAI names on the Chat
	// Completions route) to the names sent upstream. Default: none, names pass through.
	Models map[string]string `toml:"models"`
	// Routes choose the pools that serve a model, in order, with fallback
	// ([[routes]], routes.go). Default none: the model decides the pool
	// (docs/routing.md). New.
	Routes []RouteConfig `toml:"routes"`
	// Cluster, when RedisURL is set, shares state between several relays.
	Cluster ClusterConfig `toml:"cluster"`
	// Scheduler steers by the accounts' rate-limit windows (scheduler.go).
	Scheduler SchedulerConfig `toml:"scheduler"`
	// Keys are named relay keys with limits and budgets ([[keys]]). New.
	Keys []KeyConfig `toml:"keys"`
	// Prices override the embedded price table per model ([prices."model"]). New.
	Prices map[string]PriceConfig `toml:"prices"`
	// MetricsListen, when set (e.g. "127.0.0.1:9464"), serves /metrics
	// without auth on a listener of its own. Default "" (off). Must stand at
	// the top level. New.
	MetricsListen string `toml:"metrics_listen"`
	// Alerts are webhooks told of account and pool events. Default none. New.
	Alerts []AlertConfig `toml:"alerts"`

	// Path is the file this config was loaded from; "" when running on defaults.
	Path string `toml:"-"`
	// Warnings are what Parse accepted but the writer should fix (api_keys
	// inside [server]); serve logs them and config validate prints them.
	Warnings []Problem `toml:"-"`
}

// ServerConfig is the [server] table.
type ServerConfig struct {
	// Host is the listen address. Default "127.0.0.1".
	Host string `toml:"host"`
	// Port is the listen port. Default 3000.
	Port int `toml:"port"`
	// DatabasePath is the SQLite file for usage and state. Default "data/relay.db".
	DatabasePath string `toml:"database_path"`
	// LogLevel is trace|debug|info|warn|error. Default "info".
	LogLevel string `toml:"log_level"`
	// LogFormat is text|json. Default "text". New.
	LogFormat string `toml:"log_format"`
	// MaxBodyBytes caps a request body. Default 33554432 (32 MiB, Anthropic's own limit). New.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// FirstByteTimeoutSeconds bounds the wait for a streaming upstream's
	// response headers and first event. Default 60. New.
	FirstByteTimeoutSeconds int `toml:"first_byte_timeout_seconds"`
	// ResponseTimeoutSeconds bounds a non-streaming upstream call from start to
	// full body. Default 600. New.
	ResponseTimeoutSeconds int `toml:"response_timeout_seconds"`
	// IdleTimeoutSeconds is the longest total silence (no bytes at all;
	// pings count as life) allowed inside a stream; past it the stream ends
	// with an error event and the account cools down. Default 90 (Claude
	// Code gives up after ~180 s). New.
	IdleTimeoutSeconds int `toml:"idle_timeout_seconds"`
	// BodyTimeoutSeconds bounds the arrival of a request body; a body that
	// trickles in slower is cut with 408. Default 60. New.
	BodyTimeoutSeconds int `toml:"body_timeout_seconds"`
	// WriteTimeoutSeconds bounds each write to a client; a client that stops
	// reading is dropped and its upstream call cancelled. Default 60; a
	// reload applies it to open connections. New.
	WriteTimeoutSeconds int `toml:"write_timeout_seconds"`
	// ShutdownTimeoutSeconds bounds the drain of in-flight requests on SIGTERM. Default 30. New.
	ShutdownTimeoutSeconds int `toml:"shutdown_timeout_seconds"`
	// MaxAttempts is how many accounts one request may try. Default 3. New.
	MaxAttempts int `toml:"max_attempts"`
	// UsageRetentionDays is how long raw usage rows (one per request) are
	// kept; older ones live on only in the hourly rollups, which are kept
	// for good. Default 90. New.
	UsageRetentionDays int `toml:"usage_retention_days"`
	// RequestLogDays is how long the request log (one row per request:
	// key, client, route, attempts with their reasons, status, timings; no
	// bodies) is kept. Default 7. New.
	RequestLogDays int `toml:"request_log_days"`
	// RequestLogMaxRows caps the request log's rows; the oldest go first.
	// Default 500000 (about 0.5 KB each with indexes). New.
	RequestLogMaxRows int `toml:"request_log_max_rows"`
	// SecureCookie sends the dashboard's sign-in cookie with Secure (browsers
	// then return it only over HTTPS) on every sign-in. Default false: Secure
	// is set when the request came over TLS, as the relay's own connection
	// or a trusted_proxies proxy's X-Forwarded-Proto: https says. Set it
	// behind a TLS proxy that is not in trusted_proxies. Applies on reload. New.
	SecureCookie bool `toml:"secure_cookie"`
}

// SessionConfig is the [session] table.
type SessionConfig struct {
	// StickyTTLSeconds is how long a conversation stays bound to its account. Default 3600.
	StickyTTLSeconds int `toml:"sticky_ttl_seconds"`
	// RenewalThresholdSeconds: a sticky hit with less than this left is renewed to the full TTL. Default 300.
	RenewalThresholdSeconds int `toml:"renewal_threshold_seconds"`
	// UnavailableCooldownSeconds is the cooldown after 401/403/402-like answers. Default 3600.
	UnavailableCooldownSeconds int `toml:"unavailable_cooldown_seconds"`
	// RateLimitCooldownSeconds is the cooldown after a 429 that names no reset time. Default 60. New.
	RateLimitCooldownSeconds int `toml:"rate_limit_cooldown_seconds"`
	// MaxRateLimitCooldownSeconds caps a short (retry-after) hint. Default 3600. New.
	MaxRateLimitCooldownSeconds int `toml:"max_rate_limit_cooldown_seconds"`
	// OverloadCooldownSeconds is the cooldown after 529 / overloaded. Default 300. New.
	OverloadCooldownSeconds int `toml:"overload_cooldown_seconds"`
	// ErrorCooldownSeconds is the cooldown after 5xx, network and refresh errors. Default 30. New.
	ErrorCooldownSeconds int `toml:"error_cooldown_seconds"`
}

// AccountConfig is one [[accounts]] entry.
type AccountConfig struct {
	// Type is one of AccountTypes.
	Type string `toml:"type"`
	// ID is unique across accounts.
	ID string `toml:"id"`
	// Name is a human label.
	Name string `toml:"name"`
	// Priority: higher wins. Default 100.
	Priority int `toml:"priority"`
	// Enabled: default true.
	Enabled bool `toml:"enabled"`
	// RefreshToken is the OAuth refresh token (claude-oauth, gemini).
	RefreshToken string `toml:"refresh_token"`
	// APIKey is the provider key (claude-api, gemini-api, openai-responses).
	APIKey string `toml:"api_key"`
	// Token is a long-lived bearer token (claude-token: the sk-ant-oat01-
	// token `claude setup-token` prints). New.
	Token string `toml:"token"`
	// APIURL replaces the provider's base URL (mirror, gateway).
	APIURL string `toml:"api_url"`
	// Proxy carries all of this account's traffic.
	Proxy *ProxyConfig `toml:"proxy"`
	// TokenURL overrides the OAuth token endpoint. New.
	TokenURL string `toml:"token_url"`
	// ClientID overrides the OAuth client id. New.
	ClientID string `toml:"client_id"`
	// ClientSecret overrides the OAuth client secret (gemini). New.
	ClientSecret string `toml:"client_secret"`
	// ChatGPTAccountID is the ChatGPT account (workspace) of a codex-oauth
	// account. Default: the chatgpt_account_id claim of its access token. New.
	ChatGPTAccountID string `toml:"chatgpt_account_id"`
	// ProjectID pins the Code Assist project of a gemini account instead of discovering it. New.
	ProjectID string `toml:"project_id"`
	// PlanOnly overrides [scheduler] plan_only for this account. Default: the global value. New.
	PlanOnly *bool `toml:"plan_only"`
	// Groups are the account groups this account belongs to; a [[keys]]
	// entry with groups uses only accounts of those groups. Default none. New.
	Groups []string `toml:"groups"`
	// MaxConcurrency caps the requests this account serves at once; at the
	// cap the scheduler picks another account. Default 0 (no cap). New.
	MaxConcurrency int `toml:"max_concurrency"`
	// Models are the models an openai-compatible account serves: globs
	// (path.Match syntax) of the names clients ask for, after [models].
	// Required for that type, refused on the others. New.
	Models []string `toml:"models"`
	// ModelMap renames a model on its way to an openai-compatible account
	// (the name routed -> the vendor's name), e.g. a [accounts.model_map]
	// table "deepseek-r1" = "deepseek-reasoner". Default none. New.
	ModelMap map[string]string `toml:"model_map"`
	// StreamUsage: an openai-compatible account is asked for a stream's
	// token counts (stream_options.include_usage). false for vendors that
	// refuse stream_options: their streams' usage is then recorded as
	// unknown. Default true. New.
	StreamUsage *bool `toml:"stream_usage"`
	// JSONSchema: an openai-compatible account takes structured outputs
	// (response_format json_schema). false for vendors with JSON mode only
	// (DeepSeek): the relay sends json_object and the schema in a system
	// message. Default true. New.
	JSONSchema *bool `toml:"json_schema"`
}

// SendModel is the model name an account is sent for model: its model_map's
// rename, else model.
func (a *AccountConfig) SendModel(model string) string {
	if m, ok := a.ModelMap[model]; ok && m != "" {
		return m
	}
	return model
}

// AsksStreamUsage reports whether the account is asked for a stream's
// usage (stream_usage, default true).
func (a *AccountConfig) AsksStreamUsage() bool { return a.StreamUsage == nil || *a.StreamUsage }

// TakesJSONSchema reports whether the account takes response_format
// json_schema (json_schema, default true).
func (a *AccountConfig) TakesJSONSchema() bool { return a.JSONSchema == nil || *a.JSONSchema }

// ProxyConfig is an [accounts.proxy] table.
type ProxyConfig struct {
	// Type is socks5 | http ("none" is accepted and means no proxy).
	Type string `toml:"type"`
	// Host is the proxy host.
	Host string `toml:"host"`
	// Port is the proxy port.
	Port int `toml:"port"`
	// Username is optional.
	Username string `toml:"username"`
	// Password is optional.
	Password string `toml:"password"`
}

// Alert formats.
const (
	AlertJSON     = "json"
	AlertSlack    = "slack"
	AlertDiscord  = "discord"
	AlertTelegram = "telegram"
)

// Alert events.
const (
	EventAccountInvalid   = "account_invalid"
	EventAccountRecovered = "account_recovered"
	EventQuotaThreshold   = "quota_threshold"
	EventPoolExhausted    = "pool_exhausted"
	EventKeyBudget        = "key_budget"
)

// AlertEvents lists every alert event, in documentation order.
var AlertEvents = []string{EventAccountInvalid, EventAccountRecovered, EventQuotaThreshold, EventPoolExhausted, EventKeyBudget}

// AlertConfig is one [[alerts]] entry: a webhook and what it is told.
type AlertConfig struct {
	// URL receives the alerts (POST). Required, except for telegram where it
	// defaults to the Bot API's address. Treated as a secret (webhook URLs
	// hold tokens): never logged.
	URL string `toml:"url"`
	// Format is json | slack | discord | telegram. Default "json".
	Format string `toml:"format"`
	// BotToken is the Telegram bot token (format = "telegram").
	BotToken string `toml:"bot_token"`
	// ChatID is the Telegram chat (format = "telegram").
	ChatID string `toml:"chat_id"`
	// Events are the events sent (see AlertEvents). Default all.
	Events []string `toml:"events"`
	// QuietMinutes: one (event, subject) is sent at most once in this many
	// minutes. Default 60.
	QuietMinutes int `toml:"quiet_minutes"`
}

// Wants reports whether the alert is sent event.
func (a *AlertConfig) Wants(event string) bool {
	if len(a.Events) == 0 {
		return true
	}
	for _, e := range a.Events {
		if e == event {
			return true
		}
	}
	return false
}

// ClusterConfig is the optional [cluster] table.
type ClusterConfig struct {
	// RedisURL (redis:// or rediss://) enables shared state. Default "" (off).
	RedisURL string `toml:"redis_url"`
	// KeyPrefix namespaces every Redis key. Default "ccrelay:".
	KeyPrefix string `toml:"key_prefix"`
	// Username and Password authenticate to Redis (ACL user, AUTH); when set
	// they override the URL's. Default "" (the URL's, if any).
	Username string `toml:"username"`
	Password string `toml:"password"`
	// TLSCAFile is a PEM file of the CA that signed the Redis server's
	// certificate, for rediss:// URLs. Default "" (the system roots).
	TLSCAFile string `toml:"tls_ca_file"`
	// LeaseSeconds is the OAuth refresh lease's time to live: a relay that dies
	// while refreshing blocks the account's refresh at most this long (a live
	// holder renews it). Default 15.
	LeaseSeconds int `toml:"lease_seconds"`
	// Secret is the key (at least MinClusterSecret characters) the OAuth
	// tokens stored in Redis are encrypted with; never stored in Redis. Every
	// relay of a cluster needs the same one. Required when RedisURL is set
	// and an account uses OAuth. Default "".
	Secret string `toml:"secret"`
	// AcceptPlaintextCredentials lets this relay read OAuth tokens stored in
	// Redis in plain text, as relays before the encryption wrote them; each
	// is logged and replaced by its sealed form. Off, such a credential is
	// refused with an error: anyone who can write to Redis could otherwise
	// swap an account's token for their own. Turn it on for the one upgrade,
	// then off. Default false.
	AcceptPlaintextCredentials bool `toml:"accept_plaintext_credentials"`
}

// MinClusterSecret is the least length of [cluster] secret.
const MinClusterSecret = 16

// Spec is the description of the account's type; nil for an unknown type
// (which Validate refuses).
func (a *AccountConfig) Spec() *accounttype.Spec { return accounttype.Lookup(a.Type) }

// Platform is the pool an account type serves; "" for an unknown type.
func (a *AccountConfig) Platform() string {
	if s := a.Spec(); s != nil {
		return s.Platform
	}
	return ""
}

// IsOAuth reports whether the account authenticates with a refresh token.
func (a *AccountConfig) IsOAuth() bool {
	s := a.Spec()
	return s != nil && s.Credential == accounttype.OAuth
}

// Secret is the value of the key that holds the account's credential
// (api_key, refresh_token or token, as its type says).
func (a *AccountConfig) Secret() string {
	s := a.Spec()
	if s == nil {
		return ""
	}
	switch s.SecretKey {
	case "refresh_token":
		return a.RefreshToken
	case "token":
		return a.Token
	}
	return a.APIKey
}

// Account is the view of the account that its type's functions take.
func (a *AccountConfig) Account() accounttype.Account {
	return accounttype.Account{ID: a.ID, APIURL: a.APIURL, UpstreamAccount: a.ChatGPTAccountID}
}

// Enabled reports whether the proxy is in effect.
func (p *ProxyConfig) Enabled() bool { return p != nil && p.Type != "" && p.Type != "none" }

// Addr is host:port of the proxy.
func (p *ProxyConfig) Addr() string { return net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) }

// Addr is the listen address host:port.
func (s *ServerConfig) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Seconds converts a seconds setting to a Duration; an absurdly large one
// saturates at the longest Duration instead of overflowing.
func Seconds(n int) time.Duration {
	if int64(n) > int64(math.MaxInt64/time.Second) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Second
}

// Default returns the configuration used when no file exists.
func Default() *Config {
	c := &Config{}
	c.applyDefaults(nil)
	return c
}

// applyDefaults fills every unset value. present tells, per account index,
// which keys the file set (priority/enabled defaults need it); nil = none.
func (c *Config) applyDefaults(present []map[string]bool) {
	c.applySchedulerDefaults()
	s := &c.Server
	setDefault(&s.Host, "127.0.0.1")
	setDefault(&s.Port, 3000)
	setDefault(&s.DatabasePath, "data/relay.db")
	setDefault(&s.LogLevel, "info")
	s.LogLevel = strings.ToLower(s.LogLevel)
	setDefault(&s.LogFormat, "text")
	setDefault(&s.MaxBodyBytes, 32<<20)
	setDefault(&s.FirstByteTimeoutSeconds, 60)
	setDefault(&s.ResponseTimeoutSeconds, 600)
	setDefault(&s.IdleTimeoutSeconds, 90)
	setDefault(&s.BodyTimeoutSeconds, 60)
	setDefault(&s.WriteTimeoutSeconds, 60)
	setDefault(&s.ShutdownTimeoutSeconds, 30)
	setDefault(&s.MaxAttempts, 3)
	setDefault(&s.UsageRetentionDays, 90)
	setDefault(&s.RequestLogDays, 7)
	setDefault(&s.RequestLogMaxRows, 500_000)
	ss := &c.Session
	setDefault(&ss.StickyTTLSeconds, 3600)
	setDefault(&ss.RenewalThresholdSeconds, 300)
	setDefault(&ss.UnavailableCooldownSeconds, 3600)
	setDefault(&ss.RateLimitCooldownSeconds, 60)
	setDefault(&ss.MaxRateLimitCooldownSeconds, 3600)
	setDefault(&ss.OverloadCooldownSeconds, 300)
	setDefault(&ss.ErrorCooldownSeconds, 30)
	setDefault(&c.Cluster.KeyPrefix, "ccrelay:")
	setDefault(&c.Cluster.LeaseSeconds, 15)
	for i := range c.Keys {
		c.Keys[i].applyDefaults()
	}
	for i := range c.Alerts {
		a := &c.Alerts[i]
		setDefault(&a.Format, AlertJSON)
		if a.Format == AlertTelegram && a.URL == "" {
			a.URL = "https://api.telegram.org"
		}
		setDefault(&a.QuietMinutes, 60)
	}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		var p map[string]bool
		if i < len(present) {
			p = present[i]
		}
		if !p["priority"] {
			a.Priority = 100
		}
		if !p["enabled"] {
			a.Enabled = true
		}
		if a.Name == "" {
			a.Name = a.ID
		}
	}
}

// setDefault gives a setting left out of the file (still its type's zero
// value) its default d. A setting whose zero is meaningful (an account's
// priority 0, enabled = false) cannot use it: it needs to know whether the
// file set the key at all.
func setDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Problem is one thing wrong with a config file.
type Problem struct {
	// Line is 1-based; 0 when unknown.
	Line int
	// Key is the dotted key, e.g. "server.port" or "accounts[1].type".
	Key string
	// Msg says what is wrong and, where possible, how to fix it.
	Msg string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		fmt.Fprintf(&b, "%s: ", p.Key)
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error lists every problem found in one config file.
type Error struct {
	// Path is the file, "" for an in-memory config.
	Path string
	// Problems are in file order.
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	name := e.Path
	if name == "" {
		name = "config"
	}
	if len(e.Problems) == 1 {
		fmt.Fprintf(&b, "%s: %s", name, e.Problems[0])
		return b.String()
	}
	fmt.Fprintf(&b, "%s: %d problems:", name, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}
