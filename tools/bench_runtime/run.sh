#!/usr/bin/env bash
# Runtime benchmark of `via serve` (issues 5 and 10, docs/runtime.md
# "Performance"): on loopback, in one run and interleaved, RUNS times each:
#   direct      the baseline: `SELECT v FROM t WHERE id = ?` (random id) on the
#               add-on's SQLite file with a prepared statement (via_point_select),
#               THREADS threads, one connection each;
#   descriptor  GET /v1/descriptors/DATABASE with a workload JWT (wrk, THREADS
#               threads, CONNS keep-alive connections);
#   proxy       the same point select through the Hrana proxy: POST /v2/pipeline
#               with execute + close, as @libsql/client sends it (wrk, same);
#   proxy-v3    the same point select over Hrana 3 JSON: POST /v3/pipeline;
#   proxy-v3pb  the same over Hrana 3 protobuf: POST /v3-protobuf/pipeline
#               (the body built in wrk's Lua as the proto3 schema says);
#   node-v2     /v2 JSON point selects (execute + close) from one Node process
#               (tools/bench_runtime/ws_point_select.mjs http, CONNS keep-alive
#               connections): the baseline of the WebSocket row, as wrk speaks
#               no WebSocket;
#   node-ws     the same point select over Hrana 3 JSON on WebSocket (subprotocol
#               hrana3; one stream per connection, one request in flight), by
#               the same Node harness (ws_point_select.mjs ws);
#   noisy       the same as proxy (app B), while another app (A) keeps twice its
#               per-add-on limit of slow statements in flight on its own add-on
#               (a second wrk, 1 thread), so that A always fills its share of the
#               SQL workers and has more waiting;
#   nginx       the HTTP floor: Debian's nginx answering a fixed 200 on loopback
#               (a throwaway config, worker_processes auto, access log off), with
#               the same wrk settings.
# Prints each run, then the medians and the ratios against the baselines
# measured in the same run. Every wrk response is checked (status 200; for the
# proxy, an ok result with a row and no error; for A's slow statements, no
# error); the script exits 1 when any request failed, never on speed.
#
#   tools/bench_runtime/run.sh [--quick] [--runs N] [--seconds S] [--conns C]
#                              [--threads T] [--rows R] [--server-threads N] [--pin]
#                              [--build DIR | --via PATH --point-select PATH]
# --quick: 1 run of 1 s each, 1000 rows (the ctest smoke, label bench).
# --pin: the server on core 0 with one thread, the clients (wrk and the
#   baseline, one thread each unless --threads) on core 1, so that the load
#   generator and the server do not preempt each other (taskset).
# Needs wrk and nginx (tools/setup.sh installs them), curl, python3, and node
# with the npm packages of tests/e2e (tools/setup.sh runs npm ci).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=$ROOT/build
VIA_BIN= POINT_SELECT=
RUNS=5 SECONDS_EACH=5 CONNS=8 THREADS= ROWS=10000 SERVER_THREADS= QUICK=0 PIN=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) QUICK=1; RUNS=1; SECONDS_EACH=1; ROWS=1000 ;;
    --runs) RUNS=$2; shift ;;
    --seconds) SECONDS_EACH=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --rows) ROWS=$2; shift ;;
    --server-threads) SERVER_THREADS=$2; shift ;;
    --pin) PIN=1 ;;
    --build) BUILD=$2; shift ;;
    --via) VIA_BIN=$2; shift ;;
    --point-select) POINT_SELECT=$2; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
SERVER_CPU=() CLIENT_CPU=()
if [ "$PIN" = 1 ]; then
  command -v taskset >/dev/null || { echo "run.sh: --pin needs taskset" >&2; exit 1; }
  SERVER_CPU=(taskset -c 0) CLIENT_CPU=(taskset -c 1)
  THREADS=${THREADS:-1} SERVER_THREADS=${SERVER_THREADS:-1}
fi
THREADS=${THREADS:-2}
VIA_BIN=${VIA_BIN:-$BUILD/cli/via}
POINT_SELECT=${POINT_SELECT:-$BUILD/tools/bench_runtime/via_point_select}
for tool in wrk curl python3 nginx node; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required (tools/setup.sh installs it)" >&2; exit 1; }
done
for bin in "$VIA_BIN" "$POINT_SELECT"; do
  [ -x "$bin" ] || { echo "run.sh: $bin not built (ninja -C $BUILD)" >&2; exit 1; }
