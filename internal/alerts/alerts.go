// Package alerts tells webhooks (plain JSON, Slack, Discord, Telegram) about
// events a relay's operators must act on: an account whose credential died,
// a subscription window or a key budget running out, a pool with no account
// left, and an account that came back.
//
// Decisions worth knowing:
//   - Notify never blocks: each webhook has a bounded queue and a sender of
//     its own, so a webhook that fails or hangs delays only its own alerts
//     (and drops them when its queue is full), never a request or another
//     webhook.
//   - One (event, subject) goes to a webhook at most once per its
//     quiet_minutes, counted from when it was queued.
//   - A message names accounts, keys (by their configured name) and
//     platforms only. The webhook URL and bot token are secrets: they are
//     never logged, and a delivery error is reported without them.
package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ccrelay/ccrelay/internal/config"
)

// Event is one thing worth telling.
type Event struct {
	// Kind is one of config.AlertEvents.
	Kind string
	// Subject is what it is about (an account id, a platform, a key name
	// with its window); with Kind it is the de-duplication key.
	Subject string
	// Message is the human text, without secrets.
	Message string
	Time    time.Time
}

// Options tune delivery; zero values take the defaults.
type Options struct {
	// QueueSize bounds each webhook's queue. Default 256.
	QueueSize int
	// Attempts is how many times one alert is tried. Default 4.
	Attempts int
	// Backoff is the wait after the first failed attempt; it doubles. Default 2 s.
	Backoff time.Duration
	// Timeout bounds one delivery attempt. Default 10 s.
	Timeout time.Duration
	// Client sends the webhooks. Default: a client of its own.
	Client *http.Client
}

// Dispatcher queues events for the configured webhooks. It is safe for
// concurrent use.
type Dispatcher struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time

	mu     sync.Mutex
	sinks  []*sink
	cfgs   []config.AlertConfig
	ctx    context.Context // set by Start
	wg     sync.WaitGroup
	down   map[string]bool     // accounts reported invalid, until they serve again
	passed map[quotaWindow]int // highest threshold (percent) already crossed per account window
}

type sink struct {
	cfg    config.AlertConfig
	index  int
	queue  chan Event
	last   map[string]time.Time // (event, subject) -> queued at
	cancel context.CancelFunc
}

// New returns a dispatcher for cfgs; call Start to send.
func New(cfgs []config.AlertConfig, opts Options, log *slog.Logger) *Dispatcher {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 256
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 4
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 2 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{opts: opts, log: log, now: time.Now, down: map[string]bool{}, passed: map[quotaWindow]int{}}
	d.SetConfig(cfgs)
	return d
}

// Start runs the senders until ctx ends; Wait waits for them to stop.
func (d *Dispatcher) Start(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.ctx = ctx
	for _, s := range d.sinks {
		d.runLocked(s)
	}
}

// Wait returns when every sender stopped (after Start's ctx ended).
func (d *Dispatcher) Wait() { d.wg.Wait() }

// SetConfig replaces the webhooks (a config reload). Webhooks whose config
// is unchanged keep their queue and quiet periods.
func (d *Dispatcher) SetConfig(cfgs []config.AlertConfig) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var next []*sink
	for i, c := range cfgs {
		var s *sink
		for j, old := range d.sinks {
			if old != nil && reflect.DeepEqual(old.cfg, c) {
				s, d.sinks[j] = old, nil
				break
			}
		}
		if s == nil {
			s = &sink{cfg: c, queue: make(chan Event, d.opts.QueueSize), last: map[string]time.Time{}}
			if d.ctx != nil {
				d.runLocked(s)
			}
		}
		s.index = i
		next = append(next, s)
	}
	for _, old := range d.sinks {
		if old != nil && old.cancel != nil {
			old.cancel()
		}
	}
	d.sinks, d.cfgs = next, cfgs
}

func (d *Dispatcher) runLocked(s *sink) {
	ctx, cancel := context.WithCancel(d.ctx)
	s.cancel = cancel
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.send(ctx, s) }()
}

