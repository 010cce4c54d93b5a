#!/usr/bin/env bash
# Checks the release pipeline end to end on this machine:
#   1. `goreleaser check` validates .goreleaser.yaml;
#   2. a snapshot build of the host target only (linux/amd64 here), with the
#      host's C compiler instead of the release's zig (see .goreleaser.yaml);
#   3. the built binary prints its version, starts `serve` on a temporary
#      database, answers /health with the database ok, records a request, and
#      `stats --json` reads that request back: proof that the shipped binary
#      has a working (cgo) SQLite driver.
# GoReleaser is installed with `go install` at the pinned version when
# missing; the first install compiles it from source and takes several
# minutes (18 min measured on a 2-core machine with a cold module cache),
# so scripts/test.sh runs this only when RELEASE_CHECK=1.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1

GORELEASER_VERSION=v2.15.1
start=$SECONDS

goreleaser=""
for candidate in "$(command -v goreleaser || true)" "$(go env GOPATH)/bin/goreleaser"; do
  if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version 2>/dev/null | grep -q "${GORELEASER_VERSION#v}"; then
    goreleaser=$candidate
    break
  fi
done
if [ -z "$goreleaser" ]; then
  echo "release-check: installing goreleaser $GORELEASER_VERSION with go install (slow the first time)"
  GOFLAGS= go install "github.com/goreleaser/goreleaser/v2@$GORELEASER_VERSION"
  goreleaser="$(go env GOPATH)/bin/goreleaser"
fi
echo "release-check: goreleaser ready after $((SECONDS - start))s"

"$goreleaser" check

work=$(mktemp -d)
created_dist=0
[ -e dist ] || created_dist=1
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
  if [ "$created_dist" = 1 ]; then rm -rf dist; fi
}
trap cleanup EXIT

build_start=$SECONDS
cc=${CC:-gcc}
CC_LINUX_AMD64=${CC_LINUX_AMD64:-$cc} CC_LINUX_ARM64=${CC_LINUX_ARM64:-$cc} \
CC_DARWIN_AMD64=${CC_DARWIN_AMD64:-clang} CC_DARWIN_ARM64=${CC_DARWIN_ARM64:-clang} \
  "$goreleaser" build --snapshot --single-target --clean --output "$work/ccrelay"
echo "release-check: snapshot build took $((SECONDS - build_start))s"

bin="$work/ccrelay"
go version -m "$bin" | grep -q 'CGO_ENABLED=1' || { echo "release-check: binary built without cgo" >&2; exit 1; }
"$bin" version | tee "$work/version.txt"
grep -q '^commit: ' "$work/version.txt" && grep -q '^go: go' "$work/version.txt"
if grep -q '^ccrelay dev$' "$work/version.txt"; then
  echo "release-check: version not set by -ldflags" >&2; exit 1
fi

# serve on a free loopback port with a fresh database.
port=$(( 20000 + RANDOM % 30000 ))
cat > "$work/config.toml" <<EOF
api_keys = ["release-check-key"]

[server]
host = "127.0.0.1"
port = $port
database_path = "$work/data/relay.db"
EOF
chmod 600 "$work/config.toml"
"$bin" serve --config "$work/config.toml" > "$work/serve.log" 2>&1 &
pid=$!

health=""
for _ in $(seq 1 100); do
  if health=$(curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null); then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/serve.log" >&2; echo "release-check: serve exited" >&2; exit 1; fi
  sleep 0.1
done
echo "release-check: /health -> $health"
echo "$health" | grep -q '"database":"ok"' || { cat "$work/serve.log" >&2; echo "release-check: database not ok" >&2; exit 1; }

# One API call (no accounts: a 503 in Anthropic's shape) to be recorded.
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'x-api-key: release-check-key' -H 'content-type: application/json' \
  -d '{"model":"claude-check","max_tokens":1,"messages":[{"role":"user","content":"hi"}]}' "http://127.0.0.1:$port/v1/messages")
[ "$code" = 503 ] || { echo "release-check: /v1/messages answered $code, want 503" >&2; exit 1; }

kill -TERM "$pid"
wait "$pid"
pid=""

stats=$("$bin" stats --config "$work/config.toml" --since all --by model --json)
echo "$stats" | grep -q '"requests": 1' || { echo "$stats" >&2; echo "release-check: the request was not recorded" >&2; exit 1; }
echo "$stats" | grep -q '"name": "claude-check"' || { echo "$stats" >&2; echo "release-check: wrong model recorded" >&2; exit 1; }

echo "release-check: ok in $((SECONDS - start))s"
