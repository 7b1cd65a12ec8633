#!/usr/bin/env bash
# Prints the path of a usable Chromium on stdout, installing Debian's chromium
# package when running as root (the browser tests drive it with playwright-core;
# nothing is downloaded by playwright). Everything else goes to stderr so callers
# can use "$(bash scripts/ensure-chromium.sh)".
set -euo pipefail

usable() {
  [ -n "${1:-}" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1
}

find_chromium() {
  local candidate
  for candidate in "${PEERBROKER_CHROMIUM:-}" /usr/bin/chromium "$(command -v chromium 2>/dev/null || true)"; do
    if usable "$candidate"; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

if find_chromium; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium not found: installing the Debian package chromium (for the browser tests)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when apt does not know the package yet.
  if ! apt-cache show chromium >/dev/null 2>&1; then
    apt-get update -qq >&2
  fi
  apt-get install -y -qq --no-install-recommends chromium >&2
  if find_chromium; then
    exit 0
  fi
  echo "chromium: the package installed but no usable binary was found" >&2
  exit 1
fi

echo "chromium not found: the browser tests need it; install it with 'sudo apt-get install chromium' (or set PEERBROKER_CHROMIUM to a Chromium binary)" >&2
exit 1
