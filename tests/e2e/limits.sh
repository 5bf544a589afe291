#!/usr/bin/env bash
# End-to-end limits of `via serve` (docs/runtime.md "Flags and limits"), each
# check failing when the behaviour breaks:
#   1. a 100 MB body (Content-Length and chunked) to /v2/pipeline and to a
#      descriptor URL: 413 body_too_large within a second, after the server read
#      at most a few MB (its peak RSS stays far below 100 MB), while another
#      client keeps getting answers;
#   2. malformed HTTP (garbage request line, bad header line, a huge header):
#      400 / 431, no crash, the server still serves;
#   3. 1000 idle TCP connections (more than --max-connections): a normal request
#      is still answered within 2 s (the longest-idle connection is evicted),
#      and idle connections are closed after --idle-timeout.
#   tests/e2e/limits.sh PATH/TO/via
set -euo pipefail

VIA_BIN=${1:?usage: limits.sh PATH/TO/via}
VIA_BIN=$(cd "$(dirname "$VIA_BIN")" && pwd)/$(basename "$VIA_BIN")
command -v python3 >/dev/null || { echo "limits.sh: python3 is required" >&2; exit 1; }
# 1000 client sockets and as many server ones in this process tree.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -ge 2100 ] || { echo "limits.sh: need ulimit -n >= 2100 (have $(ulimit -n))" >&2; exit 1; }

H=$(mktemp -d "${TMPDIR:-/tmp}/via-limits-XXXXXX")
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$H"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- server stderr" >&2; tail -20 "$H/serve.err" >&2 || true; exit 1; }

via() { "$VIA_BIN" --home "$H/home" --actor e2e "$@"; }
via init >/dev/null
via addon create sqlite app-db --app api --bind DATABASE >/dev/null
via release create --app api --id v1 >/dev/null

# A small connection bound, so that 1000 idle connections exceed it; a short
# idle timeout, so that closing them is observable.
"$VIA_BIN" --home "$H/home" serve --listen 127.0.0.1:0 --access-log "$H/access.log" \
  --max-connections 200 --idle-timeout 3s >"$H/serve.out" 2>"$H/serve.err" &
SERVER_PID=$!
for _ in $(seq 200); do grep -q 'listening on http://[0-9.:]* ' "$H/serve.err" 2>/dev/null && break; sleep 0.05; done
ADDR=$(grep -o 'http://[0-9.:]*' "$H/serve.err" | head -1 | sed 's|http://||' || true)
[ -n "$ADDR" ] || fail "server did not start"
TOKEN=$(via workload token --app api --release v1 --ttl 10m)
echo "ok: server on $ADDR (pid $SERVER_PID)"

python3 - "$ADDR" "$SERVER_PID" "$TOKEN" <<'EOF' || fail "limits checks failed"
import socket, sys, threading, time

host, port = sys.argv[1].rsplit(":", 1)
port = int(port)
pid = int(sys.argv[2])
token = sys.argv[3]
BIG = 100 * 1024 * 1024

