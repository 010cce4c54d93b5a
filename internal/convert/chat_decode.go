package convert

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"
)

// The client side of the Chat Completions codec: a /v1/chat/completions
// request body into the neutral Request. Decisions (docs/matrix.md):
//
//   - system and developer messages are hoisted, verbatim and in order, into
//     Request.System (one entry per text part), wherever they stand;
//   - consecutive messages of one role merge, tool messages become tool
//     results in a user turn (results first, a repeated result for the same
//     call replaces the earlier one), empty texts and messages vanish;
//   - parameters that would change the answer and that no other dialect can
//     carry (n>1, logprobs, audio, legacy functions, non-zero penalties,
//     logit_bias, web_search_options, a non-text modality) are refused with a
//     *RequestError naming them; harmless and unknown ones are ignored, so
//     new client options do not break requests;
//   - what only some upstream refuses (Claude's temperature above 1,
//     thinking with sampling parameters) is the encoder's to refuse.

// DecodeChat reads a client's OpenAI Chat Completions request body into the
// neutral form. A client fault is a *RequestError (HTTP 400 in OpenAI's
// shape). Request.Model is the model the client asked for.
func DecodeChat(body []byte) (*Request, error) {
	// encoding/json's validator is the strict one; gjson only reads.
	if !json.Valid(body) {
		return nil, badRequest("", "request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return nil, badRequest("", "request body must be a JSON object")
	}
	d := chatDecoder{r: &Request{}}
	var err error
	root.ForEach(func(k, v gjson.Result) bool {
		err = d.param(k.String(), v)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	if d.r.Model == "" {
		return nil, badRequest("model", "model is required")
	}
	if err := d.decodeMessages(); err != nil {
		return nil, err
	}
	if err := d.decodeToolChoice(); err != nil {
		return nil, err
	}
	if err := d.decodeFormat(); err != nil {
		return nil, err
	}
	if d.r.User == "" {
		d.r.User = d.safetyID
	}
	d.r.IncludeUsage = d.r.IncludeUsage && d.r.Stream
	return d.r, nil
}

// chatDecoder holds the state of one request's decoding.
type chatDecoder struct {
	r *Request

	messages   gjson.Result
	toolChoice gjson.Result
	format     gjson.Result
	// maxSet: max_completion_tokens was read, so a later max_tokens (its
	// deprecated name) does not override it.
	maxSet   bool
	safetyID string
}

// param maps, ignores or refuses one top-level key.
func (d *chatDecoder) param(key string, v gjson.Result) error {
	switch key {
	case "model":
		if v.Type != gjson.String {
			return badRequest(key, "model must be a string")
		}
		d.r.Model = v.Str
	case "messages":
		d.messages = v
	case "stop":
		return d.decodeStop(v)
	case "tools":
		return d.decodeTools(v)
	case "tool_choice":
		d.toolChoice = v
	case "response_format":
		d.format = v
	default:
		if v.Type == gjson.Null {
			return nil // every other parameter may be sent as null: not given
		}
		if known, err := d.sampling(key, v); known {
			return err
		}
		if known, err := d.option(key, v); known {
			return err
		}
		return chatRefuse(key, v)
	}
	return nil
}

// chatPositiveInt accepts an integral JSON number in [1, maxTokenLimit].
func chatPositiveInt(v gjson.Result) (int64, bool) {
	if v.Type != gjson.Number || v.Num != math.Trunc(v.Num) || v.Num < 1 || v.Num > maxTokenLimit {
		return 0, false
	}
	return int64(v.Num), true
}

// sampling reads the token limit and the sampling parameters; known is
// false for any other key.
func (d *chatDecoder) sampling(key string, v gjson.Result) (known bool, err error) {
	switch key {
	case "max_tokens", "max_completion_tokens":
		n, ok := chatPositiveInt(v)
		if !ok {
			return true, badRequest(key, "%s must be a positive integer", key)
		}
		// max_completion_tokens supersedes the deprecated max_tokens.
		if key == "max_completion_tokens" || !d.maxSet {
			d.r.MaxTokens = n
		}
		d.maxSet = d.maxSet || key == "max_completion_tokens"
	case "temperature":
		// OpenAI's range; an upstream with a narrower one (Claude: 1)
		// refuses in its encoder.
		if v.Type != gjson.Number || v.Num < 0 || v.Num > 2 {
			return true, badRequest(key, "temperature must be a number between 0 and 2")
		}
		f := v.Num
		d.r.Temperature = &f
	case "top_p":
		if v.Type != gjson.Number || v.Num < 0 || v.Num > 1 {
			return true, badRequest(key, "top_p must be a number between 0 and 1")
		}
		f := v.Num
		d.r.TopP = &f
	case "top_k": // not OpenAI, but sent by clients that know Claude
		n, ok := chatPositiveInt(v)
		if !ok {
			return true, badRequest(key, "top_k must be a positive integer")
		}
		d.r.TopK = &n
	default:
		return false, nil
	}
	return true, nil
}

// chatEfforts are the reasoning_effort values OpenAI documents.
var chatEfforts = [...]string{"none", "minimal", "low", "medium", "high", "xhigh"}

// option reads streaming, the end user, the cache key, tool parallelism and
// reasoning effort; known is false for any other key.
func (d *chatDecoder) option(key string, v gjson.Result) (known bool, err error) {
	switch key {
	case "stream":
		if !v.IsBool() {
			return true, badRequest(key, "stream must be a boolean")
		}
		d.r.Stream = v.Bool()
	case "stream_options":
		if !v.IsObject() {
			return true, badRequest(key, "stream_options must be an object")
		}
		iu := v.Get("include_usage")
		if iu.Exists() && iu.Type != gjson.Null && !iu.IsBool() {
			return true, badRequest("stream_options.include_usage", "stream_options.include_usage must be a boolean")
		}
		d.r.IncludeUsage = iu.Bool()
	case "user", "safety_identifier":
		if v.Type != gjson.String {
			return true, badRequest(key, "%s must be a string", key)
		}
		if key == "user" {
			d.r.User = v.Str
		} else {
			d.safetyID = v.Str
		}
	case "prompt_cache_key":
		if v.Type != gjson.String {
			return true, badRequest(key, "prompt_cache_key must be a string")
		}
		d.r.CacheKey = v.Str
	case "parallel_tool_calls":
		if !v.IsBool() {
			return true, badRequest(key, "parallel_tool_calls must be a boolean")
		}
		d.r.ToolChoice.NoParallel = !v.Bool()
	case "reasoning_effort":
		return true, d.decodeEffort(v)
	default:
		return false, nil
	}
	return true, nil
}

func (d *chatDecoder) decodeEffort(v gjson.Result) error {
	if v.Type != gjson.String {
		return badRequest("reasoning_effort", "reasoning_effort must be a string")
	}
	for _, e := range chatEfforts {
		if v.Str != e {
			continue
		}
		if e != "none" {
			d.r.Thinking = Thinking{Enabled: true, Effort: e}
		} else {
			d.r.Thinking = Thinking{}
		}
		return nil
	}
	return badRequest("reasoning_effort", "reasoning_effort %q is not supported; use none, minimal, low, medium, high or xhigh", v.Str)
}

// chatRefuse refuses, with a clear reason, the parameters no other dialect
// can carry, unless they are sent with their neutral value. Everything else
// (seed, store, metadata, service_tier, prediction, verbosity, vendor
// extensions...) does not change what the model is asked, so it is
// ignored. v is never null here.
func chatRefuse(key string, v gjson.Result) error {
	switch key {
	case "n":
		if n, ok := chatPositiveInt(v); !ok || n != 1 {
			return badRequest(key, "n must be 1: a converted request returns a single choice")
		}
	case "logprobs":
		if v.Type == gjson.True {
			return badRequest(key, "logprobs are not supported for this model")
		}
	case "top_logprobs":
		if !(v.Type == gjson.Number && v.Num == 0) {
			return badRequest(key, "top_logprobs are not supported for this model")
		}
	case "modalities":
		if !v.IsArray() {
			return badRequest(key, "modalities must be an array")
		}
		var err error
		v.ForEach(func(_, m gjson.Result) bool {
			if m.Type != gjson.String || m.Str != "text" {
				err = badRequest(key, "only the text modality is supported")
			}
			return err == nil
		})
		return err
	case "audio":
		return badRequest(key, "audio output is not supported")
	case "functions", "function_call":
		return badRequest(key, "the legacy %s parameter is not supported; use tools and tool_choice", key)
	case "logit_bias":
		if !isEmptyObject(v) {
			return badRequest(key, "logit_bias is not supported for this model")
		}
	case "presence_penalty", "frequency_penalty":
		if !(v.Type == gjson.Number && v.Num == 0) {
			return badRequest(key, "%s is not supported for this model; omit it or send 0", key)
		}
	case "web_search_options":
		return badRequest(key, "web_search_options is not supported")
	}
	return nil
}

func (d *chatDecoder) decodeStop(v gjson.Result) error {
	add := func(s string) {
		// Blank stop sequences never match anything useful, and
		// Anthropic refuses them.
		if strings.TrimSpace(s) != "" {
			d.r.Stop = append(d.r.Stop, s)
		}
	}
	switch {
	case v.Type == gjson.Null:
	case v.Type == gjson.String:
		add(v.Str)
	case v.IsArray():
		var err error
		v.ForEach(func(_, s gjson.Result) bool {
			if s.Type != gjson.String {
				err = badRequest("stop", "stop must be a string or an array of strings")
				return false
			}
			add(s.Str)
			return true
		})
		return err
	default:
		return badRequest("stop", "stop must be a string or an array of strings")
	}
	return nil
}

func (d *chatDecoder) decodeTools(v gjson.Result) error {
	if v.Type == gjson.Null {
		return nil
	}
	if !v.IsArray() {
		return badRequest("tools", "tools must be an array")
	}
	var err error
	i := 0
	v.ForEach(func(_, t gjson.Result) bool {
		err = d.decodeTool(i, t)
		i++
		return err == nil
	})
	return err
}

func (d *chatDecoder) decodeTool(i int, t gjson.Result) error {
	param := "tools[" + strconv.Itoa(i) + "]"
	if !t.IsObject() {
		return badRequest(param, "%s must be an object", param)
	}
	if typ := t.Get("type"); typ.Exists() && typ.String() != "function" {
		return badRequest(param+".type", "tool type %q is not supported; only function tools are", typ.String())
	}
	fn := t.Get("function")
	if !fn.IsObject() {
		return badRequest(param+".function", "%s.function must be an object", param)
	}
	name := fn.Get("name")
	if name.Type != gjson.String || name.Str == "" {
		return badRequest(param+".function.name", "%s.function.name must be a non-empty string", param)
	}
	desc := fn.Get("description")
	if desc.Exists() && desc.Type != gjson.Null && desc.Type != gjson.String {
		return badRequest(param+".function.description", "%s.function.description must be a string", param)
	}
	schema := json.RawMessage(defaultToolSchema)
	switch p := fn.Get("parameters"); {
	case !p.Exists() || p.Type == gjson.Null:
	case p.IsObject():
		raw := p.Raw
		// A typeless schema ({}) is what OpenAI clients send for "no
		// arguments"; Tool.Schema is an object schema.
		if !p.Get("type").Exists() {
			var err error
			if raw, err = sjson.Set(raw, "type", "object"); err != nil {
				return badRequest(param+".function.parameters", "%s.function.parameters is not a valid schema", param)
			}
		}
		schema = json.RawMessage(raw)
	default:
		return badRequest(param+".function.parameters", "%s.function.parameters must be a JSON Schema object", param)
	}
	d.r.Tools = append(d.r.Tools, Tool{Name: name.Str, Description: desc.String(), Schema: schema})
	return nil
}

func (d *chatDecoder) decodeToolChoice() error {
	v := d.toolChoice
	tc := &d.r.ToolChoice
	switch {
	case !v.Exists() || v.Type == gjson.Null:
	case v.Type == gjson.String:
		switch v.Str {
		case "auto", "none", "required":
			tc.Mode = v.Str
		default:
			return badRequest("tool_choice", "tool_choice %q is not supported; use auto, none, required or a function", v.Str)
		}
	case v.IsObject():
		if v.Get("type").String() != "function" {
			return badRequest("tool_choice.type", "tool_choice type %q is not supported; only function is", v.Get("type").String())
		}
		name := v.Get("function.name")
		if name.Type != gjson.String || name.Str == "" {
			return badRequest("tool_choice.function.name", "tool_choice.function.name must be a non-empty string")
		}
		tc.Mode, tc.Name = "tool", name.Str
	default:
		return badRequest("tool_choice", "tool_choice must be a string or an object")
	}
	if len(d.r.Tools) > 0 {
		return nil
	}
	if tc.Mode == "required" || tc.Mode == "tool" {
		return badRequest("tool_choice", "tool_choice requires tools")
	}
	// auto or none without tools is what the absence of tools means.
	*tc = ToolChoice{}
	return nil
}

// decodeFormat reads response_format into Request.Format.
func (d *chatDecoder) decodeFormat() error {
	v := d.format
	if !v.Exists() || v.Type == gjson.Null {
		return nil
	}
	if !v.IsObject() {
		return badRequest("response_format", "response_format must be an object")
	}
	switch typ := v.Get("type").String(); typ {
	case "text":
	case "json_object":
		d.r.Format = &Format{JSON: true}
	case "json_schema":
		js := v.Get("json_schema")
		if !js.IsObject() {
			return badRequest("response_format.json_schema", "response_format.json_schema must be an object")
		}
		f := &Format{JSON: true, Name: js.Get("name").String(), Strict: js.Get("strict").Type == gjson.True}
		if s := js.Get("schema"); s.Exists() && s.Type != gjson.Null {
			if !s.IsObject() {
				return badRequest("response_format.json_schema.schema", "response_format.json_schema.schema must be a JSON Schema object")
			}
			f.Schema = json.RawMessage(s.Raw)
		}
		d.r.Format = f
	default:
		return badRequest("response_format.type", "response_format type %q is not supported; use text, json_object or json_schema", typ)
	}
	return nil
}
