package relay

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/accounttype"
	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// The protocol matrix (PRODUCT.md §7, docs/matrix.md): a route's dialect
// served by accounts of another API. A route whose request goes to its own
// API keeps its passthrough adapter and pays nothing here; a target of
// another API gets a convAdapter: the client's body decoded once into
// convert's neutral form, encoded for the account's API, and the answer
// (whole or streamed event by event) converted back.

// clientSide is the client's half of a conversion: a route dialect's codec.
type clientSide struct {
	decode    func(body []byte) (*convert.Request, error)
	write     func(resp *convert.Response, model string) []byte
	newWriter func(model string, req *convert.Request) convert.StreamWriter
	// aliased: [models] aliases rename the model the route's passthrough
	// sends too (Chat Completions, for which the aliases were made).
	aliased bool
}

// upstreamAPI is the account's half: an API's codec, its path under the
// account's base URL, and how its answers are classified.
type upstreamAPI struct {
	platform string
	path     string
	// headers are the client headers that reach it (nil: convertedHeaders).
	headers *headerList
	encode  func(r *convert.Request) ([]byte, error)
	parse   func(body []byte) (*convert.Response, error)
	reader  func() convert.StreamReader
	// custom: the API has no freeform tools; its encoder wrapped them as
	// {"input": ...} functions, which the answer's calls are mapped back
	// from (convert.UncustomCalls).
	custom   bool
	classify func(a *convAdapter, status int, h http.Header, body []byte) provider.Verdict
	event    func(name, data []byte, u *provider.Usage) provider.EventClass
	errEvent func(a *convAdapter, data []byte) provider.Verdict
	// url, when set, builds the request URL and body (Gemini: the model
	// and method are in the path, Code Assist wraps the body); else
	// base URL + path with the encoded body.
	url func(ctx context.Context, a *convAdapter, c *call, up *Upstream, secret string) (string, []byte, error)
	// unwrap, when set, takes the API's answer out of an envelope the
	// account's type puts around it (Code Assist), for whole bodies and
	// each stream event.
	unwrap func(up *Upstream, data []byte) []byte
	// noTerminal: the API's streams just end (Gemini has no final event).
	noTerminal bool
	// readerUsage: the API's stream reader keeps the usage
	// (convert.UsageKeeper), so event classifies without it (usage is nil)
	// and each event is parsed once.
	readerUsage bool
	// forAccount, when set, adapts the encoded body to one account of the
	// API (compat: its model_map, its stream_usage).
	forAccount func(c *call, up *Upstream, body []byte) ([]byte, error)
	// count is the API's token-count method (count.go); nil: none.
	count *countAPI
}

// clientSides are the dialects a conversion can serve, by dialect name.
var clientSides = map[string]*clientSide{
	"anthropic": {
		decode: convert.DecodeMessages,
		write:  convert.WriteMessages,
		newWriter: func(model string, _ *convert.Request) convert.StreamWriter {
			return convert.NewMessagesStreamWriter(model)
		},
	},
	"openai": {
		aliased: true,
		decode:  convert.DecodeChat,
		write:   convert.WriteChat,
		newWriter: func(model string, req *convert.Request) convert.StreamWriter {
			return convert.NewChatStreamWriter(model, req.IncludeUsage)
		},
	},
	"responses": {
		decode: convert.DecodeResponses,
		write:  convert.WriteResponses,
		newWriter: func(model string, _ *convert.Request) convert.StreamWriter {
			return convert.NewResponsesStreamWriter(model)
		},
	},
}

// upstreamAPIs are the APIs a conversion can send to, by platform.
var upstreamAPIs = map[string]*upstreamAPI{
	"claude": {
		platform: "claude", path: "/v1/messages", custom: true, headers: claudeConvertedHeaders, count: claudeCounter,
		encode: convert.EncodeMessages, parse: convert.ParseMessages, reader: convert.NewMessagesStreamReader,
		classify: func(a *convAdapter, status int, h http.Header, body []byte) provider.Verdict {
			return anthropic.Classify(status, h, body, a.model, a.now())
		},
		event: anthropic.ClassifyEvent,
		errEvent: func(a *convAdapter, data []byte) provider.Verdict {
			return anthropic.ClassifyStreamError(data, a.model)
		},
	},
	"openai": {
		platform: "openai", path: "/responses", count: openaiCounter,
		encode: convert.EncodeResponses, parse: convert.ParseResponses, reader: convert.NewResponsesStreamReader,
		classify: func(a *convAdapter, status int, h http.Header, body []byte) provider.Verdict {
			return openai.Classify(status, h, body, a.now())
		},
		event: openai.ClassifyEvent,
		errEvent: func(a *convAdapter, data []byte) provider.Verdict {
			return openai.ClassifyStreamError(data, a.now())
		},
	},
	accounttype.PlatformCompat: compatAPI,
}

