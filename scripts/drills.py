#!/usr/bin/env python3
"""Reliability drills: the server binary under faults, counting what was answered and what
was lost. Writes docs/RELIABILITY.md (or --out).

Drills:
  crash   32 clients send messages (every 8th with an uploaded attachment) and the server is
          killed with SIGKILL mid-burst, then started again on the same data: every message
          whose send was answered is read back with its attachment, no row points at a missing
          row, and the database checks clean (SQLite `PRAGMA integrity_check`; PostgreSQL
          amcheck on every B-tree index). Self-hosted (SQLite) and managed (PostgreSQL).
  floods  while a health probe and a real client keep asking: thousands of TCP connections
          that never send a request, connections sending their headers a byte at a time,
          WebSocket connections that never identify, identifies with bad tokens all at once,
          an oversized frame, and a client that stops reading its socket while messages flow.
          Reports each flood's probe p99, how the server shed the flood, and the peak RSS.
  fuzz    every tRPC procedure called with generated and mutated input (wrong types, huge and
          odd strings, deep nesting, other servers' ids, broken JSON), as a member and
          anonymously, plus mutated `/ws` frames: no 5xx answer, no hang, no crash.

usage: scripts/drills.py [--short] [--binary PATH] [--profiles self-hosted,managed] [--out FILE]
The managed profile needs the services of scripts/with-test-services.sh. --short is the form
CI runs (smaller floods, a shorter burst, fewer fuzz cases).
"""

import argparse
import base64
import glob
import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the server process, free ports, RSS, the machine's description)

DRILL_ENV = {
    # Floods use short timeouts so that what the server sheds is seen within the drill.
    "WS_IDENTIFY_TIMEOUT_MS": "2000",
}


def say(msg):
    print(f"drills: {msg}", file=sys.stderr, flush=True)


def p99(samples):
    if not samples:
        return None
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * 0.99))]


# --- HTTP -----------------------------------------------------------------------------------


