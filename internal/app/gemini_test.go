package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
)

type memProjects struct {
	mu    sync.Mutex
	saved map[string]string
	err   error
}

func (m *memProjects) ProjectID(_ context.Context, id string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saved[id], m.err
}

func (m *memProjects) SaveProjectID(_ context.Context, id, p string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saved == nil {
		m.saved = map[string]string{}
	}
	m.saved[id] = p
	return nil
}

func TestProjectErrorVerdict(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want provider.Kind
	}{
		{"no project", gemini.ErrProjectRequired, provider.Unavailable},
		{"ineligible", fmt.Errorf("%w: region", gemini.ErrIneligible), provider.Unavailable},
		{"401", &gemini.APIError{Method: "loadCodeAssist", StatusCode: 401}, provider.Unavailable},
		{"403", &gemini.APIError{Method: "loadCodeAssist", StatusCode: 403}, provider.Unavailable},
		{"429", &gemini.APIError{Method: "loadCodeAssist", StatusCode: 429}, provider.RateLimited},
		{"503", &gemini.APIError{Method: "onboardUser", StatusCode: 503}, provider.ServerError},
		{"network", errors.New("dial tcp: connection refused"), provider.Network},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := (&projectError{err: tt.err}).Verdict()
			if v.Kind != tt.want || !strings.HasPrefix(v.Reason, "code assist project discovery: ") {
				t.Fatalf("verdict %+v, want %v", v, tt.want)
			}
		})
	}
}

// A loadCodeAssist 401 is a stale token (the relay refreshes once and
// retries); the next lookup with a fresh token finds the project, which is
// then cached and saved.
func TestProjectLookup401IsStaleToken(t *testing.T) {
	var loads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loads.Add(1)
		if r.Header.Get("Authorization") == "Bearer ya29.tok-1" {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":401,"message":"expired","status":"UNAUTHENTICATED"}}`)
			return
		}
		fmt.Fprint(w, `{"currentTier":{"id":"standard-tier"},"cloudaicompanionProject":"p-9"}`)
	}))
	defer srv.Close()
	db := &memProjects{}
	ps := newProjectSource(config.AccountConfig{ID: "g", APIURL: srv.URL}, srv.Client(), db, nil)
	_, err := ps.Project(context.Background(), "ya29.tok-1")
	var st interface{ StaleToken() bool }
	if !errors.As(err, &st) || !st.StaleToken() {
		t.Fatalf("401 lookup error %v is not a stale token", err)
	}
	if p, err := ps.Project(context.Background(), "ya29.tok-2"); p != "p-9" || err != nil {
		t.Fatalf("project %q err %v", p, err)
	}
	if p, _ := ps.Project(context.Background(), "unused"); p != "p-9" || db.saved["g"] != "p-9" || loads.Load() != 2 {
		t.Fatalf("project %q saved %v loads %d", p, db.saved, loads.Load())
	}
}

// A waiter whose request ends stops waiting; the discovery it started goes
// on for the others and its result is kept.
func TestProjectSourceWaiterCancel(t *testing.T) {
	gate := make(chan struct{})
	var loads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		loads.Add(1)
		<-gate
		fmt.Fprint(w, `{"currentTier":{"id":"standard-tier"},"cloudaicompanionProject":"p-1"}`)
	}))
	defer srv.Close()
	ps := newProjectSource(config.AccountConfig{ID: "g", APIURL: srv.URL}, srv.Client(), &memProjects{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := ps.Project(ctx, "ya29.a"); errc <- err }()
	for loads.Load() == 0 {
		time.Sleep(time.Millisecond) // until the discovery request is at the server
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	done := make(chan string, 1)
	go func() { p, _ := ps.Project(context.Background(), "ya29.b"); done <- p }()
	close(gate)
	if p := <-done; p != "p-1" || loads.Load() != 1 {
		t.Fatalf("project %q after %d loads", p, loads.Load())
	}
}

// A pinned project needs neither the database nor Code Assist; a cached one
// needs no Code Assist.
func TestProjectSourcePinAndCache(t *testing.T) {
	ps := newProjectSource(config.AccountConfig{ID: "g", ProjectID: "pinned", APIURL: "http://127.0.0.1:1"}, http.DefaultClient, nil, nil)
	if p, err := ps.Project(context.Background(), "t"); p != "pinned" || err != nil {
		t.Fatalf("%q %v", p, err)
	}
	db := &memProjects{saved: map[string]string{"g": "cached"}}
	ps = newProjectSource(config.AccountConfig{ID: "g", APIURL: "http://127.0.0.1:1"}, http.DefaultClient, db, nil)
	if p, err := ps.Project(context.Background(), "t"); p != "cached" || err != nil {
		t.Fatalf("%q %v", p, err)
	}
}
