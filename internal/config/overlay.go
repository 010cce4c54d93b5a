package config

import (
	"errors"
	"strings"

	"github.com/spf13/viper"
)

// Overridable lists the settings that flags and CCRELAY_* environment
// variables may override, as viper keys, with the environment variables bound
// to each (the short form first).
var Overridable = map[string][]string{
	"server.host":          {"CCRELAY_HOST", "CCRELAY_SERVER_HOST"},
	"server.port":          {"CCRELAY_PORT", "CCRELAY_SERVER_PORT"},
	"server.log_level":     {"CCRELAY_LOG_LEVEL", "CCRELAY_SERVER_LOG_LEVEL"},
	"server.log_format":    {"CCRELAY_LOG_FORMAT", "CCRELAY_SERVER_LOG_FORMAT"},
	"server.database_path": {"CCRELAY_DATABASE_PATH", "CCRELAY_SERVER_DATABASE_PATH"},
	"api_keys":             {"CCRELAY_API_KEYS"},
	"admin_keys":           {"CCRELAY_ADMIN_KEYS"},
	"cluster.redis_url":    {"CCRELAY_REDIS_URL", "CCRELAY_CLUSTER_REDIS_URL"},
}

// NewViper returns a fresh viper instance (never the global one) with the
// environment variables of Overridable bound. The command layer binds its
// flags to the same keys, so flags win over the environment.
func NewViper() *viper.Viper {
	v := viper.New()
	for key, envs := range Overridable {
		_ = v.BindEnv(append([]string{key}, envs...)...)
	}
	return v
}

// ApplyOverrides copies every setting that v has (from a flag or the
// environment) over the file's value, then re-validates.
func (c *Config) ApplyOverrides(v *viper.Viper) error {
	if v == nil {
		return nil
	}
	if v.IsSet("server.host") {
		c.Server.Host = v.GetString("server.host")
	}
	if v.IsSet("server.port") {
		c.Server.Port = v.GetInt("server.port")
	}
	if v.IsSet("server.log_level") {
		c.Server.LogLevel = strings.ToLower(v.GetString("server.log_level"))
	}
	if v.IsSet("server.log_format") {
		c.Server.LogFormat = v.GetString("server.log_format")
	}
	if v.IsSet("server.database_path") {
		c.Server.DatabasePath = v.GetString("server.database_path")
	}
	if v.IsSet("api_keys") {
		var keys []string
		for _, k := range strings.Split(v.GetString("api_keys"), ",") {
			if k = strings.TrimSpace(k); k != "" {
				keys = append(keys, k)
			}
		}
		if len(keys) == 0 {
			// An override that names no key would silently turn auth off.
			return errors.New("CCRELAY_API_KEYS (or the api_keys override) holds no key: give at least one relay key, comma-separated, or unset it")
		}
		c.APIKeys = keys

	}
	if v.IsSet("admin_keys") {
		c.AdminKeys = splitKeys(v.GetString("admin_keys"))
	}
	if v.IsSet("cluster.redis_url") {
		c.Cluster.RedisURL = v.GetString("cluster.redis_url")
	}
	return c.Validate()
}

// splitKeys reads a comma-separated key list from a flag or the environment.
func splitKeys(s string) []string {
	var keys []string
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}
