package convert

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// This file turns a client's JSON schema (a tool's parameters, a structured
// output schema) into the OpenAPI subset Gemini's Schema accepts, and back.
// Tool-schema 400s ("Invalid JSON payload received. Unknown name
// \"additionalProperties\" ... Cannot find field.") are the most common
// failure of Gemini relays, and Code Assist validates more strictly than
// the public API, so the cleaner keeps only what both take (docs/matrix.md):
//
//   - kept: type, description, nullable, enum (string values), properties,
//     required (only names that are properties), items, anyOf, and format
//     where Gemini knows it (string enum/date-time, integer int32/int64,
//     number float/double);
//   - translated: $ref into $defs/definitions inlined (at most
//     geminiMaxRefDepth deep; deeper or unresolvable refs become a plain
//     object); const into a one-value enum; a type array ["string","null"]
//     into type + nullable (several non-null types into anyOf); an
//     anyOf/oneOf with a null branch into nullable, with one branch left
//     into that branch, of string literals only into one enum; allOf merged
//     into one schema; an enum of numbers or booleans into the description;
//     an array without items gets string items, a schema without a type a
//     type (object with properties, array with items, else string);
//   - dropped: every other keyword ($schema, $id, $defs, additionalProperties,
//     patternProperties, unevaluatedProperties, title, default, examples,
//     minimum/maximum and their exclusive forms, min/max lengths and items,
//     pattern, multipleOf, not, if/then/else...), and empty properties.

// Limits that keep a hostile schema bounded.
const (
	geminiMaxRefDepth   = 8
	geminiMaxDepth      = 48
	geminiMaxSchemaNode = 20000
)

// geminiFormats are the formats Gemini's Schema knows, by type.
var geminiFormats = map[string]map[string]bool{
	"string":  {"enum": true, "date-time": true},
	"integer": {"int32": true, "int64": true},
	"number":  {"float": true, "double": true},
}

// schemaCleaner holds one schema's $defs and the node budget.
type schemaCleaner struct {
	root  map[string]any
	nodes int
}

// CleanGeminiSchema rewrites a JSON schema into one Gemini's function
// declarations and responseSchema accept (see the rules above). It returns
// nil for a schema that is not a JSON object, or an object schema without
// properties (Gemini refuses "properties: should be non-empty for OBJECT
// type": such a function is declared without parameters).
func CleanGeminiSchema(schema []byte) []byte {
	var root map[string]any
	if err := unmarshalNumber(schema, &root); err != nil || root == nil {
		return nil
	}
	c := &schemaCleaner{root: root}
	out := c.clean(root, 0, 0)
	if out["type"] == "object" && out["properties"] == nil {
		return nil
	}
	b, err := marshal(out)
	if err != nil {
		return nil
	}
	return b
}

