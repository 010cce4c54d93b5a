package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ccrelay/ccrelay/internal/reqlog"
	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// RequestLog reads the relay's request log (internal/store). Wire it with
// Options.Requests; until then GET /admin/v1/requests answers 501.
type RequestLog interface {
	Requests(ctx context.Context, q store.RequestQuery) ([]store.RequestRow, error)
	Request(ctx context.Context, id string) (store.RequestDetail, error)
}

// CaptureControl starts, stops and lists body captures, and makes the
// relay apply a change at once (internal/app). Wire it with
// Options.Captures; until then the capture routes answer 501.
type CaptureControl interface {
	Captures(ctx context.Context) ([]reqlog.Capture, error)
	StartCapture(ctx context.Context, c reqlog.Capture) (reqlog.Capture, error)
	StopCapture(ctx context.Context, id int64) (bool, error)
}

// ClusterRequestLog reads the request log of every relay sharing the
// cluster's Redis (internal/cluster's shared index: each row's metadata,
// never bodies). An error means it cannot answer now (Redis unreachable):
// the API then answers from this relay's own rows and says why. Wire it
// with Options.ClusterRequests; without it every answer is this relay's own.
type ClusterRequestLog interface {
	// Requests reads the rows q selects, newest first (oldest first after
	// q.After), with the cursor that continues the read (0: nothing
	// further) and whether the read stopped at its bound before filling
	// the page.
	Requests(ctx context.Context, q store.RequestQuery) (rows []store.RequestRow, next int64, stopped bool, err error)
	// Request reads one row by request id; store.ErrNoRow when the cluster's
	// log does not hold it. The row's Relay served it and holds its bodies.
	Request(ctx context.Context, id string) (store.RequestRow, error)
	// Relay is this relay's id in the cluster.
	Relay() string
}

// RequestPage is GET /admin/v1/requests: the JSON of `ccrelay requests --json`.
type RequestPage struct {
	Requests []store.RequestRow `json:"requests"`
	// Next is the "before" cursor of the next (older) page; 0 when this
	// page is the last.
	Next int64 `json:"next,omitempty"`
	// ScanStopped says the cluster's log was read as far as one question
	// may (bounded work) before the page was full: older matching rows may
	// exist, and Next continues the read from where it stopped.
	ScanStopped bool `json:"scan_stopped,omitempty"`
	// Scope is "cluster" (every relay's rows, from the cluster's shared
	// index; each row's relay says which served it) or "local" (this
	// relay's own rows; ScopeReason says why).
	Scope       string `json:"scope"`
	ScopeReason string `json:"scope_reason,omitempty"`
}

// RequestDetailResponse is GET /admin/v1/requests/{id}.
type RequestDetailResponse struct {
	store.RequestDetail
	// BodiesOn is the relay that holds the request's captured bodies when
	// it is not this one (captured bodies never leave the relay that took
	// them): ask that relay for them.
	BodiesOn string `json:"bodies_on,omitempty"`
	// ThisRelay is the answering relay's id in a cluster.
	ThisRelay   string `json:"this_relay,omitempty"`
	Scope       string `json:"scope"`
	ScopeReason string `json:"scope_reason,omitempty"`
}

// CaptureList is GET /admin/v1/captures: the captures whose bodies are kept.
type CaptureList struct {
	Captures []reqlog.Capture `json:"captures"`
	// Active is how many are taking requests now.
	Active int `json:"active"`
}

// ReasonLocalLog is the scope_reason of a request log read on a relay of a
// cluster that does not share its request log.
const ReasonLocalLog = "each relay of a cluster keeps its own request log: these are this relay's requests; ask the others with --server"

// ReasonNotInCluster is the scope_reason of a request found in this relay's
// own log but not in the cluster's (not written there yet, written while
// Redis was unreachable and dropped, or trimmed).
const ReasonNotInCluster = "the request is not in the cluster's request log (not written there yet, dropped while redis was unreachable, or trimmed): this is this relay's own row"

