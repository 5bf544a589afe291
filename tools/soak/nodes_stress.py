#!/usr/bin/env python3
"""Two `via serve` nodes on one PostgreSQL log: concurrent operators on both
homes, an app on each node and an auditor on each home (issue 16).

Sets up a new database on a PostgreSQL server (--pg-dir: a cluster of
tools/pg_cluster.sh, default $VIA_TEST_PG_DIR; or --log-url with PGPASSFILE
set), home a (`via init --log URL`) and home b (a's keys copied, then the same
init: it joins), and a real `via serve --node a|b --public-url URL` per home.
Then, all at once and as real processes for --seconds:
  - --writers loops of random operator commands, spread over both homes, the
    mix of tools/soak/concurrency_stress.py: create, bind, rotate, revoke,
    snapshot (of the other node's add-ons too: its owner takes them), restore,
    destroy and create again, release, check...;
  - an app on each node (app-a placed on node a, app-b on node b) speaking
    HTTP to the real servers: descriptors asked of either node (the other one
    forwards to the owner), inserts and reads sent to either node, and
    transactions whose batons travel through the other node; the operators
    snapshot, check, rotate and revoke these add-ons meanwhile;
  - an auditor on each home looping `audit verify`, `replay` and `prove`.

Wrong outcomes (any one fails the run): those of tools/soak/stress_lib.py on
both homes (operator exits, slowness, busy, auditor answers, rotations, each
command's records in the log exactly once, and the checks at rest), and:
  - an app request answered with anything but 200, or 401
    credential_revoked for a generation that the log revokes; a Hrana result
    that is an error; a descriptor that does not point at the owner;
  - a read (through either node, forwarded or not, and inside a transaction
    whose baton went through both) whose row count or newest row differs
    from what the app wrote: each app is its add-on's only writer, so it
    knows what the owner holds;
  - data or a descriptor served for a generation more than 1 s after a
    `revoke-credentials` of it returned, through either node;
  - no request forwarded, or a node that forwarded more than it was sent;
  - at rest: the two homes' logs differ (every record's seq and hash, the
    verified size and root, the latest checkpoint), their read models differ
    (`addon list --all` without the storage probe of the home, releases, the
    replay digest), or `audit verify` fails on either.

usage: nodes_stress.py --via PATH [--pg-dir DIR | --log-url URL] [--seconds 30]
                       [--writers 4] [--seed 1] [--dir DIR] [--keep]
Exit 0 when no wrong outcome was seen; 1 with a report otherwise.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import stress_lib as lib  # noqa: E402

NODES = ["a", "b"]
APP_OF = {"a": ("web-a", "app-a"), "b": ("web-b", "app-b")}  # node -> (app, its add-on)
# Keys of `addon list` that come from the home's own storage probe (another
# node's add-on has no file here: storage_missing).
PROBED = {"blocking", "owner", "usable_by_app"}


def request(url, method, path, token, body=None, timeout=30):
    """One HTTP request on a new connection; returns (status, parsed body, text)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Authorization": "Bearer " + token,
                              "Content-Type": "application/json"})
        answer = conn.getresponse()
        text = answer.read().decode("utf-8", "replace")
        return answer.status, lib.parse_json(text), text
    except (OSError, http.client.HTTPException) as e:
        return -1, None, "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


def execute(sql, *args):
    stmt = {"sql": sql}
    if args:
        stmt["args"] = [{"type": "text", "value": a} for a in args]
    return {"type": "execute", "stmt": stmt}


# What the app reads back: how many rows, and the newest row's value.
LAST_ROW = "SELECT count(*), (SELECT v FROM t ORDER BY id DESC LIMIT 1) FROM t"


def ran(answer, step):
    """Whether step STEP of a pipeline's answer ran (its result is ok)."""
    return isinstance(answer, dict) and answer["results"][step].get("type") == "ok"


def row(result):
    """The first row of an execute result of LAST_ROW: (count, value or None)."""
    first = result["response"]["result"]["rows"][0]
    return int(first[0]["value"]), first[1].get("value")


