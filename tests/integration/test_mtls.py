# Automatic mTLS between sidecars, with real processes: outrigger-control --ca-dir gives every
# sidecar endpoint the SPIFFE ID of the service it registered as; a caller's sidecar speaks mTLS
# to it and checks that exact identity; the callee's inbound listener follows the Mesh's
# spec.mtls (PERMISSIVE by default, STRICT, DISABLE), changed live by rewriting the policy file.
# Covered: mTLS on by default (handshake metrics, source_identity in the callee's access log,
# session resumption, also for new connections opened one after another), PERMISSIVE, STRICT
# (plaintext, TLS without a certificate, a mesh-valid certificate made with the CA key, a foreign
# CA, an expired certificate, a certificate without a SPIFFE ID; plaintext keep-alive connections
# opened before the switch), DISABLE, a callee that presents another identity, leaf rotation
# under load with no failed request, no private key in any output at --log-level debug, a root
# rotation under load (docs/security.md: new root in trust-bundle.pem, then --ca-cert/--ca-key
# with the old root kept trusted, control plane restarted on the same --xds port), and
# AuthorizationPolicy with mesh identities (ALLOW by principal and method, DENY by path, plaintext
# callers without a principal, a live switch to DryRun).
#
# Client certificates are made with the openssl CLI (OpenSSL 3.0): the mesh CA's key is in
# CADIR/ca-key.pem; an expired certificate comes from `openssl ca -startdate/-enddate`.

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time

import harness as h
from mesh_ca import CLI_OUTPUTS, cli, fresh_path, make_token, token_file

SERVICES = """\
apiVersion: v1
kind: Service
metadata: {name: productpage}
spec:
  selector: {app: productpage}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: ratings}
spec:
  selector: {app: ratings}
  ports: [{name: http, port: 9080}]
"""

TRUST_DOMAIN = "cluster.local"
REVIEWS_CLUSTER = "reviews.default"


def spiffe(service, namespace="default"):
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service}"


_seq = [0]


def mesh_yaml(mode):
    spec = f"  mtls: {mode}\n" if mode else f"  trustDomain: {TRUST_DOMAIN}\n"
    return ("apiVersion: outrigger.dev/v1alpha1\nkind: Mesh\nmetadata: {name: mesh}\nspec:\n"
            + spec)


def write_mesh(policy, mode):
    """Writes policy/mesh.yaml atomically (temporary file outside the directory + os.replace).
    mode None: a Mesh without spec.mtls (the default, PERMISSIVE)."""
    tmp = fresh_path("mesh-tmp")
    with open(tmp, "w") as f:
        f.write(mesh_yaml(mode))
    os.replace(tmp, os.path.join(policy, "mesh.yaml"))


def policy_dir(mode=None, extra_docs=None):
    d = fresh_path("policy")
    os.makedirs(d)
    with open(os.path.join(d, "services.yaml"), "w") as f:
        f.write(SERVICES)
    write_mesh(d, mode)
    if extra_docs:
        with open(os.path.join(d, "extra.yaml"), "w") as f:
            f.write(extra_docs)
    return d


def start_control(ca_dir, extra=(), policy=None, name="outrigger-control", xds="127.0.0.1:0"):
    """outrigger-control with the mesh CA in ca_dir; `.xds`, `.admin`, `.policy`, `.ca_dir`,
    `.extra`."""
    policy = policy or policy_dir()
    p = h.Process(name, [h.bin_path("outrigger-control"), "--policy", policy,
                         "--xds", xds, "--admin", "127.0.0.1:0", "--debounce", "50ms",
                         "--ca-dir", ca_dir, *extra], env=h.clean_env())
    p.xds = p.wait_for_listen("xds")
    p.admin = p.wait_for_listen("admin")
    p.policy, p.ca_dir, p.extra = policy, ca_dir, list(extra)
    return p


def restart_control(cp, extra=None, name=None):
    """SIGTERM to cp, then a new control plane on the same --xds address, policy and --ca-dir,
    with `extra` flags (default: cp's own)."""
    cp.send_signal(signal.SIGTERM)
    cp.wait_exit(10)
    extra = cp.extra if extra is None else extra
    return start_control(cp.ca_dir, extra, policy=cp.policy, name=name or f"{cp.name}'",
                         xds=cp.xds)


def sidecar(cp, service, app=None, outbound=False, access_log="off", extra=()):
    """A sidecar following cp with a join token for `service`: inbound for `app` (access log as
    given), or outbound."""
    args = ["--admin", "127.0.0.1:0", "--control-plane", cp.xds, "--service", service,
            "--access-log", access_log, "--concurrency", "1",
            "--ca-bundle", f"{cp.ca_dir}/ca.pem",
            "--join-token-file", token_file(make_token(cp.ca_dir, service))]
    if app:
        args += ["--inbound", "127.0.0.1:0", "--app", app]
    if outbound:
        args += ["--outbound", "127.0.0.1:0"]
    return h.start_proxy([*args, *extra], name=f"{service}-sidecar")


def wait_ready(proxy, timeout=10):
    h.wait_http_ok(f"http://{proxy.addr['admin']}/ready", timeout)


def metric(admin, name, **labels):
    return h.metric_sum(h.metrics(admin), name, **labels)


def m0(admin, name, **labels):
    """metric() with a missing series read as 0."""
    return metric(admin, name, **labels) or 0


class Mesh:
    """A CA-enabled control plane, reviews (echo + inbound sidecar with its access log on stdout)
    and productpage's outbound sidecar, with routing productpage -> reviews working."""

    def __init__(self, mode=None, cp_extra=(), proxy_extra=(), extra_docs=None):
        self.ca_dir = fresh_path("ca")
        self.cp = start_control(self.ca_dir, cp_extra, policy=policy_dir(mode, extra_docs))
        self.echo = h.start_echo("reviews")
        self.reviews = sidecar(self.cp, "reviews", app=self.echo.address, access_log="stdout",
                               extra=proxy_extra)
        self.front = sidecar(self.cp, "productpage", outbound=True, extra=proxy_extra)
        for p in (self.reviews, self.front):
            wait_ready(p)
        self.inbound = self.reviews.addr["inbound"]
        self.outbound = self.front.addr["outbound"]
        self._n = 0
        h.poll_until(lambda: self.via_front("/warmup").status == 200, 10,
                     "productpage's sidecar to route to reviews")

    @property
    def ca_pem(self):
        return os.path.join(self.ca_dir, "ca.pem")

    def unique(self, prefix):
        self._n += 1
        return f"/{prefix}-{self._n}-{time.monotonic_ns()}"

    def via_front(self, path, timeout=5):
        return h.http_request(self.outbound, path, headers={"Host": "reviews"}, timeout=timeout)

    def set_mode(self, mode):
        write_mesh(self.cp.policy, mode)

    def up(self, name):
        """The caller's (productpage) counter for the reviews cluster."""
        return m0(self.front.addr["admin"], name, cluster=REVIEWS_CLUSTER)

    def down(self, name):
        """The callee's (reviews) counter for its inbound listener."""
        return m0(self.reviews.addr["admin"], name, listener="inbound")

    def logged(self, path, timeout=5):
        """The callee's access log line for `path` (its query string ignored)."""
        return self.reviews.wait_for_access_log(lambda e: logged_path(e) == path, timeout,
                                                f"reviews access log line for {path}")

    def plaintext_probe(self, path=None, timeout=2.0):
        """A plaintext request straight to the reviews inbound port: (raw answer, closed)."""
        path = path or self.unique("probe")
        req = f"GET {path} HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n".encode()
        return h.raw_request(self.inbound, req, timeout=timeout)

    def wait_strict(self, timeout=10):
        """Polls until the reviews inbound closes plaintext connections without an answer."""
        def refused():
            data, closed = self.plaintext_probe()
            return closed and not data
        h.poll_until(refused, timeout, "the reviews sidecar to refuse plaintext (STRICT)",
                     interval=0.05)

    def wait_plaintext_accepted(self, timeout=10):
        def accepted():
            data, _ = self.plaintext_probe()
            return data.startswith(b"HTTP/1.1 200")
        h.poll_until(accepted, timeout, "the reviews sidecar to accept plaintext", interval=0.05)


