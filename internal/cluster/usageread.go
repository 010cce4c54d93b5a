package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/store"
)

// ErrUsageNotCovered says the cluster's buckets cannot answer a question
// (a series step they do not hold, or a window older than they are kept);
// the relay's own database answers it instead.
var ErrUsageNotCovered = errors.New("not covered by the cluster's usage buckets")

// usageDim is the Redis grouping each store grouping reads.
var usageDim = map[string]byte{
	store.GroupNone: 'p', store.GroupKey: 'k', store.GroupAccount: 'a', store.GroupModel: 'm', store.GroupPlatform: 'p',
	store.GroupServedModel: 's',
}

// servedDim is the grouping by the model served. Relays older than the
// protocol matrix do not merge it: a bucket merged (in part) by one lacks
// requests there, so every read of it is checked against the platform grouping,
// which every relay merges (checkServed).
const servedDim = 's'

// errServedNotMerged says the served-model buckets of a window miss
// requests some relay merged without them.
var errServedNotMerged = fmt.Errorf("%w: some of the window's requests were merged by a relay that does not record the model served (an older version, or before the upgrade)", ErrUsageNotCovered)

// checkServed compares the requests of each bucket of spans in the served
// grouping (served, by bucket start) with the platform grouping's: any
// difference means some relay merged without the served model, and the
// answer would be short.
func (u *UsageShare) checkServed(ctx context.Context, spans []span, served map[int64]int64) error {
	all := map[int64]int64{}
	if err := u.fetch(ctx, 'p', spans, func(b int64, _ string, s *usageSums) { all[b] += s[requestsMeasure] }); err != nil {
		return err
	}
	if len(all) != len(served) {
		return errServedNotMerged
	}
	for b, n := range all {
		if served[b] != n {
			return errServedNotMerged
		}
	}
	return nil
}

// span is a run of buckets of one granularity.
type span struct {
	gran     byte
	size     int64
	from, to int64 // ms, [from, to), multiples of size
}

// plan splits [from, to) (hour-aligned) into hours at the edges and whole
// days between, reading days only when useDays.
func plan(from, to int64, useDays bool) []span {
	if !useDays {
		return []span{{'h', hourMs, from, to}}
	}
	dFrom := from + (dayMs-from%dayMs)%dayMs
	dTo := to - to%dayMs
	if dFrom >= dTo {
		return []span{{'h', hourMs, from, to}}
	}
	var out []span
	if from < dFrom {
		out = append(out, span{'h', hourMs, from, dFrom})
	}
	out = append(out, span{'d', dayMs, dFrom, dTo})
	if dTo < to {
		out = append(out, span{'h', hourMs, dTo, to})
	}
	return out
}

// readable says why the cluster's numbers cannot be read now, or nil.
func (u *UsageShare) readable() error { return u.c.readErr() }

// fetch reads the hashes of grouping dim for each bucket of spans and
// passes every group's sums to add with its bucket start.
func (u *UsageShare) fetch(ctx context.Context, dim byte, spans []span, add func(bucket int64, group string, s *usageSums)) error {
	c := u.c
	type req struct {
		bucket int64
		cmd    *redis.MapStringStringCmd
	}
	var reqs []req
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range spans {
			for b := s.from; b < s.to; b += s.size {
				reqs = append(reqs, req{b, p.HGetAll(ctx, c.usageKey(s.gran, dim, b))})
			}
		}
		return nil
	})
	if err != nil {
		c.noteErr(err)
		return fmt.Errorf("read the cluster's usage: %s", errReason(err))
	}
	for _, r := range reqs {
		for group, v := range r.cmd.Val() {
			if s, ok := decodeSums(v); ok {
				add(r.bucket, group, &s)
			}
		}
	}
	return nil
}

// splitGroup turns a field's group into the two group values GroupUsage
// takes (key name and hash for keys; the value for the others).
func splitGroup(dim byte, by, group string) (g1, g2 string) {
	switch {
	case by == store.GroupNone:
		return "", ""
	case dim == 'k':
		hash, name, _ := strings.Cut(group, " ")
		return name, hash
	}
	return group, ""
}

// usageStart is where the cluster's numbers for a window from since begin:
// since rounded down to the hour while hour buckets are kept for it, else to
// the UTC day; "all" (zero) is as far back as day buckets are kept.
func usageStart(since, now time.Time) (from int64, useDays bool) {
	n := now.UnixMilli()
	oldest := n - n%dayMs - int64(dayBucketTTL/time.Millisecond) + dayMs
	if since.IsZero() {
		return oldest, true
	}
	s := since.UnixMilli()
	if s < oldest {
		s = oldest
	}
	// Hour buckets expire hourBucketTTL after their end; a day's margin.
	if n-s < int64(hourBucketTTL/time.Millisecond)-dayMs {
		return s - s%hourMs, true
	}
	return s - s%dayMs, true
}

