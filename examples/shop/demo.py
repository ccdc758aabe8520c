#!/usr/bin/env python3
"""The shop demo (what `scripts/demo` runs): a whole Outrigger mesh on 127.0.0.1 with a canary.

It starts, in a fresh temp dir:
  - outrigger-control with the mesh CA (--ca-dir) and a copy of examples/shop/*.yaml as policy
    (so that `outrigger canary` rewrites the copy, never the repo);
  - one join token per service (`outrigger token create`), one outrigger-proxy sidecar per
    workload (frontend v1, catalog v1, catalog v2, inventory v1) and the app beside it
    (examples/shop/app.py);
  - Prometheus, when /usr/bin/prometheus exists (unless --no-prometheus), scraping every sidecar
    and the control plane every second;
then sends about 50 requests/s to frontend and shows, every second, how many of the calls
frontend's sidecar made to catalog went to v1 and to v2 and how many of them succeeded, while it
moves the canary: 90/10 (the policy as written), then `outrigger canary ... 50/50`, then 0/100.
It ends with a summary and stops everything it started.

Ctrl-C (or SIGTERM) at any point stops every process it started (SIGTERM, then SIGKILL after a
grace period), removes the temp dir and exits 130 (143). Standard library only; everything
listens on 127.0.0.1.
"""

import argparse
import ctypes
import glob
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SHOP = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(SHOP))
LOOPBACK = "127.0.0.1"
PROMETHEUS = "/usr/bin/prometheus"

START_TIMEOUT = 20.0    # seconds for each process to listen / be ready
GRACE = 4.0             # seconds between SIGTERM and SIGKILL when stopping
REQUEST_TIMEOUT = 3.0   # seconds for each request of the load generator

# The canary phases: (catalog-v1 weight, catalog-v2 weight). The first is the policy as written.
PHASES = [(90, 10), (50, 50), (0, 100)]

# The workloads: (name, service, version, app role).
WORKLOADS = [
    ("frontend", "frontend", "v1", "frontend"),
    ("catalog-v1", "catalog", "v1", "catalog"),
    ("catalog-v2", "catalog", "v2", "catalog"),
    ("inventory", "inventory", "v1", "inventory"),
]

# The metric the live lines are computed from (frontend's sidecar, calls to catalog).
REQUESTS_METRIC = "outrigger_requests_total"
CATALOG_SERVICE = "catalog.default"
PROM_QUERY = ('sum by (destination_version) (rate(outrigger_requests_total{reporter="source",'
              'destination_service="catalog.default"}[15s]))')

# Variables that would change how the binaries behave behind the demo's back.
_SCRUB_PREFIXES = ("OUTRIGGER_",)
_SCRUB_NAMES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"}

_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _LIBC = None


class DemoError(Exception):
    """Something the demo needs failed; the message says what (exit 1)."""


class Stopped(BaseException):
    """SIGINT or SIGTERM: stop everything and exit with `code` (130 or 143)."""

    def __init__(self, signame, code):
        super().__init__(signame)
        self.signame = signame
        self.code = code


def say(*parts):
    print(*parts, flush=True)


def step(title):
    say(f"\n== {title}")


def child_env():
    return {k: v for k, v in os.environ.items()
            if k not in _SCRUB_NAMES and not k.startswith(_SCRUB_PREFIXES)}


def _child_setup():
    # In the child, before exec: its own process group (start_new_session) keeps the terminal's
    # Ctrl-C away from it (the demo stops it itself, in order), and PR_SET_PDEATHSIG kills it if
    # the demo itself is killed with SIGKILL, so that nothing is ever left behind.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked while forking
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)


def free_port():
    """A loopback port nobody listens on right now (only for Prometheus, which cannot report the
    port it picked; every other listener binds port 0 and prints its address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def http_get(addr, path, timeout=2.0, headers=None):
    """GET http://ADDR/PATH on a new connection -> (status, body text)."""
    host, _, port = addr.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------
