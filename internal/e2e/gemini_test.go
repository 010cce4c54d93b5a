package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"google.golang.org/genai"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/usage"
)

const (
	geminiModel    = "gemini-2.5-flash"
	geminiKey      = "AIzaFakeAccountKey0123456789"
	googleRefresh  = "1//fake-google-refresh-token"
	fakeGeminiText = "Hello from fake Gemini"
	fakeCAText     = "Hello from fake Code Assist"
)

func geminiAPIAccount(id, url, key string, priority int) string {
	return fmt.Sprintf("[[accounts]]\ntype = \"gemini-api\"\nid = %q\napi_key = %q\napi_url = %q\npriority = %d\n", id, key, url, priority)
}

func geminiOAuthAccount(id, codeAssistURL, tokenURL, project string, priority int) string {
	s := fmt.Sprintf("[[accounts]]\ntype = \"gemini\"\nid = %q\nrefresh_token = %q\napi_url = %q\ntoken_url = %q\npriority = %d\n", id, googleRefresh, codeAssistURL, tokenURL, priority)
	if project != "" {
		s += fmt.Sprintf("project_id = %q\n", project)
	}
	return s
}

// codeAssistUpstream starts a fake Code Assist and a fake Google token
// endpoint, and returns the account config for them.
func codeAssistUpstream(t *testing.T, id string, ca *fakeupstream.CodeAssist, priority int) (*fakeupstream.GoogleToken, string) {
	t.Helper()
	tok := &fakeupstream.GoogleToken{RefreshTokens: []string{googleRefresh}}
	caSrv, tokSrv := upstream(t, ca), upstream(t, tok)
	return tok, geminiOAuthAccount(id, caSrv.URL, tokSrv.URL+"/token", "", priority)
}

func (r *relayUT) genaiClient(t *testing.T, version, key string) *genai.Client {
	t.Helper()
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey:      key,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  &http.Client{},
		HTTPOptions: genai.HTTPOptions{BaseURL: r.URL + "/gemini", APIVersion: version},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func userText(s string) []*genai.Content { return genai.Text(s) }

// collectStream reads a genai stream to the end.
func collectStream(t *testing.T, c *genai.Client, model string, cfg *genai.GenerateContentConfig) (string, *genai.GenerateContentResponseUsageMetadata, int) {
	t.Helper()
	var text strings.Builder
	var um *genai.GenerateContentResponseUsageMetadata
	n := 0
	for resp, err := range c.Models.GenerateContentStream(context.Background(), model, userText("say hi"), cfg) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		n++
		text.WriteString(resp.Text())
		if resp.UsageMetadata != nil {
			um = resp.UsageMetadata
		}
	}
	return text.String(), um, n
}

func wantGeminiUsage(t *testing.T, row usageRow, account string, stream bool) {
	t.Helper()
	want := usageRow{Account: account, Model: geminiModel, Status: 200, In: fakeupstream.GeminiPromptTokens - fakeupstream.GeminiCachedTokens,
		Out: fakeupstream.GeminiCandidatesTokens + fakeupstream.GeminiThoughtsTokens, CacheRead: fakeupstream.GeminiCachedTokens, Stream: stream, KeyHash: usage.HashKey(relayKey)}
	if row != want {
		t.Fatalf("usage row %+v, want %+v", row, want)
	}
}

