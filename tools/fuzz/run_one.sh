#!/usr/bin/env bash
# Runs one libFuzzer target for a fixed time on a fresh corpus seeded from
# tests/testdata/fuzz/<target>/ (if present). Exit non-zero on any crash.
# Usage: tools/fuzz/run_one.sh FUZZ_BUILD_DIR TARGET SECONDS
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$1 target=$2 seconds=$3
bin="$dir/tests/fuzz/$target"
if [ ! -x "$bin" ]; then
  echo "fuzz: $bin is not built (tools/test.sh builds it with clang)" >&2
  exit 1
fi
corpus=$(mktemp -d /tmp/via-fuzz-XXXXXX)
trap 'rm -rf "$corpus"' EXIT
seeds="$root/tests/testdata/fuzz/$target"
args=(-max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1)
# libFuzzer writes new inputs into the first corpus directory: the scratch one,
# never the seeds under tests/testdata (which it only reads, regression inputs
# included, before it starts mutating).
args+=("$corpus")
[ -d "$seeds" ] && args+=("$seeds")
cd "$corpus"
"$bin" "${args[@]}" 2>&1 | tail -n 15
