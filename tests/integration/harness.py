# Shared library for the integration tests: starts the real binaries (outrigger-proxy,
# outrigger-echo) on ephemeral loopback ports, collects their stderr/stdout in background threads,
# polls with deadlines (never sleeps to synchronise), parses /metrics, reads /proc memory figures,
# sends raw bytes, and runs a file's test functions in sequence with a PASS/FAIL report.
#
# Standard library only. Each test file does:
#     import harness as h
#     def test_something(): ...
#     if __name__ == "__main__": h.main([test_something, ...])
# and is run as `python3 tests/integration/test_X.py --bin-dir BUILD/bin`.

import argparse
import atexit
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

BIN_DIR = None          # set by main() from --bin-dir
LOOPBACK = "127.0.0.1"

_ALL_PROCS = []         # every process started in this run (killed at exit)
_TEST_PROCS = []        # processes started by the test that is running now
_TMP_ROOT = None        # per-run temporary directory

LISTEN_RE = re.compile(r"listening name=(\S+) address=(\S+)")

# Variables that would change how the binaries or curl behave behind the test's back.
_SCRUB_ENV_PREFIXES = ("OUTRIGGER_",)
_SCRUB_ENV_NAMES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy",
                    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "CURL_HOME"}

try:
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _LIBC = None


def _die_with_parent():
    # PR_SET_PDEATHSIG: if the test runner is killed (CTest timeout), its children die too.
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGKILL)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if k not in _SCRUB_ENV_NAMES and not k.startswith(_SCRUB_ENV_PREFIXES)}
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


# --------------------------------------------------------------------------------------------
# Deadlines


def poll_until(fn, timeout, what="condition", interval=0.01):
    """Calls fn() until it returns a truthy value (returned) or `timeout` seconds pass
    (AssertionError naming `what` and the last value / error seen)."""
    deadline = time.monotonic() + timeout
    last, last_exc = None, None
    while True:
        try:
            last = fn()
            if last:
                return last
            last_exc = None
        except Exception as e:  # keep polling: the thing may not be up yet
            last_exc = e
        now = time.monotonic()
        if now >= deadline:
            detail = f"last error: {last_exc!r}" if last_exc else f"last value: {last!r}"
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what} ({detail})")
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 1.5, 0.2)


# --------------------------------------------------------------------------------------------
# Processes


class Process:
    """A child process whose stderr and stdout lines are collected by background threads."""

    def __init__(self, name, argv, env=None):
        self.name = name
        self.argv = [str(a) for a in argv]
        self._cond = threading.Condition()
        self._stderr = []
        self._stdout = []
        self._eof = {"stdout": False, "stderr": False}
        self.listening = {}       # listener name -> "ip:port", from the `listening` lines
        self.signalled = False    # True once the test (or cleanup) sent a signal
        self.expect_exit = False  # a test that expects the process to exit sets this
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env if env is not None else clean_env(), close_fds=True,
            preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        _ALL_PROCS.append(self)
        _TEST_PROCS.append(self)
        for stream, lines, key in ((self.proc.stderr, self._stderr, "stderr"),
                                   (self.proc.stdout, self._stdout, "stdout")):
            t = threading.Thread(target=self._reader, args=(stream, lines, key), daemon=True,
                                 name=f"{name}-{key}")
            t.start()

    def _reader(self, stream, lines, key):
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                with self._cond:
                    lines.append(line)
                    if key == "stderr":
                        m = LISTEN_RE.search(line)
                        if m:
                            self.listening[m.group(1)] = m.group(2)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._eof[key] = True
                self._cond.notify_all()

    # -- state

    def alive(self):
        return self.proc.poll() is None

    @property
    def returncode(self):
        return self.proc.poll()

    def stderr_lines(self):
        with self._cond:
            return list(self._stderr)

    def stdout_lines(self):
        with self._cond:
            return list(self._stdout)

    def stderr_text(self):
        return "\n".join(self.stderr_lines())

    def tail(self, n=50):
        return self.stderr_lines()[-n:]

    # -- waiting

    def _wait_cond(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                v = pred()
                if v:
                    return v
                if self._eof["stderr"] and self._eof["stdout"] and self.proc.poll() is not None:
                    v = pred()
                    if v:
                        return v
                    raise AssertionError(
                        f"{self.name} exited with code {self.proc.returncode} while waiting for "
                        f"{what}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: timed out after {timeout:.1f}s waiting "
                                         f"for {what}")
                self._cond.wait(min(remaining, 0.1))

    def wait_for_listen(self, name, timeout=10):
        """Waits for `listening name=NAME address=IP:PORT` on stderr; returns "ip:port"."""
        return self._wait_cond(lambda: self.listening.get(name), timeout,
                               f"'listening name={name}' on stderr")

    def wait_for_stderr(self, regex, timeout=10):
        """Waits for a stderr line matching regex; returns the re.Match."""
        rx = re.compile(regex)

        def find():
            for line in self._stderr:
                m = rx.search(line)
                if m:
                    return m
            return None
        return self._wait_cond(find, timeout, f"stderr line matching {regex!r}")

    def access_log(self):
        """The JSON objects printed on stdout (access log lines), in order."""
        out = []
        for line in self.stdout_lines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
        return out

    def wait_for_access_log(self, pred, timeout=5, what="access log line"):
        """Polls the access log until a line satisfies pred; returns it."""
        def find():
            for entry in self.access_log():
                if pred(entry):
                    return entry
            return None
        try:
            return poll_until(find, timeout, what)
        except AssertionError as e:
            last = self.stdout_lines()[-5:]
            raise AssertionError(f"{e}; last stdout lines: {last}") from None

    def wait_eof(self, timeout=5):
        """Waits until both output pipes are closed (all lines collected), e.g. after exit."""
        self._wait_cond(lambda: self._eof["stderr"] and self._eof["stdout"], timeout,
                        "output pipes to close")

    def wait_exit(self, timeout):
        """Waits for the process to exit; returns its exit code (AssertionError on timeout)."""
        self.expect_exit = True
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} (pid {self.pid}) did not exit within "
                                 f"{timeout:.1f}s") from None

    # -- control

    def send_signal(self, sig):
        self.signalled = True
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self):
        if self.proc.poll() is None:
            self.signalled = True
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()
        return False

    def __repr__(self):
        return f"Process({self.name}, pid={self.pid})"


