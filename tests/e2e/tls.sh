#!/usr/bin/env bash
# TLS end to end: a throwaway CA made with openssl, `via serve --tls-cert
# --tls-key`, then curl with --cacert (and refused without it), app.mjs with
# @libsql/client over https (NODE_EXTRA_CA_CERTS), Hrana over wss with
# @libsql/client, descriptor URLs in https, plain HTTP refused on the TLS
# port, and a certificate reloaded by SIGHUP (a broken one is not taken).
#   tests/e2e/tls.sh PATH/TO/via
set -euo pipefail

VIA_BIN=${1:?usage: tls.sh PATH/TO/via}
VIA_BIN=$(cd "$(dirname "$VIA_BIN")" && pwd)/$(basename "$VIA_BIN")
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
make_cert() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" \
    -subj "/CN=$1" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
    -extfile ext.cnf -out "$1.pem" 2>/dev/null
}
make_cert first
make_cert second
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

kill -TERM "$SERVER_PID"
rc=0; wait "$SERVER_PID" || rc=$?
SERVER_PID=
[ "$rc" = 0 ] || fail "via serve exited $rc after SIGTERM"
pass "SIGTERM drains and exits 0"
