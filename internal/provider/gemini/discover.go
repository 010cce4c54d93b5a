package gemini

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

const (
	// defaultPollEvery is Gemini CLI's onboardUser polling interval.
	defaultPollEvery = 5 * time.Second
	// maxDiscoveryBody bounds a Code Assist setup answer; real ones are a
	// few kilobytes.
	maxDiscoveryBody = 1 << 20
	// freeTier is the tier whose managed project must not be named in
	// onboardUser (Code Assist answers Precondition Failed if it is).
	freeTier = "free-tier"
	// legacyTier is onboarded when loadCodeAssist names no default tier.
	legacyTier = "legacy-tier"
)

var (
	// ErrProjectRequired means the account has no Code Assist project of its
	// own and needs one configured (Gemini CLI's GOOGLE_CLOUD_PROJECT).
	ErrProjectRequired = errors.New("gemini: code assist account needs a google cloud project")
	// ErrIneligible means Code Assist listed the account as ineligible for
	// every tier it could onboard to; the wrapping error carries the reasons.
	ErrIneligible = errors.New("gemini: code assist account is not eligible")
)

// APIError is a non-2xx answer from a Code Assist setup call. Message is the
// upstream's, with credentials redacted.
type APIError struct {
	// Method is the Code Assist method or "operation" for LRO polling.
	Method string
	// StatusCode is the HTTP status.
	StatusCode int
	// Status is the google.rpc status name, when the body had one.
	Status string
	// Message is the upstream message, redacted and truncated.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("gemini: %s: http %d", e.Method, e.StatusCode)
	if e.Status != "" {
		s += " " + e.Status
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// clientMetadata is what Gemini CLI's setupUser sends as metadata.
type clientMetadata struct {
	IDEType     string `json:"ideType"`
	Platform    string `json:"platform"`
	PluginType  string `json:"pluginType"`
	DuetProject string `json:"duetProject,omitempty"`
}

// newClientMetadata is Gemini CLI's client metadata, with the user's own
// project when there is one.
func newClientMetadata(envProject string) clientMetadata {
	return clientMetadata{IDEType: "IDE_UNSPECIFIED", Platform: "PLATFORM_UNSPECIFIED", PluginType: "GEMINI", DuetProject: envProject}
}

// LoadCodeAssistURL is {base}/v1internal:loadCodeAssist; an empty base means
// CodeAssistBaseURL.
func LoadCodeAssistURL(base string) string {
	return codeAssistRoot(base) + "/" + codeAssistVersion + ":loadCodeAssist"
}

// LoadCodeAssistBody is a loadCodeAssist request without a project: the
// cheapest call that proves a Code Assist token works.
func LoadCodeAssistBody() []byte {
	b, _ := json.Marshal(struct {
		Metadata clientMetadata `json:"metadata"`
	}{newClientMetadata("")})
	return b
}

// DiscoverProject finds the Code Assist project (cloudaicompanionProject) of
// the Google account whose OAuth access token is given, the way Gemini CLI's
// setupUser does: loadCodeAssist, and when the account has no current tier,
// onboardUser to its default tier (legacy-tier when none is marked default),
// polling the returned long-running operation every pollEvery (5s when
// pollEvery <= 0) until it is done or ctx ends.
//
// envProject is the user's own Google Cloud project (Gemini CLI's
// GOOGLE_CLOUD_PROJECT); "" lets Code Assist pick its managed free-tier
// project. It is sent to loadCodeAssist and, except for the free tier,
// to onboardUser, and is the answer when Code Assist names none.
//
// base defaults to CodeAssistBaseURL, and hc to http.DefaultClient. Errors
// never contain the access token; a failed call is an *APIError, an account
// with nothing to use wraps ErrProjectRequired or ErrIneligible.
func DiscoverProject(ctx context.Context, hc *http.Client, base, accessToken, envProject string, pollEvery time.Duration) (string, error) {
	if accessToken == "" {
		return "", errors.New("gemini: discover project: empty access token")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	if pollEvery <= 0 {
		pollEvery = defaultPollEvery
	}
	d := discoverer{hc: hc, root: codeAssistRoot(base), token: accessToken}

	meta := newClientMetadata(envProject)
	load, err := d.call(ctx, http.MethodPost, "loadCodeAssist", LoadCodeAssistURL(base), struct {
		Project  string         `json:"cloudaicompanionProject,omitempty"`
		Metadata clientMetadata `json:"metadata"`
	}{envProject, meta})
	if err != nil {
		return "", err
	}

	if load.Get("currentTier").IsObject() {
		if p := projectID(load.Get("cloudaicompanionProject")); p != "" {
			return p, nil
		}
		if envProject != "" {
			return envProject, nil
		}
		return "", noProjectError(load)
	}
	if err := validationRequired(load); err != nil {
		return "", err
	}

	tier := legacyTier
	load.Get("allowedTiers").ForEach(func(_, t gjson.Result) bool {
		if t.Get("isDefault").Bool() && t.Get("id").String() != "" {
			tier = t.Get("id").String()
			return false
		}
		return true
	})
	onboard := struct {
		TierID   string         `json:"tierId"`
		Project  string         `json:"cloudaicompanionProject,omitempty"`
		Metadata clientMetadata `json:"metadata"`
	}{TierID: tier, Project: envProject, Metadata: meta}
	if tier == freeTier {
		onboard.Project, onboard.Metadata.DuetProject = "", ""
	}
	op, err := d.call(ctx, http.MethodPost, "onboardUser", d.root+"/"+codeAssistVersion+":onboardUser", onboard)
	if err != nil {
		return "", err
	}
	if !op.Get("done").Bool() {
		name := op.Get("name").String()
		if !validOperationName(name) {
			return "", errors.New("gemini: onboardUser returned an unfinished operation without a usable name")
		}
		t := time.NewTimer(pollEvery)
		defer t.Stop()
		for !op.Get("done").Bool() {
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("gemini: wait for onboarding to tier %s: %w", tier, ctx.Err())
			case <-t.C:
			}
			op, err = d.call(ctx, http.MethodGet, "operation", d.root+"/"+codeAssistVersion+"/"+name, nil)
			if err != nil {
				return "", err
			}
			t.Reset(pollEvery)
		}
	}
	if e := op.Get("error"); e.IsObject() {
		// An operation's error is a google.rpc.Status: a numeric rpc code.
		st := rpcCodeName(e.Get("code").Int())
		return "", &APIError{Method: "onboardUser", StatusCode: codeForStatus(st), Status: st, Message: d.redact(e.Get("message").String())}
	}
	if p := projectID(op.Get("response.cloudaicompanionProject")); p != "" {
		return p, nil
	}
	if envProject != "" {
		return envProject, nil
	}
	return "", noProjectError(load)
}

// rpcCodeName names a numeric google.rpc.Code.
func rpcCodeName(code int64) string {
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if code >= 0 && code < int64(len(names)) {
		return names[code]
	}
	return "UNKNOWN"
}

// discoverer carries what every setup call needs.
type discoverer struct {
	hc    *http.Client
	root  string
	token string
}

// call sends one Code Assist setup request and returns the parsed JSON
// answer. The token only ever goes into the Authorization header.
func (d discoverer) call(ctx context.Context, method, name, url string, body any) (gjson.Result, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return gjson.Result{}, fmt.Errorf("gemini: encode %s request: %w", name, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return gjson.Result{}, fmt.Errorf("gemini: build %s request: %w", name, err)
	}
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return gjson.Result{}, fmt.Errorf("gemini: %s: %w", name, d.scrub(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBody))
	if err != nil {
		return gjson.Result{}, fmt.Errorf("gemini: read %s answer: %w", name, d.scrub(err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r := parseRPCError(errorObject(data))
		st := r.status
		if !isUpperIdent(st) {
			st = ""
		}
		return gjson.Result{}, &APIError{Method: name, StatusCode: resp.StatusCode, Status: st, Message: d.redact(r.message)}
	}
	if !gjson.ValidBytes(data) {
		return gjson.Result{}, fmt.Errorf("gemini: %s: answer is not valid JSON", name)
	}
	return gjson.ParseBytes(data), nil
}

// redact sanitizes an upstream message and removes the access token should
// the upstream have echoed it.
func (d discoverer) redact(msg string) string {
	msg = strings.ReplaceAll(msg, d.token, "[redacted]")
	return truncate(sanitize(msg), maxReasonLen)
}

// scrub keeps transport errors (which name the URL, never headers) free of
// the token even if a custom RoundTripper puts it in its message.
func (d discoverer) scrub(err error) error {
	if err == nil || !strings.Contains(err.Error(), d.token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), d.token, "[redacted]"))
}

// projectID reads a cloudaicompanionProject that is either a string id
// (loadCodeAssist) or an object {id,name} (onboardUser's response).
func projectID(v gjson.Result) string {
	if v.IsObject() {
		return v.Get("id").String()
	}
	if v.Type == gjson.String {
		return v.Str
	}
	return ""
}

// validOperationName accepts an LRO name such as "operations/abc-123" that
// can be appended to the v1internal URL without escaping or traversal.
func validOperationName(name string) bool {
	if name == "" || len(name) > 256 || strings.Contains(name, "..") || strings.HasPrefix(name, "/") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// validationRequired returns an error wrapping ErrIneligible when
// loadCodeAssist asks the user to verify the account first.
func validationRequired(load gjson.Result) error {
	var err error
	load.Get("ineligibleTiers").ForEach(func(_, t gjson.Result) bool {
		if t.Get("reasonCode").String() == "VALIDATION_REQUIRED" && t.Get("validationUrl").String() != "" {
			err = fmt.Errorf("%w: account validation required (%s); sign in with Gemini CLI once to complete it", ErrIneligible, truncate(sanitize(t.Get("reasonMessage").String()), maxReasonLen))
			return false
		}
		return true
	})
	return err
}

// noProjectError explains why no project could be found: the ineligibility
// reasons when Code Assist gave any, else ErrProjectRequired.
func noProjectError(load gjson.Result) error {
	var reasons []string
	load.Get("ineligibleTiers").ForEach(func(_, t gjson.Result) bool {
		msg := sanitize(t.Get("reasonMessage").String())
		if msg == "" {
			msg = t.Get("reasonCode").String()
		}
		if msg != "" {
			reasons = append(reasons, msg)
		}
		return true
	})
	if len(reasons) > 0 {
		return fmt.Errorf("%w: %s", ErrIneligible, truncate(strings.Join(reasons, "; "), 2*maxReasonLen))
	}
	return ErrProjectRequired
}
