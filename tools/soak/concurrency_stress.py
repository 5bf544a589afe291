#!/usr/bin/env python3
"""Concurrent operators, an app and an auditor on one home (issue 11).

Runs, all at once and as real processes for --seconds:
  - --writers loops of random operator commands (`via --json addon ...`,
    `release create`, `addon check`, ...) on a small set of names, so that
    they collide all the time;
  - `via serve`, and an app that writes and reads its add-on through the
    proxy with `via sql` (the C++ client) in a loop, while the operators
    snapshot, check and rotate that add-on;
  - an auditor looping `audit verify`, `audit replay` and `audit prove`.

Wrong outcomes (any one fails the run):
  - an operator command that exits 1 (unexpected failure), 2 (usage: the
    generated command lines are valid), 6 (integrity alarm) or by a signal, or
    that takes longer than 10 s, or whose output mentions busy/locked;
  - any app error (a snapshot must never break an app);
  - an auditor answer that is not true: verify failing, replay reporting that
    the read model does not match, a proof whose checkpoint is for another
    size or root;
  - two rotations told the same generation, or a generation told that the
    log does not hold.
At rest, after everything stopped:
  - `audit verify` passes and `recover --dry-run` has nothing to do;
  - the replay digest equals the read model's;
  - live names are unique;
  - every snapshot file that the log trusts hashes to its recorded SHA-256
    and every answered snapshot is in the log with that hash;
  - every live database passes `via addon check` (integrity_check).

usage: concurrency_stress.py --via PATH [--seconds 30] [--writers 4] [--seed 1]
                             [--dir DIR] [--keep]
Exit 0 when no wrong outcome was seen; 1 with a report otherwise.
"""

import argparse
import hashlib
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

SLOW_S = 10.0
NAMES = ["db0", "db1", "db2", "db3", "db4"]
APPS = ["api", "jobs"]
BINDINGS = ["DATABASE", "CACHE", "QUEUE"]
APP_ADDON = "app-db"  # the app's add-on: snapshotted, checked and rotated only


class Run:
    def __init__(self, args):
        self.via = args.via
        self.home = args.home
        self.lock = threading.Lock()
        self.wrong = []  # (who, what, detail)
        self.counts = {}
        self.rotations = {}  # (addon id, generation) -> how many commands were told it
        self.snapshots = {}  # snapshot id -> sha256 hex as answered
        self.app_ok = 0
        self.audits = 0

    def note(self, who, what, detail):
        with self.lock:
            self.wrong.append((who, what, detail[:2000]))

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def via_cmd(self, args, env=None, timeout=60):
        """Runs `via --home HOME ARGS`; returns (exit, stdout, stderr, seconds)."""
        started = time.monotonic()
        try:
            p = subprocess.run([self.via, "--home", self.home] + args, capture_output=True,
                               text=True, stdin=subprocess.DEVNULL, timeout=timeout, env=env)
            code, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            code, out, err = -999, "", "timed out after %d s" % timeout
        return code, out, err, time.monotonic() - started


def parse_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def operator_command(rng, run):
    """A random, valid operator command line (many are refused by state)."""
    name = rng.choice(NAMES)
    app = rng.choice(APPS)
    binding = rng.choice(BINDINGS)
    kind = rng.choice(["create", "create", "ensure", "bind", "unbind", "status", "list",
                       "history", "snapshot", "snapshot", "snapshots", "restore", "rotate",
                       "rotate", "revoke", "destroy", "release", "check", "checkpoint"])
    if kind == "create":
        args = ["addon", "create", "sqlite", name, "--app", app]
        return kind, args + (["--bind", binding] if rng.random() < 0.5 else [])
    if kind == "ensure":
        return kind, ["addon", "ensure", "sqlite", name, "--app", app, "--bind", binding]
    if kind in ("bind", "unbind"):
        return kind, ["addon", kind, name, "--app", app, "--bind", binding]
    if kind == "status":
        return kind, ["addon", "status", rng.choice(NAMES + [APP_ADDON])]
    if kind == "list":
        return kind, ["addon", "list"] + (["--all"] if rng.random() < 0.5 else [])
    if kind == "history":
        return kind, ["addon", "history", name]
    if kind == "snapshot":
        return kind, ["addon", "snapshot", rng.choice(NAMES + [APP_ADDON])]
    if kind == "snapshots":
        return kind, ["addon", "snapshots", rng.choice(NAMES + [APP_ADDON])]
    if kind == "restore":
        code, out, _, _ = run.via_cmd(["--json", "addon", "snapshots", name])
        listed = (parse_json(out) or {}).get("snapshots") if code == 0 else None
        taken = [s["id"] for s in (listed or []) if s.get("status") == "taken"]
        if not taken:
            return "status", ["addon", "status", name]
        return kind, ["--yes", "addon", "restore", name, "--snapshot", rng.choice(taken)]
    if kind == "rotate":
        return kind, ["addon", "rotate-credentials", rng.choice(NAMES + [APP_ADDON])]
    if kind == "revoke":
        return kind, ["addon", "revoke-credentials", name, "--generation", str(rng.randint(1, 4))]
    if kind == "destroy":
        return kind, ["--yes", "addon", "destroy", name]
    if kind == "release":
        return kind, ["release", "create", "--app", app]
    if kind == "check":
        return kind, ["addon", "check", rng.choice(NAMES + [APP_ADDON])]
    return kind, ["audit", "checkpoint"]