func unmarshalNumber(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// clean returns the Gemini form of the schema node n.
func (c *schemaCleaner) clean(n any, depth, refDepth int) map[string]any {
	c.nodes++
	m, ok := n.(map[string]any)
	if !ok || depth > geminiMaxDepth || c.nodes > geminiMaxSchemaNode {
		return map[string]any{"type": "string"}
	}
	if ref, ok := m["$ref"].(string); ok {
		return c.ref(m, ref, depth, refDepth)
	}
	out := map[string]any{}
	if d, ok := m["description"].(string); ok && d != "" {
		out["description"] = d
	}
	if all, ok := m["allOf"].([]any); ok {
		for _, v := range all {
			mergeSchema(out, c.clean(v, depth+1, refDepth))
		}
	}
	nullable := m["nullable"] == true
	types := schemaTypes(m["type"])
	if len(types) > 0 {
		kept := types[:0]
		for _, t := range types {
			if t == "null" {
				nullable = true
			} else {
				kept = append(kept, t)
			}
		}
		types = kept
	}
	switch {
	case len(types) == 1:
		out["type"] = types[0]
	case len(types) > 1:
		var variants []any
		for _, t := range types {
			v := map[string]any{}
			for k, val := range m {
				v[k] = val
			}
			v["type"] = t
			variants = append(variants, c.clean(v, depth+1, refDepth))
		}
		out["anyOf"] = variants
		if nullable {
			out["nullable"] = true
		}
		return out
	}
	c.body(out, m, depth, refDepth)
	if branches, ok := firstArray(m, "anyOf", "oneOf"); ok {
		nullable = c.union(out, branches, depth, refDepth) || nullable
	}
	c.enum(out, m)
	fillType(out)
	if nullable {
		out["nullable"] = true
	}
	return out
}

// ref inlines a $ref, with the node's own description over the target's.
func (c *schemaCleaner) ref(m map[string]any, ref string, depth, refDepth int) map[string]any {
	target := c.resolve(ref)
	var out map[string]any
	if target == nil || refDepth >= geminiMaxRefDepth {
		out = map[string]any{"type": "object"}
	} else {
		out = c.clean(target, depth+1, refDepth+1)
	}
	if d, ok := m["description"].(string); ok && d != "" {
		out["description"] = d
	}
	if m["nullable"] == true {
		out["nullable"] = true
	}
	return out
}

// resolve finds a local ref ("#", "#/$defs/X", "#/definitions/X", any
// JSON pointer into the root).
func (c *schemaCleaner) resolve(ref string) any {
	rest, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil
	}
	var cur any = c.root
	for _, tok := range strings.Split(strings.TrimPrefix(rest, "/"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[tok]; !ok {
			return nil
		}
	}
	return cur
}

// body copies properties, required, items and format.
func (c *schemaCleaner) body(out, m map[string]any, depth, refDepth int) {
	if props, ok := m["properties"].(map[string]any); ok && len(props) > 0 {
		cp := make(map[string]any, len(props))
		for k, v := range props {
			cp[k] = c.clean(v, depth+1, refDepth)
		}
		if prev, ok := out["properties"].(map[string]any); ok {
			for k, v := range cp {
				prev[k] = v
			}
		} else {
			out["properties"] = cp
		}
	}
	if req, ok := m["required"].([]any); ok {
		out["required"] = appendRequired(out["required"], req)
	}
	switch items := m["items"].(type) {
	case map[string]any:
		out["items"] = c.clean(items, depth+1, refDepth)
	case []any: // a tuple: Gemini has one item schema
		if len(items) > 0 {
			out["items"] = c.clean(items[0], depth+1, refDepth)
		}
	}
	if f, ok := m["format"].(string); ok {
		if t, _ := out["type"].(string); geminiFormats[t][f] {
			out["format"] = f
		}
	}
}

func appendRequired(prev any, req []any) []any {
	have, _ := prev.([]any)
	for _, r := range req {
		if s, ok := r.(string); ok {
			have = append(have, s)
		}
	}
	return have
}

// union folds anyOf/oneOf branches into out: it reports whether a null
// branch made the node nullable.
func (c *schemaCleaner) union(out map[string]any, branches []any, depth, refDepth int) bool {
	nullable := false
	var kept []map[string]any
	for _, b := range branches {
		if bm, ok := b.(map[string]any); ok && (bm["type"] == "null" || (len(bm) == 1 && bm["const"] == nil && hasKey(bm, "const"))) {
			nullable = true
			continue
		}
		kept = append(kept, c.clean(b, depth+1, refDepth))
	}
	switch {
	case len(kept) == 0:
	case len(kept) == 1:
		desc := out["description"]
		mergeSchema(out, kept[0])
		if desc != nil {
			out["description"] = desc
		}
	case allStringEnums(kept):
		var vals []any
		for _, k := range kept {
			vals = append(vals, k["enum"].([]any)...)
		}
		out["type"], out["enum"] = "string", vals
	default:
		anyOf := make([]any, len(kept))
		for i, k := range kept {
			anyOf[i] = k
		}
		out["anyOf"] = anyOf
		delete(out, "type")
	}
	return nullable
}

func hasKey(m map[string]any, k string) bool { _, ok := m[k]; return ok }

func allStringEnums(ms []map[string]any) bool {
	for _, m := range ms {
		if _, ok := m["enum"].([]any); !ok || m["type"] != "string" || len(m) != 2 {
			return false
		}
	}
	return true
}

// enum writes const and enum: string values stay an enum; numbers and
// booleans, which Gemini's enum cannot hold, go into the description.
func (c *schemaCleaner) enum(out, m map[string]any) {
	var vals []any
	if e, ok := m["enum"].([]any); ok {
		vals = e
	} else if hasKey(m, "const") {
		vals = []any{m["const"]}
	} else {
		return
	}
	var strs []any
	var shown []string
	for _, v := range vals {
		switch v := v.(type) {
		case nil:
			out["nullable"] = true
		case string:
			strs = append(strs, v)
			shown = append(shown, v)
		default:
			b, _ := json.Marshal(v)
			shown = append(shown, string(b))
		}
	}
	t, _ := out["type"].(string)
	if (t == "" || t == "string") && len(strs) == len(shown) && len(strs) > 0 {
		out["type"], out["enum"] = "string", strs
		return
	}
	if len(shown) > 0 {
		note := "Allowed values: " + strings.Join(shown, ", ") + "."
		if d, _ := out["description"].(string); d != "" {
			note = d + " (" + note + ")"
		}
		out["description"] = note
	}
}

// fillType gives a typeless schema a type, and an array its items.
func fillType(out map[string]any) {
	if out["anyOf"] != nil {
		return
	}
	if out["type"] == nil {
		switch {
		case out["properties"] != nil:
			out["type"] = "object"
		case out["items"] != nil:
			out["type"] = "array"
		default:
			out["type"] = "string"
		}
	}
	if out["type"] == "array" && out["items"] == nil {
		out["items"] = map[string]any{"type": "string"}
	}
	if out["type"] != "object" {
		delete(out, "properties")
		delete(out, "required")
		return
	}
	props, _ := out["properties"].(map[string]any)
	req, _ := out["required"].([]any)
	var kept []any
	seen := map[string]bool{}
	for _, r := range req {
		if s := r.(string); props[s] != nil && !seen[s] {
			seen[s] = true
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		delete(out, "required")
	} else {
		out["required"] = kept
	}
}

// mergeSchema folds src into dst (allOf, a single anyOf branch).
func mergeSchema(dst, src map[string]any) {
	for k, v := range src {
		switch k {
		case "properties":
			p, _ := dst["properties"].(map[string]any)
			if p == nil {
				p = map[string]any{}
				dst["properties"] = p
			}
			for name, s := range v.(map[string]any) {
				p[name] = s
			}
		case "required":
			dst["required"] = appendRequired(dst["required"], v.([]any))
		default:
			if _, ok := dst[k]; !ok || k != "description" {
				dst[k] = v
			}
		}
	}
}

func schemaTypes(t any) []string {
	switch t := t.(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func firstArray(m map[string]any, keys ...string) ([]any, bool) {
	for _, k := range keys {
		if a, ok := m[k].([]any); ok && len(a) > 0 {
			return a, true
		}
	}
	return nil, false
}

// geminiSchemaToJSON turns a schema in Gemini's OpenAPI form (the
// GenAI SDK's Type enum in capitals, nullable) into JSON schema for the
// other dialects' upstreams: types in lower case, nullable:true as a type
// array with "null", propertyOrdering, example and format "enum" dropped.
// Anything that is not a JSON object comes back unchanged.
func geminiSchemaToJSON(schema []byte) []byte {
	var root map[string]any
	if err := unmarshalNumber(schema, &root); err != nil || root == nil {
		return schema
	}
	b, err := marshal(openAPIToJSON(root, 0))
	if err != nil {
		return schema
	}
	return b
}

func openAPIToJSON(n any, depth int) any {
	switch v := n.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = openAPIToJSON(e, depth+1)
		}
		return out
	case map[string]any:
		if depth > geminiMaxDepth {
			return map[string]any{}
		}
		out := make(map[string]any, len(v))
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch k {
			case "nullable", "propertyOrdering", "example":
			case "format":
				if v[k] != "enum" { // Gemini's marker for an enum string
					out[k] = v[k]
				}
			case "type":
				if s, ok := v[k].(string); ok {
					out[k] = strings.ToLower(s)
				} else {
					out[k] = v[k]
				}
			case "properties":
				if props, ok := v[k].(map[string]any); ok {
					cp := make(map[string]any, len(props))
					for name, p := range props {
						cp[name] = openAPIToJSON(p, depth+1)
					}
					out[k] = cp
				} else {
					out[k] = v[k]
				}
			case "items", "anyOf":
				out[k] = openAPIToJSON(v[k], depth+1)
			default:
				out[k] = v[k]
			}
		}
		if v["nullable"] == true {
			if t, ok := out["type"].(string); ok && t != "" {
				out["type"] = []any{t, "null"}
			}
		}
		return out
	}
	return n
}
