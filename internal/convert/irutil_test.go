package convert

import "testing"

func TestWrapSignatureRoundTrip(t *testing.T) {
	for _, c := range []struct {
		sig  Signature
		text string
	}{
		{Signature{Origin: OriginOpenAI, ID: "rs_1", Value: "gAAAAB.x/y+z=="}, "a summary"},
		{Signature{Origin: OriginAnthropic, Value: "EqQBCkYIBRgCKkA="}, "thinking\nwith dots. and ünïcode"},
		{Signature{Origin: OriginGemini, Value: "c2ln"}, ""},
	} {
		w := WrapSignature(c.sig, c.text)
		sig, text, ok := UnwrapSignature(w)
		if !ok || sig != c.sig || text != c.text {
			t.Errorf("UnwrapSignature(WrapSignature(%+v, %q)) = %+v, %q, %v", c.sig, c.text, sig, text, ok)
		}
	}
	for _, native := range []string{"", "EqQBCkYIBRgCKkA=", "gAAAAABoYz", "ccr1.", "ccr1.openai.!.x.y", "ccr1..a.b.c"} {
		if _, _, ok := UnwrapSignature(native); ok {
			t.Errorf("UnwrapSignature(%q) = ok; want a native signature", native)
		}
	}
	if WrapSignature(Signature{}, "x") != "" {
		t.Error("a signature without origin wraps to something")
	}
}

func TestBudgetEffort(t *testing.T) {
	for _, e := range []string{"low", "medium", "high"} {
		if got := BudgetEffort(EffortBudget(e)); got != e {
			t.Errorf("BudgetEffort(EffortBudget(%q)) = %q", e, got)
		}
	}
	if BudgetEffort(0) != "" || EffortBudget("") != 0 {
		t.Error("no thinking should map to no thinking")
	}
}
