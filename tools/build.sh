#!/usr/bin/env bash
# Configures and builds one build tree. Usage: tools/build.sh DIR [cmake args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# Paths inside the checkout are hashed relative to it, so build trees at the
# same depth (build/, build-release/, build-package/) share ccache entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$root}"
dir=$1; shift
# Configured every time, so the options given here are the tree's (a tree
# first configured by another script keeps no stale option); a no-op when
# nothing changed.
cmake -S "$root" -B "$dir" -G Ninja "$@" >/dev/null
ninja -C "$dir" ${NINJA_FLAGS:-}
