package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrNotFound is returned by Find when no config file exists anywhere it looks.
var ErrNotFound = errors.New("no config file found")

// SearchPaths returns the lookup order of PRODUCT.md §2, after --config:
// $CCRELAY_CONFIG, ./config.toml, $XDG_CONFIG_HOME/ccrelay/config.toml
// (~/.config when unset), /etc/ccrelay/config.toml.
func SearchPaths(getenv func(string) string) []string {
	var paths []string
	if p := getenv("CCRELAY_CONFIG"); p != "" {
		paths = append(paths, p)
	}
	paths = append(paths, "config.toml")
	xdg := getenv("XDG_CONFIG_HOME")
	if xdg == "" {
		if home := getenv("HOME"); home != "" {
			xdg = filepath.Join(home, ".config")
		}
	}
	if xdg != "" {
		paths = append(paths, filepath.Join(xdg, "ccrelay", "config.toml"))
	}
	return append(paths, "/etc/ccrelay/config.toml")
}

// Find resolves the config file: explicit (from --config) must exist; otherwise
// the first existing file of SearchPaths, or ErrNotFound.
func Find(explicit string, getenv func(string) string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("config file %s: %w", explicit, err)
		}
		return explicit, nil
	}
	for i, p := range SearchPaths(getenv) {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if i == 0 && getenv("CCRELAY_CONFIG") != "" {
			return "", fmt.Errorf("config file %s (from $CCRELAY_CONFIG): %w", p, err)
		}
	}
	return "", ErrNotFound
}

// LoadFile reads and checks a config file.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.Path = path
		}
		return nil, err
	}
	cfg.Path = path
	return cfg, nil
}

// Parse decodes, defaults and validates TOML config text, reporting every
// problem (syntax, unknown key, wrong type, invalid value) at once.
func Parse(data []byte) (*Config, error) {
	src := string(data)
	var raw map[string]any
	if _, err := toml.Decode(src, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{Problems: []Problem{{Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}}}
		}
		return nil, &Error{Problems: []Problem{{Msg: err.Error()}}}
	}
	lines := newLineIndex(src)
	var problems []Problem
	serverKeys, warn := liftServerAPIKeys(raw, lines, &problems)
	checkTable(raw, reflect.TypeFor[Config](), nil, "", lines, &problems)
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &Error{Problems: problems}
	}
	var cfg Config
	if _, err := toml.Decode(src, &cfg); err != nil {
		return nil, &Error{Problems: []Problem{{Msg: err.Error()}}}
	}
	if warn != nil {
		cfg.APIKeys = serverKeys
		cfg.Warnings = append(cfg.Warnings, *warn)
	}
	var present []map[string]bool
	if accts, ok := raw["accounts"].([]map[string]any); ok {
		for _, a := range accts {
			p := map[string]bool{}
			for k := range a {
				p[k] = true
			}
			present = append(present, p)
		}
	}
	cfg.applyDefaults(present)
	if err := cfg.Validate(); err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			for i := range ce.Problems {
				if ce.Problems[i].Line == 0 {
					ce.Problems[i].Line = lines.lineOfProblemKey(ce.Problems[i].Key)
				}
			}
			sortProblems(ce.Problems)
		}
		return nil, err
	}
	return &cfg, nil
}

