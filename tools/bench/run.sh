#!/usr/bin/env bash
# Builds via_bench (Release, build-bench/) if needed and runs it. The generated
# 1M-event log is cached in build-bench/data, so reruns skip generation.
#   tools/bench/run.sh                       all rows, 5 runs each, medians
#   tools/bench/run.sh --quick               small sizes (smoke run)
#   tools/bench/run.sh --rows verify --json  one row, machine-readable
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${VIA_BENCH_BUILD_DIR:-$root/build-bench}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVIA_TESTS=OFF >/dev/null
fi
ninja -C "$build" via_bench >&2
exec "$build/tools/bench/via_bench" --dir "${VIA_BENCH_DATA_DIR:-$build/data}" "$@"
