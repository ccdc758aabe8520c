#!/usr/bin/env python3
"""HTTP/2 front-end benchmark: outrigger-proxy against nginx and HAProxy, in one run.

What it measures
  One upstream (outrigger-echo, one thread, HTTP/1.1) on 127.0.0.1, and in front of it, each
  with ONE worker/thread, accepting HTTP/2 over cleartext with prior knowledge (h2c) and
  forwarding every stream over keep-alive HTTP/1.1 upstream connections:
    nginx      `listen ... http2` (`http2 on` from 1.25.1), proxy_pass with proxy_http_version
               1.1 and an upstream keepalive pool as large as the number of concurrent streams
    haproxy    `bind ... proto h2`, mode http, backend with `http-reuse always`
    outrigger  outrigger-proxy --inbound (h2c with prior knowledge on every HTTP listener,
               streams forwarded over its pooled HTTP/1.1 upstream connections)
  h2load (nghttp2-client; -t1 -c10 -m10 by default: 10 connections, 10 concurrent streams
  each) loads each target in turn, after an unmeasured warm-up (h2load --warm-up-time). It
  reports per target streams/s (h2load's req/s), p50/p99/max request time computed from
  h2load's --log-file (one line per stream: start time, status, elapsed microseconds), h2load's
  mean, the streams/s ratio against the best peer, and h2load's failed/errored/timed-out streams
  and non-2xx statuses. Then outrigger / best peer for streams/s (goal >= 1.0, marked met or
  below, never asserted) and for p99 (lower is better). Everything runs on loopback on one
  machine, so the load generator, the proxies and the upstream share the CPUs: compare the
  targets with each other, not with numbers from another machine.

How to run (after scripts/setup and a build)
  bench/h2_compare.py --bin-dir build/bin                       # 10 s per target
  bench/h2_compare.py --bin-dir build/bin --rounds 3 --duration 8 --json out.json   # medians
  bench/h2_compare.py --bin-dir build/bin --smoke --require-peers   # CTest: 300 streams each
  -n N runs a fixed number of streams per target instead of --duration. See --help.

Exit status
  0 every requested target ran, h2load reported a result and every stream got a 2xx answer.
  1 a target could not be started (a missing nginx/haproxy, or one without HTTP/2, is only
    skipped unless --require-peers), h2load produced no result, or a target had failed,
    errored or timed-out streams or non-2xx statuses (in --smoke too). No figure (streams/s,
    latency, ratios) ever changes the exit status: the machines are shared and noisy.
  2 bad command line.

Process handling is http1_compare.py's: every process started here runs in its own process
group, gets SIGKILL if this script dies (PR_SET_PDEATHSIG) and is stopped on exit; every h2load
run has a deadline.
"""

import argparse
import contextlib
import json
import math
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Process handling (own group, killed with us, stderr tail, `listening` lines), free ports,
# retries on a taken port and the echo upstream are shared with the HTTP/1.1 benchmark.
import http1_compare as hb  # noqa: E402

HOST = hb.HOST
BenchError = hb.BenchError
log = hb.log

TARGET_ORDER = ("nginx", "haproxy", "outrigger")
PEERS = ("nginx", "haproxy")
RUN_SLACK_S = 30.0       # a timed h2load run is killed after warm-up + duration + this
REQUESTS_DEADLINE_S = 30.0  # a -n h2load run is killed after this (10 s with --smoke)
PROBE_TIMEOUT_S = 5.0    # one readiness probe (h2load -n 1)
SMOKE_REQUESTS = 300


# ---------------------------------------------------------------------------------------------
# HTTP/2 support of the peers.