def die(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def ok(msg):
    print("ok: " + msg, flush=True)

def alive():
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read()
    except FileNotFoundError:
        return False

def peak_rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0

def status_of(raw):
    # "HTTP/1.1 413 Payload Too Large" -> 413
    line = raw.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None

def request(path, headers="", timeout=2.0):
    """A normal GET on a fresh connection: (status, body, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    return status_of(data), data.split(b"\r\n\r\n", 1)[-1], time.monotonic() - t0

def healthy(what, limit_s=2.0):
    try:
        st, body, dt = request("/healthz", timeout=limit_s)
    except OSError as e:
        die(f"{what}: /healthz failed: {e!r}")
    if st != 200 or dt > limit_s:
        die(f"{what}: /healthz answered {st} in {dt:.3f}s (want 200 within {limit_s}s)")
    return dt

def raw_exchange(payload, timeout=5.0):
    """Sends raw bytes, returns what the server answered before closing."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            s.sendall(payload)
        except OSError:
            pass
        data = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
        except OSError:
            pass
        return data
    finally:
        s.close()

# --- 1. 100 MB bodies --------------------------------------------------------
def big_upload(method, path, chunked, pause=0.0):
    """Streams a 100 MB body as fast as the server takes it (or one 64 KiB
    chunk every `pause` seconds), reading the response concurrently.
    Returns (status, bytes sent, seconds to response, raw response)."""
    s = socket.create_connection((host, port), timeout=10)
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {BIG}\r\n\r\n"
    got = {"data": b"", "at": None}
    t0 = time.monotonic()

    def reader():
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                if got["at"] is None:
                    got["at"] = time.monotonic() - t0
                got["data"] += d
        except OSError:
            pass

    r = threading.Thread(target=reader)
    sent = 0
    chunk = b"x" * 65536
    try:
        s.sendall(head.encode())
        r.start()
        while sent < BIG:
            s.sendall((b"10000\r\n" + chunk + b"\r\n") if chunked else chunk)
            sent += len(chunk)
            if pause:
                if got["at"] is not None:
                    break
                time.sleep(pause)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading and closed: expected
    if not r.is_alive() and r.ident is None:
        r.start()
    r.join(10)
    s.close()
    return status_of(got["data"]), sent, got["at"], got["data"]

# A client that keeps asking while the uploads run.
stop = threading.Event()
side = {"n": 0, "worst": 0.0, "error": None}
def side_client():
    while not stop.is_set():
        try:
            st, _, dt = request("/healthz", timeout=2.0)
            if st != 200:
                side["error"] = f"status {st}"
            side["n"] += 1
            side["worst"] = max(side["worst"], dt)
        except OSError as e:
            side["error"] = repr(e)
        time.sleep(0.01)
side_thread = threading.Thread(target=side_client)
side_thread.start()

rss_before = peak_rss_kb()
# Slow uploaders first (about 1.5 s each to reach the 1 MiB limit), four at
# once, so that the other client is served while they are being read.
slow = [None] * 4
def slow_upload(i):
    slow[i] = big_upload("POST", "/v2/pipeline", i % 2 == 0, pause=0.1)
slow_threads = [threading.Thread(target=slow_upload, args=(i,)) for i in range(4)]
for t in slow_threads:
    t.start()
for t in slow_threads:
    t.join()
for i, (st, sent, at, raw) in enumerate(slow):
    if st != 413 or b"body_too_large" not in raw:
        die(f"slow 100 MB upload {i}: got {st} {raw[:200]!r}, want 413 body_too_large")
ok(f"4 slow 100 MB uploads at once: 413 body_too_large each after {min(x[2] for x in slow):.1f}-{max(x[2] for x in slow):.1f} s")
for method, path in (("POST", "/v2/pipeline"), ("GET", "/v1/descriptors/DATABASE")):
    for chunked in (False, True):
        what = f"100 MB {'chunked' if chunked else 'Content-Length'} body to {method} {path}"
        st, sent, at, raw = big_upload(method, path, chunked)
        if st != 413 or b"body_too_large" not in raw:
            die(f"{what}: got {st} {raw[:200]!r}, want 413 body_too_large")
        if at is None or at > 1.0:
            die(f"{what}: 413 after {at}s, want within 1s")
        if sent >= BIG // 2:
            die(f"{what}: the server took {sent} bytes before refusing (it should stop near the 1 MiB limit)")
        ok(f"{what}: 413 body_too_large after {at*1000:.0f} ms, {sent/1e6:.1f} MB sent")
stop.set()
side_thread.join()
if side["error"] or side["n"] == 0:
    die(f"another client during the uploads: {side['error']} ({side['n']} answers)")
if side["worst"] > 1.0:
    die(f"another client during the uploads waited {side['worst']:.3f}s")
ok(f"another client got {side['n']} answers during the uploads (slowest {side['worst']*1000:.0f} ms)")
rss_after = peak_rss_kb()
# Growth, not the absolute size: a sanitizer build starts far above 64 MB
# and its allocator keeps freed memory for a while (about 33 MB of growth
# under ASan), while buffering even one of the bodies would add 100 MB.
if rss_after - rss_before > 48 * 1024:
    die(f"server peak RSS {rss_after} kB after 100 MB uploads (was {rss_before} kB): bodies were buffered")
ok(f"server peak RSS {rss_after//1024} MB (before the uploads {rss_before//1024} MB)")

# --- 2. malformed HTTP --------------------------------------------------------
cases = [
    ("garbage request line", b"\x16\x03\x01\x02\x00 GARBAGE\r\n\r\n", (400,)),
    ("request line without version", b"GET /healthz\r\n\r\n", (400,)),
    ("header line without colon", b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", (400,)),
    ("bad Content-Length", b"POST /v2/pipeline HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", (400,)),
    ("bad chunk size", b"POST /v2/pipeline HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", (400,)),
    ("huge header (1 MB)", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n", (431,)),
    ("many headers (100 KB)", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 12000 + b"\r\n", (431,)),
    ("huge request target", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (431, 414, 400)),
]
for what, payload, want in cases:
    t0 = time.monotonic()
    raw = raw_exchange(payload)
    st = status_of(raw)
    if st not in want:
        die(f"{what}: got {st} {raw[:120]!r}, want {want}")
    if not alive():
        die(f"{what}: the server died")
    ok(f"{what}: {st} in {(time.monotonic()-t0)*1000:.0f} ms")
healthy("after malformed requests")
ok("server still serves after malformed requests")

# --- 3. 1000 idle connections -------------------------------------------------
idle = []
for i in range(1000):
    c = socket.create_connection((host, port), timeout=5)
    idle.append(c)
ok(f"opened {len(idle)} idle connections (server bound --max-connections 200)")
time.sleep(0.3)
for attempt in range(3):
    dt = healthy("with 1000 idle connections open", 2.0)
ok(f"a normal request is answered in {dt*1000:.0f} ms with 1000 idle connections open")
st, body, dt = request("/v1/descriptors/DATABASE", f"Authorization: Bearer {token}\r\n")
if st != 200 or b"auth_token" not in body or dt > 2.0:
    die(f"descriptor with 1000 idle connections open: {st} in {dt:.3f}s")
ok(f"a descriptor fetch is answered in {dt*1000:.0f} ms with 1000 idle connections open")

def closed_by_server(c):
    c.setblocking(False)
    try:
        d = c.recv(65536)
        return d == b"" or d.startswith(b"HTTP/1.1 503")  # EOF, or refused at the bound
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset

# The server holds at most its bound; the others were evicted (closed).
open_now = sum(1 for c in idle if not closed_by_server(c))
if open_now > 200 + 64:
    die(f"{open_now} idle connections still open, over the bound of 200 (+64 closing)")
ok(f"{open_now} of them still open (bound 200): the rest were closed to make room")
# After the idle timeout (3 s) every idle connection is closed by the server.
deadline = time.monotonic() + 3.0 + 5.0
while time.monotonic() < deadline:
    open_now = sum(1 for c in idle if not closed_by_server(c))
    if open_now == 0:
        break
    time.sleep(0.25)
if open_now:
    die(f"{open_now} idle connections still open 8 s after the 3 s idle timeout")
ok("every idle connection was closed by the server after the idle timeout")
for c in idle:
    c.close()
healthy("after the idle connections")
if not alive():
    die("the server died")
ok("server still serves")
EOF

# SIGTERM still drains and exits 0 after all that.
kill -TERM "$SERVER_PID"
RC=0
wait "$SERVER_PID" || RC=$?
SERVER_PID=
[ "$RC" = 0 ] || fail "server exited $RC after SIGTERM"
echo "ok: SIGTERM: exited 0"
echo "limits: all checks passed"
