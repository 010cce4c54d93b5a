#!/usr/bin/env bash
# redis-server for ccrelay's cluster tests and for trying a cluster by hand.
#
#   scripts/redis.sh install        install redis-server (Debian package) if missing
#   scripts/redis.sh start [PORT]   install if needed, then run a throwaway redis-server on
#                                   127.0.0.1:PORT (default 6390) in the foreground, without
#                                   persistence; Ctrl-C stops it
#
# The Go tests start their own redis-server on a free loopback port (and skip
# when none is installed); they need only `install`.
set -euo pipefail

install() {
  if command -v redis-server >/dev/null 2>&1; then
    return 0
  fi
  echo "installing redis-server (Debian package) for the cluster tests" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
}

case "${1:-install}" in
  install)
    install
    ;;
  start)
    install
    port="${2:-6390}"
    exec redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no
    ;;
  *)
    echo "usage: $0 install | start [PORT]" >&2
    exit 2
    ;;
esac
