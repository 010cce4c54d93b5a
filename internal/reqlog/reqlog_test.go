package reqlog

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSpecBuild(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	c, err := Spec{Key: "alice", For: "30m"}.Build(now)
	if err != nil || c.Until != now.Add(30*time.Minute) || c.SampleRate != 1 || c.Keep != DefaultKeep || c.BodyCap() != DefaultMaxBodyBytes {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tt := range []struct {
		spec Spec
		want string
	}{
		{Spec{}, "say whose requests"},
		{Spec{Key: "a", For: "8d"}, "for must be a duration"},
		{Spec{Key: "a", For: "-1h"}, "for must be a duration"},
		{Spec{Key: "a", SampleRate: 1.5}, "sample rate"},
		{Spec{Key: "a", MaxBodyBytes: MaxBodyBytesLimit + 1}, "max body bytes"},
	} {
		if _, err := tt.spec.Build(now); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.spec, err, tt.want)
		}
	}
}

func TestCandidatesAndTake(t *testing.T) {
	now := time.Now()
	alice := Capture{ID: 1, Key: "alice", SampleRate: 1, Until: now.Add(time.Hour)}
	acct := Capture{ID: 2, Account: "a1", SampleRate: 1, Until: now.Add(time.Hour)}
	errs := Capture{ID: 3, ErrorsOnly: true, SampleRate: 1, Until: now.Add(time.Hour)}
	ended := Capture{ID: 4, Key: "bob", SampleRate: 1, Until: now.Add(-time.Second)}
	never := Capture{ID: 5, Key: "bob", SampleRate: 0.000001, Until: now.Add(time.Hour)}
	s := NewSet([]Capture{alice, acct, errs, ended}, now)
	if len(s.List()) != 3 {
		t.Fatalf("ended capture kept: %+v", s.List())
	}
	if s := NewSet(nil, now); !s.Empty() {
		t.Fatal("empty set")
	}
	ids := func(cs []*Capture) (out []int64) {
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	if got := ids(s.Candidates("bob", now)); len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("bob's candidates %v", got)
	}
	if got := ids(s.Candidates("alice", now)); len(got) != 3 {
		t.Fatalf("alice's candidates %v", got)
	}
	cands := s.Candidates("bob", now)
	if Take(cands, []string{"a0"}, 200) != nil {
		t.Fatal("bob's ok request on a0 taken")
	}
	if k := Take(cands, []string{"a0", "a1"}, 200); k == nil || k.ID != 2 {
		t.Fatalf("a request that tried a1: %+v", k)
	}
	if k := Take(cands, []string{"a0"}, 502); k == nil || k.ID != 3 {
		t.Fatalf("a failed request: %+v", k)
	}
	rare := NewSet([]Capture{never}, now)
	for range 100 {
		if len(rare.Candidates("bob", now)) != 0 {
			t.Fatal("a one-in-a-million sample took one of 100")
		}
	}
}

func TestRedaction(t *testing.T) {
	body := []byte(`{"api_key":"sk-whatever-123","nested":{"Refresh_Token":"1//abc\"def","password":"hunter2"},"text":"Authorization: Bearer abcdefgh12345678 and relay-key-0123456789","n":1}`)
	got := string(Exact(Fields(body), []string{"relay-key-0123456789"}))
	for _, leak := range []string{"sk-whatever-123", "1//abc", "hunter2", "abcdefgh12345678", "relay-key-0123456789"} {
		if strings.Contains(got, leak) {
			t.Fatalf("%q left in %s", leak, got)
		}
	}
	if !strings.Contains(got, `"n":1`) || !strings.Contains(got, `"api_key":"[redacted]"`) {
		t.Fatalf("redaction broke the JSON: %s", got)
	}
	h := http.Header{"X-Api-Key": {"k"}, "Authorization": {"Bearer x"}, "Cookie": {"c"}, "User-Agent": {"ua/1"}}
	hs := Header(h)
	if strings.Contains(hs, "Bearer x") || !strings.Contains(hs, "User-Agent: ua/1") || strings.Count(hs, Redacted) != 3 {
		t.Fatalf("header: %q", hs)
	}
}
