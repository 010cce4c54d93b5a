package policy

// Cluster load: what the other relays of a cluster do with a key right now.
// The cluster's poller (internal/cluster, keys.go) reads Redis about once a
// second and hands each key the other relays' numbers; Admit counts them
// against the key's rpm and concurrency, so the limits hold across relays up
// to one poll's lag.

// LoadKeys returns the keys with an rpm or concurrency limit (the keys whose
// load a cluster shares).
func (p *Policy) LoadKeys() []*Key {
	var out []*Key
	for _, k := range p.tab.Load().keys {
		if k.rpm > 0 || k.conc > 0 {
			out = append(out, k)
		}
	}
	return out
}

// LocalInFlight returns how many of k's requests this relay holds in flight.
func (p *Policy) LocalInFlight(k *Key) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.inUse
}

// ApplyClusterLoad tells k what the other relays of the cluster do with it:
// recent is the requests they admitted in the last minute, inFlight the
// requests they hold in flight now. Admit counts recent against the key's
// rpm and inFlight against its concurrency; a drop in inFlight hands the
// freed slots to this relay's waiters, in FIFO order. Zeros make the key's
// limits local again (Redis unreachable).
func (p *Policy) ApplyClusterLoad(k *Key, recent, inFlight int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.clusterRecent, k.clusterInFlight = max(recent, 0), max(inFlight, 0)
	k.grant()
}

// ClusterLoad returns what ApplyClusterLoad last told k.
func (p *Policy) ClusterLoad(k *Key) (recent, inFlight int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.clusterRecent, k.clusterInFlight
}

// grant hands free concurrency slots to the waiters, first come first
// served: a slot is free while this relay's and the other relays' requests
// in flight stay under the limit. Called with k.mu held.
func (k *Key) grant() { k.wakeLocked() }