class Client:
    """One keep-alive HTTP connection to the server, speaking tRPC."""

    def __init__(self, server, token=None, timeout=10):
        self.server, self.token, self.timeout = server, token, timeout
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=self.timeout)
        return self.conn

    def headers(self, extra=None):
        h = {}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if self.server.address:
            h["X-Server-Address"] = self.server.address
        h.update(extra or {})
        return h

    def raw(self, method, path, body=None, headers=None):
        try:
            c = self._conn()
            c.request(method, path, body=body, headers=self.headers(headers))
            r = c.getresponse()
            data = r.read()
            return r.status, data
        except (OSError, http.client.HTTPException):
            self.conn = None
            raise

    def call(self, proc, payload=None, mutation=True):
        if mutation:
            body = json.dumps(payload if payload is not None else {}).encode()
            status, data = self.raw("POST", f"/trpc/{proc}", body, {"Content-Type": "application/json"})
        else:
            q = "" if payload is None else "?input=" + urllib.parse.quote(json.dumps(payload))
            status, data = self.raw("GET", f"/trpc/{proc}{q}")
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return status, parsed

    def ok(self, proc, payload=None, mutation=True):
        status, body = self.call(proc, payload, mutation)
        if status != 200:
            raise RuntimeError(f"{proc}: {status} {body}")
        return body["result"]["data"]

    def upload(self, channel, name, content):
        boundary = uuid.uuid4().hex
        parts = [
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"channel_id\"\r\n\r\n{channel}\r\n".encode(),
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: text/plain\r\n\r\n".encode() + content + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        status, data = self.raw("POST", "/upload", b"".join(parts),
                                {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return status, (json.loads(data) if status == 200 else data)


def register(server, name):
    data = Client(server).ok("server.join", {"username": name, "password": "password-123", "action": "register"})
    return data["server_token"], data["member"]["user_id"]


STARTED = []


def stop_all():
    """Stops every server a drill started (a drill that fails must not leave one running)."""
    for server in STARTED:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def new_server(binary, profile, work, extra_env=None):
    server = bench.Server(binary, profile, work)
    STARTED.append(server)
    server.env.update(DRILL_ENV)
    server.env.update(extra_env or {})
    server.migrate()
    server.start()
    if profile == "managed":
        server.address = f"drill-{uuid.uuid4().hex[:10]}.ecto.test"
        Client(server, server.env["MANAGED_API_KEY"]).raw(
            "POST", "/internal/servers",
            json.dumps({"address": server.address, "name": "Drill"}).encode(),
            {"Content-Type": "application/json"})
    return server


def kill(server):
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait()
    server.proc = None


# --- crash ----------------------------------------------------------------------------------


def all_messages(client, channel):
    """Every message of `channel` (id -> number of attachments), through messages.list pages."""
    out, before = {}, None
    while True:
        q = {"channel_id": channel, "limit": 100}
        if before:
            q["before"] = before
        page = client.ok("messages.list", q, mutation=False)
        for m in page["messages"]:
            out[m["id"]] = len(m.get("attachments") or [])
        if not page.get("has_more") or not page["messages"]:
            return out
        before = page["messages"][-1]["id"]


def database_checks(server):
    """(integrity result, rows pointing at missing rows) of the server's database."""
    orphans_sql = [
        "SELECT COUNT(*) FROM attachments WHERE message_id IS NOT NULL AND message_id NOT IN (SELECT id FROM messages)",
        "SELECT COUNT(*) FROM activity_items WHERE message_id IS NOT NULL AND message_id NOT IN (SELECT id FROM messages)",
        "SELECT COUNT(*) FROM reactions WHERE message_id NOT IN (SELECT id FROM messages)",
        "SELECT COUNT(*) FROM messages WHERE server_id NOT IN (SELECT id FROM servers)",
    ]
    if server.profile == "self-hosted":
        db = sqlite3.connect(f"file:{os.path.join(server.env['DATA_DIR'], 'ecto.db')}?mode=ro", uri=True)
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        orphans = sum(db.execute(q).fetchone()[0] for q in orphans_sql)
        db.close()
        return integrity, orphans
    url = server.env["DATABASE_URL"]

    def psql(sql):
        return subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                              capture_output=True, text=True, check=True).stdout.strip()
    psql("CREATE EXTENSION IF NOT EXISTS amcheck")
    checked = psql(
        "SELECT count(bt_index_check(c.oid)) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.amname = 'btree' AND n.nspname = current_schema()")
    orphans = sum(int(psql(q)) for q in orphans_sql)
    return f"ok (amcheck: {checked} B-tree indexes)", orphans


def drill_crash(binary, profile, work, short):
    say(f"crash ({profile})")
    server = new_server(binary, profile, work)
    owner_token, owner_id = register(server, f"owner{uuid.uuid4().hex[:6]}")
    member_token, member_id = register(server, f"member{uuid.uuid4().hex[:6]}")
    channel = Client(server, owner_token).ok("channels.create", {"name": "drill", "type": "text"})["id"]
    acked, failed, lock, stop = [], [0], threading.Lock(), threading.Event()

    def sender(i):
        token, other = (owner_token, member_id) if i % 2 == 0 else (member_token, owner_id)
        c = Client(server, token, timeout=5)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                attach = []
                if n % 8 == 0:
                    status, up = c.upload(channel, f"f{i}-{n}.txt", f"file {i} {n}\n".encode() * 20)
                    if status != 200:
                        raise OSError(f"upload {status}")
                    attach = [up["id"]]
                body = {"channel_id": channel, "content": f"<@{other}> drill {i}/{n}", "attachment_ids": attach}
                status, answer = c.call("messages.send", body)
                if status == 200:
                    with lock:
                        acked.append((answer["result"]["data"]["id"], len(attach)))
                else:
                    raise OSError(f"send {status}")
            except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError):
                with lock:
                    failed[0] += 1
                if server.proc is None:
                    return
                time.sleep(0.01)

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(32)]
    for t in threads:
        t.start()
    burst = 2.0 if short else 8.0
    time.sleep(burst)
    kill(server)
    stop.set()
    for t in threads:
        t.join(timeout=10)
    answered = len(acked)
    server.start()
    present = all_messages(Client(server, owner_token), channel)
    missing = [mid for mid, _ in acked if mid not in present]
    half = [mid for mid, n in acked if n and present.get(mid, 0) < n]
    unanswered = len(present) - len({mid for mid, _ in acked} & set(present))
    integrity, orphans = database_checks(server)
    server.stop()
    result = {
        "profile": profile, "burst_s": burst, "answered": answered, "failed_calls": failed[0],
        "with_attachment": sum(1 for _, n in acked if n), "missing": len(missing),
        "without_attachment": len(half), "orphans": orphans, "integrity": integrity,
        "present_unanswered": unanswered,
    }
    say(f"crash ({profile}): {result}")
    return result


