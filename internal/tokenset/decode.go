package tokenset

import (
	"encoding/json"

	"github.com/dromos-dev/dromos/internal/jsonscan"
)

// decodeSet is json.Unmarshal(plain, &set) without reflection for what
// Seal writes, which Open decodes on every token read: one JSON object whose
// members have Set's exact names, each at most once. ok is false for
// anything else (invalid JSON, an unknown, repeated or escaped name, a
// value that does not decode), and the caller then decodes with
// json.Unmarshal, so that every input gives what json.Unmarshal gives,
// errors included.
func decodeSet(plain []byte) (set Set, ok bool) {
	var seen uint16
	ok = jsonscan.Members(plain, func(name, v []byte) bool {
		var bit uint16
		var good bool
		switch string(name) { // exact names only: json.Unmarshal also folds case
		case "access_token":
			bit, good = 1<<0, decodeString(&set.AccessToken, v)
		case "token_type":
			bit, good = 1<<1, decodeString(&set.TokenType, v)
		case "refresh_token":
			bit, good = 1<<2, decodeString(&set.RefreshToken, v)
		case "id_token":
			bit, good = 1<<3, decodeString(&set.IDToken, v)
		case "scope":
			bit, good = 1<<4, decodeString(&set.Scope, v)
		case "expiry":
			// json.Unmarshal hands a time.Time field the value's bytes,
			// null included.
			bit, good = 1<<5, set.Expiry.UnmarshalJSON(v) == nil
		case "expiry_source":
			bit, good = 1<<6, decodeString(&set.ExpirySource, v)
		case "extra":
			bit, good = 1<<7, json.Unmarshal(v, &set.Extra) == nil
		case "obtained_at":
			bit, good = 1<<8, set.ObtainedAt.UnmarshalJSON(v) == nil
		case "credential":
			bit, good = 1<<9, json.Unmarshal(v, &set.Credential) == nil
		default:
			return false
		}
		if !good || seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if !ok {
		return Set{}, false
	}
	return set, true
}

// decodeString decodes the JSON value v into *dst as json.Unmarshal does
// for a string field, reporting whether it did without error.
func decodeString(dst *string, v []byte) bool {
	if s, ok := jsonscan.PlainString(v); ok {
		*dst = s
		return true
	}
	return json.Unmarshal(v, dst) == nil
}
