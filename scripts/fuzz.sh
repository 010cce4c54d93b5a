#!/usr/bin/env bash
# Runs every go fuzz target in the repo for a short bounded budget (FUZZTIME,
# default 20000 executions each). Their seed corpora (f.Add and testdata/fuzz)
# run as plain tests in `go test` too; this adds fresh random inputs on every
# CI run.
#
# The budget is a count, not a duration: Go 1.26's fuzz coordinator can report
# a spurious "context deadline exceeded" when a duration budget expires while a
# worker is busy (go.dev/issue/75804, fixed in Go 1.27). A real finding always
# writes a reproducer ("Failing input written to"), so a bare deadline error
# without one is retried once rather than failed.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20000x}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
count=0
for pkg in $(go list ./...); do
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for t in $targets; do
    echo "fuzz $pkg $t ($fuzztime)"
    for try in 1 2; do
      if go test -run='^$' -fuzz="^${t}\$" -fuzztime="$fuzztime" "$pkg" >"$log" 2>&1; then
        break
      fi
      if [ "$try" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "  (fuzz coordinator deadline flake, go.dev/issue/75804: retrying once)"
        continue
      fi
      cat "$log"
      exit 1
    done
    count=$((count+1))
  done
done
echo "fuzzed $count targets"