class App:
    """An app of node OWNER's add-on, speaking HTTP to both nodes."""

    def __init__(self, run, owner, jwt, urls, seed):
        self.run = run
        self.owner = owner
        self.other = [n for n in NODES if n != owner][0]
        self.who = "app@" + owner
        self.jwt = jwt
        self.urls = urls
        self.rng = random.Random(seed)
        self.expected = 0  # rows committed; this app is the add-on's only writer
        self.last = None  # the value of the last row committed
        self.token = None
        self.key = None  # (add-on id, generation) of the token
        self.served = []  # (add-on id, generation, monotonic time sent, what)
        self.refused = set()  # (add-on id, generation) answered credential_revoked
        self.revoked_answers = 0  # requests answered credential_revoked
        self.sent = {n: 0 for n in NODES}  # Hrana and descriptor requests per node
        self.answered = {n: 0 for n in NODES}  # of those, answered 200

    def wrong(self, what, detail):
        self.run.note(self.who, what, detail)

    def descriptor(self, node):
        sent = time.monotonic()
        status, answer, text = request(self.urls[node], "GET", "/v1/descriptors/DATABASE",
                                       self.jwt)
        took = time.monotonic() - sent
        self.sent[node] += 1
        if status != 200 or not answer:
            self.wrong("descriptor error", "GET descriptor from %s -> %d: %s" %
                       (node, status, text[:500]))
            return False
        self.answered[node] += 1
        if took > lib.SLOW_S:
            self.wrong("slow", "descriptor from %s took %.2fs" % (node, took))
        if answer.get("url") != self.urls[self.owner]:
            self.wrong("descriptor does not point at the owner", text)
        token = answer.get("auth_token", "")
        fields = token.split(".")
        if len(fields) != 4 or fields[1] != answer.get("addon_id") or \
                fields[2] != str(answer.get("generation")):
            self.wrong("descriptor's credential is not its generation's", text)
            return False
        self.token = token
        self.key = (answer["addon_id"], answer["generation"])
        self.served.append(self.key + (sent, "descriptor from " + node))
        return True

    def pipeline(self, node, requests, baton=None):
        """One /v2/pipeline request; returns the answer (200), "revoked" on
        401 credential_revoked, None on any other answer. A revocation that
        lands while the pipeline runs closes its stream: the steps after it
        fail with "generation N of ID was revoked" (the ones before it ran);
        any other failed step is a wrong outcome."""
        sent = time.monotonic()
        status, answer, text = request(self.urls[node], "POST", "/v2/pipeline", self.token,
                                       {"baton": baton, "requests": requests})
        took = time.monotonic() - sent
        self.sent[node] += 1
        line = "POST /v2/pipeline to %s with generation %s -> %d in %.2fs: %s" % (
            node, self.key[1], status, took, text[:1500])
        if took > lib.SLOW_S:
            self.wrong("slow", line)
        if status == 401 and answer and answer.get("code") == "credential_revoked":
            self.refused.add(self.key)
            self.revoked_answers += 1
            return "revoked"
        if status != 200 or not answer or "results" not in answer:
            self.wrong("app error", line)
            return None
        self.answered[node] += 1
        self.served.append(self.key + (sent, "pipeline to " + node))
        for result in answer["results"]:
            if result.get("type") == "ok":
                continue
            m = re.fullmatch(r"generation (\d+) of (\S+) was revoked",
                             (result.get("error") or {}).get("message", ""))
            if m and (m.group(2), int(m.group(1))) == self.key:
                self.refused.add(self.key)
                self.revoked_answers += 1
            else:
                self.wrong("a Hrana result is an error", line)
                return None
        with self.run.lock:
            self.run.app_ok += 1
        return answer

    def send(self, node, requests, baton=None):
        """pipeline(), taking a new descriptor while the generation is revoked
        (a refused request ran nothing, so it is sent again)."""
        for _ in range(20):
            answer = self.pipeline(node, requests, baton)
            if answer != "revoked":
                return answer
            if baton is not None:
                return "revoked"  # the stream was the revoked generation's
            if not self.descriptor(self.rng.choice(NODES)):
                return None
        self.wrong("app error", "still revoked after 20 descriptors")
        return None

    def count_via(self, node):
        answer = self.send(node, [execute(LAST_ROW), {"type": "close"}])
        if not ran(answer, 0):
            return
        got = row(answer["results"][0])
        if got != (self.expected, self.last):
            self.wrong("a read differs from what was written",
                       "%s via %s (owner %s): %s, written %s" %
                       (LAST_ROW, node, self.owner, got, (self.expected, self.last)))

    def loop(self, deadline):
        i = 0
        while time.monotonic() < deadline:
            i += 1
            if self.token is None or i % 10 == 0:
                if not self.descriptor(NODES[i % 2]):
                    time.sleep(0.1)
                    continue
            node = NODES[i % 2]
            written = "row-%d@%s" % (i, node)
            answer = self.send(node, [execute("INSERT INTO t(v) VALUES (?)", written),
                                      {"type": "close"}])
            if ran(answer, 0):  # autocommit: written once the step ran
                self.expected += 1
                self.last = written
            # The same read through the node that forwards it and the owner.
            self.count_via(self.other)
            self.count_via(self.owner)
            if i % 4 == 0:
                self.transaction(i)

    def transaction(self, i):
        """A transaction over two requests to different nodes: the baton the
        owner issued travels through the other node. It reads first (no write
        lock), so one abandoned by a revocation holds nothing up."""
        first, second = (self.other, self.owner) if i % 8 else (self.owner, self.other)
        answer = self.send(first, [execute("BEGIN"), execute(LAST_ROW)])
        if not ran(answer, 1):
            return
        if row(answer["results"][1]) != (self.expected, self.last) or not answer.get("baton"):
            self.wrong("a transaction's read differs from what was written",
                       json.dumps(answer)[:800])
            return
        written = "tx-%d@%s,%s" % (i, first, second)
        answer = self.send(second, [execute("INSERT INTO t(v) VALUES (?)", written),
                                    execute(LAST_ROW), execute("COMMIT"),
                                    {"type": "close"}], baton=answer["baton"])
        if not ran(answer, 2):  # no COMMIT: the closed stream rolled back
            return
        self.expected += 1
        self.last = written
        if row(answer["results"][1]) != (self.expected, self.last):
            self.wrong("a transaction's read differs from what was written",
                       json.dumps(answer)[:800])