func (a *API) requestRoutes() {
	a.mux.HandleFunc("GET "+Prefix+"requests", a.requests)
	a.mux.HandleFunc("GET "+Prefix+"requests/{id}", a.request)
	a.mux.HandleFunc("GET "+Prefix+"captures", a.captures)
	a.mux.HandleFunc("POST "+Prefix+"captures", a.startCapture)
	a.mux.HandleFunc("POST "+Prefix+"captures/{id}/stop", a.stopCapture)
}

// localLogReason says why a cluster relay answers with its own request log.
func localLogReason(err error) string {
	return "the cluster's request log is not available (" + err.Error() + "): these are this relay's own requests"
}

func (a *API) logScope() (string, string) {
	if a.o.Cluster != nil {
		return store.ScopeLocal, ReasonLocalLog
	}
	return store.ScopeLocal, ReasonNoCluster
}

// RequestQueryOf reads the request log filters of a URL query: key,
// account, model, status, errors, since, until, before, after, limit.
func RequestQueryOf(v map[string][]string, now time.Time) (store.RequestQuery, error) {
	get := func(k string) string {
		if vs := v[k]; len(vs) > 0 {
			return vs[0]
		}
		return ""
	}
	q := store.RequestQuery{Key: get("key"), Account: get("account"), Model: get("model")}
	var errs []error
	num := func(name string) int64 {
		s := get(name)
		if s == "" {
			return 0
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, errors.New(name+" must be a non-negative integer, not "+strconv.Quote(s)))
		}
		return n
	}
	q.Status, q.Before, q.After, q.Limit = int(num("status")), num("before"), num("after"), int(num("limit"))
	switch get("errors") {
	case "", "0", "false":
	case "1", "true":
		q.Errors = true
	default:
		errs = append(errs, errors.New("errors must be true or false"))
	}
	if s := get("since"); s != "" {
		t, err := usage.ParseSince(s, now)
		if err != nil {
			errs = append(errs, errors.New("since: "+err.Error()))
		}
		q.From = t
	}
	if s := get("until"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			errs = append(errs, errors.New("until must be an RFC 3339 time, not "+strconv.Quote(s)))
		}
		q.Until = t
	}
	return q, errors.Join(errs...)
}

