# The test command the README and CI use. PostgreSQL tests run against
# DROMOS_TEST_POSTGRES_URL; when it is unset and a local server answers on
# 127.0.0.1:5432, that server's "test" database is used (each test works in
# its own scratch schema and drops it afterwards).
PG_LOCAL := postgres://postgres@127.0.0.1:5432/test?sslmode=disable

.PHONY: test build lint bench

build:
	go build -o dromos ./cmd/dromos

test:
	@if [ -z "$$DROMOS_TEST_POSTGRES_URL" ] && command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then \
		export DROMOS_TEST_POSTGRES_URL='$(PG_LOCAL)'; echo "PostgreSQL tests: local server"; \
	elif [ -z "$$DROMOS_TEST_POSTGRES_URL" ]; then echo "PostgreSQL tests: skipped (no DROMOS_TEST_POSTGRES_URL, no local server)"; \
	else echo "PostgreSQL tests: $$DROMOS_TEST_POSTGRES_URL" | sed 's#//[^@]*@#//***@#'; fi; \
	go test -race -count=1 ./...

lint:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	go vet ./...