// liftServerAPIKeys takes api_keys written inside [server] as the relay keys.
// The original relay's README example put the line there, where the
// original ignored it (and so served every client without a key); the
// writer evidently meant relay keys, and a config written for the original
// must run unchanged. It removes the key from raw (so it is not reported as
// unknown) and returns the keys with a warning that says where the line
// belongs. api_keys in both places is a problem: which one is meant is not
// evident.
func liftServerAPIKeys(raw map[string]any, lines *lineIndex, problems *[]Problem) ([]string, *Problem) {
	srv, ok := raw["server"].(map[string]any)
	if !ok {
		return nil, nil
	}
	v, ok := srv["api_keys"]
	if !ok {
		return nil, nil
	}
	delete(srv, "api_keys")
	kp := []string{"server", "api_keys"}
	line := lines.keyLine(kp)
	if _, top := raw["api_keys"]; top {
		*problems = append(*problems, Problem{Line: line, Key: "server.api_keys", Msg: "api_keys is both at the top level and inside [server]; keep one list of relay keys: move these keys into the top-level api_keys line and delete this one"})
		return nil, nil
	}
	n := len(*problems)
	checkValue(v, reflect.TypeFor[[]string](), kp, "server.api_keys", lines, problems)
	if len(*problems) > n {
		return nil, nil
	}
	var keys []string
	for _, k := range v.([]any) {
		keys = append(keys, k.(string))
	}
	return keys, &Problem{Line: line, Key: "server.api_keys", Msg: "api_keys belongs at the top level of the file, above the first [table] header (TOML puts every key after [server] into [server]); ccrelay uses these keys as the relay keys, but move the line to the top of the file"}
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return a.Line - b.Line })
}

// checkTable compares a decoded TOML table against the struct type t, reporting
// unknown keys and type mismatches. path is the TOML key path (without array
// indexes, as the line index wants it); shown is the key as displayed.
func checkTable(tbl map[string]any, t reflect.Type, path []string, shown string, lines *lineIndex, out *[]Problem) {
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		fields[tag] = f.Type
	}
	keys := make([]string, 0, len(tbl))
	for k := range tbl {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := tbl[k]
		kp := append(slices.Clone(path), k)
		name := k
		if shown != "" {
			name = shown + "." + k
		}
		ft, ok := fields[k]
		if !ok {
			*out = append(*out, Problem{Line: lines.keyLine(kp), Key: name, Msg: unknownKeyMsg(kp)})
			continue
		}
		checkValue(v, ft, kp, name, lines, out)
	}
}

func unknownKeyMsg(kp []string) string {
	if len(kp) == 2 && (kp[1] == "api_keys" || kp[1] == "admin_keys") {
		return fmt.Sprintf("unknown key: %[2]s is inside [%[1]s], where it has no effect (TOML puts every key after a [table] header into that table). Move the %[2]s = [...] line to the top of the file, above the first [table] header", kp[0], kp[1])
	}
	return "unknown key (check the spelling; config.example.toml lists every key)"
}

func checkValue(v any, ft reflect.Type, kp []string, name string, lines *lineIndex, out *[]Problem) {
	if ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	bad := func(want string) {
		*out = append(*out, Problem{Line: lines.keyLine(kp), Key: name, Msg: fmt.Sprintf("must be %s, not %s", want, tomlTypeName(v))})
	}
	switch ft.Kind() {
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("a string")
		}
	case reflect.Int, reflect.Int64:
		if _, ok := v.(int64); !ok {
			bad("an integer")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("true or false")
		}
	case reflect.Float64:
		switch v.(type) {
		case int64, float64:
		default:
			bad("a number")
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a table")
			return
		}
		if et := ft.Elem(); et.Kind() == reflect.Struct {
			for k, mv := range m {
				sub, ok := mv.(map[string]any)
				kp2 := append(slices.Clone(kp), k)
				if !ok {
					*out = append(*out, Problem{Line: lines.keyLine(kp2), Key: name + "." + k, Msg: fmt.Sprintf("must be a table, not %s", tomlTypeName(mv))})
					continue
				}
				checkTable(sub, et, kp2, name+"."+strconv.Quote(k), lines, out)
			}
			return
		}
		for k, mv := range m {
			if _, ok := mv.(string); !ok {
				*out = append(*out, Problem{Line: lines.keyLine(append(slices.Clone(kp), k)), Key: name + "." + k, Msg: fmt.Sprintf("must be a string, not %s", tomlTypeName(mv))})
			}
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a table")
			return
		}
		checkTable(m, ft, kp, name, lines, out)
	case reflect.Slice:
		if ft.Elem().Kind() == reflect.Struct {
			arr, ok := v.([]map[string]any)
			if !ok {
				bad("an array of tables ([[" + strings.Join(kp, ".") + "]])")
				return
			}
			for i, m := range arr {
				lines.arrayIndex = i
				checkTable(m, ft.Elem(), kp, fmt.Sprintf("%s[%d]", name, i), lines, out)
			}
			lines.arrayIndex = -1
			return
		}
		arr, ok := v.([]any)
		if !ok {
			bad("an array")
			return
		}
		for i, e := range arr {
			if _, ok := e.(string); !ok {
				*out = append(*out, Problem{Line: lines.keyLine(kp), Key: fmt.Sprintf("%s[%d]", name, i), Msg: fmt.Sprintf("must be a string, not %s", tomlTypeName(e))})
			}
		}
	}
}

