package usage

// KeySpend is one relay key's usage over a span of time (see the store's
// KeySpendSince): what budgets and `keys list` are seeded from.
type KeySpend struct {
	// KeyHash is as in Record.
	KeyHash  string
	Requests int64
	// Tokens sums every kind: input, output, cache writes and reads.
	Tokens int64
	// CostMicros sums the stored cost of the requests whose cost is known;
	// CostUnknown counts the others (they add nothing to budgets).
	CostMicros  int64
	CostUnknown int64
}
