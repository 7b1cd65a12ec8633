#!/usr/bin/env bash
# Prints the path of a usable nats-server binary on stdout, installing the
# Debian package when running as root. Everything else goes to stderr so
# callers can use "$(bash scripts/ensure-nats.sh)".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/ensure-binary.sh"

find_nats() {
  # Debian installs to /usr/sbin, which is not on PATH for non-root users.
  first_usable "$(command -v nats-server 2>/dev/null || true)" /usr/sbin/nats-server /usr/local/sbin/nats-server /usr/bin/nats-server
}

ensure_binary nats-server nats-server find_nats '' \
  "nats-server not found: install it with 'sudo apt-get install nats-server' or download it from the NATS releases, and put it on PATH"
