package relay

import (
	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// Budget reservations (issue 31, item 5).
//
// A dollar budget used to be checked at admission and charged when a
// request ended, so every request admitted while others ran saw the same
// spending: 40 parallel requests against a $0.01 budget were all served.
// Now a request of a key with a dollar budget reserves an estimate of its
// cost at admission (policy.Reserve), which the budget counts as spent until
// the real cost settles it in finish. The estimate is generous on purpose:
// the whole body as input and the full output allowance.

const (
	// bytesPerToken turns a body's size into input tokens: English text is
	// about 4 bytes a token, and a body's JSON structure only adds bytes,
	// so the estimate errs high.
	bytesPerToken = 4
	// defaultOutputTokens stands for the output allowance of a request
	// that names none (Chat Completions, Gemini without maxOutputTokens).
	defaultOutputTokens = 4096
)

// estimate is the call's reservation in micro-dollars, and whether its
// model has a price.
func (r *Relay) estimate(c *call) (int64, bool) {
	model := c.model
	if m, ok := r.modelMap()[model]; ok {
		model = m
	}
	out := c.maxTokens
	if out <= 0 {
		out = defaultOutputTokens
	}
	return r.prices.Cost(model, provider.Usage{InputTokens: int64(len(c.body) / bytesPerToken), OutputTokens: out})
}

// reserve holds the call's estimated cost against its key's dollar
// budgets; on a refusal it writes the error and returns false. The policy
// has admitted the call (its slot is freed by finish).
func (r *Relay) reserve(c *call) bool {
	if r.prices == nil || c.model == "" || !c.key.HasUSDBudget() {
		return true
	}
	est, priced := r.estimate(c)
	if ref := r.policy.Reserve(c.key, est, priced, c.model); ref != nil {
		r.writeRefusal(c, ref)
		return false
	}
	c.reserved = est
	return true
}

// geminiMaxTokens is a Gemini body's output allowance (0 when it names none).
func geminiMaxTokens(body []byte) int64 {
	return gjson.GetBytes(body, "generationConfig.maxOutputTokens").Int()
}
