package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// These tests drive the codex-oauth route with the official openai-go SDK
// against a fake ChatGPT backend; the real Codex CLI is not run here (no
// pinned Codex binary is part of the test set-up).

func codexAccount(id, apiURL, tokenURL, refresh, chatgptAccount string, priority int) string {
	return fmt.Sprintf("[[accounts]]\ntype = \"codex-oauth\"\nid = %q\nrefresh_token = %q\napi_url = %q\ntoken_url = %q\nchatgpt_account_id = %q\npriority = %d\n",
		id, refresh, apiURL, tokenURL, chatgptAccount, priority)
}

func TestCodexOAuthEndToEnd(t *testing.T) {
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	fake := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
	api := upstream(t, fake).URL + "/backend-api/codex"
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codexAccount("cx", api, tokens.URL, o.Issue(), "ws-1", 100))
	c := r.openaiClient("/v1")

	// 100 concurrent non-streaming requests on a cold token: one refresh,
	// every client gets the aggregated Responses object.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := responsesParams("gpt-5")
			p.Temperature = openai.Float(0.3) // refused by the backend: the relay removes it
			resp, err := c.Responses.New(context.Background(), p)
			if err == nil && (resp.OutputText() != "Hello from fake upstream" || resp.Usage.OutputTokens != 9) {
				err = fmt.Errorf("response %q %+v", resp.OutputText(), resp.Usage)
			}
			if err != nil {
				errs <- err
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
	b := gjson.ParseBytes(got.Body)
	if got.Path != "/backend-api/codex/responses" || b.Get("store").Type != gjson.False || !b.Get("stream").Bool() ||
		b.Get("temperature").Exists() || got.Header.Get("Originator") != "codex_cli_rs" {
		t.Fatalf("upstream request %s %s %v", got.Path, got.Body, got.Header)
	}

	// Streaming passes through; usage comes from response.completed.
	_, text, final := readResponsesStream(t, c, responsesParams("gpt-5"))
	if text == "" || final.Status != "completed" {
		t.Fatalf("stream text %q status %q", text, final.Status)
	}

	// A revoked access token: one refresh (rotating), one retry, unseen by the client.
	o.Expire()
	if _, err := c.Responses.New(context.Background(), responsesParams("gpt-5")); err != nil {
		t.Fatal(err)
	}
	if o.Refreshes.Load() != 2 || o.Reuses.Load() != 0 {
		t.Fatalf("refreshes %d reuses %d", o.Refreshes.Load(), o.Reuses.Load())
	}
}

// codex-oauth and openai-responses share a pool and fail over to each other.
func TestCodexOAuthFailover(t *testing.T) {
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	chatgpt := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
	cx := upstream(t, chatgpt).URL + "/backend-api/codex"
	apiKey := &fakeupstream.OpenAI{Keys: []string{"sk-oa"}, Text: "from api key"}
	oa := upstream(t, apiKey).URL + "/v1"

	t.Run("codex down, api key serves", func(t *testing.T) {
		chatgpt.Script = func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
			return &fakeupstream.Reply{Status: 503, Body: `{"detail":"upstream unavailable"}`}
		}
		r := startRelay(t, codexAccount("cx", cx, tokens.URL, o.Issue(), "ws-1", 200)+openaiAccount("oa", oa, "sk-oa", 100))
		c := r.openaiClient("/v1")
		resp, err := c.Responses.New(context.Background(), responsesParams("gpt-5"))
		if err != nil || resp.OutputText() != "from api key" {
			t.Fatalf("%v %v", resp, err)
		}
		if cd := cooldownOf(t, r, "cx"); cd.Kind != "server_error" {
			t.Fatalf("cooldown %+v", cd)
		}
	})
	t.Run("api key rate limited, codex serves", func(t *testing.T) {
		chatgpt.Script = nil
		apiKey.Script = func(int, *fakeupstream.Recorded) *fakeupstream.Reply { return fakeupstream.OpenAIRateLimited(30) }
		r := startRelay(t, codexAccount("cx", cx, tokens.URL, o.Issue(), "ws-1", 100)+openaiAccount("oa", oa, "sk-oa", 200))
		c := r.openaiClient("/v1")
		resp, err := c.Responses.New(context.Background(), responsesParams("gpt-5"))
		if err != nil || resp.OutputText() != "Hello from fake upstream" {
			t.Fatalf("%v %v", resp, err)
		}
	})
	t.Run("request-scoped 400 never cools the account", func(t *testing.T) {
		chatgpt.Script = func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
			return &fakeupstream.Reply{Status: 400, Body: `{"detail":"Unsupported model"}`}
		}
		r := startRelay(t, codexAccount("cx", cx, tokens.URL, o.Issue(), "ws-1", 100))
		c := r.openaiClient("/v1")
		_, err := c.Responses.New(context.Background(), responsesParams("gpt-5"))
		if err == nil {
			t.Fatal("want the 400")
		}
		if cd := cooldownOf(t, r, "cx"); cd.Kind != "" {
			t.Fatalf("a request-scoped 400 cooled the account: %+v", cd)
		}
	})
}
