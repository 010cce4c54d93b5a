package gemini

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"
)

func FuzzParseCall(f *testing.F) {
	for _, s := range []string{
		"/v1beta/models/gemini-2.5-pro:streamGenerateContent",
		"/v1/models/gemini-2.5-flash-lite:generateContent",
		"/v1beta/models/tuned.model-1:countTokens",
		"/v1beta/models/../x:generateContent",
		"/v1beta/models/%2e%2e:generateContent",
		"/v1beta/models/a/b:generateContent",
		"/v1beta/models/x?alt=:generateContent",
		"",
	} {
		f.Add(s)
	}
	// Every error ParseCall can return, one input per branch: a fuzzed input
	// must produce one of these fixed texts, never something built from it.
	known := map[string]bool{}
	for _, p := range []string{
		strings.Repeat("x", 600), "%", "/v2/models/m:generateContent", "/v1/m", "/v1beta/m",
		"/v1/models/m", "/v1/models/..:generateContent", "/v1/models/m:x",
	} {
		_, err := ParseCall(p)
		if err == nil {
			f.Fatalf("ParseCall(%q) succeeded", p)
		}
		known[err.Error()] = true
	}
	f.Fuzz(func(t *testing.T, path string) {
		c, err := ParseCall(path)
		if err != nil {
			if !known[err.Error()] {
				t.Fatalf("unexpected error text %q", err)
			}
			return
		}
		if !ValidModel(c.Model) || strings.Contains(c.Model, "..") || len(c.Model) > maxModelLen {
			t.Fatalf("accepted bad model %q", c.Model)
		}
		switch c.Method {
		case MethodGenerate, MethodStream, MethodCountTokens:
		default:
			t.Fatalf("accepted method %q", c.Method)
		}
		u := PublicURL("", c)
		if strings.Contains(u, "..") || strings.Count(u, "?") > 1 || strings.Contains(u, "%") || strings.Contains(u, "#") {
			t.Fatalf("unsafe URL %q from %q", u, path)
		}
		if !strings.HasPrefix(u, PublicBaseURL+"/"+c.Version+"/models/"+c.Model+":") {
			t.Fatalf("URL %q does not have the expected shape", u)
		}
		// Parsing is canonical: the rebuilt path parses to the same Call.
		again, err := ParseCall("/" + c.Version + "/models/" + c.Model + ":" + c.Method)
		if err != nil || again != c {
			t.Fatalf("re-parse = %+v, %v; want %+v", again, err, c)
		}
	})
}

func FuzzParseUsage(f *testing.F) {
	for _, s := range []string{
		`{"usageMetadata":{"promptTokenCount":1200,"candidatesTokenCount":80,"cachedContentTokenCount":1000,"thoughtsTokenCount":100}}`,
		`{"response":{"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5}},"traceId":"t"}`,
		"data: {\"usageMetadata\":{\"promptTokenCount\":7}}",
		`[{"usageMetadata":{"promptTokenCount":1}},{"usageMetadata":{"candidatesTokenCount":2}}]`,
		`{"usageMetadata":{"promptTokenCount":-9223372036854775808,"cachedContentTokenCount":9223372036854775807}}`,
		`{"usageMetadata":{"promptTokenCount":1e400}}`,
		`{"usageMetadata":`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		u, ok := ParseUsage(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("ParseUsage modified its input")
		}
		if !ok && !u.IsZero() {
			t.Fatalf("ok=false with usage %+v", u)
		}
		if u.CacheReadTokens < 0 || u.CacheCreationTokens != 0 {
			t.Fatalf("bad counters %+v", u)
		}
		_ = SessionKey(body)
		_, _ = StreamEventError(body, time.Unix(0, 0))
		_ = Classify(429, nil, body, time.Unix(0, 0))
	})
}

func FuzzUnwrap(f *testing.F) {
	for _, s := range []string{
		`{"response":{"candidates":[{"content":{"parts":[{"text":"hi","thoughtSignature":"c2ln"}]}}]},"traceId":"t"}`,
		`{"traceId":"t","response":{"a":1}}`,
		`{"totalTokens":3}`,
		`{"response":"x"}`,
		`[{"response":{}}]`,
		`{"response":{`,
		``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		got := UnwrapCodeAssist(body)
		if !bytes.Equal(body, orig) {
			t.Fatal("UnwrapCodeAssist modified its input")
		}
		if len(got) == len(body) && bytes.Equal(got, body) {
			return // unchanged
		}
		if !bytes.Contains(body, got) {
			t.Fatalf("result %q is not part of the body", got)
		}
		if len(got) == 0 || got[0] != '{' || got[len(got)-1] != '}' {
			t.Fatalf("result %q is not an object", got)
		}
		if gjson.ValidBytes(body) && !gjson.ValidBytes(got) {
			t.Fatalf("valid body gave invalid result %q", got)
		}
	})
}

func FuzzWrapUnwrap(f *testing.F) {
	f.Add([]byte(richBody), "gemini-2.5-pro", "proj-1")
	f.Add([]byte(`{}`), "m", "")
	f.Add([]byte(`{"contents":[],"x":"\u0000"}`), "tuned.model-1", "p\"q")
	f.Fuzz(func(t *testing.T, body []byte, model, project string) {
		for _, m := range []string{MethodGenerate, MethodStream, MethodCountTokens} {
			wrapped, err := WrapCodeAssist(Call{"v1beta", model, m}, project, body)
			if err != nil {
				continue
			}
			if !gjson.ValidBytes(wrapped) {
				t.Fatalf("%s: invalid wrapped JSON %q", m, wrapped)
			}
			req := gjson.GetBytes(wrapped, "request")
			if m == MethodCountTokens {
				if got := req.Get("model").String(); got != "models/"+model {
					t.Fatalf("countTokens model = %q", got)
				}
				continue
			}
			trimmed := bytes.TrimSpace(body)
			if req.Raw != string(trimmed) {
				t.Fatalf("request not verbatim:\n%q\nwant\n%q", req.Raw, trimmed)
			}
			if got := gjson.GetBytes(wrapped, "model").String(); got != model {
				t.Fatalf("model = %q, want %q", got, model)
			}
			answer := append(append([]byte(`{"response":`), trimmed...), '}')
			if got := UnwrapCodeAssist(answer); !bytes.Equal(got, trimmed) {
				t.Fatalf("unwrap = %q, want %q", got, trimmed)
			}
		}
	})
}