// claudeConvertedHeaders are the client headers that reach a Claude account
// serving another dialect: besides User-Agent, the Anthropic headers a
// client sets on purpose for Claude (a beta such as context-1m, a version).
// The rest (OpenAI-Organization, X-Stainless-*, the client's
// Authorization...) describes a conversation with another provider.
var claudeConvertedHeaders = newHeaderList([]string{"User-Agent", "Anthropic-Version", "Anthropic-Beta"}, nil)

// conversion is a call's client side, shared by every target it tries: the
// decoded request, and the stream writer that outlives a failed attempt
// (the client sees one stream whichever account ends up serving it).
type conversion struct {
	side *clientSide
	// req is the client's request, decoded on first use.
	req *convert.Request
	// model is the model the client asked for, reported back to it.
	model  string
	writer convert.StreamWriter
	// primed: writer has been told the answer started (its preamble went
	// out, or an earlier attempt's did).
	primed bool
	// array: the client wants a stream as one JSON array (Gemini's
	// streamGenerateContent without alt=sse): the call is made unary
	// upstream and its answer wrapped.
	array bool
	// early is a body encoded before the targets were tried (the Chat
	// route keys its session on the Messages body), which prepare takes
	// for the same API and model instead of encoding again.
	early encoded
}

// encoded is a request encoded for one API and model.
type encoded struct {
	api   *upstreamAPI
	model string
	body  []byte
}

// encode returns the decoded request encoded for api with model, and keeps
// it for prepare (cv.early).
func (cv *conversion) encode(api *upstreamAPI, model string) ([]byte, error) {
	cv.req.Model = model
	body, err := api.encode(cv.req)
	if err == nil {
		cv.early = encoded{api: api, model: model, body: body}
	}
	return body, err
}

// encodeFor is the decoded request encoded for api with model: the early
// body when it is that one (handed over once), else a new encoding.
func (cv *conversion) encodeFor(api *upstreamAPI, model string) ([]byte, error) {
	if e := cv.early; e.api == api && e.model == model && e.body != nil {
		cv.early = encoded{}
		return e.body, nil
	}
	cv.req.Model = model
	return api.encode(cv.req)
}

// decoded returns the client's request in neutral form, decoding it once.
func (cv *conversion) decoded(body []byte) (*convert.Request, error) {
	if cv.req != nil {
		return cv.req, nil
	}
	req, err := cv.side.decode(body)
	if err != nil {
		return nil, err
	}
	cv.req = req
	return req, nil
}

// convAdapter serves one target of another API: it sends body (the
// client's request encoded for api) and converts the answer back.
type convAdapter struct {
	api  *upstreamAPI
	conv *conversion
	// model is the model sent upstream.
	model string
	body  []byte
	now   func() time.Time
	// count, when set, is the API's count method the call is sent to (a
	// token count, count.go) instead of its generation path.
	count *countAPI
}

// convertedHeaders are the client headers that reach an upstream of
// another API: none of the client's API's own (they describe a
// conversation with another provider).
var convertedHeaders = newHeaderList([]string{"User-Agent"}, nil)

func (a *convAdapter) platform() string { return a.api.platform }

func (a *convAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	path, url := a.api.path, a.api.url
	if a.count != nil {
		path, url = a.count.path, a.count.url
	}
	u, body := up.baseURL()+path, a.body
	if url != nil {
		var err error
		if u, body, err = url(ctx, a, c, up, secret); err != nil {
			return nil, err
		}
	}
	if a.api.forAccount != nil && body != nil {
		var err error
		if body, err = a.api.forAccount(c, up, body); err != nil {
			return nil, err
		}
	}
	req, err := newUpstreamRequest(ctx, c, http.MethodPost, u, body)
	if err != nil {
		return nil, err
	}
	h := req.Header
	allowed := a.api.headers
	if allowed == nil {
		allowed = convertedHeaders
	}
	copyRequestHeader(h, c.req.Header, allowed)
	h.Set("Content-Type", "application/json")
	if c.stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	up.authenticate(h, secret)
	return req, nil
}

