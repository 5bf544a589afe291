"""What the concurrency stress tests share (tools/soak/concurrency_stress.py on
one home, tools/soak/nodes_stress.py on two nodes of one PostgreSQL log):
random operator commands, the auditor, and every wrong-outcome check made
during the run and at rest.

Wrong outcomes checked here (any one fails a run):
  - an operator command that exits 1 (unexpected failure), 2 (usage: the
    generated command lines are valid), 6 (integrity alarm) or by a signal, or
    that takes longer than SLOW_S, or whose output mentions busy/locked;
  - an auditor answer that is not true: verify failing, replay reporting that
    the read model does not match, a proof whose checkpoint is for another
    size or root;
  - two rotations told the same generation, or a generation told that the
    log does not hold;
  - a command's records not in the log exactly once: every command that
    changes state runs with a --command-id of its own; one that answered
    success has the records of each of its appends once, as one contiguous
    append (create, rotate, revoke, destroy, release and check append at
    least one), and one that failed has none.
At rest, on each home:
  - `audit verify` passes and `recover --dry-run` has nothing to do;
  - the replay digest equals the read model's;
  - live names are unique;
  - every snapshot file that the log trusts (in the home that holds the
    add-on's files) hashes to its recorded SHA-256, and every answered
    snapshot is in the log with that hash;
  - every live database whose files this home holds passes
    `via addon check` (integrity_check).
"""

import hashlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time

SLOW_S = 10.0
NAMES = ["db0", "db1", "db2", "db3", "db4"]
APPS = ["api", "jobs"]
BINDINGS = ["DATABASE", "CACHE", "QUEUE"]

# Operator commands that change state: they run with a --command-id of their
# own (commands that only read refuse one).
CHANGING = {"create", "ensure", "bind", "unbind", "snapshot", "restore", "rotate", "revoke",
            "destroy", "release", "check"}
# Of those, the ones whose success always appends.
ALWAYS_APPEND = {"create", "rotate", "revoke", "destroy", "release", "check"}


class Run:
    def __init__(self, via):
        self.via = via
        self.lock = threading.Lock()
        self.wrong = []  # (who, what, detail)
        self.counts = {}
        self.rotations = {}  # (addon id, generation) -> how many commands were told it
        self.snapshots = {}  # snapshot id -> sha256 hex as answered
        self.commands = []  # (command id, kind, exit code, the command line)
        self.revocations = {}  # (addon id, generation) -> monotonic time the revoke returned
        self.app_ok = 0
        self.audits = 0

    def note(self, who, what, detail):
        with self.lock:
            self.wrong.append((who, what, detail[:2000]))

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def via_cmd(self, home, args, env=None, timeout=60):
        """Runs `via --home HOME ARGS`; returns (exit, stdout, stderr, seconds)."""
        started = time.monotonic()
        try:
            p = subprocess.run([self.via, "--home", home] + args, capture_output=True,
                               text=True, stdin=subprocess.DEVNULL, timeout=timeout, env=env)
            code, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            code, out, err = -999, "", "timed out after %d s" % timeout
        return code, out, err, time.monotonic() - started

    def must(self, home, args, env=None):
        code, out, err, _ = self.via_cmd(home, args, env=env)
        if code != 0:
            raise SystemExit("stress: setup `via %s` failed (%d): %s %s" %
                             (" ".join(args), code, out, err))
        return out


