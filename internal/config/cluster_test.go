package config

import (
	"strings"
	"testing"
)

const oauthAccount = "[[accounts]]\ntype = \"claude-oauth\"\nid = \"c\"\nrefresh_token = \"sk-ant-ort01-x\"\n"

func TestClusterTable(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want ClusterConfig
		errs []string // substrings of the error; nil = valid
	}{
		{name: "absent: off, defaults", src: "", want: ClusterConfig{KeyPrefix: "ccrelay:", LeaseSeconds: 15}},
		{name: "all keys", src: "[cluster]\nredis_url = \"rediss://10.0.0.5:6380/2\"\nkey_prefix = \"relay-eu:\"\nusername = \"relay\"\npassword = \"p@ss:w/rd\"\ntls_ca_file = \"/etc/ccrelay/redis-ca.pem\"\nlease_seconds = 40\n",
			want: ClusterConfig{RedisURL: "rediss://10.0.0.5:6380/2", KeyPrefix: "relay-eu:", Username: "relay", Password: "p@ss:w/rd", TLSCAFile: "/etc/ccrelay/redis-ca.pem", LeaseSeconds: 40}},
		{name: "bad scheme", src: "[cluster]\nredis_url = \"http://h:6379\"\n", errs: []string{"cluster.redis_url", "redis:// or rediss://"}},
		{name: "ca file without tls", src: "[cluster]\nredis_url = \"redis://h:6379\"\ntls_ca_file = \"ca.pem\"\n", errs: []string{"line 3", "cluster.tls_ca_file", "rediss://"}},
		{name: "lease too short", src: "[cluster]\nredis_url = \"redis://h:6379\"\nlease_seconds = 1\n", errs: []string{"line 3", "cluster.lease_seconds", "between 2 and 600"}},
		{name: "lease negative", src: "[cluster]\nlease_seconds = -5\n", errs: []string{"cluster.lease_seconds"}},
		{name: "password line break", src: "[cluster]\nredis_url = \"redis://h:6379\"\npassword = \"a\\r\\nQUIT\"\n", errs: []string{"cluster.password", "line break"}},
		{name: "unknown key", src: "[cluster]\nredis_urls = \"redis://h\"\n", errs: []string{"cluster.redis_urls", "unknown key"}},
		{name: "oauth account with secret", src: "[cluster]\nredis_url = \"redis://h:6379\"\nsecret = \"0123456789abcdef0123\"\n" + oauthAccount,
			want: ClusterConfig{RedisURL: "redis://h:6379", KeyPrefix: "ccrelay:", LeaseSeconds: 15, Secret: "0123456789abcdef0123"}},
		{name: "oauth account without secret", src: "[cluster]\nredis_url = \"redis://h:6379\"\n" + oauthAccount, errs: []string{"cluster.secret", "is required", "encrypted", "openssl rand -hex 32"}},
		{name: "api-key accounts need no secret", src: "[cluster]\nredis_url = \"redis://h:6379\"\n[[accounts]]\ntype = \"claude-api\"\nid = \"k\"\napi_key = \"sk-ant-api03-x\"\n",
			want: ClusterConfig{RedisURL: "redis://h:6379", KeyPrefix: "ccrelay:", LeaseSeconds: 15}},
		{name: "short secret", src: "[cluster]\nredis_url = \"redis://h:6379\"\nsecret = \"QUIT-short\"\n" + oauthAccount, errs: []string{"cluster.secret", "at least 16 characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.src))
			if tt.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Cluster != tt.want {
					t.Fatalf("got %+v\nwant %+v", cfg.Cluster, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error for %q", tt.src)
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "QUIT") {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
}
