package convert

import "testing"

func TestEstimateTokens(t *testing.T) {
	r := &Request{
		System: []string{"12345678"},                                            // 8 bytes
		Tools:  []Tool{{Name: "ls", Description: "list", Schema: []byte(`{}`)}}, // 8 bytes
		Messages: []Message{
			{Role: RoleUser, Parts: []Part{{Kind: PartText, Text: "abcd"}, {Kind: PartImage, Data: "eHh4"}}},                                          // 4 bytes, an image
			{Role: RoleAssistant, Parts: []Part{{Kind: PartToolCall, CallID: "c1", Name: "ls", Args: "{}"}}},                                          // 6 bytes
			{Role: RoleUser, Parts: []Part{{Kind: PartToolResult, CallID: "c1", Result: []Part{{Kind: PartText, Text: "a.txt"}, {Kind: PartImage}}}}}, // 7 bytes, an image
		},
	}
	// 33 bytes -> 9 tokens, 3 messages x 4, 2 images x 85.
	if got, want := EstimateTokens(r), int64(9+12+170); got != want {
		t.Fatalf("EstimateTokens = %d, want %d", got, want)
	}
	if EstimateTokens(&Request{}) != 0 {
		t.Fatal("an empty request should count 0")
	}
}
