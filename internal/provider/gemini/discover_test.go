package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "ya29.secret-access-token-for-tests"

// fakeCodeAssist is a scripted Code Assist setup server.
type fakeCodeAssist struct {
	t          *testing.T
	load       string // loadCodeAssist answer
	loadStatus int
	onboard    string   // onboardUser answer
	ops        []string // successive operation answers; the last repeats
	mu         sync.Mutex
	calls      []string
	bodies     map[string]map[string]any
}

func (f *fakeCodeAssist) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		f.t.Errorf("%s: Authorization = %q", r.URL.Path, got)
	}
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s: Content-Type = %q", r.URL.Path, ct)
		}
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			f.t.Errorf("%s: body %s: %v", r.URL.Path, b, err)
		}
		if f.bodies == nil {
			f.bodies = map[string]map[string]any{}
		}
		f.bodies[r.URL.Path] = m
	}
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1internal:loadCodeAssist":
		if f.loadStatus != 0 {
			w.WriteHeader(f.loadStatus)
		}
		io.WriteString(w, f.load)
	case r.Method == http.MethodPost && r.URL.Path == "/v1internal:onboardUser":
		io.WriteString(w, f.onboard)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1internal/operations/"):
		ans := f.ops[0]
		if len(f.ops) > 1 {
			f.ops = f.ops[1:]
		}
		io.WriteString(w, ans)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":{"code":404,"message":"no such method","status":"NOT_FOUND"}}`)
	}
}

func (f *fakeCodeAssist) snapshot() ([]string, map[string]map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), f.bodies
}

