#!/usr/bin/python3
"""Chaos test of apm-tls-proxy (issue 9, "Keep it that way"); run by scripts/chaos.sh.

Starts the real binary with TLS in front of tests/chaos/chaos_upstream.py. After a quiet
warm-up, keep-alive TLS clients post bodies of 1-64 KiB (some chunked), each with a unique
id, and HTTP/2 clients (chaos_h2.py) do the same three streams at a time, while the upstream is killed and restarted every few seconds (sometimes staying down,
so connections are refused, sometimes resetting the first connections it accepts), cuts
or stalls responses, stops reading bodies and closes keep-alive connections; clients
abort mid-request and mid-response; idle TLS and TCP connections come and go in bursts;
the certificate is rotated (files rewritten; SIGHUP or the reload timer picks it up).

Asserts, and exits 1 on any violation:
  - the proxy never exits early nor prints a sanitizer report;
  - every request gets an answer (a whole response or a closed connection) within the
    bound, every connect and TLS handshake succeeds, and a rotated certificate is served;
  - every 2xx a client saw was recorded whole and intact by the upstream;
  - no request the upstream recorded arrived twice, none arrived corrupt, and none that a
    client abandoned mid-body arrived whole;
  - RSS returns near its warm baseline once the load stops;
  - SIGTERM afterwards exits 0 within shutdown_timeout (plus a margin for the sanitizer's
    exit-time leak check).
"""
import argparse
import collections
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chaos_clients import Client, IdleBursts  # noqa: E402
try:
    from chaos_h2 import H2Client  # noqa: E402
except ImportError:  # python3-h2 missing: main() says so when HTTP/2 clients are asked for
    H2Client = None

HERE = os.path.dirname(os.path.abspath(__file__))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer", "AddressSanitizer:DEADLYSIGNAL",
                   "ERROR: ThreadSanitizer")
SHUTDOWN_TIMEOUT = 5.0  # the config's server.shutdown_timeout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def mint_certificates(proxy, work):
    """A CA and two server certificates for localhost (A and B, rotated in turn)."""
    def certutil(*args):
        subprocess.run([proxy, "certutil", *args], check=True, stdout=subprocess.DEVNULL)
    certutil("ca", "--out", f"{work}/ca")
    for side in ("a", "b"):
        certutil("cert", "--ca-cert", f"{work}/ca/ca.crt", "--ca-key", f"{work}/ca/ca.key",
                 "--name", "localhost", "--out", f"{work}/{side}")
    os.makedirs(f"{work}/live", exist_ok=True)
    install_certificate(work, "a")


def install_certificate(work, side):
    """Rewrites the live files the way a renewal does: a new file renamed over the old."""
    for ext in ("key", "crt"):
        tmp = f"{work}/live/.server.{ext}.tmp"
        shutil.copy(f"{work}/{side}/localhost/localhost.{ext}", tmp)
        os.rename(tmp, f"{work}/live/server.{ext}")


def write_config(work, port, upstream_port):
    path = f"{work}/proxy.toml"
    with open(path, "w") as f:
        f.write(f"""# Written by tests/chaos/chaos.py
[server]
host = "127.0.0.1:{port}"
workers = 2
idle_timeout = "10s"
request_header_timeout = "5s"
write_timeout = "5s"
shutdown_timeout = "{int(SHUTDOWN_TIMEOUT)}s"

[upstream]
url = "http://127.0.0.1:{upstream_port}"
connect_timeout = "1s"
response_timeout = "3s"
idle_timeout = "2s"

[ssl]
certificate = "{work}/live/server.crt"
key = "{work}/live/server.key"
reload_interval = "1s"

[log]
level = "info"
""")
    return path


