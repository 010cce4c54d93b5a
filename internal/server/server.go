// Package server runs ccrelay's http.Server: the middleware every request
// passes (recover, request id, access log), /health outside auth, and a
// graceful drain on shutdown.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ccrelay/ccrelay/internal/relay"
)

// HealthFunc returns the /health detail (no secrets, no account names): a
// value encoding/json encodes as a JSON object, so every field it has is shown.
type HealthFunc func() any

// Server is the relay's HTTP server.
type Server struct {
	srv      *http.Server
	log      *slog.Logger
	inflight atomic.Int64
	ln       net.Listener
	mux      *http.ServeMux
	trusted  []netip.Prefix
	observe  RequestObserver
	// writeTimeout bounds each write to a client (nanoseconds; see
	// deadlineConn).
	writeTimeout atomic.Int64
}

// RequestObserver is told of every finished request: its path, the status
// the client got and the account that served it ("" for none). It runs on
// the request's goroutine and must be quick (metrics counting).
type RequestObserver func(path string, status int, account string)

// SetObserver registers the request observer; call before Serve.
func (s *Server) SetObserver(o RequestObserver) { s.observe = o }

// SetWriteTimeout bounds each write to a client: one that stops reading is
// dropped after between 3/4 of d and d. 0 means no bound. It may be called
// while serving (a reload); open connections follow it from their next
// writes.
func (s *Server) SetWriteTimeout(d time.Duration) { s.writeTimeout.Store(int64(d)) }

// SetTrustedProxies sets the proxies whose X-Forwarded-For is believed;
// call before Serve.
func (s *Server) SetTrustedProxies(p []netip.Prefix) { s.trusted = p }

// clientAddr resolves the client's address: the TCP peer, unless the peer
// is a trusted proxy, in which case X-Forwarded-For is read from the right,
// skipping trusted proxies, and the first untrusted address is the client.
func (s *Server) clientAddr(r *http.Request) (netip.Addr, bool) {
	peer := relay.PeerAddr(r)
	if !s.isTrusted(peer) {
		return peer, false
	}
	xff := r.Header.Values("X-Forwarded-For")
	client, via := peer, false
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client, via
			}
			client, via = a.Unmap(), true
			if !s.isTrusted(client) {
				return client, via
			}
		}
	}
	return client, via
}

// forwardedTLS reports whether a trusted proxy (the TCP peer) says the
// client reached it over TLS: the first X-Forwarded-Proto entry is https.
// Only the client's own cookie depends on it, so a client that lies to the
// proxy fools no one but itself.
func (s *Server) forwardedTLS(r *http.Request) bool {
	xfp := r.Header.Get("X-Forwarded-Proto")
	if xfp == "" || !s.isTrusted(relay.PeerAddr(r)) {
		return false
	}
	first, _, _ := strings.Cut(xfp, ",")
	return strings.EqualFold(strings.TrimSpace(first), "https")
}

func (s *Server) isTrusted(a netip.Addr) bool {
	for _, p := range s.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Handle mounts h at pattern beside the API routes (admin API, metrics,
// dashboard), behind the same middleware; call before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// New wraps api (the relay's routes) with middleware and /health.
func New(api http.Handler, health HealthFunc, log *slog.Logger) *Server {
	s := &Server{log: log, mux: http.NewServeMux()}
	mux := s.mux
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		body := []byte(`{"status":"ok"}`)
		if health != nil {
			b, err := json.Marshal(health())
			if err != nil {
				s.log.Error("encode /health", "err", err)
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			body = b
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
	})
	mux.Handle("/", api)
	s.srv = &http.Server{
		Handler:           s.middleware(mux),
		ReadHeaderTimeout: 30 * time.Second,
		// No WriteTimeout: it would cut long SSE streams (writes are bounded
		// one by one instead: SetWriteTimeout). No ReadTimeout: large
		// bodies on slow links; the header timeout guards against slowloris.
		IdleTimeout: 120 * time.Second,
		// Real clients send under 8 KiB of headers; past this Go answers 431
		// before the relay sees the request.
		MaxHeaderBytes: relay.MaxHeaderBytes,
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
	s.ln = newDeadlineListener(ln, &s.writeTimeout, nil)
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
		info.ClientAddr, info.ViaTrustedProxy = s.clientAddr(r)
		info.ClientTLS = r.TLS != nil || s.forwardedTLS(r)
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
			level := slog.LevelInfo
			if r.Method == http.MethodGet && status == http.StatusOK && (strings.HasPrefix(r.URL.Path, "/admin/") || strings.HasPrefix(r.URL.Path, "/dashboard")) {
				level = slog.LevelDebug // the dashboard polls every few seconds
			}
			if !s.log.Enabled(r.Context(), level) {
				return // the line's fields are not even built
			}
			s.log.LogAttrs(r.Context(), level, "request",
				slog.String("id", info.RequestID), slog.String("client", info.ClientAddr.String()), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.String("account", info.Account), slog.String("model", info.Model),
				slog.Int64("in", info.InputTokens), slog.Int64("out", info.OutputTokens),
				slog.Int64("cache_read", info.CacheReadTokens), slog.Int64("cache_write", info.CacheCreationTokens),
				slog.Int("attempts", info.Attempts), slog.Duration("latency", time.Since(start)))
		}()
		next.ServeHTTP(sw, r.WithContext(relay.WithInfo(r.Context(), info)))
	})
}