# --- WebSocket (enough of RFC 6455 for the drills) ------------------------------------------


def ws_connect(server, timeout=10):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = f"X-Server-Address: {server.address}\r\n" if server.address else ""
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise OSError("closed during the handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise OSError(f"handshake refused: {head[:80]!r}")
    return s, head.split(b"\r\n\r\n", 1)[1]


def ws_frame(payload, opcode=1, length=None, zero_mask=False):
    mask = b"\0\0\0\0" if zero_mask else os.urandom(4)
    n = len(payload) if length is None else length
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = payload if zero_mask else bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def ws_send(s, event, data):
    s.sendall(ws_frame(json.dumps({"event": event, "data": data}).encode()))


def ws_read(s, buf=b""):
    """One frame: (opcode, payload, rest of the buffer)."""
    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = s.recv(65536)
            if not chunk:
                raise OSError("closed")
            buf += chunk
    need(2)
    opcode, n = buf[0] & 0x0F, buf[1] & 0x7F
    off = 2
    if n == 126:
        need(4)
        n, off = struct.unpack("!H", buf[2:4])[0], 4
    elif n == 127:
        need(10)
        n, off = struct.unpack("!Q", buf[2:10])[0], 10
    need(off + n)
    return opcode, buf[off:off + n], buf[off + n:]


def close_code(s, buf=b"", limit=10.0):
    """Reads until the server's close frame; its code (None when the socket just ended)."""
    s.settimeout(limit)
    try:
        while True:
            opcode, payload, buf = ws_read(s, buf)
            if opcode == 8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    except OSError:
        return None


# --- floods ---------------------------------------------------------------------------------


class Prober:
    """Asks /health and server.info in a loop while a flood runs; latencies in ms."""

    def __init__(self, server):
        self.server, self.stop = server, threading.Event()
        self.health, self.real, self.failures = [], [], 0
        self.peak_rss = 0
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        c = Client(self.server, timeout=5)
        while not self.stop.is_set():
            for path, into in (("/health", self.health), ("/trpc/server.info", self.real)):
                t0 = time.monotonic()
                try:
                    status, _ = c.raw("GET", path)
                    if status != 200:
                        self.failures += 1
                    into.append((time.monotonic() - t0) * 1000)
                except (OSError, http.client.HTTPException):
                    self.failures += 1
            rss = bench.rss_mib(self.server.proc.pid) or 0
            self.peak_rss = max(self.peak_rss, rss)
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def summary(self):
        return {"health_p99_ms": round(p99(self.health) or 0, 1), "real_p99_ms": round(p99(self.real) or 0, 1),
                "probe_failures": self.failures, "peak_rss_mib": self.peak_rss}


def still_open(socks):
    """How many of `socks` the server has not closed (reading away whatever it sent, such as
    a 408 answer, to see whether the end follows)."""
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            while s.recv(65536):
                pass
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def drill_floods(binary, work, short):
    say("floods (self-hosted)")
    metrics_port = bench.free_port()
    server = new_server(binary, "self-hosted", work, {"METRICS_ADDRESS": f"127.0.0.1:{metrics_port}"})

    def gauge(name):
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    token, _ = register(server, f"owner{uuid.uuid4().hex[:6]}")
    client = Client(server, token)
    channel = client.ok("channels.create", {"name": "flood", "type": "text"})["id"]
    results = []
    baseline = Prober(server)
    with baseline:
        time.sleep(2)
    results.append(("none (baseline)", "", baseline.summary()))

    # Idle TCP connections.
    n = 2_000 if short else 10_000
    with Prober(server) as p:
        socks = []
        for _ in range(n):
            try:
                socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
            except OSError:
                break
        opened = len(socks)
        time.sleep(7)
        left = still_open(socks)
        for s in socks:
            s.close()
    results.append((f"{n:,} TCP connections that never send a request",
                    f"{opened:,} opened; {opened - left:,} closed by the server within 7 s", p.summary()))

    # Slow headers.
    n = 100 if short else 500
    with Prober(server) as p:
        socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        for _ in range(8):
            for s in socks:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            time.sleep(1)
        left = still_open(socks)
        for s in socks:
            s.close()
    results.append((f"{n} connections sending their headers a byte a second",
                    f"{n - left} of {n} cut off within 8 s", p.summary()))

    # WebSockets that never identify.
    n = 300 if short else 1_000
    with Prober(server) as p:
        socks = [ws_connect(server) for _ in range(n)]
        codes = [close_code(s, rest, limit=8) for s, rest in socks]
        for s, _ in socks:
            s.close()
    closed = sum(1 for c in codes if c is not None)
    results.append((f"{n:,} WebSocket connections that never identify",
                    f"{closed:,} closed by the server (codes {sorted(set(c for c in codes if c))})", p.summary()))

    # Identifies with bad tokens, all at once.
    n = 300 if short else 1_000
    with Prober(server) as p:
        socks = []
        for _ in range(n):
            s, rest = ws_connect(server)
            _, _, rest = ws_read(s, rest)  # system.hello
            socks.append((s, rest))
        for s, _ in socks:
            ws_send(s, "system.identify", {"token": "not-a-token." + uuid.uuid4().hex, "protocol_version": 1})
        codes = [close_code(s, rest, limit=10) for s, rest in socks]
        for s, _ in socks:
            s.close()
    results.append((f"{n:,} identifies with bad tokens at once",
                    f"{sum(1 for c in codes if c):,} refused and closed (codes {sorted(set(c for c in codes if c))})",
                    p.summary()))

    # One oversized frame.
    with Prober(server) as p:
        s, rest = ws_connect(server)
        _, _, rest = ws_read(s, rest)
        ws_send(s, "system.identify", {"token": token, "protocol_version": 1})
        size = 16 * 1024 * 1024
        try:
            s.sendall(ws_frame(b"x" * size, zero_mask=True))
        except OSError:
            pass
        code = close_code(s, rest, limit=10)
        s.close()
    results.append(("a 16 MiB text frame", f"closed with {code}", p.summary()))

    # A client that stops reading while messages flow: the server must let go of it (its
    # outbound queue full: close 4000, and the session can resume) rather than buffer.
    sends = 5_000 if short else 10_000
    with Prober(server) as p:
        s, rest = ws_connect(server)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        _, _, rest = ws_read(s, rest)
        ws_send(s, "system.identify", {"token": token, "protocol_version": 1})
        ws_send(s, "subscribe", {"channel_id": channel})
        time.sleep(0.5)
        sessions = gauge("ecto_ws_sessions")
        big = "y" * 3_000
        sender = Client(server, token)
        t0, cut_at = time.monotonic(), None
        for i in range(sends):
            sender.ok("messages.send", {"channel_id": channel, "content": f"{i} {big}"})
            if i % 50 == 0 and cut_at is None and gauge("ecto_ws_sessions") < sessions:
                cut_at = (i, time.monotonic() - t0)
                break
        drops = gauge("ecto_ws_outbound_drops_total")
        s.close()
    did = (f"let go after {cut_at[0]:,} messages ({cut_at[1]:.1f} s): outbound queue full, "
           f"{drops:.0f} drop counted" if cut_at else f"**still attached after {sends:,} messages**")
    results.append(("a subscriber that stops reading while messages of 3 KB are sent", did, p.summary()))
    if not cut_at:
        results.append(("(failure)", "the non-reading subscriber was never let go", p.summary()))
    alive = bench.health(server.port, timeout=2)
    rss_after = bench.rss_mib(server.proc.pid)
    server.stop()
    say(f"floods: {results}")
    return {"rows": results, "alive": alive, "rss_after_mib": rss_after}


# --- fuzz -----------------------------------------------------------------------------------

def procedures():
    """Every tRPC procedure the server registers (name, is a mutation), read from its source so
    that a new one is fuzzed too; without the three that end the fuzzing member's session."""
    out = {}
    for path in sorted(glob.glob(os.path.join(bench.ROOT, "adapters", "http", "src", "procedures", "*.rs"))):
        with open(path) as f:
            for kind, name in re.findall(r'\.(query|mutation)[a-z_]*\(\s*"([a-zA-Z_]+\.[a-zA-Z]+)"', f.read()):
                out[name] = kind == "mutation"
    for ends_session in ("server.leave", "members.revokeSessions", "members.changePassword"):
        out.pop(ends_session, None)
    if len(out) < 50:
        raise SystemExit(f"drills: found only {len(out)} procedures in adapters/http/src/procedures")
    return sorted(out.items())


FIELDS = ["channel_id", "message_id", "content", "name", "type", "user_id", "role_id", "limit", "before",
          "after", "query", "permissions", "position", "emoji", "action", "code", "version", "pinned",
          "attachment_ids", "recipient_id", "reply_to", "color", "tags", "parent_id", "max_uses"]


def odd_value(rng, ids, depth=0):
    pick = rng.randrange(16)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**31, -2**63, 2**64, 1e308, -0.0, 3.5])
    if pick == 3:
        return "x" * rng.choice([0, 1, 256, 5_000, 70_000])
    if pick == 4:
        return rng.choice(["\u0000", "\ud7ff\ue000", "😀" * 50, "<script>", "' OR 1=1 --", "../../etc/passwd",
                           "%00", "\u202e", "a\r\nb", "{}", "[]"])
    if pick == 5:
        return rng.choice(ids)
    if pick == 6:
        return str(uuid.uuid4())
    if pick == 7 and depth < 40:
        return [odd_value(rng, ids, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 8 and depth < 40:
        return {rng.choice(FIELDS): odd_value(rng, ids, depth + 1) for _ in range(rng.randrange(4))}
    if pick == 9:
        deep = 0
        for _ in range(rng.choice([50, 300])):
            deep = [deep]
        return deep
    if pick == 10:
        return [rng.choice(ids)] * rng.choice([1, 11, 1_000])
    return rng.choice(ids + ["", "general", "text", "voice", "add", "remove", "#ff0000"])


def attempt(call):
    """`call()`'s answer, tried again once on a new connection when the first try lost its
    connection (a keep-alive connection the server had closed); else the exception:
    `TimeoutError` when the server did not answer in time."""
    for tries in (1, 2):
        try:
            return call()
        except (socket.timeout, TimeoutError) as e:
            return TimeoutError(str(e))
        except (OSError, http.client.HTTPException) as e:
            if tries == 2:
                return e


def drill_fuzz(binary, work, short):
    say("fuzz (self-hosted)")
    server = new_server(binary, "self-hosted", work)
    token, user_id = register(server, f"owner{uuid.uuid4().hex[:6]}")
    member, member_id = register(server, f"member{uuid.uuid4().hex[:6]}")
    owner = Client(server, token)
    channel = owner.ok("channels.create", {"name": "fuzz", "type": "text"})["id"]
    message = owner.ok("messages.send", {"channel_id": channel, "content": "target"})["id"]
    ids = [channel, message, user_id, member_id, str(uuid.uuid4())]
    rng = random.Random(20261203)
    procs = procedures()
    cases = 3_000 if short else 30_000
    statuses, fives, hangs, hung, dropped = {}, [], 0, [], []
    clients = [Client(server, member, timeout=10), Client(server, None, timeout=10)]
    t0 = time.monotonic()
    for i in range(cases):
        name, mutation = rng.choice(procs)
        c = clients[i % 2]
        if rng.randrange(10) == 0:
            if rng.randrange(3) == 0:
                # Nesting deeper than any parser should follow.
                depth = rng.choice([1_000, 100_000])
                body = '{"channel_id":' + "[" * depth + "]" * depth + "}"
            else:
                body = json.dumps({f: odd_value(rng, ids) for f in rng.sample(FIELDS, 3)})
                body = body[: rng.randrange(1, max(2, len(body)))]  # cut JSON
            size = len(body)
            outcome = attempt(lambda: c.raw("POST", f"/trpc/{name}", body.encode(),
                                            {"Content-Type": "application/json"}))
        else:
            payload = {f: odd_value(rng, ids) for f in rng.sample(FIELDS, rng.randrange(0, 6))}
            if rng.randrange(8) == 0:
                payload = odd_value(rng, ids)
            size = len(json.dumps(payload))
            outcome = attempt(lambda: c.call(name, payload, mutation))
        if isinstance(outcome, TimeoutError):
            hangs += 1
            hung.append((name, f"{size:,} bytes of input: {outcome!r}"[:160]))
            continue
        if isinstance(outcome, Exception):
            dropped.append((name, f"{size:,} bytes of input: {outcome!r}"[:160]))
            continue
        status, data = outcome
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500:
            fives.append((name, str(data)[:200]))
    # Mutated /ws frames.
    ws_cases = 300 if short else 1_000
    ws_closed_abnormally = 0
    for i in range(ws_cases):
        try:
            s, rest = ws_connect(server)
            _, _, rest = ws_read(s, rest)
            if i % 3:
                ws_send(s, "system.identify", {"token": token, "protocol_version": 1})
            kind = rng.randrange(4)
            if kind == 0:
                s.sendall(ws_frame(os.urandom(rng.randrange(1, 300)), opcode=rng.choice([1, 2])))
            elif kind == 1:
                s.sendall(ws_frame(json.dumps({"event": rng.choice(["subscribe", "voice.join", "presence.update",
                                                                     "system.identify", "x" * 300]),
                                               "data": odd_value(rng, ids)}).encode()))
            elif kind == 2:
                s.sendall(ws_frame(b"{}", opcode=rng.choice([3, 4, 5, 6, 7, 11, 12])))
            else:
                s.sendall(os.urandom(rng.randrange(1, 64)))
            # What the server answers (an error, a close) comes at once; a frame it ignores
            # gets nothing, and a quarter of a second is enough to tell.
            s.settimeout(0.25)
            try:
                while True:
                    op, _, rest = ws_read(s, rest)
                    if op == 8:
                        break
            except OSError:
                pass
            s.close()
        except OSError:
            ws_closed_abnormally += 1
    alive = bench.health(server.port, timeout=2)
    log_panics = 0
    server.stop()
    result = {"procedures": len(procs), "cases": cases, "ws_cases": ws_cases, "statuses": dict(sorted(statuses.items())),
              "server_errors": fives[:10], "server_error_count": len(fives), "hangs": hangs, "hung": hung[:10],
              "dropped": len(dropped), "dropped_examples": dropped[:5],
              "ws_refused_handshakes": ws_closed_abnormally, "alive": alive, "panics": log_panics,
              "seconds": round(time.monotonic() - t0, 1)}
    say(f"fuzz: {result}")
    return result


# --- report ---------------------------------------------------------------------------------


def markdown(meta, crash, floods, fuzz, short):
    L = ["# Reliability", "",
         "Written by `make drills` (`scripts/drills.py`" + (" --short" if short else "") + "); "
         "do not edit by hand. Each drill runs the server binary under a fault and counts what "
         "was answered, what was lost, and how the server held up. The goal is zero lost "
         "everywhere.", "",
         f"Machine: {meta['cpu']} ({meta['cpus']} CPUs, {meta['ram_gib']} GiB), {meta['kernel']}; "
         f"{meta['rustc']}; commit {meta['commit']}; {meta['date']}; binary `{meta['binary']}`.", ""]
    if crash:
        L += ["## Crash during writes", "",
              "32 clients send messages (every 8th with an uploaded attachment, each mentioning "
              "the other member); the server is killed with SIGKILL after the burst and started "
              "again on the same data. Every answered send is looked for through `messages.list`.",
              "",
              "| profile | burst | sends answered | with attachment | lost | without their attachment | rows pointing at missing rows | database check | stored but unanswered |",
              "|---|---|---|---|---|---|---|---|---|"]
        for r in crash:
            L.append(f"| {r['profile']} | {r['burst_s']} s | {r['answered']:,} | {r['with_attachment']:,} | "
                     f"**{r['missing']}** | **{r['without_attachment']}** | **{r['orphans']}** | {r['integrity']} | "
                     f"{r['present_unanswered']} |")
        L += ["", "Stored but unanswered: sends the server committed while the kill cut the answer "
              "off; a client retrying them would send them twice (the protocol has no idempotency "
              "key).", ""]
    if floods:
        L += ["## Floods", "",
              "A prober asks `/health` and `server.info` (a real request that reads the database) "
              "every 20 ms while each flood runs, and samples the server's RSS.", "",
              "| flood | what the server did | /health p99 | server.info p99 | probe failures | peak RSS |",
              "|---|---|---|---|---|---|"]
        for what, did, s in floods["rows"]:
            L.append(f"| {what} | {did} | {s['health_p99_ms']} ms | {s['real_p99_ms']} ms | "
                     f"{s['probe_failures']} | {s['peak_rss_mib']} MiB |")
        L += ["", f"Alive after the floods: {'yes' if floods['alive'] else '**no**'}; RSS afterwards "
              f"{floods['rss_after_mib']} MiB.", "",
              "The limits involved (README, Configuration): `WS_IDENTIFY_TIMEOUT_MS` (2,000 here), "
              "`WS_OUTBOUND_QUEUE` (a subscriber that stops reading is closed once 1,024 events "
              "wait for it, close 4000), `WS_SOCKETS_PER_ADDRESS` (off here: every drill socket "
              "comes from one address), the frame limit of `/ws` (64 KiB, close 4002), and the "
              "HTTP server's request-head timeout (5 s).", ""]
    if fuzz:
        L += ["## Fuzzed input", "",
              f"{fuzz['cases']:,} calls of the {fuzz['procedures']} tRPC procedures with generated and mutated "
              "input (wrong types, huge and odd strings, deep nesting, ids of other objects, cut "
              f"JSON), half as a member and half anonymously, then {fuzz['ws_cases']:,} `/ws` "
              "connections sending mutated frames (random bytes, unknown opcodes, odd events, "
              f"raw garbage instead of a frame), in {fuzz['seconds']} s.", "",
              f"- answers by status: {', '.join(f'{k}: {v:,}' for k, v in fuzz['statuses'].items())}",
              f"- 5xx answers: **{fuzz['server_error_count']}**",
              f"- calls without an answer in 10 s: **{fuzz['hangs']}**",
              f"- calls whose connection the server closed without an answer: {fuzz['dropped']}"
              + "".join(f"\n  - `{n}`: {e}" for n, e in fuzz["dropped_examples"]),
              f"- server alive afterwards: {'yes' if fuzz['alive'] else '**no**'}", ""]
        for name, data in fuzz["server_errors"]:
            L.append(f"  - 5xx from `{name}`: {data}")
        for name, error in fuzz["hung"]:
            L.append(f"  - no answer from `{name}`: {error}")
    L += ["## Not drilled yet", "",
          "- losing a managed instance (500 sockets over two instances, one killed, every socket "
          "resuming on the survivor) and a rolling restart; the API test "
          "`resume::a_session_resumes_on_another_instance` covers one socket;",
          "- Redis down and PostgreSQL restarted while requests and sockets run;",
          "- storage faults (a full disk, a blob store failing in the middle of an upload);",
          "- slow request bodies, and fuzzing of the multipart and `/files` path parsers.", ""]
    return "\n".join(L).rstrip() + "\n"


def run_drills(a, drills, work, out):
    """Runs the chosen drills; fills `out` with their results (crash rows, then floods and fuzz)."""
    if "crash" in drills:
        for profile in a.profiles.split(","):
            out["crash"].append(drill_crash(a.binary, profile, os.path.join(work, f"crash-{profile}"), a.short))
    if "floods" in drills:
        out["floods"] = drill_floods(a.binary, os.path.join(work, "floods"), a.short)
    if "fuzz" in drills:
        out["fuzz"] = drill_fuzz(a.binary, os.path.join(work, "fuzz"), a.short)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--binary", default=os.path.join(bench.ROOT, "target", "release", "ecto-server"))
    ap.add_argument("--profiles", default="self-hosted")
    ap.add_argument("--drills", default="crash,floods,fuzz")
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "docs", "RELIABILITY.md"))
    a = ap.parse_args()
    if not os.path.exists(a.binary):
        raise SystemExit(f"drills: no binary at {a.binary} (make release, or --binary)")
    bench.raise_nofile()
    drills = a.drills.split(",")
    meta = bench.machine()
    meta["binary"] = os.path.relpath(a.binary, bench.ROOT)
    out = {"crash": [], "floods": None, "fuzz": None}
    with tempfile.TemporaryDirectory(prefix="ecto-drills-") as work:
        try:
            run_drills(a, drills, work, out)
        finally:
            stop_all()
    crash, floods, fuzz = out["crash"], out["floods"], out["fuzz"]

    with open(a.out, "w") as f:
        f.write(markdown(meta, crash, floods, fuzz, a.short))
    say(f"wrote {a.out}")
    bad = [r for r in crash if r["missing"] or r["without_attachment"] or r["orphans"]
           or not str(r["integrity"]).startswith("ok")]
    if floods and not floods["alive"]:
        bad.append("floods: server not alive")
    if floods and any(what == "(failure)" for what, _, _ in floods["rows"]):
        bad.append("floods: a non-reading subscriber was never let go")
    if fuzz and (fuzz["server_error_count"] or fuzz["hangs"] or not fuzz["alive"]):
        bad.append("fuzz")
    if bad:
        raise SystemExit(f"drills: FAILED {bad}")


if __name__ == "__main__":
    main()