def parse_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def free_port():
    """A loopback port that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_server(via, home, directory, tag, extra=()):
    """`via serve` on HOME (stderr in DIRECTORY/serve-TAG.log); returns (process, url)."""
    err_path = os.path.join(directory, "serve-%s.log" % tag)
    log = open(err_path, "w")
    access = os.path.join(directory, "access-%s.log" % tag)
    listen = list(extra) if "--listen" in extra else ["--listen", "127.0.0.1:0"] + list(extra)
    proc = subprocess.Popen([via, "--home", home, "serve", "--access-log", access] + listen,
                            stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)
    for _ in range(400):
        with open(err_path) as f:
            m = re.search(r"listening on (http://\S+)", f.read())
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    with open(err_path) as f:
        raise SystemExit("stress: via serve (%s) did not start: %s" % (tag, f.read()[-2000:]))


def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def operator_command(rng, run, home, watched, revocable):
    """A random, valid operator command line (many are refused by state).

    `watched` are the apps' add-ons: snapshotted, checked and rotated, never
    created, bound or destroyed; `revocable` those of them that revoke may
    pick too (a generation of theirs that exists)."""
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
        return kind, ["addon", "status", rng.choice(NAMES + watched)]
    if kind == "list":
        return kind, ["addon", "list"] + (["--all"] if rng.random() < 0.5 else [])
    if kind == "history":
        return kind, ["addon", "history", name]
    if kind == "snapshot":
        return kind, ["addon", "snapshot", rng.choice(NAMES + watched)]
    if kind == "snapshots":
        return kind, ["addon", "snapshots", rng.choice(NAMES + watched)]
    if kind == "restore":
        code, out, _, _ = run.via_cmd(home, ["--json", "addon", "snapshots", name])
        listed = (parse_json(out) or {}).get("snapshots") if code == 0 else None
        taken = [s["id"] for s in (listed or []) if s.get("status") == "taken"]
        if not taken:
            return "status", ["addon", "status", name]
        return kind, ["--yes", "addon", "restore", name, "--snapshot", rng.choice(taken)]
    if kind == "rotate":
        return kind, ["addon", "rotate-credentials", rng.choice(NAMES + watched)]
    if kind == "revoke":
        target = rng.choice(NAMES + revocable)
        generation = rng.randint(1, 4)
        if target in revocable:
            # An active generation, often the newest: the one the app's
            # descriptors hand out.
            code, out, _, _ = run.via_cmd(home, ["--json", "addon", "status", target])
            addon = (parse_json(out) or {}).get("addon") or {}
            top = max(1, addon.get("generation", 1))
            active = [g for g in range(1, top + 1)
                      if g not in addon.get("revoked_generations", [])] or [top]
            generation = top if rng.random() < 0.5 else rng.choice(active)
        return kind, ["addon", "revoke-credentials", target, "--generation", str(generation)]
    if kind == "destroy":
        return kind, ["--yes", "addon", "destroy", name]
    if kind == "release":
        return kind, ["release", "create", "--app", app]
    if kind == "check":
        return kind, ["addon", "check", rng.choice(NAMES + watched)]
    return kind, ["audit", "checkpoint"]


def operator(run, home, seed, deadline, watched, revocable=()):
    """Random operator commands on HOME until the deadline."""
    rng = random.Random(seed)
    who = "operator-%d@%s" % (seed, os.path.basename(home))
    n = 0
    while time.monotonic() < deadline:
        kind, args = operator_command(rng, run, home, list(watched), list(revocable))
        n += 1
        command_id = "s%d-%d" % (seed, n) if kind in CHANGING else None
        flags = ["--json"] + (["--command-id", command_id] if command_id else [])
        code, out, err, took = run.via_cmd(home, flags + args)
        run.count("op:%s:%d" % (kind, code))
        line = "via --home %s %s %s -> exit %d in %.2fs\nstdout: %s\nstderr: %s" % (
            home, " ".join(flags), " ".join(args), code, took, out.strip(), err.strip())
        if command_id:
            with run.lock:
                run.commands.append((command_id, kind, code, line, parse_json(out)))
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
        if kind == "revoke" and answer is not None:
            key = (answer["addon_id"], answer["revoked_generation"])
            with run.lock:
                run.revocations.setdefault(key, time.monotonic())


def auditor(run, home, seed, deadline):
    """`audit verify`, `replay` and `prove` on HOME until the deadline."""
    rng = random.Random(seed)
    who = "auditor@%s" % os.path.basename(home)
    while time.monotonic() < deadline:
        kind = rng.choice(["verify", "replay", "prove"])
        if kind == "verify":
            code, out, err, took = run.via_cmd(home, ["--json", "audit", "verify"])
            answer = parse_json(out)
            if code != 0 or not answer or answer.get("ok") is not True:
                run.note(who, "verify failed", "exit %d: %s %s" % (code, out, err))
        elif kind == "replay":
            code, out, err, took = run.via_cmd(home, ["--json", "audit", "replay"])
            answer = parse_json(out)
            if code != 0 or not answer or answer.get("read_model_matches") is not True:
                run.note(who, "replay mismatch", "exit %d: %s %s" % (code, out[:500], err))
        else:
            code, out, err, took = run.via_cmd(home, ["--json", "audit", "verify"])
            size = (parse_json(out) or {}).get("size", 1)
            seq = rng.randint(1, max(1, size))
            code, out, err, took = run.via_cmd(home, ["--json", "audit", "prove", "--inclusion",
                                                      str(seq)])
            answer = parse_json(out)
            ok = code == 0 and answer is not None
            if ok:
                note = answer.get("checkpoint", "").split("\n")
                ok = len(note) > 2 and note[1] == str(answer["tree_size"]) and \
                    note[2] == answer["root"]
            if not ok:
                run.note(who, "proof inconsistent", "exit %d: %s %s" % (code, out, err))
        if took > SLOW_S:
            run.note(who, "slow", "%s took %.2fs" % (kind, took))
        with run.lock:
            run.audits += 1


def at_rest(run, home, files_home):
    """The checks on HOME once everything has stopped. files_home(addon)
    names the home that holds an add-on's files (its owner's)."""
    who = "rest@%s" % os.path.basename(home)
    code, out, err, _ = run.via_cmd(home, ["--json", "audit", "verify"])
    if code != 0 or (parse_json(out) or {}).get("ok") is not True:
        run.note(who, "verify failed", out + err)
    code, out, err, _ = run.via_cmd(home, ["--json", "recover", "--dry-run"])
    report = parse_json(out) or {}
    if code != 0 or report.get("changed") or report.get("intents") or report.get("storage") or \
            report.get("read_model_rebuilt"):
        run.note(who, "recover --dry-run is not clean", out + err)
    code, out, err, _ = run.via_cmd(home, ["--json", "audit", "replay"])
    if code != 0 or (parse_json(out) or {}).get("read_model_matches") is not True:
        run.note(who, "replay digest differs from the read model", out[:500] + err)
    live = (parse_json(run.must(home, ["--json", "addon", "list"])) or {}).get("addons", [])
    names = [a["name"] for a in live]
    if len(names) != len(set(names)):
        run.note(who, "names not unique", json.dumps(names))
    everything = (parse_json(run.must(home, ["--json", "addon", "list", "--all"])) or {}).get(
        "addons", [])
    trusted = {}
    for addon in everything:
        listed = (parse_json(run.must(home, ["--json", "addon", "snapshots", addon["id"]])) or
                  {}).get("snapshots", [])
        for snap in listed:
            if snap["status"] != "taken" or snap.get("deleted"):
                continue
            trusted[snap["id"]] = snap["sha256"]
            path = os.path.join(files_home(addon), "snapshots", addon["id"],
                                snap["id"] + ".sqlite")
            try:
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            except OSError as e:
                digest = str(e)
            if digest != snap["sha256"]:
                run.note(who, "snapshot file differs from its event", path + ": " + digest)
    for sid, sha in run.snapshots.items():
        if trusted.get(sid) != sha:
            run.note(who, "an answered snapshot is not in the log as answered", sid)
    for addon in live:
        if addon["state"] != "active" or files_home(addon) != home:
            continue
        code, out, err, _ = run.via_cmd(home, ["--json", "addon", "check", addon["id"]])
        if code != 0:
            run.note(who, "integrity_check failed", addon["name"] + ": " + out + err)


def read_log(run, home):
    """Every record of HOME's log, decoded (`audit log --json`)."""
    code, out, err, _ = run.via_cmd(home, ["--json", "audit", "log"], timeout=300)
    if code != 0:
        run.note("rest", "audit log failed", out[-500:] + err)
    return [r for r in (parse_json(line) for line in out.splitlines()) if r]


