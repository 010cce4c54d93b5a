package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/reqlog"
)

// The cluster's body captures: a capture started through any relay's admin
// API is kept in Redis, and every relay reads the set (each
// app.CapturePollInterval) and applies it. Captured bodies stay on the
// relay that took them (the request log's bodies_on names it); each relay
// writes how many it took, so any relay lists every relay's counts.
//
// Keys (P is key_prefix):
//
//	P capture:seq       counter: the cluster's capture ids are CaptureIDBase + INCR
//	P captures          hash id -> the capture's JSON (key names and account
//	                    ids, never a key's value); a field is removed by the
//	                    first read after its bodies expire (Until + Keep), the
//	                    hash itself expires with its longest-kept capture
//	P capture:<id>:n    hash relay -> requests that relay captured; expires
//	                    with the capture's bodies

// CaptureIDBase is added to the cluster's capture ids, so they never meet
// the ids of a relay's own database (`ccrelay capture on` without --server
// writes there; SQLite counts from 1): a request log row's capture id, and
// the capture stopped by id, are never ambiguous.
const CaptureIDBase = 1_000_000_000

// maxStopTries bounds the optimistic retries of a stop that raced another
// change of the captures.
const maxStopTries = 5

func (c *conn) capturesKey() string { return c.prefix + "captures" }

func (c *conn) captureSeqKey() string { return c.prefix + "capture:seq" }

func (c *conn) captureCountKey(id int64) string {
	return c.prefix + "capture:" + strconv.FormatInt(id, 10) + ":n"
}

// sharedCapture is a capture as Redis holds it: Keep in milliseconds (the
// JSON's keep_seconds would round it), no counts.
type sharedCapture struct {
	reqlog.Capture
	KeepMs int64 `json:"keep_ms"`
}

func encodeCapture(c reqlog.Capture) ([]byte, error) {
	c.Captured, c.CapturedBy, c.LocalTo = 0, nil, ""
	b, err := json.Marshal(sharedCapture{Capture: c, KeepMs: c.Keep.Milliseconds()})
	if err != nil {
		return nil, fmt.Errorf("encode capture %d: %w", c.ID, err)
	}
	return b, nil
}

func decodeCapture(raw string) (reqlog.Capture, error) {
	var s sharedCapture
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return reqlog.Capture{}, fmt.Errorf("decode a shared capture: %w", err)
	}
	c := s.Capture
	c.Keep = time.Duration(s.KeepMs) * time.Millisecond
	c.KeepSeconds = int64(c.Keep / time.Second)
	return c, nil
}

// AddCapture stores c as a capture of the whole cluster and returns it with
// its id (unique across the relays).
func (c *conn) AddCapture(ctx context.Context, cp reqlog.Capture) (reqlog.Capture, error) {
	n, err := c.rdb.Incr(ctx, c.captureSeqKey()).Result()
	if err != nil {
		return cp, fmt.Errorf("number the cluster's capture: %w", err)
	}
	cp.ID = CaptureIDBase + n
	raw, err := encodeCapture(cp)
	if err != nil {
		return cp, err
	}
	key := c.capturesKey()
	expires := cp.Expires().UnixMilli()
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, strconv.FormatInt(cp.ID, 10), raw)
		// NX gives the new hash an expiry, GT lengthens an existing one.
		p.Do(ctx, "PEXPIREAT", key, expires, "NX")
		p.Do(ctx, "PEXPIREAT", key, expires, "GT")
		return nil
	})
	if err != nil {
		return cp, fmt.Errorf("save the cluster's capture: %w", err)
	}
	return cp, nil
}

// StopCapture ends the cluster's capture id at now; false when there is no
// such capture still running.
func (c *conn) StopCapture(ctx context.Context, id int64, now time.Time) (bool, error) {
	key, field := c.capturesKey(), strconv.FormatInt(id, 10)
	stopped := false
	stop := func(tx *redis.Tx) error {
		raw, err := tx.HGet(ctx, key, field).Result()
		if errors.Is(err, redis.Nil) {
			return nil
		}
		if err != nil {
			return err
		}
		cp, err := decodeCapture(raw)
		if err != nil || !cp.Active(now) {
			return err
		}
		cp.Stopped = true
		cp.Until = minTime(cp.Until, now)
		b, err := encodeCapture(cp)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, key, field, b)
			return nil
		})
		stopped = err == nil
		return err
	}
	for range maxStopTries {
		err := c.rdb.Watch(ctx, stop, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("stop the cluster's capture %d: %w", id, err)
		}
		return stopped, nil
	}
	return false, fmt.Errorf("stop the cluster's capture %d: the captures kept changing", id)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Captures lists the cluster's captures whose bodies are still kept at now,
// newest first, each with how many requests every relay captured
// (CapturedBy, as each relay last wrote it) and their sum (Captured).
// Captures whose bodies expired are removed.
func (c *conn) Captures(ctx context.Context, now time.Time) ([]reqlog.Capture, error) {
	key := c.capturesKey()
	all, err := c.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("read the cluster's captures: %w", err)
	}
	out := []reqlog.Capture{}
	var gone []string
	for field, raw := range all {
		cp, err := decodeCapture(raw)
		if err != nil || !now.Before(cp.Expires()) {
			gone = append(gone, field) // unreadable or expired: nobody applies it
			continue
		}
		out = append(out, cp)
	}
	slices.SortFunc(out, func(x, y reqlog.Capture) int { return cmp.Compare(y.ID, x.ID) })
	counts := make([]*redis.MapStringStringCmd, len(out))
	_, err = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		if len(gone) > 0 {
			p.HDel(ctx, key, gone...)
		}
		for i := range out {
			counts[i] = p.HGetAll(ctx, c.captureCountKey(out[i].ID))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the cluster's capture counts: %w", err)
	}
	for i, cmd := range counts {
		for relay, v := range cmd.Val() {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			if out[i].CapturedBy == nil {
				out[i].CapturedBy = map[string]int64{}
			}
			out[i].CapturedBy[relay] = n
			out[i].Captured += n
		}
	}
	return out, nil
}

// ReportCaptured writes how many requests this relay captured for each of
// the cluster's captures in list (their Captured), so every relay lists
// them; each count expires with its capture's bodies.
func (c *conn) ReportCaptured(ctx context.Context, list []reqlog.Capture) error {
	if len(list) == 0 {
		return nil
	}
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, cp := range list {
			k := c.captureCountKey(cp.ID)
			p.HSet(ctx, k, c.id, cp.Captured)
			p.PExpireAt(ctx, k, cp.Expires())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write this relay's capture counts: %w", err)
	}
	return nil
}
