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

Wrong outcomes (any one fails the run): those of tools/soak/stress_lib.py
(operator exits, slowness, busy, auditor answers, rotations, each command's
records in the log exactly once, and the checks at rest), and any app error
(a snapshot must never break an app).

tools/soak/nodes_stress.py runs the same on two `via serve` nodes of one
PostgreSQL log.

usage: concurrency_stress.py --via PATH [--seconds 30] [--writers 4] [--seed 1]
                             [--dir DIR] [--keep]
Exit 0 when no wrong outcome was seen; 1 with a report otherwise.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import stress_lib as lib  # noqa: E402

APP_ADDON = "app-db"  # the app's add-on: snapshotted, checked and rotated only


def app(run, home, deadline, env):
    """An app writing and reading its add-on through the proxy."""
    i = 0
    while time.monotonic() < deadline:
        i += 1
        for sql, extra in (("INSERT INTO t(v) VALUES (?)", ["--arg", "text:row-%d" % i]),
                           ("SELECT count(*) FROM t", [])):
            code, out, err, took = run.via_cmd(home, ["sql", "DATABASE", sql] + extra, env=env)
            if code != 0 or took > lib.SLOW_S:
                run.note("app", "app error" if code != 0 else "slow",
                         "via sql %s -> exit %d in %.2fs: %s %s" % (sql, code, took,
                                                                    out.strip(), err.strip()))
            else:
                with run.lock:
                    run.app_ok += 1


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
    home = os.path.join(directory, "home")
    run = lib.Run(args.via)

    run.must(home, ["init"])
    run.must(home, ["addon", "create", "sqlite", APP_ADDON, "--app", "web", "--bind", "DATABASE"])
    run.must(home, ["release", "create", "--app", "web"])
    server, url = lib.start_server(run.via, home, directory, "home")
    try:
        token = json.loads(run.must(home, ["--json", "workload", "token", "--app", "web",
                                           "--release", "v1", "--ttl", "1h"]))["token"]
        env = dict(os.environ, VIA_CONFIG_URL=url, VIA_WORKLOAD_TOKEN=token)
        run.must(home, ["sql", "DATABASE", "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"],
                 env=env)

        deadline = time.monotonic() + args.seconds
        threads = [threading.Thread(target=lib.operator,
                                    args=(run, home, args.seed * 100 + i, deadline, [APP_ADDON]))
                   for i in range(args.writers)]
        threads.append(threading.Thread(target=app, args=(run, home, deadline, env)))
        threads.append(threading.Thread(target=lib.auditor,
                                        args=(run, home, args.seed * 100 + 99, deadline)))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        lib.stop_server(server)
    lib.at_rest(run, home, lambda addon: home)
    lib.log_checks(run, lib.read_log(run, home))

    ops = sum(v for k, v in run.counts.items() if k.startswith("op:"))
    summary = {"operator_commands": ops, "app_statements": run.app_ok, "audits": run.audits,
               "wrong": len(run.wrong),
               "exits": {k: v for k, v in sorted(run.counts.items())}}
    code = lib.report(run, summary, directory,
                      ops >= args.writers * 5 and run.app_ok >= 5 and run.audits >= 3)
    if code == 0 and not args.keep and not args.dir:
        shutil.rmtree(directory, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
