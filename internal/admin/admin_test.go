package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/quota"
	"github.com/ccrelay/ccrelay/internal/reload"
	"github.com/ccrelay/ccrelay/internal/scheduler"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

const (
	adminKey = "admin-key-0123456789abcdef"
	relayKey = "relay-key-0123456789abcdef"
)

type fixture struct {
	api   *API
	sched *scheduler.Scheduler
	db    *store.DB
	srv   *httptest.Server
	auth  *Auth
}

func newFixture(t *testing.T, mod func(*Options)) *fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	accts := []*scheduler.Account{
		{ID: "a", Name: "Account A", Type: "claude-api", Platform: "claude", Priority: 100, Enabled: true},
		{ID: "b", Name: "Account B", Type: "claude-api", Platform: "claude", Priority: 50, Enabled: true},
		{ID: "off", Name: "Off", Type: "gemini", Platform: "gemini", Priority: 100, Enabled: false},
	}
	s := scheduler.New(accts, scheduler.Options{StickyTTL: time.Hour, ErrorCooldown: time.Minute, RateLimitCooldown: time.Minute, OverloadCooldown: time.Minute, MaxRateLimitHint: time.Hour}, db, nil)
	t.Cleanup(s.Close)
	auth := NewAuth([]string{adminKey}, []string{relayKey})
	o := Options{Auth: auth, Sched: s, State: db, Usage: db, RelayKeys: []string{relayKey}, KeyLabel: usage.KeyLabels([]string{relayKey}),
		Health: func() any { return map[string]any{"status": "ok", "in_flight": 2} }}
	if mod != nil {
		mod(&o)
	}
	api := New(o)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &fixture{api: api, sched: s, db: db, srv: srv, auth: auth}
}

func (f *fixture) do(t *testing.T, method, path, body string, hdr ...string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if len(hdr) == 0 {
		hdr = []string{"Authorization", "Bearer " + adminKey}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func TestAuth(t *testing.T) {
	f := newFixture(t, nil)
	form := httptest.NewRequest("POST", "/dashboard/login", nil)
	sid, csrf, err := f.auth.SignIn(form, adminKey)
	if err != nil {
		t.Fatalf("sign-in with the admin key refused: %v", err)
	}
	if _, _, err := f.auth.SignIn(form, relayKey); !errors.Is(err, ErrRelayKey) {
		t.Fatalf("sign-in with a relay key: %v", err)
	}
	cookie := Cookie + "=" + sid
	tests := []struct {
		name   string
		method string
		hdr    []string
		want   int
	}{
		{"no key", "GET", []string{"X-None", ""}, 401},
		{"wrong key", "GET", []string{"Authorization", "Bearer wrong-key-0123456789"}, 401},
		{"relay key", "GET", []string{"Authorization", "Bearer " + relayKey}, 403},
		{"relay key as x-api-key", "GET", []string{"X-Api-Key", relayKey}, 403},
		{"admin bearer", "GET", []string{"Authorization", "Bearer " + adminKey}, 200},
		{"admin x-api-key", "GET", []string{"X-Api-Key", adminKey}, 200},
		{"admin key, POST without CSRF", "POST", []string{"Authorization", "Bearer " + adminKey}, 200},
		{"session cookie read", "GET", []string{"Cookie", cookie}, 200},
		{"session cookie, POST without CSRF", "POST", []string{"Cookie", cookie}, 403},
		{"session cookie, POST with wrong CSRF", "POST", []string{"Cookie", cookie, CSRFHeader, "nope"}, 403},
		{"session cookie, POST with CSRF", "POST", []string{"Cookie", cookie, CSRFHeader, csrf}, 200},
		{"unknown session", "GET", []string{"Cookie", Cookie + "=forged"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/admin/v1/accounts"
			if tt.method == "POST" {
				path = "/admin/v1/accounts/a/reset"
			}
			code, body := f.do(t, tt.method, path, "", tt.hdr...)
			if code != tt.want {
				t.Fatalf("status %d, want %d: %s", code, tt.want, body)
			}
			if strings.Contains(string(body), adminKey) || strings.Contains(string(body), relayKey) {
				t.Fatalf("a key in the answer: %s", body)
			}
		})
	}
}

func TestOffWithoutAdminKeys(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Auth = NewAuth(nil, []string{relayKey}) })
	for _, hdr := range [][]string{{"Authorization", "Bearer " + relayKey}, {"Authorization", "Bearer anything-at-all-here"}} {
		if code, body := f.do(t, "GET", "/admin/v1/accounts", "", hdr...); code != 404 {
			t.Fatalf("status %d with no admin keys: %s", code, body)
		}
	}
}

