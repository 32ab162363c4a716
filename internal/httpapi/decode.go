package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"
)

// MaxBody is the default request body limit.
const MaxBody = 1 << 20

// DecodeJSON reads exactly one JSON value from the body into v, rejecting
// unknown fields, trailing data, wrong content types, bodies over limit
// bytes and strings holding a NUL character (\u0000: no field needs one,
// and PostgreSQL refuses to store it). Its errors are *Error values ready
// for WriteError; their messages name the problem (field, position) but
// never echo the body.
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err, limit)
		}
		return BadRequest("request body could not be read")
	}
	if hasNULEscape(body) {
		return BadRequest("request body holds a NUL character (\\u0000), which no field accepts")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			if name, accepted, ok := inexactName(body, reflect.TypeOf(v)); !ok {
				return unknownField(name, accepted)
			}
		}
		return decodeError(err, limit)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err, limit)
		}
		return BadRequest("request body must hold a single JSON object")
	}
	// encoding/json matches member names without regard to case; the
	// contract names them exactly, so "USER_ID" is an unknown field too.
	if name, accepted, ok := inexactName(body, reflect.TypeOf(v)); !ok {
		return unknownField(name, accepted)
	}
	return nil
}

// unknownField names the refused member and the ones that would have been
// accepted in its place, so a caller can fix a typo without the docs.
func unknownField(name string, accepted []string) *Error {
	return BadRequest("unknown field %q; accepted fields: %s", name, strings.Join(accepted, ", "))
}

// inexactName walks the JSON object raw beside the struct type t and
// returns the first member name (in the order written) that is not exactly
// one of t's JSON field names (ok false) with the names accepted there,
// descending into members whose field is a struct. Anything that is not a
// struct and an object is left to the decoder.
func inexactName(raw []byte, t reflect.Type) (string, []string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	// A type that decodes itself chooses its own names.
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		return "", nil, true
	}
	names, values, ok := objectMembers(raw)
	if !ok {
		return "", nil, true
	}
	fields := jsonFields(t)
	for i, name := range names {
		ft, known := fields.types[name]
		if !known {
			return name, fields.names, false
		}
		if inner, accepted, ok := inexactName(values[i], ft); !ok {
			return name + "." + inner, accepted, false
		}
	}
	return "", nil, true
}

// objectMembers lists the members of the JSON object raw in the order they
// are written; ok is false when raw is not an object.
func objectMembers(raw []byte) (names []string, values []json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		names, values = append(names, name), append(values, v)
	}
	return names, values, true
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// structFields is what encoding/json decodes into a struct type: the JSON
// field names in declaration order (embedded structs' fields in place) and
// each name's type, a shallower field winning over an embedded one.
type structFields struct {
	names []string
	types map[string]reflect.Type
}

// fieldCache maps a struct type to its *structFields.
var fieldCache sync.Map

// jsonFields walks t once and caches the result.
func jsonFields(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	sf := &structFields{types: map[string]reflect.Type{}}
	depthOf := map[string]int{}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			if f.Anonymous && name == "" {
				et := f.Type
				for et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, depth+1)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			d, seen := depthOf[name]
			if !seen {
				sf.names = append(sf.names, name)
			}
			if !seen || depth < d {
				depthOf[name], sf.types[name] = depth, f.Type
			}
		}
	}
	walk(t, 0)
	fieldCache.Store(t, sf)
	return sf
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

// hasNULEscape reports whether the JSON text b holds the escape \u0000 (a
// backslash that is not itself escaped, then u0000). A raw NUL byte is
// already a syntax error for the decoder.
func hasNULEscape(b []byte) bool {
	esc := []byte(`\u0000`)
	for off := 0; ; {
		i := bytes.Index(b[off:], esc)
		if i < 0 {
			return false
		}
		p := off + i
		n := 0
		for j := p; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 1 {
			return true
		}
		off = p + 1
	}
}