class FdHolder(threading.Thread):
    """Keeps the upstream's stalled connections open (received over a Unix socket) until
    the run ends, so a stall outlives the upstream process that started it."""

    def __init__(self, path):
        super().__init__(name="fd-holder", daemon=True)
        self.path = path
        self.fds = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(64)

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    _, fds, _, _ = socket.recv_fds(conn, 1, 4)
                    self.fds.extend(fds)
                    conn.sendall(b"k")
                except OSError:
                    pass

    def release(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []


class Upstream:
    """Starts, kills and restarts chaos_upstream.py."""

    def __init__(self, port, work, holder, seed):
        self.port, self.work, self.holder, self.seed = port, work, holder, seed
        self.proc = None
        self.starts = 0
        self.records = f"{work}/upstream-records"
        self.outages = []  # (from, to) monotonic times the upstream was not listening
        self.down_since = None

    def start(self, faults, reset_first=0):
        self.starts += 1
        self.proc = subprocess.Popen(
            [sys.executable, f"{HERE}/chaos_upstream.py", str(self.port), self.records,
             "--faults", "1" if faults else "0", "--seed", str(self.seed * 1000 + self.starts),
             "--reset-first", str(reset_first), "--holder", self.holder])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # listening once a connect succeeds
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.02)
            else:
                if self.down_since is not None:
                    self.outages.append((self.down_since, time.monotonic()))
                    self.down_since = None
                return
        raise RuntimeError("the chaos upstream did not start")

    def kill(self):
        if self.proc is not None:
            self.down_since = time.monotonic()
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def was_down(self, start, end):
        """True when [start, end] overlaps a time the upstream was not listening."""
        return any(a <= end and start <= b for a, b in self.outages)


def chaos_loop(upstream, work, proxy_proc, stop, rng, counters):
    """Upstream restarts and certificate rotations until stop is set."""
    next_kill = time.monotonic() + rng.uniform(1, 4)
    next_rotation = time.monotonic() + rng.uniform(1, 3)
    side = "a"
    while not stop.wait(0.05):
        now = time.monotonic()
        if now >= next_kill:
            upstream.kill()
            counters["upstream kills"] += 1
            if rng.random() < 0.4:  # stay down for a while: connections are refused
                stop.wait(rng.uniform(0.2, 1.5))
                counters["upstream outages"] += 1
            reset_first = rng.choice([0, 0, 3, 10])
            upstream.start(faults=True, reset_first=reset_first)
            next_kill = time.monotonic() + rng.uniform(1.5, 5)
        if now >= next_rotation:
            side = "b" if side == "a" else "a"
            install_certificate(work, side)
            if rng.random() < 0.5:
                proxy_proc.send_signal(signal.SIGHUP)
            counters["certificate rotations"] += 1
            next_rotation = time.monotonic() + rng.uniform(1.5, 4)


def run_load(args, ctxs, port, stop, aborts, outcomes, seed, problems):
    """Starts args.clients HTTP/1.1 and args.h2_clients HTTP/2 clients (TLS contexts
    ctxs[0] and ctxs[1]); each appends its Outcomes to `outcomes`."""
    clients = [Client(f"client-{i}", ctxs[0], port, args.bound, stop, aborts, seed * 100 + i,
                      outcomes.append) for i in range(args.clients)]
    clients += [H2Client(f"h2-client-{i}", ctxs[1], port, args.bound, stop, aborts,
                         seed * 100 + 50 + i, outcomes.append, problems)
                for i in range(args.h2_clients)]
    for c in clients:
        c.start()
    return clients


def join_all(threads, seconds):
    deadline = time.monotonic() + seconds
    alive = []
    for t in threads:
        t.join(max(0, deadline - time.monotonic()))
        if t.is_alive():
            alive.append(t.name)
    return alive


def wait_rss(pid, limit_kib, seconds):
    """Polls RSS until it is at most limit_kib or the time is up; returns the last value."""
    deadline = time.monotonic() + seconds
    value = rss_kib(pid)
    while value > limit_kib and time.monotonic() < deadline:
        time.sleep(0.25)
        value = rss_kib(pid)
    return value


