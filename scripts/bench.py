#!/usr/bin/env python3
"""One-command benchmark of ecto-server (`make bench`).

Builds ecto-server and ecto-load in release mode, starts the server in each profile
(self-hosted: SQLite in a temporary data directory; managed: PostgreSQL, Redis and the S3
emulator set up by scripts/with-test-services.sh, one community server provisioned through
POST /internal/servers), measures start-up, runs the standard ecto-load scenarios against it
and writes docs/BENCHMARKS.md (and the raw results, docs/benchmarks.json) from their JSON output.

Usage: scripts/bench.py [--quick] [--profiles self-hosted,managed] [--no-build] [--out FILE]
       scripts/bench.py --only batch-50 [--profiles ...]  (run these scenarios, merge into the page)
       scripts/bench.py --render docs/benchmarks.json   (regenerate the page only)
  --quick   small parameters (a smoke test of the whole pipeline, about a minute per profile)
  --only    run only the named standard scenarios and merge their results into the saved
            docs/benchmarks.json (each marked with the commit and date of its own run)

Needs Linux (/proc), python3 without extra packages, and for the managed profile PostgreSQL and
Redis on 127.0.0.1 (the wrapper script starts or installs what is missing).
"""
import argparse
import datetime
import json
import os
import resource
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Server settings of every benchmark run: the rate limits would throttle the load (each
# scenario sends far more than 300 calls per 10 s from one user and registers hundreds of
# accounts from one address), so they are off; everything else keeps its default.
BENCH_ENV = {
    "LOG_LEVEL": "warn",
    "BIND_ADDRESS": "127.0.0.1",
    "RATE_LIMIT_USER_PER_10S": "0",
    "RATE_LIMIT_IP_PER_10S": "0",
    "RATE_LIMIT_JOIN_PER_MINUTE": "0",
    "RATE_LIMIT_WEBHOOK_PER_10S": "0",
    "WS_EVENTS_PER_10S": "0",
    # The socket caps: every load socket comes from one address, and 10,000 sessions share
    # 200 accounts (50 each).
    "WS_SOCKETS_PER_ADDRESS": "0",
    "WS_SOCKETS_PER_USER": "0",
    # Voice on loopback, on a free port.
    "VOICE_BIND_ADDRESS": "127.0.0.1",
    "MEDIASOUP_MIN_PORT": "0",
    # The load tool registers the owner itself (a fresh self-hosted server asks the first
    # registration for its setup token otherwise).
    "REQUIRE_SETUP_TOKEN": "false",
}

# The standard set: (key, ecto-load arguments). Every run also gets --pid <server pid>.
STANDARD = [
    ("send-seq", ["send-seq", "--count", "2000"]),
    ("send-concurrent", ["send-concurrent", "--clients", "32", "--duration", "10"]),
    ("fanout-100", ["fanout", "--subscribers", "100", "--rate", "100", "--duration", "10"]),
    ("fanout-1000", ["fanout", "--subscribers", "1000", "--rate", "200", "--duration", "10"]),
    ("connect-1000", ["connect", "--sessions", "1000", "--concurrency", "64"]),
    ("idle-10000", ["idle", "--sessions", "10000", "--concurrency", "64"]),
    ("voice-25", ["voice", "--participants", "25", "--duration", "10"]),
    ("voice-25-video", ["voice", "--participants", "25", "--duration", "10", "--video"]),
    # The same call on a lossy path: a relay in ecto-load loses 2 % of the RTP each way; the
    # peers NACK as browsers do. What NACK recovers, and the delay it adds beside the clean run.
    ("voice-25-video-loss2", ["voice", "--participants", "25", "--duration", "10", "--video",
                              "--loss", "2"]),
    # Issue 13, item 3: batches as large as allowed (50 messages.list of 100 messages of 4,000
    # characters each, past the 8 MiB response cap), 4 clients × 5 rounds; the server's RSS
    # before, at its peak and 30 s after.
    ("batch-50", ["batch", "--calls", "50", "--clients", "4", "--rounds", "5", "--messages", "100",
                  "--settle", "30"]),
]
# Scenarios run on a freshly restarted server process, so that the memory the earlier ones
# left behind (password hashing of the sign-ins, message history) does not hide the cost of
# the sessions. Their accounts sign in with the tokens cached by the earlier scenarios.
RESTART_BEFORE = {"idle-10000", "voice-25", "voice-25-video", "voice-25-video-loss2", "batch-50",
                  "signin-burst-32"}
QUICK = [
    ("send-seq", ["send-seq", "--count", "200"]),
    ("send-concurrent", ["send-concurrent", "--clients", "8", "--duration", "3"]),
    ("fanout-100", ["fanout", "--subscribers", "20", "--rate", "50", "--duration", "3", "--grace", "2"]),
    ("fanout-1000", ["fanout", "--subscribers", "100", "--rate", "100", "--duration", "3", "--grace", "2"]),
    ("connect-1000", ["connect", "--sessions", "200", "--concurrency", "64"]),
    ("idle-10000", ["idle", "--sessions", "500", "--concurrency", "64", "--settle", "1", "--hold", "1"]),
    ("voice-25", ["voice", "--participants", "5", "--duration", "3"]),
    ("voice-25-video", ["voice", "--participants", "5", "--duration", "3", "--video"]),
    ("voice-25-video-loss2", ["voice", "--participants", "5", "--duration", "3", "--video",
                              "--loss", "2"]),
    ("batch-50", ["batch", "--calls", "50", "--clients", "2", "--rounds", "1", "--messages", "20",
                  "--settle", "2"]),
]

# Targets (issue 7), per profile; see _TARGET_SPEC below. Edit there when the targets change.
def _lat(res, name, key):
    v = (res.get(name) or {}).get(key)
    return v


def _at_least(value, bound):
    return value is not None and value >= bound


def _at_most(value, bound):
    return value is not None and value <= bound


def _no_loss(r):
    return r.get("lost") == 0 and r.get("duplicated", 0) == 0 and r.get("expected_deliveries", 0) > 0


# The targets of issue 7 per profile: (scenario key, metric, unit, value getter, check,
# self-hosted bound, managed bound). A bound of None means "no loss" style checks.
_TARGET_SPEC = [
    ("startup", "start → first /health", " ms", lambda r: r.get("health_ms"), _at_most, 100, 200),
    ("startup", "idle RSS after start", " MiB", lambda r: r.get("rss_mib"), _at_most, 20, 30),
    ("send-seq", "throughput", " msg/s", lambda r: r.get("msg_per_s"), _at_least, 4000, 800),
    ("send-concurrent", "throughput (32 clients)", " msg/s", lambda r: r.get("msg_per_s"), _at_least, 8000, 4000),
    ("fanout-100", "lost / duplicated deliveries", "", lambda r: (r.get("lost"), r.get("duplicated")), None, None, None),
    ("fanout-100", "delivery p99", " ms", lambda r: _lat(r, "delivery_latency", "p99_ms"), _at_most, 20, 30),
    ("fanout-1000", "achieved send rate (target 200 msg/s)", " msg/s", lambda r: r.get("achieved_send_rate"), _at_least, 200, 200),
    ("fanout-1000", "lost / duplicated deliveries", "", lambda r: (r.get("lost"), r.get("duplicated")), None, None, None),
    ("fanout-1000", "delivery p99", " ms", lambda r: _lat(r, "delivery_latency", "p99_ms"), _at_most, 50, 80),
    ("connect-1000", "connect→ready p99", " ms", lambda r: _lat(r, "connect_to_ready", "p99_ms"), _at_most, 50, 80),
    ("idle-10000", "sessions ready (of 10,000)", "", lambda r: r.get("ready"), _at_least, 10000, 10000),
    ("idle-10000", "server memory per session", " KiB", lambda r: r.get("server_kib_per_session"), _at_most, 15.6, 15.6),
]


def _target(entry, profile):
    key, metric, unit, get, check, self_hosted, managed = entry
    bound = managed if profile == "managed" else self_hosted
    if check is None:
        text = "0 / 0"
        return key, metric, text, unit, lambda r: (get(r), _no_loss(r))
    sign = "≥" if check is _at_least else "≤"
    return key, metric, f"{sign} {bound:g}{unit}", unit, lambda r: (get(r), check(get(r), bound))


def targets_for(profile):
    return [_target(e, profile) for e in _TARGET_SPEC]


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def health(port, timeout=0.5):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout).read()
        return True
    except Exception:
        return False


