package fakeupstream

import (
	"net/http"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
)

// ChatGPT is a fake of the ChatGPT backend Codex uses with a subscription
// (chatgpt.com/backend-api/codex): it accepts only live access tokens of
// Tokens with the right ChatGPT-Account-Id, enforces the backend's body rules
// with its {"detail": ...} errors, and always answers with a stream.
type ChatGPT struct {
	// Tokens issues and checks the access tokens.
	Tokens *OAuth
	// AccountID is the required ChatGPT-Account-Id; SetAccountID changes it
	// while the fake serves.
	AccountID string
	// Script, when set, answers each accepted request; nil result = default.
	Script func(n int, r *Recorded) *Reply

	OpenAI

	acctMu sync.Mutex
}

// SetAccountID changes the required ChatGPT-Account-Id.
func (c *ChatGPT) SetAccountID(id string) {
	c.acctMu.Lock()
	defer c.acctMu.Unlock()
	c.AccountID = id
}

func (c *ChatGPT) accountID() string {
	c.acctMu.Lock()
	defer c.acctMu.Unlock()
	return c.AccountID
}

// ServeHTTP checks the request as the backend does and answers it.
func (c *ChatGPT) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := record(r)
	n := c.add(rec)
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !c.Tokens.Valid(tok) {
		WriteReply(w, r, &Reply{Status: 401, Body: `{"detail":"Unauthorized"}`})
		return
	}
	if r.Header.Get("Chatgpt-Account-Id") != c.accountID() {
		WriteReply(w, r, &Reply{Status: 403, Body: `{"detail":"Account mismatch"}`})
		return
	}
	// Compaction (.../responses/compact) is one JSON request and answer:
	// Codex sends it without store or stream.
	if r.Method == http.MethodPost && !isCompact(rec) {
		b := gjson.ParseBytes(rec.Body)
		if b.Get("store").Type != gjson.False {
			WriteReply(w, r, &Reply{Status: 400, Body: `{"detail":"Store must be set to false"}`})
			return
		}
		if !b.Get("stream").Bool() {
			WriteReply(w, r, &Reply{Status: 400, Body: `{"detail":"Stream must be set to true"}`})
			return
		}
		for _, k := range []string{"temperature", "top_p", "max_output_tokens", "metadata"} {
			if b.Get(k).Exists() {
				WriteReply(w, r, &Reply{Status: 400, Body: `{"detail":"Unsupported parameter: ` + k + `"}`})
				return
			}
		}
	}
	if rep := c.strictReply(rec, c.Strict, detailErrorShape); rep != nil {
		WriteReply(w, r, rep)
		return
	}
	WriteReply(w, r, scripted(c.Script, n, rec, c.defaultReply))
}
