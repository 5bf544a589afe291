#!/usr/bin/env bash
# End-to-end test of `via serve` (DESIGN.md section 8, docs/runtime.md):
# a temporary home, a server on a free loopback port, curl against the config
# endpoints (every refusal case), the node app (jose + @libsql/client), then
# rotation, revocation (including inside an open transaction), restore in
# progress, the app examples of docs/apps.md (Node, and C++ when its binary is
# given), and a clean SIGTERM exit.
#   tests/e2e/run.sh PATH/TO/via [PATH/TO/via_example_cpp]
set -euo pipefail

VIA_BIN=${1:?usage: run.sh PATH/TO/via [PATH/TO/via_example_cpp]}
CPP_EXAMPLE=${2:-}
VIA_BIN=$(cd "$(dirname "$VIA_BIN")" && pwd)/$(basename "$VIA_BIN")
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in curl node python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required (tools/setup.sh installs it)" >&2; exit 1; }
done
if [ ! -d "$HERE/node_modules/@libsql/client" ] || [ ! -d "$HERE/node_modules/jose" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund >/dev/null)
fi

H=$(mktemp -d "${TMPDIR:-/tmp}/via-e2e-XXXXXX")
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

# expect STATUS CODE DESCRIPTION curl-args...: the status and, when CODE is not
# "-", the error code in the body ({"error":{"code"}} or Hrana {"code"}).
expect() {
  local want=$1 code=$2 what=$3; shift 3
  local got
  got=$(curl -s -o "$H/body" -w '%{http_code}' "$@") || fail "$what: curl failed"
  [ "$got" = "$want" ] || fail "$what: status $got, want $want: $(cat "$H/body")"
  if [ "$code" != "-" ]; then
    local body_code
    body_code=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["error"]["code"] if "error" in d else d.get("code"))' "$H/body")
    [ "$body_code" = "$code" ] || fail "$what: code $body_code, want $code"
  fi
  pass "$what ($want${code:+ $code})"
}

# --- a home with two apps and releases
via init >/dev/null
via addon create sqlite app-db --app api --bind DATABASE >/dev/null
via addon create sqlite gone-db --app api --bind GONE >/dev/null
via release create --app api --id v1 >/dev/null                # claims DATABASE, GONE
via addon create sqlite cache-db --app api --bind CACHE >/dev/null  # after v1: v1 does not claim CACHE
via addon create sqlite web-db --app web --bind DATABASE >/dev/null
via release create --app web --id w1 >/dev/null
APP_DB=$(via --json addon status app-db | json_field '["addon"]["id"]')

# --- the server, on a free port
"$VIA_BIN" --home "$H" serve --listen 127.0.0.1:0 --access-log "$H/access.log" >"$H/serve.out" 2>"$H/serve.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q 'listening on http://[0-9.:]* ' "$H/serve.err" 2>/dev/null && break; sleep 0.05; done
BASE=$(grep -o 'http://[0-9.:]*' "$H/serve.err" | head -1)
[ -n "$BASE" ] || fail "server did not start"
pass "server listening on $BASE"

TOKEN=$(via workload token --app api --release v1 --ttl 10m)
WEB_TOKEN=$(via workload token --app web --release w1)
AUTH=(-H "Authorization: Bearer $TOKEN")

# --- JWKS and routing
expect 200 - "JWKS is published" "$BASE/.well-known/jwks.json"
KID=$(json_field '["keys"][0]["kid"]' <"$H/body")
[ "$(json_field '["keys"][0]["crv"]' <"$H/body")" = Ed25519 ] || fail "JWKS key is not Ed25519"
expect 200 - "GET /v2 answers (Hrana v2 is served)" "$BASE/v2"
expect 200 - "GET /v3-protobuf answers (Hrana 3 over HTTP is served; tests/e2e/hrana3.sh)" "$BASE/v3-protobuf"

