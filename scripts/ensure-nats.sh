#!/usr/bin/env bash
# Prints the path of a usable nats-server binary on stdout, installing the
# Debian package when running as root. Everything else goes to stderr so
# callers can use "$(bash scripts/ensure-nats.sh)".
set -euo pipefail

usable() {
  [ -n "${1:-}" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1
}

find_nats() {
  local candidate
  candidate="$(command -v nats-server 2>/dev/null || true)"
  if usable "$candidate"; then
    printf '%s\n' "$candidate"
    return 0
  fi
  # Debian installs to /usr/sbin, which is not on PATH for non-root users.
  for dir in /usr/sbin /usr/local/sbin /usr/bin; do
    if usable "$dir/nats-server"; then
      printf '%s\n' "$dir/nats-server"
      return 0
    fi
  done
  return 1
}

if find_nats; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "nats-server not found: installing the Debian package nats-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when apt does not know the package yet.
  if ! apt-cache show nats-server >/dev/null 2>&1; then
    apt-get update -qq >&2
  fi
  apt-get install -y -qq nats-server >&2
  if find_nats; then
    exit 0
  fi
  echo "nats-server: the package installed but no usable binary was found" >&2
  exit 1
fi

echo "nats-server not found: install it with 'sudo apt-get install nats-server' or download it from the NATS releases, and put it on PATH" >&2
exit 1
