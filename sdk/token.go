package sdk

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Token is a currently valid access token for a connection, as the gateway
// hands it out. Its String, GoString, Format and LogValue methods redact
// the secrets, so a careless log line or %v cannot leak them.
type Token struct {
	AccessToken string
	TokenType   string    // "Bearer" unless the provider said otherwise
	ExpiresIn   int64     // seconds left when the gateway answered; 0 when unknown
	ExpiresAt   time.Time // zero when the provider gave no expiry
	Scope       string
	IDToken     string // present when the provider issued one
	Provider    string
	Extra       map[string]any // the provider's other token response members
	// Credential is set for an api_key or basic connection: the key or
	// user/password pair and how to send it. HTTPClient sends it so.
	Credential *Credential
}

// Credential is an api_key or basic connection's credential as the token
// read gives it. Its String, Format and LogValue redact the secrets.
type Credential struct {
	Type        string `json:"type"`   // "api_key" or "basic"
	Header      string `json:"header"` // the header that carries it
	ValuePrefix string `json:"value_prefix"`
	Value       string `json:"value"`
	Username    string `json:"username"`
	Password    string `json:"password"`
}

// HeaderValue is the value of Header that carries the credential.
func (c Credential) HeaderValue() string {
	if c.Type == "basic" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
	}
	return c.ValuePrefix + c.Value
}

// String describes the credential without its secrets.
func (c Credential) String() string {
	return fmt.Sprintf("Credential{type=%s header=%s [REDACTED]}", c.Type, c.Header)
}

// GoString is String, so %#v redacts too.
func (c Credential) GoString() string { return c.String() }

// Format redacts under every verb.
func (c Credential) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue logs the type and header only.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("type", c.Type), slog.String("header", c.Header))
}

// namedMember says whether k has a Token field; everything else is Extra.
func namedMember(k string) bool {
	switch k {
	case "access_token", "token_type", "expires_in", "expires_at", "scope", "id_token", "provider", "credential":
		return true
	}
	return false
}

// decodeToken parses a token answer. now turns a bare expires_in into an
// absolute expiry when expires_at is missing.
func decodeToken(raw []byte, now time.Time) (*Token, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, errors.New("dromos: token answer is not a JSON object")
	}
	t := &Token{}
	strs := []struct {
		name string
		dst  *string
	}{
		{"access_token", &t.AccessToken}, {"token_type", &t.TokenType}, {"scope", &t.Scope},
		{"id_token", &t.IDToken}, {"provider", &t.Provider},
	}
	for _, s := range strs {
		if err := optString(m[s.name], s.dst); err != nil {
			return nil, fmt.Errorf("dromos: token answer: %s: %w", s.name, err)
		}
	}
	if t.AccessToken == "" {
		return nil, errors.New("dromos: token answer has no access_token")
	}
	if t.TokenType == "" {
		t.TokenType = "Bearer"
	}
	in, err := expiresIn(m["expires_in"])
	if err != nil {
		return nil, fmt.Errorf("dromos: token answer: expires_in: %w", err)
	}
	t.ExpiresIn = in
	var at string
	if err := optString(m["expires_at"], &at); err != nil {
		return nil, fmt.Errorf("dromos: token answer: expires_at: %w", err)
	}
	switch {
	case at != "":
		if t.ExpiresAt, err = time.Parse(time.RFC3339, at); err != nil {
			return nil, errors.New("dromos: token answer: expires_at is not an RFC 3339 time")
		}
	case in > 0:
		t.ExpiresAt = now.Add(time.Duration(in) * time.Second)
	}
	if raw := m["credential"]; len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		var c Credential
		if err := json.Unmarshal(raw, &c); err != nil || c.Header == "" || (c.Type != "api_key" && c.Type != "basic") {
			return nil, errors.New("dromos: token answer: credential is not an api_key or basic credential")
		}
		t.Credential = &c
	}
	for k, v := range m {
		if namedMember(k) {
			continue
		}
		var x any
		if err := json.Unmarshal(v, &x); err != nil {
			return nil, fmt.Errorf("dromos: token answer: member %q: %w", k, err)
		}
		if t.Extra == nil {
			t.Extra = make(map[string]any)
		}
		t.Extra[k] = x
	}
	return t, nil
}

// optString reads a JSON string that may be absent or null.
func optString(raw json.RawMessage, dst *string) error {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return errors.New("not a string")
	}
	return nil
}

// expiresIn accepts seconds as a JSON number or a numeric string, as some
// providers send it; absent or null is 0, a negative count is 0.
func expiresIn(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return 0, nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, errors.New("not a number")
		}
	} else {
		s = string(raw)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != f {
		return 0, errors.New("not a number")
	}
	const maxSecs = 1 << 40 // far beyond any token, far below overflow
	switch {
	case f <= 0:
		return 0, nil
	case f > maxSecs:
		return maxSecs, nil
	}
	return int64(f), nil
}

// OAuth2 converts t for golang.org/x/oauth2. The id token, scope, provider
// and extras are reachable through Extra("id_token") and friends.
func (t *Token) OAuth2() *oauth2.Token {
	extra := make(map[string]any, len(t.Extra)+3)
	for k, v := range t.Extra {
		extra[k] = v
	}
	extra["scope"] = t.Scope
	extra["provider"] = t.Provider
	if t.IDToken != "" {
		extra["id_token"] = t.IDToken
	}
	o := &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.ExpiresAt, ExpiresIn: t.ExpiresIn}
	return o.WithExtra(extra)
}

func (t Token) redacted() string {
	exp := "none"
	if !t.ExpiresAt.IsZero() {
		exp = t.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("Token{provider=%s type=%s expires_at=%s scope=%q access_token=[REDACTED]}", t.Provider, t.TokenType, exp, t.Scope)
}

// String describes the token without its secrets.
func (t Token) String() string { return t.redacted() }

// GoString is String, so %#v redacts too.
func (t Token) GoString() string { return t.redacted() }

// Format redacts under every verb.
func (t Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(t.redacted())) }

// LogValue logs the token's metadata only.
func (t Token) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("provider", t.Provider), slog.String("token_type", t.TokenType),
		slog.String("scope", t.Scope), slog.String("access_token", "[REDACTED]")}
	if !t.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("expires_at", t.ExpiresAt))
	}
	return slog.GroupValue(attrs...)
}
