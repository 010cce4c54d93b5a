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
# Every relay the e2e tests start watches its config file with one inotify
# instance, and Chromium (the browser tests, run alongside) takes many: the
# default of 128 per user can run out. Raise it where we may (root in CI).
if [ "$(cat /proc/sys/fs/inotify/max_user_instances 2>/dev/null || echo 1024)" -lt 1024 ]; then
  sysctl -qw fs.inotify.max_user_instances=1024 2>/dev/null || echo "note: fs.inotify.max_user_instances is below 1024; config-reload tests may fail" >&2
fi
# The cluster tests run against a real redis-server (they skip without one).
if ! command -v redis-server >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
# The dashboard's browser tests drive Debian's chromium headless (they skip
# without it).
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# The real-client end-to-end tests run the pinned Codex CLI, Claude Code and Gemini CLI
# of internal/e2e/clients (each skips without its binary). One npm ci
# installs all three from the lock file when npm is present and one is missing.
if [ ! -x internal/e2e/clients/node_modules/.bin/codex ] || [ ! -x internal/e2e/clients/node_modules/.bin/claude ] ||
  [ ! -x internal/e2e/clients/node_modules/.bin/gemini ]; then
  if command -v npm >/dev/null 2>&1; then
    npm ci --prefix internal/e2e/clients --no-audit --no-fund >/dev/null || echo "note: npm ci failed; TestCodexCLI*, TestClaudeCode* and TestGeminiCLI* will skip"
  else
    echo "note: npm not found; TestCodexCLI*, TestClaudeCode* and TestGeminiCLI* will skip"
  fi
fi
# The disk-full and read-only database tests mount a small tmpfs in a private
# user+mount namespace (unshare, from util-linux); they skip where the system
# refuses unprivileged namespaces. Say so up front rather than pass quietly.
if ! command -v unshare >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux >/dev/null || true
fi
if ! unshare -rm true 2>/dev/null; then
  echo "note: this system refuses unprivileged user namespaces; the file-system fault tests (TestDiskFullWhileServing, TestReadOnlyDatabaseAtStart) will skip"
fi
go test -race -count=1 ./...
./scripts/fuzz.sh
# Release pipeline (goreleaser check + snapshot build + run): opt-in, since a
# first goreleaser install alone takes ~18 min on a 2-core machine.
if [ "${RELEASE_CHECK:-0}" = 1 ]; then ./scripts/release-check.sh; fi
echo "all tests passed"
