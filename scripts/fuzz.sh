#!/usr/bin/env bash
# Runs each fuzz target given as PKG:FUNC for FUZZTIME (default 8s).
#
# Go 1.26's fuzzing coordinator can end a healthy run with a bare
# "context deadline exceeded" when -fuzztime runs out while a worker is
# mid-call (go.dev/issue/75804, fixed in Go 1.27). Such a run writes no
# failing input. A target that fails that way, and only that way, is run
# again, at most twice (CI has seen the race on a target's first run); a
# failure that writes an input under testdata/fuzz, any other failure, or
# the race three times in a row, fails.
set -uo pipefail
fuzztime="${FUZZTIME:-8s}"

listing() { ls -1 "$1/testdata/fuzz/$2" 2>/dev/null || true; }

for t in "$@"; do
  pkg="${t%%:*}" fn="${t##*:}"
  for attempt in 1 2 3; do
    echo "fuzz $pkg $fn"
    before="$(listing "$pkg" "$fn")"
    out="$(mktemp)"
    go test -run '^$' -fuzz "^${fn}\$" -fuzztime "$fuzztime" -parallel 2 "$pkg" 2>&1 | tee "$out"
    rc="${PIPESTATUS[0]}"
    after="$(listing "$pkg" "$fn")"
    if [ "$rc" -eq 0 ]; then rm -f "$out"; break; fi
    if [ "$attempt" -lt 3 ] && [ "$before" = "$after" ] &&
      grep -q -- "--- FAIL: ${fn} " "$out" &&
      [ "$(grep -A1 -- "--- FAIL: ${fn} " "$out" | tail -n1 | tr -d '[:space:]')" = "contextdeadlineexceeded" ]; then
      echo "fuzz $pkg $fn: stopped by the toolchain's fuzztime race (no failing input written); running it again"
      rm -f "$out"
      continue
    fi
    rm -f "$out"
    echo "fuzz $pkg $fn: FAILED" >&2
    exit 1
  done
done