def operator(run, seed, deadline):
    rng = random.Random(seed)
    who = "operator-%d" % seed
    while time.monotonic() < deadline:
        kind, args = operator_command(rng, run)
        code, out, err, took = run.via_cmd(["--json"] + args)
        run.count("op:%s:%d" % (kind, code))
        line = "via %s -> exit %d in %.2fs\nstdout: %s\nstderr: %s" % (
            " ".join(args), code, took, out.strip(), err.strip())
        if code in (1, 2, 6) or code < 0 or code >= 128:
            run.note(who, "exit %d" % code, line)
        if took > SLOW_S:
            run.note(who, "slow", line)
        if re.search(r"\b(busy|locked)\b", out + err, re.IGNORECASE):
            run.note(who, "busy reached the user", line)
        answer = parse_json(out) if code == 0 else None
        if kind == "rotate" and answer is not None:
            key = (answer["addon_id"], answer["generation"])
            with run.lock:
                run.rotations[key] = run.rotations.get(key, 0) + 1
        if kind == "snapshot" and answer is not None:
            with run.lock:
                run.snapshots[answer["id"]] = answer["sha256"]


def app(run, deadline, env):
    """An app writing and reading its add-on through the proxy."""
    i = 0
    while time.monotonic() < deadline:
        i += 1
        for sql, extra in (("INSERT INTO t(v) VALUES (?)", ["--arg", "text:row-%d" % i]),
                           ("SELECT count(*) FROM t", [])):
            code, out, err, took = run.via_cmd(["sql", "DATABASE", sql] + extra, env=env)
            if code != 0 or took > SLOW_S:
                run.note("app", "app error" if code != 0 else "slow",
                         "via sql %s -> exit %d in %.2fs: %s %s" % (sql, code, took,
                                                                    out.strip(), err.strip()))
            else:
                with run.lock:
                    run.app_ok += 1


def auditor(run, seed, deadline):
    rng = random.Random(seed)
    while time.monotonic() < deadline:
        kind = rng.choice(["verify", "replay", "prove"])
        if kind == "verify":
            code, out, err, took = run.via_cmd(["--json", "audit", "verify"])
            answer = parse_json(out)
            if code != 0 or not answer or answer.get("ok") is not True:
                run.note("auditor", "verify failed", "exit %d: %s %s" % (code, out, err))
        elif kind == "replay":
            code, out, err, took = run.via_cmd(["--json", "audit", "replay"])
            answer = parse_json(out)
            if code != 0 or not answer or answer.get("read_model_matches") is not True:
                run.note("auditor", "replay mismatch", "exit %d: %s %s" % (code, out[:500], err))
        else:
            code, out, err, took = run.via_cmd(["--json", "audit", "verify"])
            size = (parse_json(out) or {}).get("size", 1)
            seq = rng.randint(1, max(1, size))
            code, out, err, took = run.via_cmd(["--json", "audit", "prove", "--inclusion",
                                                str(seq)])
            answer = parse_json(out)
            ok = code == 0 and answer is not None
            if ok:
                note = answer.get("checkpoint", "").split("\n")
                ok = len(note) > 2 and note[1] == str(answer["tree_size"]) and \
                    note[2] == answer["root"]
            if not ok:
                run.note("auditor", "proof inconsistent", "exit %d: %s %s" % (code, out, err))
        if took > SLOW_S:
            run.note("auditor", "slow", "%s took %.2fs" % (kind, took))
        with run.lock:
            run.audits += 1


