// Package logging builds ccrelay's slog logger from the config's level and format.
package logging

import (
	"io"
	"log/slog"
	"strings"
)

// LevelTrace is below debug; the original accepts "trace".
const LevelTrace = slog.Level(-8)

// ParseLevel maps trace|debug|info|warn|error to a level (info when unknown).
func ParseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace":
		return LevelTrace
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// New returns a logger writing text or JSON lines to w.
func New(w io.Writer, level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: ParseLevel(level), ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.LevelKey {
			if l, ok := a.Value.Any().(slog.Level); ok && l == LevelTrace {
				a.Value = slog.StringValue("TRACE")
			}
		}
		return a
	}}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
