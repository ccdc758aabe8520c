#!/usr/bin/env python3
"""Latency of a two-hop mTLS mesh at a fixed request rate: outrigger sidecars against HAProxy
with TLS 1.3 client certificates, in one run; and what a mesh mTLS handshake costs on one core.

What it measures
  One upstream (outrigger-echo, one thread) on 127.0.0.1. bench fixed_rate_client (open loop:
  requests leave on a fixed schedule whatever the answers, latency counted from the scheduled
  time, as wrk2 does) sends POST / with a 1 kB body at 1,000 req/s over 8 keep-alive
  connections to each target in turn, after an unmeasured warm-up at the same rate:
    direct     client -> echo
    haproxy    client -> haproxy A (plaintext frontend) -> TLS 1.3 with a client certificate
               (verify required) -> haproxy B (verify required) -> echo; P-256 certificates
               made with the openssl CLI; nbthread 1 each; http-reuse always
    outrigger  client -> productpage's outbound sidecar (Host: reviews) -> mTLS -> reviews'
               inbound sidecar -> echo; outrigger-control with the mesh CA (--ca-dir), a
               Mesh with spec.mtls STRICT, sidecars joined with `outrigger token create`
               tokens, --concurrency 1, --access-log off
  It prints p50/p90/p99 per target, the latency each two-hop chain ADDS over direct, and the
  ratio of outrigger's added p99 to HAProxy's (goal <= 1.0), with error counts. Then the
  handshake cost: bench tls_handshakes (certs::MakeTlsContext contexts, both ends in one thread
  over a BIO pair: full and resumed handshakes per second per core, CPU per side) next to
  `openssl speed ecdsap256 ecdhx25519` on the same machine, and the handshake rate the raw
  crypto alone would allow. Everything shares the machine's cores (client, proxies, echo):
  compare the targets with each other, not with figures from another machine.

How to run (after scripts/setup and a build)
  bench/mtls_compare.py --bin-dir build/bin                    # 15 s per target
  bench/mtls_compare.py --bin-dir build/bin --rounds 3 --json out.json   # medians of 3
  bench/mtls_compare.py --bin-dir build/bin --smoke            # CTest: 2 s at 200 req/s
  --tools-dir DIR takes fixed_rate_client and tls_handshakes from another build than the
  outrigger binaries. See --help for every option.

Exit status
  0 everything ran and was measured (whatever the figures and error counts say).
  1 something could not run: a process did not start, the mesh never routed, the client or
    tls_handshakes or openssl speed gave no result, or a target answered no request with 2xx.
  2 bad command line.
No figure ever changes the exit status: the machines are shared and noisy.

Every process runs in its own process group, is killed if this script dies (PR_SET_PDEATHSIG)
and is stopped on exit; every client run and every tool has a deadline.
"""

import argparse
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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Process handling (own group, killed with us, stderr tail, `listening` lines) and the echo
# upstream are shared with the HTTP/1.1 benchmark.
import http1_compare as hb  # noqa: E402

HOST = hb.HOST
BenchError = hb.BenchError
log = hb.log

TARGET_ORDER = ("direct", "haproxy", "outrigger")
TARGET_LABEL = {"direct": "direct", "haproxy": "haproxy mTLS", "outrigger": "outrigger mTLS"}
ROUTE_HOST = "reviews"  # the Host header every target gets (outrigger routes by it)
TRUST_DOMAIN = "cluster.local"
CLIENT_SLACK_S = 30.0   # a client run is killed after duration + grace + this
CLIENT_GRACE_S = 2.0
TOOL_TIMEOUT_S = 120.0
MESH_TIMEOUT_S = 20.0

# ---------------------------------------------------------------------------------------------
# Certificates for HAProxy (openssl CLI, P-256).

LEAF_EXT = """basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = {san}
"""


