#!/usr/bin/env bash
# Regenerates the Go code for api/proto/dromos/v1/*.proto into the same
# folder. Run from anywhere: scripts/gen-proto.sh
#
# protoc comes from Debian's protobuf-compiler (installed when missing; needs
# root). protoc-gen-go is pinned to the google.golang.org/protobuf version in
# go.mod so the generated code matches the runtime we link; protoc-gen-go-grpc
# is pinned to the release named in gateway_grpc.pb.go's header, so a rerun
# without proto changes changes nothing. Both go into a temporary GOBIN,
# never onto PATH.
#
# google/api/{annotations,http}.proto are our own minimal copies whose
# go_package points at genproto's annotations package, so nothing is generated
# for them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v protoc >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "gen-proto: protoc is missing; install protobuf-compiler (needs root)" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null
fi

gobin="$(mktemp -d)"
trap 'rm -rf "$gobin"' EXIT

pbver="$(go list -m -f '{{.Version}}' google.golang.org/protobuf)"
GOBIN="$gobin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${pbver}"
grpcgen="v1.6.2"
GOBIN="$gobin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${grpcgen}"

module="github.com/dromos-dev/dromos"
PATH="$gobin:$PATH" protoc \
	-I api/proto \
	--go_out=. --go_opt="module=${module}" \
	--go-grpc_out=. --go-grpc_opt="module=${module}" \
	api/proto/dromos/v1/*.proto

gofmt -l api/proto/dromos/v1 | { ! grep . ; } || { echo "gen-proto: generated code is not gofmt-clean" >&2; exit 1; }
echo "gen-proto: regenerated api/proto/dromos/v1 (protoc $(protoc --version | awk '{print $2}'), protoc-gen-go ${pbver}, protoc-gen-go-grpc ${grpcgen})"