# Metrics (Prometheus text format), tolerant of labels being added or reordered.

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    """-> [(name, {label: value}, float)]; lines it cannot read are skipped."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            continue
        name, labels_s, value_s = m.groups()
        labels = dict(_LABEL_RE.findall(labels_s or ""))
        try:
            out.append((name, labels, float(value_s)))
        except ValueError:
            continue
    return out


def is_success(code):
    """response_code < 500 counts as a success; 0 or no code (no response at all) does not."""
    try:
        c = int(code)
    except (TypeError, ValueError):
        return False
    return 100 <= c < 500


def catalog_counts(samples):
    """Calls to catalog counted by frontend's sidecar (reporter="source"), by the version of the
    catalog workload that answered: {version: [total, successes]}, or None when no series has a
    destination_version label (a proxy that does not report it)."""
    counts, seen = {}, False
    for name, labels, value in samples:
        if name != REQUESTS_METRIC or labels.get("reporter", "source") != "source":
            continue
        if labels.get("destination_service") not in (CATALOG_SERVICE, "catalog"):
            continue
        version = labels.get("destination_version")
        if version is None:
            continue
        seen = True
        c = counts.setdefault(version or "?", [0.0, 0.0])
        c[0] += value
        if is_success(labels.get("response_code")):
            c[1] += value
    return counts if seen else None


def gauge(samples, name, **labels):
    """Sum of the series called `name` whose labels include `labels`, or None if there is none."""
    vals = [v for n, ls, v in samples
            if n == name and all(ls.get(k) == want for k, want in labels.items())]
    return sum(vals) if vals else None


# ------------------------------------------------------------------------------------------------
# Child processes


class Child:
    """A process the demo started, in its own process group, with its output in log files."""

    def __init__(self, kind, name, argv, log, out=None, pass_fds=()):
        self.kind = kind            # "control plane", "sidecar", "app", "prometheus"
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log = log              # stderr
        self.out = out or log       # stdout
        self.addr = {}              # listener name -> "ip:port"
        with open(self.log, "ab") as err_f, open(self.out, "ab") as out_f:
            try:
                self.popen = subprocess.Popen(
                    self.argv, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                    env=child_env(), close_fds=True, pass_fds=pass_fds, start_new_session=True,
                    preexec_fn=_child_setup)
            except OSError as e:
                raise DemoError(f"cannot start {self.title}: {self.argv[0]}: {e}") from None
        self.pid = self.popen.pid

    def read_log(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    @property
    def title(self):
        return f"{self.kind} {self.name}"

    def alive(self):
        return self.popen.poll() is None

    def tail(self, n=12):
        lines = self.read_log().splitlines()
        picked = [line for line in lines if line.strip()][-n:]
        return "\n".join(f"    | {line}" for line in picked) or "    | (empty log)"

    def died(self, when):
        return DemoError(f"{self.title} (pid {self.pid}) exited with status "
                         f"{self.popen.returncode} {when}; last log lines:\n"
                         f"{self.tail()}")

    def wait_listening(self, name, timeout=START_TIMEOUT):
        """Waits for `listening name=NAME address=IP:PORT` in the log; returns IP:PORT."""
        rx = re.compile(rf"listening name={re.escape(name)} address=(\S+)")
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.read_log())
            if m:
                self.addr[name] = m.group(1)
                return m.group(1)
            if not self.alive():
                raise self.died(f"before listening ({name})")
            if time.monotonic() >= deadline:
                raise DemoError(f"{self.title} (pid {self.pid}) printed no 'listening "
                                f"name={name}' line within {timeout:.0f}s; last log lines:\n"
                                f"{self.tail()}")
            time.sleep(0.05)

    def signal_group(self, sig):
        """Signals the child's process group (the child and anything it started). Only while the
        child is not reaped yet, so that a reused PID is never signalled."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.popen.send_signal(sig)


# ------------------------------------------------------------------------------------------------
# Load generator


