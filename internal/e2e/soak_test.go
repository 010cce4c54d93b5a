package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccrelay/ccrelay/internal/fakeupstream"
)

// TestSoak holds many concurrent streams and a steady rate of plain requests
// against fake upstreams, then checks: no relay-caused error, every request in
// the usage table, memory flat. Bounded: a short run by default (CI), the full
// one (500 streams, 200 req/s, 60 s) with CCRELAY_SOAK=1.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	streams, rate, dur := 100, 50, 6*time.Second
	if os.Getenv("CCRELAY_SOAK") == "1" {
		streams, rate, dur = 500, 200, 60*time.Second
	}
	var fakes []*fakeupstream.Anthropic
	cfg := `api_keys = ["` + relayKey + `"]` + "\n"
	for i := 0; i < 4; i++ {
		// 50 text deltas 20 ms apart: each stream lasts about a second.
		f := &fakeupstream.Anthropic{Text: strings.Repeat("word ", 50), StreamEvents: 50, EventGap: 20 * time.Millisecond}
		f.CountOnly = true // the memory check is about the relay, not the fake's log
		fakes = append(fakes, f)
		cfg += claudeAPIAccount("acct-"+string(rune('a'+i)), upstream(t, f).URL, "k", 100)
	}
	// Generous timeouts: on a shared CI machine a starved scheduler must not
	// be mistaken for a stalled upstream.
	cfg += "\n[server]\nhost = \"127.0.0.1\"\nfirst_byte_timeout_seconds = 60\nidle_timeout_seconds = 60\nresponse_timeout_seconds = 60\ndatabase_path = \"" + t.TempDir() + "/soak.db\"\n"
	r := startRelay(t, cfg)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: streams + rate, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()

	var total, bad atomic.Int64
	var firstErr atomic.Value
	do := func(stream bool, session int) {
		body := `{"model":"m","max_tokens":1,"metadata":{"user_id":"{\"session_id\":\"s-` + itoa(session) + `\"}"},"messages":[{"role":"user","content":"hi"}]`
		if stream {
			body += `,"stream":true`
		}
		req, _ := http.NewRequest("POST", r.URL+"/v1/messages", strings.NewReader(body+"}"))
		req.Header.Set("X-Api-Key", relayKey)
		total.Add(1)
		resp, err := client.Do(req)
		if err != nil {
			bad.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		// A stream must arrive whole: all 50 deltas, then message_stop.
		if resp.StatusCode != 200 || (stream && (!strings.Contains(string(b), "message_stop") || strings.Count(string(b), "event: content_block_delta\n") != 50)) {
			bad.Add(1)
			firstErr.CompareAndSwap(nil, resp.Status+": "+string(b[:min(len(b), 200)]))
		}
	}
	mem := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				do(true, i)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		n := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				n++
				wg.Add(1)
				go func(n int) { defer wg.Done(); do(false, 100000+n) }(n)
			}
		}
	}()
	time.Sleep(dur / 4)
	warm := mem()
	wg.Wait()
	end := mem()
	if bad.Load() > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", bad.Load(), total.Load(), firstErr.Load())
	}
	rows := r.usageRows(int(total.Load()))
	t.Logf("soak: %d requests (%d concurrent streams, %d req/s plain) in %v; heap in use after warm-up %.1f MiB, at end %.1f MiB; %d usage rows",
		total.Load(), streams, rate, dur, float64(warm)/(1<<20), float64(end)/(1<<20), len(rows))
	if end > warm*2 && end-warm > 32<<20 {
		t.Fatalf("memory grew from %d to %d bytes", warm, end)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
