#!/usr/bin/env bash
# Prints the path of a usable Chromium on stdout, installing Debian's chromium
# package when running as root (the browser tests drive it with playwright-core;
# nothing is downloaded by playwright). Everything else goes to stderr so callers
# can use "$(bash scripts/ensure-chromium.sh)".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/ensure-binary.sh"

find_chromium() {
  first_usable "${PEERBROKER_CHROMIUM:-}" /usr/bin/chromium "$(command -v chromium 2>/dev/null || true)"
}

ensure_binary chromium chromium find_chromium ' (for the browser tests)' \
  "chromium not found: the browser tests need it; install it with 'sudo apt-get install chromium' (or set PEERBROKER_CHROMIUM to a Chromium binary)" \
  --no-install-recommends
