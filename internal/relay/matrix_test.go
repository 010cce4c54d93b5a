package relay

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/ccrelay/ccrelay/internal/config"
)

// A request the conversion refuses (a client's mistake) is a 400 in the
// client's shape that names the parameter, as the OpenAI SDK reports it.
// Found by the e2e TestMatrixClientMistakeOnConvertedRoute: error.param was
// null for thinking with temperature 0.5 sent to a Claude account.
func TestConversionRefusalNamesTheParam(t *testing.T) {
	srv, _ := newTestRelay(t, nil, testAccount{id: "c", typ: config.TypeClaudeAPI, url: "http://127.0.0.1:1", key: "k"})
	body := `{"model":"claude-sonnet-4-5","input":"hi","reasoning":{"effort":"medium"},"temperature":0.5}`
	resp, err := http.Post(srv.URL+"/v1/responses", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || gjson.GetBytes(got, "error.param").Str != "temperature" ||
		gjson.GetBytes(got, "error.type").Str != "invalid_request_error" || !strings.Contains(gjson.GetBytes(got, "error.message").Str, "thinking") {
		t.Fatalf("%d %s", resp.StatusCode, got)
	}
}
