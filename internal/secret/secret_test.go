package secret_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/dromos-dev/dromos/internal/secret"
)

const raw = "ya29.super-secret-token"

type holder struct {
	Name  string        `json:"name"`
	Token secret.String `json:"token"`
}

func TestFormatRedacts(t *testing.T) {
	s := secret.String(raw)
	h := holder{Name: "n", Token: s}
	cases := []struct {
		name   string
		format string
		arg    any
		want   string
	}{
		{"v", "%v", s, "[REDACTED]"},
		{"plus v", "%+v", s, "[REDACTED]"},
		{"sharp v", "%#v", s, `"[REDACTED]"`},
		{"s", "%s", s, "[REDACTED]"},
		{"q", "%q", s, `"[REDACTED]"`},
		{"x", "%x", s, "[REDACTED]"},
		{"X", "%X", s, "[REDACTED]"},
		{"d wrong verb", "%d", s, "[REDACTED]"},
		{"width", "%30s", s, "[REDACTED]"},
		{"pointer", "%v", &s, "[REDACTED]"},
		{"Println style", "%v", []any{s}, "[[REDACTED]]"},
		{"struct v", "%v", h, "{n [REDACTED]}"},
		{"struct plus v", "%+v", h, "{Name:n Token:[REDACTED]}"},
		{"struct sharp v", "%#v", h, `secret_test.holder{Name:"n", Token:"[REDACTED]"}`},
		{"error wrap", "%v", fmt.Errorf("call failed with %s", s), "call failed with [REDACTED]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fmt.Sprintf(tc.format, tc.arg)
			if got != tc.want {
				t.Errorf("Sprintf(%q) = %q, want %q", tc.format, got, tc.want)
			}
			if strings.Contains(got, raw) {
				t.Errorf("output leaks the secret: %q", got)
			}
		})
	}
}

func TestEmptyIsVisiblyEmpty(t *testing.T) {
	var s secret.String
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"String", s.String(), ""},
		{"v", fmt.Sprintf("%v", s), ""},
		{"q", fmt.Sprintf("%q", s), `""`},
		{"sharp v", fmt.Sprintf("%#v", s), `""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	b, err := json.Marshal(s)
	if err != nil || string(b) != `""` {
		t.Errorf("json.Marshal(empty) = %s, %v; want \"\"", b, err)
	}
	if !s.IsEmpty() || secret.String("x").IsEmpty() {
		t.Error("IsEmpty is wrong")
	}
}

func TestReveal(t *testing.T) {
	if got := secret.String(raw).Reveal(); got != raw {
		t.Fatalf("Reveal() = %q, want %q", got, raw)
	}
}

func TestSlogRedacts(t *testing.T) {
	s := secret.String(raw)
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{
		{"attr", func(l *slog.Logger) { l.Info("m", "token", s) }, `"token":"[REDACTED]"`},
		{"slog.Any", func(l *slog.Logger) { l.Info("m", slog.Any("token", s)) }, `"token":"[REDACTED]"`},
		{"pointer", func(l *slog.Logger) { l.Info("m", "token", &s) }, `"token":"[REDACTED]"`},
		{"group", func(l *slog.Logger) { l.Info("m", slog.Group("g", "token", s)) }, `"g":{"token":"[REDACTED]"}`},
		{"struct", func(l *slog.Logger) { l.Info("m", "h", holder{Name: "n", Token: s}) }, `"h":{"name":"n","token":"[REDACTED]"}`},
		{"With", func(l *slog.Logger) { l.With("token", s).Info("m") }, `"token":"[REDACTED]"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(slog.New(slog.NewJSONHandler(&buf, nil)))
			out := buf.String()
			if !strings.Contains(out, tc.want) {
				t.Errorf("log line %q does not contain %q", out, tc.want)
			}
			if strings.Contains(out, raw) {
				t.Errorf("log line leaks the secret: %q", out)
			}
		})
	}
}

func TestSlogTextRedacts(t *testing.T) {
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "token", secret.String(raw))
	if out := buf.String(); strings.Contains(out, raw) || !strings.Contains(out, "token=[REDACTED]") {
		t.Errorf("text log line = %q", out)
	}
}

func TestJSONMarshalRedacts(t *testing.T) {
	s := secret.String(raw)
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"bare", s, `"[REDACTED]"`},
		{"struct", holder{Name: "n", Token: s}, `{"name":"n","token":"[REDACTED]"}`},
		{"pointer in struct", struct {
			T *secret.String `json:"t"`
		}{&s}, `{"t":"[REDACTED]"}`},
		{"map value", map[string]secret.String{"k": s}, `{"k":"[REDACTED]"}`},
		{"slice", []secret.String{s, ""}, `["[REDACTED]",""]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("json.Marshal = %s, want %s", b, tc.want)
			}
		})
	}
}

// Decoding must keep working so configuration can load secrets from JSON.
func TestJSONUnmarshalKeepsValue(t *testing.T) {
	var h holder
	if err := json.Unmarshal([]byte(`{"name":"n","token":"`+raw+`"}`), &h); err != nil {
		t.Fatal(err)
	}
	if h.Token.Reveal() != raw {
		t.Fatalf("decoded token = %q, want the original", h.Token.Reveal())
	}
}

func ExampleString() {
	tok := secret.String("ya29.a0Af")
	fmt.Println(tok)
	fmt.Printf("%q %#v\n", tok, tok)
	fmt.Println(len(tok.Reveal()))
	// Output:
	// [REDACTED]
	// "[REDACTED]" "[REDACTED]"
	// 9
}
