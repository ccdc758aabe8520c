#!/usr/bin/env python3
"""HTTP/1.1 reverse-proxy benchmark: outrigger-proxy against nginx and HAProxy, in one run.

What it measures
  One upstream (outrigger-echo, one thread) on 127.0.0.1, and in front of it, each with ONE
  worker/thread and keep-alive upstream connections: nginx, HAProxy and outrigger-proxy. wrk
  (-t1 -c50, keep-alive) loads each target in turn, plus "direct" (wrk straight at the upstream),
  after an unmeasured warm-up. It reports per target req/s and the p50/p99 latency from wrk
  --latency, the req/s ratio against HAProxy and against direct, wrk's non-2xx and socket errors,
  and outrigger-proxy's resident memory: idle (after start, before load) and the maximum sampled
  every 100 ms under load. The goals: outrigger/haproxy req/s >= 1.0, idle RSS <= 10 MB.
  "chain" is outrigger-proxy again with the whole traffic-management chain configured on the
  route and cluster (route table match, listener and route rate limits with buckets too large to
  refuse, fault injection evaluated at 0 %, a retry policy with its replay buffer and budget,
  least-request balancing over the one host, circuit breakers, outlier detection, an active
  health check): its req/s against plain "outrigger" is the cost of the filters (goal >= 0.9).
  Everything runs on loopback on one machine, so the load generator, the proxy and the upstream
  share the CPUs: compare the targets with each other, not with numbers from another machine.

How to run (after scripts/setup and a build)
  bench/http1_compare.py --bin-dir build/bin                   # 10 s per target
  bench/http1_compare.py --bin-dir build/bin --rounds 3 --json out.json   # noisy machine: medians
  bench/http1_compare.py --bin-dir build/bin --duration 1 --smoke --require-peers   # CTest smoke
  Without outrigger binaries: --upstream IP:PORT --targets direct,nginx,haproxy.
  See --help for every option.

Exit status
  0 every requested target ran and wrk reported a result.
  1 a target could not be started (a missing nginx/haproxy is only skipped unless
    --require-peers), wrk produced no result, or (not in --smoke) a measured run saw non-2xx
    responses or socket errors. No figure (req/s, latency, RSS) ever changes the exit status:
    the machines are shared and noisy, so the figures are reported, never asserted.
  2 bad command line.

Every process started here runs in its own process group, gets SIGKILL if this script dies
(PR_SET_PDEATHSIG), and is stopped on exit (try/finally and atexit); every wrk run has a deadline.
"""

import argparse
import atexit
import collections
import contextlib
import ctypes
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HOST = "127.0.0.1"
TARGET_ORDER = ("direct", "nginx", "haproxy", "outrigger", "chain")
START_TIMEOUT_S = 15.0
STOP_GRACE_S = 3.0
WRK_SLACK_S = 30.0  # a wrk run is killed after duration + this
LISTENING_RE = re.compile(r"listening name=(\S+) address=(\S+)")


class BenchError(Exception):
    """A failure that makes the run invalid (a target did not start, wrk gave no result)."""


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Child processes: registered, own process group, killed with us.

_PROCS = []
_PARENT_PID = os.getpid()
_PR_SET_PDEATHSIG = 1
_SIGKILL = int(signal.SIGKILL)
try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
    _PRCTL = _LIBC.prctl
except (OSError, AttributeError):
    _PRCTL = None


def _child_setup():
    # Runs in the child between fork and exec: die with this script even if it is SIGKILLed
    # (CTest's timeout does that), and do not outlive a parent that is already gone.
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != _PARENT_PID:
        os._exit(1)


def _child_env():
    # Flags of the outrigger binaries are also read from OUTRIGGER_*: keep the caller's
    # environment from adding listeners or config behind the benchmark's back.
    return {k: v for k, v in os.environ.items() if not k.startswith("OUTRIGGER_")}


def _popen(argv, **kw):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True,
                         preexec_fn=_child_setup, env=_child_env(), **kw)
    _PROCS.append(p)
    return p


def _stop(p):
    if p.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            p.send_signal(sig)
        try:
            p.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            pass


