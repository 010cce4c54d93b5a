// Package convert translates between the OpenAI Chat Completions API and the
// Anthropic Messages API, so that OpenAI-shaped clients can be served from a
// Claude upstream.
//
// The package is pure: no network, no clock beyond time.Now for "created",
// and no package state. Three entry points cover one exchange:
//
//   - ChatToMessages turns a /v1/chat/completions request body into a
//     /v1/messages body (or a *RequestError the relay answers with HTTP 400);
//   - MessagesToChat turns a non-streaming Messages response into a
//     chat.completion body;
//   - ChatStream turns Messages SSE events into chat.completion.chunk SSE
//     lines, one event at a time, appending into a caller-owned buffer.
//
// Decisions worth knowing when reading the code:
//
//   - system and developer messages are hoisted, verbatim and in order, into
//     the top-level system prompt (Anthropic has no mid-conversation system
//     turn); one system block per text part.
//   - Consecutive messages of the same Anthropic role are merged (tool
//     results and a following user message become one user turn), and inside
//     a user turn tool_result blocks are placed first, as Anthropic requires.
//   - response_format json_object / json_schema is honoured best-effort with
//     a trailing system instruction (carrying the schema for json_schema);
//     Claude follows it reliably but it is not enforced by the upstream.
//     Anthropic's native structured outputs need a beta header and model
//     support this package cannot know about.
//   - reasoning_effort enables extended thinking with a fixed budget
//     (minimal/low 1024, medium 4096, high 16384, xhigh 32768; none leaves
//     thinking off). When max_tokens would not exceed the budget the budget is
//     added on top of it, so the visible answer keeps the room the client
//     asked for. Extended thinking forbids temperature other than 1, top_p
//     below 0.95, top_k and forced tool use; like OpenAI's own reasoning
//     models, those combinations are rejected rather than silently changed.
//     Anthropic also requires the final assistant turn (a prefill, or the
//     turn whose tool results end the conversation) to start with a signed
//     thinking block, which OpenAI clients cannot send back; such turns are
//     sent without thinking instead of failing upstream.
//   - Parameters that would change the answer and that Claude cannot honour
//     (n>1, logprobs, audio output, legacy functions, non-zero penalties,
//     logit_bias, web_search_options, temperature above Claude's maximum of
//     1...) are rejected with a *RequestError
//     naming the parameter; harmless ones are ignored, as are unknown ones so
//     that new client-side options do not break requests.
package convert
