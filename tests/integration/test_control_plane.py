# The control plane with real processes: outrigger-control, three sidecars (productpage's
# outbound, and the inbound sidecars of reviews v1 and v2, which register their workloads) and
# two echo apps. Canary weights changed in the YAML and through `outrigger canary` converge on
# the traffic with no failed request; an invalid edit is refused with file:line while traffic
# carries on; a config the proxy rejects shows as NACKED in proxy-status; kill -9 of the control
# plane under load fails no request and the proxies resync after a restart; a canary change
# survives a kill -9 right after the CLI returns. Traffic policy written in YAML reaches the
# proxies over the stream and is enforced: an HTTPRoute retry, an HTTPFault, a TrafficPolicy's
# outlier detection and its inbound rate limit.

import os
import re
import signal
import subprocess
import threading
import time

import harness as h

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
metadata: {name: reviews-v1}
spec:
  selector: {app: reviews, version: v1}
  ports: [{name: http, port: 9080}]
---
apiVersion: v1
kind: Service
metadata: {name: reviews-v2}
spec:
  selector: {app: reviews, version: v2}
  ports: [{name: http, port: 9080}]
---
apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec:
  endpointGracePeriod: 3s
"""

ROUTE = """\
# the canary split under test
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs:
    - kind: Service
      name: reviews
  rules:
    - backendRefs:
        - name: reviews-v1
          port: 9080
          weight: {v1}
        - name: reviews-v2
          port: 9080
          weight: {v2}
"""


class Mesh:
    """outrigger-control + echo apps + sidecars, on ephemeral loopback ports."""

    def __init__(self, v1=100, v2=0):
        self.dir = os.path.join(h.tmp_dir(), f"policy-{time.monotonic_ns()}")
        os.makedirs(self.dir)
        self.write("services.yaml", SERVICES)
        self.write_route(v1, v2)
        self.control = self.start_control("127.0.0.1:0")
        self.xds = self.control.wait_for_listen("xds")
        self.echo_v1 = h.start_echo("reviews", "v1")
        self.echo_v2 = h.start_echo("reviews", "v2")
        self.v1 = self.sidecar("reviews", self.echo_v1.address, "version=v1")
        self.v2 = self.sidecar("reviews", self.echo_v2.address, "version=v2")
        self.front = h.start_proxy(
            ["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--control-plane", self.xds,
             "--service", "productpage", "--access-log", "off", "--concurrency", "2"],
            name="productpage-sidecar")
        h.wait_http_ok(f"http://{self.front.addr['admin']}/ready", 10)
        # Both reviews endpoints known to productpage's sidecar.
        self.wait_versions({"v1"} if v2 == 0 else {"v1", "v2"})

    def start_control(self, xds):
        p = h.Process("outrigger-control",
                      [h.bin_path("outrigger-control"), "--policy", self.dir, "--xds", xds,
                       "--admin", "127.0.0.1:0", "--debounce", "50ms"], env=h.clean_env())
        p.admin = p.wait_for_listen("admin")
        return p

    def sidecar(self, service, app, label):
        return h.start_proxy(
            ["--inbound", "127.0.0.1:0", "--app", app, "--admin", "127.0.0.1:0",
             "--control-plane", self.xds, "--service", service, "--label", label,
             "--access-log", "off", "--concurrency", "1"], name=f"{service}-{label}-sidecar")

    def write(self, name, text):
        # Atomic, as editors and `outrigger canary` do: the watcher never sees half a file.
        path = os.path.join(self.dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)

    def write_route(self, v1, v2):
        self.write("route.yaml", ROUTE.format(v1=v1, v2=v2))

    def get(self, client):
        r = client.request("/", headers={"Host": "reviews"})
        return r.status, (r.json().get("version") if r.status == 200 else None)

    def split(self, n):
        """Sends n requests; returns {version: count}; every answer must be 200."""
        counts = {}
        with h.KeepAliveClient(self.front.addr["outbound"]) as c:
            for _ in range(n):
                status, version = self.get(c)
                assert status == 200, f"request failed with {status}"
                counts[version] = counts.get(version, 0) + 1
        return counts

    def wait_versions(self, want, timeout=10):
        def seen():
            return set(self.split(40)) == want
        h.poll_until(seen, timeout, f"productpage's sidecar to reach {sorted(want)}")

    def wait_share(self, version, share, timeout=10, tolerance=0.05, n=400):
        """Polls until the share of `version` over n requests is within tolerance of share."""
        last = {}

        def close():
            nonlocal last
            last = self.split(n)
            return abs(last.get(version, 0) / n - share) <= tolerance
        h.poll_until(close, timeout, f"{version} share {share} (last {last})", interval=0.05)

    def proxy_status(self, *extra):
        out = subprocess.run([h.bin_path("outrigger"), "proxy-status", "--control-plane",
                              self.xds, *extra], capture_output=True, text=True, timeout=20)
        return out.returncode, out.stdout + out.stderr


class Load:
    """Background keep-alive traffic through productpage's sidecar; bounded in time and count."""

    def __init__(self, mesh, max_seconds=60, max_requests=200000):
        self.mesh, self.statuses, self.stop_flag = mesh, {}, threading.Event()
        self.versions = {}
        self.thread = threading.Thread(target=self.run, args=(max_seconds, max_requests),
                                       daemon=True)
        self.thread.start()

    def run(self, max_seconds, max_requests):
        deadline = time.monotonic() + max_seconds
        sent = 0
        while not self.stop_flag.is_set() and time.monotonic() < deadline and sent < max_requests:
            try:
                with h.KeepAliveClient(self.mesh.front.addr["outbound"], timeout=5) as c:
                    while (not self.stop_flag.is_set() and time.monotonic() < deadline and
                           sent < max_requests):
                        status, version = self.mesh.get(c)
                        sent += 1
                        self.statuses[status] = self.statuses.get(status, 0) + 1
                        self.versions[version] = self.versions.get(version, 0) + 1
            except Exception as e:  # a broken connection counts as a failure
                self.statuses[f"error: {e}"] = self.statuses.get(f"error: {e}", 0) + 1

    def finish(self):
        self.stop_flag.set()
        self.thread.join(timeout=15)
        return self.statuses