def _kill_all():
    for p in list(_ALL_PROCS):
        p.kill()
    if _TMP_ROOT and os.path.isdir(_TMP_ROOT):
        shutil.rmtree(_TMP_ROOT, ignore_errors=True)


atexit.register(_kill_all)


def bin_path(name):
    if BIN_DIR is None:
        raise RuntimeError("BIN_DIR not set (run through harness.main)")
    return os.path.join(BIN_DIR, name)


def start_echo(name, version="v1", extra_args=(), timeout=10):
    """Starts outrigger-echo on an ephemeral loopback port; `.address` is its "ip:port"."""
    argv = [bin_path("outrigger-echo"), "--listen", f"{LOOPBACK}:0", "--name", name,
            "--version", version, *extra_args]
    p = Process(f"echo[{name}]", argv)
    p.address = p.wait_for_listen("echo", timeout)
    return p


def start_proxy(args, env=None, listeners=None, timeout=10, name="proxy"):
    """Starts outrigger-proxy with args (env is added to a scrubbed copy of os.environ).
    Waits for the `listening` line of each listener in `listeners` (default: inbound/outbound/
    admin as named by the flags present); `.addr` maps listener name -> "ip:port"."""
    args = [str(a) for a in args]
    if listeners is None:
        listeners = [n for n in ("inbound", "outbound", "admin") if f"--{n}" in args]
    p = Process(name, [bin_path("outrigger-proxy"), *args], env=clean_env(env))
    p.addr = {}
    for n in listeners:
        p.addr[n] = p.wait_for_listen(n, timeout)
    return p


def start_inbound_proxy(app_addr, extra_args=(), concurrency=2, env=None):
    """The common inbound shape: --inbound 127.0.0.1:0 --app APP --admin 127.0.0.1:0."""
    return start_proxy(["--inbound", f"{LOOPBACK}:0", "--app", app_addr,
                        "--admin", f"{LOOPBACK}:0", "--concurrency", str(concurrency),
                        *extra_args], env=env)


