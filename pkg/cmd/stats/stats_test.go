package stats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestNewCmdStatsFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{name: "defaults", args: nil, want: Options{Since: "24h"}},
		{name: "all flags", args: []string{"--since", "7d", "--by", "account", "--json", "--db", "x.db"}, want: Options{Since: "7d", By: "account", JSON: true, Databases: []string{"x.db"}}},
		{name: "by key", args: []string{"--by", "key"}, want: Options{Since: "24h", By: "key"}},
		{name: "by served model", args: []string{"--by", "served_model"}, want: Options{Since: "24h", By: "served_model"}},
		{name: "bad by", args: []string{"--by", "user"}, wantErr: "--by must be"},
		{name: "bad since", args: []string{"--since", "yesterday"}, wantErr: "--since"},
		{name: "negative since", args: []string{"--since", "-5m"}, wantErr: "positive"},
		{name: "no args", args: []string{"extra"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			f := &cmdutil.Factory{IOStreams: ios}
			var got *Options
			cmd := NewCmdStats(f, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(ios.ErrOut)
			cmd.SetErr(ios.ErrOut)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Since != tt.want.Since || got.By != tt.want.By || got.JSON != tt.want.JSON || strings.Join(got.Databases, ",") != strings.Join(tt.want.Databases, ",") {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "24h", want: now.Add(-24 * time.Hour)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "1.5d", want: now.Add(-36 * time.Hour)},
		{in: "all"},
		{in: "ALL"},
		{in: "2026-11-01", want: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2026-11-01 08:30", want: time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC)},
		{in: "2026-11-01T08:30:00+01:00", want: time.Date(2026, 11, 1, 7, 30, 0, 0, time.UTC)},
		{in: "0d", wantErr: true},
		{in: "-1h", wantErr: true},
		{in: "last week", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := usage.ParseSince(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHumanInt(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := humanInt(in); got != want {
			t.Errorf("humanInt(%d) = %q, want %q", in, got, want)
		}
	}
}

const testKey = "relay-key-secret-0123456789"

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// seed writes 4 requests: 3 with the configured key on two accounts (one
// failed), 1 with a key that is no longer configured.
func seed(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "relay.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs := []usage.Record{
		{Time: now.Add(-time.Hour), KeyHash: usage.HashKey(testKey), AccountID: "claude-1", Platform: "claude", Model: "claude-sonnet-5",
			Usage: provider.Usage{InputTokens: 1200, OutputTokens: 300, CacheCreationTokens: 50, CacheReadTokens: 4000}, Status: 200, Latency: 1500 * time.Millisecond},
		{Time: now.Add(-2 * time.Hour), KeyHash: usage.HashKey(testKey), AccountID: "claude-1", Platform: "claude", Model: "claude-sonnet-5",
			Usage: provider.Usage{InputTokens: 800, OutputTokens: 100}, Status: 200, Latency: 500 * time.Millisecond},
		{Time: now.Add(-3 * time.Hour), KeyHash: usage.HashKey(testKey), AccountID: "claude-2", Platform: "claude", Model: "claude-haiku-5",
			Status: 529, Latency: 20 * time.Millisecond, Error: "overloaded"},
		{Time: now.Add(-4 * time.Hour), KeyHash: usage.HashKey("old-key"), AccountID: "openai-1", Platform: "openai", Model: "gpt-6",
			Usage: provider.Usage{InputTokens: 1_000_000, OutputTokens: 2}, Status: 200, Latency: 12 * time.Second},
		// Outside the default 24h window.
		{Time: now.Add(-30 * time.Hour), KeyHash: usage.Anonymous, AccountID: "claude-1", Model: "claude-sonnet-5", Status: 200, Latency: time.Second},
	}
	if err := db.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return path
}

func run(t *testing.T, o Options) (string, string, error) {
	t.Helper()
	ios, _, out, errOut := iostreams.Test()
	o.IO = ios
	o.Now = func() time.Time { return now }
	cfg := config.Default()
	cfg.APIKeys = []string{"unused", testKey}
	if o.Config == nil {
		o.Config = func() (*config.Config, error) { return cfg, nil }
	}
	if o.Since == "" {
		o.Since = "24h"
	}
	err := statsRun(&o)
	return out.String(), errOut.String(), err
}

func TestStatsJSON(t *testing.T) {
	path := seed(t)
	tests := []struct {
		name   string
		by     string
		since  string
		total  int64
		groups []string
	}{
		{name: "total", total: 4},
		{name: "by account", by: "account", total: 4, groups: []string{"claude-1", "claude-2", "openai-1"}},
		{name: "by model", by: "model", total: 4, groups: []string{"claude-sonnet-5", "claude-haiku-5", "gpt-6"}},
		{name: "by key", by: "key", total: 4, groups: []string{"api_keys[1]", "sha256:" + usage.HashKey("old-key")[:12]}},
		{name: "all time by key", by: "key", since: "all", total: 5, groups: []string{"api_keys[1]", "sha256:" + usage.HashKey("old-key")[:12], "anonymous"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := run(t, Options{Databases: []string{path}, By: tt.by, Since: tt.since, JSON: true})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out, testKey) {
				t.Fatal("the relay key itself appears in the output")
			}
			var r Report
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if r.Total.Requests != tt.total {
				t.Errorf("total requests = %d, want %d", r.Total.Requests, tt.total)
			}
			var names []string
			for _, g := range r.Groups {
				names = append(names, g.Name)
			}
			if strings.Join(names, ",") != strings.Join(tt.groups, ",") {
				t.Errorf("groups = %v, want %v", names, tt.groups)
			}
			if r.Database != path || r.By != tt.by {
				t.Errorf("database %q by %q", r.Database, r.By)
			}
		})
	}
}

func TestStatsJSONValues(t *testing.T) {
	path := seed(t)
	out, _, err := run(t, Options{Databases: []string{path}, By: "account", JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	total := r["total"].(map[string]any)
	want := map[string]float64{"requests": 4, "errors": 1, "input_tokens": 1_002_000, "output_tokens": 402, "cache_creation_tokens": 50,
		"cache_read_tokens": 4000, "latency_avg_ms": 4667, "successes": 3}
	for k, v := range want {
		if total[k] != v {
			t.Errorf("total.%s = %v, want %v", k, total[k], v)
		}
	}
	if _, ok := total["group"]; ok {
		t.Error("total carries an empty group field")
	}
	if r["since"] != "2026-11-24T12:00:00Z" {
		t.Errorf("since = %v", r["since"])
	}
	g0 := r["groups"].([]any)[0].(map[string]any)
	if g0["name"] != "claude-1" || g0["requests"] != 2.0 || g0["latency_avg_ms"] != 1000.0 {
		t.Errorf("first group = %v", g0)
	}
	// Recorded without a price: unknown, never 0.
	if v, ok := total["cost_usd"]; !ok || v != nil {
		t.Errorf("total.cost_usd = %v, want null", v)
	}
}

func TestStatsTable(t *testing.T) {
	path := seed(t)
	out, _, err := run(t, Options{Databases: []string{path}, By: "account"})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	var table []string
	for _, l := range lines {
		if strings.Contains(l, "REQUESTS") || strings.HasPrefix(l, "claude-") || strings.HasPrefix(l, "openai-") || strings.HasPrefix(l, "TOTAL") {
			table = append(table, l)
		}
	}
	if len(table) != 5 {
		t.Fatalf("want header, 3 rows and a total:\n%s", out)
	}
	// Aligned: every row of the table has the same width, and the numbers
	// of a column end at the same place.
	for _, l := range table[1:] {
		if len(l) != len(table[0]) {
			t.Errorf("row width %d != header width %d:\n%s", len(l), len(table[0]), out)
		}
	}
	for _, want := range []string{"ACCOUNT", "1,002,000", "4,000", "1000ms", "12.0s", "4667ms", "TOTAL", "COST", "unknown"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasPrefix(table[1], "claude-1 ") {
		t.Errorf("busiest account first, name left-aligned: %q", table[1])
	}
}

func TestStatsTableUngrouped(t *testing.T) {
	path := seed(t)
	out, _, err := run(t, Options{Databases: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "REQUESTS") || strings.Contains(out, "TOTAL") || !strings.Contains(out, "1,002,000") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

func TestStatsEmptyWindow(t *testing.T) {
	path := seed(t)
	out, _, err := run(t, Options{Databases: []string{path}, Since: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "No requests recorded since") {
		t.Errorf("got %q", out)
	}
}

func TestStatsMissingDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "relay.db")
	for _, asJSON := range []bool{false, true} {
		out, errOut, err := run(t, Options{Databases: []string{path}, JSON: asJSON, By: "model"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut, "no usage database at "+path) {
			t.Errorf("stderr = %q", errOut)
		}
		if asJSON {
			var r Report
			if err := json.Unmarshal([]byte(out), &r); err != nil || r.Total.Requests != 0 || r.Groups == nil {
				t.Errorf("json = %q (%v)", out, err)
			}
		} else if out != "" {
			t.Errorf("stdout = %q", out)
		}
	}
}

func TestStatsUsesConfigDatabasePath(t *testing.T) {
	path := seed(t)
	cfg := config.Default()
	cfg.Server.DatabasePath = path
	out, _, err := run(t, Options{Config: func() (*config.Config, error) { return cfg, nil }, JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, `"requests": 4`) {
		t.Errorf("did not read server.database_path:\n%s", out)
	}
}

func TestStatsConfigError(t *testing.T) {
	boom := errors.New("boom")
	_, _, err := run(t, Options{Config: func() (*config.Config, error) { return nil, boom }})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}

// Several relays' files read as one (a cluster): totals add up exactly.
func TestStatsSeveralDatabases(t *testing.T) {
	a, b := seed(t), seed(t)
	out, _, err := run(t, Options{Databases: []string{a, b}, By: "account", JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Total.Requests != 8 {
		t.Fatalf("total %d, want 8 (4 per file)", r.Total.Requests)
	}
	if _, _, err := run(t, Options{Databases: []string{a, a + ".missing"}}); err == nil {
		t.Fatal("a missing second file must be an error")
	}
}

// Named keys group by name (an unnamed key by its label), and cost shows
// beside tokens: "unknown" when any request of the row has no price.
func TestStatsByKeyNameAndCost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := []usage.Record{
		{Time: now.Add(-time.Hour), KeyHash: usage.HashKey("alice-1"), KeyName: "alice", Model: "m", Status: 200, CostKnown: true, CostMicros: 1_500_000},
		{Time: now.Add(-time.Hour), KeyHash: usage.HashKey("alice-2"), KeyName: "alice", Model: "m", Status: 200, CostKnown: true, CostMicros: 250_000},
		{Time: now.Add(-time.Hour), KeyHash: usage.HashKey("bob"), KeyName: "bob", Model: "m", Status: 200, CostKnown: true, CostMicros: 1234},
		{Time: now.Add(-time.Hour), KeyHash: usage.HashKey("bob"), KeyName: "bob", Model: "unpriced", Status: 200},
		{Time: now.Add(-time.Hour), KeyHash: usage.HashKey(testKey), Model: "m", Status: 200, CostKnown: true, CostMicros: 0},
	}
	if err := db.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out, _, err := run(t, Options{Databases: []string{path}, By: "key", JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, g := range r.Groups {
		c := "null"
		if g.CostUSD != nil {
			c = strconv.FormatFloat(*g.CostUSD, 'f', -1, 64)
		}
		got[g.Name] = fmt.Sprintf("%d %s", g.Requests, c)
	}
	want := map[string]string{"alice": "2 1.75", "bob": "2 null", "api_keys[1]": "1 0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	if r.Total.CostUSD != nil || r.Total.CostUnknown != 1 {
		t.Errorf("total cost = %v (unknown %d), want unknown", r.Total.CostUSD, r.Total.CostUnknown)
	}

	out, _, err = run(t, Options{Databases: []string{path}, By: "key"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"alice", "$1.75", "$0.00", "unknown"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "bob ") && !strings.Contains(line, "unknown") {
			t.Errorf("bob's cost must be unknown: %q", line)
		}
	}
}

func TestUSD(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tt := range []struct {
		in   *float64
		want string
	}{{nil, "unknown"}, {f(0), "$0.00"}, {f(0.001234), "$0.0012"}, {f(1234.5), "$1,234.50"}} {
		if got := usd(tt.in); got != tt.want {
			t.Errorf("usd(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// On a relay of a cluster: stats --server prints the cluster's report and
// says so; when the relay answers with its own numbers (Redis down) stats
// prints the reason on stderr. Reading the database directly on a cluster
// says these are this relay's own numbers.
func TestStatsScope(t *testing.T) {
	since := now.Add(-24 * time.Hour).Truncate(time.Hour)
	for _, tt := range []struct {
		name, scope, reason string
		wantOut, wantErr    string
	}{
		{"cluster", store.ScopeCluster, "", "every relay of the cluster", ""},
		{"redis down", store.ScopeLocal, "the cluster's numbers are not available (redis unreachable): these are this relay's own", "", "Note: the cluster's numbers are not available"},
		{"no cluster", store.ScopeLocal, admin.ReasonNoCluster, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rep := store.NewReport("server", since, now, "")
				rep.Total.Requests, rep.Scope, rep.ScopeReason = 3, tt.scope, tt.reason
				_ = json.NewEncoder(w).Encode(rep)
			}))
			defer srv.Close()
			out, errOut, err := run(t, Options{Server: srv.URL, Getenv: func(k string) string {
				if k == cmdutil.EnvAdminKey {
					return "admin-key"
				}
				return ""
			}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantOut != "" && !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			if tt.wantErr == "" && errOut != "" || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr = %q, want %q", errOut, tt.wantErr)
			}
		})
	}
	t.Run("database on a cluster", func(t *testing.T) {
		cfg := config.Default()
		cfg.Server.DatabasePath = seed(t)
		cfg.Cluster.RedisURL = "redis://127.0.0.1:1/0"
		out, errOut, err := run(t, Options{Config: func() (*config.Config, error) { return cfg, nil }, JSON: true})
		if err != nil {
			t.Fatal(err)
		}
		var r Report
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Scope != store.ScopeLocal || !strings.Contains(r.ScopeReason, "this relay's own") {
			t.Fatalf("json = %s (%v)", out, err)
		}
		if !strings.Contains(errOut, "this relay's own numbers") {
			t.Fatalf("stderr = %q", errOut)
		}
	})
}

// servedSeed writes requests asked for claude-sonnet-4: two served by an
// OpenAI account as gpt-5-codex (a route's fallback), one by Claude as asked.
func servedSeed(t *testing.T) (*store.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.db")
	db, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var recs []usage.Record
	for i, served := range []string{"gpt-5-codex", "gpt-5-codex", ""} {
		recs = append(recs, usage.Record{Time: now.Add(-time.Duration(i+1) * time.Hour), KeyHash: usage.Anonymous, AccountID: "acct", Platform: "openai",
			Model: "claude-sonnet-4", ServedModel: served, Usage: provider.Usage{InputTokens: 1000}, Status: 200, CostKnown: true, CostMicros: 1_250_000})
	}
	if err := db.InsertUsage(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	return db, path
}

// --by served_model groups by the model served, from the database and from
// a relay's admin API alike; --by model by the model asked.
func TestStatsByServedModel(t *testing.T) {
	db, path := servedSeed(t)
	api := admin.New(admin.Options{Auth: admin.NewAuth([]string{"admin-key"}, nil), Usage: db, Now: func() time.Time { return now }})
	srv := httptest.NewServer(api)
	defer srv.Close()
	getenv := func(k string) string {
		if k == cmdutil.EnvAdminKey {
			return "admin-key"
		}
		return ""
	}
	for _, src := range []struct {
		name string
		o    Options
	}{{"database", Options{Databases: []string{path}}}, {"server", Options{Server: srv.URL, Getenv: getenv}}} {
		t.Run(src.name, func(t *testing.T) {
			o := src.o
			o.By = store.GroupServedModel
			out, _, err := run(t, o)
			if err != nil {
				t.Fatal(err)
			}
			rows := map[string]string{}
			for _, l := range strings.Split(out, "\n") {
				if f := strings.Fields(l); len(f) > 2 {
					rows[f[0]] = f[1] + " " + f[len(f)-3]
				}
			}
			if !strings.Contains(out, "SERVED MODEL") || rows["gpt-5-codex"] != "2 $2.50" || rows["claude-sonnet-4"] != "1 $1.25" {
				t.Errorf("by served model:\n%s\nrows %q", out, rows)
			}
			o.By, o.JSON = store.GroupModel, true
			out, _, err = run(t, o)
			if err != nil {
				t.Fatal(err)
			}
			var r Report
			if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Groups) != 1 || r.Groups[0].Name != "claude-sonnet-4" || r.Groups[0].Requests != 3 {
				t.Errorf("by model: %s (%v)", out, err)
			}
		})
	}
}
