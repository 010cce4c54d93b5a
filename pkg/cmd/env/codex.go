package env

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ccrelay/ccrelay/internal/fsutil"
	"github.com/ccrelay/ccrelay/internal/tomledit"
)

// codexProviderID is the model provider ccrelay adds to Codex's config.
const codexProviderID = "ccrelay"

// codexKeyEnv is the environment variable Codex reads the relay key from.
const codexKeyEnv = "CCRELAY_API_KEY"

// codexProvider returns the [model_providers.ccrelay] keys, in file order.
// Codex's built-in "openai" provider ignores OPENAI_BASE_URL and TOML
// overrides, so a custom provider is the way to point it at the relay; it
// appends "/responses" to base_url and sends the env_key variable's value as
// "Authorization: Bearer".
func codexProvider(base string) [][2]string {
	return [][2]string{
		{"name", "ccrelay"},
		{"base_url", base + "/v1"},
		{"env_key", codexKeyEnv},
		{"wire_api", "responses"},
	}
}

// codexLines are the config.toml lines, for display.
func codexLines(base string) []string {
	lines := []string{`model_provider = "` + codexProviderID + `"`, "", "[model_providers." + codexProviderID + "]"}
	for _, kv := range codexProvider(base) {
		lines = append(lines, kv[0]+" = "+tomlString(kv[1]))
	}
	return lines
}

// codexConfigPath is $CODEX_HOME/config.toml, else ~/.codex/config.toml.
func codexConfigPath(getenv func(string) string, home func() (string, error)) (string, error) {
	if dir := getenv("CODEX_HOME"); dir != "" {
		return filepath.Join(dir, "config.toml"), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("find the home directory for ~/.codex/config.toml (set CODEX_HOME): %w", err)
	}
	return filepath.Join(h, ".codex", "config.toml"), nil
}

// writeCodexConfig sets model_provider and [model_providers.ccrelay] in the
// Codex config file at path, keeping everything else byte for byte, and
// writes it atomically. It returns what it did, for the user.
func writeCodexConfig(path, base string) (string, error) {
	data, perm, err := readClientFile(path, "Codex config")
	if err != nil {
		return "", err
	}
	out, prev, err := updateCodexConfig(string(data), base)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if strings.TrimRight(out, "\r\n") == strings.TrimRight(string(data), "\r\n") {
		return fmt.Sprintf("%s already uses the ccrelay provider at %s/v1; left unchanged", path, base), nil
	}
	if err := fsutil.WriteFileAtomic(path, []byte(out), perm); err != nil {
		return "", fmt.Errorf("write Codex config: %w", err)
	}
	msg := fmt.Sprintf("wrote model_provider = %q and [model_providers.%s] (base_url %s/v1) to %s", codexProviderID, codexProviderID, base, path)
	if prev != "" && prev != codexProviderID {
		msg += fmt.Sprintf("; model_provider was %q (set it back to switch Codex away from the relay)", prev)
	}
	if w := codexProfileOverride(out); w != "" {
		msg += "\nwarning: " + w
	}
	return msg, nil
}

// updateCodexConfig edits Codex config text: the top-level model_provider
// becomes "ccrelay" and the [model_providers.ccrelay] table gets name,
// base_url, env_key and wire_api. Other lines, comments included, are kept
// as they are; other keys a user added to that table stay. The result is
// decoded and compared with the input so that nothing else can have changed.
// prev is the model_provider before the edit ("" when unset).
func updateCodexConfig(src, base string) (out, prev string, err error) {
	var before map[string]any
	if _, err := toml.Decode(src, &before); err != nil {
		return "", "", fmt.Errorf("not valid TOML, so ccrelay will not edit it (%v); fix it, or add the lines that 'ccrelay env codex' prints by hand", err)
	}
	prev, _ = before["model_provider"].(string)
	provider := codexProvider(base)
	for _, kv := range provider {
		if _, err := tomledit.Quote(kv[1]); err != nil {
			return "", "", fmt.Errorf("%s: %w", kv[0], err)
		}
	}
	eol := "\n"
	if strings.Contains(src, "\r\n") {
		eol = "\r\n"
	}
	if src != "" && !strings.HasSuffix(src, "\n") {
		src += eol
	}
	stmts, err := tomledit.Scan(src)
	if err != nil {
		return "", "", err
	}
	at, err := locateCodex(stmts, before)
	if err != nil {
		return "", "", err
	}
	e := codexEdits{replace: map[int]string{}, insertAfter: map[int][]string{}, insertBefore: map[int][]string{}}
	e.setModelProvider(at, stmts, src, eol)
	e.setProviderTable(at, provider, len(stmts) > 0, eol)
	text := e.apply(src, stmts, eol)
	if err := verifyCodexEdit(before, text, base); err != nil {
		return "", "", err
	}
	return text, prev, nil
}