// The genai SDK against gemini-api accounts: generate, stream and count on
// both API versions; bodies and paths reach Google's API as sent, with the
// account's key instead of the relay's.
func TestGeminiAPIEndToEnd(t *testing.T) {
	for _, version := range []string{"v1beta", "v1"} {
		t.Run(version, func(t *testing.T) {
			fake := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}, StreamEvents: 3}
			up := upstream(t, fake)
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("api-1", up.URL, geminiKey, 100))
			c := r.genaiClient(t, version, relayKey)

			resp, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("say hi"), &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("be brief", "")})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text() != fakeGeminiText || resp.UsageMetadata == nil || resp.UsageMetadata.PromptTokenCount != fakeupstream.GeminiPromptTokens {
				t.Fatalf("generate: %q %+v", resp.Text(), resp.UsageMetadata)
			}
			text, um, events := collectStream(t, c, geminiModel, nil)
			if text != fakeGeminiText || events != 3 || um == nil || um.CandidatesTokenCount != fakeupstream.GeminiCandidatesTokens {
				t.Fatalf("stream: %q in %d events, usage %+v", text, events, um)
			}
			ct, err := c.Models.CountTokens(context.Background(), geminiModel, userText("count me"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if ct.TotalTokens != fakeupstream.GeminiCountTokens {
				t.Fatalf("countTokens %+v", ct)
			}

			reqs := fake.Requests()
			if len(reqs) != 3 {
				t.Fatalf("upstream got %d requests", len(reqs))
			}
			for i, want := range []struct{ path, query string }{
				{"/" + version + "/models/" + geminiModel + ":generateContent", ""},
				{"/" + version + "/models/" + geminiModel + ":streamGenerateContent", "alt=sse"},
				{"/" + version + "/models/" + geminiModel + ":countTokens", ""},
			} {
				got := reqs[i]
				if got.Path != want.path || got.RawQuery != want.query {
					t.Errorf("request %d: %s?%s, want %s?%s", i, got.Path, got.RawQuery, want.path, want.query)
				}
				if got.Header.Get("X-Goog-Api-Key") != geminiKey || got.Header.Get("Authorization") != "" {
					t.Errorf("request %d: account key not set or client credential leaked: %v", i, got.Header)
				}
				if strings.Contains(strings.Join(flatten(got.Header), "\n")+got.RawQuery, relayKey) {
					t.Errorf("request %d: the relay key reached the upstream", i)
				}
				if !strings.HasPrefix(got.Header.Get("X-Goog-Api-Client"), "google-genai-sdk/") {
					t.Errorf("request %d: client headers not passed: %v", i, got.Header)
				}
			}
			rows := r.usageRows(3)
			wantGeminiUsage(t, rows[0], "api-1", false)
			wantGeminiUsage(t, rows[1], "api-1", true)
			if rows[2].Status != 200 || rows[2].In != 0 || rows[2].Model != geminiModel {
				t.Fatalf("countTokens usage %+v", rows[2])
			}
		})
	}
}

