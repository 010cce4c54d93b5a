package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// These tests drive the codex-oauth route with the official openai-go SDK
// against a fake ChatGPT backend; codexcli_test.go runs the real Codex CLI.

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

// The ChatGPT account comes from the refreshed id token, as Codex CLI takes
// it: a stale chatgpt_account_id in the config gives way to the id token's,
// and a later id token naming another account moves the requests there.
func TestCodexOAuthAccountFromIDToken(t *testing.T) {
	o := &fakeupstream.OAuth{}
	o.SetIDTokenAccount("ws-2")
	tokens := upstream(t, o)
	fake := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-2"}
	api := upstream(t, fake).URL + "/backend-api/codex"
	r := startRelay(t, codexAccount("cx", api, tokens.URL, o.Issue(), "ws-stale", 100))
	c := r.openaiClient("/v1")

	resp, err := c.Responses.New(context.Background(), responsesParams("gpt-5"))
	if err != nil || resp.OutputText() != "Hello from fake upstream" {
		t.Fatalf("%v %v", resp, err)
	}
	if got := fake.Requests()[0].Header.Get("Chatgpt-Account-Id"); got != "ws-2" {
		t.Fatalf("first request carried account %q, want the id token's ws-2", got)
	}
	if !strings.Contains(r.Logs.String(), "upstream account id taken from the refreshed id token") {
		t.Error("no log line for the account id that replaced the config's")
	}

	// The workspace changes: the access token is revoked, the refresh that
	// follows names ws-3, and the retried request carries it.
	o.SetIDTokenAccount("ws-3")
	fake.SetAccountID("ws-3")
	o.Expire()
	if _, err := c.Responses.New(context.Background(), responsesParams("gpt-5")); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Requests()
	if got := reqs[len(reqs)-1].Header.Get("Chatgpt-Account-Id"); got != "ws-3" {
		t.Fatalf("after the refresh the request carried %q, want ws-3", got)
	}
	if o.Refreshes.Load() != 2 {
		t.Fatalf("%d refreshes, want 2", o.Refreshes.Load())
	}
}

// codex-oauth accounts: the model list does not ask them (their backend has
// no public list in OpenAI's shape); a Chat Completions request for an
// OpenAI model is converted for them (the protocol matrix), and one for a
// model whose name places it in no pool, finding no Claude account, says
// why, in OpenAI's error shape.
func TestCodexOAuthModelsAndChat(t *testing.T) {
	o := &fakeupstream.OAuth{}
	tokens := upstream(t, o)
	chatgpt := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
	cx := upstream(t, chatgpt).URL + "/backend-api/codex"

	t.Run("only codex-oauth", func(t *testing.T) {
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+codexAccount("cx", cx, tokens.URL, o.Issue(), "ws-1", 100))
		c := r.openaiClient("/openai/v1")
		_, err := c.Models.List(context.Background())
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotImplemented ||
			!strings.Contains(apiErr.Message, "codex-oauth") || !strings.Contains(apiErr.Message, "/openai/v1/responses") {
			t.Fatalf("models: %v", err)
		}
		_, err = c.Chat.Completions.New(context.Background(), chatParams("local-model"))
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable ||
			!strings.Contains(apiErr.Message, "Claude accounts") || !strings.Contains(apiErr.Message, "codex-oauth") ||
			!strings.Contains(apiErr.Message, "gpt-*") {
			t.Fatalf("chat: %v", err)
		}
		if n := len(chatgpt.Requests()); n != 0 {
			t.Fatalf("the ChatGPT backend got %d requests", n)
		}
		if _, err := c.Chat.Completions.New(context.Background(), chatParams("gpt-5")); err != nil {
			t.Fatalf("chat on gpt-5: %v", err)
		}
		if n := len(chatgpt.Requests()); n != 1 {
			t.Fatalf("the ChatGPT backend got %d requests, want the converted Chat request", n)
		}
	})
	t.Run("with an api key account", func(t *testing.T) {
		apiKey := &fakeupstream.OpenAI{Keys: []string{"sk-oa"}}
		oa := upstream(t, apiKey).URL + "/v1"
		// The codex account comes first by priority: the list must still
		// come from the API-key account.
		r := startRelay(t, codexAccount("cx", cx, tokens.URL, o.Issue(), "ws-1", 200)+openaiAccount("oa", oa, "sk-oa", 100))
		c := r.openaiClient("/openai/v1")
		before := len(chatgpt.Requests())
		page, err := c.Models.List(context.Background())
		if err != nil || len(page.Data) != 1 || page.Data[0].ID != "gpt-fake-1" {
			t.Fatalf("models %+v %v", page, err)
		}
		if n := len(chatgpt.Requests()) - before; n != 0 {
			t.Fatalf("the ChatGPT backend got %d requests", n)
		}
	})
}

// toolParams is a Responses request with one function tool; input is the
// conversation so far.
func toolParams(input responses.ResponseInputParam) responses.ResponseNewParams {
	return responses.ResponseNewParams{
		Model: shared.ResponsesModel("gpt-5"),
		Input: responses.ResponseNewParamsInputUnion{OfInputItemList: input},
		Tools: []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{
			Name:        "run_shell",
			Description: openai.String("Run a shell command"),
			Parameters:  map[string]any{"type": "object", "properties": map[string]any{"cmd": map[string]any{"type": "string"}}, "required": []string{"cmd"}},
			Strict:      openai.Bool(false),
		}}},
		Store: openai.Bool(false),
	}
}

