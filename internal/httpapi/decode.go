package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBody is the default request body limit.
const MaxBody = 1 << 20

// DecodeJSON reads exactly one JSON value from the body into v, rejecting
// unknown fields, trailing data, wrong content types and bodies over limit
// bytes. Its errors are *Error values ready for WriteError; their messages
// name the problem (field, position) but never echo the body.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if limit <= 0 {
		limit = MaxBody
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Status: http.StatusUnsupportedMediaType, Code: CodeBadRequest, Message: "Content-Type must be application/json"}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err, limit)
		}
		return BadRequest("request body must hold a single JSON object")
	}
	return nil
}

func decodeError(err error, limit int64) *Error {
	var (
		mbe  *http.MaxBytesError
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		text = err.Error()
	)
	switch {
	case errors.As(err, &mbe):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Message: fmt.Sprintf("request body larger than %d bytes", limit)}
	case errors.Is(err, io.EOF):
		return BadRequest("request body is empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return BadRequest("request body is truncated JSON")
	case errors.As(err, &syn):
		return BadRequest("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return BadRequest("field %q must be %s", typ.Field, jsonKind(typ.Type.Kind().String()))
		}
		return BadRequest("request body must be a JSON object")
	case strings.HasPrefix(text, "json: unknown field "):
		return BadRequest("unknown field %s", strings.TrimPrefix(text, "json: unknown field "))
	default:
		return BadRequest("malformed JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	default:
		return "a number"
	}
}
