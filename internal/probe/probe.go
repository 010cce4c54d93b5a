// Package probe makes the smallest real call that proves an account works:
// its token refreshes (OAuth) and the provider accepts it, through the
// account's own proxy and URL. `ccrelay accounts test` uses it.
package probe

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ccrelay/ccrelay/internal/relay"
)

// Result is the outcome of one probe. Error never holds a secret.
type Result struct {
	AccountID string        `json:"account"`
	OK        bool          `json:"ok"`
	Status    int           `json:"status,omitempty"`
	Latency   time.Duration `json:"latency_ns"`
	Step      string        `json:"step"` // "token" or "request"
	Error     string        `json:"error,omitempty"`
}

// Run probes one account.
func Run(ctx context.Context, up *relay.Upstream) Result {
	res := Result{AccountID: up.Config.ID, Step: "token"}
	start := time.Now()
	defer func() { res.Latency = time.Since(start) }()
	secret, err := up.Token.Token(ctx)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Step = "request"
	req, err := request(ctx, up, secret)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	resp, err := up.Client.Do(req)
	if err != nil {
		res.Error = scrub(err.Error(), secret)
		return res
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	res.Status = resp.StatusCode
	if resp.StatusCode/100 == 2 {
		res.OK = true
		return res
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	res.Error = scrub(fmt.Sprintf("upstream answered %d: %s", resp.StatusCode, msg), secret)
	return res
}

func scrub(s, secret string) string {
	if secret != "" {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}

// request is the account type's probe.
func request(ctx context.Context, up *relay.Upstream, secret string) (*http.Request, error) {
	spec := up.Config.Spec()
	if up.Spec != nil {
		spec = up.Spec
	}
	if spec == nil {
		return nil, fmt.Errorf("unknown account type %q", up.Config.Type)
	}
	return spec.Probe(ctx, up.TypeAccount(), secret)
}