done

H=$(mktemp -d "${TMPDIR:-/tmp}/via-bench-rt-XXXXXX")
SERVER_PID= NGINX_PID= NOISY_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  if [ -n "$NOISY_PID" ] && kill -0 "$NOISY_PID" 2>/dev/null; then kill -KILL "$NOISY_PID" 2>/dev/null || true; fi
  if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
    kill -QUIT "$NGINX_PID" 2>/dev/null || true  # the master stops its workers
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  rm -rf "$H"
}
trap cleanup EXIT
fail() { echo "bench_runtime: FAIL: $*" >&2; [ -f "$H/serve.err" ] && tail -20 "$H/serve.err" >&2; exit 1; }
via() { "$VIA_BIN" --home "$H/home" --actor bench "$@"; }
json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(d'"$1"')'; }

# --- a home with two apps (bench: B, measured; noisy: A), a release each
# claiming DATABASE, and a server.
via init >/dev/null
via addon create sqlite bench-db --app bench --bind DATABASE >/dev/null
via release create --app bench --id r1 >/dev/null
via addon create sqlite noisy-db --app noisy --bind DATABASE >/dev/null
via release create --app noisy --id r1 >/dev/null
ADDON=$(via --json addon status bench-db | json_field '["addon"]["id"]')
DB_FILE=$H/home/addons/$ADDON/data.sqlite
[ -f "$DB_FILE" ] || fail "no database file at $DB_FILE"

SERVE_ARGS=(--listen 127.0.0.1:0 --access-log "$H/access.log")
[ -n "$SERVER_THREADS" ] && SERVE_ARGS+=(--threads "$SERVER_THREADS")
"${SERVER_CPU[@]}" "$VIA_BIN" --home "$H/home" serve "${SERVE_ARGS[@]}" >"$H/serve.out" 2>"$H/serve.err" &
SERVER_PID=$!
for _ in $(seq 200); do grep -q 'listening on http://[0-9.:]* ' "$H/serve.err" 2>/dev/null && break; sleep 0.05; done
BASE=$(grep -o "http://[0-9.:]*" "$H/serve.err" | head -1 || true)
[ -n "$BASE" ] || fail "server did not start"

TOKEN=$(via workload token --app bench --release r1 --ttl 1h)
CODE=$(curl -s -o "$H/desc.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE/v1/descriptors/DATABASE")
[ "$CODE" = 200 ] || fail "descriptor: status $CODE: $(cat "$H/desc.json")"
AUTH_TOKEN=$(json_field '["auth_token"]' <"$H/desc.json")
NOISY_TOKEN=$(via workload token --app noisy --release r1 --ttl 1h)
CODE=$(curl -s -o "$H/noisy.json" -w '%{http_code}' -H "Authorization: Bearer $NOISY_TOKEN" "$BASE/v1/descriptors/DATABASE")
[ "$CODE" = 200 ] || fail "noisy descriptor: status $CODE: $(cat "$H/noisy.json")"
NOISY_AUTH=$(json_field '["auth_token"]' <"$H/noisy.json")
# The server's SQL pool (defaults: docs/runtime.md); the noisy app keeps twice
# its per-add-on limit in flight. (A server before issue 10 reports no pool:
# 4 is assumed, so that the script can measure it too.)
WORKERS=$(curl -s "$BASE/healthz" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("sql", {}).get("workers", 4))')
PER_ADDON=$((WORKERS / 2 > 0 ? WORKERS / 2 : 1))
NOISY_CONNS=$((2 * PER_ADDON))

# --- nginx, the HTTP floor: a throwaway config on a free loopback port, in the
# foreground (not a daemon), stopped by cleanup().
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$H/nginx/logs"
cat >"$H/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $H/nginx/nginx.pid;
error_log $H/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $H/nginx/body;
  proxy_temp_path $H/nginx/proxy;
  fastcgi_temp_path $H/nginx/fastcgi;
  uwsgi_temp_path $H/nginx/uwsgi;
  scgi_temp_path $H/nginx/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