func TestAccountsResetDisableEnable(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Quota = quotaFunc(func(id string) (quota.Snapshot, bool) {
			if id != "a" {
				return quota.Snapshot{}, false
			}
			return quota.Snapshot{Source: quota.SourceClaude, Windows: []quota.Window{{Name: "5h", Utilization: 0.42, Minutes: 300}}, SeenAt: time.Now()}, true
		})
	})
	ctx := context.Background()
	if err := f.db.InsertUsage(ctx, []usage.Record{
		{Time: time.Now(), KeyHash: usage.HashKey(relayKey), AccountID: "a", Platform: "claude", Model: "m", Status: 200, Usage: provider.Usage{InputTokens: 12, OutputTokens: 7}},
		{Time: time.Now(), KeyHash: usage.HashKey(relayKey), AccountID: "a", Platform: "claude", Model: "m", Status: 500},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sched.Pick("claude", "m", "", nil); err != nil {
		t.Fatal(err)
	}
	f.sched.Report("a", provider.Verdict{Kind: provider.RateLimited, Reason: "429 from upstream"})

	accounts := func() map[string]Account {
		code, body := f.do(t, "GET", "/admin/v1/accounts", "")
		if code != 200 {
			t.Fatalf("accounts: %d %s", code, body)
		}
		out := map[string]Account{}
		for _, a := range decode[AccountsResponse](t, body).Accounts {
			out[a.ID] = a
		}
		return out
	}
	got := accounts()
	a := got["a"]
	if a.State != StateCoolingDown || len(a.Cooldowns) != 1 || a.Cooldowns[0].Kind != provider.RateLimited.String() ||
		a.LastError == nil || a.LastError.Reason != "429 from upstream" || a.LastUsed == nil ||
		a.Today.Requests != 2 || a.Today.Errors != 1 || a.Today.InputTokens != 12 || a.Quota == nil || a.Quota.Source != quota.SourceClaude || len(a.Quota.Windows) != 1 || a.Quota.Windows[0].Utilization != 0.42 || a.Quota.Windows[0].Minutes != 300 {
		t.Fatalf("account a: %+v", a)
	}
	if got["b"].State != StateReady || got["off"].State != StateDisabled || got["b"].Quota != nil || got["b"].Cooldowns == nil {
		t.Fatalf("b %+v off %+v", got["b"], got["off"])
	}

	code, body := f.do(t, "POST", "/admin/v1/accounts/a/reset", "")
	if code != 200 || decode[ResetResponse](t, body).Cleared != 1 || accounts()["a"].State != StateReady {
		t.Fatalf("reset: %d %s", code, body)
	}
	code, body = f.do(t, "POST", "/admin/v1/accounts/b/disable", "")
	if r := decode[DisableResponse](t, body); code != 200 || !r.Disabled || !r.Persisted {
		t.Fatalf("disable: %d %s", code, body)
	}
	if b := accounts()["b"]; b.State != StateDisabled || !b.Disabled {
		t.Fatalf("b after disable: %+v", b)
	}
	if d, _ := f.db.DisabledAccounts(ctx); !d["b"] {
		t.Fatal("disable not persisted")
	}
	if acct, err := f.sched.Pick("claude", "m", "", []string{"a"}); err == nil {
		t.Fatalf("picked %s while b is disabled and a excluded", acct.ID)
	}
	if code, body := f.do(t, "POST", "/admin/v1/accounts/b/enable", ""); code != 200 || accounts()["b"].State != StateReady {
		t.Fatalf("enable: %d %s", code, body)
	}
	if d, _ := f.db.DisabledAccounts(ctx); d["b"] {
		t.Fatal("enable not persisted")
	}
	if code, _ := f.do(t, "POST", "/admin/v1/accounts/nope/disable", ""); code != 404 {
		t.Fatalf("unknown account: %d", code)
	}
	if code, _ := f.do(t, "GET", "/admin/v1/accounts/a/reset", ""); code == 200 {
		t.Fatalf("GET on an action: %d", code)
	}
}

type quotaFunc func(string) (quota.Snapshot, bool)

func (q quotaFunc) Snapshot(id string) (quota.Snapshot, bool) { return q(id) }

func TestSessions(t *testing.T) {
	f := newFixture(t, nil)
	for _, k := range []string{"s1", "s2", "s3"} {
		if _, err := f.sched.Pick("claude", "m", k, nil); err != nil {
			t.Fatal(err)
		}
	}
	f.sched.Close() // flush the bindings to the database
	code, body := f.do(t, "GET", "/admin/v1/sessions", "")
	if ss := decode[SessionsResponse](t, body).Sessions; code != 200 || len(ss) != 3 {
		t.Fatalf("sessions: %d %s", code, body)
	}
	code, body = f.do(t, "POST", "/admin/v1/sessions/clear", `{"key":"s1"}`)
	if code != 200 || decode[ClearResponse](t, body).Removed != 1 {
		t.Fatalf("clear one: %d %s", code, body)
	}
	if code, body := f.do(t, "POST", "/admin/v1/sessions/clear", `{"key":"s2","account":"a"}`); code != 400 {
		t.Fatalf("key and account: %d %s", code, body)
	}
	if code, body := f.do(t, "POST", "/admin/v1/sessions/clear", `{`); code != 400 {
		t.Fatalf("bad JSON: %d %s", code, body)
	}
	code, body = f.do(t, "POST", "/admin/v1/sessions/clear", "")
	if code != 200 || decode[ClearResponse](t, body).Removed != 2 {
		t.Fatalf("clear all: %d %s", code, body)
	}
	if saved, _ := f.db.Sessions(context.Background(), time.Now()); len(saved) != 0 {
		t.Fatalf("saved sessions left: %v", saved)
	}
	if _, body := f.do(t, "GET", "/admin/v1/sessions", ""); len(decode[SessionsResponse](t, body).Sessions) != 0 {
		t.Fatalf("sessions after clear: %s", body)
	}
}

func TestKeysWithoutNamedKeys(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.db.InsertUsage(context.Background(), []usage.Record{{Time: time.Now(), KeyHash: usage.HashKey(relayKey), AccountID: "a", Status: 200, Usage: provider.Usage{InputTokens: 5, OutputTokens: 3}}}); err != nil {
		t.Fatal(err)
	}
	code, body := f.do(t, "GET", "/admin/v1/keys", "")
	r := decode[KeysResponse](t, body)
	if code != 200 || r.Named || len(r.Keys) != 1 || r.Keys[0].Name != "api_keys[0]" || r.Keys[0].Last4 != "cdef" || r.Keys[0].Today.Requests != 1 || r.Keys[0].Today.OutputTokens != 3 {
		t.Fatalf("keys: %d %s", code, body)
	}
	if strings.Contains(string(body), relayKey) {
		t.Fatal("the key's value is in the answer")
	}
}

type keysFunc func() []Key

func (k keysFunc) Keys(context.Context) ([]Key, error) { return k(), nil }

func TestKeysWired(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Keys = keysFunc(func() []Key {
			return []Key{{Name: "alice", Last4: "wxyz", Budgets: []Budget{{Window: "daily", Unit: "usd", Limit: 5, Used: 4}}}}
		})
	})
	_, body := f.do(t, "GET", "/admin/v1/keys", "")
	if r := decode[KeysResponse](t, body); !r.Named || r.Keys[0].Name != "alice" || r.Keys[0].Budgets[0].Used != 4 {
		t.Fatalf("keys: %s", body)
	}
}

