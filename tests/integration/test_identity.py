# The mesh CA with real processes: outrigger-control --ca-dir creates (or reloads) its root, serves
# TLS on --xds and signs sidecar certificates; `outrigger token create` mints join tokens;
# outrigger-proxy --ca-bundle gets its certificate with a token, follows the control plane over
# mTLS and renews at about half the lifetime. Covered: joining, renewal under traffic, a token for
# another identity, forged tokens, a control plane restart keeping its CA, file modes and keys
# never printed, a user-provided intermediate CA, proxy-status over TLS, and a plaintext proxy
# shut out.

import calendar
import os
import re
import ssl
import stat
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
"""

TRUST_DOMAIN = "cluster.local"


def spiffe(service, namespace="default"):
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service}"




def policy_dir():
    d = fresh_path("policy")
    os.makedirs(d)
    with open(os.path.join(d, "services.yaml"), "w") as f:
        f.write(SERVICES)
    return d


def start_control(ca_dir, extra=(), xds="127.0.0.1:0", policy=None, name="outrigger-control"):
    """outrigger-control with the mesh CA in ca_dir; `.xds`, `.admin`, `.policy`, `.ca_dir`."""
    policy = policy or policy_dir()
    p = h.Process(name, [h.bin_path("outrigger-control"), "--policy", policy, "--xds", xds,
                         "--admin", "127.0.0.1:0", "--debounce", "50ms", "--ca-dir", ca_dir,
                         *extra], env=h.clean_env())
    p.xds = p.wait_for_listen("xds")
    p.admin = p.wait_for_listen("admin")
    p.policy, p.ca_dir = policy, ca_dir
    return p


def sidecar(xds, service, ca_bundle=None, token=None, token_via_env=False, app=None,
            outbound=False, node_id=None, extra=()):
    """A sidecar following the control plane: inbound for `app`, or outbound. The join token
    goes in a file (default) or in OUTRIGGER_JOIN_TOKEN."""
    args = ["--admin", "127.0.0.1:0", "--control-plane", xds, "--service", service,
            "--access-log", "off", "--concurrency", "1"]
    if app:
        args += ["--inbound", "127.0.0.1:0", "--app", app]
    if outbound:
        args += ["--outbound", "127.0.0.1:0"]
    if node_id:
        args += ["--node-id", node_id]
    if ca_bundle:
        args += ["--ca-bundle", ca_bundle]
    env = {}
    if token is not None:
        if token_via_env:
            env["OUTRIGGER_JOIN_TOKEN"] = token
        else:
            args += ["--join-token-file", token_file(token)]
    p = h.start_proxy([*args, *extra], env=env, name=f"{node_id or service}-sidecar")
    p.node_id = node_id
    return p


def ready_status(proxy):
    return h.http_request(proxy.addr["admin"], "/ready", timeout=2).status


def wait_ready(proxy, timeout=10):
    h.wait_http_ok(f"http://{proxy.addr['admin']}/ready", timeout)


def metric(admin, name, **labels):
    return h.metric_sum(h.metrics(admin), name, **labels)


def cert_expiry(proxy):
    """(spiffe_id, expiry) from outrigger_certificate_expiry_timestamp_seconds."""
    s = h.series(h.metrics(proxy.addr["admin"]), "outrigger_certificate_expiry_timestamp_seconds")
    assert len(s) == 1, f"expected one certificate expiry series, got {s}"
    return s[0][0].get("spiffe_id"), s[0][1]


def stays_not_ready(proxies, seconds=3.0):
    """Checks for `seconds` (bounded loop) that no proxy's /ready answers 200 and none reports
    outrigger_xds_connected 1."""
    deadline = time.monotonic() + seconds
    checks = 0
    while time.monotonic() < deadline and checks < 1000:
        for p in proxies:
            st = ready_status(p)
            assert st != 200, f"{p.name} became ready (/ready {st})"
            conn = metric(p.addr["admin"], "outrigger_xds_connected")
            assert not conn, f"{p.name} reports outrigger_xds_connected {conn}"
        checks += 1
        time.sleep(0.1)  # the scenario: watching for ~3 s that nothing becomes ready
    return checks


def iso_to_epoch(s):
    """2026-11-23T00:00:31+00:00 (or ...Z) -> epoch seconds."""
    s = s.replace("Z", "+00:00")
    if not s.endswith("+00:00"):
        return None
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))


VALID_UNTIL_RE = r"certificate for (spiffe://\S+) valid until (\S+)"


class Load:
    """Background traffic productpage -> reviews through an outbound sidecar; bounded in time and
    count. Alternates keep-alive and fresh client connections."""

    def __init__(self, outbound_addr, max_seconds=40, max_requests=100000):
        self.addr, self.statuses, self.stop_flag = outbound_addr, {}, threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self.run, args=(max_seconds, max_requests),
                                       daemon=True)
        self.thread.start()

    def _count(self, key):
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
                        r = c.request("/", headers={"Host": "reviews"})
                        self.sent += 1
                        self._count(r.status)
            except Exception as e:  # a broken connection counts as a failure
                self._count(f"error: {e!r}")

    def finish(self):
        self.stop_flag.set()
        self.thread.join(timeout=15)
        return self.statuses


# --------------------------------------------------------------------------------------------


def test_join_with_token():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir)
    token = make_token(ca_dir, "reviews")
    echo = h.start_echo("reviews")
    p = sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", token, app=echo.address,
                node_id="reviews-join")
    wait_ready(p)
    m = p.wait_for_stderr(VALID_UNTIL_RE, timeout=5)
    assert m.group(1) == spiffe("reviews"), f"proxy got {m.group(1)}"
    now = time.time()
    sid, expiry = cert_expiry(p)
    assert sid == spiffe("reviews"), f"metric spiffe_id {sid!r}"
    assert now < expiry <= now + 24 * 3600 + 120, \
        f"expiry {expiry} must be in the future and within the default 24h (now {now:.0f})"
    logged = iso_to_epoch(m.group(2))
    assert logged is None or abs(logged - expiry) <= 1, \
        f"logged 'valid until {m.group(2)}' ({logged}) differs from the metric ({expiry})"
    admin = p.addr["admin"]
    assert metric(admin, "outrigger_xds_connected") == 1
    assert metric(admin, "outrigger_certificate_renewals_total") == 0
    assert metric(admin, "outrigger_certificate_request_failures_total") == 0

    cp.wait_for_stderr(rf"issued {re.escape(spiffe('reviews'))} to node 'reviews-join' until "
                       r".*\(join token\)", timeout=5)
    cm = h.metrics(cp.admin)
    signed = h.metric_sum(cm, "outrigger_control_certificates_signed_total")
    assert signed is not None and signed >= 1, f"signed_total {signed}"
    assert h.metric_sum(cm, "outrigger_control_certificates_refused_total") == 0
    ca_exp = h.metric_sum(cm, "outrigger_control_ca_expiry_timestamp_seconds")
    assert ca_exp is not None and ca_exp > now + 24 * 3600, f"CA expiry {ca_exp}"
    per_node = h.series(cm, "outrigger_control_certificate_expiry_timestamp_seconds",
                        node="reviews-join")
    assert len(per_node) == 1 and per_node[0][0].get("spiffe_id") == spiffe("reviews") and \
        abs(per_node[0][1] - expiry) <= 1, f"control plane's expiry series: {per_node}"
    print(f"    {m.group(0)}; CA valid {((ca_exp - now) / 86400 / 365):.1f} years")


def test_renewal_under_traffic():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir, ["--cert-ttl", "10s"])
    echo = h.start_echo("reviews")
    reviews = sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", make_token(ca_dir, "reviews"),
                      app=echo.address, node_id="reviews-renew")
    front = sidecar(cp.xds, "productpage", f"{ca_dir}/ca.pem", make_token(ca_dir, "productpage"),
                    token_via_env=True, outbound=True, node_id="productpage-renew")
    for p in (reviews, front):
        wait_ready(p)

    def routed():
        return h.http_request(front.addr["outbound"], "/", headers={"Host": "reviews"},
                              timeout=2).status == 200
    h.poll_until(routed, 10, "productpage's sidecar to route to reviews")
    first = {p.name: cert_expiry(p)[1] for p in (reviews, front)}
    t_start = time.time()
    load = Load(front.addr["outbound"])
    disconnected = []

    def watch_connected():
        for p in (reviews, front):
            if metric(p.addr["admin"], "outrigger_xds_connected") != 1:
                disconnected.append((p.name, round(time.time() - t_start, 2)))

    def renewed():
        watch_connected()
        for p in (reviews, front):
            if (metric(p.addr["admin"], "outrigger_certificate_renewals_total") or 0) < 1:
                return False
            if cert_expiry(p)[1] <= first[p.name]:
                return False
        return True
    try:
        h.poll_until(renewed, 15, "both sidecars to renew (renewals_total >= 1, expiry moved)",
                     interval=0.1)
        renewed_after = time.time() - t_start
        # Keep traffic going until the first certificates have expired: the stream and the
        # routes must outlive them (bounded: they were valid for 10 s).
        past_first = max(first.values()) + 1.5

        def first_expired():
            watch_connected()
            return time.time() > past_first
        h.poll_until(first_expired, 15, "the first certificates to expire", interval=0.1)
    finally:
        statuses = load.finish()
    print(f"    renewed after {renewed_after:.1f}s; load through the renewals: {statuses}")
    assert set(statuses) == {200}, f"requests failed during renewal: {statuses}"
    assert load.sent >= 100, f"only {load.sent} requests were sent"
    assert not disconnected, f"outrigger_xds_connected dropped during renewal: {disconnected}"
    for p in (reviews, front):
        admin = p.addr["admin"]
        assert metric(admin, "outrigger_certificate_request_failures_total") == 0, \
            f"{p.name}: certificate request failures"
        assert ready_status(p) == 200
        ended = [l for l in p.stderr_lines() if re.search(r"stream to .* ended", l)]
        assert not ended, f"{p.name}'s xDS stream ended during renewal: {ended[:3]}"
        cp.wait_for_stderr(rf"issued \S+ to node '{p.node_id}' until .*\(renewal\)", timeout=1)
    assert h.metric_sum(h.metrics(cp.admin), "outrigger_control_certificates_signed_total") >= 4


def test_token_for_another_identity_exits():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir)
    cases = [
        ("ratings token, service reviews", make_token(ca_dir, "ratings"), "ratings"),
        ("reviews token in namespace other, default namespace",
         make_token(ca_dir, "reviews", "--namespace", "other"), "other"),
    ]
    for what, token, mentioned in cases:
        p = h.Process("wrong-identity-sidecar",
                      [h.bin_path("outrigger-proxy"), "--inbound", "127.0.0.1:0", "--app",
                       "127.0.0.1:1", "--admin", "127.0.0.1:0", "--control-plane", cp.xds,
                       "--service", "reviews", "--ca-bundle", f"{ca_dir}/ca.pem",
                       "--join-token-file", token_file(token), "--concurrency", "1"],
                      env=h.clean_env())
        p.expect_exit = True
        rc = p.wait_exit(10)
        p.wait_eof()
        err = p.stderr_text()
        last = err.strip().splitlines()[-1] if err.strip() else ""
        print(f"    {what}: exit {rc}: {last}")
        assert rc != 0, f"{what}: the proxy must exit non-zero, got {rc}"
        assert "token" in err and mentioned in err and \
            re.search(r"not for|another|other identity|mismatch", err), \
            f"{what}: the message must say the token is for another identity:\n{err[-600:]}"
    cm = h.metrics(cp.admin)
    assert (h.metric_sum(cm, "outrigger_control_certificates_signed_total") or 0) == 0, \
        "no certificate may be issued for a mismatched token"


def test_forged_tokens_refused():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir)
    good = make_token(ca_dir, "reviews")
    head, mac = good.rsplit(".", 1)
    i = len(mac) // 2
    tampered = f"{head}.{mac[:i]}{'A' if mac[i] != 'A' else 'B'}{mac[i + 1:]}"
    assert tampered != good
    # A token minted by another mesh's CA directory (another control plane's token key).
    other_dir = fresh_path("ca-other")
    other_cp = start_control(other_dir, name="other-control")
    foreign = make_token(other_dir, "reviews")
    other_cp.kill()
    proxies = [sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", tampered, app="127.0.0.1:1",
                       node_id="reviews-tampered"),
               sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", foreign, app="127.0.0.1:1",
                       node_id="reviews-foreign")]
    for p in proxies:
        cp.wait_for_stderr(rf"certificate request .*'{p.node_id}'.* refused", timeout=10)
        h.wait_metric(p.addr["admin"], "outrigger_certificate_request_failures_total",
                      lambda v: v is not None and v >= 1)
    checks = stays_not_ready(proxies, 3.0)
    for p in proxies:
        assert p.alive(), f"{p.name} must keep retrying, not exit"
    cm = h.metrics(cp.admin)
    refused = h.metric_sum(cm, "outrigger_control_certificates_refused_total")
    assert refused is not None and refused >= 2, f"refused_total {refused}"
    assert (h.metric_sum(cm, "outrigger_control_certificates_signed_total") or 0) == 0
    line = next(l for l in cp.stderr_lines() if "refused" in l)
    print(f"    {checks} checks over 3 s, refused_total {refused:.0f}; {line}")


def test_control_plane_restart_keeps_ca():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir)

    def read(name):
        with open(os.path.join(ca_dir, name), "rb") as f:
            return f.read()
    before = {n: read(n) for n in ("ca.pem", "ca-key.pem", "token.key")}
    early_token = make_token(ca_dir, "productpage")   # minted before the restart
    tok = make_token(ca_dir, "reviews")
    echo = h.start_echo("reviews")
    p = sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", tok, app=echo.address,
                node_id="reviews-restart")
    wait_ready(p)
    _, expiry_before = cert_expiry(p)
    # The token only serves the first certificate: take it away.
    for a in p.argv:
        if os.path.basename(a).startswith("token-"):
            os.remove(a)

    cp.send_signal(15)
    cp.wait_exit(10)
    h.wait_metric(p.addr["admin"], "outrigger_xds_connected", lambda v: v == 0, timeout=10)
    cp2 = start_control(ca_dir, xds=cp.xds, policy=cp.policy, name="outrigger-control-2")
    after = {n: read(n) for n in before}
    for n in before:
        assert after[n] == before[n], f"{n} changed across the restart"
    created = [l for l in cp2.stderr_lines() if "created a new root" in l]
    assert not created, f"the restarted control plane made a new root: {created}"
    h.wait_metric(p.addr["admin"], "outrigger_xds_connected", lambda v: v == 1, timeout=15)
    wait_ready(p)
    cp2.wait_for_stderr(r"proxy reviews-restart connected", timeout=5)
    # The token minted before the restart is still accepted (token.key reloaded).
    p2 = sidecar(cp2.xds, "productpage", f"{ca_dir}/ca.pem", early_token, outbound=True,
                 node_id="productpage-restart")
    wait_ready(p2)
    r = cli("proxy-status", "--control-plane", cp2.xds, "--ca-bundle", f"{ca_dir}/ca.pem")
    assert r.returncode == 0 and "reviews-restart" in r.stdout and \
        "productpage-restart" in r.stdout, f"proxy-status after restart: {r.stdout}{r.stderr}"
    reload_line = next((l for l in cp2.stderr_lines() if "CA" in l or "root" in l), "")
    print(f"    restarted: {reload_line.strip()}")
    assert cert_expiry(p)[1] >= expiry_before


def _modes(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_modes_and_no_key_leak():
    ca_dir = fresh_path("ca")   # does not exist yet: the control plane creates it
    old = os.umask(0)   # the modes must not depend on the umask of whoever starts it
    try:
        cp = start_control(ca_dir, ["--cert-ttl", "10s", "--log-level", "debug"])
    finally:
        os.umask(old)
    assert _modes(ca_dir) == 0o700, f"CA dir mode {oct(_modes(ca_dir))}"
    for n in ("ca-key.pem", "token.key"):
        assert _modes(os.path.join(ca_dir, n)) == 0o600, \
            f"{n} mode {oct(_modes(os.path.join(ca_dir, n)))}"
    with open(os.path.join(ca_dir, "ca.pem")) as f:
        ca_pem = f.read()
    with open(os.path.join(ca_dir, "ca-key.pem")) as f:
        ca_key = f.read()
    assert "BEGIN CERTIFICATE" in ca_pem and "PRIVATE KEY" not in ca_pem
    assert "PRIVATE KEY" in ca_key
    listing = {n: oct(_modes(os.path.join(ca_dir, n))) for n in sorted(os.listdir(ca_dir))}
    print(f"    {ca_dir[-8:]}: {oct(_modes(ca_dir))} {listing}")

    token = make_token(ca_dir, "reviews")
    echo = h.start_echo("reviews")
    p = sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", token, app=echo.address,
                node_id="reviews-leak", extra=["--log-level", "debug"])
    wait_ready(p)
    # One renewal too, so that path's logging is covered.
    h.wait_metric(p.addr["admin"], "outrigger_certificate_renewals_total",
                  lambda v: v is not None and v >= 1, timeout=10)
    r = cli("proxy-status", "--control-plane", cp.xds, "--ca-bundle", f"{ca_dir}/ca.pem")
    assert r.returncode == 0, r.stderr

    key_body = "".join(l for l in ca_key.splitlines() if l and not l.startswith("-----"))
    mac = token.rsplit(".", 1)[1]
    places = []
    for proc in (cp, p, echo):
        places.append((f"{proc.name} stderr", proc.stderr_text()))
        places.append((f"{proc.name} stdout", "\n".join(proc.stdout_lines())))
    for argv, out, err in CLI_OUTPUTS:
        if argv[1:3] != ["token", "create"]:   # the token itself is that command's output
            places.append((" ".join(argv[1:3]), out + err))
    for path in ("/config_dump", "/metrics", "/clusters", "/"):
        r = h.http_request(p.addr["admin"], path, timeout=5)
        places.append((f"proxy admin {path}", r.text()))
    r = h.http_request(cp.admin, "/metrics", timeout=5)
    places.append(("control plane /metrics", r.text()))
    for where, text in places:
        assert "PRIVATE KEY" not in text, f"a private key PEM appears in {where}"
        assert key_body[:40] not in text, f"the CA key's bytes appear in {where}"
        assert mac not in text, f"the join token's MAC appears in {where}"


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr}"
    return r.stdout


def make_user_ca(d):
    """A root and an intermediate signed by it (P-256). Returns paths."""
    os.makedirs(d)
    ca_ext = ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    with open(os.path.join(d, "int.ext"), "w") as f:
        f.write(ca_ext)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "root-key.pem", "-out", "root.pem", "-days", "30",
             "-subj", "/O=Outrigger Test/CN=Test Root CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "int-key-raw.pem", "-out", "int.csr",
             "-subj", "/O=Outrigger Test/CN=Test Intermediate CA", cwd=d)
    _openssl("x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root-key.pem",
             "-set_serial", "4242", "-days", "10", "-extfile", "int.ext", "-out", "int.pem", cwd=d)
    _openssl("pkcs8", "-topk8", "-nocrypt", "-in", "int-key-raw.pem", "-out", "int-key.pem", cwd=d)
    with open(os.path.join(d, "chain.pem"), "w") as out:
        for n in ("int.pem", "root.pem"):
            with open(os.path.join(d, n)) as f:
                out.write(f.read())
    end = _openssl("x509", "-in", "int.pem", "-noout", "-enddate", cwd=d).strip()
    not_after = ssl.cert_time_to_seconds(end.split("=", 1)[1])
    return {"root": os.path.join(d, "root.pem"), "chain": os.path.join(d, "chain.pem"),
            "key": os.path.join(d, "int-key.pem"), "int_not_after": not_after}


def test_user_intermediate_ca():
    user = make_user_ca(fresh_path("user-ca"))
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir, ["--ca-cert", user["chain"], "--ca-key", user["key"]])
    listing = sorted(os.listdir(ca_dir))
    ca_exp = metric(cp.admin, "outrigger_control_ca_expiry_timestamp_seconds")
    assert ca_exp is not None and abs(ca_exp - user["int_not_after"]) <= 1, \
        f"CA expiry metric {ca_exp} must be the intermediate's notAfter {user['int_not_after']}"
    token = make_token(ca_dir, "reviews")
    echo = h.start_echo("reviews")
    p = sidecar(cp.xds, "reviews", user["root"], token, app=echo.address, node_id="reviews-user")
    wait_ready(p)
    sid, expiry = cert_expiry(p)
    assert sid == spiffe("reviews"), f"spiffe_id {sid}"
    assert expiry <= user["int_not_after"] + 1, \
        f"a certificate may not outlive its issuer: {expiry} > {user['int_not_after']}"
    assert metric(p.addr["admin"], "outrigger_xds_connected") == 1
    cp.wait_for_stderr(r"issued \S+ to node 'reviews-user' until .*\(join token\)", timeout=5)
    r = cli("proxy-status", "--control-plane", cp.xds, "--ca-bundle", user["root"])
    assert r.returncode == 0 and "reviews-user" in r.stdout, f"{r.stdout}{r.stderr}"
    # The generated-root bundle of another mesh must not be accepted in its place.
    other = fresh_path("ca-other")
    oc = start_control(other, name="other-control")
    r2 = cli("proxy-status", "--control-plane", cp.xds, "--ca-bundle", f"{other}/ca.pem")
    oc.kill()
    assert r2.returncode != 0, "proxy-status must not trust the control plane with a foreign root"
    ca_line = next((l for l in cp.stderr_lines() if "CA" in l), "")
    print(f"    ca dir holds {listing}; {ca_line.strip()}")


def test_proxy_status_over_tls():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir)
    echo = h.start_echo("reviews")
    p = sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", make_token(ca_dir, "reviews"),
                app=echo.address, node_id="reviews-status")
    wait_ready(p)

    def listed():
        r = cli("proxy-status", "--control-plane", cp.xds, "--ca-bundle", f"{ca_dir}/ca.pem")
        return r if r.returncode == 0 and re.search(r"reviews-status\s.*SYNCED", r.stdout) \
            else None
    r = h.poll_until(listed, 10, "proxy-status over TLS to list the proxy SYNCED")
    print("    " + "\n    ".join(r.stdout.strip().splitlines()[:2]))
    r = cli("proxy-status", "--control-plane", cp.xds, "--ca-bundle", f"{ca_dir}/ca.pem",
            "--output", "json")
    assert r.returncode == 0 and "reviews-status" in r.stdout, f"json: {r.stdout}{r.stderr}"
    r = cli("proxy-status", "--control-plane", cp.xds,
            env={"OUTRIGGER_CA_BUNDLE": f"{ca_dir}/ca.pem"})
    assert r.returncode == 0 and "reviews-status" in r.stdout, \
        f"OUTRIGGER_CA_BUNDLE: {r.stdout}{r.stderr}"
    t0 = time.monotonic()
    r = cli("proxy-status", "--control-plane", cp.xds)
    took = time.monotonic() - t0
    print(f"    without --ca-bundle: exit {r.returncode} in {took:.1f}s: "
          f"{(r.stdout + r.stderr).strip()[:160]}")
    assert r.returncode != 0, f"proxy-status without --ca-bundle must fail: {r.stdout}"
    assert "reviews-status" not in r.stdout


def test_plaintext_proxy_shut_out():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir)
    p = sidecar(cp.xds, "reviews", app="127.0.0.1:1", node_id="reviews-plaintext")
    h.poll_until(lambda: any("ended" in l or "fail" in l for l in p.stderr_lines()), 10,
                 "the plaintext proxy's first failed attempt")
    stays_not_ready([p], 3.0)
    r = cli("proxy-status", "--control-plane", cp.xds, "--ca-bundle", f"{ca_dir}/ca.pem")
    assert r.returncode == 0 and "reviews-plaintext" not in r.stdout, f"{r.stdout}{r.stderr}"
    assert (metric(cp.admin, "outrigger_control_certificates_signed_total") or 0) == 0


def test_renewal_retries_while_control_plane_down():
    ca_dir = fresh_path("ca")
    cp = start_control(ca_dir, ["--cert-ttl", "10s"])
    echo = h.start_echo("reviews")
    p = sidecar(cp.xds, "reviews", f"{ca_dir}/ca.pem", make_token(ca_dir, "reviews"),
                app=echo.address, node_id="reviews-down")
    wait_ready(p)
    _, first = cert_expiry(p)
    cp.kill()
    cp.wait_exit(5)
    admin = p.addr["admin"]
    # The renewal falls due (at 4-6 s) with no control plane: it fails and is retried (three
    # failures take about 0.4 + 0.8 s of backoff, well before the certificate expires at 10 s).
    h.wait_metric(admin, "outrigger_certificate_request_failures_total",
                  lambda v: v is not None and v >= 3, timeout=10)
    r = h.http_request(p.addr["inbound"], "/", timeout=5)
    assert r.status == 200, f"the sidecar must keep serving its app, got {r.status}"
    cp2 = start_control(ca_dir, ["--cert-ttl", "10s"], xds=cp.xds, policy=cp.policy,
                        name="outrigger-control-2")
    h.wait_metric(admin, "outrigger_certificate_renewals_total",
                  lambda v: v is not None and v >= 1, timeout=10)
    assert cert_expiry(p)[1] > first
    h.wait_metric(admin, "outrigger_xds_connected", lambda v: v == 1, timeout=15)
    cp2.wait_for_stderr(r"issued \S+ to node 'reviews-down' until .*\(renewal\)", timeout=5)
    failures = metric(admin, "outrigger_certificate_request_failures_total")
    print(f"    {failures:.0f} failed renewal attempt(s) while the control plane was down")


if __name__ == "__main__":
    h.main([
        test_join_with_token,
        test_renewal_under_traffic,
        test_token_for_another_identity_exits,
        test_forged_tokens_refused,
        test_control_plane_restart_keeps_ca,
        test_files_modes_and_no_key_leak,
        test_user_intermediate_ca,
        test_proxy_status_over_tls,
        test_plaintext_proxy_shut_out,
        test_renewal_retries_while_control_plane_down,
    ])