func (a *convAdapter) releaseBody() { a.body = nil }

func (a *convAdapter) classify(_ *call, status int, h http.Header, body []byte) provider.Verdict {
	return a.api.classify(a, status, h, body)
}

func (a *convAdapter) decode(c *call, up *Upstream, body []byte) ([]byte, provider.Usage, error) {
	if a.api.unwrap != nil {
		body = a.api.unwrap(up, body)
	}
	if a.count != nil {
		return a.decodeCount(c, body)
	}
	resp, err := a.api.parse(body)
	if err != nil {
		return nil, provider.Usage{}, err
	}
	c.usageUnknown = resp.UsageUnknown
	convert.RestoreToolNames(resp, a.conv.req.Tools)
	if a.api.custom {
		convert.UncustomCalls(resp, a.conv.req.Tools)
	}
	out := a.conv.side.write(resp, a.conv.model)
	if a.conv.array {
		// A Gemini streamGenerateContent without alt=sse is answered with
		// a JSON array of chunks: here, the whole answer as one.
		out = append(append([]byte{'['}, out...), ']')
	}
	return out, resp.Usage, nil
}

func (a *convAdapter) newStream(c *call, up *Upstream) streamer {
	cv := a.conv
	if cv.writer == nil {
		cv.writer = cv.side.newWriter(cv.model, cv.req)
	}
	base := a.api.reader()
	var keeper convert.UsageKeeper
	if a.api.readerUsage {
		keeper, _ = base.(convert.UsageKeeper)
	}
	rd := convert.RestoreToolNamesStream(base, cv.req.Tools)
	if a.api.custom && hasCustomTool(cv.req.Tools) {
		rd = convert.UncustomStream(rd, cv.req.Tools)
	}
	s := &convStream{a: a, rd: rd, w: cv.writer, keeper: keeper}
	if a.api.unwrap != nil {
		s.up = up
	}
	if c.resp.preamble && !cv.primed {
		// An earlier attempt (another API's, passed through) gave the
		// client its preamble: the writer must not write another.
		ev := convert.Event{Kind: convert.EventStart, Model: cv.model}
		cv.writer.Write(nil, &ev)
	}
	cv.primed = true
	return s
}

func hasCustomTool(tools []convert.Tool) bool {
	for i := range tools {
		if tools[i].Custom {
			return true
		}
	}
	return false
}

// convStream converts one upstream stream, event by event.
type convStream struct {
	a *convAdapter
	// up is set when the API's events come in an envelope (api.unwrap).
	up  *Upstream
	rd  convert.StreamReader
	w   convert.StreamWriter
	evs []convert.Event
	u   provider.Usage
	// keeper, when set, is the reader that keeps the usage (the API's
	// readerUsage): observe then only classifies.
	keeper convert.UsageKeeper
	// unknown: the stream finished without any usage (UsageUnknown).
	unknown bool
	// opened is the payload observe took out of the current event's
	// envelope, for transform, which the stream loop calls next on the
	// same event: the envelope is opened once per event.
	opened []byte
}

// data is an event's payload, out of its envelope.
func (s *convStream) data(ev *sse.Event) []byte {
	if s.up != nil {
		return s.a.api.unwrap(s.up, ev.Data)
	}
	return ev.Data
}

func (s *convStream) observe(ev *sse.Event) provider.EventClass {
	d := s.data(ev)
	if s.up != nil {
		s.opened = d
	}
	if s.keeper != nil {
		return s.a.api.event(ev.Name, d, nil)
	}
	return s.a.api.event(ev.Name, d, &s.u)
}

func (s *convStream) transform(dst []byte, ev *sse.Event) []byte {
	d := s.opened
	if d == nil {
		d = s.data(ev)
	}
	s.opened = nil
	s.evs = s.rd.Read(s.evs[:0], ev.Name, d)
	for i := range s.evs {
		ev := &s.evs[i]
		if ev.Kind == convert.EventFinish {
			s.unknown = ev.UsageUnknown
		}
		dst = s.w.Write(dst, ev)
	}
	return dst
}

func (s *convStream) passthrough() bool { return false }
func (s *convStream) errVerdict(ev *sse.Event) provider.Verdict {
	return s.a.api.errEvent(s.a, ev.Data)
}
func (s *convStream) end(dst []byte) []byte { return s.w.Finish(dst) }
func (s *convStream) needsTerminal() bool   { return !s.a.api.noTerminal }
func (s *convStream) usage() provider.Usage {
	if s.keeper != nil {
		return s.keeper.Usage()
	}
	return s.u
}
func (s *convStream) usageUnknown() bool { return s.unknown }

