#!/usr/bin/env bash
# Runs every test: formatting, vet, the race-enabled test suite and a short
# fuzzing pass over every fuzz target. Installs what the tests need when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 ./...
./scripts/fuzz.sh
echo "all tests passed"