def logged_path(entry):
    return str(entry.get("path", "")).split("?", 1)[0]


def curl_code(*args, timeout=10):
    """Runs curl -o /dev/null -w %{http_code}: (exit code, http code string, stderr)."""
    r = h.curl("-o", "/dev/null", "-w", "%{http_code}", *args, timeout=timeout)
    return r.returncode, r.stdout.decode().strip(), r.stderr.decode().strip()


def s_client(addr, request, cert=None, key=None, cafile=None, timeout=6):
    """openssl s_client -quiet (stdin EOF ignored: it runs until the server closes) with
    `request` on stdin. Returns (exit code or None if still open after `timeout`, stdout bytes,
    stderr text)."""
    argv = ["openssl", "s_client", "-connect", addr, "-quiet"]
    if cert:
        argv += ["-cert", cert, "-key", key]
    if cafile:
        argv += ["-CAfile", cafile, "-verify_return_error"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=h.clean_env())
    try:
        out, err = p.communicate(request, timeout=timeout)
        return p.returncode, out, err.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return None, out, err.decode("utf-8", "replace")


def tls_request(addr, path, cert, key, cafile, timeout=5):
    """One HTTPS request with a client certificate, verifying the server against cafile (no host
    name check: the identity is the URI SAN). Returns (status, server URI SANs)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile)
    ctx.load_cert_chain(cert, key)
    host, port = h.split_addr(addr)
    with socket.create_connection((host, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw) as s:
            uris = [v for k, v in s.getpeercert().get("subjectAltName", ()) if k == "URI"]
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n"
                      .encode())
            chunks = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    b = s.recv(65536)
                except (ssl.SSLZeroReturnError, ConnectionResetError):
                    break
                if not b:
                    break
                chunks.append(b)
    status, _, _ = h.parse_http_response(b"".join(chunks))
    return status, uris


# --------------------------------------------------------------------------------------------
# Certificates made with the openssl CLI


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr}"
    return r.stdout


LEAF_EXT = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=clientAuth,serverAuth\n")


def _csr(d, name):
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.csr", "-subj",
             f"/O=outrigger-test/CN={name}", cwd=d)


def _ext(d, name, san):
    path = os.path.join(d, f"{name}.ext")
    with open(path, "w") as f:
        f.write(LEAF_EXT + (f"subjectAltName={san}\n" if san else ""))
    return path


def make_leaf(d, name, ca_cert, ca_key, san, days=1):
    """A leaf signed by ca_cert/ca_key with the given SAN; returns (cert, key) paths."""
    os.makedirs(d, exist_ok=True)
    _csr(d, name)
    _seq[0] += 1  # a distinct serial per leaf
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", ca_cert, "-CAkey", ca_key,
             "-set_serial", str(1000 + _seq[0]), "-days", str(days),
             "-extfile", _ext(d, name, san), "-out", f"{name}.pem", cwd=d)
    return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}-key.pem")


def make_expired_leaf(d, name, ca_cert, ca_key, san):
    """A leaf valid 2020-01-01..2020-01-02 (openssl ca, which takes -startdate/-enddate)."""
    os.makedirs(d, exist_ok=True)
    _csr(d, name)
    db = os.path.join(d, f"{name}-db")
    os.makedirs(db)
    open(os.path.join(db, "index.txt"), "w").close()
    with open(os.path.join(db, "serial"), "w") as f:
        f.write("2001\n")
    cnf = os.path.join(d, f"{name}-ca.cnf")
    with open(cnf, "w") as f:
        f.write(f"[ca]\ndefault_ca = t\n[t]\ndatabase = {db}/index.txt\nserial = {db}/serial\n"
                f"new_certs_dir = {db}\ndefault_md = sha256\npolicy = p\nunique_subject = no\n"
                "copy_extensions = none\n[p]\ncommonName = supplied\n")
    _openssl("ca", "-config", cnf, "-batch", "-notext", "-cert", ca_cert, "-keyfile", ca_key,
             "-in", f"{name}.csr", "-out", f"{name}.pem", "-startdate", "20200101000000Z",
             "-enddate", "20200102000000Z", "-extfile", _ext(d, name, san), cwd=d)
    end = _openssl("x509", "-in", f"{name}.pem", "-noout", "-enddate", cwd=d).strip()
    assert ssl.cert_time_to_seconds(end.split("=", 1)[1]) < time.time(), \
        f"the 'expired' certificate is not expired: {end}"
    return os.path.join(d, f"{name}.pem"), os.path.join(d, f"{name}-key.pem")


def make_root(d):
    """A self-signed root of another mesh (P-256); returns (cert, key)."""
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "root-key.pem", "-out", "root.pem", "-days", "30",
             "-subj", f"/O=outrigger/CN={TRUST_DOMAIN} root",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", f"subjectAltName=URI:spiffe://{TRUST_DOMAIN}", cwd=d)
    return os.path.join(d, "root.pem"), os.path.join(d, "root-key.pem")


class Load:
    """Background traffic productpage -> reviews through the outbound sidecar; bounded in time and
    count. Keep-alive client connections of 50 requests each; every answer is counted by status
    (a broken connection counts as an error)."""

    def __init__(self, outbound_addr, max_seconds=40, max_requests=200000, path="/load"):
        self.addr, self.path, self.statuses = outbound_addr, path, {}
        self.stop_flag = threading.Event()
        self.sent = 0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, args=(max_seconds, max_requests),
                                       daemon=True)
        self.thread.start()

    def count(self, key):
        with self.lock:
            self.statuses[key] = self.statuses.get(key, 0) + 1

    def run(self, max_seconds, max_requests):
        deadline = time.monotonic() + max_seconds
        while not self.stop_flag.is_set() and time.monotonic() < deadline and \
                self.sent < max_requests:
            try:
                with h.KeepAliveClient(self.addr, timeout=5) as c:
                    for _ in range(50):
                        if self.stop_flag.is_set() or time.monotonic() >= deadline:
                            break
                        r = c.request(self.path, headers={"Host": "reviews"})
                        self.sent += 1
                        self.count(r.status)
            except Exception as e:
                self.count(f"error: {e!r}")

    def finish(self):
        self.stop_flag.set()
        self.thread.join(timeout=15)
        return dict(self.statuses)


def concurrent_via_front(mesh, n, delay_ms, prefix):
    """n requests through productpage at once, each held delay_ms by the echo, so that the
    caller's sidecar needs n upstream connections. Returns [(path, status or error)]."""
    barrier = threading.Barrier(n)
    results = [None] * n
    paths = [mesh.unique(prefix) for _ in range(n)]

    def one(i):
        try:
            barrier.wait(timeout=5)
            results[i] = mesh.via_front(f"{paths[i]}?delay_ms={delay_ms}", timeout=10).status
        except Exception as e:
            results[i] = f"error: {e!r}"
    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    return list(zip(paths, results))


