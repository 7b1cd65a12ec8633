#!/usr/bin/env bash
# What `npm test` runs: install if needed, build (integration tests spawn
# brokers from dist/), locate nats-server, then run vitest with any arguments.
set -euo pipefail

cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

if [ ! -d node_modules ] || [ ! -f node_modules/.package-lock.json ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci
fi

npm run build

PEERBROKER_NATS_SERVER="$(bash scripts/ensure-nats.sh)"
export PEERBROKER_NATS_SERVER
PEERBROKER_CHROMIUM="$(bash scripts/ensure-chromium.sh)"; export PEERBROKER_CHROMIUM  # the browser tests

# The TLS tests make their certificates with openssl.
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2 && apt-get install -y -qq openssl >&2
  else
    echo "openssl not found: install it with 'sudo apt-get install openssl'" >&2
    exit 1
  fi
fi

status=0
npx vitest run "$@" || status=$?
exit "$status"
