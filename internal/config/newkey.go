package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// NewKey is a named relay key to create, with its rules: what `ccrelay keys
// add` and the admin API's POST /admin/v1/keys take. A zero value leaves
// its field out of the entry, so the field's default applies.
type NewKey struct {
	Name         string
	Models       []string
	Groups       []string
	RPM          int
	Concurrency  int
	QueueSeconds int
	DailyUSD     float64
	WeeklyUSD    float64
	MonthlyUSD   float64
	DailyTokens  int64
	// ExpiresAt is an RFC 3339 time or a date (YYYY-MM-DD).
	ExpiresAt string
	// Timezone is the IANA zone of the budget windows.
	Timezone string
	// HashOnly stores only the key's sha256 (key_sha256): the file then
	// holds nothing a reader could use, and the key cannot be shown again.
	HashOnly bool
}

// ErrNoConfigFile is returned by AddKey when the config was not read from a
// file, so there is no file to write the key to.
var ErrNoConfigFile = errors.New("no config file found: create one with 'ccrelay config init' (or name one with --config)")

// ErrKeyExists is returned (wrapped) when a [[keys]] entry already has the
// name of the key to create.
var ErrKeyExists = errors.New("a key with this name already exists")

// InvalidKeyError lists what is wrong with a key to create. Each problem's
// Key is the field of the entry (name, models[0], timezone, ...), without the
// keys[N] prefix the whole config's validation gives it.
type InvalidKeyError struct {
	Problems []Problem
}

func (e *InvalidKeyError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid key: " + strings.Join(parts, "; ")
}

// NewRelayKey returns a random relay key ("ccr-" and 26 base32 characters,
// 130 bits from crypto/rand).
func NewRelayKey() string {
	return "ccr-" + rand.Text()
}

// KeyConfig is the [[keys]] entry nk describes, holding key.
func (nk NewKey) KeyConfig(key string) KeyConfig {
	kc := KeyConfig{Name: nk.Name, Models: nk.Models, Groups: nk.Groups, RPM: nk.RPM, Concurrency: nk.Concurrency,
		QueueSeconds: nk.QueueSeconds, DailyUSD: nk.DailyUSD, WeeklyUSD: nk.WeeklyUSD, MonthlyUSD: nk.MonthlyUSD,
		DailyTokens: nk.DailyTokens, ExpiresAt: nk.ExpiresAt, Timezone: nk.Timezone}
	if nk.HashOnly {
		kc.KeySHA256 = sha256Hex(key)
	} else {
		kc.Key = key
	}
	return kc
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Check checks nk, holding key, as the config will once it is added to cfg:
// the name (unique, no spaces or quotes), the model globs, the time zone,
// the expiry, the limits, and that the key differs from every other. It
// returns ErrKeyExists (wrapped) for a name in use, an *InvalidKeyError for
// anything else.
func (nk NewKey) Check(cfg *Config, key string) error {
	for _, k := range cfg.Keys {
		if k.Name == nk.Name && nk.Name != "" {
			return fmt.Errorf("%w: %q", ErrKeyExists, nk.Name)
		}
	}
	check := *cfg
	check.Keys = append(append([]KeyConfig(nil), cfg.Keys...), nk.KeyConfig(key))
	err := check.Validate()
	if err == nil {
		return nil
	}
	var ce *Error
	if !errors.As(err, &ce) {
		return err
	}
	prefix := fmt.Sprintf("keys[%d]", len(cfg.Keys))
	var ps []Problem
	for _, p := range ce.Problems {
		if rest, ok := strings.CutPrefix(p.Key, prefix); ok {
			ps = append(ps, Problem{Key: strings.TrimPrefix(rest, "."), Msg: p.Msg})
		}
	}
	if len(ps) == 0 {
		// The config in force fails on its own: say so rather than blame the key.
		return fmt.Errorf("the config in force does not validate, so no key can be added: %w", err)
	}
	return &InvalidKeyError{Problems: ps}
}

// Fields are the lines of nk's [[keys]] table, in the order `keys add`
// writes them: name, the key (or its sha256), then each limit that is set.
func (nk NewKey) Fields(key string) []Field {
	fields := []Field{{Key: "name", Value: nk.Name}}
	if nk.HashOnly {
		fields = append(fields, Field{Key: "key_sha256", Value: sha256Hex(key)})
	} else {
		fields = append(fields, Field{Key: "key", Value: key})
	}
	if len(nk.Models) > 0 {
		fields = append(fields, Field{Key: "models", Value: nk.Models})
	}
	if len(nk.Groups) > 0 {
		fields = append(fields, Field{Key: "groups", Value: nk.Groups})
	}
	for _, f := range []struct {
		k   string
		v   any
		set bool
	}{
		{"expires_at", nk.ExpiresAt, nk.ExpiresAt != ""}, {"rpm", nk.RPM, nk.RPM != 0}, {"concurrency", nk.Concurrency, nk.Concurrency != 0},
		{"queue_seconds", nk.QueueSeconds, nk.QueueSeconds != 0}, {"daily_usd", nk.DailyUSD, nk.DailyUSD != 0}, {"weekly_usd", nk.WeeklyUSD, nk.WeeklyUSD != 0},
		{"monthly_usd", nk.MonthlyUSD, nk.MonthlyUSD != 0}, {"daily_tokens", nk.DailyTokens, nk.DailyTokens != 0}, {"timezone", nk.Timezone, nk.Timezone != ""},
	} {
		if f.set {
			fields = append(fields, Field{Key: f.k, Value: f.v})
		}
	}
	return fields
}

// AddKey checks nk holding key against cfg (Check), then appends its
// [[keys]] entry to cfg's file with the text-preserving editor: under the
// config file lock, the rest of the file kept byte for byte, written
// atomically at 0600. The running relay applies it at its next reload.
func AddKey(cfg *Config, nk NewKey, key string) error {
	if cfg.Path == "" {
		return ErrNoConfigFile
	}
	if err := nk.Check(cfg, key); err != nil {
		return err
	}
	return AppendKey(cfg.Path, nk.Fields(key))
}
