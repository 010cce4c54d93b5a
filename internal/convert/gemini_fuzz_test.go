package convert

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tidwall/gjson"
)

// geminiSchemaKeys are the keywords CleanGeminiSchema may write.
var geminiSchemaKeys = map[string]bool{
	"type": true, "description": true, "nullable": true, "enum": true, "properties": true,
	"required": true, "items": true, "anyOf": true, "format": true,
}

// checkGeminiSchema fails when s holds a keyword Gemini's Schema refuses.
func checkGeminiSchema(t *testing.T, s gjson.Result, path string) {
	t.Helper()
	s.ForEach(func(k, v gjson.Result) bool {
		if !geminiSchemaKeys[k.Str] {
			t.Fatalf("%s: keyword %q left in a cleaned schema", path, k.Str)
		}
		switch k.Str {
		case "properties":
			v.ForEach(func(name, p gjson.Result) bool {
				checkGeminiSchema(t, p, path+".properties."+name.Str)
				return true
			})
		case "items":
			checkGeminiSchema(t, v, path+".items")
		case "anyOf":
			v.ForEach(func(_, b gjson.Result) bool {
				checkGeminiSchema(t, b, path+".anyOf")
				return true
			})
		}
		return true
	})
}

// FuzzDecodeGemini checks that any body either decodes, and then encodes
// for every upstream as valid JSON (Gemini's tool schemas clean), or fails
// with a *RequestError.
func FuzzDecodeGemini(f *testing.F) {
	for _, name := range []string{"cli_request.json", "router_request.json"} {
		if b, err := os.ReadFile("testdata/gemini/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"contents":[{"role":"model","parts":[{"text":"t","thought":true},{"functionCall":{"name":"f"},"thoughtSignature":"ccr1.anthropic..YQ.Yg"}]},{"role":"function","parts":[{"functionResponse":{"name":"f","response":{"error":{"x":1}}}}]}]}`))
	f.Add([]byte(`{"request":{"contents":[],"tools":[{"functionDeclarations":[{"name":"f","parametersJsonSchema":{"type":["object","null"],"properties":{"a":{"$ref":"#"}},"anyOf":[{"const":1},{"type":"null"}]}}]}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := DecodeGemini(body)
		if err != nil {
			checkRequestError(t, err)
			return
		}
		out, err := EncodeGemini(r)
		if err != nil {
			t.Fatalf("encode of a decoded request: %v", err)
		}
		if !json.Valid(out) {
			t.Fatalf("encoded body is not valid JSON: %s", out)
		}
		gjson.GetBytes(out, "tools.0.functionDeclarations").ForEach(func(_, d gjson.Result) bool {
			if p := d.Get("parameters"); p.Exists() {
				checkGeminiSchema(t, p, d.Get("name").Str)
			}
			return true
		})
		for name, enc := range map[string]func(*Request) ([]byte, error){"messages": EncodeMessages, "responses": EncodeResponses} {
			r.Model = "m"
			if b, err := enc(r); err == nil && !json.Valid(b) {
				t.Fatalf("%s body is not valid JSON: %s", name, b)
			}
		}
	})
}

// FuzzParseGemini checks that any upstream answer parses or errors, and
// that what parses writes as valid JSON for Gemini and Messages clients.
func FuzzParseGemini(f *testing.F) {
	if b, err := os.ReadFile("testdata/gemini/response_tool.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`[{"response":{"candidates":[{"content":{"parts":[{"text":"a","thought":true,"thoughtSignature":"x"}]},"finishReason":"SAFETY"}]}}]`))
	f.Add([]byte(`{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		checkParsedWrites(t, body, ParseGemini, WriteGemini, WriteMessages)
	})
}

// FuzzGeminiStreamReader feeds any bytes as an upstream stream: the reader
// never panics, its events keep the ir.go contract, and the Gemini writer
// turns them into chunks whose data is JSON.
func FuzzGeminiStreamReader(f *testing.F) {
	if b, err := os.ReadFile("testdata/gemini/stream_tool.sse"); err == nil {
		f.Add(b, uint16(11))
	}
	f.Add([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\",\"thought\":true},{\"functionCall\":{\"name\":\"f\",\"args\":[]},\"thoughtSignature\":\"s\"}]}}]}\n\ndata: {\"error\":{\"code\":429}}\n\n"), uint16(5))
	f.Fuzz(func(t *testing.T, stream []byte, cut uint16) {
		evs := geminiReadStream(stream, fuzzCuts(stream, cut)...)
		checkEventContract(t, evs)
		for _, c := range geminiChunks(t, writeAll(NewGeminiStreamWriter("m"), evs)) {
			if !json.Valid([]byte(c.Raw)) {
				t.Fatalf("chunk is not JSON: %s", c.Raw)
			}
		}
	})
}