# --------------------------------------------------------------------------------------------


def test_mtls_on_by_default():
    mesh = Mesh(mode=None)   # a Mesh without spec.mtls
    path = mesh.unique("first")
    r = mesh.via_front(path)
    assert r.status == 200, f"productpage -> reviews answered {r.status}: {r.body[:200]!r}"
    entry = mesh.logged(path)
    assert entry.get("source_identity") == spiffe("productpage"), \
        f"the callee must log the caller's SPIFFE ID: {entry}"
    up = mesh.up("outrigger_upstream_tls_handshakes_total")
    down = mesh.down("outrigger_downstream_tls_handshakes_total")
    assert up >= 1, f"caller upstream tls_handshakes_total{{cluster={REVIEWS_CLUSTER}}} = {up}"
    assert down >= 1, f"callee downstream tls_handshakes_total{{listener=inbound}} = {down}"
    for (who, v) in (("caller handshake errors",
                      mesh.up("outrigger_upstream_tls_handshake_errors_total")),
                     ("callee handshake errors",
                      mesh.down("outrigger_downstream_tls_handshake_errors_total")),
                     ("callee plaintext refused",
                      mesh.down("outrigger_downstream_tls_plaintext_refused_total"))):
        assert v == 0, f"{who}: {v}"
    # Every earlier request (warm-up) went over mTLS too.
    for e in mesh.reviews.access_log():
        assert e.get("source_identity") == spiffe("productpage"), f"not over mTLS: {e}"

    # Resumption: the first connection's session is kept once its exchange is done; requests in
    # parallel then need new upstream connections, which should resume it.
    resumed0 = mesh.up("outrigger_upstream_tls_resumed_total")
    hs_before = mesh.up("outrigger_upstream_tls_handshakes_total")
    down_before = mesh.down("outrigger_downstream_tls_handshakes_total")
    results = []
    for _ in range(2):
        results += concurrent_via_front(mesh, 4, 300, "parallel")
    bad = [(p, s) for p, s in results if s != 200]
    assert not bad, f"parallel requests failed: {bad}"
    hs = mesh.up("outrigger_upstream_tls_handshakes_total") - hs_before
    resumed = mesh.up("outrigger_upstream_tls_resumed_total") - resumed0
    down_new = mesh.down("outrigger_downstream_tls_handshakes_total") - down_before
    print(f"    after warm-up and one request: caller handshakes {up:.0f}, callee {down:.0f}; "
          f"parallel: {hs:.0f} new handshakes, {resumed:.0f} resumed (callee {down_new:.0f})")
    assert hs >= 3, f"4 parallel requests should open >= 3 new upstream connections, got {hs}"
    assert down_new >= hs, f"callee saw {down_new} handshakes, caller made {hs}"
    for p, _ in results:
        e = mesh.logged(p)
        assert e.get("source_identity") == spiffe("productpage"), \
            f"a request on a new (possibly resumed) connection lost its identity: {e}"
    assert resumed >= 1, \
        f"no TLS session was resumed: {hs:.0f} new upstream handshakes, 0 resumed"


def test_successive_new_connections_resume():
    """New upstream connections opened one after another (each while the earlier ones are still
    busy, so the pool has none idle) should each resume the session the sidecar holds for the
    host, not only the first one."""
    mesh = Mesh(mode=None)
    assert mesh.via_front(mesh.unique("first")).status == 200   # a session is kept now
    hs0 = mesh.up("outrigger_upstream_tls_handshakes_total")
    resumed0 = mesh.up("outrigger_upstream_tls_resumed_total")
    n, step, hold = 5, 0.2, 1500   # starts 0.2 s apart, each held 1.5 s: none ends meanwhile
    results = [None] * n
    paths = [mesh.unique("successive") for _ in range(n)]

    def one(i):
        try:
            results[i] = mesh.via_front(f"{paths[i]}?delay_ms={hold}", timeout=10).status
        except Exception as e:
            results[i] = f"error: {e!r}"
    threads = []
    for i in range(n):
        t = threading.Thread(target=one, args=(i,), daemon=True)
        t.start()
        threads.append(t)
        time.sleep(step)  # the scenario: connections opened one after another
    for t in threads:
        t.join(timeout=15)
    assert results == [200] * n, f"requests failed: {results}"
    hs = mesh.up("outrigger_upstream_tls_handshakes_total") - hs0
    resumed = mesh.up("outrigger_upstream_tls_resumed_total") - resumed0
    print(f"    {n} overlapping requests started {step}s apart: {hs:.0f} new upstream "
          f"handshakes, {resumed:.0f} resumed")
    assert hs == n - 1, f"expected {n - 1} new connections (one request reuses the pooled one), " \
        f"got {hs}"
    assert resumed == hs, \
        f"only {resumed:.0f} of {hs:.0f} successive new connections resumed the held session"


def test_permissive_accepts_plaintext_and_mtls():
    mesh = Mesh(mode="PERMISSIVE")
    down_hs0 = mesh.down("outrigger_downstream_tls_handshakes_total")
    path = mesh.unique("plain")
    code, http_code, err = curl_code("-H", "Host: reviews", f"http://{mesh.inbound}{path}")
    assert code == 0 and http_code == "200", \
        f"plaintext curl to the inbound port: exit {code}, http {http_code}, {err}"
    e = mesh.logged(path)
    assert e.get("source_identity") == "", f"a plaintext request must log source_identity '': {e}"
    assert mesh.down("outrigger_downstream_tls_handshakes_total") == down_hs0, \
        "a plaintext request counted a TLS handshake"
    path = mesh.unique("mtls")
    r = mesh.via_front(path)
    assert r.status == 200, f"productpage -> reviews answered {r.status}"
    e = mesh.logged(path)
    assert e.get("source_identity") == spiffe("productpage"), f"mTLS request logged {e}"
    assert mesh.up("outrigger_upstream_tls_handshakes_total") >= 1
    # TLS without a client certificate is let in too, with no identity (this is also the
    # positive control of the s_client check of test_strict_mode).
    path = mesh.unique("tls-nocert")
    rc, out, err = s_client(mesh.inbound, f"GET {path} HTTP/1.1\r\nHost: reviews\r\n"
                            "Connection: close\r\n\r\n".encode(), cafile=mesh.ca_pem)
    assert out.startswith(b"HTTP/1.1 200"), \
        f"PERMISSIVE: TLS without a client certificate: exit {rc}, {out[:100]!r}, {err[-300:]}"
    e = mesh.logged(path)
    assert e.get("source_identity") == "", f"TLS without a certificate logged {e}"
    assert mesh.down("outrigger_downstream_tls_plaintext_refused_total") == 0
    assert mesh.down("outrigger_downstream_tls_handshake_errors_total") == 0