func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("%T", v)
}

// addFunc records one problem of a config key.
type addFunc func(key, format string, args ...any)

// Validate checks values (not types) and reports every problem at once.
func (c *Config) Validate() error {
	var ps []Problem
	add := func(key, format string, args ...any) {
		ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	c.validateServer(add)
	c.validateRelayAndAdminKeys(add)
	c.validateCluster(add)
	c.validateTeam(add)
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || port == "" {
			add("metrics_listen", "must be host:port, e.g. \"127.0.0.1:9464\"")
		}
	}
	c.validateAlerts(add)
	seen := map[string]int{}
	for i := range c.Accounts {
		c.Accounts[i].validate(add, fmt.Sprintf("accounts[%d]", i), i, seen)
	}
	c.validateScheduler(add)
	c.validateRoutes(add)
	if len(ps) == 0 {
		return nil
	}
	return &Error{Path: c.Path, Problems: ps}
}

// validateServer checks [server] and the [session] durations.
func (c *Config) validateServer(add addFunc) {
	s := c.Server
	if s.Port < 1 || s.Port > 65535 {
		add("server.port", "must be between 1 and 65535, not %d", s.Port)
	}
	switch s.LogLevel {
	case "trace", "debug", "info", "warn", "warning", "error":
	default:
		add("server.log_level", "must be one of trace, debug, info, warn, error, not %q", s.LogLevel)
	}
	switch s.LogFormat {
	case "text", "json":
	default:
		add("server.log_format", "must be text or json, not %q", s.LogFormat)
	}
	for key, v := range map[string]int64{
		"server.max_body_bytes": s.MaxBodyBytes, "server.first_byte_timeout_seconds": int64(s.FirstByteTimeoutSeconds),
		"server.response_timeout_seconds": int64(s.ResponseTimeoutSeconds), "server.idle_timeout_seconds": int64(s.IdleTimeoutSeconds),
		"server.body_timeout_seconds": int64(s.BodyTimeoutSeconds), "server.write_timeout_seconds": int64(s.WriteTimeoutSeconds),
		"server.shutdown_timeout_seconds": int64(s.ShutdownTimeoutSeconds), "server.max_attempts": int64(s.MaxAttempts),
		"session.sticky_ttl_seconds": int64(c.Session.StickyTTLSeconds), "session.renewal_threshold_seconds": int64(c.Session.RenewalThresholdSeconds),
		"session.unavailable_cooldown_seconds": int64(c.Session.UnavailableCooldownSeconds), "session.rate_limit_cooldown_seconds": int64(c.Session.RateLimitCooldownSeconds),
		"session.max_rate_limit_cooldown_seconds": int64(c.Session.MaxRateLimitCooldownSeconds), "session.overload_cooldown_seconds": int64(c.Session.OverloadCooldownSeconds),
		"session.error_cooldown_seconds": int64(c.Session.ErrorCooldownSeconds),
	} {
		if v < 0 {
			add(key, "must not be negative, got %d", v)
		}
	}
	if s.UsageRetentionDays < 0 {
		add("server.usage_retention_days", "must not be negative, got %d", s.UsageRetentionDays)
	}
	if s.RequestLogDays < 0 {
		add("server.request_log_days", "must not be negative, got %d", s.RequestLogDays)
	}
	if s.RequestLogMaxRows < 0 {
		add("server.request_log_max_rows", "must not be negative, got %d", s.RequestLogMaxRows)
	}
}

