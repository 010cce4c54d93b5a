package cluster

import (
	"strconv"
	"strings"

	"github.com/ccrelay/ccrelay/internal/store"
	"github.com/ccrelay/ccrelay/internal/usage"
)

// usageSums are the sums of one tuple or group: store.Measures, in order.
type usageSums [store.NumMeasures]int64

// requestsMeasure is the index of the request count in usageSums.
const requestsMeasure = 0

// encode is the sums as a hash value.
func (s *usageSums) encode() string {
	b := make([]byte, 0, 64)
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, v, 10)
	}
	return string(b)
}

// decode reads a hash value; ok is false when it is malformed. Values with
// more sums (a later relay's) keep the first store.NumMeasures.
func decodeSums(v string) (s usageSums, ok bool) {
	for i := range s {
		part, rest, _ := strings.Cut(v, ",")
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil {
			return s, false
		}
		s[i], v = n, rest
	}
	return s, true
}

func (s *usageSums) addSums(o *usageSums) {
	for i := range s {
		s[i] += o[i]
	}
}

// add adds one record's measures.
func (s *usageSums) add(r *usage.Record) {
	for i := range store.Measures {
		s[i] += store.Measures[i].Of(r)
	}
}

// addTo adds sums to a usage row.
func (s *usageSums) addTo(r *store.UsageRow) {
	for i := range store.Measures {
		*store.Measures[i].Field(r) += s[i]
	}
}