func TestDiscoverProject(t *testing.T) {
	tests := []struct {
		name       string
		fake       *fakeCodeAssist
		envProject string
		baseSuffix string
		want       string
		wantErr    error // matched with errors.Is when set
		wantCalls  []string
		check      func(t *testing.T, bodies map[string]map[string]any)
	}{
		{
			name:      "current tier: one call",
			fake:      &fakeCodeAssist{load: `{"currentTier":{"id":"free-tier","name":"Gemini Code Assist for individuals"},"allowedTiers":[{"id":"free-tier","isDefault":true}],"cloudaicompanionProject":"wise-cat-abc12"}`},
			want:      "wise-cat-abc12",
			wantCalls: []string{"POST /v1internal:loadCodeAssist"},
			check: func(t *testing.T, bodies map[string]map[string]any) {
				b := bodies["/v1internal:loadCodeAssist"]
				if _, ok := b["cloudaicompanionProject"]; ok {
					t.Errorf("free-tier load sent a project: %v", b)
				}
				md, _ := b["metadata"].(map[string]any)
				if md["pluginType"] != "GEMINI" || md["ideType"] != "IDE_UNSPECIFIED" || md["platform"] != "PLATFORM_UNSPECIFIED" {
					t.Errorf("metadata = %v", md)
				}
			},
		},
		{
			name:       "current tier, base already versioned",
			fake:       &fakeCodeAssist{load: `{"currentTier":{"id":"standard-tier"},"cloudaicompanionProject":"p-1"}`},
			baseSuffix: "/v1internal/",
			want:       "p-1",
			wantCalls:  []string{"POST /v1internal:loadCodeAssist"},
		},
		{
			name:       "current tier without project uses env project",
			fake:       &fakeCodeAssist{load: `{"currentTier":{"id":"standard-tier"}}`},
			envProject: "my-gcp-project",
			want:       "my-gcp-project",
			wantCalls:  []string{"POST /v1internal:loadCodeAssist"},
			check: func(t *testing.T, bodies map[string]map[string]any) {
				b := bodies["/v1internal:loadCodeAssist"]
				md, _ := b["metadata"].(map[string]any)
				if b["cloudaicompanionProject"] != "my-gcp-project" || md["duetProject"] != "my-gcp-project" {
					t.Errorf("load body = %v", b)
				}
			},
		},
		{
			name:    "current tier without any project",
			fake:    &fakeCodeAssist{load: `{"currentTier":{"id":"standard-tier"}}`},
			wantErr: ErrProjectRequired,
		},
		{
			name:    "current tier without project, ineligible reasons",
			fake:    &fakeCodeAssist{load: `{"currentTier":{"id":"standard-tier"},"ineligibleTiers":[{"reasonCode":"UNSUPPORTED_LOCATION","reasonMessage":"Not available in your country."}]}`},
			wantErr: ErrIneligible,
		},
		{
			name: "onboard free tier: LRO completes after 2 polls",
			fake: &fakeCodeAssist{
				load:    `{"allowedTiers":[{"id":"legacy-tier","isDefault":false},{"id":"free-tier","isDefault":true,"name":"Gemini Code Assist for individuals"}]}`,
				onboard: `{"name":"operations/onboard-42","done":false}`,
				ops: []string{
					`{"name":"operations/onboard-42","done":false}`,
					`{"name":"operations/onboard-42","done":true,"response":{"@type":"type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse","cloudaicompanionProject":{"id":"gen-lang-client-0123","name":"Gemini"}}}`,
				},
			},
			want: "gen-lang-client-0123",
			wantCalls: []string{
				"POST /v1internal:loadCodeAssist",
				"POST /v1internal:onboardUser",
				"GET /v1internal/operations/onboard-42",
				"GET /v1internal/operations/onboard-42",
			},
			check: func(t *testing.T, bodies map[string]map[string]any) {
				b := bodies["/v1internal:onboardUser"]
				if b["tierId"] != "free-tier" {
					t.Errorf("tierId = %v", b["tierId"])
				}
				if _, ok := b["cloudaicompanionProject"]; ok {
					t.Errorf("free-tier onboard must not name a project: %v", b)
				}
			},
		},
		{
			name:       "onboard standard tier with env project, done at once",
			fake:       &fakeCodeAssist{load: `{"allowedTiers":[{"id":"standard-tier","isDefault":true,"userDefinedCloudaicompanionProject":true}]}`, onboard: `{"done":true,"response":{"cloudaicompanionProject":{"id":"my-gcp-project"}}}`},
			envProject: "my-gcp-project",
			want:       "my-gcp-project",
			wantCalls:  []string{"POST /v1internal:loadCodeAssist", "POST /v1internal:onboardUser"},
			check: func(t *testing.T, bodies map[string]map[string]any) {
				b := bodies["/v1internal:onboardUser"]
				md, _ := b["metadata"].(map[string]any)
				if b["tierId"] != "standard-tier" || b["cloudaicompanionProject"] != "my-gcp-project" || md["duetProject"] != "my-gcp-project" {
					t.Errorf("onboard body = %v", b)
				}
			},
		},
		{
			name:      "no default tier onboards legacy tier",
			fake:      &fakeCodeAssist{load: `{}`, onboard: `{"done":true,"response":{"cloudaicompanionProject":{"id":"legacy-p"}}}`},
			want:      "legacy-p",
			wantCalls: []string{"POST /v1internal:loadCodeAssist", "POST /v1internal:onboardUser"},
			check: func(t *testing.T, bodies map[string]map[string]any) {
				if got := bodies["/v1internal:onboardUser"]["tierId"]; got != "legacy-tier" {
					t.Errorf("tierId = %v", got)
				}
			},
		},
		{
			name:    "onboard done without project",
			fake:    &fakeCodeAssist{load: `{"allowedTiers":[{"id":"standard-tier","isDefault":true}]}`, onboard: `{"done":true,"response":{}}`},
			wantErr: ErrProjectRequired,
		},
		{
			name:    "validation required",
			fake:    &fakeCodeAssist{load: `{"ineligibleTiers":[{"reasonCode":"VALIDATION_REQUIRED","reasonMessage":"Verify your account.","validationUrl":"https://accounts.google.com/signin/continue?x=1"}]}`},
			wantErr: ErrIneligible,
		},
		{
			name:    "operation name with traversal is refused",
			fake:    &fakeCodeAssist{load: `{"allowedTiers":[{"id":"free-tier","isDefault":true}]}`, onboard: `{"name":"../../evil","done":false}`},
			wantErr: errors.New("any"),
		},
		{
			name:    "operation failed",
			fake:    &fakeCodeAssist{load: `{"allowedTiers":[{"id":"free-tier","isDefault":true}]}`, onboard: `{"name":"operations/x","done":false}`, ops: []string{`{"name":"operations/x","done":true,"error":{"code":9,"message":"Precondition check failed."}}`}},
			wantErr: errors.New("any"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fake.t = t
			srv := httptest.NewServer(tt.fake)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got, err := DiscoverProject(ctx, srv.Client(), srv.URL+tt.baseSuffix, testToken, tt.envProject, time.Millisecond)
			calls, bodies := tt.fake.snapshot()
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("DiscoverProject = %q, want error", got)
				}
				if tt.wantErr.Error() != "any" && !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error leaks the token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("DiscoverProject: %v", err)
			}
			if got != tt.want {
				t.Errorf("project = %q, want %q", got, tt.want)
			}
			if tt.wantCalls != nil && strings.Join(calls, "\n") != strings.Join(tt.wantCalls, "\n") {
				t.Errorf("calls =\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(tt.wantCalls, "\n"))
			}
			if tt.check != nil {
				tt.check(t, bodies)
			}
		})
	}
}

