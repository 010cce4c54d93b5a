package relay

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
	"github.com/ccrelay/ccrelay/internal/routing"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// The compat pool: openai-compatible accounts, Chat Completions upstreams
// (DeepSeek, Kimi, GLM, OpenRouter, Ollama, vLLM...). The Chat route passes
// through to them (chatPassthrough); the other dialects reach them by
// conversion (compatAPI in matrix.go's upstreamAPIs).

// compatAPI is the Chat Completions API as a conversion's upstream side.
var compatAPI = &upstreamAPI{
	platform: accounttype.PlatformCompat, path: "/chat/completions", custom: true,
	encode: convert.EncodeChat, parse: convert.ParseChat, reader: convert.NewChatStreamReader,
	classify: func(a *convAdapter, status int, h http.Header, body []byte) provider.Verdict {
		return openai.Classify(status, h, body, a.now())
	},
	event: func(_, data []byte, u *provider.Usage) provider.EventClass {
		var seen bool
		return openai.ClassifyChatEvent(data, u, &seen)
	},
	errEvent: func(a *convAdapter, data []byte) provider.Verdict {
		return openai.ClassifyStreamError(data, a.now())
	},
	forAccount: compatBody,
}

// compatBody is a Chat Completions body as account up takes it: the model
// renamed by its model_map, structured outputs as JSON mode for a vendor
// without them (json_schema = false), and stream_options left out for a
// vendor that refuses them (stream_usage = false). The body is copied
// only when it changes. c.served follows a rename (the usage record's
// served model).
func compatBody(c *call, up *Upstream, body []byte) ([]byte, error) {
	if len(up.Config.ModelMap) > 0 {
		model := gjson.GetBytes(body, "model").Str
		if m := up.Config.SendModel(model); m != model {
			var err error
			if body, err = sjson.SetBytes(body, "model", m); err != nil {
				return nil, err
			}
			c.served = m
		}
	}
	if !up.Config.TakesJSONSchema() && gjson.GetBytes(body, "response_format.type").Str == "json_schema" {
		var err error
		if body, err = jsonMode(body); err != nil {
			return nil, err
		}
	}
	if !up.Config.AsksStreamUsage() && gjson.GetBytes(body, "stream_options").Exists() {
		return sjson.DeleteBytes(body, "stream_options")
	}
	return body, nil
}

// jsonMode turns a structured-output request into JSON mode for a vendor
// without json_schema (json_schema = false): response_format becomes
// {"type":"json_object"} and a first system message gives the schema
// (which also says "JSON", as DeepSeek's JSON mode requires).
func jsonMode(body []byte) ([]byte, error) {
	rf := gjson.GetBytes(body, "response_format.json_schema")
	msg := []byte(`{"role":"system","content":`)
	msg = provider.AppendJSONString(msg, "Answer with a single JSON object that follows this JSON schema:\n"+rf.Get("schema").Raw)
	msg = append(msg, '}')
	msgs := []byte{'['}
	msgs = append(msgs, msg...)
	gjson.GetBytes(body, "messages").ForEach(func(_, m gjson.Result) bool {
		msgs = append(append(msgs, ','), m.Raw...)
		return true
	})
	msgs = append(msgs, ']')
	body, err := sjson.SetRawBytes(body, "messages", msgs)
	if err != nil {
		return nil, err
	}
	return sjson.SetRawBytes(body, "response_format", []byte(`{"type":"json_object"}`))
}

// chatPassthrough sends a Chat Completions request to a compat account as
// the client wrote it (but for compatBody's edits) and hands its answer back
// byte for byte.
type chatPassthrough struct{ now func() time.Time }

func (chatPassthrough) platform() string { return accounttype.PlatformCompat }

func (chatPassthrough) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	body, err := compatBody(c, up, c.body)
	if err != nil {
		return nil, err
	}
	req, err := newUpstreamRequest(ctx, c, http.MethodPost, up.baseURL()+compatAPI.path, body)
	if err != nil {
		return nil, err
	}
	h := req.Header
	copyRequestHeader(h, c.req.Header, convertedHeaders)
	h.Set("Content-Type", "application/json")
	up.authenticate(h, secret)
	return req, nil
}

func (a chatPassthrough) classify(_ *call, status int, h http.Header, body []byte) provider.Verdict {
	return openai.Classify(status, h, body, a.now())
}

func (chatPassthrough) decode(c *call, _ *Upstream, body []byte) ([]byte, provider.Usage, error) {
	if !provider.LooksLikeJSONObject(body) {
		return nil, provider.Usage{}, errMalformed
	}
	u, ok := openai.ParseChatUsage(body)
	c.usageUnknown = !ok
	return body, u, nil
}

func (a chatPassthrough) newStream(*call, *Upstream) streamer { return &compatStream{now: a.now} }

// compatStream watches a Chat Completions stream that passes through.
type compatStream struct {
	now func() time.Time
	u   provider.Usage
	// seen: a chunk carried usage (a stream without one is recorded as
	// usage unknown, not as zero tokens).
	seen bool
}

func (s *compatStream) observe(ev *sse.Event) provider.EventClass {
	return openai.ClassifyChatEvent(ev.Data, &s.u, &s.seen)
}
func (s *compatStream) transform(dst []byte, ev *sse.Event) []byte { return append(dst, ev.Raw...) }
func (s *compatStream) passthrough() bool                          { return true }
func (s *compatStream) errVerdict(ev *sse.Event) provider.Verdict {
	return openai.ClassifyStreamError(ev.Data, s.now())
}
func (s *compatStream) end(dst []byte) []byte { return dst }
func (s *compatStream) needsTerminal() bool   { return true }
func (s *compatStream) usage() provider.Usage { return s.u }
func (s *compatStream) usageUnknown() bool    { return !s.seen }

// compatModels are the model names the enabled openai-compatible accounts
// serve by name, for GET /openai/v1/models: each account's literal
// `models` entries and the model_map names its globs take, sorted, each
// once (a glob such as "deepseek-*" names no model to list).
func compatModels(ups []*Upstream) []string {
	var names []string
	for _, up := range ups {
		if up == nil || up.Account.Platform != accounttype.PlatformCompat || !up.Account.Enabled {
			continue
		}
		for _, m := range up.Config.Models {
			if !strings.ContainsAny(m, "*?[") {
				names = append(names, m)
			}
		}
		for m := range up.Config.ModelMap {
			if routing.Serves(up.Config.Models, m) {
				names = append(names, m)
			}
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// appendModelEntries appends to a list's data one OpenAI model object per
// name, owned by the compat pool (the name routes give it).
func appendModelEntries(b []byte, names []string) []byte {
	for i, m := range names {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = provider.AppendJSONString(b, m)
		b = append(b, `,"object":"model","created":0,"owned_by":"`+accounttype.PlatformCompat+`"}`...)
	}
	return b
}

// withCompatModels adds the names a listed upstream's model list (an
// openai-responses account's) lacks to its data.
func withCompatModels(body []byte, names []string) ([]byte, error) {
	var missing []string
	have := gjson.GetBytes(body, "data.#.id")
	for _, m := range names {
		found := false
		have.ForEach(func(_, id gjson.Result) bool {
			found = id.Str == m
			return !found
		})
		if !found {
			missing = append(missing, m)
		}
	}
	if len(missing) == 0 {
		return body, nil
	}
	out := body
	for _, m := range missing {
		var err error
		if out, err = sjson.SetRawBytes(out, "data.-1", appendModelEntries(nil, []string{m})); err != nil {
			return nil, err
		}
	}
	return out, nil
}
