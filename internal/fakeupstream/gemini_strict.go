package fakeupstream

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// This file is the Gemini fake's strict mode (GeminiAPI.Strict): it refuses
// a generateContent / streamGenerateContent body the way the public API
// does, with a 400 INVALID_ARGUMENT in Google's shape, for the mistakes a
// protocol converter makes:
//   - a field the API does not know, at the top, in a part, a function
//     declaration, toolConfig or generationConfig ("Invalid JSON payload
//     received. Unknown name \"x\" at '...': Cannot find field.");
//   - a tool or response schema keyword outside Gemini's OpenAPI Schema
//     (additionalProperties, $schema, $ref, const, exclusiveMinimum...), a
//     type that is not one of Gemini's, a function's object parameters
//     with no properties, an array without items, an invalid function name;
//   - for Gemini 3 models, a model turn of the current turn (after the last
//     user message that is not only function responses) whose first
//     functionCall has no thoughtSignature;
//   - a thoughtSignature the fake did not issue (a functionCall's must be
//     the one issued for that function, FakeThoughtSignature), other than
//     Google's documented skip_thought_signature_validator.
//
// GeminiThoughtToolCall scripts the answer that starts such a chain: a
// thought, then a functionCall carrying its signature (JSON, SSE or JSON
// array, by the request).

// geminiSkipSignature is the signature Google accepts for calls that did
// not come from Gemini.
const geminiSkipSignature = "skip_thought_signature_validator"

// fakeGeminiSigPrefix starts the signatures the fake issues.
const fakeGeminiSigPrefix = "fakegsig1"

// FakeThoughtSignature is the thoughtSignature the strict fake issues on a
// call of function name, and the only one (with Google's skip value) it
// accepts back on such a call.
func FakeThoughtSignature(name string) string {
	sum := sha256.Sum256([]byte("ccrelay fake gemini thought\x00" + name))
	return fakeGeminiSigPrefix + base64.StdEncoding.EncodeToString(sum[:18])
}

// GeminiViolation is one refused field: Field is its path as Google
// writes it ("tools[0].function_declarations[0].parameters"), Description
// the API's text.
type GeminiViolation struct{ Field, Description string }

// GeminiStrictError is a strict refusal: one message, or field violations.
type GeminiStrictError struct {
	Violations []GeminiViolation
	Message    string
}

// Error returns the message as the API writes it (violations one a line).
func (e *GeminiStrictError) Error() string {
	if e.Message != "" {
		return e.Message
	}
	lines := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		lines[i] = v.Description
	}
	return strings.Join(lines, "\n")
}

// Body is the error's google.rpc body, with a BadRequest detail listing
// the violations.
func (e *GeminiStrictError) Body() string {
	if len(e.Violations) == 0 {
		return GoogleError(400, "INVALID_ARGUMENT", "", e.Error(), "")
	}
	var fv []string
	for _, v := range e.Violations {
		fv = append(fv, fmt.Sprintf(`{"field":%q,"description":%q}`, v.Field, v.Description))
	}
	return fmt.Sprintf(`{"error":{"code":400,"message":%q,"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[%s]}]}}`,
		e.Error(), strings.Join(fv, ","))
}

