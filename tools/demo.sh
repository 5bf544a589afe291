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

export PATH="$root/build-release/cli:$PATH"
exec bash "$root/tools/demo_walk.sh"
