// Package server runs ccrelay's http.Server: the middleware every request
// passes (recover, request id, access log), /health outside auth, and a
// graceful drain on shutdown.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/relay"
)

// HealthFunc returns the /health detail (no secrets, no account names).
type HealthFunc func() map[string]any

// Server is the relay's HTTP server.
type Server struct {
	srv      *http.Server
	log      *slog.Logger
	inflight atomic.Int64
	ln       net.Listener
	observe  RequestObserver
}

// RequestObserver is told of every finished request: its path, the status
// the client got and the account that served it ("" for none). It runs on
// the request's goroutine and must be quick (metrics counting).
type RequestObserver func(path string, status int, account string)

// SetObserver registers the request observer; call before Serve.
func (s *Server) SetObserver(o RequestObserver) { s.observe = o }

// New wraps api (the relay's routes) with middleware and /health.
func New(api http.Handler, health HealthFunc, log *slog.Logger, extra map[string]http.Handler) *Server {
	s := &Server{log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		body := []byte(`{"status":"ok"}`)
		if health != nil {
			body = healthJSON(health())
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	mux.Handle("/", api)
	s.srv = &http.Server{
		Handler:           s.middleware(mux),
		ReadHeaderTimeout: 30 * time.Second,
		// No WriteTimeout: it would cut long SSE streams. No ReadTimeout: large
		// bodies on slow links; the header timeout guards against slowloris.
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 1 << 20,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// InFlight is the number of requests being served.
func (s *Server) InFlight() int64 { return s.inflight.Load() }

// Listen binds addr; call Serve next. Split so callers learn a :0 port.
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s.ln = ln
	return ln.Addr(), nil
}

// Serve serves until Shutdown; it returns nil after a clean shutdown.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits (bounded by ctx) for in-flight requests
// and streams to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

// Close drops every connection at once.
func (s *Server) Close() error { return s.srv.Close() }

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		start := time.Now()
		info := &relay.Info{RequestID: newRequestID()}
		sw := &statusWriter{ResponseWriter: w}
		sw.Header().Set("X-Relay-Request-Id", info.RequestID)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				// The panic value and stack may hold request data; log the
				// stack only (it holds code locations, not values).
				s.log.Error("panic in handler", "request_id", info.RequestID, "path", r.URL.Path, "stack", string(debug.Stack()))
				if sw.status == 0 {
					relay.DialectError(sw, r.URL.Path, http.StatusInternalServerError, "internal error (request "+info.RequestID+")")
				}
			}
			status := sw.status
			if info.Status != 0 {
				status = info.Status
			}
			if s.observe != nil {
				s.observe(r.URL.Path, status, info.Account)
			}
			if r.URL.Path == "/health" && status == http.StatusOK {
				return
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("id", info.RequestID), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.String("account", info.Account), slog.String("model", info.Model),
				slog.Int64("in", info.InputTokens), slog.Int64("out", info.OutputTokens),
				slog.Int64("cache_read", info.CacheReadTokens), slog.Int64("cache_write", info.CacheCreationTokens),
				slog.Int("attempts", info.Attempts), slog.Duration("latency", time.Since(start)))
		}()
		next.ServeHTTP(sw, r.WithContext(relay.WithInfo(r.Context(), info)))
	})
}

func healthJSON(m map[string]any) []byte {
	// A tiny encoder keeps /health free of reflection surprises.
	b := []byte{'{'}
	first := true
	for _, k := range []string{"status", "version", "uptime_seconds", "accounts", "available", "in_flight", "usage_queue", "database", "cluster", "config", "config_error"} {
		v, ok := m[k]
		if !ok {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, k)
		b = append(b, ':')
		switch x := v.(type) {
		case string:
			b = strconv.AppendQuote(b, x)
		case int:
			b = strconv.AppendInt(b, int64(x), 10)
		case int64:
			b = strconv.AppendInt(b, x, 10)
		case bool:
			b = strconv.AppendBool(b, x)
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}