// codexLayout is where things are in a Codex config: the first table
// header, the top-level model_provider and the last top-level key, the
// ccrelay table's header and its keys (statement indexes, -1 for none).
type codexLayout struct {
	firstHeader, topKey, lastTopKey, header int
	tableKeys                               map[string]int
}

// locateCodex finds the statements updateCodexConfig edits.
func locateCodex(stmts []tomledit.Stmt, before map[string]any) (codexLayout, error) {
	at := codexLayout{firstHeader: -1, topKey: -1, lastTopKey: -1, header: -1, tableKeys: map[string]int{}}
	table := []string{"model_providers", codexProviderID}
	var current []string
	inTop := true
	for i, st := range stmts {
		switch st.Kind {
		case tomledit.Header:
			if at.firstHeader < 0 {
				at.firstHeader = i
			}
			inTop = false
			current = st.Key
			if !st.Array && slices.Equal(st.Key, table) {
				if at.header >= 0 {
					return at, fmt.Errorf("[model_providers.%s] appears twice", codexProviderID)
				}
				at.header = i
			}
		case tomledit.KeyVal:
			if inTop {
				at.lastTopKey = i
				if slices.Equal(st.Key, []string{"model_provider"}) {
					at.topKey = i
				}
			}
			if !inTop && slices.Equal(current, table) && len(st.Key) == 1 {
				at.tableKeys[st.Key[0]] = i
			}
		}
	}
	if at.header < 0 {
		if mp, ok := before["model_providers"].(map[string]any); ok && mp[codexProviderID] != nil {
			return at, fmt.Errorf("model_providers.%s is defined in a form ccrelay cannot edit (a dotted key or an inline table); replace it with the [model_providers.%s] lines that 'ccrelay env codex' prints", codexProviderID, codexProviderID)
		}
	}
	return at, nil
}

// codexEdits are the edits to a Codex config, keyed by statement index.
type codexEdits struct {
	replace      map[int]string // statement -> replacement line
	insertAfter  map[int][]string
	insertBefore map[int][]string
	appendix     []string
}

// setModelProvider sets the top-level model_provider: in place, beside the
// other top-level settings, above the first table, or at the end.
func (e *codexEdits) setModelProvider(at codexLayout, stmts []tomledit.Stmt, src, eol string) {
	mpLine := `model_provider = ` + tomlString(codexProviderID) + eol
	switch {
	case at.topKey >= 0:
		e.replace[at.topKey] = mpLine
	case at.lastTopKey >= 0:
		e.insertAfter[at.lastTopKey] = append(e.insertAfter[at.lastTopKey], mpLine)
	case at.firstHeader >= 0:
		// Above the first table and the comments that introduce it, unless
		// those comments open the file.
		pos := at.firstHeader
		for pos > 0 && stmts[pos-1].Kind == tomledit.Blank && !stmts[pos-1].EmptyLine(src) {
			pos--
		}
		if pos == 0 {
			pos = at.firstHeader
		}
		e.insertBefore[pos] = []string{mpLine, eol}
	default:
		e.appendix = append(e.appendix, mpLine)
	}
}

// setProviderTable writes the provider's keys into its table, or appends
// the table.
func (e *codexEdits) setProviderTable(at codexLayout, provider [][2]string, nonEmpty bool, eol string) {
	if at.header >= 0 {
		var missing []string
		for _, kv := range provider {
			line := kv[0] + " = " + tomlString(kv[1]) + eol
			if i, ok := at.tableKeys[kv[0]]; ok {
				e.replace[i] = line
			} else {
				missing = append(missing, line)
			}
		}
		e.insertAfter[at.header] = append(e.insertAfter[at.header], missing...)
		return
	}
	block := []string{"[model_providers." + codexProviderID + "]" + eol}
	for _, kv := range provider {
		block = append(block, kv[0]+" = "+tomlString(kv[1])+eol)
	}
	if len(e.appendix) > 0 || nonEmpty {
		block = append([]string{eol}, block...)
	}
	e.appendix = append(e.appendix, block...)
}

