#!/usr/bin/env bash
# TLS end to end: a throwaway CA made with openssl, `via serve --tls-cert
# --tls-key`, then curl with --cacert (and refused without it), app.mjs with
# @libsql/client over https (NODE_EXTRA_CA_CERTS), the C++ client
# (via::Sql, the example of docs/apps.md) and `via sql` over https with the
# CA file, both refusing a certificate from another CA, the system store's
# CAs or for another host; Hrana over wss with @libsql/client, descriptor
# URLs in https, plain HTTP refused on the TLS port, and a certificate
# reloaded by SIGHUP (a broken one is not taken).
#   tests/e2e/tls.sh PATH/TO/via PATH/TO/via_example_cpp
set -euo pipefail

VIA_BIN=${1:?usage: tls.sh PATH/TO/via PATH/TO/via_example_cpp}
VIA_BIN=$(cd "$(dirname "$VIA_BIN")" && pwd)/$(basename "$VIA_BIN")
CPP_EXAMPLE=${2:?usage: tls.sh PATH/TO/via PATH/TO/via_example_cpp}
CPP_EXAMPLE=$(cd "$(dirname "$CPP_EXAMPLE")" && pwd)/$(basename "$CPP_EXAMPLE")
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in curl node openssl python3; do
  command -v "$tool" >/dev/null || { echo "tls.sh: $tool is required (tools/setup.sh installs it)" >&2; exit 1; }
done
if [ ! -d "$HERE/node_modules/@libsql/client" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund >/dev/null)
fi

H=$(mktemp -d "${TMPDIR:-/tmp}/via-tls-XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$H"
}
trap cleanup EXIT

via() { "$VIA_BIN" --home "$H/home" --actor e2e "$@"; }
fail() { echo "FAIL: $*" >&2; echo "--- server stderr" >&2; cat "$H/serve.err" >&2 || true; exit 1; }
pass() { echo "ok: $*"; }
json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d'"$1"')'; }

# The CA and two server certificates for 127.0.0.1 (P-256 keys).
cd "$H"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -days 2 -subj "/CN=via e2e test CA" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >ext.cnf
make_cert() {  # NAME [EXTENSIONS_FILE]
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
    -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile "${2:-ext.cnf}" -out "$1.pem" 2>/dev/null
}
make_cert first
make_cert second
# From the same CA, for another host only.
printf 'subjectAltName=DNS:elsewhere.invalid\nextendedKeyUsage=serverAuth\n' >ext-elsewhere.cnf
make_cert elsewhere ext-elsewhere.cnf
# Another CA, which signed nothing the server presents.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other-ca.key \
  -out other-ca.pem -days 2 -subj "/CN=another CA" 2>/dev/null
cp first.pem cert.pem
cp first.key key.pem
# The CN of the certificate the server presents now.
served_cn() {
  openssl s_client -connect "127.0.0.1:$PORT" -CAfile ca.pem -verify_return_error </dev/null 2>/dev/null \
    | openssl x509 -noout -subject | sed 's/.*CN *= *//'
}

via init >/dev/null
via addon create sqlite app-db --app api --bind DATABASE >/dev/null
via release create --app api --id v1 >/dev/null

"$VIA_BIN" --home "$H/home" serve --listen 127.0.0.1:0 --tls-cert cert.pem --tls-key key.pem \
  --snapshot-maintenance false --access-log "$H/access.log" >"$H/serve.out" 2>"$H/serve.err" &
