package convert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// The names clients send (docs/matrix.md, "Tool names").
const (
	// ccMCPName is a Claude Code MCP tool name (mcp__<server>__<tool>) of
	// 76 characters: Anthropic takes it, OpenAI and Gemini do not.
	ccMCPName = "mcp__plugin_chrome-devtools-mcp_chrome-devtools__performance_analyze_insight"
	// geminiCLIName is a Gemini CLI MCP tool name (generateValidName keeps
	// dots and colons): Gemini takes it, Anthropic and OpenAI do not.
	geminiCLIName = "mcp_github_search.code:v2"
	// digitName starts with a digit (an MCP server named "1password"): all
	// but Gemini take it.
	digitName = "1password__item_lookup"
	// fitName fits every API.
	fitName = "Read"
)

// The APIs' rules as their documentation and errors write them.
var (
	anthropicNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	openaiNameRE    = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	geminiNameRE    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$`)
)

func hash8(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:4])
}

func TestUpstreamName(t *testing.T) {
	long200 := strings.Repeat("x", 200)
	tests := []struct {
		rule nameRule
		re   *regexp.Regexp
		in   string
		want string // "" = in unchanged
	}{
		{anthropicNames, anthropicNameRE, fitName, ""},
		{anthropicNames, anthropicNameRE, ccMCPName, ""},
		{anthropicNames, anthropicNameRE, digitName, ""},
		{anthropicNames, anthropicNameRE, geminiCLIName, "mcp_github_search_code_v2_" + hash8(geminiCLIName)},
		{anthropicNames, anthropicNameRE, "assist.HassTurnOn", "assist_HassTurnOn_" + hash8("assist.HassTurnOn")},
		{anthropicNames, anthropicNameRE, long200, strings.Repeat("x", 128-9) + "_" + hash8(long200)},
		{openaiNames, openaiNameRE, fitName, ""},
		{openaiNames, openaiNameRE, digitName, ""},
		{openaiNames, openaiNameRE, ccMCPName, ccMCPName[:55] + "_" + hash8(ccMCPName)},
		{openaiNames, openaiNameRE, geminiCLIName, "mcp_github_search_code_v2_" + hash8(geminiCLIName)},
		{openaiNames, openaiNameRE, "Dockerfile problems scanner", "Dockerfile_problems_scanner_" + hash8("Dockerfile problems scanner")},
		{openaiNames, openaiNameRE, "outil_é", "outil___" + hash8("outil_é")},
		{geminiNames, geminiNameRE, fitName, ""},
		{geminiNames, geminiNameRE, geminiCLIName, ""},
		{geminiNames, geminiNameRE, "_private", ""},
		{geminiNames, geminiNameRE, digitName, "_" + digitName + "_" + hash8(digitName)},
		{geminiNames, geminiNameRE, "-dash", "_-dash_" + hash8("-dash")},
		{geminiNames, geminiNameRE, ccMCPName, ccMCPName[:55] + "_" + hash8(ccMCPName)},
		{geminiNames, geminiNameRE, "srv/tool", "srv_tool_" + hash8("srv/tool")},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", tt.rule.max, tt.in), func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.in
			}
			got := tt.rule.upstreamName(tt.in)
			if got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
			if !tt.re.MatchString(got) || !tt.rule.fits(got) {
				t.Fatalf("%q breaks the rule", got)
			}
			if again := tt.rule.upstreamName(tt.in); again != got {
				t.Fatalf("not deterministic: %q then %q", got, again)
			}
		})
	}
	if got := openaiNames.upstreamName(""); got != "" {
		t.Fatalf("empty name mapped to %q", got)
	}
}

// Two names alike but for their ends, or for a refused character, never
// map to one name.
func TestUpstreamNameNoCollision(t *testing.T) {
	prefix := "mcp__" + strings.Repeat("s", 30) + "__" + strings.Repeat("t", 40) // 77 > 64
	pairs := [][2]string{
		{prefix + "_read", prefix + "_write"},
		{"a.b", "a_b"},
		{"a.b", "a:b"},
		{"1x", "_1x"},
	}
	for _, rule := range nameRules {
		for _, p := range pairs {
			a, b := rule.upstreamName(p[0]), rule.upstreamName(p[1])
			if a == b {
				t.Errorf("max %d: %q and %q both map to %q", rule.max, p[0], p[1], a)
			}
		}
	}
}

// A name that fits costs nothing: no allocation, the same string back.
func TestFittingNameNoAllocation(t *testing.T) {
	name := ccMCPName[:60]
	for _, rule := range nameRules {
		if allocs := testing.AllocsPerRun(100, func() { _ = rule.upstreamName(name) }); allocs != 0 {
			t.Errorf("max %d: %v allocations", rule.max, allocs)
		}
	}
	tools := []Tool{{Name: "Read"}, {Name: "mcp__github__search_code"}, {Name: "apply_patch", Custom: true}}
	resp := &Response{Parts: []Part{{Kind: PartToolCall, Name: "Read"}}}
	if allocs := testing.AllocsPerRun(100, func() { RestoreToolNames(resp, tools) }); allocs != 0 {
		t.Errorf("RestoreToolNames: %v allocations", allocs)
	}
	rd := NewMessagesStreamReader()
	if RestoreToolNamesStream(rd, tools) != rd {
		t.Error("RestoreToolNamesStream wrapped a reader of tools that all fit")
	}
}

// toolNamesRequest offers the four kinds of name, names one in
// tool_choice, and carries a history that called two of them.
func toolNamesRequest(model string) *Request {
	schema := []byte(`{"type":"object","properties":{"q":{"type":"string"}}}`)
	return &Request{
		Model: model,
		Tools: []Tool{
			{Name: ccMCPName, Description: "insight", Schema: schema},
			{Name: geminiCLIName, Description: "search", Schema: schema},
			{Name: digitName, Description: "lookup", Schema: schema},
			{Name: fitName, Description: "read", Schema: schema},
		},
		ToolChoice: ToolChoice{Mode: "tool", Name: ccMCPName},
		Messages: []Message{
			user(text("look it up")),
			assistant(
				Part{Kind: PartToolCall, CallID: "call_1", Name: geminiCLIName, Args: `{"q":"a"}`},
				Part{Kind: PartToolCall, CallID: "call_2", Name: digitName, Args: `{"q":"b"}`},
			),
			user(
				Part{Kind: PartToolResult, CallID: "call_1", Result: []Part{text("found")}},
				Part{Kind: PartToolResult, CallID: "call_2", Result: []Part{text("none")}},
			),
			user(text("now the insight")),
		},
	}
}

// wireNames are the tool names of an encoded body: declared, called in
// the history, named by tool_choice, and (Gemini) on function responses.
type wireNames struct {
	decls, calls, results []string
	choice                string
}

func strs(rs []gjson.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Str
	}
	return out
}

func messagesWireNames(body []byte) wireNames {
	w := wireNames{decls: strs(gjson.GetBytes(body, "tools.#.name").Array()), choice: gjson.GetBytes(body, "tool_choice.name").Str}
	gjson.GetBytes(body, "messages.#.content").ForEach(func(_, c gjson.Result) bool {
		c.ForEach(func(_, b gjson.Result) bool {
			if b.Get("type").Str == "tool_use" {
				w.calls = append(w.calls, b.Get("name").Str)
			}
			return true
		})
		return true
	})
	return w
}

func responsesWireNames(body []byte) wireNames {
	return wireNames{
		decls:  strs(gjson.GetBytes(body, "tools.#.name").Array()),
		calls:  strs(gjson.GetBytes(body, `input.#(type=="function_call")#.name`).Array()),
		choice: gjson.GetBytes(body, "tool_choice.name").Str,
	}
}