def error_code(answer):
    """The error code of a command's --json answer, or None."""
    error = answer.get("error") if isinstance(answer, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def log_checks(run, records):
    """Every answer against the log: rotations, and each command's records."""
    rotated = {}
    for record in records:
        if record.get("type") == "GenerationRotated":
            key = (record["addon_id"], record["generation"])
            rotated[key] = rotated.get(key, 0) + 1
    for key, n in rotated.items():
        if n > 1:
            run.note("rest", "a generation rotated twice in the log", str(key))
    for key, told in run.rotations.items():
        if told > 1:
            run.note("rest", "two rotations told the same generation", str(key))
        if key not in rotated:
            run.note("rest", "a rotation told a generation the log does not hold", str(key))
    # A CLI command id is stored as cli/ID/<hash of the command line>/<append>;
    # a command run on a home that does not own the add-on appends its intent
    # under owner/cli/ID/... (the owner's completion under done/owner/...,
    # which is the owner's, not the command's).
    appends = {}  # CLI id -> {stored command id, without owner/: [seq, ...]}
    refusals = {}  # owner work request's command id -> the owner's error code
    asked = set()  # stored command ids (without owner/) that were owner/...
    for record in records:
        if record.get("type") == "OwnerWorkFinished" and record.get("code"):
            refusals[record.get("request")] = record["code"]
        stored = record.get("command_id") or ""
        if stored.startswith("owner/"):
            stored = stored[len("owner/"):]
            asked.add(stored)
        parts = stored.split("/")
        if len(parts) == 4 and parts[0] == "cli":
            appends.setdefault(parts[1], {}).setdefault(stored, []).append(record["seq"])
    for command_id, kind, code, line, answer in run.commands:
        mine = appends.pop(command_id, {})
        # `ensure` exits 3 when it did its work but the add-on is not usable
        # yet; its answer says whether it changed anything. `create` too,
        # with its readiness report (not an error): the add-on it made is
        # not usable when the report is read (another operator destroyed it
        # in between, or its provider failed).
        done = code == 0 or (kind == "ensure" and code == 3) or \
            (kind == "create" and code == 3 and error_code(answer) is None and
             isinstance(answer, dict) and "addon" in answer)
        if kind == "ensure" and done and bool((answer or {}).get("changed")) != bool(mine):
            run.note("rest", "ensure's answer of what it changed is not the log's",
                     "%s\nrecords: %s" % (line, json.dumps(mine)))
        if not done and mine and kind == "restore" and code == 4 and \
                [s.split("/")[3] for s in mine] == ["safety"]:
            # A restore takes its safety snapshot before it appends its
            # decision; a destroy or restore landing in between refuses it,
            # and the (complete, true) safety snapshot stays. Counted and
            # shown, not a wrong outcome: the log holds nothing half-done.
            run.count("restore refused after its safety snapshot")
            print("NOTICE %s\n  records: %s" % (line.replace("\n", "\n  "), json.dumps(mine)),
                  file=sys.stderr)
        elif not done and mine and error_code(answer) and all(
                stored in asked and
                refusals.get("owner/" + stored) == error_code(answer) for stored in mine):
            # Work asked of another node's `via serve` (check, verify,
            # repair) and refused there: the add-on was destroyed between
            # the request and the owner's turn. The log holds the request
            # and the owner's OwnerWorkFinished with the very error the
            # command exited with; nothing half-done.
            run.count("owner work refused after it was asked")
        elif not done and mine:
            run.note("rest", "a failed command has records in the log",
                     "%s\nrecords: %s" % (line, json.dumps(mine)))
        if done and kind in ALWAYS_APPEND and not mine:
            run.note("rest", "a command that succeeded has no records in the log", line)
        for stored, seqs in mine.items():
            if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                run.note("rest", "an append of a command is in the log twice",
                         "%s\n%s at seqs %s" % (line, stored, seqs))
        if len({s.split("/")[2] for s in mine}) > 1:
            run.note("rest", "one command id under two command lines", line)
    for command_id in appends:
        if re.match(r"^s\d+-\d+$", command_id):
            run.note("rest", "records under a command id no command was given", command_id)


def report(run, summary, directory, minimum_ok):
    """Prints the summary and every wrong outcome; returns the exit code."""
    print(json.dumps(summary))
    if not minimum_ok:
        run.note("run", "too little work done to mean anything", json.dumps(summary))
    for who, what, detail in run.wrong[:30]:
        print("WRONG %s: %s\n  %s" % (who, what, detail.replace("\n", "\n  ")), file=sys.stderr)
    if run.wrong:
        print("stress: %d wrong outcome(s); homes kept in %s" % (len(run.wrong), directory),
              file=sys.stderr)
        return 1
    return 0
