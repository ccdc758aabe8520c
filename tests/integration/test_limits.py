#!/usr/bin/env python3
# Limits and malformed input on the real outrigger-proxy's inbound listener: oversized request
# heads (431 + close, default and configured limit), request smuggling / ambiguous framing sent as
# raw bytes (400 + close, and the app never sees the request), a slow request head
# (request_headers_timeout), and upstream failures as local replies with response flags:
# app port closed (503 UF), app closes without answering (503 UC), route timeout (504 UT).
# Run: python3 tests/integration/test_limits.py --bin-dir BUILD/bin

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# Each entry: (name, raw request, head_level). A lenient parser would forward every one of them.
# head_level: the problem is in the request head, so the app must never see the request at all.
# Otherwise the problem is in the chunked body: a streaming proxy may already have forwarded the
# head (the app then counts one request, whose body never completes), but never more than that.
SMUGGLING_CASES = [
    ("content-length + transfer-encoding chunked",
     b"POST /smuggle HTTP/1.1\r\nHost: echo\r\nContent-Length: 4\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", True),
    ("two differing content-length headers",
     b"POST /smuggle HTTP/1.1\r\nHost: echo\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"
     b"hello!", True),
    ("transfer-encoding gzip (not chunked)",
     b"POST /smuggle HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: gzip\r\n\r\nhello", True),
    ("transfer-encoding chunked, gzip (chunked not last)",
     b"POST /smuggle HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", True),
    ("obs-fold header continuation",
     b"GET /smuggle HTTP/1.1\r\nHost: echo\r\nX-Folded: first\r\n second\r\n\r\n", True),
    ("bare LF line ending",
     b"GET /smuggle HTTP/1.1\r\nHost: echo\nX-After-Bare-Lf: 1\r\n\r\n", True),
    ("bare CR inside a header value",
     b"GET /smuggle HTTP/1.1\r\nHost: echo\r\nX-Cr: a\rb\r\n\r\n", True),
    ("space inside a header name",
     b"GET /smuggle HTTP/1.1\r\nHost: echo\r\nBad Header: x\r\n\r\n", True),
    ("invalid character in a header name",
     b"GET /smuggle HTTP/1.1\r\nHost: echo\r\nBad@Name: x\r\n\r\n", True),
    ("space before the colon",
     b"POST /smuggle HTTP/1.1\r\nHost: echo\r\nContent-Length : 5\r\n\r\nhello", True),
    # Body-level cases last, so that a late count of a forwarded head cannot land in another.
    ("bad chunk size",
     b"POST /smuggle HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nhello\r\n0\r\n\r\n", False),
    ("chunk size overflow",
     b"POST /smuggle HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", False),
]

GOOD_REQUEST = b"GET /good HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n"


def _setup(extra_args=()):
    echo = h.start_echo("limits-echo", "v1")
    proxy = h.start_inbound_proxy(echo.address, extra_args=extra_args, concurrency=2)
    return echo, proxy


def test_oversize_request_headers_431():
    echo, proxy = _setup()
    counter = h.EchoRequestCounter(echo.address)
    big = b"GET /big HTTP/1.1\r\nHost: echo\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n"
    resp, closed = h.raw_request(proxy.addr["inbound"], big, timeout=3)
    assert resp.startswith(b"HTTP/1.1 431"), f"70 KiB header answered {resp[:120]!r}"
    assert closed, "connection stayed open after 431"
    assert counter.delta() == 0, "the oversized request reached the app"
    # Many headers adding up past the limit count too.
    many = (b"GET /many HTTP/1.1\r\nHost: echo\r\n" +
            b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(70)) + b"\r\n")
    resp, closed = h.raw_request(proxy.addr["inbound"], many, timeout=3)
    assert resp.startswith(b"HTTP/1.1 431"), f"70 x 1 KiB headers answered {resp[:120]!r}"
    assert closed, "connection stayed open after 431 (many headers)"
    # A head well inside the limit still passes.
    ok = b"GET /ok HTTP/1.1\r\nHost: echo\r\nX-Medium: " + b"m" * 4000 + \
         b"\r\nConnection: close\r\n\r\n"
    resp, closed = h.raw_request(proxy.addr["inbound"], ok, timeout=5)
    assert resp.startswith(b"HTTP/1.1 200"), f"a 4 KB header answered {resp[:120]!r}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 2,
                  listener="inbound", response_code="431", response_flags="DPE")


def test_configured_header_limit():
    echo = h.start_echo("limits-echo", "v1")
    cfg = h.write_temp("small-limit.yaml", f"""listeners:
  - name: small
    address: "127.0.0.1:0"
    direction: INBOUND
    cluster: app
    http:
      max_request_headers_kb: 4
clusters:
  - name: app
    endpoints:
      - address: "{echo.address}"
""")
    proxy = h.start_proxy(["--config", cfg, "--admin", "127.0.0.1:0", "--concurrency", "1"],
                          listeners=["small", "admin"])
    addr = proxy.addr["small"]
    resp, closed = h.raw_request(
        addr, b"GET / HTTP/1.1\r\nHost: e\r\nX-A: " + b"a" * 6000 + b"\r\n\r\n", timeout=3)
    assert resp.startswith(b"HTTP/1.1 431") and closed, \
        f"6 KB head over a 4 KiB limit: {resp[:120]!r}, closed={closed}"
    resp, closed = h.raw_request(
        addr, b"GET / HTTP/1.1\r\nHost: e\r\nConnection: close\r\nX-A: " + b"a" * 2000 +
        b"\r\n\r\n", timeout=5)
    assert resp.startswith(b"HTTP/1.1 200"), f"2 KB head under a 4 KiB limit: {resp[:120]!r}"