def metric(url, name):
    status, _, text = request(url, "GET", "/metrics", "")
    for line in text.splitlines() if status == 200 else []:
        if line.startswith(name + " "):
            return int(float(line.split()[1]))
    return None


def stripped(listing):
    addons = (lib.parse_json(listing) or {}).get("addons", [])
    return [{k: v for k, v in a.items() if k not in PROBED} for a in addons]


def one_chain(run, homes):
    """Both homes read one log and agree on its read model."""
    seen = {}
    for node, home in homes.items():
        verify = lib.parse_json(run.must(home, ["--json", "audit", "verify"])) or {}
        checkpoint = lib.parse_json(run.must(home, ["--json", "audit", "checkpoint"])) or {}
        records = lib.read_log(run, home)
        seen[node] = {
            "head": (verify.get("size"), verify.get("root")),
            "checkpoint": checkpoint.get("note"),
            "records": [(r["seq"], r["hash"]) for r in records],
            "addons": stripped(run.must(home, ["--json", "addon", "list", "--all"])),
            "releases": [run.must(home, ["--json", "release", "list", "--app", app])
                         for app in lib.APPS + [APP_OF[n][0] for n in NODES]],
            "replay": (lib.parse_json(run.must(home, ["--json", "audit", "replay"])) or
                       {}).get("digest"),
        }
        if verify.get("size") != len(records):
            run.note("rest@" + node, "verify's size is not the log's", "%s vs %d records" %
                     (verify.get("size"), len(records)))
    a, b = seen["a"], seen["b"]
    for what in ("head", "checkpoint", "records", "addons", "releases", "replay"):
        if a[what] != b[what]:
            run.note("rest", "the homes differ: " + what,
                     "a: %s\nb: %s" % (json.dumps(a[what])[:800], json.dumps(b[what])[:800]))
    return records


def revocation_checks(run, apps, records):
    """Returns how many acknowledged revocations were of a generation an app
    had been served (the ones the 1 s rule bites on)."""
    revoked = {(r["addon_id"], r["generation"]) for r in records
               if r.get("type") == "GenerationRevoked"}
    in_use = set()
    for app in apps:
        for key in app.refused - revoked:
            run.note(app.who, "refused a generation the log does not revoke", str(key))
        for addon_id, generation, sent, what in app.served:
            acked = run.revocations.get((addon_id, generation))
            if acked is not None:
                in_use.add((addon_id, generation))
            if acked is not None and sent > acked + 1.0:
                run.note(app.who, "served a revoked generation",
                         "%s, generation %d, sent %.3f s after its revoke returned" %
                         (what, generation, sent - acked))
    return len(in_use)


def owner_snapshots(records):
    """How many snapshots were asked for on a home that is not the owner's
    (taken by the owner's via serve): SnapshotRequested under owner/...."""
    return sum(1 for r in records if r.get("type") == "SnapshotRequested" and
               (r.get("command_id") or "").startswith("owner/"))


def new_database(pg_dir):
    """A new database on the cluster in PG_DIR; returns (log URL, admin URL, name)."""
    with open(os.path.join(pg_dir, "url")) as f:
        admin = f.read().strip()
    os.environ["PGPASSFILE"] = os.path.join(pg_dir, "pgpass")
    name = "via_nodes_stress_%d_%d" % (os.getpid(), int(time.time()))
    psql(admin, "CREATE DATABASE " + name)
    return admin[:admin.rfind("/") + 1] + name, admin, name