// The genai SDK against a gemini (Google OAuth) account: the relay refreshes
// the token, discovers the project, wraps each request in Code Assist's
// envelope and unwraps every answer, streamed events included.
func TestGeminiCodeAssistEndToEnd(t *testing.T) {
	ca := &fakeupstream.CodeAssist{StreamEvents: 4, EventGap: 5 * time.Millisecond}
	tok, acct := codeAssistUpstream(t, "ca-1", ca, 100)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+acct)
	c := r.genaiClient(t, "v1beta", relayKey)

	resp, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("say hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != fakeCAText || resp.UsageMetadata == nil || resp.UsageMetadata.ThoughtsTokenCount != fakeupstream.GeminiThoughtsTokens {
		t.Fatalf("generate: %q %+v", resp.Text(), resp.UsageMetadata)
	}
	text, um, events := collectStream(t, c, geminiModel, nil)
	if text != fakeCAText || events != 4 || um == nil || um.PromptTokenCount != fakeupstream.GeminiPromptTokens {
		t.Fatalf("stream: %q in %d events, usage %+v", text, events, um)
	}
	ct, err := c.Models.CountTokens(context.Background(), "gemini-2.5-pro", userText("count me"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ct.TotalTokens != fakeupstream.GeminiCountTokens {
		t.Fatalf("countTokens %+v", ct)
	}

	if tok.Issued() != 1 || ca.LoadCalls() != 1 {
		t.Fatalf("token refreshes %d, loadCodeAssist calls %d; want 1 and 1", tok.Issued(), ca.LoadCalls())
	}
	var calls []*fakeupstream.Recorded
	for _, rec := range ca.Requests() {
		if rec.Path != "/v1internal:loadCodeAssist" {
			calls = append(calls, rec)
		}
	}
	if len(calls) != 3 {
		t.Fatalf("code assist got %d model calls", len(calls))
	}
	for i, want := range []struct{ path, query string }{
		{"/v1internal:generateContent", ""}, {"/v1internal:streamGenerateContent", "alt=sse"}, {"/v1internal:countTokens", ""},
	} {
		got := calls[i]
		if got.Path != want.path || got.RawQuery != want.query {
			t.Errorf("call %d: %s?%s, want %s?%s", i, got.Path, got.RawQuery, want.path, want.query)
		}
		if got.Header.Get("Authorization") != "Bearer ya29.fake-access-1" || got.Header.Get("X-Goog-Api-Key") != "" {
			t.Errorf("call %d: wrong credentials: %v", i, got.Header)
		}
	}
	for _, i := range []int{0, 1} {
		b := calls[i].Body
		if m, p := gjson.GetBytes(b, "model").Str, gjson.GetBytes(b, "project").Str; m != geminiModel || p != fakeupstream.DefaultCodeAssistProject ||
			gjson.GetBytes(b, "request.contents.0.parts.0.text").Str != "say hi" {
			t.Errorf("call %d envelope: %s", i, b)
		}
	}
	if m := gjson.GetBytes(calls[2].Body, "request.model").Str; m != "models/gemini-2.5-pro" || !gjson.GetBytes(calls[2].Body, "request.contents").IsArray() {
		t.Errorf("countTokens envelope: %s", calls[2].Body)
	}
	rows := r.usageRows(3)
	wantGeminiUsage(t, rows[0], "ca-1", false)
	wantGeminiUsage(t, rows[1], "ca-1", true)
}

// rawGemini posts body to the relay and returns the status, headers and body.
func rawGemini(t *testing.T, method, u, body string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// sseData returns the data payloads of an SSE body.
func sseData(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	for _, ev := range strings.Split(strings.TrimSpace(body), "\n\n") {
		var lines []string
		for _, l := range strings.Split(ev, "\n") {
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				lines = append(lines, d)
			} else {
				t.Fatalf("unexpected SSE line %q in %q", l, body)
			}
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return out
}

// The client's body reaches Code Assist byte for byte inside the envelope,
// and reaches the public API byte for byte; the relay key in ?key= goes
// nowhere; answers come back unwrapped (the unary body is exactly the inner
// response, each SSE event a bare GenerateContentResponse).
func TestGeminiBodiesAndEnvelope(t *testing.T) {
	body := `{"contents":[{"role":"user","parts":[{"text":"hi \"there\""}]},{"role":"model","parts":[{"functionCall":{"id":"list_directory_1_0","name":"list_directory","args":{"dir_path":"."}},"thoughtSignature":"skip_thought_signature_validator"}]},{"role":"user","parts":[{"functionResponse":{"id":"list_directory_1_0","name":"list_directory","response":{"output":"empty"}}}]}],` +
		`"systemInstruction":{"parts":[{"text":"You are an agent"}]},"tools":[{"functionDeclarations":[{"name":"list_directory","parametersJsonSchema":{"type":"object"}}]}],` +
		`"generationConfig":{"temperature":1,"topP":0.95,"topK":64,"thinkingConfig":{"includeThoughts":true,"thinkingLevel":"HIGH"}},"future_field":{"x":[1,2,3]}}`
	ca := &fakeupstream.CodeAssist{}
	_, caAcct := codeAssistUpstream(t, "ca", ca, 200)
	api := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}}
	apiSrv := upstream(t, api)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+caAcct+geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
	keyQ := "key=" + url.QueryEscape(relayKey)

	// Code Assist (priority 200) serves first.
	status, h, out := rawGemini(t, "POST", r.URL+"/gemini/v1beta/models/"+geminiModel+":streamGenerateContent?alt=sse&"+keyQ, body, nil)
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %v %s", status, h, out)
	}
	want := fakeupstream.GeminiStream(geminiModel, fakeCAText, 3, 0)
	got := sseData(t, out)
	if len(got) != len(want) {
		t.Fatalf("client got %d events, want %d: %s", len(got), len(want), out)
	}
	for i := range want {
		if got[i] != want[i].Data {
			t.Errorf("event %d:\n got %s\nwant %s", i, got[i], want[i].Data)
		}
	}
	status, _, out = rawGemini(t, "POST", r.URL+"/gemini/v1beta/models/"+geminiModel+":generateContent?"+keyQ, body, nil)
	if status != 200 || out != fakeupstream.GeminiResponseJSON(geminiModel, fakeCAText) {
		t.Fatalf("generate: %d %s", status, out)
	}
	// Without alt=sse the stream is one JSON array, unwrapped element by element.
	status, _, out = rawGemini(t, "POST", r.URL+"/gemini/v1beta/models/"+geminiModel+":streamGenerateContent", body, map[string]string{"X-Goog-Api-Key": relayKey})
	if arr := gjson.Parse(out).Array(); status != 200 || len(arr) != 3 || arr[0].Get("response").Exists() || arr[2].Get("candidates.0.finishReason").Str != "STOP" {
		t.Fatalf("array stream: %d %s", status, out)
	}
	var calls []*fakeupstream.Recorded
	for _, rec := range ca.Requests() {
		if rec.Path != "/v1internal:loadCodeAssist" {
			calls = append(calls, rec)
		}
	}
	for i, wantQuery := range []string{"alt=sse", "", ""} {
		rec := calls[i]
		if rec.RawQuery != wantQuery {
			t.Errorf("code assist call %d query %q, want %q", i, rec.RawQuery, wantQuery)
		}
		env := gjson.ParseBytes(rec.Body)
		if env.Get("request").Raw != body || env.Get("model").Str != geminiModel || env.Get("project").Str != fakeupstream.DefaultCodeAssistProject {
			t.Errorf("code assist call %d envelope:\n%s", i, rec.Body)
		}
		var keys []string
		env.ForEach(func(k, _ gjson.Result) bool { keys = append(keys, k.Str); return true })
		if strings.Join(keys, ",") != "model,project,request" {
			t.Errorf("envelope keys %v", keys)
		}
	}

	// Cool the Code Assist account down so the public API account serves.
	r.App.Sched.Report("ca", provider.Verdict{Kind: provider.Unavailable, Reason: "test"})
	status, _, out = rawGemini(t, "POST", r.URL+"/gemini/v1/models/"+geminiModel+":streamGenerateContent?alt=sse&"+keyQ+"&fields=candidates", body, nil)
	if status != 200 || !strings.Contains(out, fakeGeminiText[:6]) {
		t.Fatalf("api stream: %d %s", status, out)
	}
	rec := api.Requests()[0]
	if string(rec.Body) != body || rec.Path != "/v1/models/"+geminiModel+":streamGenerateContent" || rec.RawQuery != "alt=sse&fields=candidates" {
		t.Fatalf("public api got %s?%s\n%s", rec.Path, rec.RawQuery, rec.Body)
	}
	if rec.Header.Get("X-Goog-Api-Key") != geminiKey {
		t.Fatalf("public api key %q", rec.Header.Get("X-Goog-Api-Key"))
	}
}

