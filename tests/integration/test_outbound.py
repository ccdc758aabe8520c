#!/usr/bin/env python3
# Outbound routing through the real outrigger-proxy with a static --config YAML: authority-based
# routing to the cluster of the same name (Host with and without port, absolute-form URI via
# curl -x), round robin over a cluster's endpoints, endpoints from a ClusterLoadAssignment, local
# replies with response flags (404 NR, 503 UF, 503 UH) in /metrics and the access log, and a
# route configuration named `outbound` (path prefix / exact path, prefix_rewrite, a 100/0
# weighted_clusters split, camelCase field names).
# Run: python3 tests/integration/test_outbound.py --bin-dir BUILD/bin

import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

REVIEWS = ("reviews-v1", "reviews-v2")


def _by_name_config(v1, v2, ratings, details, dead_port):
    return f"""# Clusters routed by authority name (no route configuration named `outbound`).
clusters:
  - name: reviews
    lb_policy: ROUND_ROBIN
    endpoints:
      - address: "{v1}"
      - address: "{v2}"
  - name: ratings
    endpoints:
      - address: "{ratings}"
  - name: details
    connect_timeout: 2s
  - name: dead
    connect_timeout: 1s
    endpoints:
      - address: "127.0.0.1:{dead_port}"
  - name: empty
endpoints:
  - cluster_name: details
    endpoints:
      - address: "{details}"
"""


def _setup_by_name():
    v1 = h.start_echo("reviews-v1", "v1")
    v2 = h.start_echo("reviews-v2", "v2")
    ratings = h.start_echo("ratings", "v1")
    details = h.start_echo("details", "v1")
    cfg = h.write_temp("outbound-by-name.yaml", _by_name_config(
        v1.address, v2.address, ratings.address, details.address, h.closed_port()))
    proxy = h.start_proxy(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                           "--config", cfg, "--concurrency", "1"])
    return proxy


def _curl_host(proxy, host, path="/"):
    return h.curl_json("-H", f"Host: {host}", f"http://{proxy.addr['outbound']}{path}")


def test_host_header_routes_to_cluster():
    proxy = _setup_by_name()
    for host in ("reviews", "reviews:9080"):
        code, obj, raw = _curl_host(proxy, host, "/products/1")
        assert code == 200, f"Host: {host} answered {code}: {raw[:300]}"
        assert obj and obj.get("name") in REVIEWS, f"Host: {host} reached {raw[:300]}"
        assert str(obj.get("path", "")).startswith("/products/1"), f"path {obj.get('path')!r}"
    code, obj, raw = _curl_host(proxy, "ratings")
    assert code == 200 and obj and obj.get("name") == "ratings", \
        f"Host: ratings -> {code} {raw[:300]}"
    # The upstream sees the authority the client sent.
    host_seen = h.echo_header(obj, "host")
    assert host_seen == "ratings", f"echo saw Host {host_seen!r}"


def test_round_robin_over_endpoints():
    proxy = _setup_by_name()
    seen = collections.Counter()
    with h.KeepAliveClient(proxy.addr["outbound"]) as c:
        for i in range(20):
            r = c.request(f"/rr/{i}", headers={"Host": "reviews"})
            assert r.status == 200, f"request {i}: {r.status} {r.body[:200]!r}"
            seen[r.json().get("name")] += 1
    assert set(seen) == set(REVIEWS), f"endpoints reached: {dict(seen)}"
    assert all(8 <= seen[n] <= 12 for n in REVIEWS), \
        f"round robin over 2 endpoints gave {dict(seen)} for 20 requests"
    # New client connections also spread (one worker: --concurrency 1).
    fresh = collections.Counter()
    for i in range(10):
        r = h.http_request(proxy.addr["outbound"], f"/rr2/{i}", headers={"Host": "reviews"})
        assert r.status == 200, f"fresh request {i}: {r.status}"
        fresh[r.json().get("name")] += 1
    assert all(3 <= fresh[n] <= 7 for n in REVIEWS), \
        f"round robin across connections gave {dict(fresh)} for 10 requests"


