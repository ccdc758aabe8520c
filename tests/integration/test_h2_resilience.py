#!/usr/bin/env python3
# Retries, timeouts and mirrors on the HTTP/2 paths of the real outrigger-proxy (static --config,
# --concurrency 1), with real clients (gRPC C++, curl, h2load) and real upstreams on loopback:
#   gRPC codes       a Unary call answered UNAVAILABLE (trailers-only) by a broken replica is
#                    retried on the good one under `retry_on: [unavailable]`; without a policy
#                    the failures reach the client;
#   HTTP/2 -> 1.1    an HTTP/2 client's PUTs (bodies replayed byte for byte) and GETs retried
#                    from a host answering 503 to a good one; a per-try timeout retried;
#   HTTP/2 -> 2      the same to a cluster whose upstream protocol is HTTP/2 (peer sidecars),
#                    for an HTTP/2 client and an HTTP/1.1 client;
#   flow control     400 answers of 20 kB over one upstream HTTP/2 connection (20 times its
#                    1 MiB window): every byte given back to the window, nothing stalls;
#   idle timeout     an upstream HTTP/2 connection without streams is closed after the
#                    cluster's idle_timeout;
#   hashing          RING_HASH on a header for an HTTP/2 client's streams;
#   trailers         an HTTP/2 client's request trailers reach an HTTP/1.1 upstream in the last
#                    chunk;
#   mirrors          an HTTP/2 client's requests, and an HTTP/1.1 client's to an HTTP/2
#                    cluster, copied to a mirror cluster; gRPC calls copied to a gRPC mirror
#                    cluster over HTTP/2.
# Run: python3 tests/integration/test_h2_resilience.py --bin-dir BUILD/bin

import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

GENEROUS_BUDGET = {"budget_percent": 100, "min_retries_per_second": 1000}
RETRY_5XX = {"retry_policy": {"retry_on": ["5xx"], "num_retries": 2, "base_interval": "0.001s",
                              "retry_non_idempotent": True}}


def _config(clusters, vhosts):
    return {"clusters": clusters, "routes": [{"name": "outbound", "virtual_hosts": vhosts}]}


def _vhost(name, domains, cluster, action=None, prefix="/"):
    return {"name": name, "domains": domains,
            "routes": [{"match": {"prefix": prefix},
                        "route": {"cluster": cluster, **(action or {})}}]}


def _cluster(name, addresses, **extra):
    # Many requests retry at once here (h2load): room in the max_retries breaker (default 3).
    return {"name": name, "endpoints": [{"address": a} for a in addresses],
            "retry_budget": GENEROUS_BUDGET, "circuit_breakers": {"max_retries": 100}, **extra}


def _start(cfg, name="proxy"):
    path = h.write_temp(f"h2res-{name}-{time.monotonic_ns()}.yaml", json.dumps(cfg, indent=2))
    return h.start_proxy(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                          "--config", path, "--concurrency", "1"], name=name)


def _metric(proxy, name, **labels):
    return h.metric_sum(h.metrics(proxy.addr["admin"]), name, **labels) or 0


def _curl_h2(urls, *args):
    """One curl per URL (curl 7.88 cannot reuse a prior-knowledge connection: curl#10634).
    Returns the JSON answers."""
    out = []
    for url in urls:
        r = subprocess.run(["curl", "-q", "--http2-prior-knowledge", "-sS", "--max-time", "30",
                            *args, url], capture_output=True, text=True, timeout=40)
        assert r.returncode == 0, f"curl {args} {url}: {r.stderr}"
        out.append(json.loads(r.stdout))
    return out


def _grpc_server(name, *extra):
    p = h.Process(f"grpc[{name}]", [h.bin_path("outrigger-grpc-echo"), "serve", "--listen",
                                    "127.0.0.1:0", "--name", name, *extra])
    return p.wait_for_listen("grpc")