def closed_port():
    """A loopback port nobody listens on (bound then released; good enough for tests)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((LOOPBACK, 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------------------------
# Temporary files


def tmp_dir():
    global _TMP_ROOT
    if _TMP_ROOT is None:
        _TMP_ROOT = tempfile.mkdtemp(prefix="outrigger-it-")
    return _TMP_ROOT


def write_temp(name, content):
    path = os.path.join(tmp_dir(), name)
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(path, mode) as f:
        f.write(content)
    return path


# --------------------------------------------------------------------------------------------
# HTTP


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


class Response:
    def __init__(self, status, reason, version, headers, body):
        self.status = status
        self.reason = reason
        self.version = version      # 10 or 11
        self.headers = headers      # list of (name, value), names as received
        self.body = body

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            raise AssertionError(f"response ({self.status}) is not JSON: {self.body[:300]!r}") \
                from None

    def __repr__(self):
        return f"Response({self.status}, {self.body[:200]!r})"


def _read_response(conn, method):
    r = conn.getresponse()
    body = r.read()
    return Response(r.status, r.reason, r.version, r.getheaders(), body)


def http_request(addr, path="/", method="GET", headers=None, body=None, timeout=10):
    """One request on a fresh connection. `headers` may include Host to override it."""
    host, port = split_addr(addr)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        return _read_response(conn, method)
    finally:
        conn.close()


class KeepAliveClient:
    """Several requests on ONE client connection; fails if the connection is replaced."""

    def __init__(self, addr, timeout=10):
        host, port = split_addr(addr)
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn.connect()
        self.sock = self.conn.sock

    def request(self, path="/", method="GET", headers=None, body=None):
        if self.conn.sock is None or self.conn.sock is not self.sock:
            raise AssertionError("the proxy closed the client keep-alive connection")
        self.conn.request(method, path, body=body, headers=headers or {})
        resp = _read_response(self.conn, method)
        return resp

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def wait_http_ok(url, deadline=10):
    """Polls url (http://IP:PORT/path) until it answers 200; `deadline` is seconds from now.
    Returns the Response."""
    m = re.match(r"^http://([^/]+)(/.*)?$", url)
    if not m:
        raise ValueError(f"bad url {url}")
    addr, path = m.group(1), m.group(2) or "/"

    def ok():
        r = http_request(addr, path, timeout=2)
        return r if r.status == 200 else None
    return poll_until(ok, deadline, f"200 from {url}")


def raw_request(addr, data, timeout=3.0):
    """Sends raw bytes on a new connection and reads until the peer closes or `timeout` seconds
    pass. Returns (response_bytes, connection_closed)."""
    host, port = split_addr(addr)
    s = socket.create_connection((host, port), timeout=timeout)
    chunks = []
    closed = False
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the peer may answer and close before reading everything; read what it sent
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            s.settimeout(remaining)
            try:
                b = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            chunks.append(b)
    finally:
        s.close()
    return b"".join(chunks), closed


def parse_http_response(data):
    """Parses one raw HTTP/1.x response -> (status, [(name, value)], body bytes), decoding a
    chunked body; a body without framing runs to the end of `data`."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"incomplete response head: {data[:300]!r}")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise AssertionError(f"bad status line: {lines[0]!r}")
    status = int(parts[1])
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    hmap = {k.lower(): v for k, v in headers}
    if "chunked" in hmap.get("transfer-encoding", "").lower():
        body, pos = [], 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                raise AssertionError("truncated chunked body")
            size = int(rest[pos:eol].split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                break
            body.append(rest[pos:pos + size])
            pos += size + 2
        return status, headers, b"".join(body)
    if "content-length" in hmap:
        return status, headers, rest[:int(hmap["content-length"])]
    return status, headers, rest


def try_connect(addr, timeout=1.0):
    """True if a TCP connection to addr is accepted, False if refused."""
    host, port = split_addr(addr)
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return False
    s.close()
    return True


def curl(*args, timeout=30, input=None):
    """Runs the real curl (-sS, proxies from the environment ignored). Returns CompletedProcess
    with bytes stdout/stderr."""
    # -q (first) ignores ~/.curlrc.
    cmd = ["curl", "-q", "-sS", "--max-time", str(timeout), *[str(a) for a in args]]
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout + 10, input=input,
                              env=clean_env())
    except subprocess.TimeoutExpired:
        raise AssertionError(f"curl did not finish: {cmd}") from None


def curl_json(*args, timeout=30):
    """curl that must succeed (exit 0) and print a JSON body; returns (http_code, obj)."""
    r = curl("-w", "\n%{http_code}", *args, timeout=timeout)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, f"curl {args} exited {r.returncode}: {r.stderr.decode()[-500:]}"
    body, _, code = out.rpartition("\n")
    try:
        obj = json.loads(body) if body.strip() else None
    except ValueError:
        obj = None
    return int(code), obj, body


# --------------------------------------------------------------------------------------------
# Echo helpers


def echo_header(echo_body, name):
    """A request header as the echo saw it (None if absent). Accepts {name: value},
    {name: [values]} or [[name, value], ...] shapes; several values are joined with ", "."""
    hs = echo_body.get("headers", {})
    name = name.lower()
    vals = []
    if isinstance(hs, dict):
        for k, v in hs.items():
            if k.lower() == name:
                vals.extend(v if isinstance(v, list) else [v])
    elif isinstance(hs, list):
        for item in hs:
            if isinstance(item, (list, tuple)) and len(item) == 2 and item[0].lower() == name:
                vals.append(item[1])
            elif isinstance(item, dict) and str(item.get("name", "")).lower() == name:
                vals.append(item.get("value"))
    if not vals:
        return None
    return ", ".join(str(v) for v in vals)


def echo_stats(echo_addr):
    r = http_request(echo_addr, "/_echo/stats", timeout=5)
    assert r.status == 200, f"/_echo/stats answered {r.status}"
    return r.json()


class EchoRequestCounter:
    """Counts requests an echo served since creation, not counting our own /_echo/stats calls
    (whether or not the echo counts those: calibrated with two back-to-back calls)."""

    def __init__(self, echo_addr):
        self.addr = echo_addr
        a = echo_stats(echo_addr)["requests"]
        b = echo_stats(echo_addr)["requests"]
        self.per_call = b - a
        assert self.per_call in (0, 1), f"echo request count moved by {b - a} while idle"
        self.base = b
        self.calls = 0

    def delta(self):
        cur = echo_stats(self.addr)["requests"]
        self.calls += 1
        return cur - self.base - self.calls * self.per_call


# --------------------------------------------------------------------------------------------
# Metrics and memory

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _unescape(v):
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), v)