class Records:
    """What the upstream wrote: how often each id arrived whole and intact, the ids that
    arrived corrupt, and the faults it played on each id."""

    def __init__(self, path):
        self.whole = collections.Counter()
        self.corrupt = set()
        self.faults = collections.defaultdict(list)
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    verdict, _, chaos_id = line.strip().partition(" ")
                    if verdict == "OK":
                        self.whole[chaos_id] += 1
                    elif verdict == "CORRUPT":
                        self.corrupt.add(chaos_id)
                    elif verdict.startswith("FAULT-"):
                        self.faults[chaos_id].append(verdict[len("FAULT-"):])

    def fault_text(self, chaos_id):
        faults = self.faults.get(chaos_id)
        return f"upstream played: {', '.join(faults)}" if faults else "no upstream fault on it"


def sanitizer_excerpt(log):
    """The sanitizer's headline and the first frames of each stack it printed."""
    out = []
    frames = 0
    for line in log.splitlines():
        if any(m in line for m in SANITIZER_MARKS) or line.startswith(
                ("READ of", "WRITE of", "freed by", "previously allocated")):
            out.append("    " + line.strip())
            frames = 0
        elif line.strip().startswith("#") and frames < 4 and out:
            out.append("      " + line.strip()[:200])
            frames += 1
        if len(out) >= 24:
            break
    return "\n".join(out)


def check(outcomes, records, problems):
    """Every assertion about requests; returns the list of violations."""
    violations = list(problems)
    whole = records.whole
    for o in outcomes:
        if o.kind == "timeout":
            violations.append(f"request {o.chaos_id}: no answer within the bound "
                              f"({o.seconds:.1f}s, stuck while {o.detail}; "
                              f"{records.fault_text(o.chaos_id)})")
        elif o.kind == "connect_failed":
            violations.append(f"request {o.chaos_id}: connect or TLS handshake failed: {o.detail}")
        if o.kind in ("response", "partial") and 200 <= o.status < 300 and whole[o.chaos_id] == 0:
            violations.append(f"request {o.chaos_id}: the client got {o.status} but the "
                              f"upstream never received it whole")
        if o.kind == "aborted_request" and whole[o.chaos_id] > 0:
            violations.append(f"request {o.chaos_id}: the client abandoned it mid-body but the "
                              f"upstream received a whole body")
        if o.kind == "not_processed" and whole[o.chaos_id] > 0:
            violations.append(f"request {o.chaos_id}: the proxy said it was not processed "
                              f"({o.detail}) but the upstream received it")
    for chaos_id, n in whole.items():
        if n > 1:
            violations.append(f"request {chaos_id}: the upstream received it {n} times "
                              f"({records.fault_text(chaos_id)})")
    for chaos_id in sorted(records.corrupt):
        violations.append(f"request {chaos_id}: the upstream received a corrupt body")
    return violations


