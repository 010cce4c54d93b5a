package testcmd

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// accounts test makes a real call per account (refreshing OAuth tokens first)
// and exits non-zero when any fails, naming the step and the upstream error.
func TestAccountsTest(t *testing.T) {
	good := httptest.NewServer(&fakeupstream.Anthropic{Keys: []string{"sk-good-key-123"}})
	defer good.Close()
	o := &fakeupstream.OAuth{}
	tokens := httptest.NewServer(o)
	defer tokens.Close()
	oauthAPI := httptest.NewServer(&fakeupstream.Anthropic{})
	defer oauthAPI.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	src := fmt.Sprintf(`[[accounts]]
type = "claude-api"
id = "good"
api_key = "sk-good-key-123"
api_url = %q
[[accounts]]
type = "claude-api"
id = "badkey"
api_key = "sk-wrong-key-456"
api_url = %q
[[accounts]]
type = "claude-api"
id = "dead"
api_key = "sk-dead-key-789"
api_url = %q
[[accounts]]
type = "claude-oauth"
id = "max"
refresh_token = %q
api_url = %q
token_url = %q
[server]
database_path = %q
`, good.URL, good.URL, dead, o.Issue(), oauthAPI.URL, tokens.URL, filepath.Join(t.TempDir(), "r.db"))
	cfg, err := config.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	ios, _, out, _ := iostreams.Test()
	opts := &Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, Timeout: 5 * time.Second}
	err = testRun(opts)
	var ee *cmdutil.ExitError
	if !errors.As(err, &ee) || ee.Code != 1 || !strings.Contains(err.Error(), "2 of 4") {
		t.Fatalf("want exit 1 for 2 of 4 failing, got %v\n%s", err, out)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) > 1 {
			lines[f[0]] = l
		}
	}
	for id, want := range map[string]string{"good": " ok ", "max": " ok ", "badkey": "upstream answered 401", "dead": "request: "} {
		if !strings.Contains(lines[id], want) {
			t.Errorf("%s: %q lacks %q", id, lines[id], want)
		}
	}
	if o.Refreshes.Load() != 1 {
		t.Fatalf("oauth account refreshed %d times", o.Refreshes.Load())
	}
	for _, secret := range []string{"sk-good-key-123", "sk-wrong-key-456", "fake-refresh", "fake-access"} {
		if bytes.Contains(out.Bytes(), []byte(secret)) {
			t.Fatalf("secret %s in output", secret)
		}
	}
	// Only the named accounts, JSON.
	ios, _, out, _ = iostreams.Test()
	opts = &Options{IO: ios, Config: func() (*config.Config, error) { return cfg, nil }, Timeout: 5 * time.Second, IDs: []string{"good"}, JSON: true}
	if err := testRun(opts); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if !strings.Contains(out.String(), `"ok": true`) {
		t.Fatal(out.String())
	}
	opts.IDs = []string{"nope"}
	if err := testRun(opts); err == nil {
		t.Fatal("unknown id accepted")
	}
}