func (a *API) requests(w http.ResponseWriter, r *http.Request) {
	q, err := RequestQueryOf(r.URL.Query(), a.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	scope, reason := a.logScope()
	if cr := a.o.ClusterRequests; cr != nil {
		rows, next, stopped, err := cr.Requests(r.Context(), q)
		if err == nil {
			writeJSON(w, http.StatusOK, RequestPage{Requests: rows, Next: next, ScanStopped: stopped, Scope: store.ScopeCluster})
			return
		}
		reason = localLogReason(err)
	}
	if a.o.Requests == nil {
		writeError(w, http.StatusNotImplemented, "this relay has no request log (no database)")
		return
	}
	rows, err := a.o.Requests.Requests(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read the request log: "+err.Error())
		return
	}
	page := RequestPage{Requests: rows, Scope: scope, ScopeReason: reason}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if q.After == 0 && len(rows) == min(limit, store.MaxRequestPage) && len(rows) > 0 {
		page.Next = rows[len(rows)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
}

// clusterRequest answers GET /admin/v1/requests/{id} from the cluster's log:
// the row, with the bodies when this relay holds them, else the relay that
// does. ok is false when the cluster cannot answer (reason says why).
func (a *API) clusterRequest(ctx context.Context, id string) (resp RequestDetailResponse, ok bool, reason string) {
	cr := a.o.ClusterRequests
	row, err := cr.Request(ctx, id)
	switch {
	case errors.Is(err, store.ErrNoRow):
		return resp, false, ReasonNotInCluster
	case err != nil:
		return resp, false, localLogReason(err)
	}
	resp = RequestDetailResponse{RequestDetail: store.RequestDetail{RequestRow: row}, ThisRelay: cr.Relay(), Scope: store.ScopeCluster}
	if !row.Captured {
		return resp, true, ""
	}
	if row.Relay != cr.Relay() {
		resp.BodiesOn = row.Relay
		return resp, true, ""
	}
	if a.o.Requests != nil {
		if d, err := a.o.Requests.Request(ctx, id); err == nil {
			resp.Bodies = d.Bodies
		} else if !errors.Is(err, store.ErrNoRow) {
			a.o.Log.Warn("admin: read captured bodies", "request", id, "err", err)
		}
	}
	return resp, true, ""
}

func (a *API) request(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	scope, reason := a.logScope()
	var thisRelay string
	if a.o.ClusterRequests != nil {
		resp, ok, why := a.clusterRequest(r.Context(), id)
		if ok {
			writeJSON(w, http.StatusOK, resp)
			return
		}
		reason, thisRelay = why, a.o.ClusterRequests.Relay()
	}
	if a.o.Requests == nil {
		writeError(w, http.StatusNotImplemented, "this relay has no request log (no database)")
		return
	}
	d, err := a.o.Requests.Request(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNoRow):
		writeError(w, http.StatusNotFound, "no request "+strconv.Quote(id)+" in this relay's request log (it keeps request_log_days; in a cluster, ask the relay that served it)")
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "read the request log: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, RequestDetailResponse{RequestDetail: d, ThisRelay: thisRelay, Scope: scope, ScopeReason: reason})
}

func (a *API) captures(w http.ResponseWriter, r *http.Request) {
	if a.o.Captures == nil {
		writeError(w, http.StatusNotImplemented, "body capture is not available in this relay (no database)")
		return
	}
	list, err := a.o.Captures.Captures(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read captures: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, captureList(list, a.o.Now()))
}

func captureList(list []reqlog.Capture, now time.Time) CaptureList {
	out := CaptureList{Captures: list}
	if out.Captures == nil {
		out.Captures = []reqlog.Capture{}
	}
	for i := range list {
		if list[i].Active(now) {
			out.Active++
		}
	}
	return out
}

// maxCaptureBody bounds POST /admin/v1/captures.
const maxCaptureBody = 4 << 10

func (a *API) startCapture(w http.ResponseWriter, r *http.Request) {
	if a.o.Captures == nil {
		writeError(w, http.StatusNotImplemented, "body capture is not available in this relay (no database)")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCaptureBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "body over "+strconv.Itoa(maxCaptureBody)+" bytes")
		return
	}
	var spec reqlog.Spec
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil || dec.More() {
		msg := `body must be one JSON object such as {"key": "alice", "for": "1h"} (fields: key, account, errors_only, sample_rate, for, keep, max_body_bytes)`
		if err != nil {
			msg += ": " + err.Error()
		}
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	c, err := spec.Build(a.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err = a.o.Captures.StartCapture(r.Context(), c)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "start the capture: "+err.Error())
		return
	}
	a.o.Log.Info("body capture started through the admin API", "capture", c.ID, "key_name", c.Key, "account", c.Account, "errors_only", c.ErrorsOnly, "until", c.Until)
	writeJSON(w, http.StatusCreated, c)
}

func (a *API) stopCapture(w http.ResponseWriter, r *http.Request) {
	if a.o.Captures == nil {
		writeError(w, http.StatusNotImplemented, "body capture is not available in this relay (no database)")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "capture id must be a number")
		return
	}
	ok, err := a.o.Captures.StopCapture(r.Context(), id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "stop the capture: "+err.Error())
		return
	case !ok:
		writeError(w, http.StatusNotFound, "no running capture "+strconv.FormatInt(id, 10))
		return
	}
	a.o.Log.Info("body capture stopped through the admin API", "capture", id)
	list, err := a.o.Captures.Captures(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read captures: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, captureList(list, a.o.Now()))
}
