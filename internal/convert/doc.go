// Package convert is the protocol matrix's conversion layer (PRODUCT.md §7,
// docs/matrix.md): it lets a client of one API dialect be served by an
// account of another. It is pure: no network, no package state, no clock
// beyond time.Now for the "created" stamps clients expect.
//
// # The neutral form
//
// ir.go defines one neutral form of an exchange: Request (system prompt,
// messages of Parts, tools, tool choice, sampling, thinking, output format),
// Response (the answer's Parts, stop reason, usage) and, for streams, Event
// (start, part start, delta, signature, part stop, finish, error). Every
// dialect converts to and from it, so N dialects need N codecs, not N²
// converters. Usage is provider.Usage with Anthropic's meaning (input tokens
// exclude cache reads and writes); OpenAI readers split their counts and
// OpenAI writers add them back.
//
// # The codecs
//
// Each dialect has, at most, six pure functions, in files of its own prefix:
//
//	client side (a route's dialect)            upstream side (an account's API)
//	DecodeX(body) (*Request, error)            EncodeX(*Request) ([]byte, error)
//	WriteX(*Response, model) []byte            ParseX(body) (*Response, error)
//	NewXStreamWriter(model) StreamWriter       NewXStreamReader() StreamReader
//
// The dialects:
//
//   - Anthropic Messages (anthropic_*.go): DecodeMessages, WriteMessages,
//     NewMessagesStreamWriter for Claude Code and the Anthropic SDKs;
//     EncodeMessages, ParseMessages, NewMessagesStreamReader for Claude
//     accounts (UncustomCalls / UncustomStream map freeform tools back).
//   - OpenAI Responses (responses_*.go): Codex and the OpenAI SDK's
//     Responses client; OpenAI Responses accounts (openai-responses,
//     codex-oauth).
//   - OpenAI Chat Completions (chat_*.go): the Chat route's clients;
//     Chat Completions upstreams (openai-compatible accounts: DeepSeek,
//     Kimi, GLM, OpenRouter, Ollama, vLLM...), whose reasoning_content and
//     <think> text become thinking (OriginChat).
//
// A request from dialect A served by an account of API B is
// EncodeB(DecodeA(body)); its answer WriteA(ParseB(body), model); its stream
// NewBStreamReader -> NewAStreamWriter, event by event. Same dialect never
// comes here: the relay passes it through byte for byte.
//
// # Rules every codec keeps
//
//   - A client's fault is a *RequestError (errors.go) naming the parameter
//     where known: the relay answers it with HTTP 400 in the client's shape
//     (OpenAI's error.param carries Param). Decoders refuse what no dialect
//     can honour (Chat's n>1, logprobs...); an encoder refuses what only its
//     API cannot (Claude's temperature above 1, sampling parameters with
//     extended thinking, a previous_response_id outside OpenAI).
//   - What one dialect cannot express is dropped by the encoder that cannot
//     write it, in a documented way (docs/matrix.md), never silently turned
//     into something else; unknown client parameters are ignored so new
//     client options do not break requests.
//   - Thinking state: a thinking Part's Sig.Origin names the provider that
//     made it. Encoders send thinking only to its origin's API and drop
//     foreign thinking (EncodeMessages then turns thinking off for a turn
//     Claude would refuse without a signed block: never a 400 for a
//     signature). Writers for a client of another dialect carry the state
//     in the client's own field with WrapSignature; decoders restore it
//     with UnwrapSignature (irutil.go).
//   - Efforts and budgets map with EffortBudget / BudgetEffort; tool call
//     ids are made acceptable everywhere with SanitizeCallID, the same id
//     always alike.
//   - A JSON output format goes to an API without a JSON mode as a system
//     instruction (anthropic_types.go): followed reliably, not enforced.
//   - Stream readers keep one stream's state, emit parts in order and never
//     interleaved, and give the same events however the upstream's bytes
//     are cut; writers keep one client stream's state across a failed
//     attempt, so a client sees one stream whichever account serves it.
//
// EstimateTokens (estimate.go) answers a token count for an account with no
// count endpoint of the client's shape.
package convert
