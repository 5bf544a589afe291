#!/usr/bin/env bash
# Installs what Via needs to build and test on Debian 12 (run as root).
# Idempotent and quiet when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  clang libclang-rt-14-dev
  libsqlite3-dev sqlite3 capnproto libcapnp-dev libboost-dev libssl-dev openssl
  libcli11-dev catch2 nlohmann-json3-dev
  # nginx: the floor of tools/bench_runtime (a static proxy on the same host).
  curl python3 wrk nginx
  # Completion tests run the real shells; the timeline test runs headless
  # Chromium (fonts for its screenshots).
  zsh fish chromium fonts-dejavu-core
  # tools/package.sh and the package test: CPack's DEB generator with
  # dpkg-shlibdeps, then apt install, man -w and systemd-analyze verify.
  dpkg-dev file man-db systemd adduser
  # The event log on PostgreSQL (eventstore/postgres): libpq to build, and a
  # throwaway cluster for its tests (tools/pg_cluster.sh, ctest fixture).
  postgresql-15 postgresql-client-15 libpq-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: run as root (or install these packages yourself)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node.js for the end-to-end tests (unmodified @libsql/client and jose). A
# machine may already have it from another source (its npm comes with it), so
# Debian's packages are installed only when node or npm is missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup: installing nodejs npm" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# The pinned npm packages of tests/e2e (package-lock.json).
e2e="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e"
if [ -f "$e2e/package-lock.json" ] && [ ! -d "$e2e/node_modules" ]; then
  (cd "$e2e" && npm ci --no-audit --no-fund >/dev/null)
fi

