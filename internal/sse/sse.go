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
type Parser struct {
	pending []byte // bytes of an event not yet terminated
	data    []byte // scratch for multi-line data
	// MaxEventBytes bounds a single event (0 = 16 MiB); a longer one is
	// delivered truncated as Raw-only so memory stays bounded.
	MaxEventBytes int
}

// Pending reports how many bytes of an unfinished event are buffered.
func (p *Parser) Pending() int { return len(p.pending) }

// PendingBytes returns the buffered bytes of the unfinished event.
func (p *Parser) PendingBytes() []byte { return p.pending }

// Feed parses chunk and calls fn for each event it completes. fn returning
// false stops parsing; Feed then returns the number of bytes of chunk consumed
// up to and including the last delivered event (the rest is not buffered).
func (p *Parser) Feed(chunk []byte, fn func(ev *Event) bool) int {
	var ev Event
	buf := chunk
	usingPending := len(p.pending) > 0
	if usingPending {
		p.pending = append(p.pending, chunk...)
		buf = p.pending
	}
	start := 0
	consumedFromChunk := 0
	for {
		end, next := eventEnd(buf, start)
		if end < 0 {
			break
		}
		p.parseEvent(buf[start:next], &ev)
		cont := fn(&ev)
		start = next
		if usingPending {
			consumedFromChunk = next - (len(buf) - len(chunk))
		} else {
			consumedFromChunk = next
		}
		if !cont {
			p.pending = p.pending[:0]
			if consumedFromChunk < 0 {
				consumedFromChunk = 0
			}
			return consumedFromChunk
		}
	}
	rest := buf[start:]
	max := p.MaxEventBytes
	if max == 0 {
		max = 16 << 20
	}
	if len(rest) > max {
		rest = rest[len(rest)-max:]
	}
	if usingPending {
		n := copy(p.pending, rest)
		p.pending = p.pending[:n]
	} else {
		p.pending = append(p.pending[:0], rest...)
	}
	return len(chunk)
}

// eventEnd finds the blank line that ends the event starting at start. It
// returns the index where the terminator begins and the index just past it,
// or -1 when the event is not complete yet. Line ends may be \n, \r\n or \r.
func eventEnd(b []byte, start int) (int, int) {
	i := start
	for i < len(b) {
		j := bytes.IndexAny(b[i:], "\r\n")
		if j < 0 {
			return -1, -1
		}
		j += i
		// end of a line at j; its terminator length:
		k := j + 1
		if b[j] == '\r' {
			if k >= len(b) {
				return -1, -1 // need to see whether \n follows
			}
			if b[k] == '\n' {
				k++
			}
		}
		// Is the next line empty?
		if k < len(b) && (b[k] == '\n' || b[k] == '\r') {
			m := k + 1
			if b[k] == '\r' {
				if m >= len(b) {
					return -1, -1
				}
				if b[m] == '\n' {
					m++
				}
			}
			return j, m
		}
		if k >= len(b) {
			return -1, -1
		}
		if j == start {
			// A blank line right at the start (stray separator): skip it.
			return j, k
		}
		i = k
	}
	return -1, -1
}

func (p *Parser) parseEvent(raw []byte, ev *Event) {
	ev.Raw = raw
	ev.Name = nil
	ev.Data = nil
	p.data = p.data[:0]
	lines := 0
	rest := raw
	for len(rest) > 0 {
		j := bytes.IndexAny(rest, "\r\n")
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

// AppendEvent appends a complete event ("event: name\ndata: data\n\n"; no
// event line when name is empty) to dst. data must not contain line breaks
// (compact JSON never does).
func AppendEvent(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	dst = append(dst, "data: "...)
	dst = append(dst, data...)
	return append(dst, '\n', '\n')
}