def test_strict_mode():
    mesh = Mesh(mode=None)
    certs_dir = fresh_path("client-certs")
    ca_key = os.path.join(mesh.ca_dir, "ca-key.pem")
    valid = make_leaf(certs_dir, "productpage", mesh.ca_pem, ca_key,
                      f"URI:{spiffe('productpage')}")
    foreign_root = make_root(os.path.join(certs_dir, "foreign"))
    foreign = make_leaf(certs_dir, "foreign", *foreign_root, f"URI:{spiffe('productpage')}")
    expired = make_expired_leaf(certs_dir, "expired", mesh.ca_pem, ca_key,
                                f"URI:{spiffe('productpage')}")
    no_id = make_leaf(certs_dir, "noid", mesh.ca_pem, ca_key, "DNS:productpage")

    # PERMISSIVE first: plaintext is answered.
    data, _ = mesh.plaintext_probe()
    assert data.startswith(b"HTTP/1.1 200"), f"PERMISSIVE plaintext: {data[:100]!r}"

    load = Load(mesh.outbound, max_seconds=60)
    notes = []
    try:
        t0 = time.monotonic()
        mesh.set_mode("STRICT")
        mesh.wait_strict()
        notes.append(f"STRICT applied after {time.monotonic() - t0:.2f}s")

        # Plaintext: no HTTP status, the refusal is counted.
        refused0 = mesh.down("outrigger_downstream_tls_plaintext_refused_total")
        path = mesh.unique("plain-strict")
        code, http_code, err = curl_code("-H", "Host: reviews", f"http://{mesh.inbound}{path}")
        assert code != 0 and http_code == "000", \
            f"STRICT: plaintext curl got exit {code}, http {http_code} ({err})"
        notes.append(f"plaintext curl: exit {code} ({err[:60]})")
        h.wait_metric(mesh.reviews.addr["admin"],
                      "outrigger_downstream_tls_plaintext_refused_total",
                      lambda v: (v or 0) >= refused0 + 1, listener="inbound")

        # TLS without a client certificate: closed, no HTTP answer.
        refused1 = mesh.down("outrigger_downstream_tls_plaintext_refused_total")
        errors1 = mesh.down("outrigger_downstream_tls_handshake_errors_total")
        path = mesh.unique("nocert")
        rc, out, err = s_client(mesh.inbound, f"GET {path} HTTP/1.1\r\nHost: reviews\r\n"
                                "Connection: close\r\n\r\n".encode())
        assert b"HTTP/1." not in out, f"STRICT: TLS without a client certificate got {out[:200]!r}"
        assert rc is not None, "STRICT: a TLS connection without a client certificate stayed open"
        refused2 = mesh.down("outrigger_downstream_tls_plaintext_refused_total")
        errors2 = mesh.down("outrigger_downstream_tls_handshake_errors_total")
        assert refused2 + errors2 > refused1 + errors1, \
            "STRICT: the connection without a client certificate was not counted as refused " \
            "or as a handshake error"
        notes.append(f"no client cert: s_client exit {rc}, refused +{refused2 - refused1:.0f}, "
                     f"handshake errors +{errors2 - errors1:.0f}")
        assert not any(logged_path(e) == path for e in mesh.reviews.access_log())

        # A mesh-valid certificate for productpage (signed with the CA's key): 200, and the
        # server presents reviews' identity, verified against the bundle.
        path = mesh.unique("valid-cert")
        status, uris = tls_request(mesh.inbound, path, *valid, mesh.ca_pem)
        assert status == 200, f"STRICT: a mesh-valid client certificate got {status}"
        assert uris == [spiffe("reviews")], f"the reviews sidecar presents {uris}"
        e = mesh.logged(path)
        assert e.get("source_identity") == spiffe("productpage"), f"logged {e}"
        path = mesh.unique("valid-curl")
        code, http_code, err = curl_code("--cacert", mesh.ca_pem, "--cert", valid[0], "--key",
                                         valid[1], "-k", f"https://{mesh.inbound}{path}")
        assert code == 0 and http_code == "200", \
            f"STRICT: curl with a mesh-valid certificate: exit {code}, http {http_code}, {err}"
        rc, out, err = s_client(mesh.inbound, b"GET /s-client HTTP/1.1\r\nHost: reviews\r\n"
                                b"Connection: close\r\n\r\n", cert=valid[0], key=valid[1],
                                cafile=mesh.ca_pem)
        assert out.startswith(b"HTTP/1.1 200"), \
            f"s_client -verify_return_error with a valid cert: exit {rc}, {out[:100]!r}, {err}"

        # Refused certificates: a foreign CA, an expired one. The handshake fails.
        for what, (cert, key) in (("foreign-CA", foreign), ("expired", expired)):
            errors0 = mesh.down("outrigger_downstream_tls_handshake_errors_total")
            path = mesh.unique(what)
            code, http_code, err = curl_code("--cert", cert, "--key", key, "-k",
                                             f"https://{mesh.inbound}{path}")
            assert code != 0 and http_code == "000", \
                f"STRICT: a {what} client certificate got exit {code}, http {http_code}"
            h.wait_metric(mesh.reviews.addr["admin"],
                          "outrigger_downstream_tls_handshake_errors_total",
                          lambda v: (v or 0) >= errors0 + 1, listener="inbound")
            assert not any(logged_path(e) == path for e in mesh.reviews.access_log()), \
                f"a request with a {what} certificate reached the access log"
            notes.append(f"{what}: curl exit {code} ({err[:70]})")

        # Signed by the mesh CA but with no SPIFFE ID: no mesh identity, refused.
        path = mesh.unique("noid")
        refused0 = mesh.down("outrigger_downstream_tls_plaintext_refused_total")
        errors0 = mesh.down("outrigger_downstream_tls_handshake_errors_total")
        code, http_code, err = curl_code("--cert", no_id[0], "--key", no_id[1], "-k",
                                         f"https://{mesh.inbound}{path}")
        assert code != 0 and http_code == "000", \
            f"STRICT: a certificate without a SPIFFE ID got exit {code}, http {http_code}"
        h.poll_until(lambda: mesh.down("outrigger_downstream_tls_plaintext_refused_total") +
                     mesh.down("outrigger_downstream_tls_handshake_errors_total") >
                     refused0 + errors0, 5, "the certificate without a SPIFFE ID to be counted")
        notes.append(f"no SPIFFE ID: curl exit {code}, http {http_code}")

        # New connections from productpage's sidecar (parallel requests) are mTLS and let in.
        burst = concurrent_via_front(mesh, 3, 200, "strict-par")
        assert all(st == 200 for _, st in burst), f"STRICT: parallel requests: {burst}"
        for p, _ in burst:
            assert mesh.logged(p).get("source_identity") == spiffe("productpage")

        # Back to PERMISSIVE, live.
        mesh.set_mode("PERMISSIVE")
        mesh.wait_plaintext_accepted()
        path = mesh.unique("mtls-after")
        assert mesh.via_front(path).status == 200
        assert mesh.logged(path).get("source_identity") == spiffe("productpage")
    finally:
        statuses = load.finish()
    print("    " + "\n    ".join(notes))
    print(f"    load through productpage: {statuses}")
    assert set(statuses) == {200}, f"requests through productpage failed: {statuses}"
    assert load.sent >= 50, f"only {load.sent} requests were sent"
    assert mesh.up("outrigger_upstream_tls_handshake_errors_total") == 0


