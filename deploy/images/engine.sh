#!/usr/bin/env bash
# A Docker engine for `make images` / `make test-images` (dev and CI only, never a service).
#   eval "$(deploy/images/engine.sh start)"   # prints `export DOCKER_HOST=...`
#   deploy/images/engine.sh stop              # stops the engine this script started, if any
# An engine that already answers (DOCKER_HOST, or the default socket) is used as it is.
# Otherwise this starts dockerd itself: its own socket, its data root under the project's
# data dir (.cctelegram/docker), no bridge and no iptables rules (containers use the host
# network), and installs docker.io with apt-get when dockerd is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DATA="${CCTELEGRAM_DATA_DIR:-$ROOT/.cctelegram}/docker"
# Unix socket paths are limited to 108 bytes: the socket and exec root live in a short
# directory named after the project path.
RUN_DIR="/tmp/cctg-docker-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
SOCKET="$RUN_DIR/docker.sock"

answers() { timeout 10 docker ${1:+--host "$1"} info >/dev/null 2>&1; }

start() {
  if [ -n "${DOCKER_HOST:-}" ] && answers "$DOCKER_HOST"; then
    echo "export DOCKER_HOST=$DOCKER_HOST"; return
  fi
  if [ -z "${DOCKER_HOST:-}" ] && answers ""; then
    echo "# using the default Docker engine"; return
  fi
  if answers "unix://$SOCKET"; then
    echo "export DOCKER_HOST=unix://$SOCKET"; return
  fi
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    echo "installing docker.io (dockerd not found) ..." >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
  fi
  mkdir -p "$DATA" "$RUN_DIR"
  echo "starting dockerd (socket $SOCKET, data root $DATA) ..." >&2
  setsid dockerd \
    --host "unix://$SOCKET" \
    --data-root "$DATA" \
    --exec-root "$RUN_DIR/exec" \
    --pidfile "$RUN_DIR/dockerd.pid" \
    --bridge=none --iptables=false --ip-masq=false \
    >"$DATA/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    if answers "unix://$SOCKET"; then
      echo "export DOCKER_HOST=unix://$SOCKET"; return
    fi
    sleep 0.5
  done
  echo "dockerd did not answer within 60 s; its log:" >&2
  tail -n 30 "$DATA/dockerd.log" >&2
  exit 1
}

stop() {
  local pidfile="$RUN_DIR/dockerd.pid"
  [ -f "$pidfile" ] || return 0
  local pid; pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    echo "stopping dockerd ($pid) ..." >&2
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  rm -f "$pidfile"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
