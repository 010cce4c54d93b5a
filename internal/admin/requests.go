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

// RequestPage is GET /admin/v1/requests: the JSON of `ccrelay requests --json`.
type RequestPage struct {
	Requests []store.RequestRow `json:"requests"`
	// Next is the "before" cursor of the next (older) page; 0 when this
	// page is the last.
	Next int64 `json:"next,omitempty"`
	// Scope is always "local": each relay keeps its own request log.
	Scope       string `json:"scope"`
	ScopeReason string `json:"scope_reason,omitempty"`
}

// RequestDetailResponse is GET /admin/v1/requests/{id}.
type RequestDetailResponse struct {
	store.RequestDetail
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
// cluster.
const ReasonLocalLog = "each relay of a cluster keeps its own request log: these are this relay's requests; ask the others with --server"

func (a *API) requestRoutes() {
	a.mux.HandleFunc("GET "+Prefix+"requests", a.requests)
	a.mux.HandleFunc("GET "+Prefix+"requests/{id}", a.request)
	a.mux.HandleFunc("GET "+Prefix+"captures", a.captures)
	a.mux.HandleFunc("POST "+Prefix+"captures", a.startCapture)
	a.mux.HandleFunc("POST "+Prefix+"captures/{id}/stop", a.stopCapture)
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
	if a.o.Requests == nil {
		writeError(w, http.StatusNotImplemented, "this relay has no request log (no database)")
		return
	}
	q, err := RequestQueryOf(r.URL.Query(), a.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rows, err := a.o.Requests.Requests(r.Context(), q)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "read the request log: "+err.Error())
		return
	}
	page := RequestPage{Requests: rows}
	page.Scope, page.ScopeReason = a.logScope()
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	if q.After == 0 && len(rows) == min(limit, store.MaxRequestPage) && len(rows) > 0 {
		page.Next = rows[len(rows)-1].Seq
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *API) request(w http.ResponseWriter, r *http.Request) {
	if a.o.Requests == nil {
		writeError(w, http.StatusNotImplemented, "this relay has no request log (no database)")
		return
	}
	id := r.PathValue("id")
	d, err := a.o.Requests.Request(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNoRow):
		writeError(w, http.StatusNotFound, "no request "+strconv.Quote(id)+" in this relay's request log (it keeps request_log_days; in a cluster, ask the relay that served it)")
		return
	case err != nil:
		writeError(w, http.StatusInternalServerError, "read the request log: "+err.Error())
		return
	}
	resp := RequestDetailResponse{RequestDetail: d}
	resp.Scope, resp.ScopeReason = a.logScope()
	writeJSON(w, http.StatusOK, resp)
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
