#!/usr/bin/env bash
# Runs every libFuzzer target for a fixed time each (default 300 s).
# Any crash input is left as crash-* in the current directory: turn it into a
# named regression case under tests/testdata/fuzz/<target>/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${1:-300}
bash "$root/tools/setup.sh"
CC=clang CXX=clang++ bash "$root/tools/build.sh" "$root/build-fuzz" -DVIA_FUZZ=ON
for bin in "$root"/build-fuzz/tests/fuzz/*_fuzz; do
  echo "== $(basename "$bin") for ${seconds}s"
  bash "$root/tools/fuzz/run_one.sh" "$root/build-fuzz" "$(basename "$bin")" "$seconds"
done
