#!/usr/bin/env bash
# External kill -9 soak of snapshot and restore (issue 6, DESIGN.md §5 and §9).
#
# Builds an add-on whose database holds --size-mb of data, then loops
# --iterations times: changes the live data, starts `via addon snapshot` or
# `via --yes addon restore` (chosen at random), kills it with SIGKILL after a
# random delay (sometimes after it finished), runs `via recover`, and checks:
#   - `via audit verify` passes, also against the checkpoint saved before the
#     kill (no committed record lost or changed);
#   - a second `via recover --dry-run --json` has nothing to do (no change, no
#     intent, no storage finding, no rebuild): no dangling intent;
#   - the read model's digest equals `via audit replay`'s digest;
#   - the add-on is usable (`addon status` exits 0, nothing blocking);
#   - PRAGMA integrity_check of the live database says ok;
#   - every snapshot file that a SnapshotTaken event trusts hashes to its sha256;
#   - the live content (a SHA3 over every row) equals the content before the
#     kill, or, exactly when the log holds SnapshotRestored for this restore,
#     the content of the restored snapshot.
# Decisions (action, delay, target) come from --seed; exits non-zero with
# the failing check at the first failure and keeps the home for inspection.
#
# usage: crash_soak.sh [--via PATH] [--size-mb N] [--iterations N] [--seed N] [--dir DIR] [--keep]

set -euo pipefail

VIA="${VIA:-}"
SIZE_MB=200
ITERATIONS=30
SEED=1
DIR=""
KEEP=0

usage() { sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --via) VIA="$2"; shift 2 ;;
    --size-mb) SIZE_MB="$2"; shift 2 ;;
    --iterations) ITERATIONS="$2"; shift 2 ;;
    --seed) SEED="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage ;;
    *) echo "crash_soak: unknown argument $1" >&2; usage ;;
  esac
done
for n in "$SIZE_MB" "$ITERATIONS" "$SEED"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "crash_soak: not a number: $n" >&2; exit 2; }
done
if [[ -z "$VIA" ]]; then
  here="$(cd "$(dirname "$0")/../.." && pwd)"
  for candidate in "$here/build/cli/via" "$(command -v via || true)"; do
    if [[ -n "$candidate" && -x "$candidate" ]]; then VIA="$candidate"; break; fi
  done
fi
[[ -n "$VIA" && -x "$VIA" ]] || { echo "crash_soak: no via binary (pass --via PATH)" >&2; exit 2; }
for tool in sqlite3 python3 sha256sum; do
  command -v "$tool" >/dev/null || { echo "crash_soak: $tool is required" >&2; exit 2; }
done

if [[ -z "$DIR" ]]; then DIR="$(mktemp -d "${TMPDIR:-/tmp}/via-soak-XXXXXX")"; else mkdir -p "$DIR"; fi
HOME_DIR="$DIR/home"
WORK="$DIR/work"
mkdir -p "$WORK"
RANDOM="$SEED"
FAILED=0
cleanup() {
  if [[ "$FAILED" == 1 || "$KEEP" == 1 ]]; then
    echo "crash_soak: home kept at $HOME_DIR" >&2
  else
    rm -rf "$DIR"
  fi
}
trap cleanup EXIT

fail() {
  FAILED=1
  echo "crash_soak: FAILED (seed $SEED, iteration ${ITER:-setup}): $*" >&2
  exit 1
}
via() { "$VIA" --home "$HOME_DIR" "$@" </dev/null; }
# json EXPR: evaluates a Python expression over the JSON document on stdin (`j`).
json() { python3 -c 'import json,sys; j=json.load(sys.stdin); v=eval(sys.argv[1]); print(v if not isinstance(v,(dict,list,bool)) and v is not None else json.dumps(v))' "$1"; }
now_ms() { date +%s%3N; }
rand_below() { echo $(( (RANDOM * 32768 + RANDOM) % $1 )); }

# Content fingerprint of a database: SHA3 over the marker and every row.
fingerprint() {
  sqlite3 "file:$1?mode=ro" "SELECT hex(sha3_query('SELECT m FROM mark; SELECT id, b FROM big ORDER BY id'))"
}

