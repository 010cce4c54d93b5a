package cmdutil

import (
	"net"
	"strconv"
	"strings"
)

// LocalBaseURL is the http:// base URL a client on this machine uses to
// reach a relay listening on host:port: an unspecified listen address
// (0.0.0.0, ::, "") is reached on 127.0.0.1 (Go listens on both stacks).
func LocalBaseURL(host string, port int) string {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if ip := net.ParseIP(h); h == "" || (ip != nil && ip.IsUnspecified()) {
		h = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(h, strconv.Itoa(port))
}

// DashboardURL is where the dashboard of a relay listening on host:port
// is opened from this machine.
func DashboardURL(host string, port int) string {
	return LocalBaseURL(host, port) + "/dashboard"
}

// AppliesLive is what a command that edits the config file says about a
// running relay: `ccrelay serve` watches its file (and reloads on SIGHUP),
// and accounts, relay keys, prices, models, sessions and alerts change live.
const AppliesLive = "A running 'ccrelay serve' on this file applies it within seconds (it watches the file; SIGHUP also reloads)"
