// Package upstream builds the HTTP clients that carry each account's traffic:
// one pooled transport per account, through the account's proxy when it has one.
package upstream

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ccrelay/ccrelay/internal/config"
)

// ProxyURL returns the proxy URL of p; credentials of any characters are
// escaped by url.UserPassword. nil when p is unset or "none".
func ProxyURL(p *config.ProxyConfig) (*url.URL, error) {
	if !p.Enabled() {
		return nil, nil
	}
	scheme := p.Type
	switch scheme {
	case "socks5", "http":
	default:
		return nil, fmt.Errorf("unsupported proxy type %q", p.Type)
	}
	u := &url.URL{Scheme: scheme, Host: p.Addr()}
	if p.Username != "" || p.Password != "" {
		u.User = url.UserPassword(p.Username, p.Password)
	}
	return u, nil
}

// NewClient returns the HTTP client for one account. Connections are pooled
// for the life of the process (sized for many concurrent streams); the client
// has no overall timeout (streams may last long): the relay bounds each call.
func NewClient(p *config.ProxyConfig) (*http.Client, error) {
	pu, err := ProxyURL(p)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if pu != nil {
		t.Proxy = http.ProxyURL(pu)
	}
	return &http.Client{
		Transport: t,
		// Redirects from an API are not followed: the answer goes to the client as is.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}