def test_request_smuggling_rejected():
    echo, proxy = _setup()
    counter = h.EchoRequestCounter(echo.address)
    failures = []
    for name, data, head_level in SMUGGLING_CASES:
        before = counter.delta()
        resp, closed = h.raw_request(proxy.addr["inbound"], data, timeout=2)
        reached = counter.delta() - before
        problems = []
        if not resp.startswith(b"HTTP/1.1 400"):
            problems.append(f"answered {resp[:60]!r}")
        if not closed:
            problems.append("connection left open")
        if reached > (0 if head_level else 1):
            problems.append(f"app received {reached} request(s)")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    assert proxy.alive(), "proxy died on malformed input"
    # The proxy still works and the counter does count forwarded requests.
    before = counter.delta()
    resp, _ = h.raw_request(proxy.addr["inbound"], GOOD_REQUEST, timeout=5)
    assert resp.startswith(b"HTTP/1.1 200"), f"a good request after the bad ones: {resp[:80]!r}"
    assert counter.delta() - before >= 1, "echo request counter did not see a good request"
    assert not failures, f"{len(failures)} of {len(SMUGGLING_CASES)} cases not rejected:\n  " + \
        "\n  ".join(failures)
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total",
                  lambda v: v is not None and v >= 1, listener="inbound",
                  response_code="400", response_flags="DPE")


def test_request_headers_timeout():
    echo = h.start_echo("limits-echo", "v1")
    cfg = h.write_temp("headers-timeout.yaml", f"""listeners:
  - name: slow
    address: "127.0.0.1:0"
    direction: INBOUND
    cluster: app
    http:
      request_headers_timeout: 0.3s
clusters:
  - name: app
    endpoints:
      - address: "{echo.address}"
""")
    proxy = h.start_proxy(["--config", cfg, "--admin", "127.0.0.1:0", "--concurrency", "1"],
                          listeners=["slow", "admin"])
    host, port = h.split_addr(proxy.addr["slow"])
    s = socket.create_connection((host, port), timeout=5)
    data, closed = b"", False
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: e\r\nX-Slow: ")  # and never finish the head
        t0 = time.monotonic()
        deadline = t0 + 5
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            s.settimeout(remaining)
            try:
                b = s.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not b:
                closed = True
                break
            data += b
        elapsed = time.monotonic() - t0
    finally:
        s.close()
    print(f"    incomplete head: closed={closed} after {elapsed * 1000:.0f} ms, got {data[:40]!r}")
    assert closed, "the proxy kept a connection with an incomplete head open for 5s " \
                   "(request_headers_timeout 0.3s)"
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), f"unexpected answer {data[:80]!r}"


def test_upstream_down_503_uf():
    port = h.closed_port()
    proxy = h.start_inbound_proxy(f"127.0.0.1:{port}", concurrency=1)
    r = h.http_request(proxy.addr["inbound"], "/down", headers={"X-Request-Id": "down-1"})
    assert r.status == 503, f"app down answered {r.status}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="inbound", response_code="503", response_flags="UF")
    h.wait_metric(proxy.addr["admin"], "outrigger_upstream_cx_connect_fail_total",
                  lambda v: v is not None and v >= 1, cluster="local_app")
    e = proxy.wait_for_access_log(lambda e: e.get("request_id") == "down-1")
    assert e.get("response_flags") == "UF", f"access log flags {e.get('response_flags')!r}"
    # Still serving (another 503, not a hang or a crash).
    assert h.http_request(proxy.addr["inbound"], "/down2").status == 503


def test_upstream_closes_503_uc():
    echo, proxy = _setup()
    r = h.http_request(proxy.addr["inbound"], "/close?close=1")
    assert r.status == 503, f"app closing without an answer gave {r.status}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="inbound", response_code="503", response_flags="UC")
    # The next request gets a fresh upstream connection and succeeds.
    assert h.http_request(proxy.addr["inbound"], "/after").status == 200


def test_route_timeout_504_ut():
    echo = h.start_echo("slow-echo", "v1")
    cfg = h.write_temp("timeout.yaml", f"""clusters:
  - name: slow
    endpoints:
      - address: "{echo.address}"
routes:
  - name: outbound
    virtual_hosts:
      - name: slow
        domains: ["slow"]
        routes:
          - match: {{prefix: "/"}}
            route:
              cluster: slow
              timeout: 0.3s
""")
    proxy = h.start_proxy(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                           "--config", cfg, "--concurrency", "1"])
    t0 = time.monotonic()
    r = h.http_request(proxy.addr["outbound"], "/?delay_ms=3000", headers={"Host": "slow"})
    elapsed = time.monotonic() - t0
    assert r.status == 504, f"route timeout answered {r.status} after {elapsed:.2f}s"
    assert elapsed < 2.5, f"504 came after {elapsed:.2f}s; the route timeout is 0.3s"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="outbound", response_code="504", response_flags="UT")
    fast = h.http_request(proxy.addr["outbound"], "/?delay_ms=10", headers={"Host": "slow"})
    assert fast.status == 200, f"a request inside the timeout answered {fast.status}"


if __name__ == "__main__":
    h.main([
        test_oversize_request_headers_431,
        test_configured_header_limit,
        test_request_smuggling_rejected,
        test_request_headers_timeout,
        test_upstream_down_503_uf,
        test_upstream_closes_503_uc,
        test_route_timeout_504_ut,
    ])
