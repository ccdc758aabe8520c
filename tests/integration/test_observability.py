# Observability with real components: a mesh of real processes (outrigger-control with the mesh
# CA, a `frontend` outbound sidecar, sidecars for catalog v1 and v2 in front of echo apps) is
# scraped by a real Prometheus (the Debian package), and the test asks Prometheus's HTTP API for
# the requests per destination version, which must match what each version's app served. A test
# collector (Zipkin v2 JSON on one sidecar, OTLP/HTTP JSON on the other) receives spans and the
# test checks trace ids and parent/child links across the two hops, with W3C traceparent, B3 and
# no incoming context; the app must see our span as its parent. Also: sampling decisions are kept,
# a dead or hanging collector never slows or fails a request, the access log carries the trace id
# and samples ordinary requests while logging every error, and label values are bounded.

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness as h
from mesh_ca import fresh_path, make_token, token_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

POLICY = """\
apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {trustDomain: cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: frontend}
spec:
  selector: {app: frontend}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog}
spec:
  selector: {app: catalog}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog-v1}
spec:
  selector: {app: catalog, version: v1}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: catalog-v2}
spec:
  selector: {app: catalog, version: v2}
  ports: [{name: http, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catalog}
spec:
  parentRefs: [{group: "", kind: Service, name: catalog, port: 80}]
  rules:
    - backendRefs:
        - {name: catalog-v1, port: 80, weight: 70}
        - {name: catalog-v2, port: 80, weight: 30}
"""


# --------------------------------------------------------------------------------------------
# A trace collector: Zipkin v2 (POST /api/v2/spans) and OTLP/HTTP JSON (POST /v1/traces), both
# normalized to {trace, id, parent, kind, service, tags, format}.