// A tool round trip through a codex-oauth account with the openai-go SDK:
// the backend asks for a function call, the client answers with its output,
// the backend answers text. The backend sees store false and a stream every
// time, with the tools and every input item kept; the client parses the
// call and the answer, streaming or not.
func TestCodexOAuthToolRoundTrip(t *testing.T) {
	const args = `{"cmd":"echo hello"}`
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			o := &fakeupstream.OAuth{}
			tokens := upstream(t, o)
			fake := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1"}
			fake.Text = "The command printed hello."
			fake.Script = func(n int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
				if gjson.GetBytes(rec.Body, `input.#(type=="function_call_output")`).Exists() {
					return nil // the default text answer
				}
				return &fakeupstream.Reply{Events: fakeupstream.ResponseFunctionCallStream("gpt-5", "call_fake01", "run_shell", args)}
			}
			api := upstream(t, fake).URL + "/backend-api/codex"
			r := startRelay(t, codexAccount("cx", api, tokens.URL, o.Issue(), "ws-1", 100))
			c := r.openaiClient("/openai/v1")

			input := responses.ResponseInputParam{responses.ResponseInputItemParamOfMessage("what does echo hello print?", responses.EasyInputMessageRoleUser)}
			var call responses.ResponseFunctionToolCall
			if stream {
				s := c.Responses.NewStreaming(context.Background(), toolParams(input))
				var argDeltas strings.Builder
				var final responses.Response
				for s.Next() {
					ev := s.Current()
					switch ev.Type {
					case "response.function_call_arguments.delta":
						argDeltas.WriteString(ev.Delta)
					case "response.completed":
						final = ev.Response
					}
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				if argDeltas.String() != args || len(final.Output) != 1 {
					t.Fatalf("argument deltas %q, final output %+v", argDeltas.String(), final.Output)
				}
				call = final.Output[0].AsFunctionCall()
			} else {
				resp, err := c.Responses.New(context.Background(), toolParams(input))
				if err != nil {
					t.Fatal(err)
				}
				if len(resp.Output) != 1 || resp.Output[0].Type != "function_call" {
					t.Fatalf("output %+v", resp.Output)
				}
				call = resp.Output[0].AsFunctionCall()
			}
			if call.Name != "run_shell" || call.CallID != "call_fake01" || call.Arguments != args {
				t.Fatalf("function call %+v", call)
			}

			out := responses.ResponseInputItemParamOfFunctionCallOutput("hello\n")
			out.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			input = append(input, responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name), out)
			var text string
			if stream {
				_, text, _ = readResponsesStream(t, c, toolParams(input))
			} else {
				resp, err := c.Responses.New(context.Background(), toolParams(input))
				if err != nil {
					t.Fatal(err)
				}
				text = resp.OutputText()
			}
			if text != "The command printed hello." {
				t.Fatalf("final text %q", text)
			}

			reqs := fake.Requests()
			if len(reqs) != 2 {
				t.Fatalf("the backend got %d requests, want 2", len(reqs))
			}
			for i, rec := range reqs {
				b := gjson.ParseBytes(rec.Body)
				if b.Get("store").Type != gjson.False || !b.Get("stream").Bool() || b.Get("tools.0.name").Str != "run_shell" ||
					rec.Header.Get("Chatgpt-Account-Id") != "ws-1" {
					t.Fatalf("request %d: %s", i, rec.Body)
				}
			}
			items := gjson.GetBytes(reqs[1].Body, "input").Array()
			if len(items) != 3 || items[0].Get("role").Str != "user" ||
				items[1].Get("type").Str != "function_call" || items[1].Get("call_id").Str != "call_fake01" || items[1].Get("arguments").Str != args ||
				items[2].Get("type").Str != "function_call_output" || items[2].Get("call_id").Str != "call_fake01" || items[2].Get("output").Str != "hello\n" {
				t.Fatalf("second request input: %s", gjson.GetBytes(reqs[1].Body, "input").Raw)
			}
		})
	}
}

// An OpenAI access token is a JSON Web Token: one an upstream echoes in an
// error reaches the client as [redacted], the wording around it intact
// (issue #31 item 14).
func TestCodexAccessTokenInErrorIsRedacted(t *testing.T) {
	o := &fakeupstream.OAuth{JWTAccess: true}
	tokens := upstream(t, o)
	chatgpt := &fakeupstream.ChatGPT{Tokens: o, AccountID: "ws-1", Script: func(_ int, rec *fakeupstream.Recorded) *fakeupstream.Reply {
		tok := strings.TrimPrefix(rec.Header.Get("Authorization"), "Bearer ")
		return &fakeupstream.Reply{Status: 400, Body: `{"detail":"Unsupported parameter for token ` + tok + `: temperature"}`}
	}}
	r := startRelay(t, codexAccount("cx", upstream(t, chatgpt).URL+"/backend-api/codex", tokens.URL, o.Issue(), "ws-1", 100))
	code, body := rawHTTP(t, r.URL, "POST", "/v1/responses", map[string]string{"Content-Type": "application/json"}, `{"model":"gpt-5","input":"hi"}`)
	seen := strings.TrimPrefix(chatgpt.Requests()[0].Header.Get("Authorization"), "Bearer ")
	if !strings.HasPrefix(seen, "eyJ") {
		t.Fatalf("the fake did not issue a JWT: %q", seen)
	}
	if code != 400 || strings.Contains(body, seen) || strings.Contains(body, "eyJ") {
		t.Fatalf("%d %s", code, body)
	}
	if !strings.Contains(body, "Unsupported parameter for token [redacted]: temperature") {
		t.Fatalf("wording changed: %s", body)
	}
}