def run_tool(argv, what, timeout=TOOL_TIMEOUT_S, cwd=None):
    """A short-lived command with a deadline; its stdout, or BenchError with its output."""
    try:
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, env=hb._child_env(),
                           preexec_fn=hb._child_setup, start_new_session=True)
    except FileNotFoundError as e:
        raise BenchError(f"{what}: cannot execute {argv[0]}: {e}") from e
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{what}: did not finish within {timeout:.0f}s: {' '.join(argv)}") from e
    if r.returncode != 0:
        tail = "\n".join("    | " + l for l in (r.stdout + r.stderr).strip().splitlines()[-15:])
        raise BenchError(f"{what}: exit status {r.returncode}: {' '.join(argv)}\n{tail}")
    return r.stdout


def make_certs(openssl, d):
    """A P-256 root and two leaves (server for haproxy B, client for haproxy A). Returns paths:
    root (CA certificate), server and client (certificate followed by its key, as HAProxy's
    `crt` wants them)."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run_tool([openssl, "req", "-x509", *ec, "-keyout", "root-key.pem", "-out", "root.pem",
              "-days", "2", "-subj", "/O=outrigger-bench/CN=bench root",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "openssl req (root)", cwd=d)
    out = {"root": os.path.join(d, "root.pem")}
    for n, (name, service) in enumerate((("server", "reviews"), ("client", "productpage"))):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(LEAF_EXT.format(
                san=f"DNS:localhost, IP:127.0.0.1, "
                    f"URI:spiffe://{TRUST_DOMAIN}/ns/default/sa/{service}"))
        run_tool([openssl, "req", "-new", *ec, "-keyout", f"{name}-key.pem",
                  "-out", f"{name}.csr", "-subj", f"/O=outrigger-bench/CN={service}"],
                 f"openssl req ({name})", cwd=d)
        run_tool([openssl, "x509", "-req", "-in", f"{name}.csr", "-CA", "root.pem",
                  "-CAkey", "root-key.pem", "-set_serial", str(1001 + n), "-days", "1",
                  "-extfile", f"{name}.ext", "-out", f"{name}-cert.pem"],
                 f"openssl x509 ({name})", cwd=d)
        bundle = os.path.join(d, f"{name}.pem")
        with open(bundle, "w") as f:
            for part in (f"{name}-cert.pem", f"{name}-key.pem"):
                with open(os.path.join(d, part)) as p:
                    f.write(p.read())
        out[name] = bundle
    return out


# ---------------------------------------------------------------------------------------------
# HAProxy two-hop chain: A (plaintext in, TLS with a client certificate out) -> B (TLS in,
# client certificate required) -> echo.

HAPROXY_COMMON = """# generated by bench/mtls_compare.py
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
"""

HAPROXY_A = """
frontend a_in
    bind {host}:{port}
    default_backend b_hop

backend b_hop
    http-reuse always
    server s1 {b_addr} ssl crt {client} ca-file {root} verify required ssl-min-ver TLSv1.3
"""

HAPROXY_B = """
frontend b_in
    bind {host}:{port} ssl crt {server} ca-file {root} verify required ssl-min-ver TLSv1.3
    default_backend app

backend app
    http-reuse always
    server app {upstream}
