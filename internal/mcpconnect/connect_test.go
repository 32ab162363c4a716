package mcpconnect

import "testing"

func TestStepUpLoops(t *testing.T) {
	cases := []struct {
		name               string
		granted, requested []string
		want               bool
	}{
		{"asks for what is held", []string{"a", "b"}, []string{"b"}, true},
		{"asks for nothing", []string{"a"}, nil, true},
		{"asks for one more", []string{"a"}, []string{"a", "b"}, false},
		{"nothing held yet", nil, []string{"a"}, false},
	}
	for _, tc := range cases {
		if got := StepUpLoops(tc.granted, tc.requested); got != tc.want {
			t.Errorf("%s: StepUpLoops(%q, %q) = %v", tc.name, tc.granted, tc.requested, got)
		}
	}
}

func TestProviderNameStable(t *testing.T) {
	a, b := ProviderName("https://mcp.example.com/mcp"), ProviderName("https://mcp.example.com/mcp")
	if a != b || len(a) > 64 || a == ProviderName("https://mcp.example.com/other") {
		t.Fatalf("ProviderName: %q %q", a, b)
	}
}
