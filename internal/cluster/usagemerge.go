package cluster

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Merging: pending sums sealed into chunks, each merged by one script.

// seal sums the pending tuples into the increments of each Redis hash
// (the tuples of one hour add up in its hour hashes, of one day in its day
// hashes) and cuts those into chunks of at most usageChunkFields increments,
// each with its marker id. A chunk never changes once sealed, so a retry
// merges exactly what its first try did.
func (u *UsageShare) seal() {
	if len(u.pending) == 0 {
		return
	}
	c := u.c
	type field struct{ key, group string }
	sums := map[field]*usageSums{}
	expiry := map[string]int64{}
	var keys []string
	var records int64
	byKey := map[string][]fieldInc{}
	for k, s := range u.pending {
		records += s[requestsMeasure]
		for _, gr := range usageGrans {
			bucket := k.minute - k.minute%gr.size
			for i := 0; i < len(gr.dims); i++ {
				key := c.usageKey(gr.g, gr.dims[i], bucket)
				if _, ok := expiry[key]; !ok {
					expiry[key] = (bucket+gr.size)/1000 + int64(gr.ttl/time.Second)
					keys = append(keys, key)
				}
				f := field{key, k.group(gr.dims[i])}
				t := sums[f]
				if t == nil {
					t = new(usageSums)
					sums[f] = t
					byKey[key] = append(byKey[key], fieldInc{f.group, t})
				}
				t.addSums(s)
			}
		}
	}
	var cur *usageChunk
	n := 0
	for _, key := range keys {
		fs := byKey[key]
		for len(fs) > 0 {
			if cur == nil || n >= usageChunkFields {
				u.seq++
				u.chunks = append(u.chunks, usageChunk{seq: u.seq})
				cur, n = &u.chunks[len(u.chunks)-1], 0
			}
			take := min(len(fs), usageChunkFields-n)
			cur.hashes = append(cur.hashes, hashInc{key: key, at: expiry[key], fields: fs[:take]})
			fs, n = fs[take:], n+take
		}
	}
	// The records count as merged with the last chunk.
	if cur != nil {
		cur.records = records
	}
	u.sealed += len(u.pending)
	u.pending = map[usageTuple]*usageSums{}
}

// mergeUsageScript applies one chunk unless this relay merged it (or a
// later one) already.
//
// KEYS: the relay's sequence key, then the hashes. ARGV: the chunk's
// sequence number, the sequence key's TTL (s), then per hash: its expiry
// (Unix s), its number of groups n, and n group/sums pairs (the sums
// comma-separated, added to the group's).
var mergeUsageScript = redis.NewScript(`
if tonumber(ARGV[1]) <= tonumber(redis.call('GET', KEYS[1]) or '0') then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local a = 3
for i = 2, #KEYS do
  local at = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for j = 1, n do
    local f, v = ARGV[a], ARGV[a + 1]
    a = a + 2
    local cur = redis.call('HGET', KEYS[i], f)
    if cur then
      local add = {}
      for x in string.gmatch(v, '[^,]+') do add[#add + 1] = tonumber(x) end
      local out = {}
      for x in string.gmatch(cur, '[^,]+') do
        local k = #out + 1
        out[k] = string.format('%.0f', tonumber(x) + (add[k] or 0))
      end
      for k = #out + 1, #add do out[k] = string.format('%.0f', add[k]) end
      v = table.concat(out, ',')
    end
    redis.call('HSET', KEYS[i], f, v)
  end
  redis.call('EXPIREAT', KEYS[i], at)
end
return 1
`)

// usageKey is the hash of one granularity, grouping and bucket.
func (c *conn) usageKey(gran, dim byte, bucket int64) string {
	return c.prefix + "u:" + string(gran) + ":" + string(dim) + ":" + strconv.FormatInt(bucket, 10)
}

func (c *conn) usageSeqKey() string { return c.prefix + "u:seq:" + c.id }

// usageGrans are the granularities merged: their letter, bucket size, the
// groupings they hold and how long they are kept.
var usageGrans = []struct {
	g    byte
	size int64
	dims string
	ttl  time.Duration
}{
	{'m', minuteMs, "p", minuteBucketTTL},
	{'h', hourMs, "kamps", hourBucketTTL},
	{'d', dayMs, "kamps", dayBucketTTL},
}

// group is a tuple's group value in grouping dim.
func (k usageTuple) group(dim byte) string {
	switch dim {
	case 'k':
		return k.keyHash + " " + k.keyName
	case 'a':
		return k.account
	case 'm':
		return k.model
	case 's':
		return k.served
	}
	return k.platform
}

// write merges one chunk atomically (once, whatever the retries).
func (u *UsageShare) write(ctx context.Context, ch usageChunk) error {
	c := u.c
	keys := make([]string, 0, len(ch.hashes)+1)
	keys = append(keys, c.usageSeqKey())
	args := []any{ch.seq, int64(usageSeqTTL / time.Second)}
	for _, h := range ch.hashes {
		keys = append(keys, h.key)
		args = append(args, h.at, len(h.fields))
		for _, f := range h.fields {
			args = append(args, f.group, f.sums.encode())
		}
	}
	return mergeUsageScript.Run(ctx, c.rdb, keys, args...).Err()
}