CONF
"${SERVER_CPU[@]}" nginx -p "$H/nginx" -c "$H/nginx/nginx.conf" -g 'daemon off;' 2>"$H/nginx/stderr" &
NGINX_PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NGINX_PORT/" && break; sleep 0.05; done
curl -s "http://127.0.0.1:$NGINX_PORT/" | grep -q ok || fail "nginx did not start: $(cat "$H/nginx/stderr" "$H/nginx/logs/error.log" 2>/dev/null)"

# --- the table, filled through the proxy.
SETUP=$(python3 - "$ROWS" <<'EOF'
import json, sys
rows = int(sys.argv[1])
sql = ("INSERT INTO t (id, v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
       f"WHERE x < {rows}) SELECT x, printf('value-%08d', x) FROM c")
print(json.dumps({"baton": None, "requests": [
    {"type": "execute", "stmt": {"sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"}},
    {"type": "execute", "stmt": {"sql": sql}},
    {"type": "close"}]}))
EOF
)
CODE=$(curl -s -o "$H/setup.json" -w '%{http_code}' -H "Authorization: Bearer $AUTH_TOKEN" -d "$SETUP" "$BASE/v2/pipeline")
[ "$CODE" = 200 ] || fail "setup pipeline: status $CODE: $(cat "$H/setup.json")"
python3 - "$H/setup.json" "$ROWS" <<'EOF' || fail "setup pipeline failed: $(cat "$H/setup.json")"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["results"]
assert all(x["type"] == "ok" for x in r), r
assert r[1]["response"]["result"]["affected_row_count"] == int(sys.argv[2]), r[1]
EOF

# --- wrk scripts. Each thread counts bad responses; done() prints one line.
cat >"$H/common.lua" <<'EOF'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0; checked = 0; first_bad = "" end
function done(summary, latency, requests)
  local bad_total, checked_total, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    bad_total = bad_total + t:get("bad")
    checked_total = checked_total + t:get("checked")
    if sample == "" then sample = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f non2xx=%d sockerr=%d bad=%d checked=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout, bad_total, checked_total))
  if sample ~= "" then io.write("FIRST_BAD " .. sample .. "\n") end
end
EOF
{
  cat "$H/common.lua"
  cat <<EOF
wrk.method = "GET"
wrk.path = "/v1/descriptors/DATABASE"
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF
  cat <<'EOF'
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or not string.find(body, '"auth_token"', 1, true) then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
  end
end
EOF
} >"$H/descriptor.lua"
{
  cat "$H/common.lua"
  cat <<EOF
local rows = $ROWS
wrk.method = "POST"
wrk.path = "/v2/pipeline"
wrk.headers["Authorization"] = "Bearer $AUTH_TOKEN"
wrk.headers["Content-Type"] = "application/json"
EOF
  cat <<'EOF'
local fmt = '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"SELECT v FROM t WHERE id = ?",' ..
            '"args":[{"type":"integer","value":"%d"}]}},{"type":"close"}]}'
function request()
  return wrk.format(nil, nil, nil, string.format(fmt, math.random(1, rows)))
end
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or not string.find(body, '"value-', 1, true) or string.find(body, '"type":"error"', 1, true) then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
  end
end
EOF
} >"$H/pipeline.lua"
sed 's#wrk.path = "/v2/pipeline"#wrk.path = "/v3/pipeline"#' "$H/pipeline.lua" >"$H/pipeline_v3.lua"
{
  cat "$H/common.lua"
  cat <<EOF
local rows = $ROWS
wrk.method = "POST"
wrk.path = "/v3-protobuf/pipeline"
wrk.headers["Authorization"] = "Bearer $AUTH_TOKEN"
wrk.headers["Content-Type"] = "application/x-protobuf"
EOF
  cat <<'EOF'
-- hrana.http.PipelineReqBody{requests: [execute{stmt{sql, args: [integer]}}, close{}]}
local function varint(n)
  local out = ""
  while n >= 128 do
    out = out .. string.char(n % 128 + 128)
    n = math.floor(n / 128)
  end
  return out .. string.char(n)
end
local function field(number, bytes) return string.char(number * 8 + 2) .. varint(#bytes) .. bytes end
function request()
  local value = string.char(2 * 8) .. varint(2 * math.random(1, rows))  -- sint64: zigzag
  local stmt = field(1, "SELECT v FROM t WHERE id = ?") .. field(3, value)
  local body = field(2, field(2, field(1, stmt))) .. field(2, field(1, ""))
  return wrk.format(nil, nil, nil, body)
end
function response(status, headers, body)
  checked = checked + 1
  -- A row holds the text "value-..."; an error result would not.
  if status ~= 200 or not string.find(body, "value-", 1, true) then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
  end
end
EOF
} >"$H/pipeline_v3pb.lua"
{
  cat "$H/common.lua"
  cat <<LUA
wrk.method = "POST"
wrk.path = "/v2/pipeline"
wrk.headers["Authorization"] = "Bearer $NOISY_AUTH"
wrk.headers["Content-Type"] = "application/json"
LUA
  cat <<'LUA'
-- A slow statement (about 0.15 s of CPU, far longer when it
-- competes, as it runs past 100 ms at a lower priority), then close.
wrk.body = '{"baton":null,"requests":[{"type":"execute","stmt":{"sql":"WITH RECURSIVE c(x) AS ' ..
           '(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000) SELECT count(*) FROM c"}},' ..
           '{"type":"close"}]}'
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 or string.find(body, '"type":"error"', 1, true) then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
  end
end
LUA
} >"$H/noisy.lua"
{
  cat "$H/common.lua"
  cat <<'LUA'
function response(status, headers, body)
  checked = checked + 1
  if status ~= 200 then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body, 1, 200) end
  end
end
LUA
} >"$H/nginx.lua"

