package convert

import (
	"encoding/json"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// This file is the protocol matrix's one neutral form (PRODUCT.md §7). Every
// dialect has, at most, six pure functions around it, in a file of its own
// (anthropic_*.go, responses_*.go, chat_*.go, gemini_*.go):
//
//	client side (the route's dialect)          upstream side (the account's API)
//	DecodeX(body) (*Request, error)            EncodeX(*Request) ([]byte, error)
//	WriteX(*Response) []byte                   ParseX(body) (*Response, error)
//	XStreamWriter (Events -> client SSE)       XStreamReader (upstream SSE -> Events)
//
// so a request from dialect A served by an account of API B is
// EncodeB(DecodeA(body)), its answer WriteA(ParseB(body)), its stream
// XStreamReader(B) -> XStreamWriter(A). N dialects need N codecs, not N²
// converters. Same dialect never comes here: it passes through byte for byte.
//
// What one dialect cannot express is dropped by the encoder that cannot
// write it, in a documented way (docs/matrix.md), never silently changed into
// something else; what a client asked that no upstream of the pair can honour
// is a *RequestError (HTTP 400 in the client's shape).

// Role is a conversation turn's author. System prompts are not turns
// (Request.System).
type Role string

// The roles of Message.Role.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// PartKind is what a Part holds.
type PartKind uint8

// The kinds of Part.
const (
	// PartText is visible text (Part.Text).
	PartText PartKind = iota
	// PartImage is an image: inline (MediaType + Data, base64) or by URL.
	PartImage
	// PartToolCall is the model asking for a tool: CallID, Name, Args.
	PartToolCall
	// PartToolResult answers a PartToolCall of an earlier turn: CallID,
	// Result (text and image parts), IsError. Name is set when the client's
	// dialect names the tool on the result (Gemini's functionResponse).
	PartToolResult
	// PartThinking is the model's reasoning: Text (the thinking, or
	// OpenAI's summary) and Sig, the upstream's opaque state that lets the
	// next turn continue the chain.
	PartThinking
	// PartFile is a document the client attached (a PDF, a plain-text
	// file): MediaType and Data (base64, no data: prefix). Encoders whose
	// API takes no documents drop it (docs/matrix.md).
	PartFile
)

// Part is one piece of a message: a content block (Anthropic), an input
// or output item or content part (Responses), a content part or tool call
// (Chat), a part (Gemini).
type Part struct {
	Kind PartKind
	// Text is the text of PartText and PartThinking.
	Text string

	// MediaType ("image/png") and Data (base64, no data: prefix) are an
	// inline image; URL an image by reference (https or data: URL as the
	// client sent it).
	MediaType, Data, URL string

	// CallID ties a tool call to its result. Dialects' ids pass unchanged
	// where the target accepts them (SanitizeCallID makes any id one
	// Anthropic accepts, deterministically, so every turn maps alike).
	CallID string
	// Name is the tool's name (PartToolCall; PartToolResult when known).
	Name string
	// Args is a function call's arguments as JSON object text, or a custom
	// (freeform) tool call's raw input (Custom set).
	Args string
	// Custom marks a call of a freeform tool (Responses "custom" tools such
	// as Codex's apply_patch): Args is its raw input, not JSON.
	Custom bool

	// Result is a PartToolResult's content: PartText and PartImage parts.
	Result []Part
	// IsError marks a tool result the tool reported as failed.
	IsError bool

	// Sig is a PartThinking's upstream state; its Origin says which
	// provider can read it back.
	Sig Signature
	// Redacted marks thinking the upstream returned encrypted only
	// (Anthropic redacted_thinking: Sig.Value is its data, Text is "").
	Redacted bool

	// Cache marks a cache breakpoint after this part (Anthropic
	// cache_control ephemeral); encoders that have no such thing drop it.
	Cache bool
}

// Signature is a thinking part's opaque upstream state: Anthropic's
// signature (or redacted_thinking data), OpenAI's reasoning
// encrypted_content, Gemini's thoughtSignature.
type Signature struct {
	// Origin is the provider that made Value: OriginAnthropic,
	// OriginOpenAI, OriginGemini; "" when the part carries no state.
	Origin string
	// Value is the state as the origin gave it.
	Value string
	// ID is the origin's id of the item that carried it (OpenAI's
	// reasoning item id, "rs_..."), "" when it has none.
	ID string
}

// The origins of Signature.Origin. An encoder sends thinking state only to
// the provider that made it; thinking from any other origin is dropped (and
// with it a thinking configuration that would need it, see
// docs/matrix.md), so a conversation that moves between pools never
// carries a foreign signature upstream.
const (
	OriginAnthropic = "anthropic"
	OriginOpenAI    = "openai"
	OriginGemini    = "gemini"
	// OriginChat is reasoning text from a Chat Completions upstream
	// (reasoning_content, <think>): Value is empty, the text itself is
	// the state, which DeepSeek and Kimi require back on a thinking
	// model's tool-call turns.
	OriginChat = "chat"
)

// Message is one turn.
type Message struct {
	Role  Role
	Parts []Part
}

// Tool is a tool the model may call.
type Tool struct {
	Name, Description string
	// Schema is the JSON schema of a function's arguments (an object
	// schema); nil for a custom tool.
	Schema json.RawMessage
	// Custom marks a freeform tool (Responses type "custom"): its input is
	// raw text; Format is its format as the client sent it (a grammar), or
	// nil.
	Custom bool
	Format json.RawMessage
}

// ToolChoice is what the client allows the model to do with tools.
type ToolChoice struct {
	// Mode is "" (the upstream's default, auto), "auto", "none",
	// "required" (some tool) or "tool" (the tool Name).
	Mode string
	Name string
	// NoParallel asks for at most one tool call per turn.
	NoParallel bool
}

// Thinking is the reasoning the client asked for.
type Thinking struct {
	// Enabled: the client asked for thinking (Anthropic thinking.type
	// enabled or adaptive, an OpenAI effort other than "none", a Gemini
	// thinking budget other than 0).
	Enabled bool
	// Adaptive: the model decides how much (Anthropic adaptive, Gemini
	// budget -1); Budget is then 0.
	Adaptive bool
	// Budget is the thinking token budget (Anthropic budget_tokens, Gemini
	// thinkingBudget); 0 when the client gave an effort instead.
	Budget int64
	// Effort is "minimal", "low", "medium", "high", "xhigh" or "" (OpenAI
	// reasoning.effort, Anthropic output_config.effort). Encoders that need
	// one of Budget and Effort derive it with EffortBudget / BudgetEffort.
	Effort string
	// Summary is OpenAI's reasoning.summary ("auto", "concise",
	// "detailed", "" for none).
	Summary string
}

// Format is a structured-output request: a JSON object, optionally
// following Schema.
type Format struct {
	// JSON: the answer must be a JSON value.
	JSON bool
	// Schema is the JSON schema it must follow (nil: any JSON object);
	// Name and Strict as the client gave them (OpenAI json_schema).
	Schema json.RawMessage
	Name   string
	Strict bool
}

// Request is one client request in neutral form.
type Request struct {
	// Model is the model to send upstream (the relay sets it after
	// routing: the target's model, else the client's after [models]
	// aliases).
	Model string
	// System is the system prompt, in order (Anthropic system blocks,
	// Responses instructions and system/developer input messages, Chat
	// system/developer messages, Gemini systemInstruction parts).
	System []string
	// SystemCache marks a cache breakpoint after the last system block.
	SystemCache bool
	Messages    []Message
	Tools       []Tool
	ToolChoice  ToolChoice
	// MaxTokens is the output limit; 0 when the client named none (an
	// encoder whose API requires one uses DefaultMaxTokens).
	MaxTokens   int64
	Temperature *float64
	TopP        *float64
	TopK        *int64
	Stop        []string
	Stream      bool
	Thinking    Thinking
	Format      *Format
	// User identifies the end user for abuse tracking (Anthropic
	// metadata.user_id, OpenAI user / safety_identifier).
	User string
	// CacheKey is the client's prompt cache hint (OpenAI
	// prompt_cache_key), kept for upstreams that take one.
	CacheKey string
	// PreviousResponseID is OpenAI's server-side conversation reference;
	// only an OpenAI upstream can resolve it (EncodeMessages and the other
	// non-OpenAI encoders refuse it with a *RequestError).
	PreviousResponseID string
	// WantReasoningState: the client asked to receive the reasoning state
	// (Responses include ["reasoning.encrypted_content"]); clients of
	// other dialects always get it where their dialect can carry it.
	WantReasoningState bool
	// Store is the client's Responses store flag (nil: not given).
	Store *bool
	// IncludeUsage: the streaming client asked for a final usage chunk
	// (Chat stream_options.include_usage); false unless Stream. Only the
	// Chat writer reads it: encoders ask their upstream for usage anyway.
	IncludeUsage bool
}

// StopReason is why a response ended, in Anthropic's vocabulary (the
// richest of the four): writers map it to their own.
type StopReason string

// The stop reasons.
const (
	StopEnd      StopReason = "end_turn"
	StopMax      StopReason = "max_tokens"
	StopTool     StopReason = "tool_use"
	StopSequence StopReason = "stop_sequence"
	StopRefusal  StopReason = "refusal"
	StopPause    StopReason = "pause_turn"
)

// Response is one whole (non-stream) answer in neutral form.
type Response struct {
	// ID is the upstream's response id; writers derive their dialect's id
	// from it.
	ID    string
	Model string
	// Parts are the assistant's output, in order.
	Parts        []Part
	Stop         StopReason
	StopSequence string
	Usage        provider.Usage
	// ReasoningTokens is the part of Usage.OutputTokens spent thinking,
	// when the upstream says (OpenAI output_tokens_details.reasoning_tokens,
	// Chat completion_tokens_details.reasoning_tokens, Gemini
	// thoughtsTokenCount); 0 when it does not (Anthropic).
	ReasoningTokens int64
	// UsageUnknown: the upstream reported no usage at all (some
	// OpenAI-compatible servers); Usage is then zero, not a count, and the
	// relay records the usage as unknown.
	UsageUnknown bool
}

// EventKind is what a stream Event says.
type EventKind uint8

// The kinds of Event. A reader emits, for one stream: EventStart once, then
// for each output part EventPartStart, any number of EventDelta (and, for
// thinking, EventSignature), EventPartStop, in order and never interleaved
// (a part starts after the previous one stopped; a reader whose upstream
// interleaves buffers), then EventFinish once. EventError may come at any
// point and ends the stream.
const (
	// EventStart opens the answer: ID, Model, Usage (input so far).
	EventStart EventKind = iota
	// EventPartStart opens part Index (0, 1, 2... in order): Part carries
	// its Kind and, for a tool call, CallID, Name and Custom; for a
	// redacted thinking part, Sig.
	EventPartStart
	// EventDelta appends Delta to part Index: text, thinking text, or
	// tool-call arguments (by the part's kind).
	EventDelta
	// EventSignature sets the thinking part Index's Sig.
	EventSignature
	// EventPartStop closes part Index.
	EventPartStop
	// EventFinish ends the answer: Stop, StopSequence, Usage (final),
	// ReasoningTokens.
	EventFinish
	// EventError is an upstream error event in the stream: ErrType (the
	// upstream's error type, e.g. "overloaded_error"), Delta (message).
	EventError
)

// Event is one step of a converted stream. Readers append Events into a
// caller-owned slice; writers append a client's bytes for each.
type Event struct {
	Kind  EventKind
	Index int
	// Part is EventPartStart's part (no Text).
	Part Part
	// Delta is EventDelta's text, EventError's message.
	Delta        string
	ID, Model    string
	Stop         StopReason
	StopSequence string
	Usage        provider.Usage
	// Sig is EventSignature's signature.
	Sig     Signature
	ErrType string
	// UsageUnknown on EventFinish: the upstream stream carried no usage
	// (see Response.UsageUnknown); Usage is zero.
	UsageUnknown bool
	// ReasoningTokens on EventFinish: the part of Usage.OutputTokens
	// spent thinking, when the upstream says (see
	// Response.ReasoningTokens).
	ReasoningTokens int64
}

// StreamReader turns one upstream's SSE events into Events. It keeps the
// state of one stream; the relay makes one per attempt.
type StreamReader interface {
	// Read appends to evs the Events that the upstream event (its SSE event
	// name, possibly empty, and data) carries, and returns evs. Unknown
	// events append nothing.
	Read(evs []Event, name, data []byte) []Event
}

// UsageKeeper is a StreamReader that keeps the usage the upstream last
// reported as it reads (Gemini repeats usageMetadata in every chunk), so
// its caller need not parse the chunks a second time for it.
type UsageKeeper interface {
	StreamReader
	// Usage is the stream's usage so far, in the relay's semantics.
	Usage() provider.Usage
}

// StreamWriter turns Events into a client's SSE bytes. It keeps the state of
// one client stream: when a stream is retried on another account after the
// client got the preamble, the relay keeps the writer, so the client sees one
// continuous stream.
type StreamWriter interface {
	// Write appends the client's bytes for ev to dst.
	Write(dst []byte, ev *Event) []byte
	// Finish appends what closes a complete stream (e.g. "data: [DONE]"),
	// after EventFinish.
	Finish(dst []byte) []byte
}

// DefaultMaxTokens is the output limit an encoder whose API requires one
// sends when the client named none.
const DefaultMaxTokens = 4096