# --- setup --------------------------------------------------------------------
echo "crash_soak: via=$VIA size=${SIZE_MB}MB iterations=$ITERATIONS seed=$SEED dir=$DIR"
via init >/dev/null || fail "via init"
via addon create sqlite soak-db --app soak --bind DATABASE >/dev/null || fail "addon create"
via release create --app soak >/dev/null || fail "release create"  # usable needs a release claim
ADDON_ID="$(via --json addon status soak-db | json 'j["addon"]["id"]')"
LIVE="$HOME_DIR/addons/$ADDON_ID/data.sqlite"
SNAPDIR="$HOME_DIR/snapshots/$ADDON_ID"
ROWS=$(( SIZE_MB * 256 ))  # one 4000-byte blob per 4 KiB page
t0=$(now_ms)
sqlite3 "$LIVE" "CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB); CREATE TABLE mark(m TEXT);
  INSERT INTO mark VALUES ('setup');
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<$ROWS)
  INSERT INTO big(b) SELECT randomblob(4000) FROM c;" >/dev/null || fail "fill the database"
echo "crash_soak: filled $ROWS rows ($(du -m "$LIVE" | cut -f1) MB) in $(( $(now_ms) - t0 )) ms"

declare -A CONTENT   # snapshot id -> content fingerprint of the data it holds
declare -A HASHED    # snapshot file "path size mtime" -> sha256 already checked

# Records the content of every trusted snapshot not seen yet: taken while the
# live data had fingerprint $1.
learn_snapshots() {
  local id
  while read -r id; do
    [[ -z "$id" || -n "${CONTENT[$id]:-}" ]] && continue
    CONTENT[$id]="$1"
  done < <(via --json addon snapshots soak-db | json '"\n".join(s["id"] for s in j["snapshots"] if s["status"] == "taken")')
}

t0=$(now_ms)
via addon snapshot soak-db >/dev/null || fail "first snapshot"
T_SNAP=$(( $(now_ms) - t0 ))
learn_snapshots "$(fingerprint "$LIVE")"
sqlite3 "$LIVE" "UPDATE mark SET m='setup-changed'" || fail "change the data"
changed="$(fingerprint "$LIVE")"
BASE="$(via --json addon snapshots soak-db | json 'j["snapshots"][0]["id"]')"
t0=$(now_ms)
via --yes addon restore soak-db --snapshot "$BASE" >/dev/null || fail "first restore"
T_RESTORE=$(( $(now_ms) - t0 ))
learn_snapshots "$changed"  # the safety snapshot
[[ "$(fingerprint "$LIVE")" == "${CONTENT[$BASE]}" ]] || fail "first restore did not restore"
echo "crash_soak: snapshot takes ${T_SNAP} ms, restore ${T_RESTORE} ms"

# --- checks -------------------------------------------------------------------
check_all() {  # $1: checkpoint saved before the kill
  via audit verify >/dev/null || fail "audit verify"
  via audit verify --checkpoint "$1" >/dev/null || fail "audit verify against the checkpoint saved before the kill"
  local dry
  dry="$(via --json recover --dry-run)" || fail "recover --dry-run"
  [[ "$(json 'j["changed"] or bool(j["intents"]) or bool(j["storage"]) or j["read_model_rebuilt"]' <<<"$dry")" == false ]] ||
    fail "a second recover still has something to do: $dry"
  local replay
  replay="$(via --json audit replay)" || fail "audit replay"
  [[ "$(json 'j.get("read_model_digest") == j["digest"] and j.get("read_model_matches") is True' <<<"$replay")" == true ]] ||
    fail "read-model digest differs from audit replay: $replay"
  local status
  status="$(via --json addon status soak-db)" || fail "addon status: $status"
  [[ "$(json 'j["blocking"]' <<<"$status")" == null ]] || fail "the add-on is blocked: $status"
  [[ "$(sqlite3 "$LIVE" 'PRAGMA integrity_check')" == ok ]] || fail "integrity_check of the live database"
  local id sha file key
  while read -r id sha; do
    [[ -z "$id" ]] && continue
    file="$SNAPDIR/$id.sqlite"
    [[ -f "$file" ]] || fail "trusted snapshot $id has no file"
    key="$(stat -c '%i %s %Y' "$file")"
    [[ "${HASHED[$id]:-}" == "$key" ]] && continue
    [[ "$(sha256sum "$file" | cut -d' ' -f1)" == "$sha" ]] || fail "snapshot $id does not match its SnapshotTaken sha256"
    HASHED[$id]="$key"
  done < <(via --json addon snapshots soak-db | json '"\n".join(s["id"] + " " + s["sha256"].lower() for s in j["snapshots"] if s["status"] == "taken")')
  local tmp
  tmp="$(find "$SNAPDIR" -name '*.tmp*' -o -name '*-journal' | head -1)"
  [[ -z "$tmp" ]] || fail "a temp file is left: $tmp"
}

