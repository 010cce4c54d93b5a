package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input gives a config or an error, never a panic; an accepted
// config is valid.
func FuzzParse(f *testing.F) {
	f.Add(originalConfig)
	if b, err := os.ReadFile(filepath.Join("..", "..", "config.example.toml")); err == nil {
		f.Add(string(b))
	}
	f.Add("[server]\napi_keys = [1]\n[[accounts]]\n")
	f.Add("[[accounts]]\ntype=\"claude-api\"\nid=\"a\"\napi_key=\"k\"\n[accounts.proxy]\ntype=\"http\"\nhost=\"h\"\nport=1\n")
	f.Add("[[accounts]]\ntype=\"claude-api\"\nid=\"a\"\napi_key=\"k\"\ngroups=[\"g\"]\n[[routes]]\nmodels=[\"claude-*\",\"x[\"]\nto=[\"claude\",\"g:m\",\"openai:\"]\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := Parse([]byte(src))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
	})
}
