package cmdutil

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ccrelay/ccrelay/internal/admin/admintest"
)

func TestAdminFor(t *testing.T) {
	env := func(vals map[string]string) func(string) string { return func(k string) string { return vals[k] } }
	tests := []struct {
		name    string
		server  string
		env     map[string]string
		wantNil bool
		wantErr string
	}{
		{name: "neither flag nor env: local", wantNil: true},
		{name: "flag", server: "http://127.0.0.1:3000", env: map[string]string{EnvAdminKey: "k"}},
		{name: "env", env: map[string]string{EnvServer: "https://relay.example.com/", EnvAdminKey: "k"}},
		{name: "no key", server: "http://127.0.0.1:3000", wantErr: EnvAdminKey},
		{name: "not a URL", server: "127.0.0.1:3000", env: map[string]string{EnvAdminKey: "k"}, wantErr: "give the relay's URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := AdminFor(tt.server, env(tt.env))
			if tt.wantErr != "" {
				var fe *FlagError
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &fe) {
					t.Fatalf("err %v, want a flag error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || (c == nil) != tt.wantNil {
				t.Fatalf("client %v err %v", c, err)
			}
			if c != nil && strings.HasSuffix(c.BaseURL, "/") {
				t.Fatalf("base URL %q ends with /", c.BaseURL)
			}
		})
	}
}

func TestAdminClientErrors(t *testing.T) {
	srv := admintest.Start(t, "a")
	for _, tt := range []struct {
		name, key, path, want string
	}{
		{"wrong key", "wrong-admin-key-0123456789", "accounts", "refused the admin key"},
		{"relay key", admintest.RelayKey, "accounts", "a relay key is not an admin key"},
		{"unknown route", admintest.Key, "nope", "no admin route"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := AdminFor(srv.URL, admintest.Getenv(tt.key))
			if err != nil {
				t.Fatal(err)
			}
			err = c.Do(context.Background(), "GET", tt.path, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), tt.key) {
				t.Fatalf("the key is in the error: %v", err)
			}
		})
	}
	c, _ := AdminFor("http://127.0.0.1:1", admintest.Getenv(admintest.Key))
	if err := c.Do(context.Background(), "GET", "accounts", nil, nil); err == nil || strings.Contains(err.Error(), admintest.Key) {
		t.Fatalf("dead server: %v", err)
	}
}