"""


def _haproxy_maxconn(connections):
    # HAProxy refuses to start when it cannot raise its fd limit to about 2 * maxconn.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    room = 4096 if hard == resource.RLIM_INFINITY else (hard - 64) // 2
    return max(connections + 16, min(4096, room))


def _start_one_haproxy(haproxy, d, name, body, **fields):
    port = hb.free_port()
    conf = (HAPROXY_COMMON + body).format(host=HOST, port=port, **fields)
    cfg = os.path.join(d, f"haproxy-{name}.cfg")
    with open(cfg, "w") as f:
        f.write(conf)
    proc = hb.Proc(f"haproxy-{name}", [haproxy, "-f", cfg, "-db"])
    return proc, f"{HOST}:{port}"


def wait_listen(proc, addr, timeout=hb.START_TIMEOUT_S):
    """Until addr accepts TCP connections (B speaks TLS only: no HTTP probe)."""
    deadline = time.monotonic() + timeout
    host, port = hb.split_addr(addr)
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BenchError(proc.failure(f"exited before listening on {addr}"))
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(proc.failure(f"not listening on {addr} within {timeout:.0f}s"))


def start_haproxy_chain(args, upstream, workdir, certs):
    d = os.path.join(workdir, "haproxy")
    os.makedirs(d, exist_ok=True)
    maxconn = _haproxy_maxconn(args.connections)

    def start_b():
        proc, addr = _start_one_haproxy(args.haproxy, d, "b", HAPROXY_B, maxconn=maxconn,
                                        server=certs["server"], root=certs["root"],
                                        upstream=upstream)
        wait_listen(proc, addr)
        return proc, addr

    _, b_addr = hb.start_with_retries("haproxy-b", start_b)

    def start_a():
        proc, addr = _start_one_haproxy(args.haproxy, d, "a", HAPROXY_A, maxconn=maxconn,
                                        client=certs["client"], root=certs["root"],
                                        b_addr=b_addr)
        hb.wait_http_ok(proc, addr, "/")  # through both hops: the TLS hop works
        return proc, addr

    _, a_addr = hb.start_with_retries("haproxy-a", start_a)
    return a_addr


# ---------------------------------------------------------------------------------------------
# The outrigger mesh: control plane with the CA, reviews (echo behind an inbound sidecar) and
# productpage's outbound sidecar.

POLICY = f"""# generated by bench/mtls_compare.py
apiVersion: v1
kind: Service
metadata: {{name: reviews}}
spec:
  selector: {{app: reviews}}
  ports: [{{name: http, port: 9080}}]
---
apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {{name: mesh}}
spec:
  trustDomain: {TRUST_DOMAIN}
  mtls: STRICT
