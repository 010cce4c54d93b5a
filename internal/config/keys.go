package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

// KeyConfig is one [[keys]] entry: a named relay key with its rules.
type KeyConfig struct {
	// Name is unique and shown in stats, logs and `keys list`.
	Name string `toml:"name"`
	// Key is the relay key itself. Exactly one of Key and KeySHA256 is set.
	Key string `toml:"key"`
	// KeySHA256 is hex(sha256(key)): the file then holds no usable key.
	KeySHA256 string `toml:"key_sha256"`
	// Enabled: default true; false refuses the key with 403.
	Enabled *bool `toml:"enabled"`
	// ExpiresAt is an RFC 3339 time or a date (YYYY-MM-DD, midnight in
	// Timezone) after which the key is refused. Default "" (never).
	ExpiresAt string `toml:"expires_at"`
	// Models is an allow-list of model globs (path.Match syntax, e.g.
	// "claude-sonnet-*"). Default empty: every model.
	Models []string `toml:"models"`
	// Groups restricts the key to accounts with one of these groups.
	// Default empty: every account.
	Groups []string `toml:"groups"`
	// RPM caps requests per minute (a token bucket refilled over a
	// minute). Default 0 (no cap).
	RPM int `toml:"rpm"`
	// Concurrency caps the key's requests in flight; more wait in a FIFO
	// queue. Default 0 (no cap).
	Concurrency int `toml:"concurrency"`
	// QueueSeconds is the longest a request waits for a concurrency slot
	// before 429. Default 30.
	QueueSeconds int `toml:"queue_seconds"`
	// DailyUSD, WeeklyUSD and MonthlyUSD are spending budgets in US
	// dollars per calendar day, ISO week and month. Default 0 (none).
	DailyUSD   float64 `toml:"daily_usd"`
	WeeklyUSD  float64 `toml:"weekly_usd"`
	MonthlyUSD float64 `toml:"monthly_usd"`
	// DailyTokens caps tokens (input + output + cache) per calendar day.
	// Default 0 (none).
	DailyTokens int64 `toml:"daily_tokens"`
	// Timezone (IANA name) in which the budget windows start. Default "UTC".
	Timezone string `toml:"timezone"`
}

// PriceConfig is one [prices."model"] table, US dollars per million tokens.
// A field left out keeps the embedded table's value for that model.
type PriceConfig struct {
	// Input is the price of uncached input tokens.
	Input *float64 `toml:"input"`
	// Output is the price of output tokens.
	Output *float64 `toml:"output"`
	// CacheWrite5m is the price of tokens written to a 5-minute cache.
	CacheWrite5m *float64 `toml:"cache_write_5m"`
	// CacheWrite1h is the price of tokens written to a 1-hour cache.
	CacheWrite1h *float64 `toml:"cache_write_1h"`
	// CacheRead is the price of tokens read from a cache.
	CacheRead *float64 `toml:"cache_read"`
}

// DefaultQueueSeconds is a key's default queue_seconds.
const DefaultQueueSeconds = 30

// IsEnabled reports whether the key is enabled (the default).
func (k *KeyConfig) IsEnabled() bool { return k.Enabled == nil || *k.Enabled }

// Digest returns sha256 of the key, from Key or KeySHA256.
func (k *KeyConfig) Digest() ([32]byte, error) {
	if k.Key != "" {
		return sha256.Sum256([]byte(k.Key)), nil
	}
	var d [32]byte
	b, err := hex.DecodeString(k.KeySHA256)
	if err != nil || len(b) != 32 {
		return d, fmt.Errorf("key_sha256 must be 64 hex digits")
	}
	copy(d[:], b)
	return d, nil
}

// Location returns the key's time zone (UTC by default).
func (k *KeyConfig) Location() (*time.Location, error) {
	if k.Timezone == "" || k.Timezone == "UTC" {
		return time.UTC, nil
	}
	return time.LoadLocation(k.Timezone)
}

// Expiry returns the parsed expires_at; zero when unset.
func (k *KeyConfig) Expiry() (time.Time, error) {
	if k.ExpiresAt == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, k.ExpiresAt); err == nil {
		return t, nil
	}
	loc, err := k.Location()
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.ParseInLocation("2006-01-02", k.ExpiresAt, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 time (2026-12-31T18:00:00Z) or a date (2026-12-31), not %q", k.ExpiresAt)
	}
	return t, nil
}

