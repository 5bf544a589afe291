#!/usr/bin/env bash
# Runs inside the system that gets the package (tests/package/run.sh): installs
# it as an operator would, checks what it put where, and removes it again,
# also when a check fails.
#   inside.sh PATH/TO/via_<version>_<arch>.deb VERSION
set -euo pipefail
deb=$1
version=$2
export DEBIAN_FRONTEND=noninteractive
fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }

installed=0
log=$(mktemp)
remove() {
  if ((installed)); then apt-get remove -y -qq via >/dev/null 2>&1 || true; fi
  rm -f "$log"
}
trap remove EXIT

command -v via >/dev/null && fail "a via is already installed here: $(command -v via)"
cd "$(dirname "$deb")"
installed=1
apt-get install -y -qq --no-install-recommends "./$(basename "$deb")" >"$log" 2>&1 \
  || fail "apt install ./$(basename "$deb"): $(cat "$log")"
pass "apt install ./$(basename "$deb")"

[ "$(command -v via)" = /usr/bin/via ] || fail "via is not /usr/bin/via"
[ "$(via --version)" = "via $version" ] || fail "via --version says '$(via --version)', want 'via $version'"
pass "via --version: via $version (no test hooks)"
# A release ignores the test hooks: the crash point would kill this init.
hooks=$(mktemp -d)
VIA_CRASH_AT=append.before_commit VIA_TEST_FAULT=provision_fail via --home "$hooks/h" --json init \
  | grep -q '"created":true' || fail "via init with \$VIA_CRASH_AT set did not complete"
VIA_TEST_FAULT=provision_fail via --home "$hooks/h" --json addon create sqlite db --app api \
  | grep -q '"storage_ready":true' || fail "\$VIA_TEST_FAULT changed what a release does"
rm -rf "$hooks"
pass "the release ignores \$VIA_CRASH_AT and \$VIA_TEST_FAULT"

page=$(man -w via) || fail "man -w via found no page"
[ "$page" = /usr/share/man/man1/via.1.gz ] || fail "man -w via: $page"
zcat "$page" | grep -q '^\.TH VIA 1 ' || fail "$page is not via(1)"
man via 2>/dev/null | grep -q 'EXIT STATUS' || fail "man via does not render"
pass "man page $page"

for shell in bash zsh fish; do
  case $shell in
    bash) file=/usr/share/bash-completion/completions/via ;;
    zsh) file=/usr/share/zsh/vendor-completions/_via ;;
    fish) file=/usr/share/fish/vendor_completions.d/via.fish ;;
  esac
  [ -f "$file" ] || fail "no $file"
  cmp -s "$file" <(via completion "$shell") || fail "$file differs from \`via completion $shell\`"
done
pass "completions for bash, zsh and fish, equal to \`via completion\`"

for doc in README.md cli.md operations.md runtime.md apps.md client.md event-log-format.md; do
  [ -f "/usr/share/doc/via/$doc" ] || fail "no /usr/share/doc/via/$doc"
done
pass "docs in /usr/share/doc/via"

unit=/usr/lib/systemd/system/via.service
[ -f "$unit" ] || fail "no $unit"
grep -qx 'ExecStart=/usr/bin/via serve --config /etc/via/serve.conf' "$unit" || fail "ExecStart of $unit"
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify $unit: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify $unit warns: $verify"
grep -qx 'Type=notify' "$unit" || fail "$unit is not Type=notify"
dpkg-query -W -f='${Depends}\n' via | grep -q 'libsystemd0' \
  || fail "via does not depend on libsystemd0 (loaded with dlopen for sd_notify)"
pass "systemd-analyze verify $unit (Type=notify, Depends libsystemd0)"

[ -f /etc/via/serve.conf ] || fail "no /etc/via/serve.conf"
dpkg-query -W -f='${Conffiles}\n' via | grep -q '/etc/via/serve.conf' || fail "serve.conf is not a conffile"
pass "/etc/via/serve.conf (a conffile)"

getent passwd via | grep -q ':/var/lib/via:' || fail "no system user via with home /var/lib/via"
[ "$(stat -c %U:%G:%a /var/lib/via)" = via:via:750 ] || fail "/var/lib/via is $(stat -c %U:%G:%a /var/lib/via)"
# The service user can create its home's log and keys there.
runuser -u via -- via --home /var/lib/via --json init | grep -q '"created":true' || fail "via init as user via"
[ "$(stat -c %U /var/lib/via/keys/log.key)" = via ] || fail "keys not owned by via"
pass "user via, /var/lib/via (0750), via init as via"

# The packaged settings start the packaged server (on a home of its own and a
# free port here), which drains and exits 0 on SIGTERM.
served=$(mktemp -d)
via --home "$served/h" init >/dev/null 2>&1 || fail "via init for the serve check"
via --home "$served/h" serve --config /etc/via/serve.conf --listen 127.0.0.1:0 \
  --snapshot-maintenance false >/dev/null 2>"$served/err" &
serve_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$served/err" && break; sleep 0.1; done
grep -q 'listening on' "$served/err" || fail "via serve --config /etc/via/serve.conf: $(cat "$served/err")"
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "via serve exited $? after SIGTERM: $(cat "$served/err")"
rm -rf "$served"
pass "via serve --config /etc/via/serve.conf starts, and drains on SIGTERM"

apt-get remove -y -qq via >"$log" 2>&1 || fail "apt-get remove -y via: $(cat "$log")"
installed=0
[ ! -e /usr/bin/via ] || fail "/usr/bin/via is still there after remove"
[ ! -e "$unit" ] || fail "$unit is still there after remove"
[ -f /etc/via/serve.conf ] || fail "remove deleted the conffile (only purge does)"
[ -f /var/lib/via/log/events.db ] || fail "remove deleted the home's log"
pass "apt-get remove -y via: binary and unit gone, configuration and data kept"