def _grpc_unary(target, authority, n):
    r = subprocess.run([h.bin_path("outrigger-grpc-echo"), "call", "--target", target,
                        "--authority", authority, "--unary", str(n)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _fnv1a64(data):
    v = 0xCBF29CE484222325
    for b in data:
        v = ((v ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{v:016x}"


# --------------------------------------------------------------------------------------------

def test_grpc_retry_on_unavailable():
    """A broken replica answers every Unary call UNAVAILABLE (HTTP 200, trailers-only). With
    `retry_on: [unavailable]` every call succeeds on the good replica; without a policy the
    client sees the failures."""
    broken = _grpc_server("broken", "--unary-status", "14")
    good = _grpc_server("good")
    cfg = _config(
        [_cluster("greeter", [broken, good], upstream_protocol="HTTP2")],
        [_vhost("retrying", ["retrying"], "greeter",
                {"retry_policy": {"retry_on": ["unavailable"], "num_retries": 2,
                                  "base_interval": "0.001s"}}),
         _vhost("plain", ["*"], "greeter")])
    proxy = _start(cfg)
    n = 40
    got = _grpc_unary(proxy.addr["outbound"], "retrying", n)
    retries = _metric(proxy, "outrigger_upstream_rq_retry_total", cluster="greeter")
    print(f"    with retry_on unavailable: {got}, {retries:.0f} retries")
    assert got["ok"] == n and got["servers"] == {"good": n}, got
    # Round robin over two hosts: about half the first tries hit the broken one.
    assert n // 4 <= retries <= n, f"{retries} retries for {n} calls"
    assert _metric(proxy, "outrigger_upstream_rq_retry_success_total", cluster="greeter") == retries
    plain = _grpc_unary(proxy.addr["outbound"], "plain", n)
    print(f"    without a policy: {plain}")
    assert plain["codes"].get("14", 0) >= n // 4 and plain["ok"] + plain["codes"]["14"] == n, plain
    m = h.metrics(proxy.addr["admin"])
    codes = {}
    for ls, v in h.series(m, "outrigger_requests_total"):
        codes[ls.get("grpc_response_status")] = codes.get(ls.get("grpc_response_status"), 0) + v
    assert codes.get("0") == n + plain["ok"] and codes.get("14") == plain["codes"]["14"], codes


def test_http2_client_retries_to_http1_upstream():
    """An HTTP/2 client through the proxy to two HTTP/1.1 hosts, one answering 503: GETs (h2load,
    multiplexed) and PUTs with bodies (curl) all answered by the good host, the bodies intact."""
    good = h.start_echo("good")
    bad = h.start_echo("bad", extra_args=["--fail-rate", "1"])
    proxy = _start(_config([_cluster("svc", [bad.address, good.address])],
                           [_vhost("all", ["*"], "svc", RETRY_5XX)]))
    url = f"http://{proxy.addr['outbound']}"
    r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10", f"{url}/get"],
                       capture_output=True, text=True, timeout=60)
    assert "200 succeeded" in r.stdout and "200 2xx" in r.stdout, r.stdout[-800:]
    body = os.urandom(40_000)
    path = h.write_temp("h2res-body.bin", body)
    answers = _curl_h2([f"{url}/put/{i}" for i in range(10)], "-X", "PUT", "--data-binary",
                       f"@{path}")
    assert len(answers) == 10 and {a["name"] for a in answers} == {"good"}, answers
    assert {(a["body_bytes"], a["body_fnv1a64"]) for a in answers} == \
        {(len(body), _fnv1a64(body))}, "a replayed body must reach the upstream unchanged"
    retries = _metric(proxy, "outrigger_upstream_rq_retry_total", cluster="svc")
    print(f"    210 HTTP/2 requests, all from the good host; {retries:.0f} retries")
    assert retries >= 50
    assert _metric(proxy, "outrigger_requests_total", response_code="200") == 210


def test_http2_per_try_timeout():
    """A host that answers after 2 s and a fast one: with a 200 ms per-try timeout every HTTP/2
    request is answered by the fast host (the slow try is given up and retried)."""
    slow = h.start_echo("slow", extra_args=["--delay-ms", "2000"])
    fast = h.start_echo("fast")
    proxy = _start(_config([_cluster("svc", [slow.address, fast.address])],
                           [_vhost("all", ["*"], "svc", {"retry_policy": {
                               "retry_on": ["gateway-error"], "num_retries": 1,
                               "per_try_timeout": "0.2s", "base_interval": "0.001s"}})]))
    url = f"http://{proxy.addr['outbound']}"
    names = [a["name"] for a in _curl_h2([f"{url}/t/{i}" for i in range(6)])]
    assert names == ["fast"] * 6, names
    timeouts = _metric(proxy, "outrigger_upstream_rq_per_try_timeout_total", cluster="svc")
    print(f"    6 requests answered by the fast host; {timeouts:.0f} per-try timeouts")
    assert timeouts >= 1


def test_retries_to_http2_cluster():
    """Peer sidecars in front of two HTTP/1.1 apps (one answering 503), reached over HTTP/2
    (upstream_protocol HTTP2): HTTP/1.1 and HTTP/2 clients are retried onto the good one, and
    400 answers of 20 kB over the one upstream HTTP/2 connection never stall it."""
    good = h.start_echo("good")
    bad = h.start_echo("bad", extra_args=["--fail-rate", "1"])
    good_side = h.start_inbound_proxy(good.address, concurrency=1)
    bad_side = h.start_inbound_proxy(bad.address, concurrency=1)
    proxy = _start(_config(
        [_cluster("svc", [bad_side.addr["inbound"], good_side.addr["inbound"]],
                  upstream_protocol="HTTP2")],
        [_vhost("all", ["*"], "svc", RETRY_5XX)]))
    addr = proxy.addr["outbound"]
    n = 400
    sizes = set()
    with h.KeepAliveClient(addr, timeout=10) as c:
        for i in range(n):
            r = c.request(f"/big/{i}?bytes=20000")
            assert r.status == 200, f"request {i}: {r.status} {r.body[:200]!r}"
            sizes.add(len(r.body))
        r = c.request("/put", method="PUT", body=b"z" * 5000)
        assert r.status == 200 and r.json()["name"] == "good" and r.json()["body_bytes"] == 5000
    assert sizes == {20000}, sizes
    names = [a["name"] for a in _curl_h2([f"http://{addr}/h2/{i}" for i in range(10)])]
    assert names == ["good"] * 10, names
    m = h.metrics(proxy.addr["admin"])
    retries = h.metric_sum(m, "outrigger_upstream_rq_retry_total", cluster="svc") or 0
    conns = h.metric_sum(m, "outrigger_upstream_cx_total", cluster="svc") or 0
    print(f"    {n + 11} requests ({n} x 20 kB) all 200 over {conns:.0f} HTTP/2 connections; "
          f"{retries:.0f} retries")
    assert retries >= n // 4
    assert conns <= 2, f"{conns} upstream connections: one per host expected"


def test_idle_http2_upstream_connection_closed():
    """An upstream HTTP/2 connection with no stream for the cluster's idle_timeout is closed
    (GOAWAY, then the socket); the next request opens a new one."""
    echo = h.start_echo("app")
    side = h.start_inbound_proxy(echo.address, concurrency=1)
    proxy = _start(_config([_cluster("svc", [side.addr["inbound"]], upstream_protocol="HTTP2",
                                     idle_timeout="1s")],
                           [_vhost("all", ["*"], "svc")]))
    addr = proxy.addr["outbound"]
    assert h.http_request(addr, "/one").status == 200
    assert _metric(proxy, "outrigger_upstream_cx_active", cluster="svc") == 1
    t0 = time.monotonic()
    h.poll_until(lambda: _metric(proxy, "outrigger_upstream_cx_active", cluster="svc") == 0, 10,
                 "the idle HTTP/2 connection closed", interval=0.1)
    print(f"    idle HTTP/2 upstream connection closed after {time.monotonic() - t0:.1f} s "
          "(idle_timeout 1s, swept every second)")
    assert h.http_request(addr, "/two").status == 200
    assert _metric(proxy, "outrigger_upstream_cx_total", cluster="svc") == 2


def test_http2_streams_hash_consistently():
    """A RING_HASH cluster hashing on x-user: an HTTP/2 client's streams for one user always reach
    the same host, and the users spread over the hosts."""
    echoes = [h.start_echo(f"h{i}") for i in range(3)]
    proxy = _start(_config([_cluster("svc", [e.address for e in echoes], lb_policy="RING_HASH",
                                     hash_policy=[{"header": "x-user"}])],
                           [_vhost("all", ["*"], "svc")]))
    url = f"http://{proxy.addr['outbound']}"
    mapping = {}
    for user in [f"user-{i}" for i in range(12)]:
        # nghttp: several streams on one connection, all carrying the user's header.
        r = subprocess.run(["nghttp", "-H", f"x-user: {user}", *[f"{url}/u/{i}" for i in range(4)]],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        names = {json.loads(x)["name"] for x in r.stdout.replace("}{", "}\n{").splitlines()
                 if x.strip()}
        assert len(names) == 1, f"{user} went to {names}"
        mapping[user] = names.pop()
    print(f"    12 users x 4 HTTP/2 streams: each user on one host; hosts used "
          f"{sorted(set(mapping.values()))}")
    assert len(set(mapping.values())) >= 2, mapping


def test_grpc_calls_are_mirrored_over_http2():
    """A gRPC route mirrored to a gRPC cluster (upstream protocol HTTP/2): every Unary call is
    copied as a stream of the shadow's HTTP/2 connection, with its "-shadow" authority; the
    shadow's sidecar logs each copy, and the answers are thrown away."""
    good = _grpc_server("good")
    shadow = _grpc_server("shadow")
    shadow_side = h.start_proxy(["--inbound", "127.0.0.1:0", "--app", shadow, "--app-protocol",
                                 "http2", "--admin", "127.0.0.1:0", "--concurrency", "1"],
                                name="shadow-sidecar")
    proxy = _start(_config(
        [_cluster("greeter", [good], upstream_protocol="HTTP2"),
         _cluster("shadow", [shadow_side.addr["inbound"]], upstream_protocol="HTTP2")],
        [_vhost("all", ["*"], "greeter", {"request_mirror_policies": [{"cluster": "shadow"}]})]))
    got = _grpc_unary(proxy.addr["outbound"], "greeter", 10)
    assert got["ok"] == 10 and got["servers"] == {"good": 10}, got
    def copies():
        return [e for e in shadow_side.access_log() if e.get("path", "").endswith("/Unary")]
    h.poll_until(lambda: len(copies()) >= 10, 5, "10 copies logged by the shadow's sidecar")
    lines = copies()
    assert {e["authority"] for e in lines} == {"greeter-shadow"}, lines[:2]
    assert {e["response_code"] for e in lines} == {200} and {e["protocol"] for e in lines} == \
        {"HTTP/2"}, lines[:2]
    m = h.metrics(proxy.addr["admin"])
    sent = h.metric_sum(m, "outrigger_upstream_rq_mirror_total", cluster="shadow") or 0
    dropped = h.metric_sum(m, "outrigger_upstream_rq_mirror_dropped_total", cluster="shadow") or 0
    print(f"    10 gRPC calls: {len(lines)} copies at the shadow over HTTP/2, counted {sent:.0f}, "
          f"dropped {dropped:.0f}")
    assert sent == 10 and dropped == 0


class _ChunkRecorder:
    """A loopback HTTP/1.1 server that reads one chunked request whole (to its last chunk and
    trailers), keeps the raw bytes, and answers 200."""

    def __init__(self):
        self.raw = b""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((h.LOOPBACK, 0))
        self._sock.listen(8)
        self.address = f"{h.LOOPBACK}:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self._sock.accept()
        conn.settimeout(10)
        data = b""
        while b"\r\n0\r\n" not in data or not data.endswith(b"\r\n\r\n"):
            b = conn.recv(65536)
            if not b:
                break
            data += b
        self.raw = data
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        time.sleep(0.5)
        conn.close()


def _hpack_literal(name, value):
    """A header field as an HPACK literal without indexing, new name."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def test_http2_request_trailers_reach_http1_upstream():
    rec = _ChunkRecorder()
    proxy = _start(_config([_cluster("svc", [rec.address])], [_vhost("all", ["*"], "svc")]))
    host, port = proxy.addr["outbound"].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes(9)[:3] + b"\x04\x00" + bytes(4))
    head = b"\x83\x86" + b"\x44\x07/upload" + b"\x41\x01a"  # POST, http, :path, :authority
    frame = lambda t, f, sid, p: (len(p).to_bytes(3, "big") + bytes([t, f]) +  # noqa: E731
                                  sid.to_bytes(4, "big") + p)
    s.sendall(frame(1, 0x4, 1, head) + frame(0, 0, 1, b"hello trailers") +
              frame(1, 0x5, 1, _hpack_literal("x-checksum", "abc123")))
    buf = b""
    status = None
    deadline = time.monotonic() + 10
    while status is None and time.monotonic() < deadline:
        s.settimeout(5)
        buf += s.recv(65536)
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            if buf[3] == 1 and int.from_bytes(buf[5:9], "big") == 1:
                status = buf[9:9 + n][:1]
            buf = buf[9 + n:]
    s.close()
    assert status == b"\x88", f"the answer's head should be :status 200 (0x88), got {status!r}"
    raw = rec.raw.decode("latin-1")
    print(f"    upstream received: {raw.splitlines()[0]} ... {raw[raw.find('hello'):]!r}")
    assert "transfer-encoding: chunked" in raw.lower(), raw
    assert "hello trailers" in raw and "\r\n0\r\nx-checksum: abc123\r\n\r\n" in raw, raw


def test_http2_requests_are_mirrored():
    """Mirrors on the HTTP/2 paths: an HTTP/2 client's requests, and an HTTP/1.1 client's
    requests (with bodies) to an HTTP/2 cluster, are copied to an HTTP/1.1 mirror cluster."""
    good = h.start_echo("good")
    shadow = h.start_echo("shadow")
    counter = h.EchoRequestCounter(shadow.address)
    side = h.start_inbound_proxy(good.address, concurrency=1)
    mirror = {"request_mirror_policies": [{"cluster": "shadow"}]}
    proxy = _start(_config(
        [_cluster("svc", [good.address]), _cluster("shadow", [shadow.address]),
         _cluster("h2svc", [side.addr["inbound"]], upstream_protocol="HTTP2")],
        [_vhost("h2", ["h2svc"], "h2svc", mirror), _vhost("all", ["*"], "svc", mirror)]))
    url = f"http://{proxy.addr['outbound']}"
    assert [a["name"] for a in _curl_h2([f"{url}/m/{i}" for i in range(5)])] == ["good"] * 5
    h.poll_until(lambda: counter.delta() >= 5, 5, "5 mirrored copies at the shadow")
    with h.KeepAliveClient(proxy.addr["outbound"]) as c:
        for i in range(3):
            r = c.request(f"/h1/{i}", method="PUT", body=b"q" * 3000, headers={"Host": "h2svc"})
            assert r.status == 200 and r.json()["body_bytes"] == 3000, r.body[:200]
    h.poll_until(lambda: counter.delta() >= 8, 5, "3 more copies at the shadow")
    mirrored = _metric(proxy, "outrigger_upstream_rq_mirror_total", cluster="shadow")
    print(f"    5 HTTP/2 requests and 3 HTTP/1.1 requests to an HTTP/2 cluster: "
          f"{counter.delta()} copies at the shadow, counted {mirrored:.0f}")
    assert mirrored == 8 and counter.delta() == 8


if __name__ == "__main__":
    h.main([
        test_grpc_retry_on_unavailable,
        test_http2_client_retries_to_http1_upstream,
        test_http2_per_try_timeout,
        test_retries_to_http2_cluster,
        test_idle_http2_upstream_connection_closed,
        test_http2_streams_hash_consistently,
        test_http2_request_trailers_reach_http1_upstream,
        test_http2_requests_are_mirrored,
        test_grpc_calls_are_mirrored_over_http2,
    ])
