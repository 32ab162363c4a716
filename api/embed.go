// Package api holds the gateway's published API descriptions: the OpenAPI 3
// document of the v1 REST contract (openapi.yaml, served by the gateway at
// GET /openapi.yaml) and, under proto/, the dromos.v1 gRPC service with its
// generated Go code.
package api

import _ "embed"

//go:embed openapi.yaml
var openAPI string

// OpenAPI returns api/openapi.yaml as built into the binary.
func OpenAPI() string { return openAPI }
