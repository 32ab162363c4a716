#!/usr/bin/env bash
# Runs the MCP conformance suite's client auth scenarios (all 19 of
# @modelcontextprotocol/conformance, pinned in test/mcp-conformance) against
# cmd/dromos-mcp-conformance talking to a `dromos dev` started here on free
# loopback ports. Fails on any failure not listed in
# test/mcp-conformance/expected-failures.yml (and on a listed one that now
# passes). Prints the score. Needs Node 20+ and npm (npm ci from the lock file).
#
#   scripts/mcp-conformance.sh            # or: make mcp-conformance
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
suite_dir="$root/test/mcp-conformance"
work="$(mktemp -d)"
dev_pid=""
cleanup() {
	if [ -n "$dev_pid" ]; then kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "mcp-conformance: building"
go build -o "$work/dromos" ./cmd/dromos
go build -o "$work/dromos-mcp-conformance" ./cmd/dromos-mcp-conformance

if [ ! -x "$suite_dir/node_modules/.bin/conformance" ]; then
	echo "mcp-conformance: installing the suite (npm ci)"
	(cd "$suite_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The suite's CIMD scenario expects this client_id; a deployment publishes
# its own document (MCP_CLIENT_METADATA_URL, docs/MCP.md).
MCP_CLIENT_METADATA_URL="https://conformance-test.local/client-metadata.json" \
	"$work/dromos" dev --data-dir "$work/data" --listen 127.0.0.1 \
	--broker-port 0 --gateway-port 0 --grpc-port 0 --log-level warn >"$work/dev.out" 2>"$work/dev.err" &
dev_pid=$!

broker="" gateway=""
for _ in $(seq 1 100); do
	broker="$(awk '$1=="broker" {print $2; exit}' "$work/dev.out" 2>/dev/null || true)"
	gateway="$(awk '$1=="gateway" && $2=="HTTP" {print $3; exit}' "$work/dev.out" 2>/dev/null || true)"
	if [ -n "$broker" ] && [ -n "$gateway" ]; then break; fi
	if ! kill -0 "$dev_pid" 2>/dev/null; then cat "$work/dev.err" >&2; echo "mcp-conformance: dromos dev exited" >&2; exit 1; fi
	sleep 0.1
done
if [ -z "$broker" ] || [ -z "$gateway" ]; then
	cat "$work/dev.err" >&2
	echo "mcp-conformance: dromos dev did not start" >&2
	exit 1
fi
echo "mcp-conformance: dromos dev broker $broker, gateway $gateway"
export DROMOS_BROKER_URL="$broker" DROMOS_GATEWAY_URL="$gateway"

status=0
summary="$work/summary.txt"
: >"$summary"
for suite in auth backcompat extensions; do
	echo "mcp-conformance: suite $suite"
	set +e
	(cd "$suite_dir" && ./node_modules/.bin/conformance client --suite "$suite" \
		--command "$work/dromos-mcp-conformance" \
		--expected-failures "$suite_dir/expected-failures.yml" \
		${MCP_CONFORMANCE_OUTPUT:+--output-dir "$MCP_CONFORMANCE_OUTPUT"}) | tee "$work/$suite.out"
	rc=${PIPESTATUS[0]}
	set -e
	grep -E '^[✓✗] auth/' "$work/$suite.out" >>"$summary" || true
	[ "$rc" -eq 0 ] || status=1
done
passed="$(grep -c '^✓' "$summary" || true)"
total="$(wc -l <"$summary" | tr -d ' ')"
echo
echo "MCP conformance (client auth scenarios): $passed/$total passed"
if [ "$status" -ne 0 ]; then
	echo "mcp-conformance: unexpected failures (or stale expected-failures entries); see above" >&2
	tail -n 50 "$work/dev.err" >&2 || true
fi
exit "$status"
