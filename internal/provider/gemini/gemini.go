// Package gemini knows the wire formats of Google's Gemini APIs: the public
// Generative Language API (API keys, generativelanguage.googleapis.com) and
// the Code Assist API that Gemini CLI uses with Google OAuth
// (cloudcode-pa.googleapis.com/v1internal).
//
// Everything here is a pure function over bytes except DiscoverProject, which
// talks to Code Assist through the *http.Client it is given. The package knows
// nothing of accounts, pools or storage. Hot-path helpers (UnwrapCodeAssist,
// ParseUsage, SessionKey, StreamEventError) read bodies with gjson and byte
// slicing instead of decoding them, so client bytes (camelCase fields,
// thoughtSignature, functionCall.id, fields this package has never heard of)
// pass through untouched.
package gemini

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

const (
	// PublicBaseURL is the default base of the public Gemini API (API keys).
	PublicBaseURL = "https://generativelanguage.googleapis.com"
	// CodeAssistBaseURL is the default base of the Code Assist API (Google OAuth).
	CodeAssistBaseURL = "https://cloudcode-pa.googleapis.com"

	// codeAssistVersion is the only Code Assist API version clients use.
	codeAssistVersion = "v1internal"
	// defaultVersion is what @google/genai 2.x and Gemini CLI use when a Call
	// carries no version.
	defaultVersion = "v1beta"
	// maxModelLen bounds a model name; real names are under 64 characters.
	maxModelLen = 128
)

// Methods a Call may name.
const (
	// MethodGenerate is a unary generateContent call.
	MethodGenerate = "generateContent"
	// MethodStream is a streamGenerateContent call; ccrelay always asks for SSE.
	MethodStream = "streamGenerateContent"
	// MethodCountTokens is a countTokens call.
	MethodCountTokens = "countTokens"
)

// ErrInvalidPath is wrapped by every ParseCall error. Its text and the
// wrapping text never echo the caller's input, so they are safe to return to
// a client verbatim.
var ErrInvalidPath = errors.New("invalid gemini path")

// Call is a parsed relay path such as
// /gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent.
type Call struct {
	// Version is the public API version: "v1" or "v1beta".
	Version string
	// Model is the bare model name, without a "models/" prefix.
	Model string
	// Method is generateContent, streamGenerateContent or countTokens.
	Method string
}

// Stream reports whether the call is a streaming call (answered as SSE).
func (c Call) Stream() bool { return c.Method == MethodStream }

// ParseCall parses the part of a relay path after the /gemini prefix, such as
// "/v1beta/models/gemini-2.5-pro:generateContent". It expects a decoded path
// (r.URL.Path) with no query; percent signs, '?', '#' and backslashes are
// rejected outright so neither a raw nor a decoded traversal can slip
// through. The model must match [A-Za-z0-9._-]{1,128}, start with a letter or
// digit and contain no "..". Errors wrap ErrInvalidPath.
func ParseCall(path string) (Call, error) {
	if len(path) > 512 {
		return Call{}, fmt.Errorf("%w: path too long", ErrInvalidPath)
	}
	if strings.ContainsAny(path, "%?#\\") {
		return Call{}, fmt.Errorf("%w: path must not contain '%%', '?', '#' or '\\'", ErrInvalidPath)
	}
	p := strings.TrimPrefix(path, "/")
	version, rest, _ := strings.Cut(p, "/")
	if version != "v1" && version != "v1beta" {
		return Call{}, fmt.Errorf("%w: want /v1beta/models/{model}:{method} or /v1/models/{model}:{method}", ErrInvalidPath)
	}
	rest, ok := strings.CutPrefix(rest, "models/")
	if !ok {
		return Call{}, fmt.Errorf("%w: want /%s/models/{model}:{method}", ErrInvalidPath, version)
	}
	model, method, ok := strings.Cut(rest, ":")
	if !ok {
		return Call{}, fmt.Errorf("%w: missing ':{method}' after the model name", ErrInvalidPath)
	}
	if !ValidModel(model) {
		return Call{}, fmt.Errorf("%w: model name must be 1-128 characters of [A-Za-z0-9._-], start with a letter or digit and contain no '..'", ErrInvalidPath)
	}
	switch method {
	case MethodGenerate, MethodStream, MethodCountTokens:
	default:
		return Call{}, fmt.Errorf("%w: unsupported method; want generateContent, streamGenerateContent or countTokens", ErrInvalidPath)
	}
	return Call{Version: version, Model: model, Method: method}, nil
}

// ValidModel reports whether name is a model name ccrelay will put in an
// upstream URL or body: 1-128 characters of [A-Za-z0-9._-], starting with a
// letter or digit, with no "..". A leading "models/" is not accepted; strip
// it first.
func ValidModel(name string) bool {
	if name == "" || len(name) > maxModelLen || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// PublicURL builds {base}/{version}/models/{model}:{method} for the public
// API (no query: the caller adds alt=sse to a stream it wants as SSE). An empty base means PublicBaseURL
// and an empty version means v1beta; trailing slashes on base are trimmed.
func PublicURL(base string, c Call) string {
	base = strings.TrimRight(base, "/")
	if base == "" {
		base = PublicBaseURL
	}
	version := c.Version
	if version == "" {
		version = defaultVersion
	}
	return base + "/" + version + "/models/" + url.PathEscape(c.Model) + ":" + c.Method
}

// CodeAssistURL builds {base}/v1internal:{method} for the Code Assist API
// (no query: the caller adds alt=sse to a stream it wants as SSE). An empty base means CodeAssistBaseURL;
// a base that already ends in /v1internal is not doubled.
func CodeAssistURL(base string, c Call) string {
	return codeAssistRoot(base) + "/" + codeAssistVersion + ":" + c.Method
}

// codeAssistRoot returns base without trailing slashes or a /v1internal
// suffix, defaulting to CodeAssistBaseURL.
func codeAssistRoot(base string) string {
	base = strings.TrimRight(base, "/")
	base = strings.TrimSuffix(base, "/"+codeAssistVersion)
	base = strings.TrimRight(base, "/")
	if base == "" {
		base = CodeAssistBaseURL
	}
	return base
}
