#!/usr/bin/env bash
# The main job: installs dependencies, builds `via`, and walks the add-on
# lifecycle on a temporary home (tools/demo_lifecycle.sh), then the runtime:
# `via serve`, a workload token, SQL through the proxy with `via sql`, and a
# credential rotation the running server obeys (tools/demo_runtime.sh),
# printing each command before it runs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
# The demo runs what an operator installs: a release build, no test hooks.
bash tools/build.sh build-release -DCMAKE_BUILD_TYPE=Release -DVIA_TESTS=OFF -DVIA_TEST_HOOKS=OFF >/dev/null

export VIA_HOME=$(mktemp -d /tmp/via-demo-XXXXXX)
export PATH="$root/build-release/cli:$PATH"
trap 'rm -rf "$VIA_HOME"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
expect_fail() { printf '\n\033[1m$ %s\033[0m   (expected to fail)\n' "$*"; if "$@"; then echo "demo: expected a failure" >&2; exit 1; fi; }

echo "demo home: $VIA_HOME"
step via init
step via audit checkpoint
via audit checkpoint > "$VIA_HOME/saved.checkpoint"
bash "$root/tools/demo_lifecycle.sh"
bash "$root/tools/demo_runtime.sh"
step via audit log
step via audit prove --inclusion 1
step via audit verify --checkpoint "$VIA_HOME/saved.checkpoint"
echo
echo "demo: done"
