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

// ApplyClusterQueued tells k how many of its requests wait in the other
// relays' queues now. It changes no admission (each relay serves its own
// queue); Status reports it so the admin API shows the cluster's queue.
func (p *Policy) ApplyClusterQueued(k *Key, queued int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.clusterQueued = max(queued, 0)
}

// LocalQueued returns how many of k's requests wait in this relay's queue.
func (p *Policy) LocalQueued(k *Key) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.waiters)
}

// SetClusterLive records whether the other relays' load is current: true
// after a poll of the cluster succeeded, false while Redis is unreachable
// (the other relays' numbers are then zeros).
func (p *Policy) SetClusterLive(live bool) { p.clusterLive.Store(live) }

// ClusterLive reports whether Status's cluster numbers are current (see
// SetClusterLive); false without a cluster.
func (p *Policy) ClusterLive() bool { return p.clusterLive.Load() }

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
