package serve

import (
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofEnv names the environment variable that turns on Go's profiler
// endpoints (/debug/pprof/) on a listener of their own. It is meant for
// profiling on loopback (e.g. CCRELAY_PPROF_ADDR=127.0.0.1:6060); the relay's
// own listener never serves them.
const pprofEnv = "CCRELAY_PPROF_ADDR"

// startPprof serves the profiler at addr; the returned function stops it.
func startPprof(addr string, log *slog.Logger) func() {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error("could not start the profiler listener", "env", pprofEnv, "addr", addr, "err", err)
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Warn("profiler endpoints are on (do not expose them)", "env", pprofEnv, "addr", ln.Addr().String())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }
}