def test_absolute_form_uri():
    proxy = _setup_by_name()
    r = h.curl("-w", "\n%{http_code}", "-x", f"http://{proxy.addr['outbound']}",
               "http://ratings/abs/path?q=2")
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr.decode()[-400:]}"
    body, _, code = r.stdout.decode().rpartition("\n")
    assert code == "200", f"absolute-form answered {code}: {body[:300]}"
    obj = json.loads(body)
    assert obj.get("name") == "ratings", f"reached {obj.get('name')!r}"
    path = str(obj.get("path", ""))
    assert path.startswith("/abs/path"), \
        f"upstream must get origin-form, echo saw path {path!r}"
    # curl -x sends Proxy-Connection, which is hop-by-hop.
    assert h.echo_header(obj, "proxy-connection") is None, "Proxy-Connection was forwarded"


def test_endpoints_from_cluster_load_assignment():
    proxy = _setup_by_name()
    code, obj, raw = _curl_host(proxy, "details")
    assert code == 200 and obj and obj.get("name") == "details", \
        f"Host: details -> {code} {raw[:300]}"


def test_unknown_authority_404_nr():
    proxy = _setup_by_name()
    code, obj, raw = _curl_host(proxy, "nosuchservice", "/nr-probe")
    assert code == 404, f"unknown authority answered {code}: {raw[:300]}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="outbound", response_code="404", response_flags="NR")
    e = proxy.wait_for_access_log(lambda e: str(e.get("path", "")).startswith("/nr-probe"))
    assert str(e.get("response_code")) == "404", \
        f"access log response_code {e.get('response_code')!r}"
    assert e.get("response_flags") == "NR", f"access log response_flags {e.get('response_flags')!r}"


def test_closed_endpoint_503_uf():
    proxy = _setup_by_name()
    code, obj, raw = _curl_host(proxy, "dead", "/uf-probe")
    assert code == 503, f"closed endpoint answered {code}: {raw[:300]}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="outbound", response_code="503", response_flags="UF")
    h.wait_metric(proxy.addr["admin"], "outrigger_upstream_cx_connect_fail_total",
                  lambda v: v is not None and v >= 1, cluster="dead")
    e = proxy.wait_for_access_log(lambda e: str(e.get("path", "")).startswith("/uf-probe"))
    assert str(e.get("response_code")) == "503", \
        f"access log response_code {e.get('response_code')!r}"
    assert e.get("response_flags") == "UF", f"access log response_flags {e.get('response_flags')!r}"
    assert e.get("upstream_cluster") == "dead", f"upstream_cluster {e.get('upstream_cluster')!r}"


def test_cluster_without_endpoints_503_uh():
    proxy = _setup_by_name()
    code, obj, raw = _curl_host(proxy, "empty", "/uh-probe")
    assert code == 503, f"cluster without endpoints answered {code}: {raw[:300]}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="outbound", response_code="503", response_flags="UH")


ROUTED_CONFIG = """# A route configuration named `outbound` replaces routing by authority name.
clusters:
  - name: reviews-v1
    endpoints: [{{address: "{v1}"}}]
  - name: reviews-v2
    endpoints: [{{address: "{v2}"}}]
  - name: ratings
    endpoints: [{{address: "{ratings}"}}]
routes:
  - name: outbound
    virtual_hosts:
      - name: reviews
        domains: ["reviews"]
        routes:
          - name: v2-api
            match: {{prefix: "/v2/"}}
            route: {{cluster: reviews-v2}}
          - name: exact
            match: {{path: "/exact"}}
            route: {{cluster: reviews-v2}}
          - name: legacy
            match: {{prefix: "/legacy/"}}
            route: {{cluster: reviews-v1, prefix_rewrite: "/modern/"}}
          - name: default
            match: {{prefix: "/"}}
            route:
              weighted_clusters:
                clusters:
                  - name: reviews-v1
                    weight: 100
                  - name: reviews-v2
                    weight: 0
      - name: ratings
        domains: ["ratings"]
        routes:
          - match: {{prefix: "/"}}
            route: {{cluster: ratings}}
"""

