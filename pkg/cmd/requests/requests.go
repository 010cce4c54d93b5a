// Package requests implements `ccrelay requests`: the request log, one row
// per request, from the local database or a running relay.
package requests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/MakeNowJust/heredoc"
	"github.com/spf13/cobra"

	"github.com/ccrelay/ccrelay/internal/admin"
	"github.com/ccrelay/ccrelay/internal/config"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
	"github.com/ccrelay/ccrelay/pkg/cmdutil"
	"github.com/ccrelay/ccrelay/pkg/iostreams"
)

// Options are the command's inputs.
type Options struct {
	IO     *iostreams.IOStreams
	Config func() (*config.Config, error)
	Now    func() time.Time
	Getenv func(string) string
	// Ctx ends --follow (tests); default: runs until interrupted.
	Ctx context.Context
	// PollEvery is --follow's pause between reads.
	PollEvery time.Duration

	// ID is the request to show in full; "" lists.
	ID      string
	Errors  bool
	Key     string
	Account string
	Model   string
	Status  int
	Since   string
	Limit   int
	Follow  bool
	JSON    bool
	// Database overrides server.database_path.
	Database string
	// Server is --server: ask a running relay's admin API.
	Server string
}

// NewCmdRequests builds the requests command.
func NewCmdRequests(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Config: f.Config, Now: time.Now, Getenv: f.Getenv, PollEvery: time.Second}
	cmd := &cobra.Command{
		Use:   "requests [<request-id>]",
		Short: "Show the request log: each request, the accounts it tried and why",
		Long: heredoc.Doc(`
			List the requests the relay served, newest first: when, which relay key, the
			model, the account that served it (and any it failed over from, with the
			upstream status), the final status, time to first byte and total time. Give a
			request id (the X-Relay-Request-Id header the client got, or the ID column) to
			see one request in full: client, route, tokens, cost, queue wait, every attempt
			with its verdict and the upstream's message (secrets removed), and the bodies
			when a capture ('ccrelay capture on') took them.

			The relay keeps one row per request, without bodies, for
			server.request_log_days (default 7) and at most server.request_log_max_rows.

			It reads the SQLite database at server.database_path (or --db) directly, with
			or without a running relay. With --server (or $CCRELAY_SERVER) it asks the
			relay at that URL through its admin API, with the admin key in
			$CCRELAY_ADMIN_KEY. In a cluster every relay also writes its rows (never the
			bodies) to a shared index in Redis, so --server on any relay lists the whole
			cluster's requests, each naming the relay that served it; while Redis is
			unreachable a relay answers with its own rows and says so. Captured bodies stay
			on the relay that took them: the detail names it.

			--follow prints new requests as they are recorded (about a second after they
			end; the relay writes in batches), until interrupted.
		`),
		Example: heredoc.Doc(`
			$ ccrelay requests --errors --since 1h
			$ ccrelay requests --key alice --follow
			$ ccrelay requests --account claude-1 --json | jq '.requests[0].attempts'
			$ ccrelay requests req_4f2a9c0e1b7d3a5f6e8c9b0a
		`),
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.ID = args[0]
			}
			if opts.ID != "" && opts.Follow {
				return cmdutil.FlagErrorf("--follow lists requests; it takes no request id")
			}
			if opts.Since != "" {
				if _, err := usage.ParseSince(opts.Since, time.Now()); err != nil {
					return cmdutil.FlagErrorf("--since: %v", err)
				}
			}
			if opts.Limit < 0 || opts.Limit > store.MaxRequestPage {
				return cmdutil.FlagErrorf("--limit must be between 1 and %d", store.MaxRequestPage)
			}
			if runF != nil {
				return runF(opts)
			}
			return requestsRun(opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&opts.Errors, "errors", false, "only requests that ended with status 400 or more")
	fl.StringVar(&opts.Key, "key", "", "only this relay key's requests ([[keys]] name)")
	fl.StringVar(&opts.Account, "account", "", "only requests this account served or failed")
	fl.StringVar(&opts.Model, "model", "", "only requests for this model (asked or sent upstream)")
	fl.IntVar(&opts.Status, "status", 0, "only requests that ended with this HTTP status")
	fl.StringVar(&opts.Since, "since", "", "window start: a duration back from now (15m, 1h, 7d), a date, or an RFC 3339 time")
	fl.IntVar(&opts.Limit, "limit", 50, "show at most this many requests")
	fl.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new requests as they are recorded")
	fl.BoolVar(&opts.JSON, "json", false, "print JSON (with --follow: one request per line)")
	fl.StringVar(&opts.Database, "db", "", "read this database file instead of server.database_path")
	cmdutil.AddServerFlag(cmd, &opts.Server)
	_ = cmd.RegisterFlagCompletionFunc("since", cobra.FixedCompletions([]string{"15m", "1h", "24h", "7d"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// source is where the request log is read: the local database or a relay.
type source interface {
	list(ctx context.Context, q url.Values) (admin.RequestPage, error)
	get(ctx context.Context, id string) (admin.RequestDetailResponse, error)
	name() string
}

func requestsRun(opts *Options) error {
	src, closeSrc, err := openSource(opts)
	if err != nil {
		return err
	}
	defer closeSrc()
	ctx := opts.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.ID != "" {
		d, err := src.get(ctx, opts.ID)
		if err != nil {
			return err
		}
		if opts.JSON {
			return cmdutil.WriteJSON(opts.IO.Out, d)
		}
		return writeDetail(opts.IO.Out, d)
	}
	q := opts.query()
	page, err := src.list(ctx, q)
	if err != nil {
		return err
	}
	if page.Scope == store.ScopeLocal && page.ScopeReason != "" && page.ScopeReason != admin.ReasonNoCluster {
		fmt.Fprintln(opts.IO.ErrOut, "Note: "+page.ScopeReason+".")
	}
	if page.ScanStopped {
		fmt.Fprintln(opts.IO.ErrOut, "Note: the cluster's request log was read as far as one question may before the page was full; older matching requests may exist (narrow the filters, e.g. --since).")
	}
	if !opts.Follow {
		if opts.JSON {
			return cmdutil.WriteJSON(opts.IO.Out, page)
		}
		if len(page.Requests) == 0 {
			fmt.Fprintf(opts.IO.ErrOut, "No requests recorded that match (%s).\n", src.name())
			return nil
		}
		return writeTable(opts.IO.Out, page.Requests, opts.Now())
	}
	return follow(ctx, opts, src, q, page)
}

// query is the flags as the admin API's query parameters (the local read
// parses the same ones).
func (opts *Options) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("key", opts.Key)
	set("account", opts.Account)
	set("model", opts.Model)
	if opts.Status != 0 {
		q.Set("status", strconv.Itoa(opts.Status))
	}
	if opts.Errors {
		q.Set("errors", "true")
	}
	if opts.Since != "" {
		// Sent as an absolute time: a date means local midnight here.
		if t, err := usage.ParseSince(opts.Since, opts.Now()); err == nil && !t.IsZero() {
			q.Set("since", t.UTC().Format(time.RFC3339Nano))
		}
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	return q
}

// follow prints the page's rows (oldest first), then every new one until
// ctx ends.
func follow(ctx context.Context, opts *Options, src source, q url.Values, page admin.RequestPage) error {
	rows, scope := page.Requests, page.Scope
	var last int64
	print := func(rs []store.RequestRow, header bool) error {
		for i := range rs {
			last = max(last, rs[i].Seq)
			if opts.JSON {
				b, _ := json.Marshal(rs[i])
				if _, err := fmt.Fprintln(opts.IO.Out, string(b)); err != nil {
					return err
				}
			}
		}
		if opts.JSON || len(rs) == 0 {
			return nil
		}
		return writeRows(opts.IO.Out, rs, opts.Now(), header)
	}
	oldestFirst := make([]store.RequestRow, len(rows))
	for i, r := range rows {
		oldestFirst[len(rows)-1-i] = r
	}
	if err := print(oldestFirst, true); err != nil {
		return err
	}
	q.Del("limit")
	t := time.NewTicker(opts.PollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		q.Set("after", strconv.FormatInt(last, 10))
		page, err := src.list(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if page.Scope != scope {
			// A cursor of the cluster's log means nothing in a relay's own
			// (Redis went down or came back): start over at the newest row.
			fmt.Fprintf(opts.IO.ErrOut, "Note: the relay now answers from %s; following from its newest request.\n", scopeText(page))
			if last, err = newest(ctx, src, q); err != nil {
				return err
			}
			scope = page.Scope
			continue
		}
		if err := print(page.Requests, last == 0); err != nil {
			return err
		}
	}
}

// scopeText says whose rows a page holds.
func scopeText(p admin.RequestPage) string {
	if p.Scope == store.ScopeCluster {
		return "the cluster's request log"
	}
	if p.ScopeReason != "" {
		return "its own request log (" + p.ScopeReason + ")"
	}
	return "its own request log"
}

// newest is the cursor of the newest row q selects (0: none).
func newest(ctx context.Context, src source, q url.Values) (int64, error) {
	nq := url.Values{}
	for k, v := range q {
		nq[k] = v
	}
	nq.Del("after")
	nq.Set("limit", "1")
	p, err := src.list(ctx, nq)
	if err != nil || len(p.Requests) == 0 {
		return 0, err
	}
	return p.Requests[0].Seq, nil
}

func openSource(opts *Options) (source, func(), error) {
	if opts.Database == "" {
		adm, err := cmdutil.AdminFor(opts.Server, opts.Getenv)
		if err != nil {
			return nil, nil, err
		}
		if adm != nil {
			return remote{adm}, func() {}, nil
		}
	}
	path := opts.Database
	var cfg *config.Config
	if path == "" {
		c, err := opts.Config()
		if err != nil {
			return nil, nil, err
		}
		cfg, path = c, c.Server.DatabasePath
	}
	db, err := store.OpenReadOnly(path)
	if store.IsNotExist(err) {
		return nil, nil, fmt.Errorf("no database at %s yet: nothing recorded (serve creates it on start; check server.database_path or --db)", path)
	}
	if err != nil {
		return nil, nil, err
	}
	l := local{db: db, path: path, now: opts.Now}
	if cfg != nil && cfg.Cluster.RedisURL != "" {
		l.reason = admin.ReasonLocalLog
	}
	return l, func() { db.Close() }, nil
}

// local reads the request log from a database file.
type local struct {
	db     *store.DB
	path   string
	reason string
	now    func() time.Time
}

func (l local) name() string { return l.path }

func (l local) list(ctx context.Context, v url.Values) (admin.RequestPage, error) {
	q, err := admin.RequestQueryOf(v, l.now())
	if err != nil {
		return admin.RequestPage{}, cmdutil.FlagErrorf("%v", err)
	}
	rows, err := l.db.Requests(ctx, q)
	if err != nil {
		return admin.RequestPage{}, fmt.Errorf("read %s: %w", l.path, err)
	}
	return admin.RequestPage{Requests: rows, Scope: store.ScopeLocal, ScopeReason: l.reason}, nil
}

func (l local) get(ctx context.Context, id string) (admin.RequestDetailResponse, error) {
	d, err := l.db.Request(ctx, id)
	if errors.Is(err, store.ErrNoRow) {
		return admin.RequestDetailResponse{}, fmt.Errorf("no request %q in the request log at %s (it keeps server.request_log_days)", id, l.path)
	}
	if err != nil {
		return admin.RequestDetailResponse{}, fmt.Errorf("read %s: %w", l.path, err)
	}
	return admin.RequestDetailResponse{RequestDetail: d, Scope: store.ScopeLocal, ScopeReason: l.reason}, nil
}

// remote asks a running relay's admin API.
type remote struct{ adm *cmdutil.AdminClient }

func (r remote) name() string { return r.adm.BaseURL }

func (r remote) list(ctx context.Context, q url.Values) (admin.RequestPage, error) {
	var page admin.RequestPage
	err := r.adm.Do(ctx, "GET", "requests?"+q.Encode(), nil, &page)
	return page, err
}

func (r remote) get(ctx context.Context, id string) (admin.RequestDetailResponse, error) {
	var d admin.RequestDetailResponse
	err := r.adm.Do(ctx, "GET", "requests/"+url.PathEscape(id), nil, &d)
	return d, err
}

func writeTable(w io.Writer, rows []store.RequestRow, now time.Time) error {
	return writeRows(w, rows, now, true)
}

func writeRows(w io.Writer, rows []store.RequestRow, now time.Time, header bool) error {
	tw := cmdutil.NewTable(w)
	if header {
		fmt.Fprintln(tw, "TIME\tID\tKEY\tMODEL\tACCOUNTS\tSTATUS\tTTFB\tTOTAL\tERROR")
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", when(r.Time, now), r.ID, dash(r.Key), modelCell(r), accounts(r),
			r.Status, ms(r.TTFBMs), ms(r.LatencyMs), oneLine(r.Error, 60))
	}
	return tw.Flush()
}

// modelCell is the model asked, and the model served when a route or the
// [models] map rewrote it: "claude-sonnet-4 > gpt-5-codex".
func modelCell(r store.RequestRow) string {
	if r.ServedModel != "" && r.ServedModel != r.Model {
		return r.Model + " > " + r.ServedModel
	}
	return r.Model
}

// accounts is the attempt trail: "a1", or "a0 401 > a1" after a failover.
func accounts(r store.RequestRow) string {
	if len(r.Attempts) <= 1 {
		return dash(r.Account)
	}
	parts := make([]string, len(r.Attempts))
	for i, a := range r.Attempts {
		parts[i] = a.Account
		if i < len(r.Attempts)-1 {
			parts[i] += " " + statusText(a.Status)
		}
	}
	return strings.Join(parts, " > ")
}

func statusText(s int) string {
	if s == 0 {
		return "(no answer)"
	}
	return strconv.Itoa(s)
}

func when(t, now time.Time) string {
	l := t.Local()
	if now.Sub(t) < 20*time.Hour {
		return l.Format("15:04:05")
	}
	return l.Format("01-02 15:04:05")
}

func ms(v int64) string {
	if v >= 10_000 {
		return strconv.FormatFloat(float64(v)/1000, 'f', 1, 64) + "s"
	}
	return strconv.FormatInt(v, 10) + "ms"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
