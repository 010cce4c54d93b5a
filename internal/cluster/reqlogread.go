package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/store"
)

// Reading the cluster's request log: XREVRANGE (XRANGE to follow) in pages
// of requestScanPage entries, filtered on the entries' small fields, at most
// requestScanMax entries per question.
const (
	requestScanPage = 500
	// requestScanMax bounds one question's work (about 15 MB read and a
	// few tens of ms); a page not filled by then says so (Stopped).
	requestScanMax = 20_000
	// requestEndSlack is how long after its arrival a request's row may be
	// appended (its run time plus the writer's lag): a list until a time
	// starts reading the stream that much later.
	requestEndSlack = time.Hour
)

// RequestPage is one page of the cluster's request log.
type RequestPage struct {
	// Rows are newest first (oldest first with RequestQuery.After).
	Rows []store.RequestRow
	// Next is the "before" (with After: "after") cursor that continues the
	// read; 0 when the stream holds nothing further.
	Next int64
	// Stopped says the read stopped after requestScanMax entries before
	// filling the page: Next continues it.
	Stopped bool
	// Scanned is how many entries the read looked at.
	Scanned int
}

// seqOf turns a stream entry id ("<ms>-<n>") into a row's Seq: ms<<20 | n,
// ordered as the ids are.
func seqOf(id string) int64 {
	ms, n, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseInt(ms, 10, 64)
	k, _ := strconv.ParseInt(n, 10, 64)
	return m<<20 | min(k, 1<<20-1)
}

// idOf is the stream entry id of a row's Seq.
func idOf(seq int64) string {
	return strconv.FormatInt(seq>>20, 10) + "-" + strconv.FormatInt(seq&(1<<20-1), 10)
}

// readErr says why the cluster's Redis cannot answer now, or nil.
func (c *Cluster) readErr() error {
	c.mu.Lock()
	down, since := c.degraded, c.downSince
	c.mu.Unlock()
	if down {
		return fmt.Errorf("the cluster's redis is unreachable since %s", since.UTC().Format(time.RFC3339))
	}
	return nil
}

// Requests reads the rows q selects from the cluster's stream: newest first
// (oldest first after q.After), filtered by key, account (any attempt),
// model (asked or served), status, errors and arrival time, at most q.Limit
// (default 100, at most store.MaxRequestPage), reading at most
// requestScanMax entries. An error means Redis cannot answer now; the
// relay's own database is the fallback.
func (s *RequestShare) Requests(ctx context.Context, q store.RequestQuery) (RequestPage, error) {
	if err := s.c.readErr(); err != nil {
		return RequestPage{}, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, store.MaxRequestPage)
	if q.After > 0 {
		return s.scan(ctx, q, limit, "("+idOf(q.After), "+", oldestFirst)
	}
	start, end := "+", "-"
	if q.Before > 0 {
		start = "(" + idOf(q.Before)
	}
	if !q.Until.IsZero() {
		if u := q.Until.Add(requestEndSlack).UnixMilli() << 20; q.Before <= 0 || u < q.Before {
			start = idOf(u)
		}
	}
	if !q.From.IsZero() {
		// A row is appended after its request arrived: entries older than
		// From hold only requests that arrived before it.
		end = strconv.FormatInt(q.From.UnixMilli(), 10) + "-0"
	}
	return s.scan(ctx, q, limit, start, end, newestFirst)
}

// The directions of a scan.
const (
	newestFirst = true
	oldestFirst = false
)

// scan reads the stream from start towards end (newest first when rev) in
// pages, keeping the entries q matches until limit rows or the scan bound.
func (s *RequestShare) scan(ctx context.Context, q store.RequestQuery, limit int, start, end string, rev bool) (RequestPage, error) {
	c := s.c
	key := c.requestStreamKey()
	page := RequestPage{Rows: []store.RequestRow{}}
	for {
		var msgs []redis.XMessage
		var err error
		if rev {
			msgs, err = c.rdb.XRevRangeN(ctx, key, start, end, requestScanPage).Result()
		} else {
			msgs, err = c.rdb.XRangeN(ctx, key, start, end, requestScanPage).Result()
		}
		if err != nil {
			c.noteErr(err)
			return RequestPage{}, fmt.Errorf("read the cluster's request log: %s", errReason(err))
		}
		for _, m := range msgs {
			page.Scanned++
			if !entryMatches(m.Values, q) {
				continue
			}
			row, err := entryRow(m)
			if err != nil {
				return RequestPage{}, err
			}
			page.Rows = append(page.Rows, row)
			if len(page.Rows) == limit {
				page.Next = row.Seq
				return page, nil
			}
		}
		if len(msgs) < requestScanPage {
			return page, nil
		}
		last := msgs[len(msgs)-1].ID
		start = "(" + last
		if page.Scanned >= requestScanMax {
			page.Stopped, page.Next = true, seqOf(last)
			return page, nil
		}
	}
}

// entryMatches applies q's filters to an entry's small fields.
func entryMatches(v map[string]any, q store.RequestQuery) bool {
	str := func(k string) string { s, _ := v[k].(string); return s }
	num := func(k string) int64 { n, _ := strconv.ParseInt(str(k), 10, 64); return n }
	switch {
	case q.Key != "" && str("k") != q.Key:
		return false
	case q.Model != "" && str("m") != q.Model && str("s") != q.Model:
		return false
	case q.Status != 0 && num("st") != int64(q.Status):
		return false
	case q.Errors && num("st") < 400:
		return false
	case !q.From.IsZero() && num("t") < q.From.UnixMilli():
		return false
	case !q.Until.IsZero() && num("t") >= q.Until.UnixMilli():
		return false
	case q.Account != "":
		for _, a := range strings.Split(str("a"), "\n") {
			if a == q.Account {
				return true
			}
		}
		return false
	}
	return true
}

// entryRow decodes an entry's row, its Seq from the entry id and its Relay
// from the entry.
func entryRow(m redis.XMessage) (store.RequestRow, error) {
	var row store.RequestRow
	j, _ := m.Values["j"].(string)
	if err := json.Unmarshal([]byte(j), &row); err != nil {
		return row, fmt.Errorf("read the cluster's request log: entry %s: %w", m.ID, err)
	}
	row.Seq = seqOf(m.ID)
	row.Relay, _ = m.Values["r"].(string)
	if row.Attempts == nil {
		row.Attempts = []store.AttemptRow{}
	}
	return row, nil
}

// Request reads one row by its request id from the cluster's stream; its
// Relay is the relay that served it (and holds any captured bodies).
// store.ErrNoRow when the stream does not hold it (never recorded through
// Redis, or trimmed); any other error means Redis cannot answer now.
func (s *RequestShare) Request(ctx context.Context, id string) (store.RequestRow, error) {
	c := s.c
	if err := c.readErr(); err != nil {
		return store.RequestRow{}, err
	}
	eid, err := c.rdb.Get(ctx, c.requestIDKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return store.RequestRow{}, store.ErrNoRow
	}
	if err != nil {
		c.noteErr(err)
		return store.RequestRow{}, fmt.Errorf("read the cluster's request log: %s", errReason(err))
	}
	msgs, err := c.rdb.XRangeN(ctx, c.requestStreamKey(), eid, eid, 1).Result()
	if err != nil {
		c.noteErr(err)
		return store.RequestRow{}, fmt.Errorf("read the cluster's request log: %s", errReason(err))
	}
	if len(msgs) == 0 {
		return store.RequestRow{}, store.ErrNoRow
	}
	return entryRow(msgs[0])
}
