#!/usr/bin/env bash
# Builds the Debian package via_<version>_<arch>.deb with CPack (DEB generator;
# Depends computed by dpkg-shlibdeps). Prints the package's path on stdout.
#
#   tools/package.sh                    Release build in build-release/, package there
#   tools/package.sh --build DIR        use the build tree DIR instead (configured
#                                       Release if it has no build.ninja yet)
#   tools/package.sh --out DIR          write the package (and CPack's staging) to DIR
#   tools/package.sh --no-build         package what the tree has built (the tests:
#                                       ctest must not relink binaries it runs)
#
# Install it with `apt install ./via_<version>_<arch>.deb` (README.md,
# "Install and package"; tests/package/run.sh does, in a throwaway system).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-release
out=
compile=1
while (($#)); do
  case $1 in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-build) compile=0; shift ;;
    *) echo "usage: tools/package.sh [--build DIR] [--out DIR] [--no-build]" >&2; exit 2 ;;
  esac
done
build=$(mkdir -p "$build" && cd "$build" && pwd)
out=${out:-$build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

bash "$root/tools/setup.sh"
if ((compile)); then
  if [ ! -f "$build/build.ninja" ]; then
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DVIA_TESTS=OFF >/dev/null
  fi
  # Only what the package holds: the binary, its completions and the man page.
  ninja -C "$build" ${NINJA_FLAGS:-} via via_install_files >&2
fi
rm -f "$out"/via_*.deb
(cd "$build" && cpack -G DEB -B "$out" >&2)
deb=$(ls "$out"/via_*.deb)
echo "$deb"
