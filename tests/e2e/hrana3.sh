#!/usr/bin/env bash
# Hrana 3 over HTTP against `via serve` (docs/runtime.md): the routes with
# curl (GET /v3 and /v3-protobuf, a JSON cursor, errors), then hrana3.mjs with
# unmodified npm clients (libsql-stateless-easy over /v3/pipeline,
# @libsql/client's code on its hrana-client asked for version 3 over
# /v3-protobuf), hrana_ws.mjs over WebSocket on the same port, then
# revocation of Hrana 3 streams (HTTP and WebSocket) holding transactions.
#   tests/e2e/hrana3.sh PATH/TO/via
set -euo pipefail

VIA_BIN=${1:?usage: hrana3.sh PATH/TO/via}
VIA_BIN=$(cd "$(dirname "$VIA_BIN")" && pwd)/$(basename "$VIA_BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in curl node python3; do
  command -v "$tool" >/dev/null || { echo "hrana3.sh: $tool is required (tools/setup.sh installs it)" >&2; exit 1; }
done
if [ ! -d "$HERE/node_modules/libsql-stateless-easy" ] || [ ! -d "$HERE/node_modules/@libsql/client" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund >/dev/null)
fi

H=$(mktemp -d "${TMPDIR:-/tmp}/via-hrana3-XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$H"
}
trap cleanup EXIT

via() { "$VIA_BIN" --home "$H" --actor e2e "$@"; }
fail() { echo "FAIL: $*" >&2; echo "--- server stderr" >&2; cat "$H/serve.err" >&2 || true; exit 1; }
pass() { echo "ok: $*"; }
json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d'"$1"')'; }

via init >/dev/null
via addon create sqlite app-db --app api --bind DATABASE >/dev/null
via release create --app api --id v1 >/dev/null

"$VIA_BIN" --home "$H" serve --listen 127.0.0.1:0 >"$H/serve.out" 2>"$H/serve.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q 'listening on http://[0-9.:]* ' "$H/serve.err" 2>/dev/null && break; sleep 0.05; done
BASE=$(grep -o 'http://[0-9.:]*' "$H/serve.err" | head -1)
[ -n "$BASE" ] || fail "server did not start"

TOKEN=$(via workload token --app api --release v1 --ttl 10m)
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/v1/descriptors/DATABASE" >"$H/descriptor.json" || fail "no descriptor"
DB_URL=$(json_field '["url"]' <"$H/descriptor.json")
DB_TOKEN=$(json_field '["auth_token"]' <"$H/descriptor.json")
AUTH=(-H "Authorization: Bearer $DB_TOKEN")

# --- routes
for v in v3 v3-protobuf; do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/$v")" = 200 ] || fail "GET /$v is not 200"
done
pass "GET /v3 and GET /v3-protobuf answer 200"
[ "$(curl -s -o "$H/body" -w '%{http_code}' "${AUTH[@]}" -d '{"baton":null,"requests":[{"type":"get_autocommit"},{"type":"close"}]}' "$BASE/v3/pipeline")" = 200 ] \
  || fail "v3 pipeline: $(cat "$H/body")"
[ "$(json_field '["results"][0]["response"]["is_autocommit"]' <"$H/body")" = True ] || fail "get_autocommit: $(cat "$H/body")"
pass "POST /v3/pipeline runs get_autocommit"
[ "$(curl -s -o "$H/body" -w '%{http_code}' -d '{"baton":null,"batch":{"steps":[]}}' "$BASE/v3/cursor")" = 401 ] \
  || fail "cursor without a credential: $(cat "$H/body")"
[ "$(curl -s -o "$H/body" -w '%{http_code}' "${AUTH[@]}" -d '{"baton":null,"batch":7}' "$BASE/v3/cursor")" = 400 ] \
  || fail "malformed cursor: $(cat "$H/body")"
[ "$(curl -s -o "$H/body" -w '%{http_code}' "${AUTH[@]}" --data-binary $'\x0a\xff' "$BASE/v3-protobuf/pipeline")" = 400 ] \
  || fail "malformed protobuf: $(cat "$H/body")"
pass "missing credential 401, malformed cursor and protobuf bodies 400"

# A JSON cursor with curl: header line, then entries; chunked.
curl -s -D "$H/headers" "${AUTH[@]}" -d '{"baton":null,"batch":{"steps":[{"stmt":{"sql":"SELECT 1 AS one, ? AS two","args":[{"type":"text","value":"x"}]}},{"stmt":{"sql":"SELECT nope"}}]}}' \
  "$BASE/v3/cursor" >"$H/cursor"