def machine():
    model, count = "unknown", os.cpu_count()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass

    def out(cmd):
        try:
            return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except Exception:
            return "unknown"

    commit = out(["git", "rev-parse", "--short=12", "HEAD"])
    if out(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " (with uncommitted changes)"
    return {
        "cpu": model,
        "cpus": count,
        "ram_gib": ram,
        "kernel": f"{os.uname().sysname} {os.uname().release}",
        "rustc": out(["rustc", "-V"]),
        "commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


class Server:
    """One ecto-server process of a profile, on a free port."""

    def __init__(self, binary, profile, work, tag=""):
        """`tag` names a server of its own beside others of the same profile (a data
        directory, a PostgreSQL database and a Redis prefix of its own)."""
        self.binary, self.profile = binary, profile
        self.port = free_port()
        self.address = None
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        env.update(BENCH_ENV)
        env["PORT"] = str(self.port)
        env["DATA_DIR"] = os.path.join(work, f"data-{profile}{tag}")
        os.makedirs(env["DATA_DIR"], exist_ok=True)
        # What the documentation shows instead of machine paths and secrets.
        self.shown = dict(BENCH_ENV, PORT="<free port>", DATA_DIR="<temporary directory>")
        if profile == "managed":
            need = ["ECTO_TEST_DATABASE_URL", "ECTO_TEST_REDIS_URL", "ECTO_TEST_REDIS_PREFIX",
                    "ECTO_TEST_S3_ENDPOINT", "ECTO_TEST_S3_BUCKET", "ECTO_TEST_S3_ACCESS_KEY",
                    "ECTO_TEST_S3_SECRET_KEY"]
            missing = [k for k in need if not os.environ.get(k)]
            if missing:
                raise SystemExit(f"bench: managed profile needs {missing} (run under scripts/with-test-services.sh)")
            env.update({
                "HOSTING_MODE": "managed",
                "DATABASE_URL": own_database(os.environ["ECTO_TEST_DATABASE_URL"], tag),
                "REDIS_URL": os.environ["ECTO_TEST_REDIS_URL"],
                "REDIS_KEY_PREFIX": os.environ["ECTO_TEST_REDIS_PREFIX"] + f"bench{tag}:",
                "S3_ENDPOINT": os.environ["ECTO_TEST_S3_ENDPOINT"],
                "S3_BUCKET": os.environ["ECTO_TEST_S3_BUCKET"],
                "S3_REGION": "us-east-1",
                "S3_ACCESS_KEY": os.environ["ECTO_TEST_S3_ACCESS_KEY"],
                "S3_SECRET_KEY": os.environ["ECTO_TEST_S3_SECRET_KEY"],
                "MANAGED_API_KEY": secrets.token_hex(24),
                "JWT_SECRET": secrets.token_hex(32),
            })
            self.shown.update({
                "HOSTING_MODE": "managed",
                "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/<fresh database>",
                "REDIS_URL": "redis://127.0.0.1:6379",
                "REDIS_KEY_PREFIX": "<fresh prefix>",
                "S3_ENDPOINT": "http://127.0.0.1:<port of s3s-fs>",
                "S3_BUCKET": env["S3_BUCKET"],
                "S3_REGION": "us-east-1",
                "S3_ACCESS_KEY": "<key>",
                "S3_SECRET_KEY": "<secret>",
                "MANAGED_API_KEY": "<random>",
                "JWT_SECRET": "<random>",
            })
        self.env = env
        self.proc = None

    def migrate(self):
        subprocess.run([self.binary, "migrate"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.binary, "serve"], env=self.env, preexec_fn=raise_nofile)
        while not health(self.port):
            if self.proc.poll() is not None:
                raise SystemExit(f"bench: {self.profile} server exited with {self.proc.returncode}")
            if time.monotonic() - t0 > 60:
                raise SystemExit(f"bench: {self.profile} server not healthy after 60 s")
            time.sleep(0.002)
        return (time.monotonic() - t0) * 1000

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def provision(self):
        """Managed: one community server through POST /internal/servers."""
        self.address = "bench.ecto.test"
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/internal/servers",
            data=json.dumps({"address": self.address, "name": "Benchmark"}).encode(),
            headers={"Authorization": f"Bearer {self.env['MANAGED_API_KEY']}",
                     "Content-Type": "application/json"},
            method="POST")
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except urllib.error.HTTPError as e:
            if e.code != 409:  # already provisioned by an earlier start
                raise


def own_database(url, tag):
    """The test database itself, or for a tagged server a fresh one named after it (which
    scripts/with-test-services.sh drops with it)."""
    if not tag:
        return url
    base, name = url.rsplit("/", 1)
    db = f"{name}_{tag.strip('-').replace('-', '_')}"
    host = base.split("@", 1)[-1]
    h, port = host.rsplit(":", 1)
    psql = ["psql", "-h", h, "-p", port, "-U", "postgres", "-d", "postgres", "-qc"]
    subprocess.run(psql + [f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(psql + [f"CREATE DATABASE {db}"], check=True, stdout=subprocess.DEVNULL)
    return f"{base}/{db}"


def run_profile(profile, bins, scenarios, work, measure_startup=True, tag=""):
    say(f"--- profile {profile}{' ' + tag if tag else ''} ---")
    server = Server(bins["ecto-server"], profile, work, tag)
    server.migrate()
    startup = {"runs": []}
    for i in range(3 if measure_startup else 1):
        ms = server.start()
        time.sleep(2)
        startup["runs"].append({"health_ms": round(ms, 1), "rss_mib": rss_mib(server.proc.pid)})
        say(f"start {i + 1}: first /health after {ms:.1f} ms, RSS 2 s later {startup['runs'][-1]['rss_mib']} MiB")
        if i < 2 and measure_startup:
            server.stop()
    runs = startup["runs"]
    startup["health_ms"] = sorted(r["health_ms"] for r in runs)[len(runs) // 2]
    startup["rss_mib"] = sorted(r["rss_mib"] or 0 for r in runs)[len(runs) // 2]
    if profile == "managed":
        server.provision()
    base = f"http://127.0.0.1:{server.port}"
    results = {"profile": profile, "env": server.shown, "startup": startup, "scenarios": [],
               "server_address": server.address}
    try:
        tokens = os.path.join(work, f"tokens-{profile}{tag}.json")
        for key, args in scenarios:
            restarted = key in RESTART_BEFORE
            if restarted:
                server.stop()
                server.start()
                time.sleep(2)
                say(f"restarted the {profile} server for {key}: RSS {rss_mib(server.proc.pid)} MiB")
            common = ["--label", profile, "--json", "--owner", "bench-owner:bench-owner-password",
                      "--user-prefix", "bench", "--pid", str(server.proc.pid)]
            if server.address:
                common += ["--server-address", server.address]
            cmd = [bins["ecto-load"], "--url", base, "--token-cache", tokens] + common + args
            shown_common = ["<server pid>" if a == str(server.proc.pid) else a for a in common]
            shown = ["target/release/ecto-load", "--url", "http://127.0.0.1:<port>",
                     "--token-cache", "<tokens file>"] + shown_common + args
            say(f"{key}: {shlex.join(shown)}")
            t0 = time.monotonic()
            try:
                p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, timeout=600)
            except subprocess.TimeoutExpired as e:
                say(f"{key} did not finish within 600 s")
                p = subprocess.CompletedProcess(cmd, -1, stdout=e.stdout or "")
                if isinstance(p.stdout, bytes):
                    p.stdout = p.stdout.decode(errors="replace")
            shown_text = shlex.join(shown)
            if restarted:
                shown_text = "# on a freshly restarted server process:\n" + shown_text
            entry = {"key": key, "command": shown_text, "exit": p.returncode, "restarted": restarted,
                     "wall_s": round(time.monotonic() - t0, 1)}
            try:
                entry["report"] = json.loads(p.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                entry["report"] = None
            alive = server.proc.poll() is None
            entry["server_alive_after"] = alive
            entry["server_rss_after_mib"] = rss_mib(server.proc.pid) if alive else None
            results["scenarios"].append(entry)
            if not alive:
                say(f"the {profile} server died during {key} (exit {server.proc.returncode})")
                break
    finally:
        server.stop()
    return results


def fmt(v, unit=""):
    if v is None:
        return "–"
    if isinstance(v, float):
        v = f"{v:,.1f}" if abs(v) >= 100 else f"{v:.2f}"
    return f"{v}{unit}"


def lat(r, name):
    l = r.get(name)
    if not l:
        return "–"
    return f"{l['p50_ms']:.2f} / {l['p99_ms']:.2f} / {l['max_ms']:.1f} ms"


def lat_full(r, name):
    l = r.get(name)
    if not l:
        return "–"
    return f"{l['p50_ms']:.2f} / {l['p90_ms']:.2f} / {l['p99_ms']:.2f} / {l['max_ms']:.1f} ms"


def rows_for(key, rep):
    """(metric, value) rows of one scenario's report."""
    r, p = rep["results"], rep["params"]
    if rep["scenario"] == "send-seq":
        return [("parameters", f"{p['count']} sequential sends, 1 client"),
                ("throughput", fmt(r.get("msg_per_s"), " msg/s")),
                ("send p50 / p90 / p99 / max", lat_full(r, "send_latency")),
                ("sent / failed", f"{r.get('sent_ok')} / {r.get('failed')}")]
    if rep["scenario"] == "send-concurrent":
        return [("parameters", f"{p['clients']} clients ({p['accounts']} accounts), "
                 + (f"{p['duration_s']} s" if "duration_s" in p else f"{p['count_per_client']} each")),
                ("throughput", fmt(r.get("msg_per_s"), " msg/s")),
                ("send p50 / p90 / p99 / max", lat_full(r, "send_latency")),
                ("sent / failed", f"{r.get('sent_ok')} / {r.get('failed')}")]
    if rep["scenario"] == "fanout":
        return [("parameters", f"{p['subscribers']} subscribers ({p['accounts']} accounts), "
                 f"{p['rate_msg_per_s']:g} msg/s for {p['duration_s']:g} s, {p['senders']} senders"),
                ("subscribed", f"{r.get('subscribed')} in {fmt(r.get('subscribe_all_s'), ' s')}"),
                ("sent / failed", f"{r.get('sent_ok')} / {r.get('send_failed')} "
                 f"(achieved {fmt(r.get('achieved_send_rate'), ' msg/s')}, "
                 f"{r.get('sends_started_late_10ms')} started > 10 ms late)"),
                ("deliveries expected / received", f"{r.get('expected_deliveries')} / {r.get('received')}"),
                ("lost deliveries", fmt(r.get("lost"))),
                ("duplicated deliveries", fmt(r.get("duplicated"))),
                ("subscribers closed by the server", fmt(r.get("subscribers_closed_by_server"))),
                ("deliveries/s", fmt(r.get("deliveries_per_s"))),
                ("delivery p50 / p90 / p99 / max", lat_full(r, "delivery_latency")),
                ("send p50 / p99 / max", lat(r, "send_latency"))]
    if rep["scenario"] == "connect":
        return [("parameters", f"{p['sessions']} sessions ({p['accounts']} accounts), {p['concurrency']} at a time"),
                ("ready / failed", f"{r.get('ready')} / {r.get('failed')}"),
                ("connect→ready p50 / p90 / p99 / max", lat_full(r, "connect_to_ready")),
                ("sessions ready per second", fmt(r.get("ready_per_s")))]
    if rep["scenario"] == "idle":
        return [("parameters", f"{p['sessions']} sessions ({p['accounts']} accounts), {p['concurrency']} at a time"),
                ("sessions ready", f"{r.get('ready')} (failed {r.get('failed')}, closed while idle "
                 f"{r.get('closed_by_server_while_idle')})"),
                ("all open after", fmt(r.get("open_all_s"), " s")),
                ("server RSS before → after", f"{fmt(r.get('server_rss_before_mib'))} → "
                 f"{fmt(r.get('server_rss_after_mib'))} MiB"),
                ("server memory per session", fmt(r.get("server_kib_per_session"), " KiB")),
                ("connect→ready p50 / p99 / max", lat(r, "connect_to_ready"))]
    if rep["scenario"] == "voice":
        per_1000 = r.get("server_cpu_ms_per_1000_forwarded")
        return [("parameters", f"{p['participants']} participants, each producing "
                 + ("Opus-sized audio (160 B / 20 ms) and a VP8-sized camera (1000 B × 30/s)"
                    if p.get("video") else "Opus-sized audio (160 B / 20 ms)")
                 + f", consuming everyone else, {p['duration_s']:g} s"),
                ("joined, produced, consumed and connected in", fmt(r.get("setup_s"), " s")),
                ("packets sent / forwarded (expected)", f"{r.get('packets_sent')} / "
                 f"{r.get('packets_forwarded')} ({r.get('packets_expected')})"),
                ("forwarded packets/s", fmt(r.get("forwarded_per_s"))),
                ("lost", f"{r.get('lost')} ({fmt(r.get('loss_percent'), ' %')})"),
                ("send → receive p50 / p90 / p99 / max (through the SFU, both WebRTC stacks)",
                 lat_full(r, "send_to_receive")),
                ("server CPU per 1,000 forwarded packets", fmt(per_1000, " ms")),
                ("server RSS before → during", f"{fmt(r.get('server_rss_before_kib'))} → "
                 f"{fmt(r.get('server_rss_during_kib'))} KiB"),
                ("server memory per participant", fmt(r.get("server_rss_per_participant_kib"), " KiB"))
                ] + voice_loss_rows(p, r)
    if rep["scenario"] == "batch":
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted((r.get("statuses") or {}).items()))
        return [("parameters", f"{p['clients']} clients × {p['rounds']} GET batches of "
                 f"{p['calls_per_batch']} messages.list (limit 100) over a channel of "
                 f"{p['messages']} messages of 4,000 characters"),
                ("HTTP statuses (count)", statuses or "–"),
                ("largest response", fmt(r.get("largest_response_kib"), " KiB")),
                ("all batches answered in", fmt(r.get("elapsed_s"), " s")),
                (f"server RSS before → peak → {p['settle_s']:g} s after",
                 f"{fmt(r.get('server_rss_before_mib'))} → {fmt(r.get('server_rss_peak_mib'))} → "
                 f"{fmt(r.get('server_rss_after_mib'))} MiB")]
    return [("results", json.dumps(r))]


def voice_loss_rows(p, r):
    """The lossy path's rows of a voice run (none for a clean run)."""
    if not p.get("loss_percent_each_way"):
        return []
    rows = [("path", f"a relay loses {p['loss_percent_each_way']:g} % of the RTP each way "
             "(a packet lost on the way in is missed by every consumer, on the way out by one)")]
    for kind in ("video", "audio"):
        if f"{kind}_lost" not in r:
            continue
        how = "NACK, retransmitted by the SFU or asked again of the sender" if kind == "video" \
            else "none: audio has no retransmission, Opus conceals"
        rows.append((f"{kind}: dropped by the relay in / out → lost at receivers",
                     f"{r.get(kind + '_dropped_by_relay_in')} / {r.get(kind + '_dropped_by_relay_out')}"
                     f" → {r.get(kind + '_lost')}"))
        rows.append((f"{kind}: missed deliveries recovered ({how})",
                     fmt(r.get(kind + "_recovered_percent"), " %")))
    return rows


def cpu_text(r):
    if r.get("server_cpu_s") is None and r.get("client_cpu_s") is None:
        return None
    return f"{fmt(r.get('server_cpu_s'), ' s')} / {fmt(r.get('client_cpu_s'), ' s')}"


def errors_text(rep):
    errs = rep.get("errors") or {}
    if not errs:
        return "none"
    return "; ".join(f"{k}: {v}" for k, v in errs.items())


def target_rows(key, res, profile):
    out = []
    for k, metric, target, unit, check in targets_for(profile):
        if k != key:
            continue
        try:
            value, met = check(res)
        except Exception:
            value, met = None, False
        out.append((metric, target, fmt(value, unit), met))
    return out


def markdown(meta, profiles, quick):
    L = []
    L.append("# Benchmarks")
    L.append("")
    L.append("Generated by `make bench` (`scripts/bench.py`) from the JSON output of `ecto-load`; "
             "the raw results are in [benchmarks.json](benchmarks.json). Do not edit by hand: "
             "run `make bench` again.")
    if quick:
        L.append("")
        L.append("**Quick run (`--quick`): small parameters, not the standard set.**")
    L.append("")
    L.append("## Machine")
    L.append("")
    L.append("| | |")
    L.append("|---|---|")
    L.append(f"| CPU | {meta['cpu']} × {meta['cpus']} |")
    L.append(f"| RAM | {meta['ram_gib']} GiB |")
    L.append(f"| Kernel | {meta['kernel']} |")
    L.append(f"| Rust | {meta['rustc']} |")
    L.append(f"| Commit | {meta['commit']} |")
    L.append(f"| Date | {meta['date']} |")
    L.append("")
    L.append("The load generator runs on the same machine and shares its cores with the server "
             "(and, in the managed profile, with PostgreSQL, Redis and the S3 emulator), so the "
             "figures are a floor, not what the server does on its own cores.")
    L.append("")
    L.append("## Server settings")
    L.append("")
    L.append("Both profiles run the release binary with **every rate limit off** "
             "(`RATE_LIMIT_USER_PER_10S=0`, `RATE_LIMIT_IP_PER_10S=0`, "
             "`RATE_LIMIT_JOIN_PER_MINUTE=0`, `RATE_LIMIT_WEBHOOK_PER_10S=0`, "
             "`WS_EVENTS_PER_10S=0`) and **the socket caps off** (`WS_SOCKETS_PER_ADDRESS=0`, "
             "`WS_SOCKETS_PER_USER=0`: every load socket comes from one address, and the "
             "10,000 idle sessions share 200 accounts): with the defaults, one user may make 300 calls per 10 s "
             "and one address may register 30 accounts per minute, which a load run exceeds in "
             "a second. Every other key keeps its default (`LOG_LEVEL=warn`, "
             "`WS_OUTBOUND_QUEUE=1024`, one HTTP worker per core, `DB_POOL_MAX=20`).")
    L.append("")
    L.append("- **self-hosted**: SQLite in a fresh data directory.")
    L.append("- **managed**: PostgreSQL on 127.0.0.1:5432 (a fresh database), Redis on "
             "127.0.0.1:6379 (a fresh key prefix), the S3 emulator s3s-fs (as set up by "
             "`scripts/with-test-services.sh`); one community server provisioned with "
             "`POST /internal/servers`, and every request and socket carries its "
             "`X-Server-Address`.")
    L.append("")
    L.append("The `idle`, `voice` and `batch` scenarios run on a freshly restarted server process "
             "(same data), so that their RSS figures are not hidden by memory the earlier "
             "scenarios left behind; "
             "the server RSS after each scenario is listed too. A scenario marked "
             "\"run on its own\" was measured later with `scripts/bench.py --only`, on the "
             "commit and date it names; the rest of the page is from the run described above.")
    L.append("")
    L.append("Each scenario signs in its accounts first (`bench-0` … `bench-199`, shared by the "
             "scenarios of a profile; sessions use them round-robin) and, where it sends "
             "messages, a fresh text channel created by the owner account. Only the scenario "
             "itself is measured.")
    L.append("")
    L.append("The voice scenarios put 25 participants in one voice channel of the server's SFU. "
             "Each is a full WebRTC peer pair of the `webrtc` crate (ICE, DTLS, SRTP: what a "
             "browser does) driven through `/ws` as mediasoup-client drives it; every packet "
             "carries its send time, and the receiving peer (same process, same clock) takes "
             "the difference, so the delay includes both peers' WebRTC stacks and loopback, not "
             "the SFU alone. Server CPU is counted from the first packet to 2 s after the last. "
             "Memory per participant is the server's RSS while media flows, minus its RSS with "
             "the 25 sessions identified but not in voice, over 25.")
    for prof in profiles:
        name = prof["profile"]
        L.append("")
        L.append(f"## {name}")
        L.append("")
        L.append("| Scenario | Metric | Result | Target | Met |")
        L.append("|---|---|---|---|---|")
        st = prof["startup"]
        runs = ", ".join(f"{r['health_ms']:.0f} ms" for r in st["runs"])
        L.append(f"| startup | start → first /health (median of 3) | {st['health_ms']:.1f} ms ({runs}) | | |")
        L.append(f"| | idle RSS 2 s after start (median) | {st['rss_mib']} MiB | | |")
        for metric, target, value, met in target_rows("startup", st, name):
            L.append(f"| | target: {metric} | {value} | {target} | {'yes' if met else '**no**'} |")
        for sc in prof["scenarios"]:
            rep = sc["report"]
            key = sc["key"]
            if rep is None:
                L.append(f"| {key} | **failed** (exit {sc['exit']}, no report; see the run's "
                         f"output) | | | |")
                continue
            first = True
            rows = rows_for(key, rep)
            cpu = cpu_text(rep["results"])
            if cpu:
                rows.append(("CPU time server / ecto-load (measured phase)", cpu))
            for metric, value in rows:
                L.append(f"| {key if first else ''} | {metric} | {value} | | |")
                first = False
            for metric, target, value, met in target_rows(key, rep["results"], name):
                L.append(f"| | target: {metric} | {value} | {target} | {'yes' if met else '**no**'} |")
            L.append(f"| | errors | {errors_text(rep)} | | |")
            if sc.get("separate_run"):
                run = sc["separate_run"]
                L.append(f"| | run on its own (`--only`) | commit {run['commit']}, {run['date']} | | |")
            rss = sc.get("server_rss_after_mib")
            L.append(f"| | server RSS after the scenario | {fmt(rss, ' MiB')} | | |")
            if not sc.get("server_alive_after", True):
                L.append("| | **the server died during this scenario** | | | |")
    L.append("")
    L.append("## Commands")
    L.append("")
    L.append("Run from the repository root; `<port>` is a free port picked per profile, and the "
             "server is started with the settings above.")
    L.append("")
    L.append("```sh")
    L.append("make bench   # = scripts/with-test-services.sh python3 scripts/bench.py")
    for prof in profiles:
        L.append("")
        L.append(f"# {prof['profile']}: server environment")
        L.append(" ".join(f"{k}={v}" for k, v in sorted(prof["env"].items())) + " target/release/ecto-server serve")
        for sc in prof["scenarios"]:
            if sc.get("separate_run"):
                L.append(f"# run on its own later: scripts/bench.py --only {sc['key']}")
            L.append(sc["command"])
    L.append("```")
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--profiles", default="self-hosted,managed")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    ap.add_argument("--render", metavar="JSON",
                    help="only write --out from the results file of an earlier run")
    ap.add_argument("--only", metavar="KEYS",
                    help="run only these standard scenarios (comma-separated keys, e.g. batch-50) "
                         "and merge their results into the existing results file and page")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            saved = json.load(f)
        with open(args.out, "w") as f:
            f.write(markdown(saved["machine"], saved["profiles"], saved.get("quick", False)))
        say(f"wrote {args.out}")
        return
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]

    if "managed" in profiles and not os.environ.get("ECTO_TEST_DATABASE_URL"):
        # Re-run under the script that provides PostgreSQL, Redis and the S3 emulator.
        os.execv(os.path.join(ROOT, "scripts", "with-test-services.sh"),
                 [os.path.join(ROOT, "scripts", "with-test-services.sh"), sys.executable] + sys.argv)

    raise_nofile()
    cargo = os.environ.get("CARGO", "cargo")
    if not args.no_build:
        say("cargo build --release -p ecto-server -p ecto-load")
        subprocess.run([cargo, "build", "--release", "-p", "ecto-server", "-p", "ecto-load"],
                       cwd=ROOT, check=True)
    meta_json = subprocess.run([cargo, "metadata", "--format-version", "1", "--no-deps"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    target_dir = json.loads(meta_json)["target_directory"]
    bins = {b: os.path.join(target_dir, "release", b) for b in ("ecto-server", "ecto-load")}
    for b, path in bins.items():
        if not os.path.exists(path):
            raise SystemExit(f"bench: {b} is not built ({path})")

    meta = machine()
    scenarios = QUICK if args.quick else STANDARD
    only = None
    if args.only:
        only = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in only if k not in [key for key, _ in scenarios]]
        if unknown or args.quick:
            raise SystemExit(f"bench: --only takes keys of the standard set, without --quick: {unknown}")
        scenarios = [(key, a) for key, a in scenarios if key in only]
    results = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ecto-bench-") as work:
        for profile in profiles:
            results.append(run_profile(profile, bins, scenarios, work, measure_startup=only is None))
    say(f"all profiles done in {time.monotonic() - started:.0f} s")

    out = args.out
    os.makedirs(os.path.dirname(out), exist_ok=True)
    results_file = os.path.join(os.path.dirname(out), "benchmarks.json")
    quick = args.quick
    if only is not None:
        meta, quick, results = merge(results_file, meta, results)
    with open(results_file, "w") as f:
        json.dump({"machine": meta, "quick": quick, "profiles": results}, f, indent=1)
        f.write("\n")
    page = markdown(meta, results, quick)
    write_page(out, page)
    say(f"wrote {os.path.relpath(out, ROOT)}")


# Sections of the page written by other scripts, kept as they are: the cost of metrics
# (scripts/bench-metrics.py) and the before/after comparison (scripts/bench_compare.py).
KEPT_SECTIONS = ["metrics-cost", "compare", "communities"]


def write_page(out, page, replace=None):
    """Writes the page, keeping the marked sections of the page already there; `replace`
    (name, text) puts a new text in place of one of them (or appends it)."""
    try:
        with open(out) as f:
            old = f.read()
    except OSError:
        old = ""
    for name in KEPT_SECTIONS:
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        if replace and replace[0] == name:
            kept = begin + "\n" + replace[1].strip("\n") + "\n" + end + "\n"
        elif begin in old and end in old:
            kept = begin + old.split(begin, 1)[1].split(end, 1)[0] + end + "\n"
        else:
            continue
        if begin in page:
            page = page.split(begin, 1)[0] + kept + page.split(end, 1)[1].lstrip("\n")
        else:
            page = page.rstrip("\n") + "\n\n" + kept
    with open(out, "w") as f:
        f.write(page)


def merge(results_file, meta, fresh):
    """--only: the scenarios just run replace (or join, in the standard order) those of the
    same key in the saved results; each carries the commit and date of its own run."""
    with open(results_file) as f:
        saved = json.load(f)
    order = [key for key, _ in STANDARD]
    run = {"commit": meta["commit"], "date": meta["date"]}
    for prof in fresh:
        target = next((p for p in saved["profiles"] if p["profile"] == prof["profile"]), None)
        if target is None:
            raise SystemExit(f"bench: {results_file} has no {prof['profile']} profile to merge into")
        for sc in prof["scenarios"]:
            sc["separate_run"] = run
            kept = [s for s in target["scenarios"] if s["key"] != sc["key"]]
            kept.append(sc)
            kept.sort(key=lambda s: order.index(s["key"]) if s["key"] in order else len(order))
            target["scenarios"] = kept
    return saved["machine"], saved.get("quick", False), saved["profiles"]


if __name__ == "__main__":
    main()