// Concurrent first requests to a gemini account share one project
// discovery; the project is saved and survives a restart.
func TestGeminiProjectDiscoveryOnce(t *testing.T) {
	for _, onboard := range []bool{false, true} {
		t.Run(fmt.Sprintf("onboard=%v", onboard), func(t *testing.T) {
			gate := make(chan struct{})
			ca := &fakeupstream.CodeAssist{LoadGate: gate, Onboard: onboard, Project: "discovered-proj"}
			_, acct := codeAssistUpstream(t, "ca", ca, 100)
			r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+acct)
			c := r.genaiClient(t, "v1beta", relayKey)

			const n = 8
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := c.Models.GenerateContent(context.Background(), geminiModel, userText(fmt.Sprintf("request %d", i)), nil)
					if err == nil && resp.Text() != fakeCAText {
						err = fmt.Errorf("text %q", resp.Text())
					}
					errs <- err
				}()
			}
			// Hold discovery until every request is inside the relay.
			deadline := time.Now().Add(10 * time.Second)
			for r.App.Server.InFlight() < n || ca.LoadCalls() < 1 {
				if time.Now().After(deadline) {
					t.Fatalf("in flight %d, loadCodeAssist calls %d", r.App.Server.InFlight(), ca.LoadCalls())
				}
				time.Sleep(5 * time.Millisecond)
			}
			close(gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			wantOnboard := 0
			if onboard {
				wantOnboard = 1
			}
			if ca.LoadCalls() != 1 || ca.OnboardCalls() != wantOnboard {
				t.Fatalf("loadCodeAssist %d, onboardUser %d; want 1, %d", ca.LoadCalls(), ca.OnboardCalls(), wantOnboard)
			}
			for _, rec := range ca.Requests() {
				if rec.Path == "/v1internal:generateContent" && gjson.GetBytes(rec.Body, "project").Str != "discovered-proj" {
					t.Fatalf("request without the project: %s", rec.Body)
				}
			}
			if p, err := r.App.DB.ProjectID(context.Background(), "ca"); err != nil || p != "discovered-proj" {
				t.Fatalf("saved project %q, %v", p, err)
			}

			r2 := r.Restart()
			c2 := r2.genaiClient(t, "v1beta", relayKey)
			if _, err := c2.Models.GenerateContent(context.Background(), geminiModel, userText("after restart"), nil); err != nil {
				t.Fatal(err)
			}
			if ca.LoadCalls() != 1 {
				t.Fatalf("discovery ran again after restart: %d loadCodeAssist calls", ca.LoadCalls())
			}
		})
	}
}

