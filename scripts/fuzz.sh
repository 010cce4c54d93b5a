#!/usr/bin/env bash
# Runs every go fuzz target in the repo for a short bounded time (FUZZTIME,
# default 4s each). Their seed corpora (f.Add and testdata/fuzz) run as plain
# tests in `go test` too; this adds fresh random inputs on every CI run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-4s}
count=0
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for t in $targets; do
    echo "fuzz $pkg $t ($fuzztime)"
    go test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/ccrelay-fuzz.log 2>&1 || { cat /tmp/ccrelay-fuzz.log; exit 1; }
    count=$((count+1))
  done
done
echo "fuzzed $count targets"
