#!/usr/bin/env bash
# The test command: installs dependencies, builds everything and runs every
# test through ctest (unit, integration, end-to-end, short fuzz runs).
#   VIA_SANITIZE=1 tools/test.sh   also builds and runs the suite under ASan+UBSan
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh

bash tools/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIA_TEST_HOOKS=ON
# libFuzzer targets need clang; they get their own tree.
CC=clang CXX=clang++ bash tools/build.sh build-fuzz -DVIA_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo

status=0
(cd build && ctest --output-on-failure -j2 -LE heavy ${CTEST_ARGS:-}) || status=$?

if [ "${VIA_SANITIZE:-0}" = 1 ]; then
  bash tools/build.sh build-asan -DVIA_SANITIZE=ON -DVIA_TEST_HOOKS=ON -DCMAKE_BUILD_TYPE=Debug
  (cd build-asan && ctest --output-on-failure -j2 -LE heavy) || status=$?
fi
exit $status
