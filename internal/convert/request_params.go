package convert

import "github.com/tidwall/gjson"

// The parameters of an OpenAI Chat Completions request, one key at a time:
// mapped to the Messages request, ignored, or refused with a clear reason.

func (c *chatConverter) readParam(key string, v gjson.Result) error {
	switch key {
	case "model":
		if v.Type != gjson.String {
			return badRequest(key, "model must be a string")
		}
		c.model = v.Str
	case "messages":
		c.messages = v
	case "stop":
		return c.readStop(v)
	case "tools":
		return c.readTools(v)
	case "tool_choice":
		c.toolChoice = v
	case "response_format":
		c.format = v
	default:
		if v.Type == gjson.Null {
			return nil // every other parameter may be sent as null: not given
		}
		if known, err := c.readSampling(key, v); known {
			return err
		}
		if known, err := c.readOption(key, v); known {
			return err
		}
		return rejectUnsupported(key, v)
	}
	return nil
}

// readSampling reads the token limit and the sampling parameters; known is
// false for any other key.
func (c *chatConverter) readSampling(key string, v gjson.Result) (known bool, err error) {
	switch key {
	case "max_tokens", "max_completion_tokens":
		n, ok := positiveInt(v)
		if !ok {
			return true, badRequest(key, "%s must be a positive integer", key)
		}
		// max_completion_tokens supersedes the deprecated max_tokens.
		if key == "max_completion_tokens" || c.maxTokens == 0 {
			c.maxTokens = n
		}
	case "temperature", "top_p":
		if v.Type != gjson.Number || v.Num < 0 {
			return true, badRequest(key, "%s must be a non-negative number", key)
		}
		f := v.Num
		// OpenAI accepts up to 2, Claude up to 1; a clear error beats a
		// silently different sampling.
		if f > 1 {
			return true, badRequest(key, "%s must be between 0 and 1 for Claude", key)
		}
		if key == "temperature" {
			c.out.Temperature = &f
		} else {
			c.out.TopP = &f
		}
	case "top_k": // not OpenAI, but sent by clients that know Claude
		n, ok := positiveInt(v)
		if !ok {
			return true, badRequest(key, "top_k must be a positive integer")
		}
		c.out.TopK = &n
	default:
		return false, nil
	}
	return true, nil
}

// readOption reads streaming, the end user, tool parallelism and reasoning
// effort; known is false for any other key.
func (c *chatConverter) readOption(key string, v gjson.Result) (known bool, err error) {
	switch key {
	case "stream":
		if !v.IsBool() {
			return true, badRequest(key, "stream must be a boolean")
		}
		c.out.Stream = v.Bool()
	case "stream_options":
		if !v.IsObject() {
			return true, badRequest(key, "stream_options must be an object")
		}
		iu := v.Get("include_usage")
		if iu.Exists() && iu.Type != gjson.Null && !iu.IsBool() {
			return true, badRequest("stream_options.include_usage", "stream_options.include_usage must be a boolean")
		}
		c.includeUsage = iu.Bool()
	case "user":
		if v.Type != gjson.String {
			return true, badRequest(key, "user must be a string")
		}
		if v.Str != "" {
			c.out.Metadata = &metadata{UserID: v.Str}
		}
	case "parallel_tool_calls":
		if !v.IsBool() {
			return true, badRequest(key, "parallel_tool_calls must be a boolean")
		}
		c.noParallel = !v.Bool()
	case "reasoning_effort":
		if v.Type != gjson.String {
			return true, badRequest(key, "reasoning_effort must be a string")
		}
		if _, ok := thinkingBudget(v.Str); !ok {
			return true, badRequest(key, "reasoning_effort %q is not supported; use none, minimal, low, medium, high or xhigh", v.Str)
		}
		c.effort = v.Str
	default:
		return false, nil
	}
	return true, nil
}

// rejectUnsupported refuses, with a clear reason, the parameters Claude has
// no equivalent for, unless they are sent with their neutral value. Everything
// else (seed, store, metadata, service_tier, prediction, prompt_cache_key,
// safety_identifier, verbosity, vendor extensions...) does not change what
// Claude is asked, so it is ignored. v is never null here.
func rejectUnsupported(key string, v gjson.Result) error {
	switch key {
	case "n":
		if n, ok := positiveInt(v); !ok || n != 1 {
			return badRequest(key, "n must be 1: Claude returns a single choice")
		}
	case "logprobs":
		if v.Type == gjson.True {
			return badRequest(key, "logprobs are not supported by Claude")
		}
	case "top_logprobs":
		if !(v.Type == gjson.Number && v.Num == 0) {
			return badRequest(key, "top_logprobs are not supported by Claude")
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
			return badRequest(key, "logit_bias is not supported by Claude")
		}
	case "presence_penalty", "frequency_penalty":
		if !(v.Type == gjson.Number && v.Num == 0) {
			return badRequest(key, "%s is not supported by Claude; omit it or send 0", key)
		}
	case "web_search_options":
		return badRequest(key, "web_search_options is not supported")
	}
	return nil
}
