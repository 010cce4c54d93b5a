package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

func oauthAccount(id, apiURL, tokenURL, refresh string, priority int) string {
	return fmt.Sprintf("[[accounts]]\ntype = \"claude-oauth\"\nid = %q\nrefresh_token = %q\napi_url = %q\ntoken_url = %q\npriority = %d\n", id, refresh, apiURL, tokenURL, priority)
}

// oauthUpstream accepts only live access tokens of o, as Bearer with the OAuth beta.
func oauthUpstream(t *testing.T, o *fakeupstream.OAuth) (*fakeupstream.Anthropic, string) {
	fake := &fakeupstream.Anthropic{}
	fake.Script = func(_ int, r *fakeupstream.Recorded) *fakeupstream.Reply {
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.Header.Get("X-Api-Key") != "" || !o.Valid(tok) {
			return &fakeupstream.Reply{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"OAuth token has expired"}}`}
		}
		if !strings.Contains(r.Header.Get("Anthropic-Beta"), "oauth-2025-04-20") {
			return &fakeupstream.Reply{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"OAuth authentication is currently not supported."}}`}
		}
		return nil
	}
	return fake, upstream(t, fake).URL
}

func TestOAuthAccountEndToEnd(t *testing.T) {
	o := &fakeupstream.OAuth{Delay: 50 * time.Millisecond}
	tokens := upstream(t, o)
	fake, api := oauthUpstream(t, o)
	first := o.Issue()
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+oauthAccount("max-1", api, tokens.URL, first, 100))

	// 100 concurrent requests on a cold (never refreshed) token: exactly one refresh.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", r.URL+"/v1/messages", strings.NewReader(`{"model":"m","max_tokens":1,"messages":[]}`))
			req.Header.Set("X-Api-Key", relayKey)
			req.Header.Set("Anthropic-Beta", "client-beta-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := o.Refreshes.Load(); n != 1 {
		t.Fatalf("%d refreshes for 100 concurrent requests", n)
	}
	got := fake.Requests()[0]
	if beta := got.Header.Get("Anthropic-Beta"); beta != "client-beta-1,oauth-2025-04-20" {
		t.Fatalf("client betas not kept with the OAuth beta: %q", beta)
	}

	// The upstream revokes the access token: a 401 forces one refresh and one
	// retry on the same account; the client never notices.
	o.Expire()
	text, err := ask(t, r)
	if err != nil || text != "Hello from fake upstream" {
		t.Fatalf("after revocation: %q %v", text, err)
	}
	if o.Refreshes.Load() != 2 || o.Reuses.Load() != 0 {
		t.Fatalf("refreshes %d reuses %d", o.Refreshes.Load(), o.Reuses.Load())
	}

	// Restart: the rotated chain continues from the database (the config's
	// first token is consumed; using it would be a reuse).
	r2 := r.Restart()
	o.Expire()
	if _, err := ask(t, r2); err != nil {
		t.Fatal(err)
	}
	if o.Reuses.Load() != 0 {
		t.Fatal("a consumed refresh token was used after restart")
	}
	for _, line := range strings.Split(r.Logs.String()+r2.Logs.String(), "\n") {
		for _, secret := range []string{first, "fake-refresh", "fake-access", relayKey} {
			if strings.Contains(line, secret) {
				t.Fatalf("secret in log: %s", line)
			}
		}
	}
}

// invalid_grant marks the account "token invalid" (shown with the fix) and
// the request fails over.
func TestOAuthInvalidGrantFailsOver(t *testing.T) {
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	_, api := oauthUpstream(t, o)
	backup := &fakeupstream.Anthropic{Text: "from backup"}
	bu := upstream(t, backup)
	cfg := oauthAccount("max-1", api, tokens.URL, "sk-ant-ort01-never-issued-xxxxxxxx", 200) + claudeAPIAccount("backup", bu.URL, "k", 100)
	r := startRelay(t, cfg)
	text, err := ask(t, r)
	if err != nil || text != "from backup" {
		t.Fatalf("%q %v", text, err)
	}
	cd := cooldownOf(t, r, "max-1")
	if cd.Kind != "token_invalid" {
		t.Fatalf("cooldown %+v", cd)
	}
	sts := listedAs(t, r, "token_invalid")
	if !strings.Contains(sts[0].Detail, "ccrelay login claude --account max-1") {
		t.Fatalf("status %+v", sts[0])
	}
	if strings.Contains(r.Logs.String(), "never-issued") {
		t.Fatal("refresh token in logs")
	}
}

// A token endpoint that is down cools the account briefly and fails over: never a bare 500.
func TestOAuthRefreshServerErrorFailsOver(t *testing.T) {
	o := &fakeupstream.OAuth{Fail: func() (int, string) { return 503, `{"error":"temporarily_unavailable"}` }}
	tokens := upstream(t, o)
	_, api := oauthUpstream(t, o)
	backup := &fakeupstream.Anthropic{Text: "from backup"}
	bu := upstream(t, backup)
	r := startRelay(t, oauthAccount("max-1", api, tokens.URL, o.Issue(), 200)+claudeAPIAccount("backup", bu.URL, "k", 100))
	text, err := ask(t, r)
	if err != nil || text != "from backup" {
		t.Fatalf("%q %v", text, err)
	}
	if cd := cooldownOf(t, r, "max-1"); cd.Kind != "server_error" || time.Until(cd.Until) > time.Minute {
		t.Fatalf("cooldown %+v", cd)
	}
}