def stop_all():
    while _PROCS:
        _stop(_PROCS.pop())


atexit.register(stop_all)


def _raise_exit(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the finally blocks


class Proc:
    """A long-running server: stderr is drained by a thread that keeps a tail for error reports
    and records `listening name=... address=...` lines."""

    def __init__(self, name, argv, extra_log=None):
        self.name = name
        self.argv = argv
        self.extra_log = extra_log  # a file with the process's own error log (nginx)
        self.tail = collections.deque(maxlen=30)
        self.listening = {}
        self._cond = threading.Condition()
        self._eof = False
        log(f"start {name}: {' '.join(argv)}")
        try:
            self.popen = _popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as e:
            raise BenchError(f"{name}: cannot execute {argv[0]}: {e}") from e
        self.pid = self.popen.pid
        threading.Thread(target=self._drain, name=f"stderr-{name}", daemon=True).start()

    def _drain(self):
        for raw in self.popen.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            m = LISTENING_RE.search(line)
            with self._cond:
                self.tail.append(line)
                if m:
                    self.listening[m.group(1)] = m.group(2)
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def alive(self):
        return self.popen.poll() is None

    def wait_listening(self, names, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not all(n in self.listening for n in names):
                left = deadline - time.monotonic()
                if self._eof or left <= 0:
                    break
                self._cond.wait(min(left, 0.2))
            missing = [n for n in names if n not in self.listening]
            if missing:
                raise BenchError(self.failure(f"no 'listening name={missing[0]} address=...' "
                                              f"line on stderr within {timeout:.0f}s"))
            return {n: self.listening[n] for n in names}

    def failure(self, why):
        rc = self.popen.poll()
        state = "still running" if rc is None else f"exited with status {rc}"
        lines = list(self.tail)
        if self.extra_log and os.path.exists(self.extra_log):
            with open(self.extra_log, errors="replace") as f:
                lines += f.read().splitlines()[-15:]
        detail = "\n".join("    | " + l for l in lines[-20:]) or "    | (no output)"
        return f"{self.name}: {why} ({state}); command: {' '.join(self.argv)}\n{detail}"


# ---------------------------------------------------------------------------------------------
# Small helpers.

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def http_get(addr, path="/", timeout=2.0):
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "outrigger-bench"})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, body
    finally:
        conn.close()