def psql(url, sql):
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                       capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    if p.returncode != 0:
        raise SystemExit("nodes_stress: psql `%s` failed: %s" % (sql, p.stderr))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--via", required=True)
    parser.add_argument("--pg-dir", default=os.environ.get("VIA_TEST_PG_DIR"))
    parser.add_argument("--log-url")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not args.log_url and not args.pg_dir:
        parser.error("give --pg-dir (or $VIA_TEST_PG_DIR) or --log-url")
    directory = args.dir or tempfile.mkdtemp(prefix="via-nodes-stress-")
    os.makedirs(directory, exist_ok=True)
    dropped = None
    if args.log_url:
        log_url = args.log_url
    else:
        log_url, admin, name = new_database(args.pg_dir)
        dropped = (admin, name)
    homes = {n: os.path.join(directory, n) for n in NODES}
    run = lib.Run(args.via)
    servers = []
    try:
        run.must(homes["a"], ["init", "--log", log_url])
        shutil.copytree(os.path.join(homes["a"], "keys"), os.path.join(homes["b"], "keys"))
        run.must(homes["b"], ["init", "--log", log_url])
        urls = {}
        for n in NODES:
            port = lib.free_port()
            urls[n] = "http://127.0.0.1:%d" % port
            servers.append(lib.start_server(run.via, homes[n], directory, n,
                                            ["--listen", "127.0.0.1:%d" % port, "--node", n,
                                             "--public-url", urls[n]])[0])
        apps = []
        for i, n in enumerate(NODES):
            app, addon = APP_OF[n]
            run.must(homes[n], ["addon", "create", "sqlite", addon, "--app", app, "--bind",
                                "DATABASE"])
            run.must(homes[n], ["release", "create", "--app", app])
            jwt = json.loads(run.must(homes[n], ["--json", "workload", "token", "--app", app,
                                                 "--release", "v1", "--ttl", "1h"]))["token"]
            apps.append(App(run, n, jwt, urls, args.seed * 100 + 50 + i))
        for app in apps:
            # Set up through the other node: forwarded from the start.
            if not app.descriptor(app.other) or app.send(app.other, [execute(
                    "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"), {"type": "close"}]) is None:
                raise SystemExit("nodes_stress: the app's setup failed: %s" % run.wrong)

        watched = [APP_OF[n][1] for n in NODES]
        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=lib.operator,
                                    args=(run, homes[NODES[i % 2]], args.seed * 100 + i,
                                          deadline, watched, watched))
                   for i in range(args.writers)]
        threads += [threading.Thread(target=app.loop, args=(deadline,)) for app in apps]
        threads += [threading.Thread(target=lib.auditor,
                                     args=(run, homes[n], args.seed * 100 + 90 + i, deadline))
                    for i, n in enumerate(NODES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        forwarded = {n: metric(urls[n], "via_forwarded_requests_total") for n in NODES}
        for app in apps:
            # What the other node forwarded for this app: at least what it
            # answered, at most what it was sent.
            done = forwarded[app.other]
            if done is None or not app.answered[app.other] <= done or \
                    done > sum(a.sent[app.other] for a in apps if a.other == app.other):
                run.note("run", "forwarding is not what the app saw",
                         "node %s forwarded %s; app of %s sent it %d, %d answered" %
                         (app.other, done, app.owner, app.sent[app.other],
                          app.answered[app.other]))
    finally:
        for proc in servers:
            lib.stop_server(proc)

    for n in NODES:
        lib.at_rest(run, homes[n], lambda addon: homes.get(addon.get("node"), homes[n]))
    records = one_chain(run, homes)
    lib.log_checks(run, records)
    revoked_in_use = revocation_checks(run, apps, records)

    ops = sum(v for k, v in run.counts.items() if k.startswith("op:"))
    summary = {"operator_commands": ops, "app_requests_ok": run.app_ok, "audits": run.audits,
               "log_size": len(records), "forwarded": forwarded,
               "revocations": len(run.revocations), "revocations_of_served": revoked_in_use,
               "app_requests": {app.who: app.sent for app in apps},
               "app_rows": {app.who: app.expected for app in apps},
               "app_revoked_answers": {app.who: app.revoked_answers for app in apps},
               "snapshots_by_owner": owner_snapshots(records),
               "wrong": len(run.wrong),
               "exits": {k: v for k, v in sorted(run.counts.items())}}
    code = lib.report(run, summary, directory,
                      ops >= args.writers * 5 and run.app_ok >= 10 and run.audits >= 6 and
                      all(forwarded.values()))
    if code == 0:
        if dropped:
            psql(dropped[0], "DROP DATABASE IF EXISTS %s WITH (FORCE)" % dropped[1])
        if not args.keep and not args.dir:
            shutil.rmtree(directory, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