# --- the runs, interleaved so that drift hits all of them alike.
RESULTS=$H/results.txt
: >"$RESULTS"
FAILED=0
run_wrk() {  # NAME SCRIPT URL
  local name=$1 script=$2 url=$3 out line
  out=$("${CLIENT_CPU[@]}" wrk -t "$THREADS" -c "$CONNS" -d "${SECONDS_EACH}s" -s "$script" "$url" 2>&1) || fail "wrk $name: $out"
  line=$(grep '^RESULT' <<<"$out") || fail "wrk $name printed no result: $out"
  if grep -q '^FIRST_BAD' <<<"$out"; then echo "  $name: $(grep '^FIRST_BAD' <<<"$out")" >&2; fi
  python3 - "$name" "$line" >>"$RESULTS" <<'EOF'
import sys
kv = dict(x.split("=") for x in sys.argv[2].split()[1:])
ops = float(kv["requests"]) / (float(kv["duration_us"]) / 1e6)
ok = int(kv["non2xx"]) == 0 and int(kv["sockerr"]) == 0 and int(kv["bad"]) == 0 and int(kv["checked"]) > 0
print(sys.argv[1], f"{ops:.0f}", kv["p50_us"], kv["p99_us"], kv["requests"], kv["non2xx"], kv["sockerr"], kv["bad"], "ok" if ok else "FAILED")
EOF
}
run_node() {  # NAME MODE
  local name=$1 mode=$2 out line
  out=$("${CLIENT_CPU[@]}" node "$HERE/ws_point_select.mjs" "$mode" "$BASE" "$AUTH_TOKEN" "$SECONDS_EACH" "$CONNS" "$ROWS" 2>&1) || fail "node $name: $out"
  line=$(grep '^RESULT' <<<"$out") || fail "node $name printed no result: $out"
  if grep -q '^FIRST_BAD' <<<"$out"; then echo "  $name: $(grep '^FIRST_BAD' <<<"$out")" >&2; fi
  python3 - "$name" "$line" >>"$RESULTS" <<'EOF'
import sys
kv = dict(x.split("=") for x in sys.argv[2].split()[1:])
ops = float(kv["requests"]) / (float(kv["duration_us"]) / 1e6)
ok = int(kv["non2xx"]) == 0 and int(kv["sockerr"]) == 0 and int(kv["bad"]) == 0 and int(kv["checked"]) > 0
print(sys.argv[1], f"{ops:.0f}", kv["p50_us"], kv["p99_us"], kv["requests"], kv["non2xx"], kv["sockerr"], kv["bad"], "ok" if ok else "FAILED")
EOF
}
# B's point selects while A keeps NOISY_CONNS slow statements in flight: A's
# wrk starts a second before B's and outlasts it. A's statements still in
# flight when its wrk stops are waited for (the server's SQL pool idle), so
# that they do not run into the next row. A's row counts failed requests
# only: under load, none of its slow statements may finish in a short window.
run_noisy() {
  local out
  "${CLIENT_CPU[@]}" wrk -t 1 -c "$NOISY_CONNS" -d "$((SECONDS_EACH + 2))s" --timeout 30s -s "$H/noisy.lua" \
    "$BASE/v2/pipeline" >"$H/noisy.out" 2>&1 &
  NOISY_PID=$!
  sleep 1
  run_wrk noisy "$H/pipeline.lua" "$BASE/v2/pipeline"
  wait "$NOISY_PID" || fail "wrk for the noisy app: $(cat "$H/noisy.out")"
  NOISY_PID=
  for _ in $(seq 600); do
    curl -s "$BASE/healthz" | python3 -c 'import json,sys; s=json.load(sys.stdin).get("sql", {}); sys.exit(0 if s.get("running", 0) + s.get("queued", 0) == 0 else 1)' && break
    sleep 0.1
  done
  out=$(grep '^RESULT' "$H/noisy.out") || fail "wrk for the noisy app printed no result: $(cat "$H/noisy.out")"
  if grep -q '^FIRST_BAD' "$H/noisy.out"; then echo "  noisy-A: $(grep '^FIRST_BAD' "$H/noisy.out")" >&2; fi
  python3 - "$out" >>"$RESULTS" <<'PY'
import sys
kv = dict(x.split("=") for x in sys.argv[1].split()[1:])
ops = float(kv["requests"]) / (float(kv["duration_us"]) / 1e6)
ok = int(kv["non2xx"]) == 0 and int(kv["sockerr"]) == 0 and int(kv["bad"]) == 0
print("noisy-A", f"{ops:.1f}", kv["p50_us"], kv["p99_us"], kv["requests"], kv["non2xx"], kv["sockerr"], kv["bad"], "ok" if ok else "FAILED")
PY
}
echo "bench_runtime: $RUNS run(s) x ${SECONDS_EACH}s, $THREADS client threads, $CONNS connections, $ROWS rows, $(nproc) cores, server threads ${SERVER_THREADS:-default}, SQL workers $WORKERS ($PER_ADDON per add-on; the noisy app keeps $NOISY_CONNS slow statements in flight)$([ "$PIN" = 1 ] && echo ', pinned: server core 0, clients core 1')"
for i in $(seq "$RUNS"); do
  out=$("${CLIENT_CPU[@]}" "$POINT_SELECT" "$DB_FILE" --threads "$THREADS" --seconds "$SECONDS_EACH" --rows "$ROWS") || fail "direct: $out"
  python3 - "$out" >>"$RESULTS" <<'EOF'