// validateRelayAndAdminKeys checks api_keys and admin_keys (named [[keys]]
// are validateTeam's).
func (c *Config) validateRelayAndAdminKeys(add addFunc) {
	for i, k := range c.APIKeys {
		if strings.TrimSpace(k) == "" {
			add(fmt.Sprintf("api_keys[%d]", i), "is empty; remove it or give it a value")
		}
		if strings.ContainsAny(k, "\r\n") {
			add(fmt.Sprintf("api_keys[%d]", i), "must not contain a line break")
		}
	}
	relayKeys := map[string]bool{}
	for _, k := range c.APIKeys {
		relayKeys[k] = true
	}
	for i, k := range c.AdminKeys {
		key := fmt.Sprintf("admin_keys[%d]", i)
		switch {
		case strings.TrimSpace(k) == "":
			add(key, "is empty; remove it or give it a value")
		case strings.ContainsAny(k, "\r\n"):
			add(key, "must not contain a line break")
		case len(k) < 16:
			add(key, "is too short: use at least 16 characters (e.g. openssl rand -hex 24)")
		case relayKeys[k]:
			add(key, "is also in api_keys; an admin key must differ from every relay key")
		}
	}
}

// validateCluster checks [cluster].
func (c *Config) validateCluster(add addFunc) {
	if c.Cluster.RedisURL != "" {
		if u, err := url.Parse(c.Cluster.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			add("cluster.redis_url", "must be a redis:// or rediss:// URL")
		} else if c.Cluster.TLSCAFile != "" && u.Scheme != "rediss" {
			add("cluster.tls_ca_file", "needs a rediss:// redis_url (TLS)")
		}
	}
	if l := c.Cluster.LeaseSeconds; l != 0 && (l < 2 || l > 600) {
		add("cluster.lease_seconds", "must be between 2 and 600, not %d", c.Cluster.LeaseSeconds)
	}
	if strings.ContainsAny(c.Cluster.Password+c.Cluster.Username, "\r\n") {
		add("cluster.password", "must not contain a line break")
	}
	if sec := c.Cluster.Secret; sec != "" && len(sec) < MinClusterSecret {
		add("cluster.secret", "must be at least %d characters long (generate one with: openssl rand -hex 32)", MinClusterSecret)
	} else if sec == "" && c.Cluster.RedisURL != "" && slices.ContainsFunc(c.Accounts, func(a AccountConfig) bool { return a.IsOAuth() }) {
		add("cluster.secret", "is required when redis_url is set and an account uses OAuth: the tokens stored in Redis are encrypted with it; give every relay of the cluster the same secret (generate one with: openssl rand -hex 32)")
	}
}

// validate checks one account, key being its config path (accounts[i]);
// seen maps the ids met so far to their index.
func (a *AccountConfig) validate(add addFunc, key string, i int, seen map[string]int) {
	if a.ID == "" {
		add(key+".id", "is required")
	} else if j, dup := seen[a.ID]; dup {
		add(key+".id", "duplicate account id %q (also accounts[%d])", a.ID, j)
	} else {
		seen[a.ID] = i
	}
	if strings.ContainsAny(a.ID, " \t\r\n/") {
		add(key+".id", "must not contain spaces, slashes or line breaks")
	}
	switch spec := a.Spec(); {
	case a.Type == "":
		add(key+".type", "is required (one of %s)", strings.Join(AccountTypes, ", "))
	case spec == nil:
		add(key+".type", "unknown account type %q (one of %s)", a.Type, strings.Join(AccountTypes, ", "))
	case a.Secret() == "" && !spec.SecretOptional:
		msg := fmt.Sprintf("is required for a %s account", a.Type)
		if fix := spec.Renew(a.ID); fix != "" {
			msg += " (get one with: " + fix + ")"
		}
		add(key+"."+spec.SecretKey, "%s", msg)
	}
	for fk, v := range map[string]string{"refresh_token": a.RefreshToken, "api_key": a.APIKey, "token": a.Token, "client_id": a.ClientID, "client_secret": a.ClientSecret, "project_id": a.ProjectID, "chatgpt_account_id": a.ChatGPTAccountID} {
		if strings.ContainsAny(v, "\r\n\x00") {
			add(key+"."+fk, "must not contain line breaks or NUL (it would be sent in a header)")
		}
	}
	for fk, v := range map[string]string{"api_url": a.APIURL, "token_url": a.TokenURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(key+"."+fk, "must be an http:// or https:// URL, not %q", v)
		}
	}
	a.validateModels(add, key)
	if p := a.Proxy; p != nil {
		switch p.Type {
		case "socks5", "http", "none":
		case "":
			add(key+".proxy.type", "is required (socks5 or http)")
		default:
			add(key+".proxy.type", "must be socks5 or http, not %q", p.Type)
		}
		if p.Enabled() {
			if p.Host == "" {
				add(key+".proxy.host", "is required")
			}
			if p.Port < 1 || p.Port > 65535 {
				add(key+".proxy.port", "must be between 1 and 65535, not %d", p.Port)
			}
		}
	}
}

