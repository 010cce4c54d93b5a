package cluster

import (
	"strconv"
	"testing"

	"github.com/ccrelay/ccrelay/internal/cluster/clustertest"
)

// BenchmarkPick measures the request path's scheduling cost alone and as a
// cluster member (Observer attached, events flowing to Redis in the
// background): the difference is what the cluster adds per request.
//
//	go test -run '^$' -bench Pick ./internal/cluster/
func BenchmarkPick(b *testing.B) {
	r := clustertest.Start(b)
	for _, mode := range []string{"alone", "cluster"} {
		b.Run(mode, func(b *testing.B) {
			s := newSched(b, "a", "b", "c", "d")
			if mode == "cluster" {
				c, err := New(clusterCfg(r, 15), nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				c.Attach(s)
			}
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = "conv-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := s.Pick("claude", "m", keys[i%len(keys)], nil); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		})
	}
}