func chatWireNames(body []byte) wireNames {
	w := wireNames{decls: strs(gjson.GetBytes(body, "tools.#.function.name").Array()), choice: gjson.GetBytes(body, "tool_choice.function.name").Str}
	gjson.GetBytes(body, "messages.#.tool_calls").ForEach(func(_, tcs gjson.Result) bool {
		w.calls = append(w.calls, strs(tcs.Get("#.function.name").Array())...)
		return true
	})
	return w
}

func geminiWireNames(body []byte) wireNames {
	w := wireNames{decls: strs(gjson.GetBytes(body, "tools.0.functionDeclarations.#.name").Array()), choice: gjson.GetBytes(body, "toolConfig.functionCallingConfig.allowedFunctionNames.0").Str}
	gjson.GetBytes(body, "contents.#.parts").ForEach(func(_, ps gjson.Result) bool {
		ps.ForEach(func(_, p gjson.Result) bool {
			if n := p.Get("functionCall.name"); n.Exists() {
				w.calls = append(w.calls, n.Str)
			}
			if n := p.Get("functionResponse.name"); n.Exists() {
				w.results = append(w.results, n.Str)
			}
			return true
		})
		return true
	})
	return w
}

// toolNameCodec is one upstream API under test: its encoder, its rule,
// its names on the wire and its strict fake's check.
type toolNameCodec struct {
	name   string
	model  string
	encode func(*Request) ([]byte, error)
	rule   nameRule
	re     *regexp.Regexp
	wire   func([]byte) wireNames
	strict func(body []byte, model string) error
}