// Notify queues e for every webhook that wants it and has not had the same
// (event, subject) within its quiet period. It never blocks.
func (d *Dispatcher) Notify(e Event) {
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := e.Kind + "\x00" + e.Subject
	for _, s := range d.sinks {
		if !s.cfg.Wants(e.Kind) {
			continue
		}
		if t, ok := s.last[key]; ok && e.Time.Sub(t) < time.Duration(s.cfg.QuietMinutes)*time.Minute {
			continue
		}
		select {
		case s.queue <- e:
			s.last[key] = e.Time
		default:
			d.log.Warn("alert queue full; alert dropped", "alert", s.index, "event", e.Kind, "subject", e.Subject)
		}
	}
}

// AccountInvalid reports that account's credential was refused (reason is
// secret-free, e.g. "refresh token rejected (invalid_grant)").
func (d *Dispatcher) AccountInvalid(account, reason string) {
	d.mu.Lock()
	d.down[account] = true
	d.mu.Unlock()
	d.Notify(Event{Kind: config.EventAccountInvalid, Subject: account,
		Message: fmt.Sprintf("ccrelay: account %s is unusable: %s. It is out of the pool until its credential is renewed (ccrelay login).", account, reason)})
}

// AccountServed reports a successful answer from account; an account that
// was reported invalid is then reported recovered.
func (d *Dispatcher) AccountServed(account string) {
	d.mu.Lock()
	was := d.down[account]
	delete(d.down, account)
	d.mu.Unlock()
	if was {
		d.Notify(Event{Kind: config.EventAccountRecovered, Subject: account,
			Message: fmt.Sprintf("ccrelay: account %s serves requests again.", account)})
	}
}

// PoolExhausted reports that a client got 503 because no account of
// platform could serve.
func (d *Dispatcher) PoolExhausted(platform string) {
	d.Notify(Event{Kind: config.EventPoolExhausted, Subject: platform,
		Message: fmt.Sprintf("ccrelay: no %s account could serve a request (every one is cooling down, disabled or invalid); clients get 503.", platform)})
}

// QuotaThresholds are the subscription window shares (percent) that alert.
var QuotaThresholds = []int{80, 95}

// Quota reports the use (0..1) of account's subscription window (the quota
// work calls it on each update); crossing 80% and 95% alerts once each.
func (d *Dispatcher) Quota(account, window string, utilization float64) {
	// Called for every answer that carries quota headers: a map lookup,
	// no allocation, until a threshold is crossed.
	if p, ok := d.crossed(quotaWindow{account, window}, utilization, QuotaThresholds); ok {
		d.Notify(Event{Kind: config.EventQuotaThreshold, Subject: fmt.Sprintf("%s %s %d%%", account, window, p),
			Message: fmt.Sprintf("ccrelay: account %s has used %.0f%% of its %s window (past %d%%).", account, utilization*100, window, p)})
	}
}

// KeyBudget reports that a relay key's spending passed threshold percent
// (80 or 100) of its budget for period ("daily", "weekly", "monthly",
// "daily tokens"), with used the share spent (0..1+). The key policy
// decides when a threshold is passed (once per threshold and window, see
// policy.Options.OnBudget); here it is only sent.
func (d *Dispatcher) KeyBudget(key, period string, threshold int, used float64) {
	d.Notify(Event{Kind: config.EventKeyBudget, Subject: fmt.Sprintf("%s %s %d%%", key, period, threshold),
		Message: fmt.Sprintf("ccrelay: relay key %s has used %.0f%% of its %s budget (past %d%%).", key, used*100, period, threshold)})
}

// quotaWindow names one account's quota window.
type quotaWindow struct{ account, window string }

// crossed returns the highest threshold share passed that was not passed
// before; a share that drops below the lowest (a new window) re-arms them.
func (d *Dispatcher) crossed(subject quotaWindow, share float64, thresholds []int) (int, bool) {
	pct := share * 100
	top := 0
	for _, t := range thresholds {
		if pct >= float64(t) {
			top = t
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.passed[subject]
	if top == 0 {
		delete(d.passed, subject)
		return 0, false
	}
	if top <= prev {
		return 0, false
	}
	d.passed[subject] = top
	return top, true
}

// send delivers s's queue until ctx ends.
func (d *Dispatcher) send(ctx context.Context, s *sink) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-s.queue:
			d.deliver(ctx, s, e)
		}
	}
}