"""

_METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


def metric_sum(admin, name, **labels):
    """The sum of `name` over the series of /metrics whose labels include `labels` (None: no
    such series)."""
    status, body = hb.http_get(admin, "/metrics")
    if status != 200:
        return None
    total = None
    for line in body.decode("utf-8", "replace").splitlines():
        m = _METRIC_RE.match(line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        if any(got.get(k) != v for k, v in labels.items()):
            continue
        try:
            total = (total or 0) + float(m.group(3))
        except ValueError:
            pass
    return total


def poll(fn, timeout, what, procs=()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for p in procs:
            if not p.alive():
                raise BenchError(p.failure(f"exited while waiting for {what}"))
        try:
            ok, last = fn()
            if ok:
                return
        except (OSError, http.client.HTTPException) as e:
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.1)
    detail = "\n".join(p.failure("state") for p in procs)
    raise BenchError(f"{what}: not reached within {timeout:.0f}s (last: {last})\n{detail}")


def start_mesh(args, upstream, workdir):
    """Returns (productpage's outbound address, {name: admin address}, {name: Proc})."""
    exe = {n: os.path.join(args.bin_dir, n)
           for n in ("outrigger-control", "outrigger-proxy", "outrigger")}
    for n, path in exe.items():
        if not os.access(path, os.X_OK):
            raise BenchError(f"outrigger: {path} not found or not executable")
    policy = os.path.join(workdir, "policy")
    os.makedirs(policy, exist_ok=True)
    with open(os.path.join(policy, "mesh.yaml"), "w") as f:
        f.write(POLICY)
    ca_dir = os.path.join(workdir, "ca")  # created by the control plane on its first start
    control = hb.Proc("outrigger-control", [
        exe["outrigger-control"], "--policy", policy, "--xds", f"{HOST}:0",
        "--admin", f"{HOST}:0", "--ca-dir", ca_dir, "--debounce", "50ms"])
    cp = control.wait_listening(["xds", "admin"])
    hb.wait_http_ok(control, cp["admin"], "/ready")

    def sidecar(service, extra):
        token = run_tool([exe["outrigger"], "token", "create", "--ca-dir", ca_dir,
                          "--service", service], f"outrigger token create --service {service}",
                         timeout=30).strip()
        if not token.startswith("ort1."):
            raise BenchError(f"outrigger token create printed no token for {service}")
        token_file = os.path.join(workdir, f"{service}.token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(token_file, 0o600)
        proc = hb.Proc(f"{service}-sidecar", [
            exe["outrigger-proxy"], "--admin", f"{HOST}:0", "--control-plane", cp["xds"],
            "--service", service, "--ca-bundle", os.path.join(ca_dir, "ca.pem"),
            "--join-token-file", token_file, "--concurrency", "1", "--access-log", "off",
            *extra])
        return proc

    reviews = sidecar("reviews", ["--inbound", f"{HOST}:0", "--app", upstream])
    r_addr = reviews.wait_listening(["inbound", "admin"])
    front = sidecar("productpage", ["--outbound", f"{HOST}:0"])
    f_addr = front.wait_listening(["outbound", "admin"])
    procs = (control, reviews, front)
    for p, a in ((reviews, r_addr), (front, f_addr)):
        hb.wait_http_ok(p, a["admin"], "/ready", timeout=MESH_TIMEOUT_S)

    def routes():
        host, port = hb.split_addr(f_addr["outbound"])
        conn = http.client.HTTPConnection(host, port, timeout=2.0)
        try:
            conn.request("GET", "/", headers={"Host": ROUTE_HOST})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status == 200, f"status {resp.status}: {body[:200]!r}"
        finally:
            conn.close()

    poll(routes, MESH_TIMEOUT_S, "productpage's sidecar answering 200 via reviews", procs)

    def handshaken():
        n = metric_sum(f_addr["admin"], "outrigger_upstream_tls_handshakes_total")
        return (n or 0) >= 1, f"outrigger_upstream_tls_handshakes_total = {n}"

    poll(handshaken, MESH_TIMEOUT_S, "an mTLS handshake from productpage to reviews", procs)
    admins = {"productpage": f_addr["admin"], "reviews": r_addr["admin"],
              "control": cp["admin"]}
    return f_addr["outbound"], admins, {"control": control, "reviews": reviews,
                                        "productpage": front}


MESH_COUNTERS = (
    ("productpage", "outrigger_upstream_tls_handshakes_total"),
    ("productpage", "outrigger_upstream_tls_resumed_total"),
    ("productpage", "outrigger_upstream_tls_handshake_errors_total"),
    ("productpage", "outrigger_upstream_cx_total"),
    ("productpage", "outrigger_upstream_cx_connect_fail_total"),
    ("productpage", "outrigger_upstream_rq_total"),
    ("reviews", "outrigger_downstream_tls_handshakes_total"),
    ("reviews", "outrigger_downstream_tls_handshake_errors_total"),
    ("reviews", "outrigger_downstream_tls_plaintext_refused_total"),
    ("reviews", "outrigger_downstream_cx_total"),
)


def mesh_counters(admins):
    out = {}
    for who, name in MESH_COUNTERS:
        try:
            out[f"{who}:{name}"] = metric_sum(admins[who], name)
        except (OSError, http.client.HTTPException):
            out[f"{who}:{name}"] = None
    return out


# ---------------------------------------------------------------------------------------------
# Load runs.

def tool_path(args, name):
    path = os.path.join(args.tools_dir, name)
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} not found or not executable (build the '{name}' target)")
    return path


def run_client(args, name, addr, duration, rate):
    """One bounded fixed_rate_client run: its JSON result, or BenchError."""
    argv = [tool_path(args, "fixed_rate_client"), "--target", addr, "--rate", f"{rate:g}",
            "--duration", f"{duration:g}", "--connections", str(args.connections),
            "--body-bytes", str(args.body_bytes), "--host", ROUTE_HOST,
            "--grace", f"{CLIENT_GRACE_S:g}"]
    out = run_tool(argv, f"{name}: fixed_rate_client",
                   timeout=duration + CLIENT_GRACE_S + CLIENT_SLACK_S)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise BenchError(f"{name}: fixed_rate_client printed no JSON: {out[-500:]!r}") from e


def measure(args, addrs, report, failures):
    names = [t for t in TARGET_ORDER if t in addrs]
    runs = {t: [] for t in names}
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]  # rotate: no fixed slot
        for name in order:
            if args.warmup > 0:
                run_client(args, f"{name} (warm-up)", addrs[name], args.warmup, args.rate)
            log(f"round {rnd + 1}/{args.rounds}: {name} ({addrs[name]}) at {args.rate:g} req/s "
                f"for {args.duration:g}s")
            res = run_client(args, name, addrs[name], args.duration, args.rate)
            if res["errors"]:
                log(f"{name}: {res['errors']} errors (non2xx {res['non2xx']}, connect "
                    f"{res['connect_errors']}, io {res['io_errors']}, timeouts "
                    f"{res['timeouts']}, unsent {res['unsent']}); first: {res['first_error']}")
            if res["ok"] == 0:
                failures.append(f"{name}: no request answered with 2xx in round {rnd + 1} "
                                f"(first error: {res['first_error']})")
            runs[name].append(res)
    return runs


