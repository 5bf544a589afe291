#!/usr/bin/env bash
# The runtime part of the demo (called by tools/demo.sh with VIA_HOME set and
# `via` on PATH, after tools/demo_lifecycle.sh made add-on app-db, bound as
# DATABASE for app api, and a release of api): `via serve`, a workload token,
# the JWKS and descriptor endpoints with curl, SQL through the proxy, then a
# credential rotation and revocation that the running server obeys at once.
set -euo pipefail
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
json_field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

echo
echo "# the runtime: via serve on a free loopback port"
log="$VIA_HOME/serve.log"
via serve --listen 127.0.0.1:0 --access-log "$VIA_HOME/access.log" 2>"$log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 100); do
  url=$(sed -n 's/.*listening on \(http:[^ ]*\) .*/\1/p' "$log" | head -n 1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "demo: via serve did not start:" >&2; cat "$log" >&2; exit 1; }
echo "via serve is listening on $url"

release=$(via --json release list --app api | python3 -c 'import json,sys; print(json.load(sys.stdin)["releases"][-1]["release"])')
printf '\n\033[1m$ token=$(via --json workload token --app api --release %s --ttl 10m | …)\033[0m\n' "$release"
token=$(via --json workload token --app api --release "$release" --ttl 10m | json_field token)
echo "a JWT of ${#token} characters, signed by keys/workload.key"
step curl -fsS "$url/.well-known/jwks.json"
echo
printf '\n\033[1m$ curl -H "Authorization: Bearer $token" %s/v1/descriptors/DATABASE\033[0m\n' "$url"
curl -fsS -H "Authorization: Bearer $token" "$url/v1/descriptors/DATABASE"
echo

export VIA_CONFIG_URL="$url" VIA_WORKLOAD_TOKEN="$token"
step via sql DATABASE "CREATE TABLE IF NOT EXISTS visits(at TEXT, who TEXT)"
step via sql DATABASE "INSERT INTO visits VALUES (datetime('now'), ?)" --arg demo
step via sql DATABASE "SELECT count(*) AS visits, max(who) AS who FROM visits"

echo
echo "# rotate: both generations work; revoke the old one and the running server refuses it at once"
pipeline() {  # pipeline LABEL AUTH_TOKEN: one Hrana request, prints the HTTP status
  printf '\n\033[1m$ curl POST %s/v2/pipeline   (%s)\033[0m\n' "$url" "$1"
  curl -sS -o /dev/null -w 'HTTP %{http_code}\n' -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/json' \
    -d '{"requests":[{"type":"execute","stmt":{"sql":"SELECT 1"}},{"type":"close"}]}' "$url/v2/pipeline"
}
descriptor() { curl -fsS -H "Authorization: Bearer $token" "$url/v1/descriptors/DATABASE"; }
old_generation=$(descriptor | json_field generation)
old_auth=$(descriptor | json_field auth_token)
step via addon rotate-credentials app-db
sleep 0.3  # the server folds new log records every 100 ms
new_generation=$(descriptor | json_field generation)
new_auth=$(descriptor | json_field auth_token)
pipeline "generation $old_generation" "$old_auth"
pipeline "generation $new_generation" "$new_auth"
step via addon revoke-credentials app-db --generation "$old_generation"
sleep 0.3
pipeline "generation $old_generation, revoked" "$old_auth"
pipeline "generation $new_generation" "$new_auth"

kill -TERM "$serve_pid"
wait "$serve_pid" || true
trap - EXIT
echo
echo "via serve drained and exited; its last access-log line:"
tail -n 1 "$VIA_HOME/access.log"