func TestDiscoverProjectHTTPError(t *testing.T) {
	fake := &fakeCodeAssist{t: t, loadStatus: 401, load: `{"error":{"code":401,"message":"Request had invalid authentication credentials: ` + testToken + `","status":"UNAUTHENTICATED"}}`}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	_, err := DiscoverProject(context.Background(), srv.Client(), srv.URL, testToken, "", time.Millisecond)
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("err = %v, want *APIError", err)
	}
	if apiErr.StatusCode != 401 || apiErr.Status != "UNAUTHENTICATED" || apiErr.Method != "loadCodeAssist" {
		t.Errorf("APIError = %+v", apiErr)
	}
	if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "secret-access-token") {
		t.Errorf("error leaks the token: %v", err)
	}
	if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] {
		t.Errorf("error %q does not start lowercase", msg)
	}
}

func TestDiscoverProjectPollingBoundedByContext(t *testing.T) {
	fake := &fakeCodeAssist{t: t,
		load:    `{"allowedTiers":[{"id":"free-tier","isDefault":true}]}`,
		onboard: `{"name":"operations/slow","done":false}`,
		ops:     []string{`{"name":"operations/slow","done":false}`},
	}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := DiscoverProject(ctx, srv.Client(), srv.URL, testToken, "", 5*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v after the deadline", time.Since(start))
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestDiscoverProjectDeadUpstream(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // a closed listener: connection refused
	_, err := DiscoverProject(context.Background(), &http.Client{Timeout: 2 * time.Second}, url, testToken, "", time.Millisecond)
	if err == nil {
		t.Fatal("want error")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error leaks the token: %v", err)
	}
}

func TestDiscoverProjectEmptyToken(t *testing.T) {
	if _, err := DiscoverProject(context.Background(), nil, "http://127.0.0.1:1", "", "", 0); err == nil {
		t.Fatal("want error for an empty token")
	}
}

// leakyTransport fails with an error that quotes the request's token, as a
// careless proxy RoundTripper might.
type leakyTransport struct{}

func (leakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, errors.New("proxy refused " + r.Header.Get("Authorization"))
}

func TestDiscoverProjectScrubsTransportErrors(t *testing.T) {
	_, err := DiscoverProject(context.Background(), &http.Client{Transport: leakyTransport{}}, "http://127.0.0.1:1", testToken, "", 0)
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Fatalf("err = %v", err)
	}
}
