# Sourced by scripts/ensure-*.sh: find a usable binary, else install its Debian package when
# running as root. The path goes to stdout, everything else to stderr, so callers can use
# "$(bash scripts/ensure-<name>.sh)".

# True when $1 is an executable that answers --version.
usable() {
  [ -n "${1:-}" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1
}

# Prints the first usable candidate; false when none is.
first_usable() {
  local candidate
  for candidate in "$@"; do
    if usable "$candidate"; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

# ensure_binary <name> <package> <finder> <why> <missing> [apt-get install flags...]
# Runs <finder> (a function printing the path); when it finds nothing and this runs as root
# with apt-get, installs <package> (the install message ends with <why>) and looks again.
# Otherwise prints <missing>, which says how to get it. Exits 0 with the path printed, else 1.
ensure_binary() {
  local name=$1 package=$2 finder=$3 why=$4 missing=$5
  shift 5
  if "$finder"; then
    exit 0
  fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "$name not found: installing the Debian package $package$why" >&2
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when apt does not know the package yet.
    if ! apt-cache show "$package" >/dev/null 2>&1; then
      apt-get update -qq >&2
    fi
    apt-get install -y -qq "$@" "$package" >&2
    if "$finder"; then
      exit 0
    fi
    echo "$name: the package installed but no usable binary was found" >&2
    exit 1
  fi
  echo "$missing" >&2
  exit 1
}