def start_server(run, directory):
    log = open(os.path.join(directory, "serve.log"), "w")
    access = os.path.join(directory, "access.log")
    proc = subprocess.Popen([run.via, "--home", run.home, "serve", "--listen", "127.0.0.1:0",
                             "--access-log", access], stdout=subprocess.DEVNULL, stderr=log,
                            stdin=subprocess.DEVNULL)
    for _ in range(200):
        with open(os.path.join(directory, "serve.log")) as f:
            m = re.search(r"listening on (http://\S+)", f.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("concurrency_stress: via serve did not start")


def must(run, args, env=None):
    code, out, err, _ = run.via_cmd(args, env=env)
    if code != 0:
        raise SystemExit("concurrency_stress: setup `via %s` failed (%d): %s %s" %
                         (" ".join(args), code, out, err))
    return out


def at_rest(run):
    """The checks once everything has stopped."""
    code, out, err, _ = run.via_cmd(["--json", "audit", "verify"])
    if code != 0 or (parse_json(out) or {}).get("ok") is not True:
        run.note("rest", "verify failed", out + err)
    code, out, err, _ = run.via_cmd(["--json", "recover", "--dry-run"])
    report = parse_json(out) or {}
    if code != 0 or report.get("changed") or report.get("intents") or report.get("storage") or \
            report.get("read_model_rebuilt"):
        run.note("rest", "recover --dry-run is not clean", out + err)
    code, out, err, _ = run.via_cmd(["--json", "audit", "replay"])
    if code != 0 or (parse_json(out) or {}).get("read_model_matches") is not True:
        run.note("rest", "replay digest differs from the read model", out[:500] + err)
    live = (parse_json(must(run, ["--json", "addon", "list"])) or {}).get("addons", [])
    names = [a["name"] for a in live]
    if len(names) != len(set(names)):
        run.note("rest", "names not unique", json.dumps(names))
    everything = (parse_json(must(run, ["--json", "addon", "list", "--all"])) or {}).get("addons", [])
    trusted = {}
    for addon in everything:
        listed = (parse_json(must(run, ["--json", "addon", "snapshots", addon["id"]])) or {}).get(
            "snapshots", [])
        for snap in listed:
            if snap["status"] != "taken" or snap.get("deleted"):
                continue
            trusted[snap["id"]] = snap["sha256"]
            path = os.path.join(run.home, "snapshots", addon["id"], snap["id"] + ".sqlite")
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if digest != snap["sha256"]:
                run.note("rest", "snapshot file differs from its event", path)
    for sid, sha in run.snapshots.items():
        if trusted.get(sid) != sha:
            run.note("rest", "an answered snapshot is not in the log as answered", sid)
    for addon in live:
        if addon["state"] != "active":
            continue
        code, out, err, _ = run.via_cmd(["--json", "addon", "check", addon["id"]])
        if code != 0:
            run.note("rest", "integrity_check failed", addon["name"] + ": " + out + err)
    # Every rotation answer names a generation the log holds, and no two
    # commands were told the same one.
    code, out, err, _ = run.via_cmd(["--json", "audit", "log"])
    rotated = set()
    for line in out.splitlines():
        record = parse_json(line) or {}
        if record.get("type") == "GenerationRotated":
            rotated.add((record["addon_id"], record["generation"]))
    for key, told in run.rotations.items():
        if told > 1:
            run.note("rest", "two rotations told the same generation", str(key))
        if key not in rotated:
            run.note("rest", "a rotation told a generation the log does not hold", str(key))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--via", required=True)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    directory = args.dir or tempfile.mkdtemp(prefix="via-stress-")
    os.makedirs(directory, exist_ok=True)
    args.home = os.path.join(directory, "home")
    run = Run(args)

    must(run, ["init"])
    must(run, ["addon", "create", "sqlite", APP_ADDON, "--app", "web", "--bind", "DATABASE"])
    must(run, ["release", "create", "--app", "web"])
    server, url = start_server(run, directory)
    try:
        token = json.loads(must(run, ["--json", "workload", "token", "--app", "web", "--release",
                                      "v1", "--ttl", "1h"]))["token"]
        env = dict(os.environ, VIA_CONFIG_URL=url, VIA_WORKLOAD_TOKEN=token)
        must(run, ["sql", "DATABASE", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"], env=env)

        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=operator, args=(run, args.seed * 100 + i, deadline))
                   for i in range(args.writers)]
        threads.append(threading.Thread(target=app, args=(run, deadline, env)))
        threads.append(threading.Thread(target=auditor, args=(run, args.seed * 100 + 99,
                                                              deadline)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    at_rest(run)

    ops = sum(v for k, v in run.counts.items() if k.startswith("op:"))
    summary = {"operator_commands": ops, "app_statements": run.app_ok, "audits": run.audits,
               "wrong": len(run.wrong),
               "exits": {k: v for k, v in sorted(run.counts.items())}}
    print(json.dumps(summary))
    if ops < args.writers * 5 or run.app_ok < 5 or run.audits < 3:
        run.note("run", "too little work done to mean anything", json.dumps(summary))
    for who, what, detail in run.wrong[:30]:
        print("WRONG %s: %s\n  %s" % (who, what, detail.replace("\n", "\n  ")), file=sys.stderr)
    if run.wrong:
        print("concurrency_stress: %d wrong outcome(s); home kept in %s" %
              (len(run.wrong), directory), file=sys.stderr)
        return 1
    if not args.keep and not args.dir:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