func TestUsageAndSeries(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	var recs []usage.Record
	for i := range 5 {
		recs = append(recs, usage.Record{Time: now.Add(-time.Duration(i) * time.Minute), KeyHash: usage.HashKey(relayKey), AccountID: "a", Platform: "claude", Model: "m1", Status: 200,
			Usage: provider.Usage{InputTokens: 10, OutputTokens: 1}, Latency: 10 * time.Millisecond})
	}
	recs = append(recs, usage.Record{Time: now, KeyHash: usage.Anonymous, AccountID: "b", Platform: "claude", Model: "m2", Status: 429})
	if err := f.db.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	code, body := f.do(t, "GET", "/admin/v1/usage?since=1h&by=key", "")
	rep := decode[UsageReport](t, body)
	if code != 200 || rep.Total.Requests != 6 || rep.Total.Errors != 1 || len(rep.Groups) != 2 || rep.Groups[0].Name != "api_keys[0]" ||
		rep.Groups[0].KeyHash != usage.HashKey(relayKey) || rep.Groups[0].InputTokens != 50 || rep.Groups[1].Name != usage.Anonymous || rep.Since == nil {
		t.Fatalf("usage: %d %s", code, body)
	}
	want, _ := f.db.Usage(context.Background(), store.UsageQuery{From: now.Add(-time.Hour)})
	if rep.Total.Requests != want[0].Requests || rep.Total.InputTokens != want[0].InputTokens {
		t.Fatalf("total %+v, store says %+v", rep.Total.UsageRow, want[0])
	}
	code, body = f.do(t, "GET", "/admin/v1/usage/series?since=1h&step=1h&by=model", "")
	sr := decode[SeriesResponse](t, body)
	var m1 int64
	for _, p := range sr.Points {
		if p.Group == "m1" {
			m1 += p.Requests
		}
	}
	if code != 200 || sr.StepSeconds != 3600 || m1 != 5 {
		t.Fatalf("series: %d %s", code, body)
	}
	for _, bad := range []string{"usage?by=bogus", "usage?since=yesterday", "usage/series?since=all", "usage/series?since=30d&step=1s", "usage/series?step=0"} {
		if code, body := f.do(t, "GET", "/admin/v1/"+bad, ""); code != 400 {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}

// A request asked as one model and served as another counts under the model
// asked by model and under the model served by served_model, in the usage
// report and its series; cost follows the served model's record.
func TestUsageByServedModel(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	recs := []usage.Record{
		{Time: now, KeyHash: usage.Anonymous, AccountID: "oa", Platform: "openai", Model: "claude-sonnet-4", ServedModel: "gpt-5-codex", Status: 200,
			CostKnown: true, CostMicros: 30},
		{Time: now, KeyHash: usage.Anonymous, AccountID: "oa", Platform: "openai", Model: "claude-sonnet-4", ServedModel: "gpt-5-codex", Status: 200,
			CostKnown: true, CostMicros: 30},
		{Time: now, KeyHash: usage.Anonymous, AccountID: "ca", Platform: "claude", Model: "claude-sonnet-4", Status: 200, CostKnown: true, CostMicros: 100},
	}
	if err := f.db.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	names := func(rep UsageReport) map[string][2]int64 {
		out := map[string][2]int64{}
		for _, g := range rep.Groups {
			out[g.Name] = [2]int64{g.Requests, g.CostMicros}
		}
		return out
	}
	code, body := f.do(t, "GET", "/admin/v1/usage?since=1h&by=served_model", "")
	rep := decode[UsageReport](t, body)
	if want := map[string][2]int64{"gpt-5-codex": {2, 60}, "claude-sonnet-4": {1, 100}}; code != 200 || rep.By != store.GroupServedModel || !reflect.DeepEqual(names(rep), want) {
		t.Fatalf("by served_model: %d %s", code, body)
	}
	_, body = f.do(t, "GET", "/admin/v1/usage?since=1h&by=model", "")
	if want := map[string][2]int64{"claude-sonnet-4": {3, 160}}; !reflect.DeepEqual(names(decode[UsageReport](t, body)), want) {
		t.Fatalf("by model: %s", body)
	}
	code, body = f.do(t, "GET", "/admin/v1/usage/series?since=1h&step=1h&by=served_model", "")
	served := map[string]int64{}
	for _, p := range decode[SeriesResponse](t, body).Points {
		served[p.Group] += p.Requests
	}
	if want := map[string]int64{"gpt-5-codex": 2, "claude-sonnet-4": 1}; code != 200 || !reflect.DeepEqual(served, want) {
		t.Fatalf("series by served_model: %d %s", code, body)
	}
}

// fakeCluster answers usage as a cluster would, or fails with err.
type fakeCluster struct {
	rows      []store.UsageRow // by key
	byAccount []store.UsageRow
	pts       []store.SeriesPoint
	start     time.Time
	err       error
}

func (c fakeCluster) Usage(_ context.Context, _ time.Time, by string) ([]store.UsageRow, time.Time, error) {
	if by == store.GroupAccount {
		return c.byAccount, c.start, c.err
	}
	return c.rows, c.start, c.err
}

func (c fakeCluster) UsageSeries(context.Context, time.Time, time.Duration, string) ([]store.SeriesPoint, time.Time, error) {
	return c.pts, c.start, c.err
}

// On a cluster relay the usage and its series come from the cluster and
// say so; when the cluster cannot answer they come from the relay's own
// database, with the reason. A relay without a cluster says it has none.
func TestUsageScope(t *testing.T) {
	start := time.Now().Add(-time.Hour).Truncate(time.Hour)
	cl := fakeCluster{start: start,
		rows:      []store.UsageRow{{Group: "alice", KeyName: "alice", KeyHash: "h1", Requests: 40}, {Group: "h2", KeyHash: "h2", Requests: 2}, {Group: "r", KeyHash: usage.HashKey(relayKey), Requests: 5}},
		byAccount: []store.UsageRow{{Group: "a", Requests: 30, InputTokens: 7}},
		pts:       []store.SeriesPoint{{Start: start, Group: "alice", Requests: 40}, {Start: start, KeyHash: usage.HashKey(relayKey), Requests: 2}}}
	f := newFixture(t, func(o *Options) { o.Cluster = cl })
	if err := f.db.InsertUsage(context.Background(), []usage.Record{{Time: time.Now(), KeyHash: "h9", AccountID: "a", Status: 200}}); err != nil {
		t.Fatal(err)
	}
	_, body := f.do(t, "GET", "/admin/v1/usage?since=30m&by=key", "")
	rep := decode[UsageReport](t, body)
	if rep.Scope != store.ScopeCluster || rep.ScopeReason != "" || rep.Total.Requests != 47 || len(rep.Groups) != 3 ||
		rep.Groups[0].Name != "alice" || rep.Groups[1].Name != "h2" || rep.Groups[2].Name != "api_keys[0]" || rep.Since == nil || !rep.Since.Equal(start) {
		t.Fatalf("cluster usage: %s", body)
	}
	// Today's numbers of accounts and keys are the cluster's too.
	_, body = f.do(t, "GET", "/admin/v1/accounts", "")
	if ar := decode[AccountsResponse](t, body); ar.TodayScope != store.ScopeCluster || ar.Accounts[0].ID != "a" || ar.Accounts[0].Today.Requests != 30 || ar.Accounts[0].Today.InputTokens != 7 {
		t.Fatalf("cluster accounts: %s", body)
	}
	_, body = f.do(t, "GET", "/admin/v1/keys", "")
	if kr := decode[KeysResponse](t, body); len(kr.Keys) != 1 || kr.Keys[0].Today.Requests != 5 {
		t.Fatalf("cluster keys: %s", body)
	}
	_, body = f.do(t, "GET", "/admin/v1/usage/series?since=2h&step=1h&by=key", "")
	sr := decode[SeriesResponse](t, body)
	if sr.Scope != store.ScopeCluster || len(sr.Points) != 2 || sr.Points[1].Group != "api_keys[0]" || !sr.Since.Equal(start) {
		t.Fatalf("cluster series: %s", body)
	}

	f = newFixture(t, func(o *Options) {
		o.Cluster = fakeCluster{err: errors.New("the cluster's redis is unreachable since 2026-12-02T10:00:00Z")}
	})
	if err := f.db.InsertUsage(context.Background(), []usage.Record{{Time: time.Now(), KeyHash: "h9", AccountID: "a", Status: 200}}); err != nil {
		t.Fatal(err)
	}
	_, body = f.do(t, "GET", "/admin/v1/accounts", "")
	if ar := decode[AccountsResponse](t, body); ar.TodayScope != store.ScopeLocal || ar.Accounts[0].Today.Requests != 1 {
		t.Fatalf("accounts with redis down: %s", body)
	}
	for _, path := range []string{"usage?since=1h", "usage/series?since=1h&step=1m"} {
		_, body = f.do(t, "GET", "/admin/v1/"+path, "")
		var got struct {
			Scope       string `json:"scope"`
			ScopeReason string `json:"scope_reason"`
			Total       struct{ Requests int64 }
			Points      []store.SeriesPoint
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		n := got.Total.Requests
		for _, p := range got.Points {
			n += p.Requests
		}
		if got.Scope != store.ScopeLocal || !strings.Contains(got.ScopeReason, "unreachable") || !strings.Contains(got.ScopeReason, "this relay's own") || n != 1 {
			t.Fatalf("%s with redis down: %s", path, body)
		}
	}

	f = newFixture(t, nil)
	_, body = f.do(t, "GET", "/admin/v1/usage", "")
	if rep := decode[UsageReport](t, body); rep.Scope != store.ScopeLocal || rep.ScopeReason != ReasonNoCluster {
		t.Fatalf("no cluster: %s", body)
	}
}

type reloadFunc func() error

func (r reloadFunc) Reload(context.Context) error { return r() }

func TestReload(t *testing.T) {
	f := newFixture(t, nil)
	if code, body := f.do(t, "POST", "/admin/v1/reload", ""); code != 501 || !strings.Contains(string(body), "not available") {
		t.Fatalf("unwired reload: %d %s", code, body)
	}
	fail := true
	f = newFixture(t, func(o *Options) {
		o.Reload = reloadFunc(func() error {
			if fail {
				return errors.New("line 3: server.port must be a number")
			}
			return nil
		})
	})
	if code, body := f.do(t, "POST", "/admin/v1/reload", ""); code != 422 || !strings.Contains(string(body), "line 3") {
		t.Fatalf("refused reload: %d %s", code, body)
	}
	fail = false
	if code, body := f.do(t, "POST", "/admin/v1/reload", ""); code != 200 || decode[ReloadResponse](t, body) != (ReloadResponse{Reloaded: true, Status: ReloadApplied}) {
		t.Fatalf("reload: %d %s", code, body)
	}
	// A file that holds the config in force is no refusal.
	f = newFixture(t, func(o *Options) {
		o.Reload = reloadFunc(func() error { return fmt.Errorf("reload: %w", reload.ErrUnchanged) })
	})
	if code, body := f.do(t, "POST", "/admin/v1/reload", ""); code != 200 || decode[ReloadResponse](t, body) != (ReloadResponse{Status: ReloadUnchanged}) {
		t.Fatalf("unchanged reload: %d %s", code, body)
	}
}

func TestHealth(t *testing.T) {
	f := newFixture(t, nil)
	f.sched.Report("a", provider.Verdict{Kind: provider.TokenInvalid, Reason: "invalid_grant"})
	f.sched.Report("b", provider.Verdict{Kind: provider.Overloaded})
	code, body := f.do(t, "GET", "/admin/v1/health", "")
	h := decode[Health](t, body)
	if code != 200 || h.Accounts[StateTokenInvalid] != 1 || h.Accounts[StateCoolingDown] != 1 || h.Accounts[StateDisabled] != 1 || h.Accounts[StateReady] != 0 ||
		h.Platforms["claude"][StateCoolingDown] != 1 || h.Relay.(map[string]any)["status"] != "ok" || h.ReloadWired || h.Config != nil {
		t.Fatalf("health: %d %s", code, body)
	}
}

func TestUnknownRoute(t *testing.T) {
	f := newFixture(t, nil)
	code, body := f.do(t, "GET", "/admin/v1/nope", "")
	if code != 404 || decode[ErrorBody](t, body).Error.Code != 404 {
		t.Fatalf("%d %s", code, body)
	}
}

// swappableKeys are keys a test replaces, as a config reload does.
type swappableKeys struct {
	mu           sync.Mutex
	admin, relay []string
}

func (k *swappableKeys) set(admin, relay []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.admin, k.relay = admin, relay
}

func (k *swappableKeys) AdminKeys() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.admin
}

func (k *swappableKeys) IsRelayKey(key string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return StaticKeys{Relay: k.relay}.IsRelayKey(key)
}

// The keys are asked on every request: after a reload replaces an admin
// key, the old one is a wrong key (401, counted), the new one works at
// once, and dashboard sessions signed in with the old key end while those
// of a key still in force go on. Removing every admin key turns the API
// off; a relay key added by the reload is 403 at once.
func TestAuthFollowsReloadedKeys(t *testing.T) {
	const oldKey, newKey, keptKey = "old-admin-key-0123456789", "new-admin-key-0123456789", "kept-admin-key-0123456789"
	keys := &swappableKeys{admin: []string{oldKey, keptKey}, relay: []string{relayKey}}
	auth := NewAuthFrom(keys)
	f := newFixture(t, func(o *Options) { o.Auth = auth })
	form := httptest.NewRequest("POST", "/dashboard/login", nil)
	oldSession, _, err := auth.SignIn(form, oldKey)
	if err != nil {
		t.Fatal(err)
	}
	keptSession, keptCSRF, err := auth.SignIn(form, keptKey)
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(k string) []string { return []string{"Authorization", "Bearer " + k} }
	if code, _ := f.do(t, "GET", "/admin/v1/health", "", bearer(oldKey)...); code != http.StatusOK {
		t.Fatalf("old key before the reload: %d", code)
	}

	const newRelayKey = "named-relay-key-0123456789"
	keys.set([]string{newKey, keptKey}, []string{relayKey, newRelayKey})
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"the removed key", bearer(oldKey), http.StatusUnauthorized},
		{"the new key", bearer(newKey), http.StatusOK},
		{"the kept key", bearer(keptKey), http.StatusOK},
		{"the new relay key", bearer(newRelayKey), http.StatusForbidden},
		{"a session of the removed key", []string{"Cookie", Cookie + "=" + oldSession}, http.StatusUnauthorized},
		{"a session of the kept key", []string{"Cookie", Cookie + "=" + keptSession}, http.StatusOK},
	}
	for _, tt := range tests {
		if code, body := f.do(t, "GET", "/admin/v1/health", "", tt.hdr...); code != tt.want {
			t.Errorf("%s: %d, want %d: %s", tt.name, code, tt.want, body)
		}
	}
	if code, body := f.do(t, "POST", "/admin/v1/keys", `{"name":"x"}`, bearer(oldKey)...); code != http.StatusUnauthorized {
		t.Errorf("create a key with the removed key: %d %s", code, body)
	}
	if code, _ := f.do(t, "POST", "/admin/v1/accounts/a/reset", "", "Cookie", Cookie+"="+keptSession, CSRFHeader, keptCSRF); code != http.StatusOK {
		t.Errorf("the kept key's session acting: %d", code)
	}
	req := httptest.NewRequest("GET", "/dashboard", nil)
	req.AddCookie(&http.Cookie{Name: Cookie, Value: oldSession})
	if _, ok := auth.Session(req); ok {
		t.Error("the dashboard still shows the page to a session of the removed key")
	}
	if _, _, err := auth.SignIn(form, oldKey); !errors.Is(err, ErrWrongKey) {
		t.Errorf("sign-in with the removed key: %v", err)
	}
	if _, _, err := auth.SignIn(form, newKey); err != nil {
		t.Errorf("sign-in with the new key: %v", err)
	}

	keys.set(nil, []string{relayKey})
	if code, _ := f.do(t, "GET", "/admin/v1/health", "", bearer(newKey)...); code != http.StatusNotFound {
		t.Errorf("no admin key left: %d, want 404", code)
	}
}
