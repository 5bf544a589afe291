#!/usr/bin/env bash
# The Debian package end to end (ctest label `package`):
#   tests/package/run.sh BUILD_DIR
# 1. tools/package.sh on a tree of its own (build-package/ beside BUILD_DIR,
#    the same build type, configured without test hooks, as a release is):
#    only cli/ differs from the test tree, so the rest comes from ccache;
# 2. checks of the .deb itself: file name, version, Depends (dpkg-shlibdeps)
#    and the files it holds;
# 3. tests/package/inside.sh in a throwaway copy of this Debian system: an
#    overlay of / (changes go to a tmpfs) in a private mount namespace,
#    chrooted, so installing touches nothing of the host and needs no
#    network: apt install ./via_*.deb, via --version, man -w via, the
#    completions, the via user, systemd-analyze verify, apt-get remove.
#    Where the overlay cannot be mounted (no CAP_SYS_ADMIN, e.g. an
#    unprivileged container), inside.sh runs on the host itself, which is
#    acceptable on a throwaway CI machine; it refuses to if a via is
#    installed there already, and removes the package even when a check fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILD_DIR}" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
[ "$(id -u)" = 0 ] || fail "the package test installs a package: run it as root"

T=$(mktemp -d "${TMPDIR:-/tmp}/via-package-XXXXXX")
trap 'rm -rf "$T"' EXIT

# The package is what an operator installs: no test hooks ($VIA_CRASH_AT and
# $VIA_TEST_FAULT must be ignored by it; inside.sh checks).
package_tree=$(dirname "$build")/build-package
type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$build/CMakeCache.txt")
export CCACHE_BASEDIR="$root"  # share the test tree's cache entries
cmake -S "$root" -B "$package_tree" -G Ninja -DCMAKE_BUILD_TYPE="${type:-RelWithDebInfo}" \
  -DVIA_TESTS=OFF -DVIA_TEST_HOOKS=OFF -DVIA_SANITIZE=OFF >/dev/null 2>"$T/package.log" \
  || fail "configure $package_tree: $(tail -20 "$T/package.log")"
deb=$(bash "$root/tools/package.sh" --build "$package_tree" --out "$T/out" 2>>"$T/package.log") \
  || fail "tools/package.sh: $(tail -20 "$T/package.log")"
version=$(sed -n 's/^project(via VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
arch=$(dpkg --print-architecture)
[ "$(basename "$deb")" = "via_${version}_${arch}.deb" ] || fail "package name $(basename "$deb")"
pass "tools/package.sh made $(basename "$deb")"

[ "$(dpkg-deb -f "$deb" Package)" = via ] || fail "Package field"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version field"
depends=$(dpkg-deb -f "$deb" Depends)
# SQLite, libcrypto, Cap'n Proto and libstdc++ are linked in (VIA_STATIC_DEPS):
# the binary needs only the C library.
for lib in adduser libc6; do
  [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done
pass "Depends: $depends"
# libpq is dlopened for a PostgreSQL log only: recommended, never linked.
[[ $depends != *libpq* ]] || fail "Depends names libpq: $depends"
[ "$(dpkg-deb -f "$deb" Recommends)" = libpq5 ] || fail "Recommends: $(dpkg-deb -f "$deb" Recommends)"
dpkg-deb -c "$deb" | awk '{print $6}' >"$T/files"
for f in ./usr/bin/via ./usr/share/man/man1/via.1.gz ./usr/share/bash-completion/completions/via \
         ./usr/share/zsh/vendor-completions/_via ./usr/share/fish/vendor_completions.d/via.fish \
         ./usr/lib/systemd/system/via.service ./etc/via/serve.conf ./usr/share/doc/via/cli.md; do
  grep -qx -- "$f" "$T/files" || fail "the package lacks $f"
done
pass "the package holds the binary, man page, completions, unit, configuration and docs"

cp "$here/inside.sh" "$T/out/"
if unshare --mount --propagation private -- true 2>/dev/null &&
   mkdir "$T/sandbox" && unshare --mount --propagation private -- \
     sh -c 'mount -t tmpfs tmpfs "$1" && mkdir "$1/u" "$1/w" "$1/r" &&
            mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$1/r"' _ "$T/sandbox" 2>/dev/null; then
  echo "installing in a throwaway overlay of this system"
  unshare --mount --propagation private -- bash -euo pipefail -c '
    s=$1; out=$2; deb=$3; version=$4
    mount -t tmpfs -o mode=0755 tmpfs "$s"
    mkdir "$s/upper" "$s/work" "$s/root"
    mount -t overlay overlay -o "lowerdir=/,upperdir=$s/upper,workdir=$s/work" "$s/root"
    for d in proc sys dev; do mount --rbind "/$d" "$s/root/$d"; done
    mount -t tmpfs tmpfs "$s/root/run"
    mount -t tmpfs tmpfs "$s/root/tmp"
    mkdir "$s/root/tmp/package"
    cp "$out/$(basename "$deb")" "$out/inside.sh" "$s/root/tmp/package/"
    chroot "$s/root" /bin/bash /tmp/package/inside.sh "/tmp/package/$(basename "$deb")" "$version"
  ' _ "$T/sandbox" "$T/out" "$deb" "$version"
else
  echo "cannot mount an overlay here: installing on this host (CI machines are throwaway)"
  bash "$T/out/inside.sh" "$deb" "$version"
fi
echo "package: all checks passed"
