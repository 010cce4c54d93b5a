package cmdutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Environment variables of the admin client.
const (
	EnvServer   = "CCRELAY_SERVER"
	EnvAdminKey = "CCRELAY_ADMIN_KEY"
)

// AdminClient calls a running relay's admin API (/admin/v1) for the
// commands' --server mode.
type AdminClient struct {
	// BaseURL is the relay's URL, without /admin/v1.
	BaseURL string
	key     string
	// HTTP is the client used; default one with a 30 s timeout.
	HTTP *http.Client
}

// AddServerFlag registers --server on cmd.
func AddServerFlag(cmd *cobra.Command, target *string) {
	cmd.Flags().StringVar(target, "server", "", "ask the relay running at this URL (its admin API, with the key in $"+EnvAdminKey+") instead of reading the local database; default $"+EnvServer)
}

// AdminFor returns the admin client that --server (or $CCRELAY_SERVER) asks
// for, or nil when neither is set: the command then reads the local state.
func AdminFor(server string, getenv func(string) string) (*AdminClient, error) {
	if server == "" && getenv != nil {
		server = getenv(EnvServer)
	}
	server = strings.TrimSpace(server)
	if server == "" {
		return nil, nil
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, FlagErrorf("--server %q: give the relay's URL, like http://127.0.0.1:3000", server)
	}
	key := ""
	if getenv != nil {
		key = strings.TrimSpace(getenv(EnvAdminKey))
	}
	if key == "" {
		return nil, FlagErrorf("--server needs an admin key: set %s to one of the relay's admin_keys", EnvAdminKey)
	}
	return &AdminClient{BaseURL: strings.TrimRight(u.String(), "/"), key: key, HTTP: &http.Client{Timeout: 30 * time.Second}}, nil
}

// ErrAdminRefused is wrapped by errors for a 401 or 403 answer.
var ErrAdminRefused = errors.New("the relay refused the admin key")

// Do calls method path (relative to /admin/v1/) with in as the JSON body
// (nil for none) and decodes the answer into out (nil to discard it).
func (c *AdminClient) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+"/admin/v1/"+path, body)
	if err != nil {
		return fmt.Errorf("admin request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		// The URL error names the server and path, never the key (it is a header).
		return fmt.Errorf("ask %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			msg = e.Error.Message
		}
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w (%s, HTTP %d): %s; check %s", ErrAdminRefused, c.BaseURL, resp.StatusCode, msg, EnvAdminKey)
		case http.StatusNotFound:
			if strings.Contains(msg, "admin API is off") || !json.Valid(data) {
				return fmt.Errorf("%s has no admin API (HTTP 404: %s); set admin_keys in its config", c.BaseURL, msg)
			}
		}
		return fmt.Errorf("%s answered HTTP %d: %s", c.BaseURL, resp.StatusCode, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("read the answer of %s: %w", c.BaseURL, err)
	}
	return nil
}
