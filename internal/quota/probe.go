package quota

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ProbeTarget is one account whose usage endpoint can be read.
type ProbeTarget struct {
	AccountID string
	// Client carries the account's traffic (its proxy).
	Client *http.Client
	// NewRequest builds the usage request with the account's credentials.
	NewRequest func(ctx context.Context) (*http.Request, error)
	// Parse reads the endpoint's answer (ParseClaudeUsage, ParseCodexUsage).
	Parse func(body []byte, now time.Time) (Snapshot, bool)
}

// ClaudeUsageRequest builds Claude's OAuth usage request (GET
// <base>/api/oauth/usage with the OAuth bearer and the oauth beta).
func ClaudeUsageRequest(ctx context.Context, baseURL, accessToken string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/api/oauth/usage", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("anthropic-beta", "oauth-2025-04-20")
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// CodexUsageRequest builds Codex's usage request (GET <base>/wham/usage with
// the bearer and the ChatGPT account id).
func CodexUsageRequest(ctx context.Context, baseURL, accessToken, chatGPTAccountID string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/wham/usage", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	if chatGPTAccountID != "" {
		req.Header.Set("ChatGPT-Account-Id", chatGPTAccountID)
	}
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// Prober reads idle accounts' usage endpoints: an account whose numbers are
// older than Every is probed, and no account more often than Every.
type Prober struct {
	Tracker *Tracker
	Every   time.Duration
	Targets []ProbeTarget

	last map[string]time.Time // only the Run goroutine touches it
}

// Run probes until ctx ends, looking once a minute (or every Every, if shorter).
func (p *Prober) Run(ctx context.Context) {
	tick := min(p.Every, time.Minute)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if _, err := p.ProbeDue(ctx, time.Now()); err != nil {
			p.Tracker.log.Warn("quota usage probe failed; the numbers come from answers meanwhile", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ProbeDue probes every target due at now; it returns how many it asked and
// the first error.
func (p *Prober) ProbeDue(ctx context.Context, now time.Time) (int, error) {
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	n := 0
	var first error
	for _, tg := range p.Targets {
		if l, ok := p.last[tg.AccountID]; ok && now.Sub(l) < p.Every {
			continue
		}
		if s, ok := p.Tracker.Snapshot(tg.AccountID); ok && now.Sub(s.SeenAt) < p.Every {
			continue // answers keep it fresh: no probe needed
		}
		p.last[tg.AccountID] = now
		n++
		if err := p.probe(ctx, tg, now); err != nil && first == nil {
			first = err
		}
	}
	return n, first
}

func (p *Prober) probe(ctx context.Context, tg ProbeTarget, now time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := tg.NewRequest(ctx)
	if err != nil {
		return fmt.Errorf("usage probe of %q: %w", tg.AccountID, err)
	}
	resp, err := tg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("usage probe of %q: request failed", tg.AccountID) // the URL may carry nothing secret, but the error adds nothing either
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("usage probe of %q: %w", tg.AccountID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("usage probe of %q: status %d", tg.AccountID, resp.StatusCode)
	}
	s, ok := tg.Parse(body, now)
	if !ok {
		return fmt.Errorf("usage probe of %q: no windows in the answer", tg.AccountID)
	}
	p.Tracker.Apply(tg.AccountID, s)
	return nil
}
