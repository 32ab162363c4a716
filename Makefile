# The test command the README and CI use. PostgreSQL tests run against
# DROMOS_TEST_POSTGRES_URL; when it is unset and a local server answers on
# 127.0.0.1:5432, that server's "test" database is used (each test works in
# its own scratch schema and drops it afterwards).
PG_LOCAL := postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: test build lint bench bench-scale fuzz deploy-test

build:
	go build -o dromos ./cmd/dromos

test:
	@if [ -z "$$DROMOS_TEST_POSTGRES_URL" ] && command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then \
		export DROMOS_TEST_POSTGRES_URL='$(PG_LOCAL)'; echo "PostgreSQL tests: local server"; \
	elif [ -z "$$DROMOS_TEST_POSTGRES_URL" ]; then echo "PostgreSQL tests: skipped (no DROMOS_TEST_POSTGRES_URL, no local server)"; \
	else echo "PostgreSQL tests: $$DROMOS_TEST_POSTGRES_URL" | sed 's#//[^@]*@#//***@#'; fi; \
	go test -race -count=1 ./...

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
	go run $(STATICCHECK) ./...

# Load benchmark (docs/PERFORMANCE.md): real broker and gateway processes,
# and dromos serve, on PostgreSQL (DROMOS_BENCH_POSTGRES_URL, default the
# local "test" database) and SQLite beside a minimal reference server and
# that server behind two reverse proxies; about 4.5 minutes.
# Pass flags with BENCH_FLAGS, e.g. make bench BENCH_FLAGS=-quick
bench:
	go run ./cmd/dromos-bench $(BENCH_FLAGS)

# Scale benchmark (issue 21, docs/PERFORMANCE.md "Scale"): 200,000 seeded
# connections on PostgreSQL, two broker replicas, the provider's refresh
# calls by kind and token reads beside a 100-row database; about 6 minutes.
# BENCH_FLAGS=-quick: 2,000 rows, under a minute.
bench-scale:
	go run ./cmd/dromos-bench -parts scale $(BENCH_FLAGS)

# Short fuzzing of every parser of untrusted input (CI runs it after the
# tests; seed corpora live in the tests and testdata/fuzz). FUZZTIME=1m for
# a longer local run. scripts/fuzz.sh reruns a target (at most twice) when Go 1.26's
# fuzzing coordinator stops it at the deadline without a failing input.
FUZZTIME ?= 8s
FUZZ_TARGETS := \
	./internal/state:FuzzVerify \
	./internal/returnurl:FuzzCheck \
	./internal/exchange:FuzzParseResponse \
	./internal/clientip:FuzzHeaders \
	./internal/vault:FuzzOpen \
	./internal/netguard:FuzzCheckURL \
	./internal/catalog:FuzzExpand \
	./internal/provider:FuzzCallbackValues \
	./internal/jsonscan:FuzzMembers \
	./internal/tokenset:FuzzDecodeSet \
	./internal/credential:FuzzParse \
	./internal/gateway/brokerclient:FuzzDecodeMembers \
	./internal/httpapi:FuzzWriteJSONObject \
	./internal/ctrlchar:FuzzIndex \
	./internal/wwwauth:FuzzParse \
	./sdk:FuzzVerifyWebhook

fuzz:
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh $(FUZZ_TARGETS)

# MCP conformance (docs/MCP.md): the 19 client auth scenarios of
# @modelcontextprotocol/conformance (pinned in test/mcp-conformance, npm ci)
# against cmd/dromos-mcp-conformance and a `dromos dev` on free ports.
# Fails on a failure not in test/mcp-conformance/expected-failures.yml.
.PHONY: mcp-conformance
mcp-conformance:
	scripts/mcp-conformance.sh

# The Helm chart (deploy/helm/dromos) rendered with Helm's own Go packages for
# three value sets, every manifest decoded strictly into the k8s.io/api types,
# and helm lint's linter. A module of its own (deploy/go.mod), so the
# product's go.mod carries no Helm or Kubernetes dependency.
deploy-test:
	cd deploy && test -z "$$(gofmt -l .)" && go vet ./... && go test -count=1 ./...
