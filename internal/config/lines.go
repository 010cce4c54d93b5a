package config

import (
	"regexp"
	"strconv"
	"strings"
)

// lineIndex finds the line a key stands on. BurntSushi/toml keeps key positions
// private, so this scans the text: enough for [table], [[array]] and dotted
// table headers, which is all ccrelay's schema uses.
type lineIndex struct {
	entries    []lineEntry
	arrayIndex int // which [[array]] element checkTable is in; -1 = none
}

type lineEntry struct {
	line  int
	table string // dotted table path the key is in
	elem  int    // index of the enclosing [[array]] element of the top table, -1 if none
	key   string
}

var (
	headerRE = regexp.MustCompile(`^\s*\[(\[)?\s*([^\]]+?)\s*\]`)
	keyRE    = regexp.MustCompile(`^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_-]+)\s*=`)
)

func newLineIndex(src string) *lineIndex {
	li := &lineIndex{arrayIndex: -1}
	table := ""
	elems := map[string]int{}
	elem := -1
	for i, l := range strings.Split(src, "\n") {
		if m := headerRE.FindStringSubmatch(l); m != nil {
			table = strings.ReplaceAll(m[2], " ", "")
			top := strings.Split(table, ".")[0]
			if m[1] == "[" {
				if _, ok := elems[table]; !ok {
					elems[table] = -1
				}
				elems[table]++
				elem = elems[table]
			} else if top != table {
				if n, ok := elems[top]; ok {
					elem = n
				}
			} else {
				elem = -1
			}
			li.entries = append(li.entries, lineEntry{line: i + 1, table: "", elem: -1, key: table})
			continue
		}
		if m := keyRE.FindStringSubmatch(l); m != nil {
			li.entries = append(li.entries, lineEntry{line: i + 1, table: table, elem: elem, key: strings.Trim(m[1], `"'`)})
		}
	}
	return li
}

// keyLine returns the line of the key path kp within the current array element.
func (li *lineIndex) keyLine(kp []string) int {
	table := strings.Join(kp[:len(kp)-1], ".")
	key := kp[len(kp)-1]
	for _, e := range li.entries {
		if e.table == table && e.key == key && (li.arrayIndex < 0 || e.elem == li.arrayIndex || e.elem == -1) {
			return e.line
		}
	}
	// The key may be a table header ([server], [accounts.proxy]).
	full := strings.Join(kp, ".")
	for _, e := range li.entries {
		if e.table == "" && e.key == full {
			return e.line
		}
	}
	return 0
}

var problemKeyRE = regexp.MustCompile(`^([a-z_]+)(?:\[(\d+)\])?(?:\.(.+))?$`)

// lineOfProblemKey maps a displayed key ("accounts[1].api_key", "server.port") to a line.
func (li *lineIndex) lineOfProblemKey(k string) int {
	m := problemKeyRE.FindStringSubmatch(k)
	if m == nil {
		return 0
	}
	kp := []string{m[1]}
	if m[3] != "" {
		kp = append(kp, strings.Split(m[3], ".")...)
	}
	li.arrayIndex = -1
	if m[2] != "" {
		li.arrayIndex, _ = strconv.Atoi(m[2])
		defer func() { li.arrayIndex = -1 }()
		if l := li.keyLine(kp); l > 0 {
			return l
		}
		// Fall back to the [[accounts]] header of that element.
		n := -1
		for _, e := range li.entries {
			if e.table == "" && e.key == m[1] {
				n++
				if n == li.arrayIndex {
					return e.line
				}
			}
		}
		return 0
	}
	if m[3] == "" {
		kp = []string{m[1]}
	}
	return li.keyLine(kp)
}
