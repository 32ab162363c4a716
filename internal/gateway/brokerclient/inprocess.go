package brokerclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

// This file serves a gateway that calls a broker in its own process
// (dromos serve): the broker hands over its answers as Go values instead of
// HTTP responses, and these functions turn them into exactly what this
// client would have made of the same answer read over HTTP, so that agents
// see the same tokens and the same errors in both deployments.

// FromBroker is the error an agent sees for err, an error a broker
// operation returned in process: the same status, code, message and
// Retry-After this client gives when the broker writes err as its HTTP
// answer (a 4xx envelope passed through, a provider_error kept, a 503 with
// its message, anything else 502 broker_error). nil stays nil.
func FromBroker(op string, err error) error {
	if err == nil {
		return nil
	}
	e, ok := httpapi.As(err)
	if !ok {
		// Over HTTP the broker answers 500 internal_error and logs the
		// cause; here the cause travels with the 502 for the gateway's log.
		return httpapi.BadGateway(CodeBrokerError, "the broker answered unexpectedly", fmt.Errorf("broker %s: %w", op, err))
	}
	env, envOK := cleanEnvelope(httpapi.Envelope{Code: e.Code, Message: e.Message})
	var ra time.Duration
	if e.RetryAfter > 0 {
		// Retry-After carries whole seconds, rounded up by the broker.
		ra = retrySeconds(int((e.RetryAfter + time.Second - 1) / time.Second))
	}
	return agentError(op, e.Status, env, envOK, ra)
}

// TokenFromMembers reads a token answer the broker built in process (the
// members it would have written as JSON, see the broker's token body) as
// Token reads the JSON answer: the named members typed, every other member
// an extra encoded once, nested refresh tokens dropped unless the broker
// exposes them. Its errors never include member values.
func TokenFromMembers(op string, m map[string]any) (Token, error) {
	var t Token
	bad := func(member string, err error) (Token, error) {
		return Token{}, httpapi.BadGateway(CodeBrokerError, "the broker sent an unreadable token answer",
			fmt.Errorf("broker %s: token member %q: %w", op, member, err))
	}
	for _, s := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{"access_token", &t.AccessToken, true},
		{"token_type", &t.TokenType, true},
		{"scope", &t.Scope, false},
		{"id_token", &t.IDToken, false},
		{"provider", &t.Provider, false},
	} {
		v, ok := m[s.name]
		if !ok || v == nil {
			if s.required {
				return bad(s.name, errors.New("missing"))
			}
			continue
		}
		str, ok := v.(string)
		if !ok {
			return bad(s.name, errors.New("not a string"))
		}
		if s.required && str == "" {
			return bad(s.name, errors.New("empty"))
		}
		*s.dst = str
	}
	if v, ok := m["expires_in"]; ok && v != nil {
		n, ok := v.(int64)
		if !ok {
			return bad("expires_in", errors.New("not a number"))
		}
		t.ExpiresIn = n
	}
	if v, ok := m["expires_at"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return bad("expires_at", errors.New("not an RFC 3339 time"))
		}
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return bad("expires_at", errors.New("not an RFC 3339 time"))
		}
		t.ExpiresAt = at.UTC()
	}
	exposed := false
	if v, ok := m["refresh_token"]; ok && v != nil {
		exposed = true
	}
	extras := 0
	for k := range m {
		if !IsTokenMember(k) {
			extras++
		}
	}
	if extras == 0 {
		return t, nil
	}
	t.Extras = make(map[string]json.RawMessage, extras)
	for k, v := range m {
		if IsTokenMember(k) {
			continue
		}
		raw, err := encodeBody(v)
		if err != nil {
			return bad(k, errors.New("not encodable"))
		}
		if !exposed {
			var keep bool
			if raw, keep = withoutNestedRefreshTokens(raw); !keep {
				continue
			}
		}
		t.Extras[k] = raw
	}
	return t, nil
}
