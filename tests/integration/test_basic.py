#!/usr/bin/env python3
# Inbound HTTP/1.1 basics through the real outrigger-proxy in front of outrigger-echo:
# forwarding and the echo's JSON, x-forwarded-for / x-request-id / x-forwarded-proto, hop-by-hop
# header removal, HTTP/1.0 (curl -0), client keep-alive (curl reuse), upstream keep-alive (pooled
# connections to the app), and the admin surface (/ready, /metrics counters and histogram,
# /config_dump) plus the JSON access log on stdout.
# Run: python3 tests/integration/test_basic.py --bin-dir BUILD/bin

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

ACCESS_LOG_KEYS = {
    "start_time", "method", "authority", "path", "protocol", "response_code", "response_flags",
    "upstream_cluster", "upstream_host", "duration_ms", "bytes_received", "bytes_sent",
    "request_id", "x_forwarded_for", "listener",
}


def _setup(concurrency=2):
    echo = h.start_echo("basic-echo", "v1")
    proxy = h.start_inbound_proxy(echo.address, concurrency=concurrency)
    return echo, proxy


def test_get_returns_echo_json():
    echo, proxy = _setup()
    r = h.http_request(proxy.addr["inbound"], "/hello/world?x=1")
    assert r.status == 200, f"status {r.status}: {r.body[:300]!r}"
    body = r.json()
    assert body.get("name") == "basic-echo", f"echo name {body.get('name')!r}"
    assert body.get("version") == "v1", f"echo version {body.get('version')!r}"
    assert body.get("method") == "GET", f"method {body.get('method')!r}"
    assert str(body.get("path", "")).startswith("/hello/world"), f"path {body.get('path')!r}"
    assert body.get("body_bytes") == 0, f"body_bytes {body.get('body_bytes')!r}"
    # A POST body goes through untouched.
    payload = b"outrigger-" * 1000
    r = h.http_request(proxy.addr["inbound"], "/post", method="POST", body=payload,
                       headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200, f"POST status {r.status}"
    body = r.json()
    assert body.get("method") == "POST", f"method {body.get('method')!r}"
    assert body.get("body_bytes") == len(payload), f"body_bytes {body.get('body_bytes')}"
    assert h.parse_hex(body["body_fnv1a64"]) == h.fnv1a64(payload), "body hash differs"


def test_forwarding_headers():
    echo, proxy = _setup()
    addr = proxy.addr["inbound"]
    body = h.http_request(addr, "/xff").json()
    xff = h.echo_header(body, "x-forwarded-for")
    assert xff is not None and "127.0.0.1" in xff, f"x-forwarded-for {xff!r}"
    rid = h.echo_header(body, "x-request-id")
    assert rid and rid.strip(), f"x-request-id not set: {rid!r}"
    assert h.echo_header(body, "x-forwarded-proto") == "http", \
        f"x-forwarded-proto {h.echo_header(body, 'x-forwarded-proto')!r}"

    # Each request gets its own id.
    rid2 = h.echo_header(h.http_request(addr, "/xff").json(), "x-request-id")
    assert rid2 and rid2 != rid, f"two requests got the same x-request-id {rid!r}"

    # A client-supplied id is kept; an existing x-forwarded-for gets the client IP appended.
    body = h.http_request(addr, "/xff", headers={
        "X-Request-Id": "client-chosen-id-42", "X-Forwarded-For": "203.0.113.9"}).json()
    assert h.echo_header(body, "x-request-id") == "client-chosen-id-42", \
        f"x-request-id not preserved: {h.echo_header(body, 'x-request-id')!r}"
    xff = h.echo_header(body, "x-forwarded-for") or ""
    assert "203.0.113.9" in xff and "127.0.0.1" in xff, f"x-forwarded-for {xff!r}"
    assert xff.index("203.0.113.9") < xff.rindex("127.0.0.1"), \
        f"client IP must be appended after the existing entries: {xff!r}"


def test_hop_by_hop_headers_removed():
    echo, proxy = _setup()
    r = h.http_request(proxy.addr["inbound"], "/hop", headers={
        "Connection": "foo",
        "Foo": "named-by-connection",
        "Keep-Alive": "timeout=5, max=100",
        "Proxy-Connection": "keep-alive",
        "TE": "deflate",
        "Upgrade": "example/1",
        "X-Keep-Me": "end-to-end",
    })
    assert r.status == 200, f"status {r.status}"
    body = r.json()
    for name in ("foo", "keep-alive", "proxy-connection", "te", "upgrade"):
        v = h.echo_header(body, name)
        assert v is None, f"hop-by-hop header {name!r} reached the app: {v!r}"
    conn = h.echo_header(body, "connection")
    assert conn is None or "foo" not in conn.lower(), f"connection header forwarded: {conn!r}"
    assert h.echo_header(body, "x-keep-me") == "end-to-end", \
        "an end-to-end header was dropped (x-keep-me)"


def test_http10_with_curl():
    echo, proxy = _setup()
    url = f"http://{proxy.addr['inbound']}/ten"
    code, obj, raw = h.curl_json("-0", url)
    assert code == 200, f"HTTP/1.0 request answered {code}: {raw[:300]}"
    assert obj and obj.get("name") == "basic-echo", f"unexpected body {raw[:300]}"
    # HTTP/1.0 with a body (Content-Length), and keep-alive explicitly requested.
    r = h.curl("-0", "-v", "-H", "Connection: keep-alive", "--data-binary", "abcdef", url, url)
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr.decode()[-500:]}"
    out = r.stdout.decode()
    assert out.count('"basic-echo"') == 2, f"expected two echo answers, got: {out[:500]}"


