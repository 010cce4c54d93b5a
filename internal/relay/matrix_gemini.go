package relay

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/gemini"
)

// Gemini in the protocol matrix: the Gemini routes' client side, and
// Gemini accounts as an upstream of the other dialects. A Gemini request
// names its model and method in the URL, and a gemini (Code Assist)
// account wraps body and answers in an envelope; the rest is the
// converting adapter of matrix.go.

func init() {
	clientSides["google"] = &clientSide{
		decode: convert.DecodeGemini,
		write:  convert.WriteGemini,
		newWriter: func(model string, _ *convert.Request) convert.StreamWriter {
			return convert.NewGeminiStreamWriter(model)
		},
	}
	upstreamAPIs[geminiPlatform] = &upstreamAPI{
		platform: geminiPlatform, custom: true,
		encode: convert.EncodeGemini, parse: convert.ParseGemini, reader: convert.NewGeminiStreamReader,
		classify: func(a *convAdapter, status int, h http.Header, body []byte) provider.Verdict {
			return gemini.Classify(status, h, body, a.now())
		},
		event: geminiEvent,
		errEvent: func(a *convAdapter, data []byte) provider.Verdict {
			v, _ := gemini.StreamEventError(data, a.now())
			return v
		},
		url:         geminiURL,
		count:       geminiCounter,
		unwrap:      geminiUnwrap,
		noTerminal:  true,
		readerUsage: true,
	}
}

// geminiURL is a converted call's URL on a Gemini account: the public API's
// models/{model}:{generateContent|streamGenerateContent}, or Code Assist's
// method with the body in its envelope.
func geminiURL(ctx context.Context, a *convAdapter, c *call, up *Upstream, secret string) (string, []byte, error) {
	call := gemini.Call{Version: "v1beta", Model: a.model, Method: gemini.MethodGenerate}
	q := ""
	if c.stream {
		call.Method, q = gemini.MethodStream, "?alt=sse"
	}
	if !codeAssist(up) {
		return gemini.PublicURL(up.Config.APIURL, call) + q, a.body, nil
	}
	if up.Project == nil {
		return "", nil, errors.New("gemini account has no code assist project source")
	}
	project, err := up.Project.Project(ctx, secret)
	if err != nil {
		return "", nil, err
	}
	body, err := gemini.WrapCodeAssist(call, project, a.body)
	if err != nil {
		return "", nil, err
	}
	return gemini.CodeAssistURL(up.Config.APIURL, call) + q, body, nil
}

// geminiUnwrap takes a Code Assist answer out of its envelope; public API
// answers are returned as they are.
func geminiUnwrap(up *Upstream, data []byte) []byte {
	if codeAssist(up) {
		return gemini.UnwrapCodeAssist(data)
	}
	return data
}

// geminiEvent classifies a Gemini stream event: an error object, else
// content with usage, merged into u unless u is nil (the stream reader
// keeps it: readerUsage). Every event is a whole GenerateContentResponse;
// there is no preamble and no final event.
func geminiEvent(_, data []byte, u *provider.Usage) provider.EventClass {
	if bytes.Contains(data, errorKey) {
		// Only the class is read here; errEvent makes the verdict.
		if _, ok := gemini.StreamEventError(data, time.Time{}); ok {
			return provider.ErrorEvent
		}
	}
	if u == nil {
		return provider.Content
	}
	if got, ok := gemini.ParseUsage(data); ok {
		u.Merge(got)
	}
	return provider.Content
}
