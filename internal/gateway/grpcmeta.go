package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/dromos-dev/dromos/internal/connmeta"
	"github.com/dromos-dev/dromos/internal/httpapi"
)

// grpcMetadata merges a gRPC request's two metadata fields into JSON
// values: the string map (each value a JSON string) and the Struct (each
// value as JSON). A key in both is refused rather than one silently
// winning. The limits are checked later, with the REST request's.
func grpcMetadata(strs map[string]string, values *structpb.Struct) (map[string]json.RawMessage, error) {
	out := connmeta.FromStrings(strs)
	fields := values.GetFields()
	if len(fields) == 0 {
		return out, nil
	}
	if out == nil {
		out = make(map[string]json.RawMessage, len(fields))
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if _, dup := out[k]; dup {
			return nil, httpapi.BadRequest("%s", &connmeta.Error{Key: k, Reason: "given in both metadata and metadata_json"})
		}
		raw, err := encodeValue(fields[k].AsInterface())
		if err != nil {
			return nil, httpapi.BadRequest("%s", &connmeta.Error{Key: k, Reason: "value is not valid JSON (NaN or infinity)"})
		}
		out[k] = raw
	}
	return out, nil
}

// structMetadata turns stored metadata into a Struct for a gRPC answer.
// Struct holds numbers as doubles, so integers beyond 2^53 lose precision
// there (REST answers keep them exactly). A value that cannot be decoded is
// left out rather than failing the whole answer.
func structMetadata(m map[string]json.RawMessage) *structpb.Struct {
	if len(m) == 0 {
		return nil
	}
	out := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(m))}
	for k, raw := range m {
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		pv, err := structpb.NewValue(v)
		if err != nil {
			continue
		}
		out.Fields[k] = pv
	}
	return out
}

func encodeValue(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode metadata value: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