def test_client_keepalive_reuse_with_curl():
    echo, proxy = _setup()
    base = f"http://{proxy.addr['inbound']}"
    r = h.curl("-v", f"{base}/one", f"{base}/two")
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, f"curl exit {r.returncode}: {err[-500:]}"
    assert r.stdout.decode().count('"basic-echo"') == 2, f"two answers expected: {r.stdout[:400]!r}"
    assert "re-using existing connection" in err.lower(), \
        f"curl did not reuse the connection:\n{err[-1500:]}"


def test_upstream_keepalive_reuse():
    echo, proxy = _setup(concurrency=1)
    ids, per_conn = [], []
    with h.KeepAliveClient(proxy.addr["inbound"]) as c:
        for i in range(20):
            r = c.request(f"/reuse/{i}")
            assert r.status == 200, f"request {i}: status {r.status}"
            body = r.json()
            ids.append(body.get("connection_id"))
            per_conn.append(body.get("connection_requests"))
    assert None not in ids, "echo answer lacks connection_id"
    distinct = set(ids)
    assert len(distinct) <= 2, f"the proxy opened {len(distinct)} upstream connections for 20 " \
                               f"sequential requests (ids {sorted(map(str, distinct))})"
    assert max(per_conn) >= 10, f"upstream connection_requests never passed {max(per_conn)}"


def test_ready_endpoint():
    echo, proxy = _setup()
    r = h.wait_http_ok(f"http://{proxy.addr['admin']}/ready", 5)
    assert r.text().strip() == "ready", f"/ready body {r.text()!r}"


def test_metrics_counts_requests():
    echo, proxy = _setup()
    admin, addr = proxy.addr["admin"], proxy.addr["inbound"]
    n = 7
    for i in range(n):
        assert h.http_request(addr, f"/m/{i}").status == 200
    labels = dict(listener="inbound", reporter="destination", response_code="200",
                  response_flags="-")
    h.wait_metric(admin, "outrigger_requests_total", lambda v: v == n, **labels)

    m = h.metrics(admin)
    buckets = h.series(m, "outrigger_request_duration_milliseconds_bucket", listener="inbound")
    assert buckets, "no outrigger_request_duration_milliseconds_bucket series for listener=inbound"
    by_le = sorted(((float(ls["le"]), v) for ls, v in buckets if "le" in ls))
    assert by_le and by_le[-1][0] == float("inf"), f"no le=\"+Inf\" bucket: {by_le}"
    assert by_le[-1][1] == n, f"+Inf bucket {by_le[-1][1]} != {n} requests"
    values = [v for _, v in by_le]
    assert values == sorted(values), f"histogram buckets are not cumulative: {by_le}"
    count = h.metric_sum(m, "outrigger_request_duration_milliseconds_count", listener="inbound")
    assert count == n, f"outrigger_request_duration_milliseconds_count {count} != {n}"
    total = h.metric_sum(m, "outrigger_request_duration_milliseconds_sum", listener="inbound")
    assert total is not None and total >= 0, f"outrigger_request_duration_milliseconds_sum {total}"
    cx = h.metric_sum(m, "outrigger_downstream_cx_total", listener="inbound")
    assert cx is not None and cx >= n, f"outrigger_downstream_cx_total {cx} < {n} connections"
    urq = h.metric_sum(m, "outrigger_upstream_rq_total", cluster="local_app")
    assert urq == n, f"outrigger_upstream_rq_total{{cluster=local_app}} {urq} != {n}"