def parse_prometheus(text):
    """Prometheus text format -> {(name, frozenset({(label, value), ...})): float}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise AssertionError(f"unparseable metrics line: {line!r}")
        name, labels_s, value_s = m.groups()
        labels = {}
        if labels_s:
            pos = 0
            while pos < len(labels_s):
                lm = _LABEL_RE.match(labels_s, pos)
                if not lm or lm.end() == pos:
                    raise AssertionError(f"unparseable labels in metrics line: {line!r}")
                labels[lm.group(1)] = _unescape(lm.group(2))
                pos = lm.end()
        try:
            value = float(value_s)
        except ValueError:
            raise AssertionError(f"bad metric value in line: {line!r}") from None
        out[(name, frozenset(labels.items()))] = value
    return out


def metrics(admin_addr):
    r = http_request(admin_addr, "/metrics", timeout=5)
    assert r.status == 200, f"/metrics answered {r.status}"
    return parse_prometheus(r.text())


def series(m, name, **labels):
    """[(labels_dict, value)] of the series called `name` whose labels include `labels`."""
    want = set(labels.items())
    return [(dict(ls), v) for (n, ls), v in m.items() if n == name and want <= ls]


def metric_sum(m, name, **labels):
    """Sum over matching series, or None when no series matches."""
    s = series(m, name, **labels)
    return sum(v for _, v in s) if s else None


def wait_metric(admin_addr, name, pred, timeout=5, **labels):
    """Polls /metrics until pred(sum of the matching series) holds (a missing series counts as
    None); returns that sum."""
    state = {}

    def check():
        m = metrics(admin_addr)
        v = metric_sum(m, name, **labels)
        state["v"] = v
        state["similar"] = [(dict(ls), val) for (n, ls), val in m.items() if n == name][:12]
        return (v,) if pred(v) else None
    try:
        return poll_until(check, timeout, f"metric {name}{labels}")[0]
    except AssertionError as e:
        raise AssertionError(f"{e}; value={state.get('v')!r}; series named {name}: "
                             f"{state.get('similar')}") from None


def _proc_status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def rss_kb(pid):
    return _proc_status_kb(pid, "VmRSS")


def hwm_kb(pid):
    return _proc_status_kb(pid, "VmHWM")


def memory_sanitized(pid):
    """True when the process runs under ASan/TSan, whose shadow memory makes RSS meaningless."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
    except OSError:
        return False
    return "libasan" in maps or "libtsan" in maps


# --------------------------------------------------------------------------------------------
# Bodies: a deterministic pattern whose FNV-1a 64 is cheap to compute for any size.

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1


def fnv1a64(data, h=FNV_OFFSET):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & _MASK64
    return h


