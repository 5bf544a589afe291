#!/usr/bin/env bash
# The add-on part of the demo (called by tools/demo.sh with VIA_HOME set and
# `via` on PATH): create, bind, status, break the storage, see the blocker,
# repair, destroy, recreate, history.
set -euo pipefail
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
expect() { local want=$1; shift; printf '\n\033[1m$ %s\033[0m   (exits %s)\n' "$*" "$want";
  set +e; "$@"; local got=$?; set -e
  if [ "$got" != "$want" ]; then echo "demo: expected exit $want, got $got" >&2; exit 1; fi; }

step via addon create sqlite app-db --app api
expect 3 via addon status app-db                       # no binding yet
step via addon bind app-db --app api --bind DATABASE
expect 3 via addon status app-db                       # no release claims it yet
step via release create --app api
step via addon status app-db
step via addon ensure sqlite app-db --app api --bind DATABASE   # idempotent: nothing changes
id=$(via --json addon status app-db | python3 -c 'import json,sys; print(json.load(sys.stdin)["addon"]["id"])')
echo
echo "# break the storage: delete the database file of $id"
rm -f "$VIA_HOME/addons/$id/data.sqlite" "$VIA_HOME/addons/$id/data.sqlite-wal" "$VIA_HOME/addons/$id/data.sqlite-shm"
expect 3 via addon status app-db                       # storage_missing, with its remediation
step via addon ensure sqlite app-db --app api --repair
step via addon status app-db
expect 4 via addon destroy app-db --yes                # refused while bound
step via addon unbind app-db --app api --bind DATABASE
expect 4 via addon destroy app-db --yes                # refused: the latest release claims it
step via release create --app api                      # a release without it
step via addon destroy app-db --yes
step via addon create sqlite app-db --app api --bind DATABASE   # the name is free again
step via release create --app api                      # usable once a release claims it
step via addon list --all
step via addon history app-db

echo
echo "# snapshots, restore with undo, credentials and releases"
id=$(via --json addon status app-db | python3 -c 'import json,sys; print(json.load(sys.stdin)["addon"]["id"])')
sqlite3 "$VIA_HOME/addons/$id/data.sqlite" "CREATE TABLE notes(t); INSERT INTO notes VALUES ('before the snapshot');"
snap=$(via --json addon snapshot app-db --label demo | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
step via addon snapshots app-db
sqlite3 "$VIA_HOME/addons/$id/data.sqlite" "DELETE FROM notes; INSERT INTO notes VALUES ('after the snapshot');"
step via addon restore app-db --snapshot "$snap" --yes
step sqlite3 "$VIA_HOME/addons/$id/data.sqlite" "SELECT t FROM notes"
step via addon rotate-credentials app-db
step via addon revoke-credentials app-db --generation 1
step via release create --app api
step via release list --app api
step via recover