def nginx_info(nginx):
    """(version tuple or None, version text, has the http_v2 module or None when unknown)."""
    try:
        out = subprocess.run([nginx, "-V"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None, "unknown", None
    text = out.stdout + out.stderr
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", text)
    version = tuple(int(x) for x in m.groups()) if m else None
    return version, (".".join(map(str, version)) if version else "unknown"), \
        "--with-http_v2_module" in text


def haproxy_info(haproxy):
    """(version text, has an HTTP/2 frontend mux or None when unknown)."""
    try:
        out = subprocess.run([haproxy, "-vv"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown", None
    text = out.stdout + out.stderr
    m = re.search(r"HAProxy version (\S+)", text)
    version = m.group(1) if m else "unknown"
    if "Available multiplexer protocols" not in text:
        return version, None
    # e.g. "h2 : mode=HTTP  side=FE|BE  mux=H2  flags=HTX|HOL_RISK|NO_UPG"
    return version, re.search(r"^\s*h2\s*:.*side=\S*FE", text, re.M) is not None


# ---------------------------------------------------------------------------------------------
# h2load.

_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_FINISHED_RE = re.compile(r"^finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req/s", re.M)
_REQUESTS_RE = re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                          r"(\d+) failed, (\d+) errored, (\d+) timeout", re.M)
_STATUS_RE = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.M)
_TIME_RE = re.compile(r"^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+"
                      r"([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", re.M)


def h2load_duration(seconds):
    return f"{max(1, round(seconds * 1000))}ms"  # h2load takes integers with a unit


def parse_h2load(out):
    """The summary of one h2load run, or None when h2load reported no result."""
    fin, req, st = _FINISHED_RE.search(out), _REQUESTS_RE.search(out), _STATUS_RE.search(out)
    if not fin or not req or not st:
        return None
    total, started, done, ok, failed, errored, timeout = (int(x) for x in req.groups())
    s2, s3, s4, s5 = (int(x) for x in st.groups())
    res = {
        "rps": float(fin.group(3)),
        "elapsed_s": float(fin.group(1)) * _UNITS_MS[fin.group(2)] / 1e3,
        "total": total, "started": started, "done": done, "succeeded": ok,
        "failed": failed, "errored": errored, "timeout": timeout,
        "status_2xx": s2, "non2xx": s3 + s4 + s5,
        "mean_ms": None,
    }
    t = _TIME_RE.search(out)
    if t:
        res["mean_ms"] = float(t.group(5)) * _UNITS_MS[t.group(6)]
    return res


def percentile(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, math.ceil(p / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def parse_log(path):
    """Per-stream log of h2load --log-file: start us since epoch, status (-1: failed stream),
    elapsed us. Returns latency figures over the streams that got a response, in ms."""
    lat_us, statuses = [], {"2xx": 0, "other": 0, "failed": 0}
    try:
        with open(path) as f:
            for line in f:
                cols = line.split("\t")
                if len(cols) < 3:
                    continue
                try:
                    status, elapsed = int(cols[1]), int(cols[2])
                except ValueError:
                    continue
                if status < 0:
                    statuses["failed"] += 1
                    continue
                statuses["2xx" if 200 <= status < 300 else "other"] += 1
                lat_us.append(elapsed)
    except OSError:
        return None
    if not lat_us:
        return None
    lat_us.sort()
    return {
        "logged": len(lat_us), "log_statuses": statuses,
        "p50_ms": percentile(lat_us, 50) / 1e3,
        "p90_ms": percentile(lat_us, 90) / 1e3,
        "p99_ms": percentile(lat_us, 99) / 1e3,
        "max_ms": lat_us[-1] / 1e3,
    }


def run_h2load(args, name, addr, workdir, *, requests=None, duration=None, warmup=0.0,
               log_file=True):
    """One bounded h2load run; returns (result or None, raw output). With log_file the result
    carries percentiles from the per-stream log."""
    argv = [args.h2load, f"-t{args.threads}", f"-c{args.connections}", f"-m{args.streams}"]
    if requests is not None:
        argv.append(f"-n{requests}")
        deadline = 10.0 if args.smoke else REQUESTS_DEADLINE_S
    else:
        argv += ["-D", h2load_duration(duration)]
        if warmup > 0:
            argv += ["--warm-up-time", h2load_duration(warmup)]
        deadline = warmup + duration + RUN_SLACK_S
    log_path = None
    if log_file:
        log_path = os.path.join(workdir, f"h2load-{name}.log")
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        argv.append(f"--log-file={log_path}")
    argv.append(f"http://{addr}/")
    try:
        p = hb._popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError as e:
        raise BenchError(f"{name}: cannot execute {args.h2load}: {e}") from e
    try:
        try:
            out, _ = p.communicate(timeout=deadline)
        except subprocess.TimeoutExpired:
            hb._stop(p)
            out, _ = p.communicate()
            out = (out or b"") + b"\n(h2load killed: ran past its deadline)"
    finally:
        hb._stop(p)  # a no-op unless we are unwinding (signal, error) with h2load still running
        if p in hb._PROCS:
            hb._PROCS.remove(p)
    text = out.decode("utf-8", "replace")
    res = parse_h2load(text) if p.returncode == 0 else None
    if res is not None and log_path:
        lat = parse_log(log_path)
        if lat is None:
            res = None
            text += f"\n(no response in the per-stream log {log_path})"
        else:
            res.update(lat)
    if log_path and not args.keep_tmp:
        with contextlib.suppress(OSError):
            os.unlink(log_path)
    if res is None:
        text += f"\n(h2load exit status {p.returncode}; command: {' '.join(argv)})"
    return res, text


def probe_h2(args, addr):
    """One GET / over h2c with prior knowledge: (answered 2xx, detail)."""
    argv = [args.h2load, "-n1", "-c1", "-m1", f"http://{addr}/"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                           stdin=subprocess.DEVNULL, env=hb._child_env(),
                           preexec_fn=hb._child_setup, start_new_session=True)
    except OSError as e:
        raise BenchError(f"cannot execute {args.h2load}: {e}") from e
    except subprocess.TimeoutExpired:
        return False, f"no answer within {PROBE_TIMEOUT_S:.0f}s"
    res = parse_h2load(r.stdout)
    if res and res["status_2xx"] == 1:
        return True, "ok"
    lines = [l for l in (r.stdout + r.stderr).splitlines()
             if l.strip() and not l.startswith(("progress", "spawning", "starting"))]
    return False, " / ".join(lines[-4:]) or f"exit status {r.returncode}"


def wait_h2_ok(args, proc, addr, timeout=hb.START_TIMEOUT_S):
    """Polls GET / over h2c until it answers 2xx; fails early if the process died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(proc.failure(f"exited before h2c GET http://{addr}/ answered 2xx"))
        ok, last = probe_h2(args, addr)
        if ok:
            return
        time.sleep(0.1)
    raise BenchError(proc.failure(f"h2c GET http://{addr}/ did not answer 2xx within "
                                  f"{timeout:.0f}s (last: {last})"))


# ---------------------------------------------------------------------------------------------
# The peers. Each start function returns (Proc, address to load).

def start_nginx(args, nginx, version, upstream, workdir):
    d = os.path.join(workdir, "nginx")
    os.makedirs(d, exist_ok=True)
    port = hb.free_port()
    temp_paths = [("client_body_temp_path", "client_body"), ("proxy_temp_path", "proxy")]
    for module in ("fastcgi", "uwsgi", "scgi"):  # a directive of a missing module is an error
        if hb._nginx_has_module(nginx, module):
            temp_paths.append((f"{module}_temp_path", module))
    temps = "\n".join(f"    {k} {os.path.join(d, v)};" for k, v in temp_paths)
    error_log = os.path.join(d, "error.log")
    # `listen ... http2` is deprecated from 1.25.1 in favour of `http2 on`.
    new_syntax = version is not None and version >= (1, 25, 1)
    listen = f"listen {HOST}:{port};\n        http2 on;" if new_syntax \
        else f"listen {HOST}:{port} http2;"
    # Every concurrent stream holds one upstream HTTP/1.1 connection: keep that many idle ones
    # (nginx's cache is the only one with a size). keepalive_requests: nginx closes a client
    # connection (HTTP/2 too, since 1.19.7) after 1000 requests by default, the others do not.
    pool = max(64, args.connections * args.streams + 16)
    conf = f"""# generated by bench/h2_compare.py
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
        keepalive {pool};
        keepalive_requests 1000000;
    }}
    server {{
        {listen}
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
    # master_process off: the one process is the worker, and it dies with us.
    proc = hb.Proc("nginx", [nginx, "-p", d + "/", "-e", error_log, "-c", cfg,
                             "-g", "daemon off; master_process off;"], extra_log=error_log)
    addr = f"{HOST}:{port}"
    wait_h2_ok(args, proc, addr)
    return proc, addr


def start_haproxy(args, haproxy, upstream, workdir):
    d = os.path.join(workdir, "haproxy")
    os.makedirs(d, exist_ok=True)
    port = hb.free_port()
    # HAProxy refuses to start when it cannot raise its fd limit to about 2 * maxconn: derive
    # maxconn from the hard limit instead of assuming one.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    room = 4096 if hard == resource.RLIM_INFINITY else (hard - 64) // 2
    maxconn = max(args.connections * args.streams + 16, min(4096, room))
    conf = f"""# generated by bench/h2_compare.py
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
    bind {HOST}:{port} proto h2
    default_backend bench_upstream

backend bench_upstream
    http-reuse always
    server app {upstream}
"""
    cfg = os.path.join(d, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(conf)
    proc = hb.Proc("haproxy", [haproxy, "-f", cfg, "-db"])
    addr = f"{HOST}:{port}"
    wait_h2_ok(args, proc, addr)
    return proc, addr


def start_outrigger(args, upstream):
    # http1_compare's: --concurrency 1, --access-log off, ready on /ready and GET / over
    # HTTP/1.1; then the same listener over h2c.
    proc, addr = hb.start_outrigger(args.bin_dir, upstream)
    wait_h2_ok(args, proc, addr)
    return proc, addr


def start_targets(args, report):
    """Starts the upstream and the front ends. Returns {target: address}."""
    addrs = {}
    if args.upstream:
        upstream = args.upstream
        try:
            hb.wait_http_ok(None, upstream, "/")
        except BenchError as e:
            raise BenchError(f"upstream (--upstream): {e}") from e
    else:
        _, upstream = hb.start_echo(args.bin_dir)
    report["upstream"] = upstream
    log(f"upstream at {upstream}")

    def skip(name, msg):
        if args.require_peers:
            raise BenchError(msg + "; --require-peers makes this a failure")
        log(f"SKIP {name}: {msg}")
        report["skipped"][name] = msg

    workdir = args.workdir
    for name in PEERS:
        if name not in args.targets:
            continue
        exe = getattr(args, name)
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            skip(name, f"{name} not found at {exe} (install it: scripts/setup)")
            continue
        if name == "nginx":
            version, text, h2 = nginx_info(exe)
            report["versions"]["nginx"] = text
            if h2 is False:
                skip(name, f"nginx {text} at {exe} was built without --with-http_v2_module "
                           f"(no HTTP/2)")
                continue

            def starter(exe=exe, version=version):
                return start_nginx(args, exe, version, upstream, workdir)
        else:
            text, h2 = haproxy_info(exe)
            report["versions"]["haproxy"] = text
            if h2 is False:
                skip(name, f"HAProxy {text} at {exe} has no HTTP/2 frontend multiplexer "
                           f"(haproxy -vv lists no 'h2 : ... side=FE')")
                continue

            def starter(exe=exe):
                return start_haproxy(args, exe, upstream, workdir)
        _, addrs[name] = hb.start_with_retries(name, starter)
        log(f"{name} at {addrs[name]} (h2c)")

    if "outrigger" in args.targets:
        proc, addrs["outrigger"] = start_outrigger(args, upstream)
        log(f"outrigger-proxy at {addrs['outrigger']} (h2c, pid {proc.pid})")
    return addrs


# ---------------------------------------------------------------------------------------------
# The run.

def error_summary(r):
    parts = []
    for key in ("failed", "errored", "timeout", "non2xx"):
        if r[key]:
            parts.append(f"{key}={r[key]}")
    # With -n, h2load's total is the number asked for: streams that neither succeeded nor
    # failed were never answered. With -D, total counts the streams started.
    unanswered = r["total"] - r["succeeded"] - r["failed"]
    if unanswered > 0:
        parts.append(f"unanswered={unanswered}")
    return ", ".join(parts)


def measure(args, addrs, report, failures):
    names = [t for t in TARGET_ORDER if t in addrs]
    runs = {t: [] for t in names}
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]  # rotate: no fixed slot
        for name in order:
            addr = addrs[name]
            if args.requests is not None:
                if args.warmup > 0:
                    run_h2load(args, name, addr, args.workdir, duration=args.warmup,
                               log_file=False)
                what = f"{args.requests} streams"
                res, text = run_h2load(args, name, addr, args.workdir, requests=args.requests)
            else:
                what = f"{args.duration:g}s"
                res, text = run_h2load(args, name, addr, args.workdir, duration=args.duration,
                                       warmup=args.warmup)
            log(f"round {rnd + 1}/{args.rounds}: {name} ({addr}) for {what}: "
                + (f"{res['rps']:.1f} streams/s, p99 {res['p99_ms']:.3f} ms" if res
                   else "no result"))
            if res is None:
                lines = [l for l in text.strip().splitlines() if not l.startswith("progress:")]
                tail = "\n".join("    | " + l for l in lines[-12:])
                failures.append(f"{name}: h2load produced no result (round {rnd + 1})\n{tail}")
                log(failures[-1])
                continue
            errs = error_summary(res)
            if res["status_2xx"] == 0:
                errs = ", ".join(filter(None, [errs, "no 2xx response"]))
            if errs:
                failures.append(f"{name}: errors during the run (round {rnd + 1}): {errs}")
                log(failures[-1])
            runs[name].append(res)
    return runs


def summarize(runs, report):
    results = report["targets"]
    for name, rs in runs.items():
        entry = {"runs": rs}
        if rs:
            med = lambda k: statistics.median(r[k] for r in rs)  # noqa: E731
            means = [r["mean_ms"] for r in rs if r["mean_ms"] is not None]
            entry.update({
                "rps": med("rps"), "p50_ms": med("p50_ms"), "p90_ms": med("p90_ms"),
                "p99_ms": med("p99_ms"), "max_ms": med("max_ms"),
                "mean_ms": statistics.median(means) if means else None,
                "streams": sum(r["succeeded"] for r in rs),
                "errors": sum(r["failed"] + r["errored"] + r["timeout"] for r in rs),
                "non2xx": sum(r["non2xx"] for r in rs),
            })
        results[name] = entry
    peers = {n: results[n] for n in PEERS if results.get(n, {}).get("rps")}
    best_rps = max(peers, key=lambda n: peers[n]["rps"]) if peers else None
    best_p99 = min(peers, key=lambda n: peers[n]["p99_ms"]) if peers else None
    for entry in results.values():
        base = peers[best_rps]["rps"] if best_rps else None
        entry["rps_vs_best_peer"] = entry["rps"] / base if base and "rps" in entry else None
    out = results.get("outrigger", {})
    report["outrigger_vs_best_peer"] = {
        "rps_peer": best_rps,
        "rps_ratio": out.get("rps_vs_best_peer"),
        "p99_peer": best_p99,
        "p99_ratio": (out["p99_ms"] / peers[best_p99]["p99_ms"]
                      if out.get("p99_ms") and best_p99 and peers[best_p99]["p99_ms"]
                      else None),
    }


def fmt(v, spec, none="n/a"):
    return none if v is None else format(v, spec)


def print_report(args, report):
    results, skipped = report["targets"], report["skipped"]
    rounds = f", median of {args.rounds} rounds" if args.rounds > 1 else ""
    upstream = (f"upstream {args.upstream}" if args.upstream
                else "upstream outrigger-echo (1 thread)")
    if args.requests is not None:
        load = f"-n{args.requests}"
    else:
        load = f"-D{args.duration:g}s" + (f" after {args.warmup:g}s warm-up"
                                          if args.warmup > 0 else "")
    print()
    print(f"HTTP/2 h2c (prior knowledge) GET / on 127.0.0.1, h2load -t{args.threads} "
          f"-c{args.connections} -m{args.streams} {load}, 1 worker per proxy, HTTP/1.1 "
          f"keep-alive to the {upstream}{rounds}")
    versions = report["versions"]
    if versions:
        print("peers: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    header = (f"{'target':<10} {'streams/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
              f"{'max ms':>8} {'vs best peer':>12}  errors")
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
        if e["errors"]:
            errs.append(f"failed/errored/timeout={e['errors']}")
        if e["non2xx"]:
            errs.append(f"non2xx={e['non2xx']}")
        print(f"{name:<10} {e['rps']:>11.1f} {e['p50_ms']:>8.3f} {e['p99_ms']:>8.3f} "
              f"{fmt(e['mean_ms'], '.3f'):>8} {e['max_ms']:>8.2f} "
              f"{fmt(e['rps_vs_best_peer'], '.2f'):>12}  {' '.join(errs) or '-'}")
    print()
    cmp_ = report["outrigger_vs_best_peer"]
    ratio = cmp_.get("rps_ratio")
    verdict = "" if ratio is None else ("  [met]" if ratio >= 1.0 else "  [below target]")
    peer = f" (best peer: {cmp_['rps_peer']})" if cmp_.get("rps_peer") else ""
    print(f"outrigger/best peer streams/s ratio: {fmt(ratio, '.2f')}{peer} "
          f"(target >= 1.0){verdict}")
    out = results.get("outrigger", {})
    if cmp_.get("p99_ratio") is not None:
        p = cmp_["p99_peer"]
        print(f"outrigger/best peer p99 ratio: {cmp_['p99_ratio']:.2f} "
              f"({out['p99_ms']:.3f} ms vs {p} {results[p]['p99_ms']:.3f} ms, "
              f"lower is better)")
    else:
        print("outrigger/best peer p99 ratio: n/a")
    sys.stdout.flush()


def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        description="HTTP/2 (h2c) front-end benchmark: outrigger-proxy vs nginx vs HAProxy, "
                    "driven by h2load.")
    ap.add_argument("--bin-dir", default=os.path.join(here, os.pardir, "build", "bin"),
                    help="directory holding outrigger-proxy and outrigger-echo "
                         "(default: build/bin of this checkout)")
    ap.add_argument("--duration", type=float, default=10.0,
                    help="measured seconds per target and round (default 10; h2load -D)")
    ap.add_argument("-n", "--requests", type=int,
                    help="a fixed number of streams per target and round instead of --duration "
                         "(h2load -n)")
    ap.add_argument("--warmup", type=float,
                    help="unmeasured warm-up seconds before each measured run (default 1, "
                         "0 with --smoke)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the measurement, interleaving targets, and report medians")
    ap.add_argument("-c", "--connections", type=int, default=10,
                    help="h2load -c: client connections (default 10)")
    ap.add_argument("-m", "--streams", type=int, default=10,
                    help="h2load -m: concurrent streams per connection (default 10)")
    ap.add_argument("--threads", type=int, default=1, help="h2load -t (default 1)")
    ap.add_argument("--targets", default=",".join(TARGET_ORDER),
                    help=f"comma-separated subset of {','.join(TARGET_ORDER)} (default: all)")
    ap.add_argument("--upstream", metavar="IP:PORT",
                    help="use this running HTTP/1.1 upstream instead of starting outrigger-echo")
    ap.add_argument("--smoke", action="store_true",
                    help=f"check the plumbing: {SMOKE_REQUESTS} streams per target (unless -n), "
                         f"no warm-up, one round; still fails on errors or non-2xx")
    ap.add_argument("--require-peers", action="store_true",
                    help="a missing nginx or haproxy, or one without HTTP/2, is a failure, "
                         "not a skip")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--nginx", default="/usr/sbin/nginx")
    ap.add_argument("--haproxy", default="/usr/sbin/haproxy")
    ap.add_argument("--h2load", default=shutil.which("h2load") or "/usr/bin/h2load")
    ap.add_argument("--keep-tmp", action="store_true",
                    help="keep the generated configs, logs and h2load per-stream logs")
    args = ap.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in args.targets if t not in TARGET_ORDER]
    if bad or not args.targets:
        ap.error(f"--targets: unknown {bad}; choose from {','.join(TARGET_ORDER)}")
    args.targets = [t for t in TARGET_ORDER if t in args.targets]
    if args.smoke:
        if args.requests is None:
            args.requests = SMOKE_REQUESTS
        if args.warmup is None:
            args.warmup = 0.0
        args.rounds = 1
    if args.warmup is None:
        args.warmup = 1.0
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.connections < 1 \
            or args.streams < 1 or args.threads < 1 or args.threads > args.connections \
            or (args.requests is not None and args.requests < 1):
        ap.error("--duration > 0, --warmup >= 0, --rounds >= 1, -n >= 1, -c/-m/--threads >= 1, "
                 "--threads <= -c")
    args.bin_dir = os.path.abspath(args.bin_dir)
    return args


def main(argv):
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, hb._raise_exit)
    report = {
        "benchmark": "h2_compare",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"hostname": socket.gethostname(), "cpus": os.cpu_count()},
        "config": {"duration_s": None if args.requests is not None else args.duration,
                   "requests": args.requests, "warmup_s": args.warmup, "rounds": args.rounds,
                   "connections": args.connections, "streams": args.streams,
                   "h2load_threads": args.threads, "smoke": args.smoke,
                   "targets": args.targets},
        "upstream": None, "versions": {}, "skipped": {}, "targets": {},
        "outrigger_vs_best_peer": {}, "failures": [],
    }
    failures = report["failures"]
    args.workdir = tempfile.mkdtemp(prefix="outrigger-h2-bench-")
    try:
        if not (os.path.isfile(args.h2load) and os.access(args.h2load, os.X_OK)):
            raise BenchError(f"h2load not found at {args.h2load} (Debian: apt-get install "
                             f"nghttp2-client; scripts/setup)")
        addrs = start_targets(args, report)
        if not addrs:
            raise BenchError("no target to measure")
        runs = measure(args, addrs, report, failures)
        summarize(runs, report)
        print_report(args, report)
    except BenchError as e:
        failures.append(str(e))
        log(f"FAILED: {e}")
    finally:
        hb.stop_all()
        if args.keep_tmp:
            log(f"configs and logs kept in {args.workdir}")
        else:
            shutil.rmtree(args.workdir, ignore_errors=True)
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
