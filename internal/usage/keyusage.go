package usage

import (
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// KeyBucket is the usage of one relay key on one model within one time
// bucket (see the store's KeyUsageSince): what budgets and `keys list` are
// seeded from.
type KeyBucket struct {
	// KeyHash is as in Record.
	KeyHash string
	Model   string
	// Start is the bucket's start; a bucket covers BucketSize.
	Start time.Time
	provider.Usage
	Requests int64
	// Last is the time of the bucket's latest request.
	Last time.Time
}

// BucketSize is the granularity of KeyBucket: 15 minutes, so a calendar
// day in any time zone (offsets are multiples of 15 minutes) is a whole
// number of buckets.
const BucketSize = 15 * time.Minute
