package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// runRole serves as one of the helper processes and returns when the parent
// closes our stdin (or dies: Pdeathsig).
func runRole(role string) error {
	var h http.Handler
	switch role {
	case "upstream":
		h = fakeupstream.NewFast("claude-sonnet-5")
	case "baseline":
		target, err := url.Parse(os.Getenv("RELAYBENCH_TARGET"))
		if err != nil || target.Host == "" {
			return fmt.Errorf("baseline: bad RELAYBENCH_TARGET %q", os.Getenv("RELAYBENCH_TARGET"))
		}
		h = baselineProxy(target)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	if dir := os.Getenv(tlsDirEnv); dir != "" {
		cert, err := selfSignedCert(dir)
		if err != nil {
			return err
		}
		// HTTP/2 first, as api.anthropic.com offers it.
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Clients hanging up on held streams are expected; keep stderr quiet.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return srv.Serve(ln)
}

// baselineProxy is the bare standard-library reverse proxy ccrelay is
// compared with: flush every write (FlushInterval -1, as for SSE), an upstream
// pool sized for the load (the default keeps 2 idle connections per host and
// would measure dialing), default buffers, nothing else.
func baselineProxy(target *url.URL) http.Handler {
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
		},
		FlushInterval: -1,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        4096,
			MaxIdleConnsPerHost: 4096,
			IdleConnTimeout:     90 * time.Second,
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Without full duplex a ReverseProxy cuts some SSE streams short under
		// load (STYLE.md); ccrelay avoids it by reading the body first.
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	})
}
