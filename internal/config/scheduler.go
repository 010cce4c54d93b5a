package config

// The [scheduler] spread policies.
const (
	// SpreadHeadroom picks, within one priority, the account whose busiest
	// window has the most room left (weighted by time to its reset); equals
	// fall back to least recently used.
	SpreadHeadroom = "headroom"
	// SpreadLRU picks the least recently used account within one priority.
	SpreadLRU = "lru"
)

// SchedulerConfig is the [scheduler] table: how accounts are chosen by the
// rate-limit numbers upstream answers carry.
type SchedulerConfig struct {
	// Spread is headroom | lru. Default "headroom". New.
	Spread string `toml:"spread"`
	// SoftLimit: an account past it (utilization 0..1 of any window) takes
	// new conversations only when no other can; its sticky conversations
	// stay. Default 0.9. New.
	SoftLimit float64 `toml:"soft_limit"`
	// HardLimit: an account past it takes nothing while another account can
	// serve, not even its sticky conversations. Default 0.98. New.
	HardLimit float64 `toml:"hard_limit"`
	// PlanOnly: never draw paid extra usage. An account whose answer shows
	// its plan's window spent and extra usage in use is left alone until the
	// window resets. Default false; an account's own plan_only overrides it. New.
	PlanOnly bool `toml:"plan_only"`
	// QuotaProbeMinutes: when above 0, an OAuth account that served nothing
	// for this long has its usage read from the provider's usage endpoint,
	// at most once per this many minutes. Default 0 (off). New.
	QuotaProbeMinutes int `toml:"quota_probe_minutes"`
}

// PlanOnlyFor reports whether account a must never draw paid extra usage.
func (c *Config) PlanOnlyFor(a *AccountConfig) bool {
	if a.PlanOnly != nil {
		return *a.PlanOnly
	}
	return c.Scheduler.PlanOnly
}

func (c *Config) applySchedulerDefaults() {
	s := &c.Scheduler
	setDefault(&s.Spread, SpreadHeadroom)
	setDefault(&s.SoftLimit, 0.9)
	setDefault(&s.HardLimit, 0.98)
}

func (c *Config) validateScheduler(add func(key, format string, args ...any)) {
	s := c.Scheduler
	switch s.Spread {
	case SpreadHeadroom, SpreadLRU:
	default:
		add("scheduler.spread", "must be headroom or lru, not %q", s.Spread)
	}
	if s.SoftLimit <= 0 || s.SoftLimit > 1 {
		add("scheduler.soft_limit", "must be above 0 and at most 1 (a share of a window), not %v", s.SoftLimit)
	}
	if s.HardLimit <= 0 || s.HardLimit > 1 {
		add("scheduler.hard_limit", "must be above 0 and at most 1 (a share of a window), not %v", s.HardLimit)
	} else if s.SoftLimit > s.HardLimit {
		add("scheduler.soft_limit", "must not be above hard_limit (%v), not %v", s.HardLimit, s.SoftLimit)
	}
	if s.QuotaProbeMinutes < 0 {
		add("scheduler.quota_probe_minutes", "must not be negative, got %d", s.QuotaProbeMinutes)
	}
}