var toolNameCodecs = []toolNameCodec{
	{"anthropic", "claude-sonnet-4-5", EncodeMessages, anthropicNames, anthropicNameRE, messagesWireNames,
		func(b []byte, _ string) error { return fakeupstream.CheckStrictMessages(b) }},
	{"responses", "gpt-5", EncodeResponses, openaiNames, openaiNameRE, responsesWireNames,
		func(b []byte, _ string) error { return fakeupstream.CheckOpenAIToolNames(b) }},
	{"chat", "deepseek-chat", EncodeChat, openaiNames, openaiNameRE, chatWireNames,
		func(b []byte, _ string) error { return fakeupstream.CheckOpenAIToolNames(b) }},
	{"gemini", "gemini-2.5-pro", EncodeGemini, geminiNames, geminiNameRE, geminiWireNames, fakeupstream.CheckStrictGemini},
}

// Every encoder sends names its API takes, the same mapping everywhere a
// name appears, and the strict fake of its API takes the body.
func TestEncodersMapToolNames(t *testing.T) {
	for _, c := range toolNameCodecs {
		t.Run(c.name, func(t *testing.T) {
			r := toolNamesRequest(c.model)
			body, err := c.encode(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.strict(body, c.model); err != nil {
				t.Fatalf("strict fake refuses: %v\n%s", err, body)
			}
			w := c.wire(body)
			var wantDecls []string
			for _, tool := range r.Tools {
				wantDecls = append(wantDecls, c.rule.upstreamName(tool.Name))
			}
			if fmt.Sprint(w.decls) != fmt.Sprint(wantDecls) {
				t.Fatalf("declared %q, want %q", w.decls, wantDecls)
			}
			if w.decls[3] != fitName {
				t.Fatalf("a fitting name changed: %q", w.decls[3])
			}
			if w.choice != w.decls[0] {
				t.Fatalf("tool_choice names %q, the tool is declared as %q", w.choice, w.decls[0])
			}
			if want := []string{w.decls[1], w.decls[2]}; fmt.Sprint(w.calls) != fmt.Sprint(want) {
				t.Fatalf("history calls %q, declared as %q", w.calls, want)
			}
			if c.name == "gemini" && fmt.Sprint(w.results) != fmt.Sprint(w.calls) {
				t.Fatalf("function responses name %q, the calls %q", w.results, w.calls)
			}
			for _, n := range append(append(w.decls, w.calls...), w.choice) {
				if !c.re.MatchString(n) {
					t.Fatalf("%q breaks %s's rule", n, c.name)
				}
			}
		})
	}
}

func fakeSSE(evs []fakeupstream.Event) []byte {
	var b []byte
	for _, e := range evs {
		if e.Name != "" {
			b = append(b, "event: "+e.Name+"\n"...)
		}
		b = append(b, "data: "+e.Data+"\n\n"...)
	}
	return b
}

// An upstream's answer calling the name its encoder sent reaches the
// client with the client's name, whole or streamed, on every API.
func TestToolNamesRoundTrip(t *testing.T) {
	const args = `{"q":"insight"}`
	answers := map[string]func(model, name string) (whole []byte, stream []byte){
		"anthropic": func(model, name string) ([]byte, []byte) {
			return []byte(fakeupstream.ToolUseJSON(model, "calling", "toolu_1", name, args)),
				fakeSSE(fakeupstream.ToolUseStream(model, "calling", "toolu_1", name, args, 4, 0))
		},
		"responses": func(model, name string) ([]byte, []byte) {
			evs := fakeupstream.ResponseFunctionCallStream(model, "call_9", name, args)
			return []byte(gjson.Get(evs[len(evs)-1].Data, "response").Raw), fakeSSE(evs)
		},
		"chat": func(model, name string) ([]byte, []byte) {
			whole := fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":%q,"arguments":%q}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`, model, name, args)
			stream := chatChunks(
				fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","model":%q,"choices":[{"index":0,"delta":{"role":"assistant","tool_calls":[{"index":0,"id":"call_9","type":"function","function":{"name":%q,"arguments":""}}]},"finish_reason":null}]}`, model, name),
				fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","model":%q,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":%q}}]},"finish_reason":null}]}`, model, args),
				fmt.Sprintf(`{"id":"chatcmpl-1","object":"chat.completion.chunk","model":%q,"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":9,"completion_tokens":4,"total_tokens":13}}`, model),
			) + "data: [DONE]\n\n"
			return []byte(whole), []byte(stream)
		},
		"gemini": func(model, name string) ([]byte, []byte) {
			whole := fakeupstream.GeminiThoughtToolCall(&fakeupstream.Recorded{Path: "/v1beta/models/" + model + ":generateContent"}, model, name, args)
			stream := fakeupstream.GeminiThoughtToolCall(&fakeupstream.Recorded{Path: "/v1beta/models/" + model + ":streamGenerateContent", RawQuery: "alt=sse"}, model, name, args)
			return []byte(whole.Body), fakeSSE(stream.Events)
		},
	}
	parsers := map[string]func([]byte) (*Response, error){
		"anthropic": ParseMessages, "responses": ParseResponses, "chat": ParseChat, "gemini": ParseGemini,
	}
	readers := map[string]func() StreamReader{
		"anthropic": NewMessagesStreamReader, "responses": NewResponsesStreamReader, "chat": NewChatStreamReader, "gemini": NewGeminiStreamReader,
	}
	for _, c := range toolNameCodecs {
		t.Run(c.name, func(t *testing.T) {
			r := toolNamesRequest(c.model)
			body, err := c.encode(r)
			if err != nil {
				t.Fatal(err)
			}
			// The upstream calls a tool as the body declared it: the long
			// MCP name, renamed for every API but Anthropic, which gets
			// the dotted one.
			tool := 0
			if c.name == "anthropic" {
				tool = 1
			}
			orig, sent := r.Tools[tool].Name, c.wire(body).decls[tool]
			if sent == orig {
				t.Fatalf("%q was not renamed", orig)
			}
			whole, stream := answers[c.name](c.model, sent)

			resp, err := parsers[c.name](whole)
			if err != nil {
				t.Fatal(err)
			}
			RestoreToolNames(resp, r.Tools)
			if got := callNamesOf(resp.Parts); fmt.Sprint(got) != fmt.Sprint([]string{orig}) {
				t.Fatalf("whole answer calls %q", got)
			}

			evs := feedSSE(RestoreToolNamesStream(readers[c.name](), r.Tools), stream)
			var got []string
			for _, ev := range evs {
				if ev.Kind == EventPartStart && ev.Part.Kind == PartToolCall {
					got = append(got, ev.Part.Name)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint([]string{orig}) {
				t.Fatalf("stream calls %q", got)
			}
			for cut := 1; cut < len(stream); cut++ {
				cutEvs := feedSSE(RestoreToolNamesStream(readers[c.name](), r.Tools), stream, cut)
				if fmt.Sprintf("%+v", eventsSansIDs(cutEvs)) != fmt.Sprintf("%+v", eventsSansIDs(evs)) {
					t.Fatalf("cut at %d: events differ", cut)
				}
			}

			// The next turn: the client's history holds its own name; the
			// encoder maps it as before, and the strict fake takes the
			// state bound to the name it issued it for.
			r.Messages = append(r.Messages, Message{Role: RoleAssistant, Parts: resp.Parts},
				user(Part{Kind: PartToolResult, CallID: callIDOf(resp.Parts), Result: []Part{text("fast")}}))
			r.ToolChoice = ToolChoice{}
			next, err := c.encode(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.strict(next, c.model); err != nil {
				t.Fatalf("strict fake refuses the next turn: %v\n%s", err, next)
			}
			w := c.wire(next)
			if last := w.calls[len(w.calls)-1]; last != sent {
				t.Fatalf("next turn calls %q, the upstream called %q", last, sent)
			}
		})
	}
}

func callNamesOf(parts []Part) []string {
	var out []string
	for _, p := range parts {
		if p.Kind == PartToolCall {
			out = append(out, p.Name)
		}
	}
	return out
}

func callIDOf(parts []Part) string {
	for _, p := range parts {
		if p.Kind == PartToolCall {
			return p.CallID
		}
	}
	return ""
}

// eventsSansIDs blanks generated call ids (Chat and Gemini readers make
// one when the upstream gives none).
func eventsSansIDs(evs []Event) []Event {
	out := append([]Event(nil), evs...)
	for i := range out {
		if out[i].Kind == EventPartStart && strings.HasPrefix(out[i].Part.CallID, "call_") && out[i].Part.CallID != "call_9" {
			out[i].Part.CallID = ""
		}
	}
	return out
}

// A Codex freeform tool whose name Claude refuses: the call comes back
// with the client's name first, then as the custom call it was (the order
// the relay applies RestoreToolNames and UncustomCalls in).
func TestToolNamesRestoreBeforeUncustom(t *testing.T) {
	tools := []Tool{{Name: "patch.apply", Custom: true}}
	body, err := EncodeMessages(&Request{Model: "claude-sonnet-4-5", Tools: tools, Messages: []Message{user(text("fix it"))}})
	if err != nil {
		t.Fatal(err)
	}
	sent := gjson.GetBytes(body, "tools.0.name").Str
	if sent == "patch.apply" || !anthropicNameRE.MatchString(sent) {
		t.Fatalf("sent %q", sent)
	}
	resp, err := ParseMessages([]byte(fakeupstream.ToolUseJSON("claude-sonnet-4-5", "", "toolu_1", sent, `{"input":"*** Begin Patch"}`)))
	if err != nil {
		t.Fatal(err)
	}
	RestoreToolNames(resp, tools)
	UncustomCalls(resp, tools)
	p := resp.Parts[1]
	if p.Name != "patch.apply" || !p.Custom || p.Args != "*** Begin Patch" {
		t.Fatalf("call %+v", p)
	}
	// Streamed: the relay wraps the reader the same way round.
	stream := fakeSSE(fakeupstream.ToolUseStream("claude-sonnet-4-5", "", "toolu_1", sent, `{"input":"*** Begin Patch"}`, 5, 0))
	got := collectEvents(feedSSE(UncustomStream(RestoreToolNamesStream(NewMessagesStreamReader(), tools), tools), stream))
	if p := got.Parts[len(got.Parts)-1]; p.Name != "patch.apply" || !p.Custom || p.Args != "*** Begin Patch" {
		t.Fatalf("streamed call %+v", p)
	}
}

// A name the model made up, or one no tool maps to, passes unchanged; a
// tool whose own name equals another's mapped name keeps its own.
func TestRestoreToolNamesUnknown(t *testing.T) {
	other := openaiNames.upstreamName("a.b")
	tools := []Tool{{Name: "a.b"}, {Name: other}}
	resp := &Response{Parts: []Part{
		{Kind: PartToolCall, Name: "nope"},
		{Kind: PartToolCall, Name: other},
		{Kind: PartText, Text: other},
	}}
	RestoreToolNames(resp, tools)
	if resp.Parts[0].Name != "nope" || resp.Parts[1].Name != other || resp.Parts[2].Text != other {
		t.Fatalf("parts %+v", resp.Parts)
	}
}

// fittingRequest is toolNamesRequest with names every API takes (Claude
// Code's and Codex's own tools, a short MCP tool, a freeform tool).
func fittingRequest(model string) *Request {
	r := toolNamesRequest(model)
	names := []string{"mcp__github__search_code", "Bash", "Read", "apply_patch"}
	for i := range r.Tools {
		r.Tools[i].Name = names[i]
	}
	r.Tools[3] = Tool{Name: "apply_patch", Description: "patch", Custom: true}
	r.ToolChoice.Name = names[0]
	r.Messages[1].Parts[0].Name, r.Messages[1].Parts[1].Name = names[1], names[2]
	return r
}

// Names that fit change nothing: each encoder's body is byte for byte the
// one it wrote before tool names were mapped (testdata/toolnames, written
// by the encoders of c1c4aa9; CCRELAY_WRITE_GOLDEN=1 rewrites them).
func TestFittingToolNamesByteIdentical(t *testing.T) {
	for _, c := range toolNameCodecs {
		t.Run(c.name, func(t *testing.T) {
			body, err := c.encode(fittingRequest(c.model))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "toolnames", "fit_"+c.name+".json")
			if os.Getenv("CCRELAY_WRITE_GOLDEN") == "1" {
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(body) != string(want) {
				t.Fatalf("body changed\n got: %s\nwant: %s", body, want)
			}
		})
	}
}
