package convert

// EstimateTokens is a documented estimate of a request's input tokens, for
// a count_tokens call whose account cannot count (docs/matrix.md): one
// token per four bytes of the text a tokenizer would see (system prompt,
// messages, tool calls and results, tool names, descriptions and schemas),
// plus a fixed 85 per image and 4 per message for the turn framing. Real
// tokenizers give about one token per 3.5-4.5 bytes of English and code, so
// the estimate is within some tens of percent: enough for a client that
// compacts its context near a limit, not for billing.
func EstimateTokens(r *Request) int64 {
	var bytes, extra int64
	for _, s := range r.System {
		bytes += int64(len(s))
	}
	for _, t := range r.Tools {
		bytes += int64(len(t.Name) + len(t.Description) + len(t.Schema) + len(t.Format))
	}
	for _, m := range r.Messages {
		extra += 4
		for i := range m.Parts {
			b, e := partSize(&m.Parts[i])
			bytes += b
			extra += e
		}
	}
	return (bytes+3)/4 + extra
}

// imageTokens is what EstimateTokens counts per image.
const imageTokens = 85

func partSize(p *Part) (bytes, extra int64) {
	switch p.Kind {
	case PartImage:
		return 0, imageTokens
	case PartToolResult:
		for i := range p.Result {
			b, e := partSize(&p.Result[i])
			bytes += b
			extra += e
		}
		return bytes + int64(len(p.CallID)), extra
	}
	return int64(len(p.Text) + len(p.Name) + len(p.Args) + len(p.CallID)), 0
}
