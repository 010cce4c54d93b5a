package main

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/provider/anthropic"
)

func TestBodies(t *testing.T) {
	tests := []struct {
		name     string
		bodies   [][]byte
		min, max int
		stream   bool
	}{
		{"small", smallBodies(3, false), 4000, 4200, false},
		{"small stream", smallBodies(3, true), 4000, 4200, true},
		{"claude code", claudeCodeBodies(3, false), 100<<10 - 200, 100<<10 + 200, false},
		{"claude code stream", claudeCodeBodies(3, true), 100<<10 - 200, 100<<10 + 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, b := range tt.bodies {
				if !json.Valid(b) {
					t.Fatalf("invalid JSON: %.200s", b)
				}
				if len(b) < tt.min || len(b) > tt.max {
					t.Errorf("size %d, want %d..%d", len(b), tt.min, tt.max)
				}
				if got := gjson.GetBytes(b, "stream").Bool(); got != tt.stream {
					t.Errorf("stream = %v", got)
				}
				key := anthropic.SessionKey(b, nil)
				if key == "" || seen[key] {
					t.Errorf("session key %q empty or repeated", key)
				}
				seen[key] = true
			}
		})
	}
}
