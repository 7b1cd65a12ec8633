#!/usr/bin/env bash
# What `npm run demo` runs: build if needed, find nats-server (installing it
# when root), then run the demo. Without nats-server the demo runs its three
# brokers in one process over an in-process exchange and says so.
#   PEERBROKER_NATS_SERVER=/path    use this nats-server binary
#   PEERBROKER_DEMO_IN_PROCESS=1    skip NATS, run the brokers in one process
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

if [ ! -f dist/examples/demo/run-demo.js ] || [ ! -f dist/src/cli/main.js ] || [ ! -f dist/examples/bank/index.js ]; then
  if [ ! -d node_modules ]; then
    npm ci
  fi
  npm run build
fi

if [ "${PEERBROKER_DEMO_IN_PROCESS:-}" != "1" ] && [ -z "${PEERBROKER_NATS_SERVER:-}" ]; then
  err="$(mktemp)"
  # Its messages (an apt-get install, or why there is none) are shown and kept for the reason.
  if nats="$(bash scripts/ensure-nats.sh 2> >(tee "$err" >&2))"; then
    export PEERBROKER_NATS_SERVER="$nats"
  else
    reason="$(tail -n 1 "$err")"
    if [ "$(id -u)" -ne 0 ]; then
      reason="not running as root, so scripts/ensure-nats.sh could not install it with apt-get (${reason})"
    fi
    export PEERBROKER_NATS_UNAVAILABLE="${reason:-scripts/ensure-nats.sh found none}"
  fi
  rm -f "$err"
fi

# exec: signals (Ctrl-C, SIGTERM) reach the demo itself, which stops what it started.
exec node dist/examples/demo/run-demo.js
