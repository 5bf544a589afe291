#!/usr/bin/env bash
# ctest "tools: independent verifier agrees with via".
# Usage: run_independent_verify.sh PATH/TO/via
#
# Builds a small log with the real binary, checks that tests/tools/independent_verify.py
# (written from docs/event-log-format.md only) verifies it and agrees with `via`, then
# damages a copy and checks that both verifiers fail and name the same seq:
#   bytes:     one record byte only (the stored hash column now disagrees);
#   rehash:    one record byte and its stored hash (caught by the Merkle leaf / checkpoint root);
#   signature: one character of an older note's signature (format 3: bound into the newest
#              note by the links; named at that note, checkpoint_bad_signature);
#   unlink:    an older note removed from its row (named at the next note,
#              checkpoint_link_mismatch).
set -euo pipefail

VIA=${1:?usage: run_independent_verify.sh PATH/TO/via}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
VERIFY="$HERE/independent_verify.py"
ACTOR=auditor

WORK=$(mktemp -d "${TMPDIR:-/tmp}/via-indep-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
H="$WORK/home"

fail() { echo "FAIL: $*" >&2; exit 1; }

"$VIA" --home "$H" --actor "$ACTOR" init >/dev/null
if "$VIA" --help | grep -qE '^[[:space:]]+addon[[:space:]]'; then
  for i in 1 2 3; do
    "$VIA" --home "$H" --actor "$ACTOR" addon create sqlite "db-$i" --app "app-$i" --bind DATABASE >/dev/null \
      || fail "via addon create sqlite db-$i failed"
  done
  # Events whose JSON renders a digest as hex, times as RFC 3339 and a
  # duration in milliseconds (docs/cli.md "JSON conventions").
  for args in "addon snapshot db-1" "addon snapshots policy db-1 --keep-last 2 --every 24h" \
              "release create --app app-1" "workload token --app app-1 --release v1 --ttl 1h"; do
    # shellcheck disable=SC2086
    "$VIA" --home "$H" --actor "$ACTOR" $args >/dev/null || fail "via $args failed"
  done
fi

echo "== independent verifier on a fresh log"
"$PY" "$VERIFY" --via "$VIA" --all-signatures "$H" || fail "independent verifier rejected a log that via wrote"
"$PY" "$VERIFY" --no-via "$H" || fail "independent verifier (newest signature and links) rejected a log that via wrote"
"$VIA" --home "$H" audit verify >/dev/null || fail "via audit verify rejected its own log"

# tamper MODE SEQ [EXPECTED_SEQ REASON]: copies the home and damages row SEQ as MODE
# says (above), then runs both verifiers: both must fail naming EXPECTED_SEQ (default
# SEQ), and with REASON both must give it.
tamper() {
  local mode=$1 seq=$2 expect=${3:-$2} reason=${4:-} dir="$WORK/tamper-$1"
  rm -rf "$dir"
  cp -a "$H" "$dir"
  "$PY" - "$dir/log/events.db" "$seq" "$mode" "$ACTOR" <<'PYEOF'
import hashlib, sqlite3, sys
path, seq, mode, actor = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
db = sqlite3.connect(path)
db.execute("DROP TRIGGER records_no_update")
if mode in ("bytes", "rehash"):
    rec = bytearray(db.execute("SELECT record FROM records WHERE seq=?", (seq,)).fetchone()[0])
    at = rec.find(actor + b"\x00")
    assert at >= 0, "actor text not found in record %d" % seq
    rec[at] ^= 0x01  # 'a' -> '`': still UTF-8, still no NUL
    if mode == "rehash":
        db.execute("UPDATE records SET record=?, hash=? WHERE seq=?", (bytes(rec), hashlib.sha256(rec).digest(), seq))
    else:
        db.execute("UPDATE records SET record=? WHERE seq=?", (bytes(rec), seq))
elif mode == "signature":
    note = db.execute("SELECT checkpoint FROM records WHERE seq=?", (seq,)).fetchone()[0]
    at = len(note) - 6  # inside the base64 of the signature line, before its padding
    note = note[:at] + ("B" if note[at] == "A" else "A") + note[at + 1:]
    db.execute("UPDATE records SET checkpoint=? WHERE seq=?", (note, seq))
elif mode == "unlink":
    db.execute("UPDATE records SET checkpoint=NULL, command_id=NULL WHERE seq=?", (seq,))
else:
    raise SystemExit("unknown mode " + mode)
db.commit()
PYEOF
  echo "== tampered ($mode) seq $seq"
  local out rc=0
  out=$("$PY" "$VERIFY" --via "$VIA" "$dir") || rc=$?
  echo "$out"
  [ "$rc" -ne 0 ] || fail "independent verifier accepted the damage ($mode, seq $seq)"
  local py_seq py_reason via_json via_rc=0 via_seq via_reason
  py_seq=$(sed -n 's/^FAILED: first bad seq \([0-9]*\):.*/\1/p' <<<"$out")
  py_reason=$(sed -n 's/^FAILED: .*\[\([a-z_]*\)\]$/\1/p' <<<"$out")
  via_json=$("$VIA" --home "$dir" --json audit verify) || via_rc=$?
  echo "via: exit $via_rc $via_json"
  [ "$via_rc" -eq 6 ] || fail "via audit verify exited $via_rc on damage ($mode, seq $seq), expected 6"
  via_seq=$("$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["first_bad_seq"])' <<<"$via_json")
  via_reason=$("$PY" -c 'import json,sys; print(json.loads(sys.stdin.read())["error"]["code"])' <<<"$via_json")
  [ "$py_seq" = "$expect" ] || fail "independent verifier named seq '$py_seq', expected $expect"
  [ "$via_seq" = "$expect" ] || fail "via named seq '$via_seq', expected $expect"
  if [ -n "$reason" ]; then
    [ "$py_reason" = "$reason" ] || fail "independent verifier said '$py_reason', expected $reason"
    [ "$via_reason" = "$reason" ] || fail "via said '$via_reason', expected $reason"
  fi
}

LAST=$("$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT max(seq) FROM records").fetchone()[0])' "$H/log/events.db")
NOTES=($("$PY" -c 'import sqlite3,sys; print(" ".join(str(r[0]) for r in sqlite3.connect(sys.argv[1]).execute("SELECT seq FROM records WHERE checkpoint IS NOT NULL ORDER BY seq")))' "$H/log/events.db"))
[ "${#NOTES[@]}" -ge 3 ] || fail "expected at least 3 notes, found ${#NOTES[@]}"
tamper bytes 1
tamper rehash "$LAST"
tamper signature "${NOTES[1]}" "${NOTES[1]}" checkpoint_bad_signature
tamper unlink "${NOTES[1]}" "${NOTES[2]}" checkpoint_link_mismatch

echo "PASS: the independent verifier agrees with via on $LAST record(s) and both name the same damage"