// Known fields, with their proto (snake_case) spellings, which the API
// also takes.
var (
	geminiRequestFields = fieldSet("contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
		"safetySettings", "cachedContent")
	geminiPartFields = fieldSet("text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall",
		"functionResponse", "executableCode", "codeExecutionResult", "videoMetadata", "mediaResolution", "partMetadata")
	geminiToolFields = fieldSet("functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution",
		"urlContext", "computerUse", "fileSearch", "googleMaps")
	geminiDeclFields = fieldSet("name", "description", "parameters", "parametersJsonSchema", "response",
		"responseJsonSchema", "behavior")
	geminiGenFields = fieldSet("stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
		"responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed",
		"presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs", "enableEnhancedCivicAnswers",
		"speechConfig", "thinkingConfig", "mediaResolution", "imageConfig")
	geminiThinkingFields = fieldSet("includeThoughts", "thinkingBudget", "thinkingLevel")
	geminiToolConfigKeys = fieldSet("functionCallingConfig", "retrievalConfig")
	geminiCallingFields  = fieldSet("mode", "allowedFunctionNames")
	// geminiSchemaFields are the fields of Gemini's Schema message.
	geminiSchemaFields = fieldSet("type", "format", "title", "description", "nullable", "enum", "maxItems",
		"minItems", "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
		"pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum")
	geminiTypes = map[string]bool{"STRING": true, "NUMBER": true, "INTEGER": true, "BOOLEAN": true,
		"ARRAY": true, "OBJECT": true, "NULL": true, "TYPE_UNSPECIFIED": true}
	geminiFunctionName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$`)
)

func fieldSet(names ...string) map[string]bool {
	m := make(map[string]bool, 2*len(names))
	for _, n := range names {
		m[n], m[snake(n)] = true, true
	}
	return m
}

// snake is a field's proto name: "functionDeclarations" ->
// "function_declarations".
func snake(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// strictChecker collects the violations of one body.
type strictChecker struct{ violations []GeminiViolation }

func (c *strictChecker) unknown(v gjson.Result, known map[string]bool, at string) {
	v.ForEach(func(k, _ gjson.Result) bool {
		if !known[k.Str] {
			c.add(at, fmt.Sprintf("Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k.Str, at))
		}
		return true
	})
}

func (c *strictChecker) add(field, desc string) {
	c.violations = append(c.violations, GeminiViolation{Field: field, Description: desc})
}

// CheckStrictGemini returns the error the strict fake (like the real API)
// answers a generateContent body for model with, or nil. Tests of
// converters call it directly to check a body without a server.
func CheckStrictGemini(body []byte, model string) error {
	if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() {
		return &GeminiStrictError{Message: "Invalid JSON payload received. Expected an object."}
	}
	root := gjson.ParseBytes(body)
	c := &strictChecker{}
	root.ForEach(func(k, _ gjson.Result) bool {
		if !geminiRequestFields[k.Str] {
			c.add("", fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", k.Str))
		}
		return true
	})
	contents := root.Get("contents").Array()
	for i, ct := range contents {
		ct.Get("parts").ForEach(func(j, p gjson.Result) bool {
			c.unknown(p, geminiPartFields, fmt.Sprintf("contents[%d].parts[%d]", i, j.Int()))
			return true
		})
	}
	c.tools(root.Get("tools"))
	tc := field(root, "toolConfig")
	c.unknown(tc, geminiToolConfigKeys, "tool_config")
	c.unknown(field(tc, "functionCallingConfig"), geminiCallingFields, "tool_config.function_calling_config")
	gen := field(root, "generationConfig")
	c.unknown(gen, geminiGenFields, "generation_config")
	c.unknown(field(gen, "thinkingConfig"), geminiThinkingFields, "generation_config.thinking_config")
	if s := field(gen, "responseSchema"); s.Exists() {
		c.schema(s, "generation_config.response_schema", false)
	}
	if len(c.violations) > 0 {
		return &GeminiStrictError{Violations: c.violations}
	}
	if len(contents) == 0 {
		return &GeminiStrictError{Message: "* GenerateContentRequest.contents: contents is not specified\n"}
	}
	return checkThoughtSignatures(contents, model)
}

// field reads a field by its JSON or its proto name.
func field(v gjson.Result, name string) gjson.Result {
	if f := v.Get(name); f.Exists() {
		return f
	}
	return v.Get(snake(name))
}

func (c *strictChecker) tools(tools gjson.Result) {
	tools.ForEach(func(i, t gjson.Result) bool {
		at := fmt.Sprintf("tools[%d]", i.Int())
		c.unknown(t, geminiToolFields, at)
		field(t, "functionDeclarations").ForEach(func(j, d gjson.Result) bool {
			dat := fmt.Sprintf("%s.function_declarations[%d]", at, j.Int())
			c.unknown(d, geminiDeclFields, dat)
			if !geminiFunctionName.MatchString(d.Get("name").Str) {
				c.add(dat+".name", "* GenerateContentRequest."+dat+".name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.\n")
			}
			if p := d.Get("parameters"); p.Exists() {
				c.schema(p, dat+".parameters", true)
			}
			return true
		})
		return true
	})
}

// schema checks a Schema; top: a function's parameters, whose object type
// needs properties.
func (c *strictChecker) schema(s gjson.Result, at string, top bool) {
	if !s.IsObject() {
		c.add(at, fmt.Sprintf("Invalid JSON payload received. Expected an object at '%s'.", at))
		return
	}
	c.unknown(s, geminiSchemaFields, at)
	typ := ""
	if t := s.Get("type"); t.Exists() {
		if t.Type != gjson.String || !geminiTypes[strings.ToUpper(t.Str)] {
			c.add(at+".type", fmt.Sprintf("Invalid value at '%s.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), %s", at, t.Raw))
		}
		typ = strings.ToUpper(t.Str)
	}
	props := s.Get("properties")
	if top && typ == "OBJECT" && len(props.Map()) == 0 {
		c.add(at+".properties", "* GenerateContentRequest."+at+".properties: should be non-empty for OBJECT type\n")
	}
	if typ == "ARRAY" && !s.Get("items").Exists() {
		c.add(at+".items", "* GenerateContentRequest."+at+".items: missing field.\n")
	}
	k := 0
	props.ForEach(func(_, p gjson.Result) bool {
		c.schema(p, fmt.Sprintf("%s.properties[%d].value", at, k), false)
		k++
		return true
	})
	if items := s.Get("items"); items.Exists() {
		c.schema(items, at+".items", false)
	}
	s.Get("anyOf").ForEach(func(i, b gjson.Result) bool {
		c.schema(b, fmt.Sprintf("%s.any_of[%d]", at, i.Int()), false)
		return true
	})
}

// checkThoughtSignatures applies Gemini's signature rules.
func checkThoughtSignatures(contents []gjson.Result, model string) error {
	current := 0 // the current turn starts after the last user message that is not only function responses
	for i, ct := range contents {
		if ct.Get("role").Str == "model" {
			continue
		}
		ct.Get("parts").ForEach(func(_, p gjson.Result) bool {
			if !field(p, "functionResponse").Exists() {
				current = i
				return false
			}
			return true
		})
	}
	gemini3 := strings.HasPrefix(strings.TrimPrefix(model, "models/"), "gemini-3")
	for i, ct := range contents {
		if ct.Get("role").Str != "model" {
			continue
		}
		firstCall := true
		var err error
		ct.Get("parts").ForEach(func(_, p gjson.Result) bool {
			sig := field(p, "thoughtSignature").Str
			fc := field(p, "functionCall")
			if sig != "" && sig != geminiSkipSignature &&
				(!strings.HasPrefix(sig, fakeGeminiSigPrefix) || fc.Exists() && sig != FakeThoughtSignature(fc.Get("name").Str)) {
				err = &GeminiStrictError{Message: "Corrupted thought signature."}
				return false
			}
			if fc.Exists() && firstCall {
				firstCall = false
				if sig == "" && gemini3 && i > current {
					err = &GeminiStrictError{Message: "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `default_api:" +
						fc.Get("name").Str + "` , position " + strconv.Itoa(i+1) + ". Please refer to the thought signatures documentation for more details."}
					return false
				}
			}
			return true
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// geminiStrictReply is the strict fake's refusal of a model call, or nil.
func geminiStrictReply(rec *Recorded, model, method string) *Reply {
	if method == "countTokens" {
		return geminiCountRefusal(rec, model)
	}
	if method != "generateContent" && method != "streamGenerateContent" {
		return nil
	}
	err := CheckStrictGemini(rec.Body, model)
	if err == nil {
		return nil
	}
	return &Reply{Status: 400, Body: err.(*GeminiStrictError).Body()}
}