def wait_http_ok(proc, addr, path="/", timeout=START_TIMEOUT_S):
    """Polls GET addr+path until it answers 200; fails early if the process died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise BenchError(proc.failure(f"exited before GET http://{addr}{path} answered 200"))
        try:
            status, body = http_get(addr, path)
            if status == 200:
                return
            last = f"status {status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    why = f"GET http://{addr}{path} did not answer 200 within {timeout:.0f}s (last: {last})"
    raise BenchError(proc.failure(why) if proc is not None else why)


def proc_status_kb(pid, key):
    """VmRSS / VmHWM from /proc/PID/status, in kB (None when the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


class RssSampler:
    """Maximum VmRSS of one process, sampled every `interval` seconds while active."""

    def __init__(self, pid, interval=0.1):
        self.pid, self.interval = pid, interval
        self.max_kb = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def _sample(self):
        kb = proc_status_kb(self.pid, "VmRSS")
        if kb is not None and (self.max_kb is None or kb > self.max_kb):
            self.max_kb = kb

    def _run(self):
        self._sample()
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


def mb(kb):
    return None if kb is None else kb / 1024.0


# ---------------------------------------------------------------------------------------------
# The upstream and the peers. Each start function returns (Proc, address to load).

def start_echo(bin_dir):
    exe = os.path.join(bin_dir, "outrigger-echo")
    if not os.access(exe, os.X_OK):
        raise BenchError(f"upstream: {exe} not found or not executable (build it, or pass "
                         f"--upstream IP:PORT to use another upstream)")
    proc = Proc("outrigger-echo", [exe, "--listen", f"{HOST}:0", "--name", "bench",
                                   "--version", "v1", "--threads", "1"])
    addr = proc.wait_listening(["echo"])["echo"]
    wait_http_ok(proc, addr, "/")
    return proc, addr


def _nginx_has_module(nginx, module):
    try:
        out = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return True
    return f"--without-http_{module}_module" not in (out.stdout + out.stderr)


def start_nginx(nginx, upstream, workdir):
    d = os.path.join(workdir, "nginx")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    temp_paths = [("client_body_temp_path", "client_body"), ("proxy_temp_path", "proxy")]
    for module in ("fastcgi", "uwsgi", "scgi"):  # a directive of a missing module is an error
        if _nginx_has_module(nginx, module):
            temp_paths.append((f"{module}_temp_path", module))
    temps = "\n".join(f"    {k} {os.path.join(d, v)};" for k, v in temp_paths)
    error_log = os.path.join(d, "error.log")
    # keepalive_requests: nginx closes a keep-alive connection after 1000 requests by default
    # (both sides); HAProxy and outrigger do not, so lift it to keep the comparison fair.
    conf = f"""# generated by bench/http1_compare.py
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
error_log {error_log} warn;
pid {os.path.join(d, "nginx.pid")};
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temps}
    keepalive_requests 1000000;
    upstream bench_upstream {{
        server {upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen {HOST}:{port};
        location / {{
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""
    cfg = os.path.join(d, "nginx.conf")
    with open(cfg, "w") as f:
        f.write(conf)
    # master_process off: the one process is the worker, and it dies with us (no orphaned
    # worker if this script is killed). -e: errors before the config is read go there too.
    proc = Proc("nginx", [nginx, "-p", d + "/", "-e", error_log, "-c", cfg,
                          "-g", "daemon off; master_process off;"], extra_log=error_log)
    addr = f"{HOST}:{port}"
    wait_http_ok(proc, addr, "/")
    return proc, addr


def start_haproxy(haproxy, upstream, workdir, connections):
    d = os.path.join(workdir, "haproxy")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    # HAProxy refuses to start when it cannot raise its fd limit to about 2 * maxconn: derive
    # maxconn from the hard limit instead of assuming one.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    room = 4096 if hard == resource.RLIM_INFINITY else (hard - 64) // 2
    maxconn = max(connections + 16, min(4096, room))
    conf = f"""# generated by bench/http1_compare.py
global
    nbthread 1
    maxconn {maxconn}

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 30s

frontend bench_in
    bind {HOST}:{port}
    default_backend bench_upstream

backend bench_upstream
    http-reuse always
    server app {upstream}
"""
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(conf)
    proc = Proc("haproxy", [haproxy, "-f", cfg, "-db"])
    addr = f"{HOST}:{port}"
    wait_http_ok(proc, addr, "/")
    return proc, addr


def start_outrigger(bin_dir, upstream):
    exe = os.path.join(bin_dir, "outrigger-proxy")
    if not os.access(exe, os.X_OK):
        raise BenchError(f"outrigger: {exe} not found or not executable")
    proc = Proc("outrigger-proxy", [exe, "--inbound", f"{HOST}:0", "--app", upstream,
                                    "--admin", f"{HOST}:0", "--concurrency", "1",
                                    "--access-log", "off"])
    addrs = proc.wait_listening(["inbound", "admin"])
    wait_http_ok(proc, addrs["admin"], "/ready")
    wait_http_ok(proc, addrs["inbound"], "/")
    return proc, addrs["inbound"]


CHAIN_CONFIG = """# bench/http1_compare.py "chain": every traffic-management feature on the request path.
clusters:
  - name: app
    lb_policy: LEAST_REQUEST
    endpoints: [{{address: "{upstream}"}}]
    circuit_breakers: {{max_connections: 100000, max_pending_requests: 100000,
                       max_requests: 100000, max_retries: 100}}
    outlier_detection: {{consecutive_5xx: 5, interval: 10s, base_ejection_time: 30s}}
    health_check: {{path: "/", interval: 5s, timeout: 1s}}
    retry_budget: {{budget_percent: 20, min_retries_per_second: 10}}
routes:
  - name: outbound
    virtual_hosts:
      - name: app
        domains: ["*"]
        routes:
          - match: {{prefix: "/"}}
            local_rate_limit: {{max_tokens: 1000000000, fill_interval: 1s}}
            fault:
              delay: {{fixed_delay: 1s, percentage: 0}}
              abort: {{http_status: 503, percentage: 0}}
            route:
              cluster: app
              timeout: 15s
              retry_policy: {{retry_on: ["5xx", "reset", "connect-failure"], num_retries: 2,
                             per_try_timeout: 5s}}
"""


def start_outrigger_chain(bin_dir, upstream, workdir):
    exe = os.path.join(bin_dir, "outrigger-proxy")
    cfg = os.path.join(workdir, "chain.yaml")
    with open(cfg, "w") as f:
        f.write(CHAIN_CONFIG.format(upstream=upstream))
    proc = Proc("outrigger-chain", [exe, "--outbound", f"{HOST}:0", "--config", cfg,
                                    "--admin", f"{HOST}:0", "--concurrency", "1",
                                    "--access-log", "off"])
    addrs = proc.wait_listening(["outbound", "admin"])
    wait_http_ok(proc, addrs["admin"], "/ready")
    wait_http_ok(proc, addrs["outbound"], "/")
    return proc, addrs["outbound"]


def start_with_retries(name, fn, attempts=3):
    """A port found free can be taken before the peer binds it: try again on a fresh port."""
    for i in range(attempts):
        started = len(_PROCS)
        try:
            return fn()
        except BenchError as e:
            for p in _PROCS[started:]:  # whatever this attempt started
                _stop(p)
            del _PROCS[started:]
            if i == attempts - 1 or "in use" not in str(e).lower():
                raise
            log(f"{name}: port taken, retrying")


# ---------------------------------------------------------------------------------------------
# wrk.

_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_LAT_RE = re.compile(r"^\s*(50|75|90|99(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS_RE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_REQS_RE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.M)
_SOCK_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def parse_wrk(out):
    """The figures of one `wrk --latency` run, or None when wrk reported no result."""
    rps = _RPS_RE.search(out)
    reqs = _REQS_RE.search(out)
    lat = {m.group(1): float(m.group(2)) * _TIME_UNITS_MS[m.group(3)]
           for m in _LAT_RE.finditer(out)}
    if not rps or not reqs or "50" not in lat or "99" not in lat or int(reqs.group(1)) == 0:
        return None
    sock = _SOCK_RE.search(out)
    non2xx = _NON2XX_RE.search(out)
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             (int(x) for x in sock.groups()))) if sock else {}
    return {
        "rps": float(rps.group(1)),
        "requests": int(reqs.group(1)),
        "p50_ms": lat["50"],
        "p75_ms": lat.get("75"),
        "p90_ms": lat.get("90"),
        "p99_ms": lat["99"],
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": socket_errors,
    }


def run_wrk(args, name, addr, duration, rss_pid=None):
    """One bounded wrk run; returns (parsed result or None, raw output, max VmRSS kB or None)."""
    argv = [args.wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s",
            "--latency", "--timeout", "5s", f"http://{addr}/"]
    try:
        p = _popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        raise BenchError(f"{name}: cannot execute {args.wrk}: {e}") from e
    sampler = RssSampler(rss_pid) if rss_pid else contextlib.nullcontext()
    try:
        with sampler:
            try:
                out, _ = p.communicate(timeout=duration + WRK_SLACK_S)
            except subprocess.TimeoutExpired:
                _stop(p)
                out, _ = p.communicate()
                out = (out or b"") + b"\n(wrk killed: ran past its deadline)"
    finally:
        _stop(p)  # a no-op unless we are unwinding (signal, error) with wrk still running
        if p in _PROCS:
            _PROCS.remove(p)
    text = out.decode("utf-8", "replace")
    res = parse_wrk(text) if p.returncode == 0 else None
    if res is None:
        text += f"\n(wrk exit status {p.returncode}; command: {' '.join(argv)})"
    return res, text, (sampler.max_kb if rss_pid else None)


def error_summary(r):
    parts = []
    if r["non2xx"]:
        parts.append(f"non-2xx/3xx {r['non2xx']}")
    bad = {k: v for k, v in r["socket_errors"].items() if v}
    if bad:
        parts.append("socket " + " ".join(f"{k}={v}" for k, v in bad.items()))
    return ", ".join(parts)


# ---------------------------------------------------------------------------------------------
# The run.

def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        description="HTTP/1.1 proxy benchmark: outrigger-proxy vs nginx vs HAProxy vs direct.")
    ap.add_argument("--bin-dir", default=os.path.join(here, os.pardir, "build", "bin"),
                    help="directory holding outrigger-proxy and outrigger-echo "
                         "(default: build/bin of this checkout)")
    ap.add_argument("--duration", type=float, default=10.0,
                    help="measured seconds per target and round (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="unmeasured warm-up seconds before each measured run (default 1)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the measurement, interleaving targets, and report medians")
    ap.add_argument("--connections", type=int, default=50, help="wrk -c (default 50)")
    ap.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    ap.add_argument("--targets", default=",".join(TARGET_ORDER),
                    help=f"comma-separated subset of {','.join(TARGET_ORDER)} (default: all)")
    ap.add_argument("--upstream", metavar="IP:PORT",
                    help="use this running upstream instead of starting outrigger-echo")
    ap.add_argument("--smoke", action="store_true",
                    help="check the plumbing: run everything, print everything, never fail on "
                         "a figure or on wrk-reported errors")
    ap.add_argument("--require-peers", action="store_true",
                    help="a missing nginx or haproxy is a failure, not a skip")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--haproxy", default="/usr/sbin/haproxy")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "/usr/bin/wrk")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the generated configs and logs")
    args = ap.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in args.targets if t not in TARGET_ORDER]
    if bad or not args.targets:
        ap.error(f"--targets: unknown {bad}; choose from {','.join(TARGET_ORDER)}")
    args.targets = [t for t in TARGET_ORDER if t in args.targets]
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.connections < 1 \
            or args.threads < 1:
        ap.error("--duration > 0, --warmup >= 0, --rounds >= 1, --connections/--threads >= 1")
    args.bin_dir = os.path.abspath(args.bin_dir)
    return args


def start_targets(args, workdir, report):
    """Starts the upstream and the peers. Returns ({target: address}, outrigger pid or None)."""
    addrs, outrigger_pid = {}, None
    if args.upstream:
        upstream = args.upstream
        try:
            wait_http_ok(None, upstream, "/")
        except BenchError as e:
            raise BenchError(f"upstream (--upstream): {e}") from e
    else:
        _, upstream = start_echo(args.bin_dir)
    report["upstream"] = upstream
    log(f"upstream at {upstream}")
    if "direct" in args.targets:
        addrs["direct"] = upstream

    peers = {"nginx": args.nginx, "haproxy": args.haproxy}
    for name in ("nginx", "haproxy"):
        if name not in args.targets:
            continue
        exe = peers[name]
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            msg = f"{name} not found at {exe} (install it: scripts/setup)"
            if args.require_peers:
                raise BenchError(msg + "; --require-peers makes this a failure")
            log(f"SKIP {name}: {msg}")
            report["skipped"][name] = msg
            continue
        if name == "nginx":
            def starter(exe=exe):
                return start_nginx(exe, upstream, workdir)
        else:
            def starter(exe=exe):
                return start_haproxy(exe, upstream, workdir, args.connections)
        _, addrs[name] = start_with_retries(name, starter)
        log(f"{name} at {addrs[name]}")

    if "outrigger" in args.targets:
        proc, addrs["outrigger"] = start_outrigger(args.bin_dir, upstream)
        outrigger_pid = proc.pid
        log(f"outrigger-proxy at {addrs['outrigger']} (pid {outrigger_pid})")
    if "chain" in args.targets:
        _, addrs["chain"] = start_outrigger_chain(args.bin_dir, upstream, workdir)
        log(f"outrigger-proxy with the full filter chain at {addrs['chain']}")
    return addrs, outrigger_pid


def private_kb(pid):
    """Memory this process alone holds: private dirty pages (heap, stacks, written data), kB.
    RSS also counts shared-library code that every process on the host shares."""
    try:
        fields = {}
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0].endswith(":"):
                    fields[parts[0][:-1]] = int(parts[1])
        return fields.get("Private_Dirty", 0)
    except (OSError, ValueError):
        return None


def measure(args, addrs, outrigger_pid, report, failures):
    names = [t for t in TARGET_ORDER if t in addrs]
    runs = {t: [] for t in names}
    rss = report["outrigger_rss"]
    if outrigger_pid:
        rss["idle_mb"] = mb(proc_status_kb(outrigger_pid, "VmRSS"))
        rss["idle_private_mb"] = mb(private_kb(outrigger_pid))
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]  # rotate: no fixed slot
        for name in order:
            addr = addrs[name]
            pid = outrigger_pid if name == "outrigger" else None
            if args.warmup > 0:
                run_wrk(args, name, addr, args.warmup)
            log(f"round {rnd + 1}/{args.rounds}: {name} ({addr}) for {args.duration:g}s")
            res, text, max_kb = run_wrk(args, name, addr, args.duration, rss_pid=pid)
            if res is None:
                tail = "\n".join("    | " + l for l in text.strip().splitlines()[-12:])
                failures.append(f"{name}: wrk produced no result (round {rnd + 1})\n{tail}")
                log(failures[-1])
                continue
            errs = error_summary(res)
            if errs:
                log(f"{name}: wrk reported errors: {errs}")
                if not args.smoke:
                    failures.append(f"{name}: errors during the measured run "
                                    f"(round {rnd + 1}): {errs}")
            if pid:
                res["rss_max_mb"] = mb(max_kb)
                if max_kb is not None:
                    prev = rss.get("load_max_mb")
                    rss["load_max_mb"] = max(prev or 0.0, mb(max_kb))
            runs[name].append(res)
    if outrigger_pid:
        rss["hwm_mb"] = mb(proc_status_kb(outrigger_pid, "VmHWM"))
    return runs


def summarize(runs, report):
    results = report["targets"]
    for name, rs in runs.items():
        entry = {"runs": rs}
        if rs:
            entry.update({
                "rps": statistics.median(r["rps"] for r in rs),
                "p50_ms": statistics.median(r["p50_ms"] for r in rs),
                "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                "non2xx": sum(r["non2xx"] for r in rs),
                "socket_errors": sum(sum(r["socket_errors"].values()) for r in rs),
            })
        results[name] = entry
    for name, entry in results.items():
        for ref in ("haproxy", "direct"):
            base = results.get(ref, {}).get("rps")
            entry[f"rps_vs_{ref}"] = entry["rps"] / base if base and "rps" in entry else None
    out, hap = results.get("outrigger", {}), results.get("haproxy", {})
    chain = results.get("chain", {})
    report["chain_vs_plain"] = (chain["rps"] / out["rps"]
                                if chain.get("rps") and out.get("rps") else None)
    report["outrigger_vs_haproxy"] = {
        "rps_ratio": out.get("rps_vs_haproxy"),
        "p99_ratio": (out["p99_ms"] / hap["p99_ms"]
                      if out.get("p99_ms") and hap.get("p99_ms") else None),
    }


def fmt(v, spec, none="n/a"):
    return none if v is None else format(v, spec)


def print_report(args, report):
    results, skipped = report["targets"], report["skipped"]
    rounds = f", median of {args.rounds} rounds" if args.rounds > 1 else ""
    print()
    upstream = (f"upstream {args.upstream}" if args.upstream
                else "upstream outrigger-echo (1 thread)")
    print(f"HTTP/1.1 GET / on 127.0.0.1, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration:g}s keep-alive, 1 worker per proxy, {upstream}{rounds}")
    header = (f"{'target':<10} {'req/s':>11} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'vs haproxy':>10} {'vs direct':>9}  errors")
    print(header)
    print("-" * len(header))
    for name in TARGET_ORDER:
        if name in skipped:
            print(f"{name:<10} skipped: {skipped[name]}")
            continue
        e = results.get(name)
        if e is None:
            continue
        if "rps" not in e:
            print(f"{name:<10} no result")
            continue
        errs = []
        if e["non2xx"]:
            errs.append(f"non2xx={e['non2xx']}")
        if e["socket_errors"]:
            errs.append(f"socket={e['socket_errors']}")
        print(f"{name:<10} {e['rps']:>11.1f} {e['p50_ms']:>8.3f} {e['p99_ms']:>8.3f} "
              f"{fmt(e['rps_vs_haproxy'], '.2f'):>10} {fmt(e['rps_vs_direct'], '.2f'):>9}  "
              f"{' '.join(errs) or '-'}")
    print()
    cmp_ = report["outrigger_vs_haproxy"]
    ratio = cmp_["rps_ratio"]
    verdict = "" if ratio is None else ("  [met]" if ratio >= 1.0 else "  [below target]")
    print(f"outrigger/haproxy req/s ratio: {fmt(ratio, '.2f')} (target >= 1.0){verdict}")
    out, hap = results.get("outrigger", {}), results.get("haproxy", {})
    if out.get("p99_ms") is not None and hap.get("p99_ms") is not None:
        print(f"outrigger p99 vs haproxy p99: {out['p99_ms']:.3f} ms vs {hap['p99_ms']:.3f} ms "
              f"(ratio {cmp_['p99_ratio']:.2f}, lower is better)")
    else:
        print("outrigger p99 vs haproxy p99: n/a")
    if "chain" in results:
        ratio = report.get("chain_vs_plain")
        verdict = "" if ratio is None else ("  [met]" if ratio >= 0.9 else "  [below target]")
        print(f"full filter chain / plain forwarding req/s ratio: {fmt(ratio, '.2f')} "
              f"(target >= 0.9){verdict}")
    if "outrigger" in results:
        rss = report["outrigger_rss"]
        idle = rss.get("idle_mb")
        verdict = "" if idle is None else ("  [met]" if idle <= 10.0 else "  [above target]")
        print(f"outrigger-proxy RSS: idle {fmt(idle, '.1f')} MB (target idle <= 10 MB){verdict}; "
              f"under load max {fmt(rss.get('load_max_mb'), '.1f')} MB "
              f"(VmRSS every 100 ms; VmHWM at end {fmt(rss.get('hwm_mb'), '.1f')} MB)")
        print(f"outrigger-proxy private memory when idle (Private_Dirty, not shared with other "
              f"processes): {fmt(rss.get('idle_private_mb'), '.1f')} MB")
    sys.stdout.flush()


def main(argv):
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    report = {
        "benchmark": "http1_compare",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"hostname": socket.gethostname(), "cpus": os.cpu_count()},
        "config": {"duration_s": args.duration, "warmup_s": args.warmup,
                   "rounds": args.rounds, "connections": args.connections,
                   "wrk_threads": args.threads, "smoke": args.smoke,
                   "targets": args.targets},
        "upstream": None, "skipped": {}, "targets": {}, "outrigger_rss": {},
        "outrigger_vs_haproxy": {}, "failures": [],
    }
    failures = report["failures"]
    workdir = tempfile.mkdtemp(prefix="outrigger-bench-")
    try:
        if not (os.path.isfile(args.wrk) and os.access(args.wrk, os.X_OK)):
            raise BenchError(f"wrk not found at {args.wrk} (install it: scripts/setup)")
        addrs, outrigger_pid = start_targets(args, workdir, report)
        runs = measure(args, addrs, outrigger_pid, report, failures)
        summarize(runs, report)
        print_report(args, report)
    except BenchError as e:
        failures.append(str(e))
        log(f"FAILED: {e}")
    finally:
        stop_all()
        if args.keep_tmp:
            log(f"configs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        if args.json:
            report["ok"] = not failures
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
                f.write("\n")
    if failures:
        print(f"\nFAILED ({len(failures)}):", file=sys.stderr)
        for f in failures:
            print(f"  - {f}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
