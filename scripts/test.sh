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

status=0
npx vitest run "$@" || status=$?
exit "$status"