func (k *KeyConfig) applyDefaults() {
	setDefault(&k.QueueSeconds, DefaultQueueSeconds)
	setDefault(&k.Timezone, "UTC")
	k.KeySHA256 = strings.ToLower(k.KeySHA256)
}

// HasRelayKey reports whether any relay key is configured (api_keys or
// [[keys]]); without one the relay runs in protected mode.
func (c *Config) HasRelayKey() bool { return len(c.APIKeys) > 0 || len(c.Keys) > 0 }

// TrustedPrefixes parses TrustedProxies (validated already).
func (c *Config) TrustedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// validateTeam checks [[keys]], [prices], trusted_proxies and the accounts'
// team fields.
func (c *Config) validateTeam(add func(key, format string, args ...any)) {
	for i, s := range c.TrustedProxies {
		if _, err := parsePrefix(s); err != nil {
			add(fmt.Sprintf("trusted_proxies[%d]", i), "must be an IP address or a CIDR prefix (10.0.0.0/8), not %q", s)
		}
	}
	digests := map[[32]byte]string{}
	for i, k := range c.APIKeys {
		digests[sha256.Sum256([]byte(k))] = fmt.Sprintf("api_keys[%d]", i)
	}
	names := map[string]int{}
	for i := range c.Keys {
		k := &c.Keys[i]
		key := fmt.Sprintf("keys[%d]", i)
		switch {
		case k.Name == "":
			add(key+".name", "is required")
		case strings.ContainsAny(k.Name, " \t\r\n/\"'\\") || len(k.Name) > 64:
			add(key+".name", "must be at most 64 characters without spaces, quotes, slashes or line breaks")
		default:
			if j, dup := names[k.Name]; dup {
				add(key+".name", "duplicate key name %q (also keys[%d])", k.Name, j)
			}
			names[k.Name] = i
		}
		switch {
		case k.Key == "" && k.KeySHA256 == "":
			add(key+".key", "is required (or key_sha256; `ccrelay keys add` writes one)")
		case k.Key != "" && k.KeySHA256 != "":
			add(key+".key", "set key or key_sha256, not both")
		case strings.ContainsAny(k.Key, "\r\n\x00"):
			add(key+".key", "must not contain line breaks or NUL")
		case strings.TrimSpace(k.Key) != k.Key:
			add(key+".key", "must not start or end with spaces")
		default:
			d, err := k.Digest()
			if err != nil {
				add(key+".key_sha256", "%v", err)
				break
			}
			if other, dup := digests[d]; dup {
				add(key+".key", "is the same key as %s; each relay key must be distinct", other)
			}
			digests[d] = key
		}
		if _, err := k.Location(); err != nil {
			add(key+".timezone", "unknown time zone %q (an IANA name such as Europe/Berlin)", k.Timezone)
		} else if _, err := k.Expiry(); err != nil {
			add(key+".expires_at", "%v", err)
		}
		for j, m := range k.Models {
			if _, err := path.Match(m, ""); err != nil || m == "" {
				add(fmt.Sprintf("%s.models[%d]", key, j), "is not a valid glob: %q", m)
			}
		}
		for fk, v := range map[string]float64{"rpm": float64(k.RPM), "concurrency": float64(k.Concurrency), "queue_seconds": float64(k.QueueSeconds),
			"daily_usd": k.DailyUSD, "weekly_usd": k.WeeklyUSD, "monthly_usd": k.MonthlyUSD, "daily_tokens": float64(k.DailyTokens)} {
			if v < 0 {
				add(key+"."+fk, "must not be negative")
			}
		}
		if k.QueueSeconds > 3600 {
			add(key+".queue_seconds", "must be at most 3600, not %d", k.QueueSeconds)
		}
	}
	for model, p := range c.Prices {
		for fk, v := range map[string]*float64{"input": p.Input, "output": p.Output, "cache_write_5m": p.CacheWrite5m, "cache_write_1h": p.CacheWrite1h, "cache_read": p.CacheRead} {
			if v != nil && *v < 0 {
				add(fmt.Sprintf("prices.%q.%s", model, fk), "must not be negative")
			}
		}
	}
	for i := range c.Accounts {
		if c.Accounts[i].MaxConcurrency < 0 {
			add(fmt.Sprintf("accounts[%d].max_concurrency", i), "must not be negative")
		}
	}
}