import sys
kv = dict(x.split("=") for x in sys.argv[1].split())
print("direct", kv["ops_per_s"], kv["p50_us"], kv["p99_us"], kv["ops"], 0, 0, kv["errors"], "ok" if kv["errors"] == "0" else "FAILED")
EOF
  run_wrk descriptor "$H/descriptor.lua" "$BASE/v1/descriptors/DATABASE"
  run_wrk proxy "$H/pipeline.lua" "$BASE/v2/pipeline"
  run_wrk proxy-v3 "$H/pipeline_v3.lua" "$BASE/v3/pipeline"
  run_wrk proxy-v3pb "$H/pipeline_v3pb.lua" "$BASE/v3-protobuf/pipeline"
  run_node node-v2 http
  run_node node-ws ws
  run_noisy
  run_wrk nginx "$H/nginx.lua" "http://127.0.0.1:$NGINX_PORT/"
done

python3 - "$RESULTS" <<'EOF' || FAILED=1
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"{'run':>4} {'what':<11} {'ops/s':>9} {'p50 us':>9} {'p99 us':>9} {'requests':>9} {'non2xx':>6} {'sockerr':>7} {'bad':>5}")
n = {}
for r in rows:
    n[r[0]] = n.get(r[0], 0) + 1
    print(f"{n[r[0]]:>4} {r[0]:<11} {float(r[1]):>9.0f} {float(r[2]):>9.1f} {float(r[3]):>9.1f} {r[4]:>9} {r[5]:>6} {r[6]:>7} {r[7]:>5} {r[8]}")
