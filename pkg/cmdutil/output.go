package cmdutil

import (
	"encoding/json"
	"io"
	"text/tabwriter"
)

// WriteJSON writes v as indented JSON, the shape every --json flag prints.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// NewTable returns the column writer the commands' tables use; call Flush
// when the rows are written.
func NewTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}