def summarize(runs, report):
    results = report["targets"]
    for name, rs in runs.items():
        entry = {"runs": rs}
        if rs:
            for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "achieved_rps"):
                entry[k] = statistics.median(r[k] for r in rs)
            for k in ("sent", "ok", "errors", "non2xx", "connect_errors", "io_errors",
                      "timeouts", "unsent"):
                entry[k] = sum(r[k] for r in rs)
        results[name] = entry
    direct = results.get("direct", {})
    for name, entry in results.items():
        for q in ("p50", "p90", "p99"):
            base = direct.get(f"{q}_ms")
            v = entry.get(f"{q}_ms")
            entry[f"added_{q}_ms"] = (v - base) if v is not None and base is not None else None
    out, hap = results.get("outrigger", {}), results.get("haproxy", {})
    a, b = out.get("added_p99_ms"), hap.get("added_p99_ms")
    # A chain that adds (nearly) nothing over direct makes the ratio meaningless.
    report["outrigger_vs_haproxy_added_p99"] = (a / b if a is not None and b is not None
                                                and b > 0.001 else None)


# ---------------------------------------------------------------------------------------------
# Handshake cost.

_SPEED_ECDSA_RE = re.compile(r"^\s*256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+"
                             r"([\d.]+)\s*$", re.M)
_SPEED_ECDH_RE = re.compile(r"^\s*\d+ bits ecdh \(X25519\)\s+\S+s\s+([\d.]+)\s*$", re.M)


def run_handshakes(args):
    out = run_tool([tool_path(args, "tls_handshakes"), "--seconds", f"{args.handshake_seconds:g}"],
                   "tls_handshakes", timeout=2 * args.handshake_seconds + TOOL_TIMEOUT_S)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        raise BenchError(f"tls_handshakes printed no JSON: {out[-500:]!r}") from e


def run_openssl_speed(args):
    argv = [args.openssl, "speed", "-seconds", f"{args.speed_seconds:g}", "ecdsap256",
            "ecdhx25519"]
    out = run_tool(argv, "openssl speed", timeout=3 * args.speed_seconds + TOOL_TIMEOUT_S)
    ecdsa, ecdh = _SPEED_ECDSA_RE.search(out), _SPEED_ECDH_RE.search(out)
    if not ecdsa or not ecdh:
        raise BenchError(f"openssl speed: no ecdsa/ecdh result in its output:\n{out[-800:]}")
    res = {"ecdsap256_sign_per_s": float(ecdsa.group(1)),
           "ecdsap256_verify_per_s": float(ecdsa.group(2)),
           "x25519_op_per_s": float(ecdh.group(1))}
    # A full TLS 1.3 mTLS handshake, both sides: 2 signatures (CertificateVerify), 4
    # verifications (each side: the peer's leaf by the CA, the peer's CertificateVerify), 2
    # X25519 key generations and 2 derivations (a key generation costs about one derivation).
    # A resumed one (psk_dhe_ke) keeps the 4 X25519 operations and drops the rest.
    x = 4 / res["x25519_op_per_s"]
    full = 2 / res["ecdsap256_sign_per_s"] + 4 / res["ecdsap256_verify_per_s"] + x
    res["crypto_bound_full_per_s"] = 1 / full
    res["crypto_bound_resumed_per_s"] = 1 / x
    return res


