package oauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/ccrelay/ccrelay/internal/provider"
)

// ErrNoRefreshToken is returned when the token endpoint answered without a
// refresh token: the login would be useless to a relay that must refresh on
// its own.
var ErrNoRefreshToken = errors.New("no refresh token returned; sign in again, and if this persists revoke the app's access in your account settings first so the provider grants offline access anew")

// ExchangeError is a refusal from the token endpoint. It carries only the
// HTTP status and the provider's error fields, never the request's code or
// verifier nor any token, so it is safe to print and log.
type ExchangeError struct {
	// StatusCode is the HTTP status of the token endpoint's answer.
	StatusCode int
	// Code is the provider's "error" field, e.g. "invalid_grant".
	Code string
	// Description is the provider's "error_description" (or message) field.
	Description string
}

// Error describes the refusal: status, provider error code and description.
func (e *ExchangeError) Error() string {
	msg := fmt.Sprintf("token exchange failed: HTTP %d", e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		msg += " " + t
	}
	if c := printable(e.Code); c != "" {
		msg += ": " + c
	}
	if d := printable(e.Description); d != "" {
		msg += ": " + d
	}
	return msg
}

// maxTokenResponse bounds what is read from the token endpoint.
const maxTokenResponse = 1 << 20

// exchange trades code for tokens. redirectURI must be the one the code was
// issued for (loopback or manual).
func (s *session) exchange(ctx context.Context, client *http.Client, code, redirectURI string) (*Token, error) {
	var (
		tok *Token
		err error
	)
	if s.provider.JSONExchange {
		tok, err = s.exchangeJSON(ctx, client, code, redirectURI)
	} else {
		tok, err = s.exchangeForm(ctx, client, code, redirectURI)
	}
	if err != nil {
		var ee *ExchangeError
		if errors.As(err, &ee) {
			// Providers sometimes echo the offending parameter back.
			ee.Code = s.redact(ee.Code, code)
			ee.Description = s.redact(ee.Description, code)
		}
		return nil, err
	}
	if tok.AccessToken == "" {
		return nil, errors.New("token exchange failed: the response has no access token")
	}
	if tok.RefreshToken == "" {
		return nil, ErrNoRefreshToken
	}
	return tok, nil
}

// redact removes the login's secrets from text that came from the provider
// and bounds its length.
func (s *session) redact(text, code string) string {
	for _, secret := range []string{code, s.verifier, s.state} {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "[redacted]")
		}
	}
	const maxLen = 300
	if len(text) > maxLen {
		text = text[:maxLen] + "..."
	}
	return text
}

// claudeTokenRequest is the JSON body Claude's token endpoint expects, in the
// field order Claude Code sends.
type claudeTokenRequest struct {
	GrantType    string `json:"grant_type"`
	Code         string `json:"code"`
	RedirectURI  string `json:"redirect_uri"`
	ClientID     string `json:"client_id"`
	CodeVerifier string `json:"code_verifier"`
	State        string `json:"state"`
	ClientSecret string `json:"client_secret,omitempty"`
}

type claudeTokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Account      *struct {
		EmailAddress string `json:"email_address"`
	} `json:"account"`
}

func (s *session) exchangeJSON(ctx context.Context, client *http.Client, code, redirectURI string) (*Token, error) {
	body, err := json.Marshal(claudeTokenRequest{
		GrantType:    "authorization_code",
		Code:         code,
		RedirectURI:  redirectURI,
		ClientID:     s.provider.ClientID,
		CodeVerifier: s.verifier,
		State:        s.state,
		ClientSecret: s.provider.ClientSecret,
	})
	if err != nil {
		return nil, fmt.Errorf("encode token request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.provider.TokenURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")

	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("token exchange: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return nil, fmt.Errorf("token exchange: read response (HTTP %d): %w", resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, parseErrorBody(resp.StatusCode, data)
	}
	var tr claudeTokenResponse
	if err := json.Unmarshal(data, &tr); err != nil {
		// The json error names a position, never the body's content.
		return nil, fmt.Errorf("token exchange: decode response (HTTP %d): %w", resp.StatusCode, err)
	}
	tok := &Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken}
	if d, ok := provider.HintDelay(float64(tr.ExpiresIn), time.Second); ok && tr.ExpiresIn > 0 {
		tok.ExpiresAt = time.Now().Add(d) // bounded: a huge expires_in cannot overflow
	}
	if tr.Account != nil {
		tok.Email = tr.Account.EmailAddress
	}
	return tok, nil
}

// parseErrorBody extracts the provider's error fields from a failed token
// response: RFC 6749 {"error": "...", "error_description": "..."} or the
// Anthropic API shape {"error": {"type": "...", "message": "..."}}. The raw
// body is never returned.
func parseErrorBody(status int, data []byte) *ExchangeError {
	ee := &ExchangeError{StatusCode: status}
	var body struct {
		Error            json.RawMessage `json:"error"`
		ErrorDescription string          `json:"error_description"`
		Message          string          `json:"message"`
	}
	if json.Unmarshal(data, &body) != nil {
		return ee
	}
	ee.Description = body.ErrorDescription
	var code string
	var obj struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}
	switch {
	case json.Unmarshal(body.Error, &code) == nil:
		ee.Code = code
	case json.Unmarshal(body.Error, &obj) == nil:
		ee.Code = obj.Type
		if ee.Description == "" {
			ee.Description = obj.Message
		}
	}
	if ee.Description == "" {
		ee.Description = body.Message
	}
	return ee
}

func (s *session) exchangeForm(ctx context.Context, client *http.Client, code, redirectURI string) (*Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client)
	ot, err := s.config(redirectURI).Exchange(ctx, code, oauth2.VerifierOption(s.verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			// Not wrapped: RetrieveError's message may include the raw body.
			ee := &ExchangeError{Code: re.ErrorCode, Description: re.ErrorDescription}
			if re.Response != nil {
				ee.StatusCode = re.Response.StatusCode
			}
			return nil, ee
		}
		return nil, fmt.Errorf("token exchange: %w", err)
	}
	tok := &Token{AccessToken: ot.AccessToken, RefreshToken: ot.RefreshToken, ExpiresAt: ot.Expiry}
	if idToken, ok := ot.Extra("id_token").(string); ok {
		tok.Email = emailFromIDToken(idToken)
		if s.provider.IDTokenAccount != nil {
			tok.Account = s.provider.IDTokenAccount(idToken)
		}
	}
	return tok, nil
}

// emailFromIDToken reads the email claim of a JWT without verifying its
// signature. That is enough here: the token came straight from the token
// endpoint over TLS, and the email is only a label for the account.
func emailFromIDToken(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Email
}