// apply builds the new text.
func (e *codexEdits) apply(src string, stmts []tomledit.Stmt, eol string) string {
	var b strings.Builder
	if len(stmts) > 0 {
		b.WriteString(src[:stmts[0].Start]) // a byte-order mark
	}
	for i, st := range stmts {
		for _, l := range e.insertBefore[i] {
			b.WriteString(l)
		}
		if r, ok := e.replace[i]; ok {
			// Keep a trailing comment of the replaced line out: the value it
			// described is gone. Everything after the statement stays.
			b.WriteString(st.Indent(src) + r)
		} else {
			b.WriteString(src[st.Start:st.End])
		}
		for _, l := range e.insertAfter[i] {
			b.WriteString(l)
		}
	}
	text := b.String()
	appendix := e.appendix
	if len(appendix) > 0 {
		// A file whose last statement ends with blank lines needs no extra one.
		if strings.HasSuffix(text, eol+eol) && appendix[0] == eol {
			appendix = appendix[1:]
		}
		text += strings.Join(appendix, "")
	}
	return text
}

// verifyCodexEdit decodes the edited text and checks that it says what was
// meant and that nothing else changed.
func verifyCodexEdit(before map[string]any, text, base string) error {
	var after map[string]any
	if _, err := toml.Decode(text, &after); err != nil {
		return fmt.Errorf("the edited file would not be valid TOML (%v); add the lines that 'ccrelay env codex' prints by hand", err)
	}
	if after["model_provider"] != codexProviderID {
		return fmt.Errorf("could not set model_provider; add the lines that 'ccrelay env codex' prints by hand")
	}
	mpAfter, _ := after["model_providers"].(map[string]any)
	got, _ := mpAfter[codexProviderID].(map[string]any)
	for _, kv := range codexProvider(base) {
		if got[kv[0]] != kv[1] {
			return fmt.Errorf("could not set model_providers.%s.%s; add the lines that 'ccrelay env codex' prints by hand", codexProviderID, kv[0])
		}
	}
	strip := func(doc map[string]any) map[string]any {
		c := maps.Clone(doc)
		delete(c, "model_provider")
		if mp, ok := c["model_providers"].(map[string]any); ok {
			mp = maps.Clone(mp)
			if p, ok := mp[codexProviderID].(map[string]any); ok {
				p = maps.Clone(p)
				for _, kv := range codexProvider(base) {
					delete(p, kv[0])
				}
				if len(p) == 0 {
					delete(mp, codexProviderID)
				} else {
					mp[codexProviderID] = p
				}
			}
			if len(mp) == 0 {
				delete(c, "model_providers")
			} else {
				c["model_providers"] = mp
			}
		}
		return c
	}
	if !reflect.DeepEqual(strip(before), strip(after)) {
		return fmt.Errorf("editing would change other settings; add the lines that 'ccrelay env codex' prints by hand")
	}
	return nil
}

// codexProfileOverride warns when the active profile sets its own
// model_provider, which wins over the top-level one.
func codexProfileOverride(text string) string {
	var doc struct {
		Profile  string                    `toml:"profile"`
		Profiles map[string]map[string]any `toml:"profiles"`
	}
	if _, err := toml.Decode(text, &doc); err != nil || doc.Profile == "" {
		return ""
	}
	if mp, ok := doc.Profiles[doc.Profile]["model_provider"].(string); ok && mp != codexProviderID {
		return fmt.Sprintf("the active profile %q sets model_provider = %q, which overrides the top-level setting; change it there or run codex with another --profile", doc.Profile, mp)
	}
	return ""
}

// tomlString renders s as a TOML basic string for display. The base URL
// is valid UTF-8 (parseBaseURL and the TOML config guarantee it), so the
// replacement never happens in practice; writes use tomledit.Quote and
// report its error.
func tomlString(s string) string {
	q, err := tomledit.Quote(s)
	if err != nil {
		q, _ = tomledit.Quote(strings.ToValidUTF8(s, "\uFFFD"))
	}
	return q
}

// readClientFile reads a client's config file that env is about to rewrite:
// its bytes (nil when it does not exist yet, its directory then created
// private) and the mode to keep (0600 for a new file).
func readClientFile(path, what string) ([]byte, os.FileMode, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, 0, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		return nil, 0o600, nil
	case err != nil:
		return nil, 0, fmt.Errorf("read %s: %w", what, err)
	}
	perm := os.FileMode(0o600)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	return data, perm, nil
}
