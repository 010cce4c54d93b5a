package convert

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzDecodeResponses checks that any body either decodes, and then encodes
// for every upstream as valid JSON, or fails with a *RequestError.
func FuzzDecodeResponses(f *testing.F) {
	if b, err := os.ReadFile("testdata/responses/codex_request.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"model":"m","input":"hi","max_output_tokens":5,"text":{"format":{"type":"json_schema","schema":{"type":"object"}}}}`))
	f.Add([]byte(`{"input":[{"type":"reasoning","summary":[{"text":"a"}],"encrypted_content":"ccr1.anthropic..YQ.Yg"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"data:image/png;base64,AA=="}]}]}`))
	f.Add([]byte(`{"input":[{"role":"user","content":[{"type":"input_file"}]}],"tool_choice":{"type":"allowed_tools","mode":"required"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeResponses(body)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("error %v (%T), want a *RequestError with a message", err, err)
			}
			return
		}
		out, err := EncodeResponses(r)
		if err != nil {
			t.Fatalf("encode of a decoded request: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("encoded body is not valid JSON: %s", out)
		}
	})
}

// FuzzParseResponses checks that any upstream answer parses or errors, and
// that what parses writes as valid JSON.
func FuzzParseResponses(f *testing.F) {
	f.Add([]byte(responsesToolAnswer))
	f.Add([]byte(`{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[{"type":"message","content":[{"type":"refusal","refusal":"no"}]}]}`))
	f.Add([]byte(`{"status":"failed","error":{"code":"server_error","message":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := ParseResponses(body)
		if err != nil {
			return
		}
		if out := WriteResponses(resp, "m"); !json.Valid(out) {
			t.Fatalf("written answer is not valid JSON: %s", out)
		}
	})
}
