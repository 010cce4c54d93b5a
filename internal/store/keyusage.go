package store

import (
	"context"
	"time"

	"github.com/ccrelay/ccrelay/internal/usage"
)

// KeyUsageSince sums usage per relay key, model and 15-minute bucket since
// t: enough to rebuild any key's calendar-day, -week and -month totals in
// its own time zone. Successful and failed requests alike (a failed
// request's tokens were spent too).
func (db *DB) KeyUsageSince(ctx context.Context, since time.Time) ([]usage.KeyBucket, error) {
	const bucket = int64(usage.BucketSize / time.Millisecond)
	rows, err := db.conn().QueryContext(ctx, `SELECT client_api_key_hash, model, (ts_ms / ?) * ?, COUNT(*), MAX(ts_ms),
		SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), SUM(cache_read_tokens)
		FROM usage_stats WHERE ts_ms >= ? GROUP BY 1, 2, 3`, bucket, bucket, since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []usage.KeyBucket
	for rows.Next() {
		var b usage.KeyBucket
		var start, last int64
		if err := rows.Scan(&b.KeyHash, &b.Model, &start, &b.Requests, &last, &b.InputTokens, &b.OutputTokens, &b.CacheCreationTokens, &b.CacheReadTokens); err != nil {
			return nil, err
		}
		b.Start, b.Last = time.UnixMilli(start), time.UnixMilli(last)
		out = append(out, b)
	}
	return out, rows.Err()
}