// target is one place a call may be served: a platform's pool (or one
// group of it), with the model to send there.
type target struct {
	platform string
	// group narrows the pool to the accounts of one group ("" = all).
	group string
	// model is the model sent upstream.
	model string
	// name is the target as the route's `to` writes it ("claude",
	// "openai:gpt-5-codex"), for logs and the request log; "" names it
	// from the fields.
	name string
}

// prepare makes c's adapter for t: the route's own (passthrough) adapter
// when t speaks the route's API, else a converting one. A client request
// the conversion cannot take is answered here (400 in the client's shape)
// and prepare reports false.
func (r *Relay) prepare(c *call, t *target) bool {
	if c.passes(t.platform) {
		c.ad = c.native
		if t.model != c.model {
			// A route renames the model on the route's own API: the body
			// passes through with only its model changed.
			if err := renameModel(c, t.model); err != nil {
				r.writeError(c, http.StatusBadRequest, "could not set the routed model: "+err.Error())
				return false
			}
		}
		return true
	}
	api := upstreamAPIs[t.platform]
	if c.conv == nil || api == nil {
		r.writeError(c, http.StatusBadRequest, "model "+c.model+" is served by "+t.platform+
			" accounts, which this route cannot reach: send it to that platform's route")
		return false
	}
	req, err := c.conv.decoded(c.body)
	if err == nil {
		req.Stream = c.stream
		var body []byte
		if body, err = c.conv.encodeFor(api, t.model); err == nil {
			a := &convAdapter{api: api, conv: c.conv, model: t.model, body: body, now: r.now}
			if c.count != nil { // serveCount kept only targets whose API counts
				a.count, a.body = api.count, countBody(body, api.count.keep)
			}
			c.ad = a
			return true
		}
	}
	r.refuseConversion(c, t.platform, err)
	return false
}

// scrubNative readies c's body for the route's own API after another API
// served an earlier turn of the conversation: the thinking state the relay
// wrapped for the client then (WrapSignature) reaches the provider as it
// is, and the provider refuses a signature it did not issue. It runs only
// after such a refusal (a 400 from the route's own API, see receive), so
// the happy path pays nothing; it reports whether the body held wrapped
// state and was rewritten without it (convert.ScrubMessages,
// convert.ScrubResponses), to be sent again once. A conversion still to
// come decodes the body as the client sent it first, so it keeps that
// state for the API it came from.
func (r *Relay) scrubNative(c *call) bool {
	var scrub func([]byte) ([]byte, error)
	switch c.native.(type) {
	case claudeAdapter:
		scrub = convert.ScrubMessages
	case responsesAdapter:
		scrub = convert.ScrubResponses
	default:
		return false
	}
	if c.scrubbed || c.body == nil || !convert.HasWrappedSignature(c.body) {
		return false
	}
	c.scrubbed = true
	if c.conv != nil {
		_, _ = c.conv.decoded(c.body) // an error is the conversion's to report, if it runs
	}
	body, err := scrub(c.body)
	if err != nil {
		r.log.Warn("could not remove the wrapped thinking state from a passthrough body", "err", err)
		return false
	}
	c.body = body
	return true
}

// passes reports whether c's route passes requests for platform through as
// they are (its native adapter serves that platform).
func (c *call) passes(platform string) bool {
	return c.native != nil && c.native.platform() == platform
}

// refuseConversion answers a request that could not be converted (for
// platform's API; "" while decoding): a *convert.RequestError is the
// client's fault, a 400 naming the parameter where the client's dialect
// has a field for it; anything else is the relay's, a 500.
func (r *Relay) refuseConversion(c *call, platform string, err error) {
	var re *convert.RequestError
	if errors.As(err, &re) {
		r.writeParamError(c, http.StatusBadRequest, re.Message, re.Param)
		return
	}
	r.log.Error("could not convert a request", "platform", platform, "err", err)
	msg := "the relay could not convert the request"
	if platform != "" {
		msg += " for " + platform
	}
	r.writeError(c, http.StatusInternalServerError, msg+": "+err.Error())
}

// renameModel sets the model of the body c's passthrough adapter sends.
func renameModel(c *call, model string) error {
	if c.body == nil {
		return nil
	}
	body, err := sjson.SetBytes(c.body, "model", model)
	if err == nil {
		c.body = body
	}
	return err
}
