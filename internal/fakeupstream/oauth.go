package fakeupstream

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// OAuth is a strict fake token endpoint: refresh tokens rotate and are
// single-use (reuse answers invalid_grant, as Anthropic's does), access tokens
// expire after ExpiresIn.
type OAuth struct {
	ExpiresIn time.Duration
	// Fail, when set, answers a refresh with this status and body instead.
	Fail func() (int, string)
	// Delay is waited before answering (widens race windows in tests).
	Delay time.Duration
	// JWTAccess makes access tokens JSON Web Tokens, as OpenAI's are.
	JWTAccess bool

	Refreshes atomic.Int64
	Reuses    atomic.Int64

	mu        sync.Mutex
	idAccount string // see SetIDTokenAccount
	seq       int
	current   map[string]bool      // refresh tokens that may be used once
	access    map[string]time.Time // access token -> expiry
}

// Issue mints a first refresh token (what a login would give).
func (o *OAuth) Issue() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.mintRefresh()
}

func (o *OAuth) mintRefresh() string {
	if o.current == nil {
		o.current, o.access = map[string]bool{}, map[string]time.Time{}
	}
	o.seq++
	rt := fmt.Sprintf("sk-ant-ort01-fake-refresh-%04d-abcdefgh", o.seq)
	o.current[rt] = true
	return rt
}

// SetIDTokenAccount makes every later refresh answer carry an id_token
// naming this ChatGPT account, as OpenAI's token endpoint does; "" (the
// default) sends none.
func (o *OAuth) SetIDTokenAccount(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.idAccount = id
}

// ChatGPTIDToken is an unsigned id token as OpenAI issues them: the email
// claim and the "https://api.openai.com/auth" claim object with
// chatgpt_account_id (what the relay reads; nothing verifies the signature).
func ChatGPTIDToken(accountID, email string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{
		"email": email,
		"https://api.openai.com/auth": map[string]string{
			"chatgpt_account_id": accountID,
			"chatgpt_plan_type":  "plus",
		},
	})
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

// Valid reports whether an access token is live.
func (o *OAuth) Valid(access string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	exp, ok := o.access[access]
	return ok && time.Now().Before(exp)
}

// Expire makes every access token expire now (server-side revocation).
func (o *OAuth) Expire() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.access {
		o.access[k] = time.Now().Add(-time.Second)
	}
}

func (o *OAuth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var rt, grant string
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]string
		json.Unmarshal(body, &m)
		rt, grant = m["refresh_token"], m["grant_type"]
	} else {
		v, _ := url.ParseQuery(string(body))
		rt, grant = v.Get("refresh_token"), v.Get("grant_type")
	}
	if o.Delay > 0 {
		time.Sleep(o.Delay)
	}
	o.Refreshes.Add(1)
	if o.Fail != nil {
		if status, b := o.Fail(); status != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			io.WriteString(w, b)
			return
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if grant != "refresh_token" || !o.current[rt] {
		if grant == "refresh_token" {
			o.Reuses.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"Refresh token not found or invalid"}`)
		return
	}
	delete(o.current, rt)
	next := o.mintRefresh()
	exp := o.ExpiresIn
	if exp == 0 {
		exp = 8 * time.Hour
	}
	at := fmt.Sprintf("sk-ant-oat01-fake-access-%04d-abcdefgh", o.seq)
	if o.JWTAccess {
		at = ChatGPTIDToken(fmt.Sprintf("access-%04d", o.seq), "user@example.com")
	}
	o.access[at] = time.Now().Add(exp)
	w.Header().Set("Content-Type", "application/json")
	idToken := ""
	if o.idAccount != "" {
		idToken = fmt.Sprintf(`,"id_token":%q`, ChatGPTIDToken(o.idAccount, "user@example.com"))
	}
	fmt.Fprintf(w, `{"access_token":%q,"refresh_token":%q,"expires_in":%d,"token_type":"Bearer"%s}`, at, next, int(exp.Seconds()), idToken)
}