class Load:
    """`workers` threads sending GET / with Host: frontend to frontend's sidecar at a fixed total
    rate, one keep-alive connection each, a timeout on every request. Counts answers by the
    catalog version named in frontend's answer (the load generator's own view of the split)."""

    def __init__(self, addr, rate, workers):
        self.addr = addr
        self.rate = rate
        self.workers = workers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.issued = 0
        self.sent = 0
        self.ok = 0
        self.by_version = {}        # version -> [answers, successes]
        self.errors = 0
        self.last_error = ""
        self.threads = []
        self.t0 = None

    def start(self):
        self.t0 = time.monotonic()
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            t.start()
            self.threads.append(t)

    def snapshot(self):
        with self.lock:
            return {"sent": self.sent, "ok": self.ok, "errors": self.errors,
                    "by_version": {v: list(c) for v, c in self.by_version.items()}}

    def _record(self, status, version, error=None):
        with self.lock:
            self.sent += 1
            if status is not None and status < 500:
                self.ok += 1
            if version is not None:
                c = self.by_version.setdefault(version, [0, 0])
                c[0] += 1
                if status is not None and status < 500:
                    c[1] += 1
            if error:
                self.errors += 1
                self.last_error = error

    def _run(self):
        # Signals are for the main thread, which stops everything.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        host, _, port = self.addr.rpartition(":")
        conn = None
        while not self.stop.is_set():
            with self.lock:
                i = self.issued
                self.issued += 1
            due = self.t0 + i / self.rate
            delay = due - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                break
            # A W3C trace context per request: the sidecars (and app.py, which copies it on)
            # join every hop of this request into one trace.
            trace = {"traceparent": f"00-{random.getrandbits(128):032x}-"
                                    f"{random.getrandbits(64):016x}-01"}
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
                conn.request("GET", "/", headers={"Host": "frontend", **trace})
                r = conn.getresponse()
                body = r.read()
                if r.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                if not self.stop.is_set():
                    self._record(None, None, f"GET http://{self.addr}/ (Host: frontend): "
                                             f"{e.__class__.__name__}: {e}")
                continue
            version, error = None, None
            try:
                answer = json.loads(body)
                inner = answer.get("catalog") or {}
                version = inner.get("version")
                error = answer.get("error")
                if inner.get("error"):
                    error = f"{error}: catalog {version}: {inner['error']}"
            except (ValueError, AttributeError):
                error = body[:200].decode("utf-8", "replace").strip()
            self._record(r.status, version,
                         None if r.status < 500 else f"frontend answered {r.status}: {error}")
        if conn is not None:
            conn.close()


# ------------------------------------------------------------------------------------------------
# The demo


