package relay

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// Info is what the relay learned about a request, for the access log.
type Info struct {
	RequestID string
	// ClientAddr is the client's address (the server middleware sets it:
	// X-Forwarded-For believed only from a trusted proxy, else the peer).
	ClientAddr netip.Addr
	// ViaTrustedProxy: ClientAddr came from a trusted proxy's header.
	ViaTrustedProxy bool
	// ClientTLS: the client reached the relay over TLS, on this connection
	// or, through a trusted proxy, as its X-Forwarded-Proto says.
	ClientTLS bool
	Account   string
	Model     string
	Attempts  int
	Status    int
	provider.Usage
}

type infoKey struct{}

// WithInfo returns a context that carries info.
func WithInfo(ctx context.Context, info *Info) context.Context {
	return context.WithValue(ctx, infoKey{}, info)
}

// InfoFrom returns the request's Info, or nil.
func InfoFrom(ctx context.Context) *Info {
	info, _ := ctx.Value(infoKey{}).(*Info)
	return info
}

func requestID(r *http.Request) string {
	if info := InfoFrom(r.Context()); info != nil {
		return info.RequestID
	}
	return ""
}