def test_strict_closes_existing_plaintext_connections():
    """A plaintext keep-alive connection opened under PERMISSIVE must not keep working once the
    mesh is STRICT (the listener's mode is checked only when a connection is accepted)."""
    mesh = Mesh(mode="PERMISSIVE")
    c = h.KeepAliveClient(mesh.inbound, timeout=5)
    try:
        r = c.request(mesh.unique("keepalive-before"), headers={"Host": "reviews"})
        assert r.status == 200
        mesh.set_mode("STRICT")
        mesh.wait_strict()
        path = mesh.unique("keepalive-after")
        try:
            r = c.request(path, headers={"Host": "reviews"})
            got = f"HTTP {r.status}"
        except Exception as e:
            got = f"{type(e).__name__}: {e}"
        served = []
        if got.startswith("HTTP "):   # the access log is flushed on a timer: wait for it
            try:
                served = [mesh.logged(path, timeout=3)]
            except AssertionError:
                pass
        print(f"    request on the old plaintext connection after STRICT: {got}; "
              f"callee logged: {served}")
        brief = [{k: e.get(k) for k in ("path", "response_code", "source_identity")}
                 for e in served]
        assert not got.startswith("HTTP 200") and not served, \
            "STRICT: a plaintext keep-alive connection opened under PERMISSIVE is still served " \
            f"after the switch ({got}; callee access log: {brief})"
    finally:
        c.close()


def test_disable_plaintext_only():
    mesh = Mesh(mode=None)
    path = mesh.unique("mtls")
    assert mesh.via_front(path).status == 200
    assert mesh.logged(path).get("source_identity") == spiffe("productpage")
    mesh.set_mode("DISABLE")

    def plaintext_hop():
        p = mesh.unique("disable-probe")
        if mesh.via_front(p).status != 200:
            return False
        return mesh.logged(p).get("source_identity") == ""
    h.poll_until(plaintext_hop, 10, "productpage -> reviews to go plaintext (DISABLE)",
                 interval=0.05)
    up0 = mesh.up("outrigger_upstream_tls_handshakes_total")
    down0 = mesh.down("outrigger_downstream_tls_handshakes_total")
    for _ in range(3):
        assert mesh.via_front(mesh.unique("disabled")).status == 200
    results = concurrent_via_front(mesh, 3, 200, "disabled-par")
    assert all(s == 200 for _, s in results), results
    assert mesh.up("outrigger_upstream_tls_handshakes_total") == up0, "DISABLE: caller used TLS"
    assert mesh.down("outrigger_downstream_tls_handshakes_total") == down0, \
        "DISABLE: callee accepted TLS"
    path = mesh.unique("plain")
    code, http_code, err = curl_code("-H", "Host: reviews", f"http://{mesh.inbound}{path}")
    assert code == 0 and http_code == "200", f"DISABLE plaintext: {code} {http_code} {err}"
    # A TLS client gets no TLS server.
    valid = make_leaf(fresh_path("client-certs"), "productpage", mesh.ca_pem,
                      os.path.join(mesh.ca_dir, "ca-key.pem"), f"URI:{spiffe('productpage')}")
    code, http_code, err = curl_code("--cert", valid[0], "--key", valid[1], "-k",
                                     f"https://{mesh.inbound}/tls-under-disable")
    assert code != 0 and http_code == "000", f"DISABLE: TLS got exit {code}, http {http_code}"
    assert mesh.down("outrigger_downstream_tls_handshakes_total") == down0
    # And back to mTLS.
    mesh.set_mode("PERMISSIVE")

    def mtls_hop():
        p = mesh.unique("back")
        return mesh.via_front(p).status == 200 and \
            mesh.logged(p).get("source_identity") == spiffe("productpage")
    h.poll_until(mtls_hop, 10, "productpage -> reviews back to mTLS", interval=0.05)
    print(f"    DISABLE: curl over TLS exit {code} ({err[:60]})")


def test_callee_with_another_identity_refused():
    """The endpoint registered as reviews advertises the address of a ratings sidecar (which
    holds a genuine ratings certificate): the caller must see ratings' identity where it expects
    reviews' and send nothing."""
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir)
    ratings_echo = h.start_echo("ratings")
    ratings = sidecar(cp, "ratings", app=ratings_echo.address, access_log="stdout")
    wait_ready(ratings)
    impostor_target = ratings.addr["inbound"]
    # A genuine reviews sidecar (reviews token) whose advertised address is ratings' inbound.
    reviews = sidecar(cp, "reviews", app="127.0.0.1:1",
                      extra=["--advertise-address", impostor_target])
    front = sidecar(cp, "productpage", outbound=True)
    for p in (reviews, front):
        wait_ready(p)
    counter = h.EchoRequestCounter(ratings_echo.address)
    fadmin = front.addr["admin"]

    def tried():
        r = h.http_request(front.addr["outbound"], "/impostor", headers={"Host": "reviews"},
                           timeout=5)
        return (r,) if r.status != 404 and \
            m0(fadmin, "outrigger_upstream_tls_handshake_errors_total",
               cluster=REVIEWS_CLUSTER) >= 1 else None
    r = h.poll_until(tried, 10, "a request to reviews that reaches the (wrong) endpoint")[0]
    statuses = [r.status]
    for _ in range(3):
        statuses.append(h.http_request(front.addr["outbound"], "/impostor",
                                       headers={"Host": "reviews"}, timeout=5).status)
    errors = m0(fadmin, "outrigger_upstream_tls_handshake_errors_total", cluster=REVIEWS_CLUSTER)
    ok_hs = m0(fadmin, "outrigger_upstream_tls_handshakes_total", cluster=REVIEWS_CLUSTER)
    served = counter.delta()
    warn = [l for l in front.stderr_lines() if spiffe("ratings") in l]
    print(f"    statuses {statuses}; caller handshake errors {errors:.0f}, accepted handshakes "
          f"{ok_hs:.0f}; ratings echo served {served}; {warn[:1]}")
    assert all(s >= 500 for s in statuses), f"requests to the impostor answered {statuses}"
    assert ok_hs == 0, f"the caller counted {ok_hs} good handshakes with the wrong identity"
    assert served == 0, f"the ratings app received {served} request(s) meant for reviews"
    assert not any(e.get("path") == "/impostor" for e in ratings.access_log()), \
        "the ratings sidecar received the request"
    assert warn and spiffe("reviews") in warn[0], \
        f"the caller must say which identity it got and which it expected: {warn[:2]}"