grep -qi '^transfer-encoding: chunked' "$H/headers" || fail "the cursor is not chunked: $(cat "$H/headers")"
python3 - "$H/cursor" <<'PY' || fail "cursor body: $(cat "$H/cursor")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert isinstance(lines[0]["baton"], str), lines[0]
types = [l["type"] for l in lines[1:]]
assert types == ["step_begin", "row", "step_end", "step_error"], types
assert lines[1]["cols"][0]["name"] == "one"
assert lines[2]["row"][1] == {"type": "text", "value": "x"}, lines[2]
assert lines[4]["step"] == 1 and lines[4]["error"]["code"] == "SQLITE_ERROR", lines[4]
PY
pass "POST /v3/cursor streams step_begin, row, step_end, step_error (chunked)"

# --- the unmodified clients
DB_URL=$DB_URL DB_TOKEN=$DB_TOKEN SERVER_PID=$SERVER_PID node "$HERE/hrana3.mjs" >"$H/node.out" 2>&1 \
  || fail "hrana3.mjs: $(cat "$H/node.out")"
sed 's/^/  /' "$H/node.out"
pass "hrana3.mjs (libsql-stateless-easy 1.8.0; @libsql/client 0.18.0 code over Hrana 3)"

# --- Hrana over WebSocket on the same port, then revocation closes open
# Hrana 3 streams (HTTP and WebSocket, each with a transaction) at once.
[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
     -H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
     -H 'Sec-WebSocket-Protocol: hrana3-protobuf' "$BASE/")" = 400 ] || fail "an unsupported subprotocol is not refused"
pass "a WebSocket upgrade offering only hrana3-protobuf gets 400"
via addon rotate-credentials app-db >/dev/null
# The HTTP stream holds a read transaction (the WebSocket one writes: SQLite
# has one writer at a time).
curl -s "${AUTH[@]}" -d '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"BEGIN"}},{"type":"execute","stmt":{"sql":"SELECT count(*) FROM t"}}]}' \
  "$BASE/v3/pipeline" >"$H/tx.json"
BATON=$(json_field '["baton"]' <"$H/tx.json")
[ -n "$BATON" ] && [ "$BATON" != None ] || fail "no baton: $(cat "$H/tx.json")"
REVOKE=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$VIA_BIN" --home "$H" --actor e2e --yes addon revoke-credentials app-db --generation 1)
WS_URL=${BASE/http:/ws:} DB_TOKEN=$DB_TOKEN REVOKE_COMMAND=$REVOKE node "$HERE/hrana_ws.mjs" >"$H/ws.out" 2>&1 \
  || fail "hrana_ws.mjs: $(cat "$H/ws.out")"
sed 's/^/  /' "$H/ws.out"
pass "hrana_ws.mjs (@libsql/client over ws://, hrana-client over hrana3, revocation)"
code=$(curl -s -o "$H/body" -w '%{http_code}' "${AUTH[@]}" -d "{\"baton\":\"$BATON\",\"batch\":{\"steps\":[{\"stmt\":{\"sql\":\"COMMIT\"}}]}}" "$BASE/v3/cursor")
[ "$code" = 401 ] || fail "cursor on a revoked stream: $code $(cat "$H/body")"
[ "$(json_field '["code"]' <"$H/body")" = credential_revoked ] || fail "revoked: $(cat "$H/body")"
curl -sf -H "Authorization: Bearer $TOKEN" "$BASE/v1/descriptors/DATABASE" >"$H/descriptor.json"
DB_TOKEN2=$(json_field '["auth_token"]' <"$H/descriptor.json")
curl -s -H "Authorization: Bearer $DB_TOKEN2" -d '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT count(*) FROM wst WHERE x = 888"}}]}' "$BASE/v3/pipeline" >"$H/check.json"
[ "$(json_field '["results"][0]["response"]["result"]["rows"][0][0]["value"]' <"$H/check.json")" = 0 ] \
  || fail "the revoked WebSocket transaction's write survived: $(cat "$H/check.json")"
pass "revocation: the HTTP stream's baton answers 401 credential_revoked; the WebSocket transaction's write was rolled back"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "server exited $? after SIGTERM"
SERVER_PID=
echo "hrana3.sh: all checks passed"
