// Package connmeta checks and encodes a connection's metadata: the labels an
// agent keeps with a connection, one JSON value per key (string, number,
// boolean, null, array or object).
//
// Values are kept as the agent wrote them: only insignificant whitespace is
// removed, so member order, number spelling and string escapes come back
// unchanged. Limits keep a connection row small (abandoned consents stay in
// the database until they are purged): at most MaxEntries keys of at most
// MaxKeyLen bytes, values nested at most MaxDepth arrays or objects deep,
// and at most MaxSize bytes for the whole encoded object. Keys and every
// string inside a value (object member names included) must be free of
// control characters (see package ctrlchar).
package connmeta