def test_rotation_under_load():
    mesh = Mesh(mode="STRICT", cp_extra=["--cert-ttl", "10s"])
    mesh.wait_strict()
    admins = {p.name: p.addr["admin"] for p in (mesh.reviews, mesh.front)}
    start = time.monotonic()
    load = Load(mesh.outbound, max_seconds=40)
    bursts = []
    hs_at_renewal = {}

    def renewals():
        return {n: m0(a, "outrigger_certificate_renewals_total") for n, a in admins.items()}

    def full_handshakes():
        return mesh.up("outrigger_upstream_tls_handshakes_total") - \
            mesh.up("outrigger_upstream_tls_resumed_total")
    try:
        # About 25 s of load. Every ~4.5 s a burst of parallel requests needs more upstream
        # connections than the pool keeps alive (idle connections close after 4 s), so new
        # handshakes happen with the renewed certificates too.
        next_burst = time.monotonic()
        for _ in range(1000):
            now = time.monotonic()
            if now - start >= 25:
                break
            if now >= next_burst:
                bursts += concurrent_via_front(mesh, 3, 100, "burst")
                next_burst = time.monotonic() + 4.5
            rn = renewals()
            for k in (1, 2):
                if k not in hs_at_renewal and min(rn.values()) >= k:
                    hs_at_renewal[k] = (mesh.down("outrigger_downstream_tls_handshakes_total"),
                                        full_handshakes())
            time.sleep(0.2)  # the scenario: ~25 s of steady load
    finally:
        statuses = load.finish()
    rn = renewals()
    hs_end = mesh.down("outrigger_downstream_tls_handshakes_total")
    full_end = full_handshakes()
    resumed_end = mesh.up("outrigger_upstream_tls_resumed_total")
    bad_bursts = [(p, s) for p, s in bursts if s != 200]
    print(f"    {load.sent} requests in {time.monotonic() - start:.1f}s: {statuses}; "
          f"renewals {rn}; (callee handshakes, caller full handshakes) at renewal 1/2: "
          f"{hs_at_renewal}, at the end ({hs_end:.0f}, {full_end:.0f}), caller resumed "
          f"{resumed_end:.0f}; {len(bursts)} burst requests")
    assert set(statuses) == {200}, f"requests failed during rotation: {statuses}"
    assert not bad_bursts, f"burst requests failed: {bad_bursts}"
    assert load.sent >= 200, f"only {load.sent} requests were sent"
    for n, v in rn.items():
        assert v >= 2, f"{n}: outrigger_certificate_renewals_total {v} (want >= 2 in 25 s)"
    assert 2 in hs_at_renewal and hs_end > hs_at_renewal[2][0], \
        "no new mTLS connection was made after both sidecars renewed twice"
    assert full_end > hs_at_renewal[2][1], \
        "every connection made after both sidecars renewed twice resumed an older session: " \
        "the renewed certificates were never presented"
    for n, a in admins.items():
        assert m0(a, "outrigger_certificate_request_failures_total") == 0, f"{n}: failures"
    assert mesh.up("outrigger_upstream_tls_handshake_errors_total") == 0
    assert mesh.down("outrigger_downstream_tls_handshake_errors_total") == 0


def test_no_private_key_in_logs():
    debug = ["--log-level", "debug"]
    mesh = Mesh(mode=None, cp_extra=["--cert-ttl", "10s", *debug], proxy_extra=debug)
    with open(os.path.join(mesh.ca_dir, "ca-key.pem")) as f:
        ca_key = f.read()
    key_body = "".join(l for l in ca_key.splitlines() if l and not l.startswith("-----"))
    # Exercise the TLS paths: mTLS, parallel connections (resumption), STRICT refusals, a bad
    # handshake, and a renewal on both sidecars.
    for _ in range(3):
        assert mesh.via_front(mesh.unique("dbg")).status == 200
    concurrent_via_front(mesh, 3, 200, "dbg-par")
    mesh.set_mode("STRICT")
    mesh.wait_strict()
    foreign_root = make_root(os.path.join(fresh_path("dbg-certs"), "foreign"))
    foreign = make_leaf(fresh_path("dbg-certs"), "foreign", *foreign_root,
                        f"URI:{spiffe('productpage')}")
    curl_code("--cert", foreign[0], "--key", foreign[1], "-k", f"https://{mesh.inbound}/bad")
    s_client(mesh.inbound, b"GET / HTTP/1.1\r\nHost: reviews\r\n\r\n", timeout=3)
    for p in (mesh.reviews, mesh.front):
        h.wait_metric(p.addr["admin"], "outrigger_certificate_renewals_total",
                      lambda v: (v or 0) >= 1, timeout=12)
    assert mesh.via_front(mesh.unique("dbg-after")).status == 200
    r = cli("proxy-status", "--control-plane", mesh.cp.xds, "--ca-bundle", mesh.ca_pem)
    assert r.returncode == 0, f"proxy-status: {r.stdout}{r.stderr}"
    places = [("outrigger proxy-status", r.stdout + r.stderr)]
    for proc in (mesh.cp, mesh.reviews, mesh.front, mesh.echo):
        places.append((f"{proc.name} stderr", proc.stderr_text()))
        places.append((f"{proc.name} stdout", "\n".join(proc.stdout_lines())))
    for p in (mesh.reviews, mesh.front):
        for path in ("/config_dump", "/metrics", "/clusters", "/"):
            r = h.http_request(p.addr["admin"], path, timeout=5)
            places.append((f"{p.name} admin {path}", r.text()))
    debug_lines = sum(1 for _, t in places for l in t.splitlines() if " debug " in l)
    print(f"    {debug_lines} debug lines, "
          f"{sum(len(t) for _, t in places)} characters checked")
    assert debug_lines > 0, "no debug line was printed (is --log-level debug honoured?)"
    for where, text in places:
        assert "PRIVATE KEY" not in text, f"a private key PEM appears in {where}"
        assert key_body[:40] not in text, f"the CA key's bytes appear in {where}"


# --------------------------------------------------------------------------------------------
# Rotating the root (docs/security.md, "Rotating the root")


def write_atomic(path, content):
    """Writes path through a temporary file outside its directory and os.replace."""
    tmp = fresh_path("atomic-tmp")
    with open(tmp, "w") as f:
        f.write(content)
    os.replace(tmp, path)


def read_text(path):
    with open(path) as f:
        return f.read()


def make_new_root(d):
    """The mesh's next root: P-256, CA:TRUE, keyCertSign/cRLSign, URI SAN spiffe://<td>; its key
    as PKCS#8 PEM. Returns (cert, key)."""
    os.makedirs(d, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "new-root-key-raw.pem", "-out", "new-root.pem", "-days", "365",
             "-subj", f"/O=outrigger/CN={TRUST_DOMAIN} root 2",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", f"subjectAltName=URI:spiffe://{TRUST_DOMAIN}", cwd=d)
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "new-root-key-raw.pem",
             "-out", "new-root-key.pem", cwd=d)
    return os.path.join(d, "new-root.pem"), os.path.join(d, "new-root-key.pem")


def server_chain_verifies(addr, client, cafile, path):
    """tls_request against reviews' inbound verifying its certificate against cafile only:
    (True, status) or (False, the verification error)."""
    try:
        status, uris = tls_request(addr, path, *client, cafile)
    except ssl.SSLCertVerificationError as e:
        return False, f"{e.verify_message} ({e.verify_code})"
    assert uris == [spiffe("reviews")], f"the reviews sidecar presents {uris}"
    return True, status


def show_server_issuer(addr, client):
    """openssl s_client -showcerts with a client certificate: the issuer line of the first
    certificate the server sent (its leaf)."""
    argv = ["openssl", "s_client", "-connect", addr, "-showcerts", "-cert", client[0],
            "-key", client[1]]
    r = subprocess.run(argv, input=b"", capture_output=True, timeout=15, env=h.clean_env())
    out = r.stdout.decode("utf-8", "replace")
    for line in out.splitlines():
        if line.strip().startswith("i:"):
            return line.strip()
    return f"(no certificate shown; exit {r.returncode}: {r.stderr.decode()[-200:]})"


