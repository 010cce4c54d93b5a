package relay

import "github.com/ccrelay/ccrelay/internal/routing"

// SetRoutes replaces the routes in force (a config reload); the next
// request reads the new table, requests under way keep the targets they
// got. nil means no routes: the model decides the pool.
func (r *Relay) SetRoutes(t *routing.Table) { r.routes.Store(t) }

// routesTable is the routes in force, read with one atomic load; nil (no
// routes) is a valid table (routing.Table.Targets answers the defaults).
func (r *Relay) routesTable() *routing.Table { return r.routes.Load() }

// Routes returns the routes in force (what the admin API and tests read).
func (r *Relay) Routes() *routing.Table { return r.routesTable() }
