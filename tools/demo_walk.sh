#!/usr/bin/env bash
# The demo's walk, on a fresh temporary home with the `via` found on PATH:
# init, the add-on lifecycle (tools/demo_lifecycle.sh), the runtime
# (tools/demo_runtime.sh), then the audit. tools/demo.sh runs it on the
# release build; the test "demo: the README's main job" runs it on the
# tested build, so the demo cannot rot unnoticed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

export VIA_HOME=$(mktemp -d /tmp/via-demo-XXXXXX)
trap 'rm -rf "$VIA_HOME"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

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