SERVER_PID=$!
for _ in $(seq 200); do grep -q 'listening on https://[0-9.:]* ' "$H/serve.err" 2>/dev/null && break; sleep 0.05; done
BASE=$(grep -o 'https://[0-9.:]*' "$H/serve.err" | head -1)
[ -n "$BASE" ] || fail "server did not start with TLS"
PORT=${BASE##*:}
pass "via serve --tls-cert/--tls-key listens on $BASE"

[ "$(curl -s --cacert ca.pem -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] || fail "curl --cacert $BASE/healthz"
rc=0; curl -s -o /dev/null "$BASE/healthz" || rc=$?
[ "$rc" = 60 ] || fail "curl without the CA should fail verification (60), got $rc"
rc=0; out=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/healthz") || rc=$?
[ "$rc" != 0 ] && [ -z "$out" ] || fail "plain HTTP on the TLS port answered: $out"
[ "$(curl -s --cacert ca.pem "$BASE/healthz" | json_field '["ok"]')" = True ] || fail "healthz over TLS"
pass "curl --cacert gets 200; without the CA it fails verification; plain HTTP gets no answer"
[ "$(served_cn)" = first ] || fail "the served certificate is $(served_cn), want first"

TOKEN=$(via workload token --app api --release v1 --ttl 10m)
curl -sf --cacert ca.pem -H "Authorization: Bearer $TOKEN" "$BASE/v1/descriptors/DATABASE" >"$H/descriptor.json" \
  || fail "no descriptor over TLS"
DB_URL=$(json_field '["url"]' <"$H/descriptor.json")
DB_TOKEN=$(json_field '["auth_token"]' <"$H/descriptor.json")
[ "$DB_URL" = "$BASE" ] || fail "descriptor url is $DB_URL, want $BASE"
pass "descriptor URL is $DB_URL"

# @libsql/client over https, exactly as the Node app of docs/apps.md runs.
NODE_EXTRA_CA_CERTS="$H/ca.pem" VIA_CONFIG_URL="$BASE" VIA_WORKLOAD_TOKEN="$TOKEN" \
  EXPECT_APP=api EXPECT_RELEASE=v1 node "$HERE/app.mjs" >"$H/app.out" 2>&1 || { cat "$H/app.out" >&2; fail "app.mjs over https"; }
pass "app.mjs (@libsql/client, jose) over https with NODE_EXTRA_CA_CERTS"

# The C++ client (via::Sql: docs/examples/cpp/app.cc) over https, trusting
# the CA in VIA_CA_FILE; refused with tls_error when the file holds another
# CA, and with the system store (no VIA_CA_FILE), which lacks the test CA.
cpp() { VIA_CONFIG_URL="$BASE" VIA_WORKLOAD_TOKEN="$TOKEN" "$@" "$CPP_EXAMPLE"; }
cpp env VIA_CA_FILE="$H/ca.pem" >"$H/cpp.out" 2>&1 || { cat "$H/cpp.out" >&2; fail "C++ client over https"; }
grep -q '^visits: 1 (add-on ad_' "$H/cpp.out" || fail "C++ client over https printed: $(cat "$H/cpp.out")"
rc=0; cpp env VIA_CA_FILE="$H/other-ca.pem" >"$H/cpp.out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q '^tls_error: .*certificate verify failed' "$H/cpp.out" \
  || fail "C++ client with another CA: exit $rc: $(cat "$H/cpp.out")"
rc=0; cpp env -u VIA_CA_FILE >"$H/cpp.out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q '^tls_error: .*certificate verify failed' "$H/cpp.out" \
  || fail "C++ client with the system store: exit $rc: $(cat "$H/cpp.out")"
pass "C++ client (via::Sql) over https with VIA_CA_FILE; another CA and the system store are refused (tls_error)"

# `via sql` over https: --ca-file, or VIA_CA_FILE; another CA is refused.
vsql() { VIA_CONFIG_URL="$BASE" VIA_WORKLOAD_TOKEN="$TOKEN" "$VIA_BIN" --json sql DATABASE "$@"; }
[ "$(vsql "SELECT count(*) FROM visits" --ca-file "$H/ca.pem" | json_field '["rows"][0][0]')" = 1 ] \
  || fail "via sql --ca-file over https"
[ "$(VIA_CA_FILE="$H/ca.pem" vsql "SELECT 41 + 1" | json_field '["rows"][0][0]')" = 42 ] \
  || fail "via sql with VIA_CA_FILE over https"
rc=0; out=$(vsql "SELECT 1" --ca-file "$H/other-ca.pem") || rc=$?
[ "$rc" = 1 ] && [ "$(json_field '["error"]["code"]' <<<"$out")" = tls_error ] \
  && grep -q 'certificate verify failed' <<<"$out" || fail "via sql with another CA: exit $rc: $out"
rc=0; out=$(vsql "SELECT 1" --ca-file "$H/missing.pem") || rc=$?
[ "$rc" = 1 ] && [ "$(json_field '["error"]["code"]' <<<"$out")" = tls_error ] \
  || fail "via sql with a missing CA file: exit $rc: $out"
pass "via sql over https with --ca-file and VIA_CA_FILE; another CA or a missing CA file: tls_error, exit 1"

# Hrana over WebSocket on wss:// (libsql:// means wss to @libsql/client).
# (Run from tests/e2e, where node_modules is.)
(cd "$HERE" && WSS_URL="wss://127.0.0.1:$PORT" LIBSQL_URL="libsql://127.0.0.1:$PORT" DB_TOKEN="$DB_TOKEN" \
  NODE_EXTRA_CA_CERTS="$H/ca.pem" node --input-type=module -e '
import { createClient } from "@libsql/client";
for (const url of [process.env.WSS_URL, process.env.LIBSQL_URL]) {
  const db = createClient({ url, authToken: process.env.DB_TOKEN });
  const r = await db.execute({ sql: "SELECT ? AS echo", args: [url] });
  if (r.rows[0].echo !== url) throw new Error(`${url}: got ${JSON.stringify(r.rows)}`);
  await db.execute("CREATE TABLE IF NOT EXISTS wss (n INTEGER)");
  await db.execute("INSERT INTO wss (n) VALUES (1)");
  db.close();
}
') >"$H/wss.out" 2>&1 || { cat "$H/wss.out" >&2; fail "@libsql/client over wss"; }
grep -q '"path":"/",.*"status":101' "$H/access.log" || fail "no WebSocket upgrade in the access log"
pass "@libsql/client over wss:// and libsql:// (WebSocket upgrades 101)"

# SIGHUP reloads the certificate: new connections get the second one.
cp second.pem cert.pem
cp second.key key.pem
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do grep -q 'TLS certificate reloaded' "$H/serve.err" && break; sleep 0.05; done
grep -q 'TLS certificate reloaded' "$H/serve.err" || fail "no reload after SIGHUP"
[ "$(served_cn)" = second ] || fail "after SIGHUP the served certificate is $(served_cn), want second"
pass "SIGHUP reloaded the certificate (CN first -> second)"

# A broken certificate is not taken: the server keeps the one it has.
echo "not a certificate" >cert.pem
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do grep -q 'TLS certificate not reloaded' "$H/serve.err" && break; sleep 0.05; done
grep -q 'TLS certificate not reloaded' "$H/serve.err" || fail "a broken certificate was not reported"
kill -0 "$SERVER_PID" || fail "the server exited on a broken certificate"
[ "$(served_cn)" = second ] || fail "after a failed reload the served certificate is $(served_cn), want second"
[ "$(curl -s --cacert ca.pem -o /dev/null -w '%{http_code}' "$BASE/healthz")" = 200 ] || fail "healthz after a failed reload"
pass "a broken certificate on SIGHUP is refused; the old one stays in use"

# A certificate from the trusted CA for another host: the clients check the
# host (here the IP address of the URL) and refuse it.
cp elsewhere.pem cert.pem
cp elsewhere.key key.pem
kill -HUP "$SERVER_PID"
for _ in $(seq 100); do [ "$(grep -c 'TLS certificate reloaded' "$H/serve.err")" -ge 2 ] && break; sleep 0.05; done
[ "$(served_cn)" = elsewhere ] || fail "the certificate for elsewhere.invalid was not loaded"
rc=0; out=$(vsql "SELECT 1" --ca-file "$H/ca.pem") || rc=$?
[ "$rc" = 1 ] && [ "$(json_field '["error"]["code"]' <<<"$out")" = tls_error ] \
  && grep -q 'mismatch' <<<"$out" || fail "via sql with a certificate for another host: exit $rc: $out"
rc=0; cpp env VIA_CA_FILE="$H/ca.pem" >"$H/cpp.out" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q '^tls_error: .*mismatch' "$H/cpp.out" \
  || fail "C++ client with a certificate for another host: exit $rc: $(cat "$H/cpp.out")"
pass "a certificate for another host is refused by via sql and the C++ client (host check)"

kill -TERM "$SERVER_PID"
rc=0; wait "$SERVER_PID" || rc=$?
SERVER_PID=
[ "$rc" = 0 ] || fail "via serve exited $rc after SIGTERM"
pass "SIGTERM drains and exits 0"