// GeminiThoughtToolCall answers r (a generateContent or
// streamGenerateContent request for model) with a thought and a call of
// function name with args (a JSON object) that carries
// FakeThoughtSignature(name): whole, as SSE with alt=sse, else as a JSON
// array of chunks.
func GeminiThoughtToolCall(r *Recorded, model, name, args string) *Reply {
	thought := fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":%q,"thought":true}],"role":"model"},"index":0}],"usageMetadata":%s,"modelVersion":%q,"responseId":"fake-thought-1"}`,
		"I should call "+name+".", geminiUsage(0, GeminiThoughtsTokens), model)
	call := fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"functionCall":{"name":%q,"args":%s},"thoughtSignature":%q}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":%s,"modelVersion":%q,"responseId":"fake-thought-1"}`,
		name, args, FakeThoughtSignature(name), geminiUsage(GeminiCandidatesTokens, GeminiThoughtsTokens), model)
	switch {
	case !strings.HasSuffix(r.Path, ":streamGenerateContent"):
		whole := fmt.Sprintf(`{"candidates":[{"content":{"parts":[{"text":%q,"thought":true},{"functionCall":{"name":%q,"args":%s},"thoughtSignature":%q}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":%s,"modelVersion":%q,"responseId":"fake-thought-1"}`,
			"I should call "+name+".", name, args, FakeThoughtSignature(name), geminiUsage(GeminiCandidatesTokens, GeminiThoughtsTokens), model)
		return &Reply{Body: whole}
	case strings.Contains(r.RawQuery, "alt=sse"):
		return &Reply{Events: []Event{{Data: thought}, {Data: call}}}
	}
	return &Reply{Body: "[" + thought + ",\r\n" + call + "]"}
}
