package relay

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
)

// shapeOf tells the error shapes apart by their JSON.
func shapeOf(t *testing.T, body []byte) string {
	t.Helper()
	switch {
	case gjson.GetBytes(body, "type").Str == "error" && gjson.GetBytes(body, "error.type").Exists():
		return "anthropic"
	case gjson.GetBytes(body, "error.status").Exists() && gjson.GetBytes(body, "error.code").Type == gjson.Number:
		return "google"
	case gjson.GetBytes(body, "error.type").Exists() && gjson.GetBytes(body, "error.param").Exists():
		return "openai"
	}
	t.Fatalf("unknown error shape: %s", body)
	return ""
}

// nameOf is the error shape a dialect writes (the Responses route's errors
// are OpenAI's).
func nameOf(d dialect) string {
	if d.name() == "responses" {
		return "openai"
	}
	return d.name()
}

// The route table drives the mux, the dialect of errors raised outside a
// handler and the metric labels: every row's method and path reach a
// handler that answers in the row's dialect (here a 401, no key sent), and
// DialectError and MetricLabels give the row's dialect and labels.
func TestRouteTableDrivesHandlerDialectAndLabels(t *testing.T) {
	r := accessRelay(t, false, config.KeyConfig{Name: "k", Key: "right-key-0123456789"})
	h := r.Handler()
	served := 0
	for i := range routes {
		rt := &routes[i]
		path := rt.path
		if strings.HasSuffix(path, "/") {
			path += "v1beta/models/gemini-2.5-pro" + rt.suffix
		}
		if got := routeOf(path); got.path != rt.path || got.suffix != rt.suffix {
			t.Errorf("routeOf(%q) is the row of %q%s, want %q%s", path, got.path, got.suffix, rt.path, rt.suffix)
		}
		route, platform := MetricLabels(path)
		if route != rt.metric || platform != rt.platform {
			t.Errorf("MetricLabels(%q) = %q, %q; want %q, %q", path, route, platform, rt.metric, rt.platform)
		}
		w := httptest.NewRecorder()
		DialectError(w, path, http.StatusInternalServerError, "boom")
		if got := shapeOf(t, w.Body.Bytes()); got != nameOf(rt.dialect) {
			t.Errorf("DialectError(%q) speaks %s, want %s", path, got, nameOf(rt.dialect))
		}
		if rt.handle == nil || rt.method == "" && rt.suffix != "" {
			continue
		}
		method := rt.method
		if method == "" {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, path, strings.NewReader(`{"model":"m"}`))
		w = httptest.NewRecorder()
		h.ServeHTTP(w, req)
		served++
		// 401, or 426 from the WebSocket refusal, which needs no key.
		if w.Code != http.StatusUnauthorized && w.Code != http.StatusUpgradeRequired {
			t.Errorf("%s %s without a key: %d %s", method, path, w.Code, w.Body)
			continue
		}
		if got := shapeOf(t, w.Body.Bytes()); got != nameOf(rt.dialect) {
			t.Errorf("%s %s answers in %s, want %s: %s", method, path, got, nameOf(rt.dialect), w.Body)
		}
	}
	if served < 15 {
		t.Fatalf("only %d rows served", served)
	}
}

// Paths that no route serves are labelled "other" and answered 404 in the
// dialect of the subtree they fall in; a lookalike of a route (a suffix of
// it under another prefix) is not that route.
func TestUnknownPaths(t *testing.T) {
	r := accessRelay(t, true)
	tests := []struct{ method, path, dialect, metric string }{
		{"POST", "/x/v1/messages", "anthropic", "other"},
		{"POST", "/openai/v1/embeddings", "openai", "other"},
		{"GET", "/v1/chat/completions", "openai", "chat_completions"},
		{"POST", "/v1/responses/resp_1/cancel", "openai", "other"},
		{"DELETE", "/v1/messages", "anthropic", "messages"},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		req.RemoteAddr = "127.0.0.1:1"
		w := httptest.NewRecorder()
		r.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusNotFound || shapeOf(t, w.Body.Bytes()) != tt.dialect {
			t.Errorf("%s %s: %d %s; want 404 in %s", tt.method, tt.path, w.Code, w.Body, tt.dialect)
		}
		if m, _ := MetricLabels(tt.path); m != tt.metric {
			t.Errorf("MetricLabels(%q) = %q, want %q", tt.path, m, tt.metric)
		}
	}
}
