package cluster

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ccrelay/ccrelay/internal/state"
)

// The event types on the channel.
const (
	evSession  = "s" // a binding set (or, with Del, removed)
	evCooldown = "c" // a cooldown set (or, with Del, cleared)
	evLastUsed = "u" // a batch of last-use times
	evCred     = "k" // an account's credential was saved
)

// event is one change on the channel. Times are milliseconds as strings, so
// the Lua scripts that build some events need no number formatting.
type event struct {
	Origin string           `json:"o"`
	Type   string           `json:"t"`
	Key    string           `json:"k,omitempty"`
	Acct   string           `json:"a,omitempty"`
	Model  string           `json:"m,omitempty"`
	Kind   string           `json:"kind,omitempty"`
	Reason string           `json:"r,omitempty"`
	At     string           `json:"x,omitempty"`
	Del    bool             `json:"d,omitempty"`
	Used   map[string]int64 `json:"l,omitempty"`
	// A binding's last turn (Model is its model): the relay key's name and
	// hash and the turn's time in ms; absent from older relays' events.
	KeyName string `json:"kn,omitempty"`
	KeyHash string `json:"kh,omitempty"`
	Turn    string `json:"tt,omitempty"`
}

func (e event) json() string {
	b, _ := json.Marshal(e)
	return string(b)
}

func (e event) at() time.Time {
	ms, _ := strconv.ParseInt(e.At, 10, 64)
	return time.UnixMilli(ms)
}

func (e event) binding() state.Binding {
	b := state.Binding{Key: e.Key, AccountID: e.Acct, ExpiresAt: e.at(), KeyName: e.KeyName, KeyHash: e.KeyHash, Model: e.Model}
	if ms, err := strconv.ParseInt(e.Turn, 10, 64); err == nil && ms > 0 {
		b.LastTurn = time.UnixMilli(ms)
	}
	return b
}

func (e event) cooldown() state.Cooldown {
	return state.Cooldown{AccountID: e.Acct, Model: e.Model, Kind: e.Kind, Reason: e.Reason, Until: e.at()}
}

func sessionEvent(origin string, b state.Binding, del bool) event {
	e := event{Origin: origin, Type: evSession, Key: b.Key, Acct: b.AccountID, At: strconv.FormatInt(msOf(b.ExpiresAt), 10), Del: del}
	if !del && !b.LastTurn.IsZero() {
		e.KeyName, e.KeyHash, e.Model, e.Turn = b.KeyName, b.KeyHash, b.Model, strconv.FormatInt(b.LastTurn.UnixMilli(), 10)
	}
	return e
}

// sessionArgs are setSessionScript's ARGV for b.
func (c *Cluster) sessionArgs(e event) []any {
	return []any{e.At, e.Acct, c.id, e.Key, e.KeyName, e.KeyHash, e.Model, e.Turn}
}

func cooldownEvent(origin string, c state.Cooldown, del bool) event {
	return event{Origin: origin, Type: evCooldown, Acct: c.AccountID, Model: c.Model, Kind: c.Kind, Reason: c.Reason,
		At: strconv.FormatInt(msOf(c.Until), 10), Del: del}
}

// cooldownValue is what a cooldown key holds.
type cooldownValue struct {
	Kind   string `json:"kind"`
	Reason string `json:"r"`
	Until  string `json:"x"`
}

func encodeCooldown(c state.Cooldown) string {
	b, _ := json.Marshal(cooldownValue{Kind: c.Kind, Reason: c.Reason, Until: strconv.FormatInt(msOf(c.Until), 10)})
	return string(b)
}

func decodeCooldown(acct, model, v string) (state.Cooldown, bool) {
	var cv cooldownValue
	if err := json.Unmarshal([]byte(v), &cv); err != nil {
		return state.Cooldown{}, false
	}
	ms, err := strconv.ParseInt(cv.Until, 10, 64)
	if err != nil {
		return state.Cooldown{}, false
	}
	return state.Cooldown{AccountID: acct, Model: model, Kind: cv.Kind, Reason: cv.Reason, Until: time.UnixMilli(ms)}, true
}

// setSessionScript stores a binding unless the stored one ends later (the
// later binding is the newer one: every bind is now+TTL), and publishes what
// is stored afterwards, so every relay converges on it whatever the order in
// which two relays bound a new conversation.
//
// The event carries the binding's last turn (relay key name and hash,
// model, time) when the stored binding is the one given. The stored value
// stays "<expires ms> <account>", as every relay reads it.
//
// KEYS: session key, channel. ARGV: expires ms, account, origin, session
// key, then optionally key name, key hash, model, last turn ms.
var setSessionScript = redis.NewScript(`
local exp, acct = ARGV[1], ARGV[2]
local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  if sp and tonumber(string.sub(cur, 1, sp - 1)) > tonumber(exp) then
    exp, acct = string.sub(cur, 1, sp - 1), string.sub(cur, sp + 1)
  end
end
if exp == ARGV[1] and acct == ARGV[2] then
  redis.call('SET', KEYS[1], exp .. ' ' .. acct, 'PXAT', exp)
end
local ev = {o = ARGV[3], t = 's', k = ARGV[4], a = acct, x = exp}
if exp == ARGV[1] and acct == ARGV[2] and ARGV[8] and ARGV[8] ~= '' then
  ev.kn, ev.kh, ev.m, ev.tt = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
end
redis.call('PUBLISH', KEYS[2], cjson.encode(ev))
return 1
`)

// mergeCooldownScript stores a cooldown unless the stored one lasts longer
// (resync after an outage: the union of what the relays saw).
//
// KEYS: cooldown key, channel. ARGV: until ms, value JSON, event JSON.
var mergeCooldownScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, v = pcall(cjson.decode, cur)
  if ok and type(v) == 'table' and tonumber(v.x) and tonumber(v.x) >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[1])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 1
`)

// maxLastUsedScript raises last-use times (never lowers them).
//
// KEYS: hash. ARGV: account, ms, account, ms, ...
var maxLastUsedScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if tonumber(ARGV[i + 1]) > cur then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
`)