def test_root_rotation_under_load():
    ttl = ["--cert-ttl", "10s"]
    mesh = Mesh(mode="STRICT", cp_extra=ttl)
    mesh.wait_strict()
    ca_dir = mesh.ca_dir
    old_root_pem = read_text(mesh.ca_pem)
    old_ca = (mesh.ca_pem, os.path.join(ca_dir, "ca-key.pem"))
    certs_dir = fresh_path("rotation")
    new_root, new_key = make_new_root(certs_dir)
    new_root_pem = read_text(new_root)
    with open(new_key) as f:
        assert f.readline().strip() == "-----BEGIN PRIVATE KEY-----", "the key is not PKCS#8"
    # Mesh clients of our own (productpage's identity), one from each root.
    client_old = make_leaf(certs_dir, "client-old", *old_ca, f"URI:{spiffe('productpage')}")
    client_new = make_leaf(certs_dir, "client-new", new_root, new_key,
                           f"URI:{spiffe('productpage')}")
    admins = {p.name: p.addr["admin"] for p in (mesh.reviews, mesh.front)}
    sidecar_bundles = {p.name: p.argv[p.argv.index("--ca-bundle") + 1]
                       for p in (mesh.reviews, mesh.front)}

    def renewals():
        return {n: m0(a, "outrigger_certificate_renewals_total") for n, a in admins.items()}

    def full_handshakes():
        return mesh.up("outrigger_upstream_tls_handshakes_total") - \
            mesh.up("outrigger_upstream_tls_resumed_total")

    def wait_renewed(base, n, what, timeout=30):
        def done():
            cur = renewals()
            return cur if all(cur[k] >= base[k] + n for k in base) else None
        return h.poll_until(done, timeout, f"both sidecars to renew {n} times {what} "
                            f"(renewals at the restart: {base})", interval=0.2)

    notes = []
    bursts = []
    load = Load(mesh.outbound, max_seconds=120)
    try:
        h.poll_until(lambda: load.sent >= 20, 10, "the background load to start")
        # Before: reviews presents a leaf of the old root; a client of the new root is refused.
        ok, st = server_chain_verifies(mesh.inbound, client_old, mesh.ca_pem,
                                       mesh.unique("before-old"))
        assert ok and st == 200, f"before the rotation, old-root client: {ok} {st}"
        code, http_code, _ = curl_code("--cert", client_new[0], "--key", client_new[1], "-k",
                                       f"https://{mesh.inbound}{mesh.unique('before-new')}")
        assert http_code == "000", \
            f"before the rotation, a client of the new root got exit {code}, http {http_code}"

        down_errors0 = mesh.down("outrigger_downstream_tls_handshake_errors_total")
        # (b) The new root into trust-bundle.pem; restart on the same --xds port.
        write_atomic(os.path.join(ca_dir, "trust-bundle.pem"), new_root_pem)
        t0 = time.monotonic()
        mesh.cp = restart_control(mesh.cp, ttl, name="outrigger-control-b")
        base_b = renewals()
        rn_b = wait_renewed(base_b, 2, "after the restart with both roots in the bundle")
        notes.append(f"(b) restart with the new root in trust-bundle.pem: renewals {base_b} -> "
                     f"{rn_b} in {time.monotonic() - t0:.1f}s")
        bursts += concurrent_via_front(mesh, 3, 100, "rot-b")
        # reviews trusts both roots now, and still presents a leaf of the old one.
        ok, st = server_chain_verifies(mesh.inbound, client_new, mesh.ca_pem,
                                       mesh.unique("b-new-client"))
        assert ok and st == 200, \
            f"(b) a client of the new root with reviews' old-root leaf: verified={ok}, {st}"

        # (c) Sign with the new root; the old root stays trusted through trust-bundle.pem.
        write_atomic(os.path.join(ca_dir, "trust-bundle.pem"), old_root_pem)
        t0 = time.monotonic()
        mesh.cp = restart_control(mesh.cp, [*ttl, "--ca-cert", new_root, "--ca-key", new_key],
                                  name="outrigger-control-c")
        mesh.cp.wait_for_stderr(r"mesh CA: .*new-root\.pem", timeout=5)
        base_c = renewals()
        full_c = full_handshakes()
        rn_c = wait_renewed(base_c, 2, "after the restart signing with the new root")
        notes.append(f"(c) restart signing with the new root: renewals {base_c} -> {rn_c} in "
                     f"{time.monotonic() - t0:.1f}s")
        bursts += concurrent_via_front(mesh, 3, 100, "rot-c")
        # reviews' leaf now chains to the new root (and no longer to the old one).
        ok_new, st_new = server_chain_verifies(mesh.inbound, client_old, new_root,
                                               mesh.unique("c-old-client"))
        ok_old, err_old = server_chain_verifies(mesh.inbound, client_new, mesh.ca_pem,
                                                mesh.unique("c-new-client"))
        issuer = show_server_issuer(mesh.inbound, client_new)
        notes.append(f"(c) reviews' leaf: issuer {issuer}; against the new root: {ok_new} "
                     f"{st_new}; against the old root: {ok_old} {err_old}")
        assert ok_new and st_new == 200, \
            f"(c) reviews' leaf does not verify against the new root (or an old-root client " \
            f"was refused): {ok_new} {st_new}; issuer {issuer}"
        assert not ok_old, f"(c) reviews still presents a leaf of the old root: {err_old}"
        # productpage's renewals since (c) were signed by the new signer.
        issued = [l for l in mesh.cp.stderr_lines()
                  if f"issued {spiffe('productpage')} " in l and "(renewal)" in l]
        assert len(issued) >= 2, f"(c) productpage's renewals in the control plane's log: {issued}"
        # A little more load on the new leaves, over new connections too.
        bursts += concurrent_via_front(mesh, 3, 100, "rot-c2")
    finally:
        statuses = load.finish()
    for p in (mesh.reviews, mesh.front):
        assert read_text(sidecar_bundles[p.name]) == old_root_pem, \
            f"{p.name}'s --ca-bundle file changed"
    bad_bursts = [(p, s) for p, s in bursts if s != 200]
    failures = {n: m0(a, "outrigger_certificate_request_failures_total")
                for n, a in admins.items()}
    full_end = full_handshakes()
    print("    " + "\n    ".join(notes))
    print(f"    load: {load.sent} requests: {statuses}; renewal failures {failures}; "
          f"{len(bursts)} burst requests; caller full handshakes at (c) {full_c:.0f}, at the "
          f"end {full_end:.0f}")
    assert set(statuses) == {200}, f"requests failed during the root rotation: {statuses}"
    assert not bad_bursts, f"burst requests failed: {bad_bursts}"
    assert load.sent >= 200, f"only {load.sent} requests were sent"
    assert mesh.up("outrigger_upstream_tls_handshake_errors_total") == 0, \
        "productpage's sidecar failed mTLS handshakes with reviews"
    assert mesh.down("outrigger_downstream_tls_handshake_errors_total") == down_errors0 + 1, \
        "reviews' sidecar failed inbound handshakes (other than the one refused on purpose)"
    assert full_end > full_c, \
        "productpage's sidecar made no full mTLS handshake with reviews after the switch"


# --------------------------------------------------------------------------------------------
# Authorization with mesh identities