# --- descriptors: success and every refusal
expect 200 - "descriptor of a claimed binding" "${AUTH[@]}" "$BASE/v1/descriptors/DATABASE"
AUTH_TOKEN_1=$(json_field '["auth_token"]' <"$H/body")
[ "$(json_field '["generation"]' <"$H/body")" = 1 ] || fail "first generation is 1"
[ "$(json_field '["addon_id"]' <"$H/body")" = "$APP_DB" ] || fail "descriptor names app-db"
expect 401 missing_token "descriptor without a token" "$BASE/v1/descriptors/DATABASE"
EXPIRED=$(node "$HERE/mint.mjs" "$H/keys/workload.key" "$KID" spiffe://via.local/app/api/release/v1 via-config -60)
expect 401 token_expired "expired token" -H "Authorization: Bearer $EXPIRED" "$BASE/v1/descriptors/DATABASE"
WRONG_AUD=$(node "$HERE/mint.mjs" "$H/keys/workload.key" "$KID" spiffe://via.local/app/api/release/v1 other-service 600)
expect 401 wrong_audience "token for another audience" -H "Authorization: Bearer $WRONG_AUD" "$BASE/v1/descriptors/DATABASE"
FORGED=$(node "$HERE/mint.mjs" random "$KID" spiffe://via.local/app/api/release/v1 via-config 600)
expect 401 bad_signature "token signed by another key" -H "Authorization: Bearer $FORGED" "$BASE/v1/descriptors/DATABASE"
SPLICED="${TOKEN%.*}.${WEB_TOKEN##*.}"
expect 401 bad_signature "token with another token's signature" -H "Authorization: Bearer $SPLICED" "$BASE/v1/descriptors/DATABASE"
MINTED=$(node "$HERE/mint.mjs" "$H/keys/workload.key" "$KID" spiffe://via.local/app/api/release/v1 via-config 600)
expect 200 - "a jose-signed token with the workload key is accepted" -H "Authorization: Bearer $MINTED" "$BASE/v1/descriptors/DATABASE"
expect 403 binding_not_claimed "binding attached after the release" "${AUTH[@]}" "$BASE/v1/descriptors/CACHE"
# Its remediation is a command, owned by the app's developer (issue 13).
[ "$(json_field '["error"]["remediation"]' <"$H/body")" = "via release create --app api" ] \
  && [ "$(json_field '["error"]["owner"]' <"$H/body")" = app_developer ] \
  || fail "binding_not_claimed carries no remediation: $(cat "$H/body")"
pass "binding_not_claimed names via release create --app api, owner app_developer"
expect 404 binding_not_found "unknown binding" "${AUTH[@]}" "$BASE/v1/descriptors/NOPE"
expect 404 binding_not_found "token of another app asks for this app's binding" -H "Authorization: Bearer $WEB_TOKEN" "$BASE/v1/descriptors/GONE"
expect 200 - "token of another app gets its own DATABASE" -H "Authorization: Bearer $WEB_TOKEN" "$BASE/v1/descriptors/DATABASE"
[ "$(json_field '["addon_id"]' <"$H/body")" != "$APP_DB" ] || fail "web got api's database"
GONE_TOKEN=$(curl -s "${AUTH[@]}" "$BASE/v1/descriptors/GONE" | json_field '["auth_token"]')
via addon unbind gone-db --app api --bind GONE >/dev/null
via --yes addon destroy gone-db --force >/dev/null
expect 409 addon_destroyed "descriptor of a destroyed add-on" "${AUTH[@]}" "$BASE/v1/descriptors/GONE"
expect 401 addon_destroyed "SQL with a destroyed add-on's credential" -H "Authorization: Bearer $GONE_TOKEN" \
  -d '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}}]}' "$BASE/v2/pipeline"

# --- the app, with unmodified clients
VIA_CONFIG_URL=$BASE VIA_WORKLOAD_TOKEN=$TOKEN EXPECT_APP=api EXPECT_RELEASE=v1 node "$HERE/app.mjs" >"$H/app.out" \
  || fail "node app: $(cat "$H/app.out")"
pass "node app (jose + @libsql/client): $(cat "$H/app.out")"
via --json audit log --addon app-db | grep -q '"GenerationDelivered"' || fail "no GenerationDelivered recorded"
pass "first delivery recorded as GenerationDelivered"

# --- SQL credential checks
PIPE='{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT count(*) FROM notes"}},{"type":"close"}]}'
expect 200 - "SQL with the generation-1 credential" -H "Authorization: Bearer $AUTH_TOKEN_1" -d "$PIPE" "$BASE/v2/pipeline"
expect 401 bad_credential "SQL with a tampered credential" -H "Authorization: Bearer ${AUTH_TOKEN_1%.*}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" -d "$PIPE" "$BASE/v2/pipeline"
expect 401 missing_credential "SQL without a credential" -d "$PIPE" "$BASE/v2/pipeline"
expect 400 invalid_pipeline "malformed pipeline" -H "Authorization: Bearer $AUTH_TOKEN_1" -d '{"requests":7}' "$BASE/v2/pipeline"

# --- rotation: both generations work until the old one is revoked
via addon rotate-credentials app-db >/dev/null
expect 200 - "descriptor after rotation" "${AUTH[@]}" "$BASE/v1/descriptors/DATABASE"
AUTH_TOKEN_2=$(json_field '["auth_token"]' <"$H/body")
[ "$(json_field '["generation"]' <"$H/body")" = 2 ] || fail "descriptor serves generation 2 after rotation"
expect 200 - "SQL with the new generation" -H "Authorization: Bearer $AUTH_TOKEN_2" -d "$PIPE" "$BASE/v2/pipeline"
expect 200 - "SQL with the old generation before revoke" -H "Authorization: Bearer $AUTH_TOKEN_1" -d "$PIPE" "$BASE/v2/pipeline"

# An open transaction (baton) on generation 1.
curl -s -H "Authorization: Bearer $AUTH_TOKEN_1" -d '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"BEGIN"}},{"type":"execute","stmt":{"sql":"INSERT INTO notes (body) VALUES (\u0027uncommitted\u0027)"}}]}' \
  "$BASE/v2/pipeline" >"$H/tx.json"
BATON=$(json_field '["baton"]' <"$H/tx.json")
[ -n "$BATON" ] && [ "$BATON" != None ] || fail "no baton for the open transaction: $(cat "$H/tx.json")"
via --yes addon revoke-credentials app-db --generation 1 >/dev/null
REVOKED_AT=$(date +%s%N)
expect 401 credential_revoked "open transaction of the revoked generation" -H "Authorization: Bearer $AUTH_TOKEN_1" \
  -d "{\"baton\":\"$BATON\",\"requests\":[{\"type\":\"execute\",\"stmt\":{\"sql\":\"COMMIT\"}}]}" "$BASE/v2/pipeline"
ELAPSED_MS=$(( ($(date +%s%N) - REVOKED_AT) / 1000000 ))
[ "$ELAPSED_MS" -lt 1000 ] || fail "revocation took ${ELAPSED_MS} ms"
expect 401 credential_revoked "new request with the revoked generation" -H "Authorization: Bearer $AUTH_TOKEN_1" -d "$PIPE" "$BASE/v2/pipeline"
curl -s -H "Authorization: Bearer $AUTH_TOKEN_2" -d '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT count(*) FROM notes WHERE body = \u0027uncommitted\u0027"}}]}' "$BASE/v2/pipeline" >"$H/check.json"
[ "$(json_field '["results"][0]["response"]["result"]["rows"][0][0]["value"]' <"$H/check.json")" = 0 ] \
  || fail "the revoked transaction's write survived: $(cat "$H/check.json")"
pass "the revoked transaction was rolled back; generation 2 still works"

# --- restore in progress: descriptors 409, SQL 503 with Retry-After, then back
SNAP=$(via --json addon snapshot app-db | json_field '["id"]')
[ -n "$SNAP" ] || fail "no snapshot id"
# A transaction open when the restore begins (issue 13, finding 4).
curl -s -H "Authorization: Bearer $AUTH_TOKEN_2" -d '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"BEGIN"}},{"type":"execute","stmt":{"sql":"INSERT INTO notes (body) VALUES (\u0027before restore\u0027)"}}]}' \
  "$BASE/v2/pipeline" >"$H/tx2.json"
OLD_BATON=$(json_field '["baton"]' <"$H/tx2.json")
[ -n "$OLD_BATON" ] && [ "$OLD_BATON" != None ] || fail "no baton for the open transaction: $(cat "$H/tx2.json")"
OLD_PIPE="{\"baton\":\"$OLD_BATON\",\"requests\":[{\"type\":\"execute\",\"stmt\":{\"sql\":\"COMMIT\"}}]}"
VIA_CRASH_AT=restore.before_file via --yes addon restore app-db --snapshot "$SNAP" >/dev/null 2>&1 || true
# Its baton is final at once: no Retry-After, during the restore too.
expect 400 stream_closed_by_restore "a baton opened before the restore, during it" -H "Authorization: Bearer $AUTH_TOKEN_2" -d "$OLD_PIPE" "$BASE/v2/pipeline"
! grep -qi '^retry-after' <(curl -s -D - -o /dev/null -H "Authorization: Bearer $AUTH_TOKEN_2" -d "$OLD_PIPE" "$BASE/v2/pipeline") \
  || fail "the closed stream's error carries Retry-After"
pass "a stream closed by a restore is not retryable"
expect 409 restore_in_progress "descriptor during a restore" "${AUTH[@]}" "$BASE/v1/descriptors/DATABASE"
expect 503 restore_in_progress "SQL during a restore" -H "Authorization: Bearer $AUTH_TOKEN_2" -d "$PIPE" "$BASE/v2/pipeline"
grep -qi '^retry-after' <(curl -s -D - -o /dev/null -H "Authorization: Bearer $AUTH_TOKEN_2" -d "$PIPE" "$BASE/v2/pipeline") \
  || fail "503 during restore has no Retry-After"
pass "503 during restore carries Retry-After"
via --yes recover >/dev/null
expect 200 - "SQL after recovery finished the restore" -H "Authorization: Bearer $AUTH_TOKEN_2" -d "$PIPE" "$BASE/v2/pipeline"
expect 400 stream_closed_by_restore "a baton opened before the restore, after it" -H "Authorization: Bearer $AUTH_TOKEN_2" -d "$OLD_PIPE" "$BASE/v2/pipeline"
curl -s -H "Authorization: Bearer $AUTH_TOKEN_2" -d '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT count(*) FROM notes WHERE body = \u0027before restore\u0027"}}]}' "$BASE/v2/pipeline" >"$H/check2.json"
[ "$(json_field '["results"][0]["response"]["result"]["rows"][0][0]["value"]' <"$H/check2.json")" = 0 ] \
  || fail "the discarded transaction's write survived the restore: $(cat "$H/check2.json")"

# --- limits
expect 413 body_too_large "body over --max-body-bytes" -H "Authorization: Bearer $AUTH_TOKEN_2" \
  --data-binary @<(head -c 2000000 /dev/zero | tr '\0' 'x') "$BASE/v2/pipeline"
expect 431 header_too_large "header over --max-header-bytes" -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' 'x')" "$BASE/v2"

# --- the access log is JSON lines and never holds a credential
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$H/access.log" || fail "access log is not JSON lines"
! grep -q "$AUTH_TOKEN_2\|$TOKEN" "$H/access.log" || fail "access log holds a credential"
pass "access log is JSON lines without credentials"

# --- docs/apps.md: the Node example, run as documented and driven through renewal
via addon create sqlite notes-db --app notes --bind DATABASE >/dev/null
via release create --app notes --id n1 >/dev/null
NOTES_TOKEN=$(via workload token --app notes --release n1 --ttl 10m)
NOTES_EXPIRED=$(node "$HERE/mint.mjs" "$H/keys/workload.key" "$KID" spiffe://via.local/app/notes/release/n1 via-config -60)
# docs/apps.md shows both examples exactly as they are.
python3 - "$HERE/../../docs/apps.md" "$HERE/../../docs/examples/node/app.mjs" "$HERE/../../docs/examples/cpp/app.cc" <<'PY' \
  || fail "docs/apps.md does not show the example files verbatim"
import sys
doc = open(sys.argv[1]).read()
for path, lang in ((sys.argv[2], "js"), (sys.argv[3], "cpp")):
    if "```%s\n%s```\n" % (lang, open(path).read()) not in doc:
        sys.exit("docs/apps.md lacks " + path)
PY
pass "docs/apps.md shows docs/examples/node/app.mjs and docs/examples/cpp/app.cc verbatim"
# A copy beside the pinned node_modules, exactly the file that docs/apps.md shows.
EXAMPLE="$H/node-example"
mkdir -p "$EXAMPLE"
cp "$HERE/../../docs/examples/node/app.mjs" "$EXAMPLE/app.mjs"
ln -s "$HERE/node_modules" "$EXAMPLE/node_modules"
VIA_CONFIG_URL=$BASE VIA_WORKLOAD_TOKEN=$NOTES_TOKEN VIA_BIN=$VIA_BIN VIA_TEST_HOME=$H  \
  EXPIRED_TOKEN=$NOTES_EXPIRED node "$HERE/apps_example.mjs" "$EXAMPLE/app.mjs" >"$H/apps.out" 2>&1 \
  || fail "docs example: $(cat "$H/apps.out")"
pass "docs/examples/node/app.mjs: descriptor, renewal after revocation, restore, token file, expiry"
VIA_CONFIG_URL=$BASE VIA_WORKLOAD_TOKEN=$NOTES_TOKEN node "$EXAMPLE/app.mjs" >"$H/visits.out" 2>&1 \
  || fail "node app.mjs: $(cat "$H/visits.out")"
grep -q '^visits: 1 (add-on ad_[0-9A-Z]*, generation 2)$' "$H/visits.out" || fail "node app.mjs printed: $(cat "$H/visits.out")"
pass "node app.mjs as docs/apps.md runs it: $(cat "$H/visits.out")"
if [ -n "$CPP_EXAMPLE" ]; then
  VIA_CONFIG_URL=$BASE VIA_WORKLOAD_TOKEN=$NOTES_TOKEN "$CPP_EXAMPLE" >"$H/visits.out" 2>&1 \
    || fail "docs/examples/cpp/app.cc: $(cat "$H/visits.out")"
  grep -q '^visits: 2 (add-on ad_[0-9A-Z]*, generation 2)$' "$H/visits.out" || fail "the C++ example printed: $(cat "$H/visits.out")"
  pass "the C++ example of docs/apps.md: $(cat "$H/visits.out")"
fi

# --- SIGTERM: drain and exit 0
kill -TERM "$SERVER_PID"
for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$SERVER_PID" 2>/dev/null; then fail "server still running 5 s after SIGTERM"; fi
RC=0
wait "$SERVER_PID" || RC=$?
SERVER_PID=
[ "$RC" = 0 ] || fail "server exited $RC after SIGTERM"
grep -q "drained" "$H/serve.err" || fail "no drain message"
pass "SIGTERM: drained and exited 0"
echo "e2e: all checks passed"