# The same, with the camelCase JSON names the contract also accepts.
ROUTED_CONFIG_CAMEL = """clusters:
  - name: reviews-v1
    connectTimeout: 2s
    idleTimeout: 3s
    endpoints: [{{address: "{v1}"}}]
  - name: reviews-v2
    endpoints: [{{address: "{v2}"}}]
  - name: ratings
    endpoints: [{{address: "{ratings}"}}]
routes:
  - name: outbound
    virtualHosts:
      - name: reviews
        domains: ["reviews"]
        routes:
          - match: {{prefix: "/v2/"}}
            route: {{cluster: reviews-v2}}
          - match: {{prefix: "/legacy/"}}
            route: {{cluster: reviews-v1, prefixRewrite: "/modern/"}}
          - match: {{prefix: "/"}}
            route:
              weightedClusters:
                clusters:
                  - {{name: reviews-v1, weight: 100}}
                  - {{name: reviews-v2, weight: 0}}
      - name: ratings
        domains: ["ratings"]
        routes:
          - match: {{prefix: "/"}}
            route: {{cluster: ratings}}
"""


def _setup_routed(template):
    v1 = h.start_echo("reviews-v1", "v1")
    v2 = h.start_echo("reviews-v2", "v2")
    ratings = h.start_echo("ratings", "v1")
    cfg = h.write_temp("outbound-routed.yaml", template.format(
        v1=v1.address, v2=v2.address, ratings=ratings.address))
    return h.start_proxy(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                          "--config", cfg, "--concurrency", "1"])


def _name(proxy, host, path):
    r = h.http_request(proxy.addr["outbound"], path, headers={"Host": host})
    assert r.status == 200, f"Host: {host} {path} answered {r.status}: {r.body[:200]!r}"
    return r.json()


def _check_routed(proxy, exact=True):
    for i in range(5):
        assert _name(proxy, "reviews", f"/v2/items/{i}")["name"] == "reviews-v2", \
            "prefix /v2/ must go to reviews-v2"
    names = collections.Counter(_name(proxy, "reviews", f"/page/{i}")["name"] for i in range(20))
    assert names == collections.Counter({"reviews-v1": 20}), \
        f"a 100/0 split must send everything to reviews-v1, got {dict(names)}"
    # A domain without a port matches the authority with any port.
    assert _name(proxy, "reviews:9080", "/page")["name"] == "reviews-v1", \
        "Host: reviews:9080 must match domain `reviews`"
    body = _name(proxy, "reviews", "/legacy/thing?x=1")
    assert body["name"] == "reviews-v1", f"/legacy/ reached {body['name']}"
    assert str(body.get("path", "")).startswith("/modern/thing"), \
        f"prefix_rewrite: echo saw path {body.get('path')!r}, want /modern/thing"
    if exact:
        assert _name(proxy, "reviews", "/exact")["name"] == "reviews-v2", "exact path /exact"
        assert _name(proxy, "reviews", "/exact/more")["name"] == "reviews-v1", \
            "path /exact must not match /exact/more"
    assert _name(proxy, "ratings", "/r")["name"] == "ratings", "vhost ratings"
    # With a route configuration, a cluster name that is no domain has no route.
    r = h.http_request(proxy.addr["outbound"], "/", headers={"Host": "reviews-v1"})
    assert r.status == 404, f"Host: reviews-v1 (no virtual host) answered {r.status}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="outbound", response_code="404", response_flags="NR")


def test_route_configuration_outbound():
    proxy = _setup_routed(ROUTED_CONFIG)
    _check_routed(proxy)


def test_route_configuration_camel_case():
    proxy = _setup_routed(ROUTED_CONFIG_CAMEL)
    _check_routed(proxy, exact=False)


if __name__ == "__main__":
    h.main([
        test_host_header_routes_to_cluster,
        test_round_robin_over_endpoints,
        test_absolute_form_uri,
        test_endpoints_from_cluster_load_assignment,
        test_unknown_authority_404_nr,
        test_closed_endpoint_503_uf,
        test_cluster_without_endpoints_503_uh,
        test_route_configuration_outbound,
        test_route_configuration_camel_case,
    ])