AUTHZ_DENY_ADMIN = """\
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {name: reviews-no-admin, namespace: default}
spec:
  targetRef: {group: "", kind: Service, name: reviews}
  action: DENY
  rules:
    - paths: ["/admin*"]
"""


def authz_policies(allow_mode):
    """The ALLOW policy for reviews (productpage may GET) in allow_mode, and the DENY of /admin*."""
    return f"""\
apiVersion: outrigger.dev/v1alpha1
kind: AuthorizationPolicy
metadata: {{name: reviews-readers, namespace: default}}
spec:
  targetRef: {{group: "", kind: Service, name: reviews}}
  action: ALLOW
  mode: {allow_mode}
  rules:
    - principals: ["{spiffe('productpage')}"]
      methods: ["GET"]
---
""" + AUTHZ_DENY_ADMIN


def test_authorization_with_identities():
    mesh = Mesh(mode="PERMISSIVE", extra_docs=authz_policies("Enforce"))
    ratings = sidecar(mesh.cp, "ratings", outbound=True)
    wait_ready(ratings)
    radmin = mesh.reviews.addr["admin"]

    def call(proxy, method, path):
        """A request through proxy's outbound sidecar to reviews (a unique query string)."""
        full = f"{path}?q={mesh.unique('authz')[1:]}"
        r = h.http_request(proxy.addr["outbound"], full, method=method,
                           headers={"Host": "reviews"}, body=b"x" if method == "POST" else None)
        return r, full

    def entry(full):
        return mesh.reviews.wait_for_access_log(lambda e: e.get("path") == full, 5,
                                                f"reviews access log line for {full}")

    # The policy reaches reviews with its first config; wait for it to be enforced anyway.
    h.poll_until(lambda: call(ratings, "GET", "/")[0].status == 403, 10,
                 "ratings -> reviews to be denied")
    denied0 = m0(radmin, "outrigger_authz_denied_total", listener="inbound")
    rbac0 = m0(radmin, "outrigger_requests_total", listener="inbound", response_code="403",
               response_flags="RBAC")
    counter = h.EchoRequestCounter(mesh.echo.address)

    matrix = []   # (who, method, path, want status, want authz, want source_identity)
    for who, proxy, method, path, want, note in (
            ("productpage", mesh.front, "GET", "/", 200, "allow default/reviews-readers"),
            ("productpage", mesh.front, "POST", "/", 403, "deny (no ALLOW policy matches)"),
            ("productpage", mesh.front, "GET", "/admin", 403, "deny default/reviews-no-admin"),
            ("ratings", ratings, "GET", "/", 403, "deny (no ALLOW policy matches)")):
        r, full = call(proxy, method, path)
        matrix.append((who, method, path, r.status))
        assert r.status == want, f"{who} {method} {path}: want {want}, got {r.status} {r.body!r}"
        if want == 403:
            assert r.text().startswith("RBAC: access denied"), f"{who} {method} {path}: {r.text()}"
        e = entry(full)
        assert e.get("source_identity") == spiffe(who), f"{who} {method} {path}: logged {e}"
        assert e.get("response_code") == want and e.get("authz") == note, \
            f"{who} {method} {path}: want authz {note!r}, logged {e}"
        if want == 403:
            assert e.get("response_flags") == "RBAC", f"{who} {method} {path}: logged {e}"
    # Plaintext, straight to reviews' inbound port: no principal, so no ALLOW rule matches.
    plain = f"/?q={mesh.unique('plain')[1:]}"
    code, http_code, err = curl_code("-H", "Host: reviews", f"http://{mesh.inbound}{plain}")
    matrix.append(("plaintext curl", "GET", "/", http_code))
    assert code == 0 and http_code == "403", f"plaintext curl: exit {code}, http {http_code}, {err}"
    e = entry(plain)
    assert e.get("source_identity") == "" and e.get("authz") == "deny (no ALLOW policy matches)" \
        and e.get("response_flags") == "RBAC", f"plaintext curl: logged {e}"

    h.wait_metric(radmin, "outrigger_requests_total", lambda v: (v or 0) == rbac0 + 4,
                  listener="inbound", response_code="403", response_flags="RBAC")
    denied = m0(radmin, "outrigger_authz_denied_total", listener="inbound")
    assert denied == denied0 + 4, f"outrigger_authz_denied_total {denied0} -> {denied}"
    served = counter.delta()
    assert served == 1, \
        f"the reviews app served {served} requests (only the allowed one may reach it)"
    print(f"    enforced: {matrix}")

    # The ALLOW policy to DryRun, live (the DENY stays enforced).
    t0 = time.monotonic()
    write_atomic(os.path.join(mesh.cp.policy, "extra.yaml"), authz_policies("DryRun"))
    h.poll_until(lambda: call(ratings, "GET", "/")[0].status == 200, 10,
                 "ratings -> reviews to be let through (ALLOW policy in DryRun)")
    applied = time.monotonic() - t0
    dry0 = m0(radmin, "outrigger_authz_dry_run_denied_total", listener="inbound")
    denied0 = m0(radmin, "outrigger_authz_denied_total", listener="inbound")
    r, full = call(ratings, "GET", "/")
    assert r.status == 200, f"DryRun: ratings GET / answered {r.status}"
    h.wait_metric(radmin, "outrigger_authz_dry_run_denied_total", lambda v: (v or 0) == dry0 + 1,
                  listener="inbound")
    # (For dry-run ALLOW policies none of which matches, the reason names no policy: "(no
    # matching ALLOW policy (dry run))"; README's example shows the policy's name.)
    line = mesh.reviews.wait_for_stderr(
        r"authorization dry run: GET " + re.escape(full) + " from " +
        re.escape(spiffe("ratings")) + r" would be denied \(.+\)", timeout=5)
    e = entry(full)
    assert str(e.get("authz", "")).startswith("dry-run deny ") and \
        e.get("source_identity") == spiffe("ratings") and e.get("response_code") == 200, \
        f"DryRun: ratings' request logged {e}"
    # productpage's GET is allowed by the dry-run policy too (no dry-run note); /admin is still
    # denied by the enforced DENY.
    r, full = call(mesh.front, "GET", "/")
    assert r.status == 200, f"DryRun: productpage GET / answered {r.status}"
    r, full = call(mesh.front, "GET", "/admin")
    assert r.status == 403, f"DryRun: the enforced DENY of /admin* must still apply: {r.status}"
    assert entry(full).get("authz") == "deny default/reviews-no-admin"
    denied = m0(radmin, "outrigger_authz_denied_total", listener="inbound")
    assert denied == denied0 + 1, f"DryRun: outrigger_authz_denied_total {denied0} -> {denied}"
    print(f"    DryRun applied after {applied:.2f}s; {line.group(0)}; access log authz "
          f"{e.get('authz')!r}")


if __name__ == "__main__":
    h.main([
        test_mtls_on_by_default,
        test_successive_new_connections_resume,
        test_permissive_accepts_plaintext_and_mtls,
        test_strict_mode,
        test_strict_closes_existing_plaintext_connections,
        test_disable_plaintext_only,
        test_callee_with_another_identity_refused,
        test_rotation_under_load,
        test_no_private_key_in_logs,
        test_root_rotation_under_load,
        test_authorization_with_identities,
    ])