med = {}
for what in ("direct", "descriptor", "proxy", "proxy-v3", "proxy-v3pb", "node-v2", "node-ws", "noisy", "noisy-A", "nginx"):
    sel = [r for r in rows if r[0] == what]
    med[what] = [statistics.median(float(r[i]) for r in sel) for i in (1, 2, 3)]
print(f"\nmedians of {n['direct']} run(s):")
for what, (ops, p50, p99) in med.items():
    print(f"  {what:<11} {ops:>9.0f} ops/s   p50 {p50/1000:7.3f} ms   p99 {p99/1000:7.3f} ms")
d, desc, p, noisy, ng = med["direct"], med["descriptor"], med["proxy"], med["noisy"], med["nginx"]
print("ratios against the baselines (same run):")
print(f"  proxy selects/s / direct selects/s     {p[0]/d[0]:.3f}  (direct is {d[0]/p[0]:.1f}x faster)")
print(f"  proxy p50 / direct p50                 {p[1]/d[1]:.1f}x")
print(f"  proxy p99 / direct p99                 {p[2]/d[2]:.1f}x")
print(f"  descriptor fetches/s / direct selects/s {desc[0]/d[0]:.3f}")
v3, v3pb = med["proxy-v3"], med["proxy-v3pb"]
print(f"  /v3 JSON selects/s / /v2 JSON          {v3[0]/p[0]:.3f}  (p50 {v3[1]/p[1]:.2f}x, p99 {v3[2]/p[2]:.2f}x)")
print(f"  /v3-protobuf selects/s / /v2 JSON      {v3pb[0]/p[0]:.3f}  (p50 {v3pb[1]/p[1]:.2f}x, p99 {v3pb[2]/p[2]:.2f}x)")
nv2, nws = med["node-v2"], med["node-ws"]
print(f"  WebSocket selects/s / /v2 JSON (Node)  {nws[0]/nv2[0]:.3f}  (p50 {nws[1]/nv2[1]:.2f}x, p99 {nws[2]/nv2[2]:.2f}x; both from one Node process)")
print(f"  proxy selects/s / nginx floor          {p[0]/ng[0]:.3f}")
print(f"  descriptor fetches/s / nginx floor     {desc[0]/ng[0]:.3f}")
print(f"  B's p50 with A busy / B alone          {noisy[1]/p[1]:.2f}x")
print(f"  B's p99 with A busy / B alone          {noisy[2]/p[2]:.2f}x")
pr = [r for r in rows if r[0] == "proxy"]
nr = [r for r in rows if r[0] == "noisy"]
paired = [float(b[3]) / float(a[3]) for a, b in zip(pr, nr)]
print(f"  (per run, B's p99 with A busy / B alone just before: {', '.join(f'{x:.2f}' for x in paired)})")
print("goals:")
print(f"  descriptor fetches >= 20000/s          {'met' if desc[0] >= 20000 else 'NOT met'} ({desc[0]:.0f}/s)")
print(f"  proxy point selects >= 10000/s         {'met' if p[0] >= 10000 else 'NOT met'} ({p[0]:.0f}/s)")
print(f"  proxy p99 < 2 ms                       {'met' if p[2] < 2000 else 'NOT met'} ({p[2]/1000:.3f} ms)")
floor = p[0] / ng[0]
print(f"  proxy >= 0.3x nginx (never < 0.15x)    {'met' if floor >= 0.3 else ('NOT met (above 0.15x)' if floor >= 0.15 else 'NOT met, BELOW 0.15x')} ({floor:.3f}x)")
print(f"  B's p99 with A busy within 2x          {'met' if noisy[2] <= 2 * p[2] else 'NOT met'} ({noisy[2]/p[2]:.2f}x)")
failed = [r for r in rows if r[8] != "ok"]
if failed:
    print(f"bench_runtime: {len(failed)} run(s) had failed requests", file=sys.stderr)
    sys.exit(1)
EOF

# Every wrk request was logged by the server (the access log is on, as in production).
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || fail "server exited $? after SIGTERM"
SERVER_PID=
[ "$FAILED" = 0 ] || exit 1
echo "bench_runtime: all requests succeeded"
