package relay

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/ccrelay/ccrelay/internal/convert"
	"github.com/ccrelay/ccrelay/internal/provider"
	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
	"github.com/ccrelay/ccrelay/internal/provider/openai"
	"github.com/ccrelay/ccrelay/internal/sse"
)

// chatAdapter serves OpenAI Chat Completions from the Claude pool: the
// request goes upstream as an Anthropic Messages call and the answer comes
// back converted, streams included.
type chatAdapter struct {
	now  func() time.Time
	conv *convert.ChatRequest
	// cs converts the stream. It outlives an attempt that failed after the
	// client received its role chunk, so the next account's answer continues
	// the same chunk sequence (same id, one role chunk).
	cs *convert.ChatStream
}

// chatRequestHeaders are the only client headers that reach Anthropic: the
// rest (OpenAI-Organization, X-Stainless-*, the client's Authorization...)
// describes a conversation with OpenAI, not with this upstream.
var chatRequestHeaders = newHeaderList([]string{"User-Agent", "Anthropic-Version", "Anthropic-Beta"}, nil)

func (*chatAdapter) platform() string { return "claude" }

func (a *chatAdapter) newRequest(ctx context.Context, c *call, up *Upstream, secret string) (*http.Request, error) {
	req, err := newUpstreamRequest(ctx, c, http.MethodPost, up.baseURL()+"/v1/messages", a.conv.Body)
	if err != nil {
		return nil, err
	}
	h := req.Header
	copyRequestHeader(h, c.req.Header, chatRequestHeaders)
	h.Set("Content-Type", "application/json")
	if a.conv.Stream {
		h.Set("Accept", "text/event-stream")
	} else {
		h.Set("Accept", "application/json")
	}
	up.authenticate(h, secret)
	return req, nil
}

func (a *chatAdapter) releaseBody() {
	if a.conv != nil {
		a.conv.Body = nil
	}
}

func (a *chatAdapter) renameModel(model string) error {
	body, err := sjson.SetBytes(a.conv.Body, "model", model)
	if err == nil {
		a.conv.Body, a.conv.Model = body, model
	}
	return err
}

func (a *chatAdapter) classify(c *call, status int, h http.Header, body []byte) provider.Verdict {
	return anthropic.Classify(status, h, body, c.model, a.now())
}

func (a *chatAdapter) decode(c *call, _ *Upstream, body []byte) ([]byte, provider.Usage, error) {
	out, err := convert.MessagesToChat(body, c.model)
	if err != nil {
		return nil, provider.Usage{}, err
	}
	u, _ := anthropic.ParseUsage(body)
	return out, u, nil
}

func (a *chatAdapter) newStream(c *call, _ *Upstream) streamer {
	if a.cs == nil || !c.resp.preamble {
		a.cs = convert.NewChatStream(c.model, a.conv.IncludeUsage, a.now().Unix())
	}
	return &chatStream{cs: a.cs, model: c.model}
}

// chatStream converts one Messages stream into chat.completion.chunk events.
type chatStream struct {
	cs    *convert.ChatStream
	model string
	// u is this attempt's usage, for the usage record.
	u provider.Usage
}

func (s *chatStream) observe(ev *sse.Event) provider.EventClass {
	return anthropic.ClassifyEvent(ev.Name, ev.Data, &s.u)
}
func (s *chatStream) transform(dst []byte, ev *sse.Event) []byte {
	return s.cs.Event(dst, string(ev.Name), ev.Data)
}
func (s *chatStream) passthrough() bool { return false }
func (s *chatStream) errVerdict(ev *sse.Event) provider.Verdict {
	return anthropic.ClassifyStreamError(ev.Data, s.model)
}
func (s *chatStream) end(dst []byte) []byte { return s.cs.Finish(dst) }
func (s *chatStream) needsTerminal() bool   { return true }
func (s *chatStream) usage() provider.Usage { return s.u }

func (r *Relay) handleChat(w http.ResponseWriter, req *http.Request, d dialect) {
	ad := &chatAdapter{now: r.now}
	c := r.intake(w, req, d, ad, intakeOpts{body: jsonObject})
	if c == nil {
		return
	}
	// The converter reads every member, so no key may come twice.
	if rep, _ := provider.PickMembers(c.body, nil, nil); rep != "" {
		r.refuseRepeated(c, rep)
		return
	}
	conv, err := convert.ChatToMessages(c.body, r.modelMap())
	if err != nil {
		c.model = gjson.GetBytes(c.body, "model").Str
		status := http.StatusBadRequest
		var re *convert.RequestError
		if !errors.As(err, &re) {
			// Not the client's fault: the converter could not encode what it built.
			status = http.StatusInternalServerError
			re = &convert.RequestError{Message: "could not convert the request: " + err.Error()}
		}
		c.resp.Header().Set("Content-Type", "application/json")
		c.resp.whole(status, openai.ErrorBody(status, re.Message, re.Param))
		c.resp.failed(status, re.Message)
		r.finish(c)
		return
	}
	ad.conv = conv
	c.model = conv.RequestedModel
	c.stream = conv.Stream
	if c.key.HasUSDBudget() {
		c.maxTokens = gjson.GetBytes(conv.Body, "max_tokens").Int()
	}
	c.sessionKey = chatSessionKey(c.body, conv.Body, req.Header)
	r.plan(c, clientSides["openai"])
	r.serve(c)
}

// chatSessionKey pins a chat conversation to one Claude account. The client's
// own prompt_cache_key (OpenAI's hint for "these requests share a prefix")
// comes first; otherwise the converted body is keyed as the Messages route
// keys it. The converter keeps the system prompt verbatim, so every turn of
// a conversation hashes alike.
func chatSessionKey(chatBody, messagesBody []byte, h http.Header) string {
	if k := gjson.GetBytes(chatBody, "prompt_cache_key"); k.Type == gjson.String && k.Str != "" {
		return "chat:" + k.Str
	}
	return anthropic.SessionKey(messagesBody, h)
}