class Demo:
    def __init__(self, args):
        self.args = args
        self.bin = os.path.abspath(args.bin_dir)
        self.tmp = None
        self.children = []
        self.stopping = False
        self.load = None
        self.sidecars = {}          # workload name -> Child
        self.apps = {}
        self.control = None
        self.prometheus_url = None
        self.prometheus = None       # its "ip:port"
        self.tracing_flag_ok = True
        self.source = None          # "metrics" or "load generator", for the live lines
        self.phase_results = []

    # -- signals

    def on_signal(self, signum, _frame):
        if self.stopping:
            return
        self.stopping = True
        name = signal.Signals(signum).name
        raise Stopped(name, 128 + signum)

    # -- helpers

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def binary(self, name):
        return os.path.join(self.bin, name)

    def start(self, kind, name, argv, out=None, pass_fds=()):
        log = self.path("logs", f"{name}.log")
        out_path = self.path("logs", out) if out else None
        # Ctrl-C is held back from the fork until the child is on self.children, so that
        # cleanup() always knows every process there is.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            c = Child(kind, name, argv, log, out_path, pass_fds)
            self.children.append(c)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        return c

    def cli(self, *args, show=False, timeout=20):
        """Runs the outrigger CLI; returns its stdout. A failure names the command."""
        argv = [self.binary("outrigger"), *[str(a) for a in args]]
        if show:
            say("  $ " + " ".join(self._short(a) for a in ["outrigger", *argv[1:]]))
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                               env=child_env(), stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DemoError(f"`outrigger {' '.join(argv[1:3])}` did not finish within "
                            f"{timeout}s") from None
        if r.returncode != 0:
            raise DemoError(f"`{' '.join(self._short(a) for a in argv)}` exited with status "
                            f"{r.returncode}: {(r.stderr or r.stdout).strip()}")
        if show:
            for line in r.stdout.strip().splitlines():
                say(f"    {self._short(line)}")
        return r.stdout

    def _short(self, text):
        return text.replace(self.tmp + "/", "$TMP/") if self.tmp else text

    def check_children(self, when):
        for c in self.children:
            if not c.alive():
                raise c.died(when)

    def poll(self, fn, timeout, what, who=None):
        """Calls fn() until it returns something truthy; DemoError naming `what` on timeout, or
        as soon as `who` (a Child) exits."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                v = fn()
                if v:
                    return v
                last = f"last result: {v!r}"
            except (OSError, http.client.HTTPException, ValueError) as e:
                last = f"last error: {e.__class__.__name__}: {e}"
            if who is not None and not who.alive():
                raise who.died(f"while waiting for {what}")
            if time.monotonic() >= deadline:
                detail = f"\n  last log lines of {who.title}:\n{who.tail()}" \
                    if who is not None else ""
                raise DemoError(f"timed out after {timeout:.0f}s waiting for {what} "
                                f"({last}){detail}")
            time.sleep(0.1)

    # -- the steps

    def run(self):
        a = self.args
        for b in ("outrigger-proxy", "outrigger-control", "outrigger"):
            if not os.access(self.binary(b), os.X_OK):
                raise DemoError(f"{self.binary(b)} is missing: build it (scripts/demo without "
                                f"--no-build, or cmake --build build --target outrigger-proxy "
                                f"outrigger-control outrigger), or give --bin-dir")
        self.tmp = tempfile.mkdtemp(prefix="outrigger-shop.")
        os.makedirs(self.path("logs"))
        os.makedirs(self.path("tokens"))
        say(f"demo: temp dir {self.tmp} (logs in $TMP/logs; removed at exit)")

        step("control plane: outrigger-control with the mesh CA and a copy of examples/shop/*.yaml")
        policy = self.path("policy")
        os.makedirs(policy)
        files = sorted(glob.glob(os.path.join(SHOP, "*.yaml")))
        if not files:
            raise DemoError(f"no policy files (*.yaml) in {SHOP}")
        for f in files:
            shutil.copy(f, policy)
        say(f"  policy: {', '.join(os.path.basename(f) for f in files)} -> $TMP/policy/")
        ca_dir = self.path("ca")
        self.control = self.start("control plane", "outrigger-control", [
            self.binary("outrigger-control"), "--policy", policy, "--ca-dir", ca_dir,
            "--xds", f"{LOOPBACK}:0", "--admin", f"{LOOPBACK}:0", "--debounce", "50ms"])
        xds = self.control.wait_listening("xds")
        cp_admin = self.control.wait_listening("admin")
        self.poll(lambda: http_get(cp_admin, "/ready")[0] == 200, START_TIMEOUT,
                  "the control plane's /ready", self.control)
        say(f"  outrigger-control (pid {self.control.pid}): xds {xds}, admin {cp_admin}, "
            f"CA in $TMP/ca")
        ca_bundle = os.path.join(ca_dir, "ca.pem")
        self.poll(lambda: os.path.exists(ca_bundle), START_TIMEOUT, f"{ca_bundle}",
                  self.control)

        step("join tokens: outrigger token create, one per service")
        tokens = {}
        for service in sorted({w[1] for w in WORKLOADS}):
            token = self.cli("token", "create", "--ca-dir", ca_dir, "--service", service).strip()
            if not token:
                raise DemoError(f"`outrigger token create --service {service}` printed nothing")
            tokens[service] = self.path("tokens", f"{service}.token")
            fd = os.open(tokens[service], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
            say(f"  {service:<10} -> $TMP/tokens/{service}.token "
                f"(spiffe://cluster.local/ns/default/sa/{service})")

        step("workloads: one outrigger-proxy sidecar and one app (examples/shop/app.py) each")
        for name, service, version, role in WORKLOADS:
            self.start_workload(name, service, version, role, xds, ca_bundle, tokens[service])

        step("waiting until every sidecar is ready and frontend reaches catalog v1 and v2")
        for name, sc in self.sidecars.items():
            self.poll(lambda sc=sc: http_get(sc.addr["admin"], "/ready")[0] == 200,
                      START_TIMEOUT, f"sidecar {name}'s /ready (admin {sc.addr['admin']})", sc)
        say("  every sidecar answers /ready")
        front_in = self.sidecars["frontend"].addr["inbound"]
        front_admin = self.sidecars["frontend"].addr["admin"]

        def end_to_end():
            self.check_children("during start-up")
            status, body = http_get(front_in, "/", timeout=REQUEST_TIMEOUT,
                                    headers={"Host": "frontend"})
            if status != 200:
                raise ValueError(f"frontend answered {status}: {body[:200].strip()}")
            return body
        body = self.poll(end_to_end, START_TIMEOUT,
                         f"a 200 from GET / through frontend's sidecar ({front_in})")
        say(f"  GET http://{front_in}/ (Host: frontend) -> 200 {body.strip()[:150]}")

        def hosts_known():
            samples = parse_metrics(http_get(front_admin, "/metrics")[1])
            hosts = [gauge(samples, "outrigger_cluster_hosts", cluster=f"catalog-{v}.default")
                     for v in ("v1", "v2")]
            if None in hosts:
                return "unknown"    # a proxy without the metric: the 200 above must do
            return all(h >= 1 for h in hosts)
        if self.poll(hosts_known, START_TIMEOUT,
                     "frontend's sidecar to know endpoints of catalog-v1 and catalog-v2") is True:
            say("  frontend's sidecar has endpoints for catalog-v1.default and catalog-v2.default")

        if not a.no_prometheus:
            self.start_prometheus(cp_admin)

        step(f"traffic: {a.rate:g} requests/s to frontend ({a.workers} workers, keep-alive, "
             f"{REQUEST_TIMEOUT:g}s timeout each), {a.phase_seconds:g}s per phase")
        say("  every second: calls from frontend's sidecar to catalog, by the version that "
            "answered (rate, and share of answers < 500)")
        self.load = Load(front_in, a.rate, a.workers)
        self.load.start()

        canary_args = ["--control-plane", xds, "--ca-bundle", ca_bundle]
        for i, (w1, w2) in enumerate(PHASES, 1):
            label = f"catalog-v1={w1} catalog-v2={w2}"
            step(f"phase {i}/{len(PHASES)}: {label}")
            if i > 1:
                self.cli("canary", "catalog", f"catalog-v1={w1}", f"catalog-v2={w2}",
                         *canary_args, show=True)
            else:
                say("  (the split written in catalog-route.yaml)")
            self.run_phase(i, label, a.phase_seconds)

        self.summary()

        if a.keep_running:
            step("--keep-running: everything stays up with traffic at the last split; "
                 "Ctrl-C stops it all")
            say(f"  frontend:   curl -H 'Host: frontend' http://{front_in}/")
            for name, sc in self.sidecars.items():
                say(f"  {name:<11} sidecar admin http://{sc.addr['admin']}/metrics, "
                    f"outbound {sc.addr['outbound']}")
            say(f"  control plane admin http://{cp_admin}/metrics")
            say(f"  {self.binary('outrigger')} proxy-status {' '.join(canary_args)}")
            say(f"  {self.binary('outrigger')} canary catalog catalog-v1=80 catalog-v2=20 "
                f"{' '.join(canary_args)}")
            if self.prometheus_url:
                say(f"  Prometheus {self.prometheus_url}")
            self.run_phase(None, "keep-running", None)

        if self.load.snapshot()["ok"] == 0:
            raise DemoError(f"no request through frontend succeeded; last error: "
                            f"{self.load.last_error or '(none)'}")

    def start_workload(self, name, service, version, role, xds, ca_bundle, token_file):
        a = self.args
        # The app's port is bound here and handed to the app as a listening socket, so that the
        # sidecar (started first, --app) and the app (--sidecar) can each be told the other's
        # address with no race for a port.
        app_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            app_sock.bind((LOOPBACK, 0))
            app_sock.listen(128)
            app_addr = f"{LOOPBACK}:{app_sock.getsockname()[1]}"
            argv = [self.binary("outrigger-proxy"), "--control-plane", xds,
                    "--service", service, "--label", f"app={service}",
                    "--label", f"version={version}",
                    "--inbound", f"{LOOPBACK}:0", "--outbound", f"{LOOPBACK}:0",
                    "--app", app_addr, "--admin", f"{LOOPBACK}:0",
                    "--ca-bundle", ca_bundle, "--join-token-file", token_file,
                    "--concurrency", "1", "--drain-timeout", "1s", "--access-log", "stdout"]
            sc = self.start_sidecar(name, argv)
            inbound = sc.wait_listening("inbound")
            outbound = sc.wait_listening("outbound")
            admin = sc.wait_listening("admin")
            say(f"  sidecar {name:<11} (pid {sc.pid}): inbound {inbound}, outbound {outbound}, "
                f"admin {admin}  [--service {service} --label app={service} "
                f"--label version={version}]")
            app_argv = [sys.executable, os.path.join(SHOP, "app.py"), "--role", role,
                        "--version", version, "--listen-fd", str(app_sock.fileno())]
            if role != "inventory":
                app_argv += ["--sidecar", outbound]
            if name == "catalog-v2":
                app_argv += ["--delay-ms", a.v2_delay_ms, "--fail-percent", a.v2_fail_percent]
            if role == "inventory":
                app_argv += ["--fail-percent", a.inventory_fail_percent]
            app = self.start("app", name, app_argv, pass_fds=(app_sock.fileno(),))
        finally:
            app_sock.close()
        app.wait_listening("app")
        extra = ""
        if name == "catalog-v2":
            extra = f"  [+{a.v2_delay_ms:g}ms, fails {a.v2_fail_percent:g}% of requests]"
        elif role == "inventory":
            extra = f"  [503 on {a.inventory_fail_percent:g}% of requests, retried by the mesh]"
        say(f"  app     {name:<11} (pid {app.pid}): {app_addr}, role {role} {version}{extra}")
        self.sidecars[name] = sc
        self.apps[name] = app

    def start_sidecar(self, name, argv):
        """Starts a sidecar, with --tracing-endpoint when a collector was given; a proxy that
        does not know that flag yet is started again without it (once noted, never retried)."""
        tracing = self.args.tracing_endpoint
        if tracing and self.tracing_flag_ok:
            sc = self.start("sidecar", name, argv + ["--tracing-endpoint", tracing],
                            out=f"{name}.access.log")
            deadline = time.monotonic() + START_TIMEOUT
            while sc.alive() and "listening name=admin" not in sc.read_log() \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            if sc.alive():
                return sc
            text = sc.read_log()
            if "tracing_endpoint" not in text and "tracing-endpoint" not in text:
                raise sc.died("before listening")
            say(f"  note: this outrigger-proxy does not know --tracing-endpoint yet; sidecars run "
                f"without tracing")
            self.tracing_flag_ok = False
            self.children.remove(sc)
            os.replace(sc.log, sc.log + ".tracing-refused")
        return self.start("sidecar", name, argv, out=f"{name}.access.log")

    def start_prometheus(self, cp_admin):
        if not os.access(PROMETHEUS, os.X_OK):
            say(f"\n(Prometheus: {PROMETHEUS} not found, skipped; scripts/setup installs it)")
            return
        step("Prometheus: scraping every sidecar's and the control plane's /metrics every 1s")
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 900ms",
                 "  evaluation_interval: 1s", "scrape_configs:",
                 "  - job_name: outrigger-proxy", "    static_configs:"]
        for name, sc in self.sidecars.items():
            lines += [f"      - targets: ['{sc.addr['admin']}']",
                      f"        labels: {{workload: '{name}'}}"]
        lines += ["  - job_name: outrigger-control", "    static_configs:",
                  f"      - targets: ['{cp_admin}']"]
        config = self.path("prometheus.yml")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        last = None
        for attempt in range(3):   # the port is picked before Prometheus binds it: retry a race
            port = free_port()
            addr = f"{LOOPBACK}:{port}"
            prom = self.start("prometheus", f"prometheus-{attempt}", [
                PROMETHEUS, f"--config.file={config}",
                f"--storage.tsdb.path={self.path('prometheus-data')}",
                f"--web.listen-address={addr}", "--log.level=warn"])
            try:
                self.poll(lambda: http_get(addr, "/-/ready")[0] == 200, START_TIMEOUT,
                          f"Prometheus /-/ready on {addr}", prom)
            except DemoError as e:
                last = e
                prom.signal_group(signal.SIGKILL)
                prom.popen.wait(5)
                self.children.remove(prom)
                continue
            self.prometheus_url = f"http://{addr}"
            self.prometheus = addr
            say(f"  prometheus (pid {prom.pid}): {self.prometheus_url}   "
                f"(config $TMP/prometheus.yml; {len(self.sidecars)} sidecars + the control plane)")
            say(f"  try: {self.prometheus_url}/graph?g0.expr="
                f"{urllib.parse.quote(PROM_QUERY)}&g0.tab=0")
            return
        say(f"  Prometheus did not start, going on without it: {last}")

    def read_catalog_counts(self):
        try:
            text = http_get(self.sidecars["frontend"].addr["admin"], "/metrics")[1]
        except (OSError, http.client.HTTPException):
            return None
        return catalog_counts(parse_metrics(text))

    def run_phase(self, index, label, seconds):
        """Prints one line per second until `seconds` pass (None: until Ctrl-C); records the
        phase's per-version totals."""
        load = self.load
        start_m = prev_m = self.read_catalog_counts()
        start_l = prev_l = load.snapshot()
        t_start = prev_t = time.monotonic()
        tick = 0
        while seconds is None or tick < seconds:
            tick += 1
            # Sleep to the next whole second of the phase (drift-free).
            time.sleep(max(0.0, t_start + tick - time.monotonic()))
            self.check_children(f"during {'phase ' + str(index) if index else label}")
            now = time.monotonic()
            cur_m = self.read_catalog_counts()
            cur_l = load.snapshot()
            dt = max(now - prev_t, 1e-6)
            say(self.live_line(tick, dt, prev_m, cur_m, prev_l, cur_l))
            prev_m, prev_l, prev_t = cur_m, cur_l, now
        if index is None:
            return
        from_metrics = start_m is not None and prev_m is not None
        delta = diff_counts(start_m, prev_m) if from_metrics else \
            diff_counts(start_l["by_version"], prev_l["by_version"])
        sent = prev_l["sent"] - start_l["sent"]
        self.phase_results.append((index, label, delta, from_metrics))
        total = sum(c[0] for c in delta.values()) or 1
        parts = []
        for v in ("v1", "v2"):
            n, ok = delta.get(v, [0, 0])
            rate = f"{100.0 * ok / n:.1f}% ok" if n else "no answers"
            parts.append(f"{v} {int(n)} ({100.0 * n / total:.0f}%, {rate})")
        src = "frontend sidecar /metrics" if from_metrics else "load generator"
        say(f"phase {index}/{len(PHASES)} {label}: {sent} requests; {', '.join(parts)} "
            f"[{src}]")

    def live_line(self, tick, dt, prev_m, cur_m, prev_l, cur_l):
        if prev_m is not None and cur_m is not None:
            delta, src = diff_counts(prev_m, cur_m), "sidecar"
        else:
            if self.source != "load generator":
                self.source = "load generator"
                say("  (frontend's sidecar reports no destination_version on "
                    f"{REQUESTS_METRIC} yet: the lines below count frontend's answers, which "
                    "name the catalog version, as the load generator sees them)")
            delta, src = diff_counts(prev_l["by_version"], cur_l["by_version"]), "client"
        sent = (cur_l["sent"] - prev_l["sent"]) / dt
        cols = []
        for v in ("v1", "v2"):
            n, ok = delta.get(v, [0, 0])
            ok_s = f"{100.0 * ok / n:5.1f}% ok" if n else "    - ok"
            cols.append(f"catalog {v} {n / dt:5.1f}/s {ok_s}")
        err = ""
        failed = (cur_l["sent"] - cur_l["ok"]) - (prev_l["sent"] - prev_l["ok"])
        if failed:
            err = f" | {failed} failed"
        return f"  {tick:4d}s  sent {sent:5.1f}/s | {' | '.join(cols)}{err}  [{src}]"

    def summary(self):
        step("summary")
        load = self.load.snapshot()
        say(f"  requests sent to frontend: {load['sent']}, answered < 500: {load['ok']}"
            + (f", failed: {load['sent'] - load['ok']} (last: {self.load.last_error})"
               if load["sent"] != load["ok"] else ""))
        for index, label, delta, from_metrics in self.phase_results:
            cells = []
            for v in ("v1", "v2"):
                n, ok = delta.get(v, [0, 0])
                cells.append(f"{v} {int(n):5d}" + (f" ({100.0 * ok / n:5.1f}% ok)" if n
                                                    else "             "))
            say(f"  phase {index} {label:<27} {'  '.join(cells)}")
        m = self.read_catalog_counts()
        if m is not None:
            say("  frontend's sidecar, all calls to catalog.default (outrigger_requests_total, "
                "reporter=source):")
            for v in sorted(m):
                n, ok = m[v]
                say(f"    destination_version={v}: {int(n)} requests, "
                    f"{100.0 * ok / n if n else 0:.1f}% answered < 500")
        else:
            say(f"  frontend's sidecar does not label {REQUESTS_METRIC} with destination_version "
                "yet; as the load generator saw it:")
            for v in sorted(load["by_version"]):
                n, ok = load["by_version"][v]
                say(f"    catalog {v}: {n} answers, {100.0 * ok / n if n else 0:.1f}% < 500")
        if self.prometheus_url:
            say(f"  Prometheus ({self.prometheus_url}): {PROM_QUERY}")
            try:
                q = urllib.parse.urlencode({"query": PROM_QUERY})
                status, text = http_get(self.prometheus, f"/api/v1/query?{q}", timeout=5)
                res = json.loads(text)
                if status != 200 or res.get("status") != "success":
                    say(f"    query failed ({status}): {text[:300]}")
                elif not res["data"]["result"]:
                    say("    (empty result: no series with these labels yet)")
                for r in res.get("data", {}).get("result", []):
                    v = r["metric"].get("destination_version", "(none)")
                    say(f"    destination_version={v}: {float(r['value'][1]):.2f} requests/s")
            except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
                say(f"    query failed: {e.__class__.__name__}: {e}")

    # -- stopping

    def cleanup(self):
        self.stopping = True
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if self.load is not None:
            self.load.stop.set()
        alive = [c for c in self.children if c.alive()]
        for c in alive:
            c.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + GRACE
        for c in alive:
            try:
                c.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        killed = [c for c in alive if c.alive()]
        for c in killed:
            c.signal_group(signal.SIGKILL)
        for c in self.children:
            try:
                c.popen.wait(5)
            except subprocess.TimeoutExpired:
                say(f"demo: {c.title} (pid {c.pid}) did not exit even after SIGKILL")
        if alive:
            note = f" ({len(killed)} needed SIGKILL: " \
                   f"{', '.join(c.title for c in killed)})" if killed else ""
            say(f"\ndemo: stopped {len(alive)} processes{note}")
        for t in (self.load.threads if self.load else []):
            t.join(0.5)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            say(f"demo: removed {self.tmp}")