// deliver tries one alert with back-off.
func (d *Dispatcher) deliver(ctx context.Context, s *sink, e Event) {
	wait := d.opts.Backoff
	var err error
	for i := 0; i < d.opts.Attempts; i++ {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait *= 2
		}
		if err = d.post(ctx, s.cfg, e); err == nil {
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
	d.log.Warn("alert not delivered", "alert", s.index, "format", s.cfg.Format, "event", e.Kind, "subject", e.Subject, "attempts", d.opts.Attempts, "err", err)
}

// errDelivery is a delivery failure described without the URL (a secret).
type errDelivery string

func (e errDelivery) Error() string { return string(e) }

func (d *Dispatcher) post(ctx context.Context, c config.AlertConfig, e Event) error {
	url, body, err := Render(c, e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return errDelivery("bad webhook url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ccrelay-alerts")
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		// *url.Error quotes the URL; say only what kind of failure it was.
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return errDelivery("webhook timed out")
		case errors.Is(err, context.Canceled):
			return errDelivery("canceled")
		}
		return errDelivery("webhook unreachable")
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errDelivery(fmt.Sprintf("webhook answered %d", resp.StatusCode))
	}
	return nil
}

// Render builds the request URL and body of e in c's format: json
// {"event","subject","message","time"}; Slack {"text"}; Discord
// {"content","username","allowed_mentions"}; Telegram sendMessage
// {"chat_id","text"}.
//
// A message is plain text wherever it goes: control characters become
// spaces, and each chat's markup is escaped (Slack's &, < and >; Discord's
// markdown, with mentions switched off; Telegram parses none without a
// parse_mode), so a name or reason holding "<!channel>", "@everyone" or a
// masked link "[text](url)" arrives as those characters, not as a ping or
// a link. (Messages carry no upstream error text, see gemini's reasonText;
// this is the second line.)
func Render(c config.AlertConfig, e Event) (url string, body []byte, err error) {
	var v any
	url = c.URL
	msg := plain(e.Message)
	switch c.Format {
	case config.AlertSlack:
		v = map[string]string{"text": slackEscaper.Replace(msg)}
	case config.AlertDiscord:
		v = discordMessage{Content: cutUTF8(discordEscaper.Replace(msg), 2000), Username: "ccrelay", AllowedMentions: noMentions{Parse: []string{}}}
	case config.AlertTelegram:
		url = strings.TrimRight(c.URL, "/") + "/bot" + c.BotToken + "/sendMessage"
		v = map[string]any{"chat_id": c.ChatID, "text": msg, "disable_web_page_preview": true}
	default:
		v = map[string]string{"event": e.Kind, "subject": e.Subject, "message": msg, "time": e.Time.UTC().Format(time.RFC3339)}
	}
	body, err = json.Marshal(v)
	return url, body, err
}

// discordMessage is a Discord webhook execution.
type discordMessage struct {
	Content         string     `json:"content"`
	Username        string     `json:"username"`
	AllowedMentions noMentions `json:"allowed_mentions"`
}

// noMentions with an empty Parse pings nobody (@everyone, @here, roles,
// users), whatever the content says.
type noMentions struct {
	Parse []string `json:"parse"`
}

// slackEscaper escapes the three characters Slack reads as markup
// (<!channel>, <@U123>, <url|text>).
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// discordEscaper backslash-escapes Discord's markdown and mention
// characters.
var discordEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "~", `\~`, "`", "\\`", "|", `\|`,
	">", `\>`, "<", `\<`, "[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`, "#", `\#`, "@", `\@`)

// plain replaces control characters by spaces.
func plain(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// cutUTF8 cuts s to at most n bytes without splitting a character.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