// A configured project_id is used as is: no discovery at all.
func TestGeminiProjectPinned(t *testing.T) {
	ca := &fakeupstream.CodeAssist{Project: "pinned-proj"}
	caSrv := upstream(t, ca)
	tokSrv := upstream(t, &fakeupstream.GoogleToken{})
	r := startRelay(t, geminiOAuthAccount("ca", caSrv.URL, tokSrv.URL, "pinned-proj", 100))
	c := r.genaiClient(t, "v1beta", "anything")
	if _, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("hi"), nil); err != nil {
		t.Fatal(err)
	}
	if ca.LoadCalls() != 0 {
		t.Fatalf("discovery ran despite project_id: %d calls", ca.LoadCalls())
	}
}

// A Code Assist account without a usable project cools down as unavailable
// and the request fails over.
func TestGeminiDiscoveryFailureFailsOver(t *testing.T) {
	ca := &fakeupstream.CodeAssist{}
	caSrv := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1internal:loadCodeAssist" {
			fakeupstream.WriteReply(w, r, &fakeupstream.Reply{Body: `{"currentTier":{"id":"standard-tier"},"ineligibleTiers":[{"reasonCode":"INELIGIBLE_ACCOUNT","reasonMessage":"Your account is not eligible"}]}`})
			return
		}
		ca.ServeHTTP(w, r)
	}))
	tokSrv := upstream(t, &fakeupstream.GoogleToken{})
	api := &fakeupstream.GeminiAPI{}
	apiSrv := upstream(t, api)
	r := startRelay(t, geminiOAuthAccount("ca", caSrv.URL, tokSrv.URL, "", 200)+geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
	c := r.genaiClient(t, "v1beta", "x")
	resp, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("hi"), nil)
	if err != nil || resp.Text() != fakeGeminiText {
		t.Fatalf("%v %v", resp, err)
	}
	var found bool
	for _, cd := range r.App.Sched.Cooldowns() {
		if cd.AccountID == "ca" && cd.Kind == provider.Unavailable.String() && strings.Contains(cd.Reason, "not eligible") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no unavailable cooldown for ca: %+v", r.App.Sched.Cooldowns())
	}
}