def test_canary_from_yaml_and_cli_without_failures():
    m = Mesh(100, 0)
    assert m.split(200) == {"v1": 200}, "100/0 must send everything to v1"
    load = Load(m)
    m.write_route(50, 50)
    m.wait_share("v2", 0.5, tolerance=0.06)
    counts = m.split(2000)
    assert abs(counts.get("v2", 0) / 2000 - 0.5) <= 0.04, f"50/50 over 2000 requests: {counts}"
    out = subprocess.run([h.bin_path("outrigger"), "canary", "reviews", "reviews-v1=20",
                          "reviews-v2=80", "--control-plane", m.xds],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, f"outrigger canary failed: {out.stdout}{out.stderr}"
    text = open(os.path.join(m.dir, "route.yaml")).read()
    assert "weight: 20" in text and "weight: 80" in text, f"not written back:\n{text}"
    assert text.startswith("# the canary split under test"), "comments must survive"
    m.wait_share("v2", 0.8, tolerance=0.05)
    counts = m.split(2000)
    assert abs(counts.get("v2", 0) / 2000 - 0.8) <= 0.04, f"20/80 over 2000 requests: {counts}"
    statuses = load.finish()
    print(f"    background load during both changes: {statuses}")
    assert set(statuses) == {200}, f"requests failed during the weight changes: {statuses}"


def test_invalid_edit_refused_with_location():
    m = Mesh(100, 0)
    load = Load(m)
    m.write("route.yaml", ROUTE.format(v1=50, v2=50).replace("weight: 50\n        - name",
                                                              "wieght: 50\n        - name"))
    line = m.control.wait_for_stderr(r"route\.yaml:\d+:\d+: .*wieght", timeout=5)
    print(f"    {line.group(0)}")
    h.wait_metric(m.control.admin, "outrigger_control_policy_errors_total", lambda v: v >= 1)
    code, text = m.proxy_status()
    assert "REFUSED" in text and "wieght" in text, f"proxy-status must show the refusal:\n{text}"
    assert m.split(300) == {"v1": 300}, "the last good policy (100/0) must stay in force"
    statuses = load.finish()
    assert set(statuses) == {200}, f"requests failed: {statuses}"


def test_rejected_config_shows_nacked():
    m = Mesh(100, 0)
    # Valid policy, but a split the proxy cannot route (all weights 0): every proxy rejects it.
    m.write_route(0, 0)
    def nacked():
        code, text = m.proxy_status()
        return "NACKED" in text and "add up to 0" in text
    h.poll_until(nacked, 10, "proxy-status to show NACKED with the proxy's error")
    code, text = m.proxy_status()
    print("    " + "\n    ".join(text.strip().splitlines()[:5]))
    assert code == 1, "proxy-status exits 1 when a proxy rejected its config"
    assert m.split(100) == {"v1": 100}, "a rejected config leaves the last good one serving"
    h.wait_metric(m.front.addr["admin"], "outrigger_xds_rejected_total", lambda v: v >= 1)
    m.write_route(0, 100)
    m.wait_versions({"v2"})
    h.poll_until(lambda: "NACKED" not in m.proxy_status()[1], 10, "NACKED to clear")


def test_control_plane_kill9_under_load_and_resync():
    m = Mesh(50, 50)
    load = Load(m)
    time.sleep(0.3)  # the scenario: traffic is flowing when the control plane dies
    m.control.kill()
    m.control.wait_exit(5)
    time.sleep(1.0)  # the scenario: a second of traffic with no control plane
    restarted = m.start_control(m.xds)
    def synced():
        code, text = m.proxy_status()
        rows = [l for l in text.splitlines() if "-sidecar" in l or "reviews" in l
                or "productpage" in l]
        proxies = [l for l in rows if l.split()[0] != "PROXY" and ("SYNCED" in l)]
        return code == 0 and len(proxies) == 3 and "STALE" not in text and "GONE" not in text
    h.poll_until(synced, 20, "all three proxies SYNCED after the restart", interval=0.2)
    time.sleep(0.5)
    statuses = load.finish()
    print(f"    load across kill -9 and restart: {statuses}")
    assert set(statuses) == {200}, f"requests failed: {statuses}"
    assert load.versions.get("v1", 0) > 0 and load.versions.get("v2", 0) > 0


def test_canary_survives_kill9_right_after_cli():
    m = Mesh(100, 0)
    out = subprocess.run([h.bin_path("outrigger"), "canary", "reviews", "reviews-v1=0",
                          "reviews-v2=100", "--control-plane", m.xds],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    m.control.kill()
    m.control.wait_exit(5)
    text = open(os.path.join(m.dir, "route.yaml")).read()
    assert re.search(r"name: reviews-v2\n\s+port: 9080\n\s+weight: 100", text), \
        f"not on disk:\n{text}"
    m.start_control(m.xds)
    m.wait_versions({"v2"}, timeout=15)


RETRY_ROUTE = """\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
spec:
  parentRefs: [{kind: Service, name: reviews}]
  rules:
    - backendRefs: [{name: reviews-v1, port: 9080}]
      retry: {codes: [503], attempts: 2, backoff: 10ms}
      filters: {filters}
"""

FAULT = """\
apiVersion: outrigger.dev/v1alpha1
kind: HTTPFault
metadata: {name: teapot}
spec:
  abort: {httpStatus: 418, percentage: 100}
"""

TRAFFIC_POLICY = """\
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: reviews-v1}
spec:
  targetRef: {kind: Service, name: reviews-v1}
  loadBalancer: {type: LeastRequest}
  outlierDetection: {consecutive5xxErrors: 50, baseEjectionTime: 1s}
  rateLimit: {maxTokens: 5, tokensPerFill: 5, fillInterval: 60s}
"""


def _metric(admin, name, labels):
    return h.metric_sum(h.metrics(admin), name, **labels) or 0.0


def test_traffic_policy_from_yaml_is_enforced():
    m = Mesh(100, 0)
    # An HTTPRoute retry: every try fails (the echo answers 503), so each request makes 3 tries.
    m.write("route.yaml", RETRY_ROUTE.replace("{filters}", "[]"))
    admin = m.front.addr["admin"]

    def retried():
        with h.KeepAliveClient(m.front.addr["outbound"]) as c:
            r = c.request("/?fail_rate=1", headers={"Host": "reviews"})
        return r.status == 503 and _metric(admin, "outrigger_upstream_rq_retry_total",
                                           {"cluster": "reviews-v1.default"}) >= 2
    h.poll_until(retried, 10, "the HTTPRoute retry to reach productpage's sidecar")
    counter = h.EchoRequestCounter(m.echo_v1.address)
    with h.KeepAliveClient(m.front.addr["outbound"]) as c:
        for _ in range(5):
            assert c.request("/?fail_rate=1", headers={"Host": "reviews"}).status == 503
    seen = counter.delta()
    assert seen == 15, f"5 requests with 2 retries each must make 15 tries, the echo saw {seen}"

    # An HTTPFault by ExtensionRef aborts every request of the rule.
    m.write("fault.yaml", FAULT)
    m.write("route.yaml", RETRY_ROUTE.replace(
        "{filters}", "[{type: ExtensionRef, extensionRef: {group: outrigger.dev, "
                     "kind: HTTPFault, name: teapot}}]"))

    def status():
        with h.KeepAliveClient(m.front.addr["outbound"]) as c:
            return m.get(c)[0]
    h.poll_until(lambda: status() == 418, 10, "the HTTPFault abort (418)")
    m.write("route.yaml", RETRY_ROUTE.replace("{filters}", "[]"))
    h.poll_until(lambda: status() == 200, 10, "the fault to be gone")

    # A TrafficPolicy: settings on the reviews-v1 cluster, and an inbound rate limit that the
    # reviews v1 sidecar enforces (5 tokens a minute).
    m.write("traffic-policy.yaml", TRAFFIC_POLICY)

    def cluster_configured():
        dump = h.http_request(admin, "/config_dump").json()
        for c in dump["config"].get("clusters", []):
            if c["name"] == "reviews-v1.default":
                return c.get("lb_policy") == "LEAST_REQUEST" and "outlier_detection" in c
        return False
    h.poll_until(cluster_configured, 10, "the TrafficPolicy on productpage's reviews-v1 cluster")

    def limited():
        with h.KeepAliveClient(m.front.addr["outbound"]) as c:
            return any(m.get(c)[0] == 429 for _ in range(10))
    h.poll_until(limited, 10, "reviews v1's sidecar to answer 429 once its bucket is empty")
    assert _metric(m.v1.addr["admin"], "outrigger_requests_total",
                   {"listener": "inbound", "response_code": "429", "response_flags": "RL"}) > 0


if __name__ == "__main__":
    h.main([
        test_canary_from_yaml_and_cli_without_failures,
        test_invalid_edit_refused_with_location,
        test_rejected_config_shows_nacked,
        test_control_plane_kill9_under_load_and_resync,
        test_canary_survives_kill9_right_after_cli,
        test_traffic_policy_from_yaml_is_enforced,
    ])
