package openai

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxCodexEvent bounds one SSE line while aggregating.
const maxCodexEvent = 16 << 20

// CodexTransport presents the ChatGPT backend as the public Responses API,
// so the relay serves codex-oauth accounts with the same route, failover and
// usage reading as openai-responses ones. On POST .../responses it rewrites
// the body (CodexBody) and, when the client did not ask for a stream, reads
// the backend's stream to its end and answers with the aggregated Responses
// object (or, for a failed stream, the error the API-key route would give).
// Everything else passes through (POST .../responses/compact, Codex's
// remote compaction, is one JSON request and answer); response headers (x-codex-* included)
// reach the client unchanged.
type CodexTransport struct {
	// Base sends the requests; nil means http.DefaultTransport.
	Base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t *CodexTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/responses") || req.Body == nil {
		return base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	out, clientStream, err := CodexBody(body)
	if err != nil {
		return nil, fmt.Errorf("rewrite request for the codex backend: %w", err)
	}
	r2 := req.Clone(req.Context())
	r2.Body = io.NopCloser(bytes.NewReader(out))
	r2.ContentLength = int64(len(out))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(out)), nil }
	r2.Header.Set("Accept", "text/event-stream")
	r2.Header.Set("Content-Type", "application/json")
	resp, err := base.RoundTrip(r2)
	if err != nil || clientStream || resp.StatusCode/100 != 2 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, err
	}
	return aggregate(resp)
}

// aggregate replaces a streaming answer by its aggregated JSON.
func aggregate(resp *http.Response) (*http.Response, error) {
	defer resp.Body.Close()
	var agg CodexAggregator
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxCodexEvent)
	var data bytes.Buffer
	flush := func() {
		if data.Len() > 0 {
			agg.Add(data.Bytes())
			data.Reset()
		}
	}
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case len(line) == 0:
			flush()
		case bytes.HasPrefix(line, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" ")))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read codex stream: %w", err)
	}
	flush()
	body, failed, ok := agg.Result()
	status := http.StatusOK
	switch {
	case !ok:
		return nil, fmt.Errorf("codex stream ended without response.completed")
	case failed:
		status, body = CodexFailedStatus(body), CodexErrorBody(body)
	}
	h := resp.Header.Clone()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	return &http.Response{
		Status: strconv.Itoa(status) + " " + http.StatusText(status), StatusCode: status,
		Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: resp.Request,
	}, nil
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps, so http.Client.CloseIdleConnections (a reload dropping the account,
// shutdown) reaches them through this wrapper.
func (t *CodexTransport) CloseIdleConnections() {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if c, ok := base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