// A 429 RESOURCE_EXHAUSTED with RetryInfo on the gemini account fails over
// to the gemini-api account, and the first cools down exactly as long as
// Google asked; an error as the first stream event fails over too.
func TestGeminiFailover(t *testing.T) {
	rateLimit := fakeupstream.GoogleError(429, "RESOURCE_EXHAUSTED", "RATE_LIMIT_EXCEEDED", "Resource has been exhausted (e.g. check quota).", "37s")
	t.Run("429", func(t *testing.T) {
		ca := &fakeupstream.CodeAssist{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
			return &fakeupstream.Reply{Status: 429, Body: rateLimit}
		}}
		_, caAcct := codeAssistUpstream(t, "ca", ca, 200)
		api := &fakeupstream.GeminiAPI{}
		apiSrv := upstream(t, api)
		r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+caAcct+geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
		c := r.genaiClient(t, "v1beta", relayKey)
		before := time.Now()
		resp, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("hi"), nil)
		after := time.Now()
		if err != nil || resp.Text() != fakeGeminiText {
			t.Fatalf("%v %v", resp, err)
		}
		cds := r.App.Sched.Cooldowns()
		if len(cds) != 1 || cds[0].AccountID != "ca" || cds[0].Kind != "rate_limited" || cds[0].Model != "" {
			t.Fatalf("cooldowns %+v", cds)
		}
		if u := cds[0].Until; u.Before(before.Add(37*time.Second)) || u.After(after.Add(37*time.Second)) {
			t.Fatalf("cooldown until %v, want request time + 37s (%v..%v)", u, before.Add(37*time.Second), after.Add(37*time.Second))
		}
		// It is persisted, so it survives a restart.
		deadline := time.Now().Add(5 * time.Second)
		for {
			saved, err := r.App.DB.Cooldowns(context.Background(), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(saved) == 1 && saved[0].Until.Sub(cds[0].Until).Abs() < time.Millisecond {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("saved cooldowns %+v", saved)
			}
			time.Sleep(10 * time.Millisecond)
		}
		rows := r.usageRows(1)
		wantGeminiUsage(t, rows[0], "api", false)
		// While ca cools down, the next request goes straight to api.
		text, _, _ := collectStream(t, c, geminiModel, nil)
		if text != fakeGeminiText {
			t.Fatalf("stream text %q", text)
		}
	})
	t.Run("first event error", func(t *testing.T) {
		ca := &fakeupstream.CodeAssist{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
			return &fakeupstream.Reply{Events: []fakeupstream.Event{{Data: fakeupstream.GoogleError(503, "UNAVAILABLE", "", "The model is overloaded. Please try again later.", "")}}}
		}}
		_, caAcct := codeAssistUpstream(t, "ca", ca, 200)
		api := &fakeupstream.GeminiAPI{StreamEvents: 2}
		apiSrv := upstream(t, api)
		r := startRelay(t, caAcct+geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
		c := r.genaiClient(t, "v1beta", "x")
		text, _, events := collectStream(t, c, geminiModel, nil)
		if text != fakeGeminiText || events != 2 {
			t.Fatalf("client got %q in %d events", text, events)
		}
		cds := r.App.Sched.Cooldowns()
		if len(cds) != 1 || cds[0].AccountID != "ca" || cds[0].Kind != "overloaded" {
			t.Fatalf("cooldowns %+v", cds)
		}
	})
	t.Run("all fail", func(t *testing.T) {
		api := &fakeupstream.GeminiAPI{Script: func(int, *fakeupstream.Recorded) *fakeupstream.Reply {
			return &fakeupstream.Reply{Status: 429, Body: rateLimit}
		}}
		apiSrv := upstream(t, api)
		r := startRelay(t, geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
		c := r.genaiClient(t, "v1beta", "x")
		_, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("hi"), nil)
		var apiErr genai.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != 429 || !strings.Contains(apiErr.Message, "Resource has been exhausted") {
			t.Fatalf("want Google's 429 passed through, got %v", err)
		}
		// The next request finds no account and gets 503 in Google's shape.
		_, err = c.Models.GenerateContent(context.Background(), geminiModel, userText("hi"), nil)
		if !errors.As(err, &apiErr) || apiErr.Code != 503 || !strings.Contains(apiErr.Message, "all gemini accounts are unavailable") {
			t.Fatalf("want 503, got %v", err)
		}
	})
}

