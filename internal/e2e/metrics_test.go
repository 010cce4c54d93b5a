package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

const adminKey = "admin-key-e2e-0123456789"

// scrape fetches url's /metrics (with the admin key when key is set) and
// parses it with the Prometheus text parser.
func scrape(t *testing.T, url, key string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/metrics", nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// value returns the value of family's series whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, family string, want map[string]string) float64 {
	t.Helper()
	f := fams[family]
	if f == nil {
		t.Fatalf("no metric %s", family)
	}
	total, found := 0.0, false
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		}
	}
	if !found {
		t.Fatalf("no %s series with %v", family, want)
	}
	return total
}

// TestMetricsAfterKnownTraffic: after a known set of requests, /metrics on
// its own listener and on the main one (behind an admin key) count them.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	good := upstream(t, &fakeupstream.Anthropic{Text: "ok", Headers: func(int) map[string]string {
		return map[string]string{"Anthropic-Ratelimit-Unified-5h-Utilization": "0.25", "Anthropic-Ratelimit-Unified-5h-Status": "allowed"}
	}})
	bad := upstream(t, &fakeupstream.Anthropic{Script: fail(529, nil, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)})
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+`admin_keys = ["`+adminKey+`"]`+"\n"+`metrics_listen = "127.0.0.1:0"`+"\n"+
		claudeAPIAccount("bad", bad.URL, "sk-ant-bad-key-1", 200)+claudeAPIAccount("good", good.URL, "sk-ant-good-key-1", 100))

	// 1: fails over from bad (529, cooled down) to good. 2, 3: straight to good (one streamed).
	c := r.anthropicClient()
	for i := 0; i < 2; i++ {
		if _, err := c.Messages.New(context.Background(), newParams("claude-sonnet-4-5")); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Messages.NewStreaming(context.Background(), newParams("claude-sonnet-4-5"))
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	// 4: no Gemini account: 503 pool exhausted... of a pool with none.
	resp, err := http.Post(r.URL+"/gemini/v1beta/models/gemini-2.5-pro:generateContent?key="+relayKey, "application/json", strings.NewReader(`{"contents":[{"parts":[{"text":"hi"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("gemini without accounts: %d", resp.StatusCode)
	}

	// The main listener wants an admin key: none, or a relay key, gets 401.
	for _, key := range []string{"", relayKey} {
		req, _ := http.NewRequest("GET", r.URL+"/metrics", nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// A relay key is not an admin key: 403, and not a guess (issue 31 item 7).
		if want := map[bool]int{true: 401, false: 403}[key == ""]; resp.StatusCode != want {
			t.Fatalf("/metrics with key %q: %d, want %d", key[:min(4, len(key))], resp.StatusCode, want)
		}
	}
	own := "http://" + r.App.MetricsAddr().String()
	for name, fams := range map[string]map[string]*dto.MetricFamily{"main": scrape(t, r.URL, adminKey), "metrics_listen": scrape(t, own, "")} {
		t.Run(name, func(t *testing.T) {
			checks := []struct {
				family string
				labels map[string]string
				want   float64
			}{
				{"ccrelay_requests_total", map[string]string{"route": "messages", "platform": "claude", "status_class": "2xx", "account": "good"}, 3},
				{"ccrelay_requests_total", map[string]string{"route": "gemini_generate", "status_class": "5xx", "account": "none"}, 1},
				{"ccrelay_failovers_total", map[string]string{"platform": "claude"}, 1},
				{"ccrelay_pool_exhausted_total", map[string]string{"platform": "gemini"}, 1},
				{"ccrelay_cooldowns_total", map[string]string{"account": "bad", "kind": "overloaded"}, 1},
				{"ccrelay_tokens_total", map[string]string{"account": "good", "kind": "input"}, 36},
				{"ccrelay_tokens_total", map[string]string{"account": "good", "kind": "output"}, 21},
				{"ccrelay_tokens_total", map[string]string{"account": "good", "kind": "cache_read"}, 15},
				{"ccrelay_request_duration_seconds", map[string]string{"platform": "claude", "stream": "true"}, 1},
				{"ccrelay_request_duration_seconds", map[string]string{"platform": "claude", "stream": "false"}, 2},
				{"ccrelay_time_to_first_byte_seconds", map[string]string{"account": "good"}, 3},
				{"ccrelay_account_state", map[string]string{"account": "good", "state": "available"}, 1},
				{"ccrelay_account_state", map[string]string{"account": "bad", "state": "cooling"}, 1},
				{"ccrelay_database_up", nil, 1},
				{"ccrelay_quota_utilization_ratio", map[string]string{"account": "good", "window": "5h"}, 0.25},
				{"ccrelay_config_stale", nil, 0},
			}
			for _, c := range checks {
				if got := value(t, fams, c.family, c.labels); got != c.want {
					t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
				}
			}
			if _, ok := fams["ccrelay_redis_up"]; ok {
				t.Error("ccrelay_redis_up without a cluster")
			}
		})
	}
}

// TestAlertsDoNotSlowRequests: with a webhook that hangs, requests that
// raise alerts (an account refused with 401, a pool with no account) are
// answered all the same, and the webhook was told (in the JSON shape).
func TestAlertsDoNotSlowRequests(t *testing.T) {
	posted := make(chan string, 10)
	release := make(chan struct{})
	hook := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		posted <- string(b)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer close(release)
	dead := upstream(t, &fakeupstream.Anthropic{Script: fail(401, nil, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`)})
	good := upstream(t, &fakeupstream.Anthropic{Text: "ok", Headers: func(int) map[string]string {
		return map[string]string{"Anthropic-Ratelimit-Unified-5h-Utilization": "0.25", "Anthropic-Ratelimit-Unified-5h-Status": "allowed"}
	}})
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("dead", dead.URL, "sk-ant-dead-key-1", 200)+claudeAPIAccount("good", good.URL, "sk-ant-good-key-1", 100)+
		"[[alerts]]\nurl = \""+hook.URL+"/hook\"\nformat = \"json\"\n")
	for i := 0; i < 20; i++ {
		if who, err := askIn(t, r, fmt.Sprintf("conv-%d", i)); err != nil || who != "ok" {
			t.Fatalf("request %d with a hanging webhook: %q %v", i, who, err)
		}
		resp, err := http.Post(r.URL+"/gemini/v1beta/models/gemini-2.5-pro:generateContent?key="+relayKey, "application/json", strings.NewReader(`{"contents":[{"parts":[{"text":"hi"}]}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Fatalf("gemini: %d", resp.StatusCode)
		}
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(<-posted), &m); err != nil || m["event"] != "account_invalid" || m["subject"] != "dead" {
		t.Fatalf("first alert %v (%v)", m, err)
	}
	if strings.Contains(r.Logs.String(), hook.URL) {
		t.Fatal("the webhook URL is in the logs")
	}
}

// An answer that shows a subscription window past 80% sends one
// quota_threshold alert naming the account and window; the next answers at
// the same level send none (quiet period).
func TestQuotaThresholdAlert(t *testing.T) {
	posted := make(chan map[string]string, 10)
	hook := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		posted <- m
	}))
	good := upstream(t, &fakeupstream.Anthropic{Text: "ok", Headers: func(int) map[string]string {
		return map[string]string{"Anthropic-Ratelimit-Unified-5h-Utilization": "0.85", "Anthropic-Ratelimit-Unified-5h-Status": "allowed_warning"}
	}})
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+claudeAPIAccount("good", good.URL, "sk-ant-good-key-1", 100)+
		"[[alerts]]\nurl = \""+hook.URL+"/hook\"\nformat = \"json\"\nevents = [\"quota_threshold\"]\n")
	for i := 0; i < 3; i++ {
		if _, err := ask(t, r); err != nil {
			t.Fatal(err)
		}
	}
	var m map[string]string
	select {
	case m = <-posted:
	case <-time.After(20 * time.Second):
		t.Fatal("no quota alert")
	}
	if m["event"] != "quota_threshold" || !strings.Contains(m["subject"], "good 5h 80%") {
		t.Fatalf("alert %v", m)
	}
	select {
	case m2 := <-posted:
		t.Fatalf("a second alert for the same window: %v", m2)
	case <-time.After(500 * time.Millisecond):
	}
}
