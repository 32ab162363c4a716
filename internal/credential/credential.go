package credential

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// Credential is a key or user/password pair together with the rule for
// sending it. It is what the vault keeps for an api_key or basic
// connection and what that connection's own agent reads back. It holds a
// live secret: its String and LogValue redact it.
type Credential struct {
	Type        string `json:"type"`
	Header      string `json:"header,omitempty"`
	ValuePrefix string `json:"value_prefix,omitempty"`
	Value       string `json:"value,omitempty"`
	Username    string `json:"username,omitempty"`
	Password    string `json:"password,omitempty"`
}

// Limits on what an agent submits.
const (
	maxValue    = 4096
	maxUsername = 256
)

// ErrInput is wrapped by every Parse error; its text names the field, never
// the value.
var ErrInput = errors.New("credentials")

// Parse checks the credentials an agent submitted for a provider whose
// credentials are of type typ and sent by spec: {"api_key": "…"} or
// {"username": "…", "password": "…"}.
func Parse(typ string, spec Spec, in map[string]string) (Credential, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInput, fmt.Sprintf(format, args...))
	}
	var want []string
	switch typ {
	case TypeAPIKey:
		want = []string{"api_key"}
	case TypeBasic:
		want = []string{"username", "password"}
	default:
		return Credential{}, bad("this provider takes no credentials")
	}
	for k := range in {
		if !contains(want, k) {
			return Credential{}, bad("unknown member %q for a %s credential (it takes %s)", shorten(k), typ, strings.Join(want, ", "))
		}
	}
	c := Credential{Type: typ}
	switch typ {
	case TypeAPIKey:
		v := in["api_key"]
		if err := checkValue("api_key", v, maxValue); err != nil {
			return Credential{}, err
		}
		c.Header, c.ValuePrefix, c.Value = spec.Injection.Header, spec.Injection.ValuePrefix, v
	case TypeBasic:
		if err := checkValue("username", in["username"], maxUsername); err != nil {
			return Credential{}, err
		}
		if strings.Contains(in["username"], ":") {
			return Credential{}, bad("username may not contain ':' (RFC 7617)")
		}
		if err := checkValue("password", in["password"], maxValue); err != nil {
			return Credential{}, err
		}
		c.Header, c.Username, c.Password = DefaultHeader, in["username"], in["password"]
	}
	return c, nil
}

func checkValue(name, v string, limit int) error {
	if v == "" || len(v) > limit || !utf8.ValidString(v) || !httpguts.ValidHeaderFieldValue(v) || strings.TrimSpace(v) != v {
		return fmt.Errorf("%w: %s is required: 1-%d printable characters without surrounding spaces", ErrInput, name, limit)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func shorten(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// HeaderValue is the value of the header (c.Header) that carries c.
func (c Credential) HeaderValue() string {
	if c.Type == TypeBasic {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
	}
	return c.ValuePrefix + c.Value
}

// Apply sets the header carrying c on h.
func (c Credential) Apply(h http.Header) { h.Set(c.Header, c.HeaderValue()) }

// AccessToken and TokenType are how c reads as an OAuth token, for agents
// that only know access_token and token_type: a key sent as
// "Authorization: Bearer …" is a bearer token, a basic pair is a "Basic"
// token whose value is the encoded pair, any other key is token type
// api_key (the agent must read the credential object to send it).
func (c Credential) AccessToken() (token, tokenType string) {
	switch {
	case c.Type == TypeBasic:
		return strings.TrimPrefix(c.HeaderValue(), "Basic "), "Basic"
	case c.Header == DefaultHeader && strings.EqualFold(c.ValuePrefix, "Bearer "):
		return c.Value, "Bearer"
	}
	return c.Value, TypeAPIKey
}

func (c Credential) redacted() string {
	if c.Type == TypeBasic {
		return "Credential{type=basic username=[REDACTED] password=[REDACTED]}"
	}
	return fmt.Sprintf("Credential{type=%s header=%s value=[REDACTED]}", c.Type, c.Header)
}

// String describes c without its secret.
func (c Credential) String() string { return c.redacted() }

// GoString is String, so %#v redacts too.
func (c Credential) GoString() string { return c.redacted() }

// LogValue logs the credential's type and header only.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", c.Type), slog.String("header", c.Header))
}

// Object is c as the token read's "credential" member: the type, how to
// send it and the secret, as strings only.
func (c Credential) Object() map[string]any {
	m := map[string]any{"type": c.Type, "header": c.Header}
	if c.Type == TypeBasic {
		m["username"], m["password"] = c.Username, c.Password
		return m
	}
	m["value_prefix"], m["value"] = c.ValuePrefix, c.Value
	return m
}