# --- the loop -----------------------------------------------------------------
SOAK_START=$(now_ms)
killed=0; finished=0; snapshots=0; restores=0
for (( ITER = 1; ITER <= ITERATIONS; ITER++ )); do
  it_start=$(now_ms)
  # Change the live data so that "before" and every snapshot differ.
  sqlite3 "$LIVE" "UPDATE mark SET m='iteration $ITER';
    UPDATE big SET b=randomblob(4000) WHERE id % 61 = $(( ITER % 61 ));" || fail "change the data"
  before="$(fingerprint "$LIVE")"
  via audit checkpoint >"$WORK/checkpoint" || fail "audit checkpoint"
  seq_before="$(via --json audit replay | json 'j["seq"]')"

  if (( $(rand_below 2) == 0 )); then
    action=snapshot; snapshots=$((snapshots + 1)); target=""
    delay_ms=$(rand_below $(( T_SNAP * 11 / 10 + 1 )))
    ( exec "$VIA" --home "$HOME_DIR" addon snapshot soak-db </dev/null >"$WORK/out" 2>"$WORK/err" ) &
  else
    action=restore; restores=$((restores + 1))
    ids=("${!CONTENT[@]}")
    IFS=$'\n' ids=($(sort <<<"${ids[*]}")); unset IFS
    target="${ids[$(rand_below ${#ids[@]})]}"
    delay_ms=$(rand_below $(( T_RESTORE * 11 / 10 + 1 )))
    ( exec "$VIA" --home "$HOME_DIR" --yes addon restore soak-db --snapshot "$target" </dev/null >"$WORK/out" 2>"$WORK/err" ) &
  fi
  pid=$!
  sleep "$(printf '%d.%03d' $(( delay_ms / 1000 )) $(( delay_ms % 1000 )))"
  kill -9 "$pid" 2>/dev/null || true
  rc=0; wait "$pid" 2>/dev/null || rc=$?
  case "$rc" in
    137) outcome="killed"; killed=$((killed + 1)) ;;
    0) outcome="finished"; finished=$((finished + 1)) ;;
    *) fail "$action exited $rc before the kill: $(cat "$WORK/err")" ;;
  esac

  rec="$(via --json recover)" || fail "recover: $rec"
  intents="$(json '",".join(i["kind"] + ":" + i["action"] for i in j["intents"]) or "none"' <<<"$rec")"
  check_all "$WORK/checkpoint"

  # The content is the old one, or the snapshot's exactly when the log says
  # this restore happened.
  after="$(fingerprint "$LIVE")"
  expected="$before"; expected_what="the data before the kill"
  if [[ "$action" == restore ]]; then
    restored="$(via --json audit log --since $(( seq_before + 1 )) | python3 -c '
import json, sys
print(any(json.loads(l)["type"] == "SnapshotRestored" and json.loads(l)["snapshot_id"] == sys.argv[1]
          for l in sys.stdin if l.strip()))' "$target")"
    if [[ "$restored" == True ]]; then expected="${CONTENT[$target]}"; expected_what="snapshot $target"; fi
  fi
  [[ "$after" == "$expected" ]] || fail "live content is not $expected_what after $action ($outcome)"
  learn_snapshots "$before"  # new snapshots (plain or safety) hold the data before the kill

  printf 'crash_soak: iteration %d/%d: %-8s %-28s kill after %5d ms: %-8s recover: %-28s ok (%d ms)\n' \
    "$ITER" "$ITERATIONS" "$action" "${target:-}" "$delay_ms" "$outcome" "$intents" $(( $(now_ms) - it_start ))
done

echo "crash_soak: PASSED $ITERATIONS iterations ($snapshots snapshots, $restores restores;" \
  "$killed killed, $finished finished before the kill) in $(( ($(now_ms) - SOAK_START) / 1000 )) s, seed $SEED"
