// Package dromosv1 is the generated Go code for the dromos.v1 protobuf
// package (gateway.proto beside it): the Gateway service's messages, client
// and server interfaces. Regenerate with scripts/gen-proto.sh; do not edit
// the *.pb.go files by hand.
package dromosv1
