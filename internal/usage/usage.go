// Package usage defines the per-request usage record that the relay produces
// and the store persists.
package usage

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// Anonymous is the key hash recorded when relay auth is off.
const Anonymous = "anonymous"

// Record is one served request.
type Record struct {
	Time      time.Time
	RequestID string
	// KeyHash is hex(sha256(relay key)) or Anonymous; never the key itself.
	KeyHash string
	// KeyName is the relay key's configured name ([[keys]] name); "" for an
	// unnamed api_keys entry or when auth is off.
	KeyName   string
	AccountID string
	Platform  string
	// Model is the model the client asked for (a key's models rule and the
	// routes match it).
	Model string
	// ServedModel is the model the upstream was asked for, when a route's
	// target or the [models] map rewrote Model; "" means the same as Model.
	// The request is priced at this model (Served).
	ServedModel string
	provider.Usage
	// UsageUnknown: the upstream reported no token counts (an
	// OpenAI-compatible server's stream without a usage chunk): the counts
	// are zero because nothing was counted, not because nothing was used,
	// and the cost is unknown (CostKnown false).
	UsageUnknown bool
	// Status is the HTTP status the client got (499 when it went away first).
	Status   int
	Latency  time.Duration
	TTFB     time.Duration
	Stream   bool
	Attempts int
	// Error is a short reason for a failed request, without secrets.
	Error string
	// CostMicros is what the request cost, in micro-dollars (1e-6 USD);
	// meaningful only when CostKnown.
	CostMicros int64
	// CostKnown is false when the model has no price or the usage is
	// unknown: unknown, never 0.
	CostKnown bool
	// Request is what the request log keeps beyond usage (request.go).
	Request
}

// Served is the model the upstream served: ServedModel, or Model when the
// request went upstream under the name it was asked for.
func (r *Record) Served() string {
	if r.ServedModel != "" {
		return r.ServedModel
	}
	return r.Model
}

// HashKey returns the stored form of a relay key.
func HashKey(key string) string {
	if key == "" {
		return Anonymous
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
