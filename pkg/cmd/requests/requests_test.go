package requests

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/store"

	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

func TestNewCmdRequestsFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		check   func(*Options) bool
		wantErr string
	}{
		{"list filters", "--errors --key alice --account a1 --since 1h --limit 5", func(o *Options) bool {
			return o.Errors && o.Key == "alice" && o.Account == "a1" && o.Since == "1h" && o.Limit == 5 && o.ID == ""
		}, ""},
		{"one request", "req_abc --json", func(o *Options) bool { return o.ID == "req_abc" && o.JSON }, ""},
		{"follow", "-f --json", func(o *Options) bool { return o.Follow && o.JSON }, ""},
		{"follow with an id", "req_abc --follow", nil, "takes no request id"},
		{"bad since", "--since soon", nil, "--since"},
		{"bad limit", "--limit 5000", nil, "--limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmdRequests(&cmdutil.Factory{IOStreams: ios}, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(strings.Fields(tt.args))
			cmd.SetOut(ios.ErrOut)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(got) {
				t.Fatalf("err %v, opts %+v", err, got)
			}
		})
	}
}

func TestQuerySendsAbsoluteSince(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	o := &Options{Since: "1h", Errors: true, Status: 502, Now: func() time.Time { return now }}
	q := o.query()
	if q.Get("since") != "2026-12-07T11:00:00Z" || q.Get("errors") != "true" || q.Get("status") != "502" {
		t.Fatalf("query %v", q)
	}
}

// A request served as another model shows both, in the list and in the
// detail; one served as asked shows its model once.
func TestModelServedShown(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	rows := []store.RequestRow{
		{ID: "req_routed", Time: now, Model: "claude-sonnet-4", ServedModel: "gpt-5-codex", Platform: "openai", Account: "chatgpt-pro", Status: 200},
		{ID: "req_plain", Time: now, Model: "claude-sonnet-4", Platform: "claude", Account: "max-1", Status: 200},
	}
	var list bytes.Buffer
	if err := writeTable(&list, rows, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(list.String(), "\n")
	if !strings.Contains(lines[1], "claude-sonnet-4 > gpt-5-codex") || strings.Contains(lines[2], ">") || !strings.Contains(lines[2], "claude-sonnet-4") {
		t.Errorf("list:\n%s", list.String())
	}
	for _, tt := range []struct {
		row  store.RequestRow
		want string
	}{
		{rows[0], "Model:    claude-sonnet-4 (model served: gpt-5-codex, on openai)\n"},
		{rows[1], "Model:    claude-sonnet-4\n"},
	} {
		var out bytes.Buffer
		if err := writeDetail(&out, admin.RequestDetailResponse{RequestDetail: store.RequestDetail{RequestRow: tt.row}}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tt.want) {
			t.Errorf("detail lacks %q:\n%s", tt.want, out.String())
		}
	}
}

// A routed request's attempts name their target and why earlier targets
// were passed over.
func TestAttemptTargetShown(t *testing.T) {
	row := store.RequestRow{ID: "req_fb", Model: "claude-sonnet-4", ServedModel: "gpt-5-codex", Status: 200,
		Attempts: []store.AttemptRow{{Account: "chatgpt-pro", Target: "openai:gpt-5-codex", Fallback: "claude: no claude account is available", Status: 200, Verdict: "ok"}}}
	var out bytes.Buffer
	if err := writeDetail(&out, admin.RequestDetailResponse{RequestDetail: store.RequestDetail{RequestRow: row}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"passed over: claude: no claude account is available\n", "target:  openai:gpt-5-codex\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("detail lacks %q:\n%s", want, out.String())
		}
	}
}