# ---------------------------------------------------------------------------------------------
# Report.

def fmt(v, spec, none="n/a"):
    return none if v is None else format(v, spec)


def print_report(args, report):
    results = report["targets"]
    rounds = f", median of {args.rounds} rounds" if args.rounds > 1 else ""
    print()
    print(f"POST / with a {args.body_bytes} B body at {args.rate:g} req/s for {args.duration:g}s, "
          f"open loop (fixed_rate_client, {args.connections} keep-alive connections), "
          f"127.0.0.1, upstream outrigger-echo (1 thread), 1 worker per proxy{rounds}")
    header = (f"{'target':<15} {'req/s':>7} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
              f"{'max ms':>7} {'+p50 ms':>8} {'+p90 ms':>8} {'+p99 ms':>8}  errors")
    print(header)
    print("-" * len(header))
    for name in TARGET_ORDER:
        e = results.get(name)
        if e is None:
            continue
        if "p50_ms" not in e:
            print(f"{TARGET_LABEL[name]:<15} no result")
            continue
        added = ["-" if name == "direct" else fmt(e[f"added_{q}_ms"], "+.3f")
                 for q in ("p50", "p90", "p99")]
        errs = []
        for k in ("non2xx", "connect_errors", "io_errors", "timeouts", "unsent"):
            if e[k]:
                errs.append(f"{k}={e[k]}")
        err = f"{e['errors']} of {e['sent']} ({' '.join(errs)})" if e["errors"] else "0"
        print(f"{TARGET_LABEL[name]:<15} {e['achieved_rps']:>7.1f} {e['p50_ms']:>7.3f} "
              f"{e['p90_ms']:>7.3f} {e['p99_ms']:>7.3f} {e['max_ms']:>7.2f} {added[0]:>8} "
              f"{added[1]:>8} {added[2]:>8}  {err}")
    print("(+pNN: latency added over direct at the same percentile; both chains are two hops "
          "with TLS 1.3 and client certificates between the hops)")
    ratio = report.get("outrigger_vs_haproxy_added_p99")
    verdict = "" if ratio is None else ("  [met]" if ratio <= 1.0 else "  [above target]")
    print(f"outrigger added p99 / haproxy added p99: {fmt(ratio, '.2f')} (target <= 1.0)"
          f"{verdict}")
    mesh = report.get("outrigger_mesh")
    if mesh:
        c = mesh.get("counters_after", {})

        def g(k):
            v = c.get(k)
            return "n/a" if v is None else f"{v:g}"
        print(f"outrigger mesh after the runs: productpage upstream TLS handshakes "
              f"{g('productpage:outrigger_upstream_tls_handshakes_total')} (resumed "
              f"{g('productpage:outrigger_upstream_tls_resumed_total')}, errors "
              f"{g('productpage:outrigger_upstream_tls_handshake_errors_total')}), upstream "
              f"connections {g('productpage:outrigger_upstream_cx_total')}, requests "
              f"{g('productpage:outrigger_upstream_rq_total')}; reviews inbound handshakes "
              f"{g('reviews:outrigger_downstream_tls_handshakes_total')} (errors "
              f"{g('reviews:outrigger_downstream_tls_handshake_errors_total')}, plaintext "
              f"refused {g('reviews:outrigger_downstream_tls_plaintext_refused_total')})")

    hs, speed = report.get("handshakes"), report.get("openssl_speed")
    if hs or speed:
        print()
        print("mesh mTLS handshake cost on one core (TLS 1.3, P-256 certificates, client "
              "certificate required)")
    if hs:
        f, r = hs["full"], hs["resumed"]
        print(f"  tls_handshakes ({hs.get('openssl', '?')}, {f.get('cipher')}, {f.get('group')}; "
              f"client and server in one thread: hs/s per CPU-second, CPU us per handshake)")
        header = (f"    {'kind':<8} {'hs/s/core':>10} {'client us':>10} {'server us':>10} "
                  f"{'crypto bound/s':>15} {'of bound':>9}")
        print(header)
        for kind, e in (("full", f), ("resumed", r)):
            bound = speed.get(f"crypto_bound_{kind}_per_s") if speed else None
            share = e["per_core_per_s"] / bound if bound else None
            print(f"    {kind:<8} {e['per_core_per_s']:>10.0f} {e['client_cpu_us']:>10.0f} "
                  f"{e['server_cpu_us']:>10.0f} {fmt(bound, '.0f'):>15} "
                  f"{fmt(share, '.0%'):>9}")
    if speed:
        print(f"  openssl speed -seconds {args.speed_seconds:g}: ecdsa P-256 sign/s "
              f"{speed['ecdsap256_sign_per_s']:.0f}, verify/s "
              f"{speed['ecdsap256_verify_per_s']:.0f}; X25519 op/s "
              f"{speed['x25519_op_per_s']:.0f}")
        print("  (crypto bound: a full mTLS handshake, both sides, is 2 signs + 4 verifies + 4 "
              "X25519 operations; a resumed one 4 X25519 operations; the rest is TLS and "
              "certificate handling)")
    sys.stdout.flush()


# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(
        description="Two-hop mTLS latency at a fixed rate: outrigger sidecars vs HAProxy vs "
                    "direct; TLS handshake cost vs openssl speed.")
    ap.add_argument("--bin-dir", default=os.path.join(here, os.pardir, "build", "bin"),
                    help="directory holding outrigger-proxy, outrigger-control, outrigger and "
                         "outrigger-echo (default: build/bin of this checkout)")
    ap.add_argument("--tools-dir",
                    help="directory holding fixed_rate_client and tls_handshakes "
                         "(default: --bin-dir)")
    ap.add_argument("--duration", type=float, help="measured seconds per target and round "
                                                   "(default 15; --smoke: 2)")
    ap.add_argument("--rate", type=float, help="requests per second (default 1000; --smoke: 200)")
    ap.add_argument("--warmup", type=float, help="unmeasured seconds at the same rate before "
                                                 "each measured run (default 2; --smoke: 0.5)")
    ap.add_argument("--body-bytes", type=int, default=1024, help="POST body size (default 1024)")
    ap.add_argument("--connections", type=int, default=8,
                    help="client keep-alive connections (default 8)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat the measurement, interleaving targets, and report medians")
    ap.add_argument("--targets", default=",".join(TARGET_ORDER),
                    help=f"comma-separated subset of {','.join(TARGET_ORDER)} (default: all)")
    ap.add_argument("--handshake-seconds", type=float,
                    help="tls_handshakes seconds per kind (default 3; --smoke: 0.5)")
    ap.add_argument("--speed-seconds", type=float,
                    help="openssl speed -seconds (default 2; --smoke: 1)")
    ap.add_argument("--no-handshakes", action="store_true",
                    help="skip tls_handshakes and openssl speed")
    ap.add_argument("--smoke", action="store_true",
                    help="a short run that checks that everything starts and is measured")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--openssl", default=shutil.which("openssl") or "/usr/bin/openssl")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the generated configs")
    args = ap.parse_args(argv)
    defaults = {"duration": (15.0, 2.0), "rate": (1000.0, 200.0), "warmup": (2.0, 0.5),
                "handshake_seconds": (3.0, 0.5), "speed_seconds": (2.0, 1.0)}
    for k, (full, smoke) in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, smoke if args.smoke else full)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    bad = [t for t in args.targets if t not in TARGET_ORDER]
    if bad or not args.targets:
        ap.error(f"--targets: unknown {bad}; choose from {','.join(TARGET_ORDER)}")
    args.targets = [t for t in TARGET_ORDER if t in args.targets]
    if "direct" not in args.targets:
        args.targets.insert(0, "direct")  # the baseline of every added latency
    if not (0 < args.duration <= 3600 and 0 < args.rate <= 1e6 and 0 <= args.warmup <= 600
            and 0 <= args.body_bytes <= 64 << 20 and 1 <= args.connections <= 10000
            and 1 <= args.rounds <= 100 and 0 < args.handshake_seconds <= 600
            and 0 < args.speed_seconds <= 600):
        ap.error("out of range: --duration (0, 3600], --rate (0, 1e6], --warmup [0, 600], "
                 "--body-bytes [0, 64 MiB], --connections [1, 10000], --rounds [1, 100], "
                 "--handshake-seconds and --speed-seconds (0, 600]")
    args.speed_seconds = max(1, round(args.speed_seconds))  # openssl speed takes whole seconds
    args.bin_dir = os.path.abspath(args.bin_dir)
    args.tools_dir = os.path.abspath(args.tools_dir or args.bin_dir)
    return args