def summary(outcomes, records, counters, rss, upstream):
    kinds = collections.Counter()
    for o in outcomes:
        kinds[o.kind if o.kind not in ("response", "partial") else f"{o.kind} {o.status}"] += 1
    slowest = max((o.seconds for o in outcomes), default=0)
    unseen_502 = [o for o in outcomes if o.status == 502 and o.chaos_id not in records.whole
                  and o.chaos_id not in records.faults]
    while_up = [o for o in unseen_502 if not upstream.was_down(o.started, o.started + o.seconds)]
    lines = [f"requests: {len(outcomes)}, received whole by the upstream: {len(records.whole)}, "
             f"slowest answer {slowest:.1f}s",
             f"502 for requests the upstream never saw: {len(unseen_502)}, of which "
             f"{len(while_up)} while it was listening (resets after accept, closed keep-alive "
             f"connections; a retry on a fresh connection can save some)"]
    lines += [f"  {k}: {n}" for k, n in sorted(kinds.items())]
    h2 = [o for o in outcomes if o.http2]
    h2_ok = sum(1 for o in h2 if o.kind == "response" and 200 <= o.status < 300)
    lines.append(f"  of all requests over HTTP/2: {len(h2)}, answered 2xx: {h2_ok}")
    lines += [f"{k}: {n}" for k, n in sorted(counters.items())]
    lines.append("RSS KiB: start {start}, warm baseline {warm}, peak {peak}, "
                 "after the load {after} (limit {limit})".format(**rss))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--proxy", required=True, help="the apm-tls-proxy binary")
    ap.add_argument("--seconds", type=float, default=45, help="length of the chaos phase")
    ap.add_argument("--warmup", type=float, default=6, help="quiet load before it")
    ap.add_argument("--clients", type=int, default=16, help="HTTP/1.1 clients")
    ap.add_argument("--h2-clients", type=int, default=4,
                    help="HTTP/2 clients, 3 requests in flight each")
    ap.add_argument("--bound", type=float, default=20,
                    help="seconds within which every request must be answered")
    ap.add_argument("--rss-slack", type=float, default=1.5,
                    help="RSS after the load may be this times the warm baseline, + 16 MiB")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--work", required=True, help="scratch directory (emptied)")
    args = ap.parse_args()
    if args.h2_clients and H2Client is None:
        print("chaos: the HTTP/2 clients need python3-h2 (scripts/setup.sh installs it); "
              "or run with --h2-clients 0", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    print(f"chaos: seed {args.seed}, {args.warmup:.0f}s warm-up, {args.seconds:.0f}s chaos, "
          f"{args.clients} HTTP/1.1 and {args.h2_clients} HTTP/2 clients", flush=True)

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    work = os.path.abspath(args.work)
    mint_certificates(args.proxy, work)
    port, upstream_port = free_port(), free_port()
    config = write_config(work, port, upstream_port)
    # A Unix socket path must stay short (108 bytes): not under a deep checkout.
    holder_dir = tempfile.mkdtemp(prefix="apm-chaos-")
    holder = FdHolder(f"{holder_dir}/holder.sock")
    holder.start()
    upstream = Upstream(upstream_port, work, holder.path, args.seed)
    upstream.start(faults=False)

    env = dict(os.environ)
    asan = env.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
    if "quarantine_size_mb" not in asan:
        # ASan keeps freed memory in a quarantine of 256 MiB by default, which alone would
        # fail the RSS check; 32 MiB still catches a use shortly after a free.
        asan += ":quarantine_size_mb=32"
    env["ASAN_OPTIONS"] = asan
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    stderr_path = f"{work}/proxy.stderr"
    ready = f"{work}/ready"
    with open(stderr_path, "wb") as err:
        proxy = subprocess.Popen([args.proxy, "run", "--config", config, "--ready-file", ready],
                                 stdout=err, stderr=err, env=env)
    violations = []
    counters = collections.Counter()
    outcomes, problems = [], []
    rss = {"start": 0, "warm": 0, "peak": 0, "after": 0, "limit": 0}
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ready):
            if proxy.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not become ready")
            time.sleep(0.05)
        rss["start"] = rss_kib(proxy.pid)
        ctx = ssl.create_default_context(cafile=f"{work}/ca/ca.crt")
        h2_ctx = ssl.create_default_context(cafile=f"{work}/ca/ca.crt")
        h2_ctx.set_alpn_protocols(["h2"])
        ctxs = (ctx, h2_ctx)

        # Warm-up: the same load without faults, to reach the allocator's working set.
        stop, aborts = threading.Event(), threading.Event()
        clients = run_load(args, ctxs, port, stop, aborts, outcomes, args.seed, problems)
        time.sleep(args.warmup)
        stop.set()
        violations += [f"client {n} still busy after the warm-up"
                       for n in join_all(clients, args.bound + 5)]
        for c in clients:
            c._drop()
        time.sleep(1)
        rss["warm"] = rss_kib(proxy.pid)
        warm_count = len(outcomes)

        # Chaos.
        stop, aborts = threading.Event(), threading.Event()
        aborts.set()
        upstream.kill()
        upstream.start(faults=True)
        clients = run_load(args, ctxs, port, stop, aborts, outcomes, args.seed + 1, problems)
        bursts = IdleBursts(ctx, port, stop, args.seed, problems)
        bursts.start()
        chaos = threading.Thread(target=chaos_loop, name="chaos",
                                 args=(upstream, work, proxy, stop, rng, counters),
                                 daemon=True)
        chaos.start()
        end = time.monotonic() + args.seconds
        while time.monotonic() < end and proxy.poll() is None:
            rss["peak"] = max(rss["peak"], rss_kib(proxy.pid))
            time.sleep(0.5)
        if proxy.poll() is not None:
            violations.append(f"the proxy exited {args.seconds - (end - time.monotonic()):.0f}s "
                              f"into the chaos (status {proxy.returncode})")
        stop.set()
        violations += [f"{n} still busy {args.bound + 5:.0f}s after the end"
                       for n in join_all(clients + [bursts, chaos], args.bound + 5)]
        counters["idle bursts"] = bursts.bursts
        counters["server certificates seen"] = len(bursts.certificates)
        if counters["certificate rotations"] >= 2 and len(bursts.certificates) < 2:
            violations.append("the certificate was rotated but clients only ever saw one")
        counters["requests in the warm-up"] = warm_count
        if proxy.poll() is not None:
            raise RuntimeError("the proxy is gone: no RSS or SIGTERM check")

        # Calm: a healthy upstream, stalls released, every client connection gone.
        for c in clients:
            c._drop()
        upstream.kill()
        holder.release()
        upstream.start(faults=False)
        rss["limit"] = int(rss["warm"] * args.rss_slack) + 16 * 1024
        rss["after"] = wait_rss(proxy.pid, rss["limit"], 20)
        if rss["after"] > rss["limit"]:
            violations.append(f"RSS {rss['after']} KiB did not return near the warm baseline "
                              f"{rss['warm']} KiB (limit {rss['limit']} KiB)")

        # SIGTERM: exit 0 within shutdown_timeout (+ margin for the exit-time leak check).
        proxy.send_signal(signal.SIGTERM)
        try:
            code = proxy.wait(SHUTDOWN_TIMEOUT + 10)
            if code != 0:
                violations.append(f"SIGTERM: exit status {code}, not 0")
        except subprocess.TimeoutExpired:
            violations.append(f"SIGTERM: still running {SHUTDOWN_TIMEOUT + 10:.0f}s later")
    except RuntimeError as e:
        violations.append(str(e))
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()
        upstream.kill()
        holder.release()
        shutil.rmtree(holder_dir, ignore_errors=True)

    with open(stderr_path, errors="replace") as f:
        log = f.read()
    reports = [m for m in SANITIZER_MARKS if m in log]
    if reports:
        violations.insert(0, f"sanitizer report in the proxy's output; see {stderr_path}:\n"
                          + sanitizer_excerpt(log))
    counters["certificate reloads (log)"] = log.count('"certificates reloaded"')
    counters["certificate reloads rejected (log)"] = log.count("certificate reload rejected")
    records = Records(upstream.records)
    # Whole-process findings first: a crash explains the request failures that follow it.
    violations = violations + check(outcomes, records, problems)
    counters["upstream starts"] = upstream.starts
    print(summary(outcomes, records, counters, rss, upstream))
    if violations:
        print(f"chaos: FAILED, {len(violations)} violation(s) (seed {args.seed}; "
              f"proxy output in {stderr_path}):")
        for v in violations[:40]:
            print("  " + v)
        if len(violations) > 40:
            print(f"  ... and {len(violations) - 40} more")
        return 1
    print("chaos: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
