package e2e

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/pkg/cmd/capture"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

const (
	aliceKey    = "ccr-alice-e2e-0123456789"
	bobKey      = "ccr-bob-e2e-0123456789"
	captureAcct = "sk-ant-capture-account-0123456789"
)

// captureRelay serves two named keys from one account.
func captureRelay(t *testing.T) *relayUT {
	t.Helper()
	up := upstream(t, &fakeupstream.Anthropic{Keys: []string{captureAcct}, Text: "captured answer"})
	cfg := fmt.Sprintf("admin_keys = [%q]\n\n[[keys]]\nname = \"alice\"\nkey = %q\n\n[[keys]]\nname = \"bob\"\nkey = %q\n\n", e2eAdminKey, aliceKey, bobKey) +
		claudeAPIAccount("acct-1", up.URL, captureAcct, 100)
	return startRelay(t, cfg)
}

// streamAs sends one streamed request as key whose text names both secrets,
// as a careless prompt might.
func streamAs(t *testing.T, r *relayUT, key string) {
	t.Helper()
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
	p := newParams("claude-sonnet-4-5")
	p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("my keys are " + key + " and " + captureAcct))}
	s := c.Messages.NewStreaming(context.Background(), p)
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
}

// A capture started for alice through the admin API stores alice's request
// and streamed answer, not bob's; neither the relay key nor the account's
// credential is in anything stored or served; stopping it stops capturing.
func TestCaptureOneKeyThroughAdminAPI(t *testing.T) {
	r := captureRelay(t)
	var c reqlog.Capture
	if st, raw := adminCall(t, r, "POST", "captures", `{"key":"alice","for":"1h"}`, &c); st != 201 || c.ID == 0 || c.Key != "alice" {
		t.Fatalf("start: %d %s", st, raw)
	}
	streamAs(t, r, aliceKey)
	streamAs(t, r, bobKey)
	page := waitRequests(t, r, url.Values{}, 2)
	byKey := map[string]store.RequestRow{}
	for _, row := range page.Requests {
		byKey[row.Key] = row
	}
	if !byKey["alice"].Captured || byKey["bob"].Captured {
		t.Fatalf("captured: alice %v, bob %v", byKey["alice"].Captured, byKey["bob"].Captured)
	}
	var d admin.RequestDetailResponse
	st, raw := adminCall(t, r, "GET", "requests/"+byKey["alice"].ID, "", &d)
	if st != 200 || d.Bodies == nil || d.Bodies.CaptureID != c.ID {
		t.Fatalf("alice's detail %d: %s", st, raw)
	}
	b := d.Bodies
	if !strings.Contains(b.Request, `"claude-sonnet-4-5"`) || !strings.Contains(b.Request, "my keys are [redacted] and [redacted]") ||
		!strings.Contains(b.Response, "event: message_start") || !strings.Contains(b.Response, "event: message_stop") ||
		!(strings.Contains(b.RequestHeader, "X-Api-Key: [redacted]") || strings.Contains(b.RequestHeader, "Authorization: [redacted]")) {
		t.Fatalf("bodies: %+v", b)
	}
	if st, raw := adminCall(t, r, "GET", "requests/"+byKey["bob"].ID, "", &d); st != 200 || strings.Contains(raw, `"bodies": {`) {
		t.Fatalf("bob's detail %d: %s", st, raw)
	}
	assertNoSecretStored(t, r)

	var list admin.CaptureList
	if st, raw := adminCall(t, r, "POST", fmt.Sprintf("captures/%d/stop", c.ID), "", &list); st != 200 || list.Active != 0 || !list.Captures[0].Stopped || list.Captures[0].Captured != 1 {
		t.Fatalf("stop: %d %s", st, raw)
	}
	streamAs(t, r, aliceKey)
	page = waitRequests(t, r, url.Values{"key": {"alice"}}, 2)
	if page.Requests[0].Captured {
		t.Fatal("a stopped capture still captured")
	}
}

// assertNoSecretStored reads every table the request log writes and finds
// no relay key and no account credential.
func assertNoSecretStored(t *testing.T, r *relayUT) {
	t.Helper()
	db, err := store.OpenReadOnly(r.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Requests(context.Background(), store.RequestQuery{Limit: store.MaxRequestPage})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		d, err := db.Request(context.Background(), row.ID)
		if err != nil {
			t.Fatal(err)
		}
		dump := fmt.Sprintf("%+v %+v", d.RequestRow, d.Bodies)
		for _, s := range []string{aliceKey, bobKey, captureAcct, e2eAdminKey} {
			if strings.Contains(dump, s) {
				t.Fatalf("secret %q stored: %s", s, dump)
			}
		}
	}
}

// `ccrelay capture on` without --server writes the capture to the
// database; the running relay applies it (it reads captures every two
// seconds), and `capture list` shows what it stored.
func TestCaptureOnFromLocalCLI(t *testing.T) {
	r := captureRelay(t)
	ios, _, out, errOut := iostreams.Test()
	db, err := store.Open(r.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := &cmdutil.Factory{IOStreams: ios, Getenv: func(string) string { return "" }, DB: func() (*store.DB, error) { return db, nil }}
	root := capture.NewCmdCapture(f)
	root.SetArgs([]string{"on", "--errors", "--for", "10m"})
	if err := root.Execute(); err != nil {
		t.Fatalf("capture on: %v\n%s", err, errOut)
	}
	if !strings.Contains(out.String(), "Capture 1 on: every request that fails") {
		t.Fatalf("capture on said: %s", out)
	}
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(r.URL), option.WithAPIKey(bobKey), option.WithMaxRetries(0))
	var captured store.RequestRow
	waitFor(t, 10*time.Second, "the relay captures a failed request", func() bool {
		_, _ = c.Messages.New(context.Background(), newParams(strings.Repeat("m", 300))) // too long a model name: 400 from the relay
		rows, err := db.Requests(context.Background(), store.RequestQuery{Errors: true, Limit: 1})
		if err != nil || len(rows) == 0 {
			return false
		}
		captured = rows[0]
		return captured.Captured
	})
	if captured.Status != 400 {
		t.Fatalf("captured %+v", captured)
	}
	streamAs(t, r, bobKey) // succeeds: not captured
	out.Reset()
	root.SetArgs([]string{"list"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "every request that fails") || !strings.Contains(out.String(), " on ") {
		t.Fatalf("capture list:\n%s", out)
	}
	rows := waitRequests(t, r, url.Values{"status": {"200"}}, 1).Requests
	if rows[0].Captured {
		t.Fatal("an errors-only capture took a successful request")
	}
}
