package brokerclient

import (
	"encoding/json"

	"github.com/dromos-dev/dromos/internal/jsonscan"
)

// decodeMembers returns the members of the JSON object body, as
// json.Unmarshal(body, &m) gives them for m a map[string]json.RawMessage,
// with the same error when it gives one. A token answer is read on every
// token request, so the common case, a valid object whose names are plain
// ASCII, is split here without reflection and the members' values are
// slices of body rather than copies (body is never reused). Anything else
// (invalid JSON, another kind of value, a name with escapes or non-ASCII
// characters) goes to json.Unmarshal itself.
func decodeMembers(body []byte) (map[string]json.RawMessage, error) {
	if m, ok := splitObject(body); ok {
		return m, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// splitObject is decodeMembers' fast path; ok is false when it does not
// apply. Later members of the same name win, as in a decoded map.
func splitObject(body []byte) (map[string]json.RawMessage, bool) {
	m := make(map[string]json.RawMessage, 8)
	if !jsonscan.Members(body, func(name, value []byte) bool {
		m[memberName(name)] = json.RawMessage(value)
		return true
	}) {
		return nil, false
	}
	return m, true
}

// memberName is string(b), without a copy for the names a token answer
// always has.
func memberName(b []byte) string {
	switch string(b) { // no allocation: the compiler compares in place
	case "access_token":
		return "access_token"
	case "token_type":
		return "token_type"
	case "expires_in":
		return "expires_in"
	case "expires_at":
		return "expires_at"
	case "expires_at_source":
		return "expires_at_source"
	case "scope":
		return "scope"
	case "provider":
		return "provider"
	case "id_token":
		return "id_token"
	}
	return string(b)
}