class Collector:
    def __init__(self):
        self.spans = []
        self.posts = 0
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    doc = json.loads(body)
                    if self.path == "/api/v2/spans":
                        spans = [collector._zipkin(s) for s in doc]
                    elif self.path == "/v1/traces":
                        spans = collector._otlp(doc)
                    else:
                        raise ValueError(f"unexpected path {self.path}")
                except Exception as e:  # noqa: BLE001 - any bad document fails the test
                    spans = [{"error": f"{type(e).__name__}: {e}", "body": body[:500]}]
                with collector.lock:
                    collector.spans.extend(spans)
                    collector.posts += 1
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def _zipkin(s):
        # (a 64-bit B3 trace id is sent as 16 digits: compare them as 128-bit)
        return {"format": "zipkin", "trace": s["traceId"].zfill(32), "id": s["id"],
                "parent": s.get("parentId"), "kind": s.get("kind"), "name": s.get("name"),
                "service": s.get("localEndpoint", {}).get("serviceName"),
                "tags": s.get("tags", {})}

    @staticmethod
    def _otlp(doc):
        out = []
        for rs in doc["resourceSpans"]:
            res = {a["key"]: a["value"].get("stringValue")
                   for a in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    tags = {}
                    for a in s.get("attributes", []):
                        v = a["value"]
                        tags[a["key"]] = v.get("stringValue", v.get("intValue"))
                    assert int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"])
                    out.append({"format": "otlp", "trace": s["traceId"], "id": s["spanId"],
                                "parent": s.get("parentSpanId"),
                                "kind": {2: "SERVER", 3: "CLIENT"}.get(s.get("kind")),
                                "name": s.get("name"), "service": res.get("service.name"),
                                "tags": tags})
        return out

    def errors(self):
        with self.lock:
            return [s for s in self.spans if "error" in s]

    def of_trace(self, trace):
        with self.lock:
            return [s for s in self.spans if s.get("trace") == trace]

    def wait_trace(self, trace, n, timeout=10):
        def check():
            assert not self.errors(), f"collector got a malformed document: {self.errors()}"
            got = self.of_trace(trace)
            return got if len(got) >= n else None
        return h.poll_until(check, timeout, f"{n} spans of trace {trace}", interval=0.05)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------------------
# The mesh

def start_control(policy_dir, ca_dir):
    p = h.Process("outrigger-control", [
        h.bin_path("outrigger-control"), "--policy", policy_dir, "--xds", "127.0.0.1:0",
        "--admin", "127.0.0.1:0", "--debounce", "50ms", "--ca-dir", ca_dir], env=h.clean_env())
    p.xds = p.wait_for_listen("xds")
    p.admin = p.wait_for_listen("admin")
    return p


def sidecar(cp, ca_dir, service, version, app=None, outbound=False, extra=()):
    args = ["--admin", "127.0.0.1:0", "--control-plane", cp.xds, "--service", service,
            "--label", f"app={service}", "--label", f"version={version}",
            "--concurrency", "2", "--ca-bundle", f"{ca_dir}/ca.pem",
            "--join-token-file", token_file(make_token(ca_dir, service)), *extra]
    if app:
        args += ["--inbound", "127.0.0.1:0", "--app", app]
    if outbound:
        args += ["--outbound", "127.0.0.1:0"]
    p = h.start_proxy(args, name=f"{service}-{version}-sidecar")
    h.wait_http_ok(f"http://{p.addr['admin']}/ready", 15)
    return p


class Mesh:
    def __init__(self, tracing=None):
        """tracing: a Collector; frontend's sidecar sends Zipkin, catalog's sidecars OTLP."""
        self.ca_dir = fresh_path("ca")
        policy = fresh_path("policy")
        os.makedirs(policy)
        with open(os.path.join(policy, "mesh.yaml"), "w") as f:
            f.write(POLICY)
        self.cp = start_control(policy, self.ca_dir)
        zipkin, otlp = (), ()
        if tracing:
            zipkin = ("--tracing-endpoint", f"http://{tracing.address}/api/v2/spans")
            otlp = ("--tracing-endpoint", f"http://{tracing.address}/v1/traces",
                    "--tracing-format", "otlp")
        self.echo = {v: h.start_echo(f"catalog-{v}", version=v) for v in ("v1", "v2")}
        self.catalog = {v: sidecar(self.cp, self.ca_dir, "catalog", v, app=self.echo[v].address,
                                   extra=otlp) for v in ("v1", "v2")}
        self.front = sidecar(self.cp, self.ca_dir, "frontend", "v1", outbound=True, extra=zipkin)
        self.outbound = self.front.addr["outbound"]
        seen = set()

        def both_versions():
            r = self.call("/warmup")
            if r.status == 200:
                seen.add(r.json().get("version"))
            return seen >= {"v1", "v2"}
        h.poll_until(both_versions, 15, "frontend's sidecar to reach catalog v1 and v2",
                     interval=0.02)

    def call(self, path, headers=None):
        hs = {"Host": "catalog"}
        hs.update(headers or {})
        return h.http_request(self.outbound, path, headers=hs, timeout=5)

    def admins(self):
        return [self.front.addr["admin"]] + [p.addr["admin"] for p in self.catalog.values()]


# --------------------------------------------------------------------------------------------
# Prometheus

class Prometheus:
    def __init__(self, targets, cp_admin):
        self.dir = fresh_path("prometheus")
        os.makedirs(self.dir)
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: outrigger-proxy\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n"
                    "  - job_name: outrigger-control\n    static_configs:\n"
                    f"      - targets: [\"{cp_admin}\"]\n")
        port = h.closed_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = h.Process("prometheus", [
            shutil.which("prometheus"), f"--config.file={cfg}",
            f"--storage.tsdb.path={self.dir}/data", f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn"], env=h.clean_env())
        h.poll_until(self._ready, 30, "Prometheus to be ready", interval=0.1)

    def _ready(self):
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, expr):
        """Instant query -> [(labels, float)]; raises on a PromQL error."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                doc = json.load(r)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"Prometheus refused {expr!r}: {e.read().decode()}") from None
        assert doc["status"] == "success", f"query {expr!r}: {doc}"
        return [(s["metric"], float(s["value"][1])) for s in doc["data"]["result"]]

    def targets_up(self):
        return self.query("up")


def test_prometheus_scrapes_per_version_rates():
    mesh = Mesh()
    counters = {v: h.EchoRequestCounter(mesh.echo[v].address) for v in ("v1", "v2")}
    prom = Prometheus(mesh.admins(), mesh.cp.admin)
    h.poll_until(lambda: len([1 for _, v in prom.targets_up() if v == 1]) == 4, 20,
                 "Prometheus to scrape the 3 sidecars and the control plane")
    n = 600
    t0 = time.monotonic()
    with h.KeepAliveClient(mesh.outbound) as c:
        for i in range(n):
            r = c.request(f"/items/{i}", headers={"Host": "catalog"})
            assert r.status == 200, f"request {i} answered {r.status}"
    elapsed = time.monotonic() - t0
    served = {v: counters[v].delta() for v in ("v1", "v2")}
    assert served["v1"] + served["v2"] == n, f"apps served {served}, sent {n}"

    # The caller's view (reporter="source"): the counters Prometheus holds must equal what each
    # version served once it has scraped after the traffic ended.
    expr = ('sum by (destination_version) (outrigger_requests_total{reporter="source",'
            'source_workload="frontend",destination_service="catalog.default",'
            'response_code="200"})')

    def source_totals():
        got = {m.get("destination_version"): v for m, v in prom.query(expr)}
        base = got.get("v1", 0) + got.get("v2", 0)
        # (warm-up requests were counted too; they are few and went to both versions)
        return got if base >= n and all(got.get(v, 0) >= served[v] for v in served) else None
    totals = h.poll_until(source_totals, 20, f"Prometheus to hold the counts of {n} requests")
    # Warm-up traffic came before the counters were taken: subtract it per version.
    warm = {v: totals[v] - served[v] for v in served}
    assert all(0 <= w <= 100 for w in warm.values()), \
        f"Prometheus counts {totals} vs served {served}: off by more than the warm-up"

    # The callees' view (reporter="destination"): the same requests, each from frontend v1 over
    # mutual TLS, reported by the sidecar of the version that served it.
    dest_expr = ('sum by (destination_version) (outrigger_requests_total{reporter="destination",'
                 'source_workload="frontend",source_version="v1",'
                 'destination_service="catalog.default",connection_security_policy="mutual_tls",'
                 'response_code="200"})')
    state = {}

    def same_as_source():
        # (each target is scraped on its own schedule: wait for the callees' next scrape)
        state["dest"] = {m.get("destination_version"): v for m, v in prom.query(dest_expr)}
        return state["dest"] == totals
    try:
        h.poll_until(same_as_source, 20, "the callees' counts in Prometheus")
    except AssertionError:
        raise AssertionError(f"destination-reported {state.get('dest')} != source-reported "
                             f"{totals}") from None

    # Rates: the share of v2 in the last 30 s by PromQL matches the share the apps served.
    rates = {m.get("destination_version"): v for m, v in prom.query(
        'sum by (destination_version) (rate(outrigger_requests_total{reporter="source",'
        'destination_service="catalog.default"}[30s]))')}
    assert rates.get("v1", 0) > 0 and rates.get("v2", 0) > 0, f"rates {rates}"
    share = rates["v2"] / (rates["v1"] + rates["v2"])
    want = served["v2"] / n
    assert abs(share - want) < 0.05, f"v2 rate share {share:.3f} vs served share {want:.3f}"
    # Latency histograms per version answer histogram_quantile.
    p99 = prom.query('histogram_quantile(0.99, sum by (le, destination_version) (rate('
                     'outrigger_request_duration_milliseconds_bucket{reporter="source"}[30s])))')
    assert {m.get("destination_version") for m, _ in p99} >= {"v1", "v2"}, f"p99 {p99}"

    # The control plane's metrics are there too.
    connected = prom.query("outrigger_control_proxies_connected")
    assert connected and connected[0][1] == 3, f"connected proxies {connected}"
    conv = prom.query("outrigger_control_convergence_milliseconds_count")
    assert conv and conv[0][1] > 0, f"convergence histogram {conv}"
    push = prom.query("outrigger_control_push_duration_milliseconds_count")
    assert push and push[0][1] > 0, f"push histogram {push}"

    # Every query of the example dashboard is valid PromQL against this data (no error; most
    # have data).
    dash = os.path.join(ROOT, "examples", "shop", "grafana-dashboard.json")
    empty = []
    if os.path.exists(dash):
        with open(dash) as f:
            doc = json.load(f)
        exprs = []

        def walk(o):
            if isinstance(o, dict):
                if isinstance(o.get("expr"), str) and o["expr"].strip():
                    exprs.append(o["expr"])
                for v in o.values():
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        walk(doc)
        assert exprs, "the dashboard has no queries"
        for e in exprs:
            q = e.replace("$__rate_interval", "30s").replace("$__interval", "5s")
            q = q.replace("$__range", "1m")
            if not prom.query(q):
                empty.append(e)
    print(f"    {n} requests in {elapsed:.1f}s; served {served}; Prometheus {totals} "
          f"(warm-up {warm}); v2 rate share {share:.3f} vs {want:.3f}; "
          f"dashboard queries without data: {len(empty)}")


# --------------------------------------------------------------------------------------------
# Tracing

def _span_of(spans, service):
    got = [s for s in spans if s["service"] == service]
    assert len(got) == 1, f"want one span from {service}: {spans}"
    return got[0]


def test_spans_link_across_two_hops():
    col = Collector()
    try:
        mesh = Mesh(tracing=col)
        # 1. No incoming context: the frontend's sidecar starts the trace.
        r = mesh.call("/new-trace")
        assert r.status == 200
        tp = h.echo_header(r.json(), "traceparent")
        assert tp and tp.startswith("00-") and tp.endswith("-01"), f"app saw traceparent {tp!r}"
        trace, app_parent = tp.split("-")[1], tp.split("-")[2]
        spans = col.wait_trace(trace, 2)
        front = _span_of(spans, "frontend")
        cat = _span_of(spans, "catalog")
        assert front["format"] == "zipkin" and cat["format"] == "otlp"
        assert front["kind"] == "CLIENT" and cat["kind"] == "SERVER", spans
        assert front["parent"] in (None, ""), f"the first span is a root: {front}"
        assert cat["parent"] == front["id"], f"catalog's parent {cat['parent']} != {front['id']}"
        assert app_parent == cat["id"], f"the app's parent {app_parent} != catalog's span"
        rid = h.echo_header(r.json(), "x-request-id")
        assert front["tags"].get("guid:x-request-id") == rid, front
        assert cat["tags"].get("outrigger.request_id") == rid, cat
        assert front["tags"].get("http.status_code") == "200" and \
            str(cat["tags"].get("http.response.status_code")) == "200", spans
        assert cat["tags"].get("outrigger.peer_identity") == \
            "spiffe://cluster.local/ns/default/sa/frontend", cat

        # 2. A caller's W3C context: same trace, the caller's span is the frontend span's parent.
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        r = mesh.call("/w3c", {"traceparent": caller, "tracestate": "vendor=1"})
        spans = col.wait_trace("0af7651916cd43dd8448eb211c80319c", 2)
        front, cat = _span_of(spans, "frontend"), _span_of(spans, "catalog")
        assert front["parent"] == "b7ad6b7169203331", front
        assert cat["parent"] == front["id"], spans
        tp = h.echo_header(r.json(), "traceparent")
        assert tp == f"00-0af7651916cd43dd8448eb211c80319c-{cat['id']}-01", tp
        assert h.echo_header(r.json(), "tracestate") == "vendor=1", "tracestate must pass"

        # 3. B3 (multi-header, 64-bit trace id): kept, and the B3 headers are updated too.
        r = mesh.call("/b3", {"x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid":
                              "a2fb4a1d1a96d312", "x-b3-sampled": "1"})
        body = r.json()
        spans = col.wait_trace("0000000000000000463ac35c9f6413ad", 2)
        front, cat = _span_of(spans, "frontend"), _span_of(spans, "catalog")
        assert front["parent"] == "a2fb4a1d1a96d312" and cat["parent"] == front["id"], spans
        assert h.echo_header(body, "x-b3-traceid") == "463ac35c9f6413ad"
        assert h.echo_header(body, "x-b3-spanid") == cat["id"]
        assert h.echo_header(body, "x-b3-parentspanid") == front["id"]
        assert h.echo_header(body, "x-b3-sampled") == "1"

        # 4. A caller that decided not to sample: propagated with the flag off, no spans.
        unsampled = "00-11111111111111111111111111111111-2222222222222222-00"
        r = mesh.call("/unsampled", {"traceparent": unsampled})
        tp = h.echo_header(r.json(), "traceparent")
        assert tp.startswith("00-11111111111111111111111111111111-") and tp.endswith("-00"), tp
        mesh.call("/after-unsampled")  # a sampled request behind it, to know spans flushed
        time.sleep(1.5)
        assert not col.of_trace("11111111111111111111111111111111"), "unsampled trace recorded"

        # 5. An HTTP/2 client: the frontend sidecar's HTTP/2 stream takes part the same way.
        caller = "00-22222222222222222222222222222222-3333333333333333-01"
        r = subprocess.run(["curl", "-q", "-sS", "--http2-prior-knowledge", "-H", "Host: catalog",
                            "-H", f"traceparent: {caller}", f"http://{mesh.outbound}/h2"],
                           capture_output=True, text=True, timeout=30)
        tp = h.echo_header(json.loads(r.stdout), "traceparent")
        spans = col.wait_trace("22222222222222222222222222222222", 2)
        front, cat = _span_of(spans, "frontend"), _span_of(spans, "catalog")
        assert front["parent"] == "3333333333333333" and cat["parent"] == front["id"], spans
        assert tp == f"00-22222222222222222222222222222222-{cat['id']}-01", tp

        # Every span of the run is well formed; the proxies count what they sent.
        assert not col.errors(), col.errors()
        for p in (mesh.front, *mesh.catalog.values()):
            m = h.metrics(p.addr["admin"])
            assert (h.metric_sum(m, "outrigger_tracing_spans_exported_total") or 0) > 0
            assert (h.metric_sum(m, "outrigger_tracing_spans_failed_total") or 0) == 0
        print(f"    {len(col.spans)} spans in {col.posts} POSTs; frontend=zipkin "
              f"catalog=otlp; parent links hold for new, W3C, B3 and HTTP/2 requests")
    finally:
        col.close()


def test_dead_or_hanging_collector_never_blocks_requests():
    echo = h.start_echo("app")
    # A collector that accepts connections and never answers, and one that is not there.
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    hang_addr = f"127.0.0.1:{hang.getsockname()[1]}"
    try:
        for name, endpoint in (("hanging", hang_addr), ("absent", f"127.0.0.1:{h.closed_port()}")):
            proxy = h.start_inbound_proxy(echo.address, extra_args=[
                "--access-log", "off", "--tracing-endpoint", f"http://{endpoint}/api/v2/spans"])
            n = 1500
            t0 = time.monotonic()
            with h.KeepAliveClient(proxy.addr["inbound"]) as c:
                for i in range(n):
                    r = c.request(f"/t/{i}")
                    assert r.status == 200, f"{name} collector: request {i} got {r.status}"
            took = time.monotonic() - t0
            m = h.metrics(proxy.addr["admin"])
            recorded = h.metric_sum(m, "outrigger_tracing_spans_total")
            assert recorded == n, f"{name}: {recorded} spans recorded for {n} requests"
            exported = h.metric_sum(m, "outrigger_tracing_spans_exported_total")
            assert exported == 0, f"{name}: {exported} spans reported exported"
            print(f"    {name} collector: {n} requests all 200 in {took:.2f}s; spans queued "
                  f"{h.metric_sum(m, 'outrigger_tracing_export_queue_spans'):.0f}, failed "
                  f"{h.metric_sum(m, 'outrigger_tracing_spans_failed_total'):.0f}, dropped "
                  f"{h.metric_sum(m, 'outrigger_tracing_export_queue_dropped_total'):.0f}")
            proxy.kill()
    finally:
        hang.close()


# --------------------------------------------------------------------------------------------
# Access log and labels

def test_access_log_trace_id_and_sampling():
    echo = h.start_echo("app")
    proxy = h.start_inbound_proxy(echo.address, extra_args=["--service", "shop",
                                                            "--label", "version=v3"])
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = h.http_request(proxy.addr["inbound"], "/logged", headers={"traceparent": tp})
    assert r.status == 200
    e = proxy.wait_for_access_log(lambda e: e.get("path") == "/logged")
    assert e["trace_id"] == "0af7651916cd43dd8448eb211c80319c", e
    assert e["request_id"] and e["response_duration_ms"] is not None and \
        0 <= e["response_duration_ms"] <= e["duration_ms"], e
    # Without tracing the proxy passes the caller's headers through untouched.
    assert h.echo_header(r.json(), "traceparent") == tp
    m = h.metrics(proxy.addr["admin"])
    got = h.series(m, "outrigger_requests_total", listener="inbound")
    assert got and got[0][0]["destination_service"] == "shop.default" and \
        got[0][0]["destination_version"] == "v3" and \
        got[0][0]["connection_security_policy"] == "none", got

    # Sampling 0 %: ordinary requests are not logged, errors always are.
    dead = h.closed_port()
    quiet = h.start_inbound_proxy(f"127.0.0.1:{dead}", extra_args=["--access-log-sampling", "0"])
    quiet2 = h.start_inbound_proxy(echo.address, extra_args=["--access-log-sampling", "0"])
    for i in range(20):
        assert h.http_request(quiet2.addr["inbound"], f"/quiet/{i}").status == 200
    assert h.http_request(quiet.addr["inbound"], "/broken").status == 503
    e = quiet.wait_for_access_log(lambda e: e.get("path") == "/broken")
    assert e["response_flags"] == "UF" and e["response_duration_ms"] is None, e
    h.http_request(quiet2.addr["inbound"], "/nowhere-404-but-fine")
    time.sleep(0.5)
    assert not [x for x in quiet2.access_log() if str(x.get("path", "")).startswith("/quiet/")], \
        "sampled-out requests were logged"
    bad = h.start_proxy(["--inbound", "127.0.0.1:0", "--app", echo.address,
                         "--access-log-sampling", "150"], listeners=[])
    bad.wait_exit(5)
    assert bad.returncode != 0 and "--access-log-sampling" in bad.stderr_text(), \
        bad.stderr_text()


def test_peer_labels_are_bounded_and_sanitized():
    """Inbound without mTLS takes the caller's workload from its sidecar's header: junk values
    read "unknown", and a flood of distinct names folds into the "overflow" series."""
    echo = h.start_echo("app")
    proxy = h.start_inbound_proxy(echo.address, extra_args=["--access-log", "off",
                                                            "--concurrency", "1"])
    addr = proxy.addr["inbound"]
    r = h.http_request(addr, "/", headers={"x-outrigger-source-workload": 'bad"value',
                                           "x-outrigger-source-version": "v9"})
    # The app never sees the mesh's own headers.
    assert h.echo_header(r.json(), "x-outrigger-source-workload") is None
    with h.KeepAliveClient(addr) as c:
        for i in range(1100):
            c.request("/", headers={"x-outrigger-source-workload": f"caller-{i}"})
    m = h.metrics(proxy.addr["admin"])
    rows = h.series(m, "outrigger_requests_total", listener="inbound")
    assert any(ls["source_workload"] == "unknown" and ls["source_version"] == "v9"
               for ls, _ in rows), rows[:5]
    assert len(rows) <= 1024 + 1, f"{len(rows)} series"
    total = sum(v for _, v in rows)
    assert total == 1101, f"{total} requests counted, 1101 sent"
    overflow = h.metric_sum(m, "outrigger_metrics_series_overflow_total", listener="inbound")
    assert overflow and overflow > 0, "overflow not counted"
    print(f"    {len(rows)} series for 1101 requests from 1101 callers; {overflow:.0f} folded")


if __name__ == "__main__":
    h.main([
        test_prometheus_scrapes_per_version_rates,
        test_spans_link_across_two_hops,
        test_dead_or_hanging_collector_never_blocks_requests,
        test_access_log_trace_id_and_sampling,
        test_peer_labels_are_bounded_and_sanitized,
    ])
