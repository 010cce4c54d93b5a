package openai

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// CodexBaseURL is the ChatGPT backend Codex CLI uses with a ChatGPT
// subscription ("Sign in with ChatGPT"); requests go to {base}/responses.
const CodexBaseURL = "https://chatgpt.com/backend-api/codex"

// codexUnsupported are public Responses API parameters the ChatGPT backend
// refuses with 400 {"detail":"Unsupported parameter: <name>"}.
var codexUnsupported = []string{
	"temperature", "top_p", "max_output_tokens", "presence_penalty", "frequency_penalty", "seed",
	"metadata", "top_logprobs", "truncation", "service_tier", "previous_response_id",
	"prompt_cache_retention", "safety_identifier", "stream_options", "user",
}

// CodexBody rewrites a public Responses API request body into what the
// ChatGPT backend accepts. Each rule is a documented difference from the
// API-key route:
//   - store is false (the backend answers 400 "Store must be set to false"
//     otherwise: it keeps nothing, so previous_response_id cannot work either);
//   - stream is true (the backend only streams; a client that asked for JSON
//     gets the stream aggregated, see CodexAggregate);
//   - instructions is present ("" when the client sent none);
//   - the parameters the backend refuses are removed (codexUnsupported).
//
// It reports whether the client asked for a stream. A body that is not a
// JSON object is returned unchanged (the relay's intake refuses those).
func CodexBody(body []byte) (out []byte, clientStream bool, err error) {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return body, false, nil
	}
	clientStream = gjson.GetBytes(body, "stream").Bool()
	out = bytes.Clone(body)
	for _, k := range codexUnsupported {
		if gjson.GetBytes(out, k).Exists() {
			if out, err = sjson.DeleteBytes(out, k); err != nil {
				return nil, false, err
			}
		}
	}
	if out, err = sjson.SetBytes(out, "store", false); err != nil {
		return nil, false, err
	}
	if out, err = sjson.SetBytes(out, "stream", true); err != nil {
		return nil, false, err
	}
	if !gjson.GetBytes(out, "instructions").Exists() {
		if out, err = sjson.SetBytes(out, "instructions", ""); err != nil {
			return nil, false, err
		}
	}
	return out, clientStream, nil
}

// ChatGPTAccountID reads the ChatGPT account id from an OpenAI id token or
// access token: the claim object "https://api.openai.com/auth", field
// chatgpt_account_id. The token is not verified: it came from the token
// endpoint over TLS, and the id only selects the workspace. "" when absent.
func ChatGPTAccountID(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Auth struct {
			AccountID string `json:"chatgpt_account_id"`
		} `json:"https://api.openai.com/auth"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Auth.AccountID
}

// CodexDetail is the message of the ChatGPT backend's error shape,
// {"detail": "..."} (or {"detail": {"message": ...}}); "" for other shapes.
func CodexDetail(body []byte) string {
	d := gjson.GetBytes(body, "detail")
	switch {
	case d.Type == gjson.String:
		return d.Str
	case d.IsObject():
		return d.Get("message").Str
	}
	return ""
}

// CodexAggregator turns the backend's SSE stream into the Responses object a
// non-streaming client expects. Feed it every event's data; Result gives the
// response of the terminal event, with output filled from the
// response.output_item.done items when the terminal event carries none.
type CodexAggregator struct {
	items    map[int64]json.RawMessage
	maxIndex int64
	terminal []byte
	failed   bool
}

// Add reads one event's data.
func (a *CodexAggregator) Add(data []byte) {
	r := gjson.GetManyBytes(data, "type", "output_index", "item")
	switch r[0].Str {
	case "response.output_item.done":
		if a.items == nil {
			a.items = map[int64]json.RawMessage{}
		}
		i := r[1].Int()
		a.items[i] = json.RawMessage(r[2].Raw)
		a.maxIndex = max(a.maxIndex, i)
	case "response.completed", "response.incomplete":
		a.terminal = bytes.Clone([]byte(gjson.GetBytes(data, "response").Raw))
	case "response.failed", "error":
		a.terminal, a.failed = bytes.Clone(data), true
	}
}

// Result returns the aggregated response object, or (for a failed stream)
// the failing event, with failed set; ok is false when the stream had no
// terminal event.
func (a *CodexAggregator) Result() (body []byte, failed, ok bool) {
	if a.terminal == nil {
		return nil, false, false
	}
	if a.failed {
		return a.terminal, true, true
	}
	out := a.terminal
	if n := gjson.GetBytes(out, "output.#").Int(); n == 0 && len(a.items) > 0 {
		var b strings.Builder
		b.WriteByte('[')
		first := true
		for i := int64(0); i <= a.maxIndex; i++ {
			item, ok := a.items[i]
			if !ok {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			b.Write(item)
		}
		b.WriteByte(']')
		if o, err := sjson.SetRawBytes(out, "output", []byte(b.String())); err == nil {
			out = o
		}
	}
	return out, false, true
}

// CodexFailedStatus maps a failed stream's error code to the HTTP status the
// API-key route would have answered with, so a non-streaming client gets an
// error it understands and the relay classifies it like the others.
func CodexFailedStatus(event []byte) int {
	code := gjson.GetBytes(event, "response.error.code").Str
	if code == "" {
		code = gjson.GetBytes(event, "error.code").Str
	}
	switch code {
	case "rate_limit_exceeded", "insufficient_quota", "usage_limit_reached", "usage_not_included":
		return 429
	case "context_length_exceeded", "invalid_prompt", "invalid_request_error":
		return 400
	case "server_is_overloaded", "slow_down":
		return 503
	}
	return 500
}

// CodexErrorBody is the OpenAI-shaped error body for a failed stream.
func CodexErrorBody(event []byte) []byte {
	e := gjson.GetBytes(event, "response.error")
	if !e.Exists() {
		e = gjson.GetBytes(event, "error")
	}
	msg := e.Get("message").Str
	if msg == "" {
		msg = "the upstream stream failed"
	}
	b := []byte(`{"error":{"message":`)
	b = provider.AppendJSONString(b, msg)
	b = append(b, `,"type":"server_error","code":`...)
	b = provider.AppendJSONString(b, e.Get("code").Str)
	return append(b, `}}`...)
}