def test_config_dump_is_json():
    echo, proxy = _setup()
    r = h.http_request(proxy.addr["admin"], "/config_dump")
    assert r.status == 200, f"/config_dump answered {r.status}"
    dump = json.loads(r.body)
    assert isinstance(dump, (dict, list)) and dump, f"empty config dump: {r.body[:200]!r}"
    port = echo.address.rsplit(":", 1)[1]
    assert port in r.text(), f"the app's address {echo.address} is not in /config_dump"


def test_access_log_line():
    echo, proxy = _setup()
    r = h.http_request(proxy.addr["inbound"], "/logged/path?q=1",
                       headers={"X-Request-Id": "log-me-123"}, method="POST", body=b"12345")
    assert r.status == 200
    entry = proxy.wait_for_access_log(lambda e: e.get("request_id") == "log-me-123")
    missing = ACCESS_LOG_KEYS - set(entry)
    assert not missing, f"access log lacks keys {sorted(missing)}: {entry}"
    assert str(entry["response_code"]) == "200", f"response_code {entry['response_code']!r}"
    assert entry["response_flags"] == "-", f"response_flags {entry['response_flags']!r}"
    assert entry["method"] == "POST", f"method {entry['method']!r}"
    assert str(entry["path"]).startswith("/logged/path"), f"path {entry['path']!r}"
    assert entry["listener"] == "inbound", f"listener {entry['listener']!r}"
    assert entry["upstream_cluster"] == "local_app", \
        f"upstream_cluster {entry['upstream_cluster']!r}"
    assert entry["upstream_host"] == echo.address, \
        f"upstream_host {entry['upstream_host']!r} != {echo.address}"
    assert "1.1" in str(entry["protocol"]), f"protocol {entry['protocol']!r}"
    # Body bytes (as Envoy counts) or wire bytes: either way within these bounds.
    assert 5 <= int(entry["bytes_received"]) <= 5 + 4096, \
        f"bytes_received {entry['bytes_received']!r} for a 5-byte body"
    assert len(r.body) <= int(entry["bytes_sent"]) <= len(r.body) + 4096, \
        f"bytes_sent {entry['bytes_sent']!r} for a {len(r.body)}-byte response body"
    assert float(entry["duration_ms"]) >= 0, f"duration_ms {entry['duration_ms']!r}"

    # A second, failed request is logged with its own status.
    r = h.http_request(proxy.addr["inbound"], "/x?status=418",
                       headers={"X-Request-Id": "log-me-418"})
    assert r.status == 418, f"status passthrough: {r.status}"
    entry = proxy.wait_for_access_log(lambda e: e.get("request_id") == "log-me-418")
    assert str(entry["response_code"]) == "418", f"response_code {entry['response_code']!r}"
    assert entry["response_flags"] == "-", f"response_flags {entry['response_flags']!r}"


if __name__ == "__main__":
    h.main([
        test_get_returns_echo_json,
        test_forwarding_headers,
        test_hop_by_hop_headers_removed,
        test_http10_with_curl,
        test_client_keepalive_reuse_with_curl,
        test_upstream_keepalive_reuse,
        test_ready_endpoint,
        test_metrics_counts_requests,
        test_config_dump_is_json,
        test_access_log_line,
    ])