func (c *Config) validateAlerts(add func(key, format string, args ...any)) {
	for i := range c.Alerts {
		a := &c.Alerts[i]
		key := fmt.Sprintf("alerts[%d]", i)
		switch a.Format {
		case AlertJSON, AlertSlack, AlertDiscord:
			if a.URL == "" {
				add(key+".url", "is required")
			}
		case AlertTelegram:
			if a.BotToken == "" {
				add(key+".bot_token", "is required for format = \"telegram\"")
			}
			if a.ChatID == "" {
				add(key+".chat_id", "is required for format = \"telegram\"")
			}
		default:
			add(key+".format", "must be json, slack, discord or telegram, not %q", a.Format)
		}
		if a.URL != "" {
			// The URL is a secret (webhook tokens live in it): not echoed.
			if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(key+".url", "must be an http:// or https:// URL")
			}
		}
		if strings.ContainsAny(a.BotToken, "/?#\r\n ") {
			add(key+".bot_token", "must be the bare token BotFather gave")
		}
		for j, e := range a.Events {
			if !slices.Contains(AlertEvents, e) {
				add(fmt.Sprintf("%s.events[%d]", key, j), "unknown event %q (one of %s)", e, strings.Join(AlertEvents, ", "))
			}
		}
		if a.QuietMinutes < 0 {
			add(key+".quiet_minutes", "must not be negative, got %d", a.QuietMinutes)
		}
	}
}

// validateModels checks the keys of types whose accounts list their models
// (openai-compatible): models (required, valid globs), api_url (required),
// model_map, stream_usage and json_schema, which no other type takes.
func (a *AccountConfig) validateModels(add addFunc, key string) {
	spec := a.Spec()
	if spec == nil {
		return
	}
	if spec.URLRequired && a.APIURL == "" {
		add(key+".api_url", "is required for a %s account: the vendor's OpenAI-compatible root, e.g. \"https://api.deepseek.com/v1\" or \"http://localhost:11434/v1\"", a.Type)
	}
	if !spec.ListsModels {
		for fk, set := range map[string]bool{"models": a.Models != nil, "model_map": a.ModelMap != nil, "stream_usage": a.StreamUsage != nil, "json_schema": a.JSONSchema != nil} {
			if set {
				add(key+"."+fk, "is only taken by openai-compatible accounts (a %s account serves its platform's models)", a.Type)
			}
		}
		return
	}
	if len(a.Models) == 0 {
		add(key+".models", "is required for a %s account: the model names it serves (globs), e.g. [\"deepseek-*\"]", a.Type)
	}
	for j, m := range a.Models {
		if _, err := path.Match(m, ""); err != nil || strings.TrimSpace(m) == "" {
			add(key+".models", "entry %d, %q, is not a valid glob (path.Match syntax: *, ?, [a-z])", j+1, m)
		}
	}
	for from, to := range a.ModelMap {
		if from == "" || to == "" || strings.ContainsAny(to, "\r\n\x00") {
			add(key+".model_map", "%q = %q: both names must be non-empty, on one line", from, to)
		}
	}
}