class PatternBody:
    """`size` bytes in blocks of `block` bytes: each block starts with a 16-byte header (block
    number and a mix of it) followed by zeros. Zeros make FNV-1a a multiplication by a power of
    the prime, so the hash of 100 MiB takes milliseconds in Python, while moved, lost or
    duplicated blocks still change it."""

    def __init__(self, size, block=64 * 1024):
        assert block >= 16
        self.size = size
        self.block = block

    def _header(self, i):
        return (i + 1).to_bytes(8, "big") + (((i + 1) * 0x9E3779B97F4A7C15) & _MASK64).to_bytes(
            8, "little")

    def blocks(self):
        zeros = bytes(self.block - 16)
        off, i = 0, 0
        while off < self.size:
            n = min(self.block, self.size - off)
            yield (self._header(i) + zeros)[:n]
            off += n
            i += 1

    def write_file(self, path):
        with open(path, "wb") as f:
            for b in self.blocks():
                f.write(b)
        return path

    def fnv1a64(self):
        h = FNV_OFFSET
        full_zero_pow = pow(FNV_PRIME, self.block - 16, 1 << 64)
        off, i = 0, 0
        while off < self.size:
            n = min(self.block, self.size - off)
            hdr = self._header(i)[:n]
            h = fnv1a64(hdr, h)
            nz = n - len(hdr)
            if nz:
                p = full_zero_pow if nz == self.block - 16 else pow(FNV_PRIME, nz, 1 << 64)
                h = (h * p) & _MASK64
            off += n
            i += 1
        return h


def parse_hex(s):
    return int(str(s), 16)


# --------------------------------------------------------------------------------------------
# Runner


_CRASH_RE = re.compile(r"ERROR: (Address|Thread|Memory|Leak)Sanitizer|runtime error:|"
                       r"Segmentation fault|terminate called|Assertion .* failed|Check failed")


def _dump_processes(procs):
    for p in procs:
        rc = p.proc.poll()
        print(f"    --- {p.name} pid={p.pid} exit={rc} argv={' '.join(p.argv)}")
        lines = p.stderr_lines()
        tail_start = max(0, len(lines) - 50)
        # A sanitizer report's first lines say what happened; its end is only stack frames.
        first_crash = next((i for i, l in enumerate(lines) if _CRASH_RE.search(l)), None)
        if first_crash is not None and first_crash < tail_start:
            for line in lines[first_crash:first_crash + 12]:
                print(f"    | {line}")
            print("    | ...")
        for line in lines[tail_start:]:
            print(f"    | {line}")


def _crashed(procs):
    """Processes that exited on their own although no test expected it: killed by a signal
    nobody sent (SIGSEGV, SIGABRT) or exited (a sanitizer report exits 1)."""
    return [p for p in procs
            if p.proc.poll() is not None and not p.signalled and not p.expect_exit]


def main(tests, argv=None):
    global BIN_DIR
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default=os.environ.get("OUTRIGGER_BIN_DIR", "BUILD/bin"),
                    help="directory holding outrigger-proxy and outrigger-echo")
    ap.add_argument("-k", dest="filter", default=None,
                    help="run only tests whose name contains this")
    ns = ap.parse_args(argv)
    # Let `timeout`, CTest or Ctrl-C end the run through atexit (children killed, temp removed).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    BIN_DIR = os.path.abspath(ns.bin_dir)
    selected = [t for t in tests if not ns.filter or ns.filter in t.__name__]

    missing = [b for b in ("outrigger-proxy", "outrigger-echo")
               if not os.access(os.path.join(BIN_DIR, b), os.X_OK)]
    if missing:
        print(f"missing binaries in {BIN_DIR}: {', '.join(missing)}")
        print(f"0 passed, {len(selected)} failed")
        sys.exit(1)
    if shutil.which("curl") is None:
        print("curl not found on PATH")
        print(f"0 passed, {len(selected)} failed")
        sys.exit(1)

    passed = failed = 0
    for t in selected:
        _TEST_PROCS.clear()
        t0 = time.monotonic()
        err = None
        try:
            t()
        except Exception as e:
            err = e
        procs = list(_TEST_PROCS)
        crashed = _crashed(procs)
        crash_note = ", ".join(
            f"{p.name} " + (f"killed by signal {-p.proc.returncode}" if p.proc.returncode < 0
                            else f"exited with code {p.proc.returncode}")
            for p in crashed)
        if err is None and crashed:
            err = AssertionError(f"process died during the test: {crash_note}")
        elif crashed:
            err = type(err)(f"{err} [process died during the test: {crash_note}]")
        dt = time.monotonic() - t0
        if err is None:
            passed += 1
            print(f"PASS {t.__name__} ({dt:.1f}s)", flush=True)
        else:
            failed += 1
            msg = str(err) or type(err).__name__
            print(f"FAIL {t.__name__} ({dt:.1f}s): {type(err).__name__}: {msg}")
            tb = traceback.extract_tb(err.__traceback__)
            for fr in tb[1:]:
                print(f"    at {os.path.basename(fr.filename)}:{fr.lineno} in {fr.name}: "
                      f"{fr.line}")
            _dump_processes(procs)
            sys.stdout.flush()
        for p in procs:
            p.kill()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