def main(argv):
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, hb._raise_exit)
    report = {
        "benchmark": "mtls_compare",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": {"hostname": socket.gethostname(), "cpus": os.cpu_count()},
        "config": {"duration_s": args.duration, "rate": args.rate, "warmup_s": args.warmup,
                   "body_bytes": args.body_bytes, "connections": args.connections,
                   "rounds": args.rounds, "smoke": args.smoke, "targets": args.targets},
        "upstream": None, "targets": {}, "outrigger_vs_haproxy_added_p99": None,
        "outrigger_mesh": None, "handshakes": None, "openssl_speed": None, "failures": [],
    }
    failures = report["failures"]
    workdir = tempfile.mkdtemp(prefix="outrigger-mtls-bench-")
    try:
        try:
            tool_path(args, "fixed_rate_client")
            _, upstream = hb.start_echo(args.bin_dir)
            report["upstream"] = upstream
            addrs = {"direct": upstream}
            admins = None
            if "haproxy" in args.targets:
                if not os.access(args.haproxy, os.X_OK):
                    raise BenchError(f"haproxy not found at {args.haproxy} (scripts/setup)")
                certs = make_certs(args.openssl, os.path.join(workdir, "certs"))
                addrs["haproxy"] = start_haproxy_chain(args, upstream, workdir, certs)
                log(f"haproxy chain at {addrs['haproxy']}")
            if "outrigger" in args.targets:
                addrs["outrigger"], admins, _ = start_mesh(args, upstream, workdir)
                log(f"outrigger mesh: productpage's outbound sidecar at {addrs['outrigger']}")
                report["outrigger_mesh"] = {"admins": admins,
                                            "counters_before": mesh_counters(admins)}
            runs = measure(args, addrs, report, failures)
            if admins:
                report["outrigger_mesh"]["counters_after"] = mesh_counters(admins)
            summarize(runs, report)
        except BenchError as e:
            failures.append(str(e))
            log(f"FAILED: {e}")
        finally:
            hb.stop_all()  # nothing else loads the cores during the handshake figures
        if not args.no_handshakes:
            for key, fn in (("handshakes", run_handshakes), ("openssl_speed", run_openssl_speed)):
                try:
                    log(f"running {key}")
                    report[key] = fn(args)
                except BenchError as e:
                    failures.append(str(e))
                    log(f"FAILED: {e}")
        print_report(args, report)
    finally:
        hb.stop_all()
        if args.keep_tmp:
            log(f"configs kept in {workdir}")
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