def diff_counts(before, after):
    """{version: [total, ok]} of after - before (None counts as empty)."""
    before = before or {}
    out = {}
    for v, (n, ok) in (after or {}).items():
        b = before.get(v, [0, 0])
        out[v] = [n - b[0], ok - b[1]]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See examples/shop/README.md.")
    ap.add_argument("--phase-seconds", type=float, default=12, metavar="N",
                    help="how long each canary phase runs (default 12)")
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"), metavar="DIR",
                    help="where outrigger-proxy, outrigger-control and outrigger are "
                         "(default build/bin)")
    ap.add_argument("--keep-running", action="store_true",
                    help="after the last phase, keep everything (and the traffic) running until "
                         "Ctrl-C")
    ap.add_argument("--no-prometheus", action="store_true",
                    help=f"do not start Prometheus even if {PROMETHEUS} exists")
    ap.add_argument("--tracing-endpoint", default="", metavar="URL",
                    help="a Zipkin collector (http://127.0.0.1:9411/api/v2/spans) for the "
                         "sidecars' spans")
    ap.add_argument("--rate", type=float, default=50, metavar="N",
                    help="requests/s to frontend (default 50)")
    ap.add_argument("--workers", type=int, default=4, metavar="N",
                    help="load generator threads (default 4)")
    ap.add_argument("--v2-delay-ms", type=float, default=20, metavar="MS",
                    help="latency catalog v2 adds to each answer (default 20)")
    ap.add_argument("--v2-fail-percent", type=float, default=5, metavar="P",
                    help="share of requests catalog v2 fails with 500 (default 5)")
    ap.add_argument("--inventory-fail-percent", type=float, default=2, metavar="P",
                    help="share of requests inventory fails with 503, retried by catalog's "
                         "sidecar (default 2)")
    args = ap.parse_args(argv)
    if args.phase_seconds <= 0 or args.rate <= 0 or args.workers < 1:
        ap.error("--phase-seconds and --rate must be > 0, --workers >= 1")
    if not 0 < args.rate <= 1000:
        ap.error("--rate: at most 1000 requests/s (this is a demo on a shared machine)")
    if args.tracing_endpoint and not re.match(r"^https?://(127\.0\.0\.1|localhost|\[::1\])[:/]",
                                              args.tracing_endpoint):
        ap.error("--tracing-endpoint: the demo sends traffic to 127.0.0.1 only "
                 "(http://127.0.0.1:PORT/api/v2/spans)")
    sys.stdout.reconfigure(line_buffering=True)

    demo = Demo(args)
    signal.signal(signal.SIGINT, demo.on_signal)
    signal.signal(signal.SIGTERM, demo.on_signal)
    code = 0
    try:
        try:
            demo.run()
        except DemoError as e:
            code = 1
            print(f"\ndemo: {e}", file=sys.stderr, flush=True)
    except Stopped as s:
        say(f"\ndemo: {s.signame}: stopping everything")
        code = s.code
    finally:
        demo.cleanup()
    if code == 0:
        say("demo: done")
    return code


if __name__ == "__main__":
    sys.exit(main())