// models.list and models.get come from gemini-api accounts; a pool of Code
// Assist accounts only answers 501 in Google's shape.
func TestGeminiModels(t *testing.T) {
	api := &fakeupstream.GeminiAPI{Keys: []string{geminiKey}}
	apiSrv := upstream(t, api)
	ca := &fakeupstream.CodeAssist{}
	_, caAcct := codeAssistUpstream(t, "ca", ca, 200)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+caAcct+geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
	c := r.genaiClient(t, "v1beta", relayKey)
	page, err := c.Models.List(context.Background(), &genai.ListModelsConfig{PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.Items[0].Name != "models/gemini-2.5-flash" {
		t.Fatalf("models %+v", page.Items)
	}
	m, err := c.Models.Get(context.Background(), "gemini-2.5-pro", nil)
	if err != nil || m.Name != "models/gemini-2.5-pro" {
		t.Fatalf("get: %+v %v", m, err)
	}
	reqs := api.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/v1beta/models" || reqs[0].RawQuery != "pageSize=10" || reqs[1].Path != "/v1beta/models/gemini-2.5-pro" {
		t.Fatalf("upstream got %+v", reqs)
	}
	if ca.Count() != 0 {
		t.Fatalf("code assist got %d requests for a model list", ca.Count())
	}

	onlyCA := startRelay(t, caAcct)
	_, err = onlyCA.genaiClient(t, "v1beta", "x").Models.List(context.Background(), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 501 || !strings.Contains(apiErr.Message, "gemini-api account") {
		t.Fatalf("want 501, got %v", err)
	}
}

// rawHTTP sends a request line exactly as given (no client-side cleaning or
// escaping) and returns the status and body.
func rawHTTP(t *testing.T, base, method, target string, header map[string]string, body string) (int, string) {
	t.Helper()
	u, _ := url.Parse(base)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, target, u.Host, len(body))
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// Model names and paths that could steer the upstream URL are refused with
// Google-shaped errors before any upstream sees them.
func TestGeminiBadPaths(t *testing.T) {
	api := &fakeupstream.GeminiAPI{}
	apiSrv := upstream(t, api)
	ca := &fakeupstream.CodeAssist{}
	_, caAcct := codeAssistUpstream(t, "ca", ca, 200)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+caAcct+geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
	auth := map[string]string{"X-Goog-Api-Key": relayKey}
	body := `{"contents":[{"parts":[{"text":"hi"}]}]}`
	for _, tc := range []struct {
		name, method, target string
		want                 int
	}{
		{"encoded slashes", "POST", "/gemini/v1beta/models/gemini%2F..%2F..%2Fv1internal:generateContent", 400},
		{"encoded dots", "POST", "/gemini/v1beta/models/%2E%2E:generateContent", 400},
		{"encoded dot segments", "POST", "/gemini/v1beta/models/%2e%2e%2f%2e%2e%2fv1internal:loadCodeAssist", 400},
		{"encoded question mark", "POST", "/gemini/v1beta/models/x%3Fkey=1:generateContent", 400},
		{"encoded percent", "POST", "/gemini/v1beta/models/x%2541:generateContent", 400},
		{"backslash", "POST", `/gemini/v1beta/models/x\..\y:generateContent`, 400},
		{"slash in model", "POST", "/gemini/v1beta/models/tunedModels/x:generateContent", 400},
		{"dots in model", "POST", "/gemini/v1beta/models/gemini..x:generateContent", 400},
		{"leading dash", "POST", "/gemini/v1beta/models/-x:generateContent", 400},
		{"empty model", "POST", "/gemini/v1beta/models/:generateContent", 400},
		{"unknown method", "POST", "/gemini/v1beta/models/gemini-2.5-flash:loadCodeAssist", 400},
		{"no method", "POST", "/gemini/v1beta/models/gemini-2.5-flash", 400},
		{"long model", "POST", "/gemini/v1beta/models/" + strings.Repeat("a", 200) + ":generateContent", 400},
		{"bad get model", "GET", "/gemini/v1beta/models/%2E%2E", 400},
		{"unknown version", "POST", "/gemini/v1internal:generateContent", 404},
		{"unknown collection", "POST", "/gemini/v1beta/files", 404},
		{"wrong verb", "GET", "/gemini/v1beta/models/gemini-2.5-flash:generateContent", 405},
		{"wrong verb list", "POST", "/gemini/v1beta/models", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := rawHTTP(t, r.URL, tc.method, tc.target, auth, body)
			if status != tc.want {
				t.Fatalf("status %d want %d: %s", status, tc.want, out)
			}
			var e struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
					Status  string `json:"status"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(out), &e); err != nil || e.Error.Code != tc.want || e.Error.Status == "" || e.Error.Message == "" {
				t.Fatalf("not Google's error shape: %s", out)
			}
		})
	}
	// A literal dot segment never reaches a handler: Go's mux redirects to
	// the cleaned path, which is then checked like any other.
	status, out := rawHTTP(t, r.URL, "POST", "/gemini/v1beta/models/../../v1internal:generateContent", auth, body)
	if status != http.StatusTemporaryRedirect {
		t.Fatalf("literal dot segments: %d %s", status, out)
	}
	status, _ = rawHTTP(t, r.URL, "POST", "/gemini/v1internal:generateContent", auth, body)
	if status != 404 {
		t.Fatalf("cleaned path: %d", status)
	}
	// Bodies that are not JSON objects are refused before any account is used.
	for _, b := range []string{`[]`, `"x"`, `{"contents":`} {
		if status, out := rawHTTP(t, r.URL, "POST", "/gemini/v1beta/models/gemini-2.5-flash:generateContent", auth, b); status != 400 || !strings.Contains(out, "INVALID_ARGUMENT") {
			t.Fatalf("body %s: %d %s", b, status, out)
		}
	}
	if n := api.Count() + ca.Count(); n != 0 {
		t.Fatalf("upstreams got %d requests", n)
	}
}

// The relay key is accepted as x-goog-api-key, ?key= or Bearer; anything
// else is a Google-shaped 401 that never reaches an account.
func TestGeminiRelayKey(t *testing.T) {
	api := &fakeupstream.GeminiAPI{}
	apiSrv := upstream(t, api)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+geminiAPIAccount("api", apiSrv.URL, geminiKey, 100))
	path := "/gemini/v1beta/models/gemini-2.5-flash:generateContent"
	body := `{"contents":[{"parts":[{"text":"hi"}]}]}`
	for _, tc := range []struct {
		name   string
		query  string
		header map[string]string
		want   int
	}{
		{"none", "", nil, 401},
		{"wrong header", "", map[string]string{"X-Goog-Api-Key": "nope"}, 401},
		{"wrong query", "?key=nope", nil, 401},
		{"x-goog-api-key", "", map[string]string{"X-Goog-Api-Key": relayKey}, 200},
		{"query", "?key=" + relayKey, nil, 200},
		{"bearer", "", map[string]string{"Authorization": "Bearer " + relayKey}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, out := rawGemini(t, "POST", r.URL+path+tc.query, body, tc.header)
			if status != tc.want {
				t.Fatalf("status %d want %d: %s", status, tc.want, out)
			}
			if tc.want == 401 && (!strings.Contains(out, `"status":"UNAUTHENTICATED"`) || !strings.Contains(out, `"code":401`)) {
				t.Fatalf("not Google's shape: %s", out)
			}
		})
	}
	if api.Count() != 3 {
		t.Fatalf("upstream got %d requests, want 3", api.Count())
	}
	for _, rec := range api.Requests() {
		if rec.RawQuery != "" || rec.Header.Get("X-Goog-Api-Key") != geminiKey || rec.Header.Get("Authorization") != "" {
			t.Fatalf("upstream got query %q, headers %v", rec.RawQuery, rec.Header)
		}
	}
	// The genai SDK sends the key as x-goog-api-key; a wrong one is an APIError.
	_, err := r.genaiClient(t, "v1beta", "wrong").Models.GenerateContent(context.Background(), geminiModel, userText("hi"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 401 {
		t.Fatalf("want 401, got %v", err)
	}
}

// Requests of one conversation stay on one account (sticky by the hash of
// its first content, which every turn repeats), while another conversation
// may use another.
func TestGeminiStickySession(t *testing.T) {
	a1, a2 := &fakeupstream.GeminiAPI{}, &fakeupstream.GeminiAPI{}
	s1, s2 := upstream(t, a1), upstream(t, a2)
	r := startRelay(t, geminiAPIAccount("a1", s1.URL, "k1", 100)+geminiAPIAccount("a2", s2.URL, "k2", 100))
	c := r.genaiClient(t, "v1beta", "x")
	cfg := &genai.GenerateContentConfig{SystemInstruction: genai.NewContentFromText("You are session one", "")}
	for i := 0; i < 4; i++ {
		turn := append(userText("start of session one"), userText(fmt.Sprintf("turn %d", i))...)
		if _, err := c.Models.GenerateContent(context.Background(), geminiModel, turn, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if !(a1.Count() == 4 && a2.Count() == 0) && !(a1.Count() == 0 && a2.Count() == 4) {
		t.Fatalf("session split across accounts: a1 %d, a2 %d", a1.Count(), a2.Count())
	}
	sessions := r.App.Sched.Sessions()
	if len(sessions) != 1 || !strings.HasPrefix(sessions[0].Key, "gemini:") {
		t.Fatalf("sessions %+v", sessions)
	}
}

// A Code Assist project lookup that refuses the access token (401) earns one
// refresh and a retry on the same account, as an upstream 401 does: the
// request is served, nothing cools down.
func TestGeminiDiscovery401RefreshesOnce(t *testing.T) {
	ca := &fakeupstream.CodeAssist{Tokens: []string{"ya29.fake-access-2"}}
	tok, acct := codeAssistUpstream(t, "ca", ca, 100)
	r := startRelay(t, `api_keys = ["`+relayKey+`"]`+"\n"+acct)
	c := r.genaiClient(t, "v1beta", relayKey)
	resp, err := c.Models.GenerateContent(context.Background(), geminiModel, userText("hi"), nil)
	if err != nil || resp.Text() != fakeCAText {
		t.Fatalf("%v %v", resp, err)
	}
	loads := 0
	for _, rec := range ca.Requests() {
		if rec.Path == "/v1internal:loadCodeAssist" {
			loads++
		}
	}
	if tok.Issued() != 2 || loads != 2 {
		t.Fatalf("tokens issued %d, loadCodeAssist requests %d; want 2, 2 (a refused one, then the refreshed one)", tok.Issued(), loads)
	}
	if cds := r.App.Sched.Cooldowns(); len(cds) != 0 {
		t.Fatalf("cooldowns %+v", cds)
	}
}
