package relay

import (
	"net/http"
	"strings"
)

// route is one row of the relay's route table: a path, the dialect a client
// on it speaks, its metric labels and its handler. Handler registers the
// rows on the mux, errors raised outside a handler (DialectError, the 404)
// take the dialect of the row a path falls in, and metrics label requests
// by it (MetricLabels): adding a route is adding a row.
//
// The dialect is the client's side only. The pools that serve a request
// are its targets (targets.go plan); a target whose accounts speak the
// route's dialect is served by the route's passthrough adapter, byte for
// byte, any other by a converting adapter (matrix.go).
type route struct {
	// method is the HTTP method; "" takes every method (the handler answers
	// the wrong ones in its dialect).
	method string
	// path is an exact path, or a subtree when it ends in "/".
	path string
	// suffix narrows a subtree row to the paths that end with it (the
	// Gemini methods, which ServeMux patterns cannot tell apart).
	suffix  string
	dialect dialect
	// metric and platform label ccrelay_requests_total.
	metric, platform string
	// handle serves the row; nil for rows that only give a subtree its
	// dialect and labels (a path there no pattern takes gets the 404).
	handle func(r *Relay, w http.ResponseWriter, req *http.Request, d dialect)
}

// pattern is the row's http.ServeMux pattern.
func (rt *route) pattern() string {
	if rt.method == "" {
		return rt.path
	}
	return rt.method + " " + rt.path
}

// matches reports whether path falls in the row.
func (rt *route) matches(path string) bool {
	if !strings.HasSuffix(rt.path, "/") {
		return path == rt.path
	}
	return strings.HasPrefix(path, rt.path) && strings.HasSuffix(path, rt.suffix)
}

// claudeRoutes are the Anthropic routes, served under each of the prefixes
// clients use ("" for Claude Code, /api and /claude for gateways' habits).
func claudeRoutes() []route {
	var rows []route
	for _, prefix := range []string{"", "/api", "/claude"} {
		rows = append(rows,
			route{method: "POST", path: prefix + "/v1/messages", dialect: anthropicDialect{}, metric: "messages", platform: "claude", handle: (*Relay).handleMessages},
			route{method: "POST", path: prefix + "/v1/messages/count_tokens", dialect: anthropicDialect{}, metric: "count_tokens", platform: "claude", handle: (*Relay).handleCountTokens},
			route{method: "GET", path: prefix + "/v1/models", dialect: anthropicDialect{}, metric: "models", platform: "none", handle: (*Relay).handleClaudeModels},
		)
	}
	return rows
}

// routes is the route table, a constant built once. Exact paths come
// before subtrees; among subtrees, narrower rows first; the last row ("/")
// takes every path no other row does.
var routes = append(claudeRoutes(), []route{
	{method: "POST", path: "/openai/v1/chat/completions", dialect: openaiDialect{}, metric: "chat_completions", platform: "claude", handle: (*Relay).handleChat},
	{method: "POST", path: "/v1/chat/completions", dialect: openaiDialect{}, metric: "chat_completions", platform: "claude", handle: (*Relay).handleChat},
	{method: "GET", path: "/openai/v1/models", dialect: openaiDialect{}, metric: "models", platform: "none", handle: (*Relay).handleOpenAIModels},
	{method: "POST", path: "/openai/v1/responses", dialect: responsesDialect{}, metric: "responses", platform: "openai", handle: (*Relay).handleResponses},
	{method: "POST", path: "/v1/responses", dialect: responsesDialect{}, metric: "responses", platform: "openai", handle: (*Relay).handleResponses},
	{method: "POST", path: "/openai/v1/responses/compact", dialect: responsesDialect{}, metric: "responses_compact", platform: "openai", handle: (*Relay).handleCompact},
	{method: "POST", path: "/v1/responses/compact", dialect: responsesDialect{}, metric: "responses_compact", platform: "openai", handle: (*Relay).handleCompact},
	{method: "POST", path: "/openai/v1/responses/input_tokens", dialect: responsesDialect{}, metric: "responses_input_tokens", platform: "openai", handle: (*Relay).handleInputTokens},
	{method: "POST", path: "/v1/responses/input_tokens", dialect: responsesDialect{}, metric: "responses_input_tokens", platform: "openai", handle: (*Relay).handleInputTokens},
	// GET is Codex's Responses WebSocket (websocket.go); each response
	// served on a connection is recorded like a POST's.
	{method: "GET", path: "/openai/v1/responses", dialect: responsesDialect{}, metric: "responses", platform: "openai", handle: (*Relay).handleResponsesWebSocket},
	{method: "GET", path: "/v1/responses", dialect: responsesDialect{}, metric: "responses", platform: "openai", handle: (*Relay).handleResponsesWebSocket},

	// One handler takes the whole /gemini/ subtree (every malformed path
	// gets a Google-shaped error); the suffix rows only label it.
	{path: "/gemini/", suffix: ":streamGenerateContent", dialect: googleDialect{}, metric: "gemini_stream_generate", platform: "gemini"},
	{path: "/gemini/", suffix: ":generateContent", dialect: googleDialect{}, metric: "gemini_generate", platform: "gemini"},
	{path: "/gemini/", suffix: ":countTokens", dialect: googleDialect{}, metric: "gemini_count_tokens", platform: "gemini"},
	{path: "/gemini/", dialect: googleDialect{}, metric: "gemini_other", platform: "gemini", handle: (*Relay).handleGemini},

	// Unknown paths under OpenAI's prefixes answer in OpenAI's shape.
	{path: "/openai/", dialect: openaiDialect{}, metric: "other", platform: "none"},
	{path: "/v1/chat/", dialect: openaiDialect{}, metric: "other", platform: "none"},
	{path: "/v1/responses/", dialect: responsesDialect{}, metric: "other", platform: "none"},
	// Every other path: a 404 (handleNotFound) in the dialect of the row
	// it falls in.
	{path: "/", dialect: anthropicDialect{}, metric: "other", platform: "none"},
}...)

// routeOf is the row path falls in (at worst "/").
func routeOf(path string) *route {
	for i := range routes {
		if routes[i].matches(path) {
			return &routes[i]
		}
	}
	return &routes[len(routes)-1]
}

// MetricLabels are the route and platform labels of a request to path,
// from the route table; the metrics of paths outside the API (admin,
// dashboard) are labelled by their owner.
func MetricLabels(path string) (route, platform string) {
	rt := routeOf(path)
	return rt.metric, rt.platform
}

// Handler returns the API routes (no /health: the server adds it outside auth).
func (r *Relay) Handler() http.Handler {
	mux := http.NewServeMux()
	for i := range routes {
		rt := &routes[i]
		if rt.handle == nil {
			continue
		}
		mux.HandleFunc(rt.pattern(), func(w http.ResponseWriter, req *http.Request) {
			rt.handle(r, w, req, rt.dialect)
		})
	}
	// Not a row's handler: it reads the table (a wrong method on a known
	// path answers in that path's dialect), and a row naming it would make
	// the table refer to itself.
	mux.HandleFunc("/", r.handleNotFound)
	return mux
}

func (r *Relay) handleNotFound(w http.ResponseWriter, req *http.Request) {
	closeUnread(w, req)
	writeDialectError(w, routeOf(req.URL.Path).dialect, http.StatusNotFound, "no route for "+req.Method+" "+req.URL.Path)
}
