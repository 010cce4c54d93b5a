// Package sse reads and writes Server-Sent Events incrementally, with no
// knowledge of any provider. The Parser is fed raw upstream chunks as they
// arrive and calls back once per complete event, so a relay can inspect events
// while passing the bytes on untouched.
package sse

import "bytes"

// Event is one parsed event. Its slices are only valid during the callback.
type Event struct {
	// Name is the event: field ("" when absent, which means "message").
	Name []byte
	// Data is the data: lines joined by "\n".
	Data []byte
	// Raw is the event's exact bytes, including its terminating blank line.
	Raw []byte
}

// Parser splits a byte stream into events. The zero value is ready to use.
// Scanning is linear: an event that arrives in many chunks is not rescanned.
type Parser struct {
	pending []byte // bytes of an event not yet terminated
	scan    int    // offset in pending of the first line not yet scanned
	data    []byte // scratch for multi-line data
	ev      Event  // reused for every callback (no allocation per event)
	// MaxEventBytes bounds a single event (0 = 16 MiB); the oldest bytes of a
	// longer one are dropped so memory stays bounded.
	MaxEventBytes int
}

// Reset readies p for another stream, keeping its buffers (up to 64 KiB
// each) so a pooled parser allocates nothing once warm.
func (p *Parser) Reset() {
	const keep = 64 << 10
	p.pending, p.scan, p.ev = p.pending[:0], 0, Event{}
	p.data = p.data[:0]
	if cap(p.pending) > keep {
		p.pending = nil
	}
	if cap(p.data) > keep {
		p.data = nil
	}
}

// Pending reports how many bytes of an unfinished event are buffered.
func (p *Parser) Pending() int { return len(p.pending) }

// PendingBytes returns the buffered bytes of the unfinished event.
func (p *Parser) PendingBytes() []byte { return p.pending }

// Feed parses chunk and calls fn for each event it completes. fn returning
// false stops parsing and drops whatever of chunk was not delivered yet.
// Line ends may be \n, \r\n or \r.
func (p *Parser) Feed(chunk []byte, fn func(ev *Event) bool) {
	ev := &p.ev
	buf := chunk
	pos := 0
	if len(p.pending) > 0 {
		p.pending = append(p.pending, chunk...)
		buf = p.pending
		pos = p.scan
	}
	start := 0
	for pos < len(buf) {
		j := lineEnd(buf[pos:])
		if j < 0 {
			break // the line is not complete yet
		}
		j += pos
		k := j + 1
		if buf[j] == '\r' {
			if k >= len(buf) {
				break // a \n may follow in the next chunk
			}
			if buf[k] == '\n' {
				k++
			}
		}
		if j == pos { // an empty line ends the event
			p.parseEvent(buf[start:k], ev)
			if !fn(ev) {
				p.pending, p.scan = p.pending[:0], 0
				return
			}
			start = k
		}
		pos = k
	}
	rest := buf[start:]
	max := p.MaxEventBytes
	if max == 0 {
		max = 16 << 20
	}
	scan := pos - start
	if len(rest) > max {
		cut := len(rest) - max
		rest = rest[cut:]
		scan = maxInt(0, scan-cut)
	}
	if len(p.pending) > 0 {
		n := copy(p.pending, rest)
		p.pending = p.pending[:n]
	} else {
		p.pending = append(p.pending[:0], rest...)
	}
	p.scan = scan
}

func (p *Parser) parseEvent(raw []byte, ev *Event) {
	ev.Raw = raw
	ev.Name = nil
	ev.Data = nil
	p.data = p.data[:0]
	lines := 0
	rest := raw
	for len(rest) > 0 {
		j := lineEnd(rest)
		var line []byte
		if j < 0 {
			line, rest = rest, nil
		} else {
			line = rest[:j]
			if rest[j] == '\r' && j+1 < len(rest) && rest[j+1] == '\n' {
				rest = rest[j+2:]
			} else {
				rest = rest[j+1:]
			}
		}
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if c := bytes.IndexByte(line, ':'); c >= 0 {
			field, value = line[:c], line[c+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "event":
			ev.Name = value
		case "data":
			if lines == 0 {
				ev.Data = value
			} else {
				if lines == 1 {
					p.data = append(p.data[:0], ev.Data...)
				}
				p.data = append(p.data, '\n')
				p.data = append(p.data, value...)
				ev.Data = p.data
			}
			lines++
		}
	}
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// lineEnd returns the index of the first '\n' or '\r' in b, or -1. Two
// IndexByte calls (vectorised) beat one IndexAny on SSE's long data lines.
func lineEnd(b []byte) int {
	n := bytes.IndexByte(b, '\n')
	if n < 0 {
		return bytes.IndexByte(b, '\r')
	}
	if r := bytes.IndexByte(b[:n], '\r'); r >= 0 {
		return r
	}
	return n
}