// Usage sums the cluster's usage since since (zero: everything kept), by
// grouping by, up to now (the current hour included: it is merged live).
// start is where the sums begin: since rounded down to the hour (to the UTC
// day for a window reaching back more than ~34 days). An error means Redis
// cannot answer now; the relay's own numbers are the fallback.
func (u *UsageShare) Usage(ctx context.Context, since time.Time, by string) (rows []store.UsageRow, start time.Time, err error) {
	dim, ok := usageDim[by]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("unknown usage grouping %q", by)
	}
	if err := u.readable(); err != nil {
		return nil, time.Time{}, err
	}
	now := time.Now()
	from, useDays := usageStart(since, now)
	n := now.UnixMilli()
	to := n - n%hourMs + hourMs
	parts := map[string]*store.UsageRow{}
	spans := plan(from, to, useDays)
	perBucket := map[int64]int64{}
	err = u.fetch(ctx, dim, spans, func(b int64, group string, s *usageSums) {
		perBucket[b] += s[requestsMeasure]
		r := parts[group]
		if r == nil {
			g1, g2 := splitGroup(dim, by, group)
			r = &store.UsageRow{KeyName: g1, KeyHash: g2}
			parts[group] = r
		}
		s.addTo(r)
	})
	if err == nil && dim == servedDim {
		err = u.checkServed(ctx, spans, perBucket)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	list := make([]store.UsageRow, 0, len(parts))
	for _, r := range parts {
		list = append(list, *r)
	}
	return store.GroupUsage(by, list), time.UnixMilli(from), nil
}

// UsageSeries sums the cluster's usage since since into buckets of step
// (aligned to the Unix epoch) by grouping by, up to now. Steps of whole
// hours read hour buckets (day buckets for whole-day steps), kept about 34
// and 400 days; steps of whole minutes under an hour read minute buckets
// (kept 2 days), ungrouped or by platform only. Anything else is
// ErrUsageNotCovered. start is since rounded down to the granularity read.
func (u *UsageShare) UsageSeries(ctx context.Context, since time.Time, step time.Duration, by string) (pts []store.SeriesPoint, start time.Time, err error) {
	dim, ok := usageDim[by]
	if !ok {
		return nil, time.Time{}, fmt.Errorf("unknown usage grouping %q", by)
	}
	stepMs := step.Milliseconds()
	now := time.Now()
	n, s := now.UnixMilli(), since.UnixMilli()
	var spans []span
	switch {
	case since.IsZero() || stepMs <= 0:
		return nil, time.Time{}, ErrUsageNotCovered
	case stepMs%hourMs == 0:
		from := s - s%hourMs
		useDays := stepMs%dayMs == 0
		if n-from >= int64(hourBucketTTL/time.Millisecond)-dayMs {
			if !useDays || n-from >= int64(dayBucketTTL/time.Millisecond)-dayMs {
				return nil, time.Time{}, ErrUsageNotCovered
			}
			from = s - s%dayMs
		}
		spans = plan(from, n-n%hourMs+hourMs, useDays)
	case stepMs%minuteMs == 0 && stepMs < hourMs && (by == store.GroupNone || by == store.GroupPlatform):
		from := s - s%minuteMs
		if n-from >= int64(minuteBucketTTL/time.Millisecond)-hourMs {
			return nil, time.Time{}, ErrUsageNotCovered
		}
		spans = []span{{'m', minuteMs, from, n - n%minuteMs + minuteMs}}
	default:
		return nil, time.Time{}, ErrUsageNotCovered
	}
	if err := u.readable(); err != nil {
		return nil, time.Time{}, err
	}
	type id struct {
		bucket int64
		group  string
	}
	parts := map[id]*store.SeriesPart{}
	perBucket := map[int64]int64{}
	err = u.fetch(ctx, dim, spans, func(b int64, group string, s *usageSums) {
		perBucket[b] += s[requestsMeasure]
		k := id{b - b%stepMs, group}
		p := parts[k]
		if p == nil {
			g1, g2 := splitGroup(dim, by, group)
			p = &store.SeriesPart{Start: k.bucket}
			p.KeyName, p.KeyHash = g1, g2
			parts[k] = p
		}
		s.addTo(&p.UsageRow)
	})
	if err == nil && dim == servedDim {
		err = u.checkServed(ctx, spans, perBucket)
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	list := make([]store.SeriesPart, 0, len(parts))
	for _, p := range parts {
		list = append(list, *p)
	}
	return store.GroupSeries(by, list), time.UnixMilli(spans[0].from), nil
}
