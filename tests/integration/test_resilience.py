#!/usr/bin/env python3
# Traffic management in the real outrigger-proxy (outbound listener, static --config), against
# real outrigger-echo upstreams on ephemeral loopback ports:
#   load balancers   weighted ROUND_ROBIN (exact shares), RANDOM and LEAST_REQUEST (binomial
#                    shares, no fixed rotation), LEAST_REQUEST and PEAK_EWMA steering away from a
#                    slow host, PEAK_EWMA leaving no equally fast host out;
#   consistent hash  RING_HASH and MAGLEV on header x-user (and a cookie): sticky keys, and with a
#                    host removed (a second proxy with 3 of the 4 hosts) only its keys move;
#   retries          a 503 retried on the other host; full-jitter backoff capped by max_interval
#                    (flag URX when tries run out); the retry budget bounding the upstream load
#                    when every host fails; a per-try timeout and an upstream reset
#                    retried on the other host;
#   circuit breakers max_requests and max_connections: 503 UO at once, nothing hangs;
#   outlier detection consecutive_5xx ejection for base_ejection_time, /clusters and metrics;
#   health checks    a killed host marked /failed_active_hc and avoided, healthy when it returns;
#   fault injection  abort share (FI) and delay share (DI) within binomial tolerance;
#   mirroring        copies sent without waiting for the (slow) mirror, Host "<host>-shadow";
#   local rate limit a route's token bucket: 429 RL when empty, refilled after fill_interval.
# Every proxy runs with --concurrency 1 (budgets, breakers and buckets are split per worker).
# Run: python3 tests/integration/test_resilience.py --bin-dir BUILD/bin

import collections
import http.server
import json
import math
import os
import socket
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# --------------------------------------------------------------------------------------------
# Helpers: configuration


def _cluster(name, echoes, weights=None, **policies):
    """A cluster dict over the echoes (Process objects or "ip:port" strings)."""
    eps = []
    for i, e in enumerate(echoes):
        ep = {"address": e if isinstance(e, str) else e.address}
        if weights:
            ep["weight"] = weights[i]
        eps.append(ep)
    return {"name": name, "endpoints": eps, **policies}


def _route(cluster, prefix="/", action=None, **extra):
    """A route matching `prefix` to `cluster`; `action` adds RouteAction fields (retry_policy,
    timeout, request_mirror_policies...), `extra` adds Route fields (fault, local_rate_limit)."""
    return {"match": {"prefix": prefix}, "route": {"cluster": cluster, **(action or {})}, **extra}


def _config(clusters, routes):
    """A bootstrap whose route configuration `outbound` (used by --outbound) sends every
    authority through `routes`, in order."""
    return {"clusters": clusters,
            "routes": [{"name": "outbound",
                        "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}]}


def _start_proxy(cfg, name="proxy"):
    # JSON is YAML (flow style), so the config dict is written as JSON.
    path = h.write_temp(f"resilience-{name}-{time.monotonic_ns()}.yaml", json.dumps(cfg, indent=2))
    return h.start_proxy(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                          "--config", path, "--concurrency", "1"], name=name)


# --------------------------------------------------------------------------------------------
# Helpers: traffic and observation


def _echoes(names, extra=None):
    """Starts one echo per name; `extra` maps a name to its extra command-line arguments."""
    extra = extra or {}
    return [h.start_echo(n, "v1", extra_args=extra.get(n, ())) for n in names]


def _names(addr, count, path="/", headers=None, timeout=10):
    """Sends `count` GETs on one keep-alive connection; every one must answer 200. Returns the
    echo names in order."""
    out = []
    with h.KeepAliveClient(addr, timeout=timeout) as c:
        for i in range(count):
            r = c.request(path, headers=headers)
            assert r.status == 200, f"request {i} of {count} to {path}: {r.status} {r.body[:200]!r}"
            out.append(r.json()["name"])
    return out


def _timed(client, path="/", headers=None):
    """(Response, seconds) of one request on a KeepAliveClient."""
    t0 = time.monotonic()
    r = client.request(path, headers=headers)
    return r, time.monotonic() - t0


def _timed_fresh(addr, path="/", headers=None, timeout=10):
    """(status, seconds, name or None) of one request on its own connection."""
    t0 = time.monotonic()
    r = h.http_request(addr, path, headers=headers, timeout=timeout)
    dt = time.monotonic() - t0
    try:
        name = json.loads(r.body).get("name")
    except ValueError:
        name = None
    return r.status, dt, name


def _concurrently(fn, n, timeout):
    """Runs fn(i) for i in range(n) in n threads released together. Returns the results in order
    (an exception is returned as the result). Fails if a thread is still running after
    `timeout` seconds: a request that hangs."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        try:
            barrier.wait(timeout)
            results[i] = fn(i)
        except Exception as e:  # reported by the caller
            results[i] = e
    threads = [threading.Thread(target=run, args=(i,), daemon=True, name=f"client-{i}")
               for i in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"{len(stuck)} of {n} concurrent requests still running after {timeout}s"
    return results


def _metric(proxy, name, **labels):
    """Current value of a metric (sum of the matching series; 0 when there is none)."""
    return h.metric_sum(h.metrics(proxy.addr["admin"]), name, **labels) or 0


def _requests(proxy, code, flags):
    return _metric(proxy, "outrigger_requests_total", listener="outbound",
                   response_code=str(code), response_flags=flags)


def _clusters_json(proxy):
    r = h.http_request(proxy.addr["admin"], "/clusters?format=json", timeout=5)
    assert r.status == 200, f"/clusters?format=json answered {r.status}"
    return {(x["cluster"], x["address"]): x for x in r.json()["hosts"]}


def _health_flags(proxy, cluster, address):
    """The health_flags of one host on the /clusters text page."""
    r = h.http_request(proxy.addr["admin"], "/clusters", timeout=5)
    assert r.status == 200, f"/clusters answered {r.status}"
    prefix = f"{cluster}::{address}::health_flags::"
    for line in r.text().splitlines():
        if line.startswith(prefix):
            return line[len(prefix):]
    raise AssertionError(f"/clusters has no line {prefix}...: {r.text()[:600]}")


def _binomial_ok(observed, n, p, sigmas):
    mean = n * p
    return abs(observed - mean) <= sigmas * math.sqrt(n * p * (1 - p))


def _repeats(seq):
    """How often a pick equals the one before it."""
    return sum(1 for a, b in zip(seq, seq[1:]) if a == b)


class _Recorder:
    """A loopback HTTP/1.1 server (keep-alive) that records the method, path and Host of each
    request and answers 200 at once. Used where the test must see what an upstream received
    although the proxy throws the upstream's answer away (mirrors)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen = []
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                with rec._lock:
                    rec._seen.append((self.command, self.path, self.headers.get("Host")))
                body = b'{"name":"recorder"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((h.LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self.address = f"{h.LOOPBACK}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="recorder")
        self._thread.start()

    def seen(self):
        with self._lock:
            return list(self._seen)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Closer:
    """A loopback TCP server that reads each connection's request head and closes without
    answering (an upstream reset before the response head). Records what every connection
    received, so a test can see a retry that reached it with no request at all."""

    def __init__(self):
        self._lock = threading.Lock()
        self._received = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((h.LOOPBACK, 0))
        self._sock.listen(64)
        self.address = f"{h.LOOPBACK}:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True, name="closer")
        self._thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        try:
            conn.settimeout(5)
            while b"\r\n\r\n" not in data:
                b = conn.recv(65536)
                if not b:
                    break
                data += b
        except OSError:
            pass
        finally:
            conn.close()
            with self._lock:
                self._received.append(data)

    def received(self):
        with self._lock:
            return list(self._received)

    def close(self):
        self._sock.close()


# --------------------------------------------------------------------------------------------
# 1. Load balancers

WEIGHTS = {"w1": 1, "w2": 2, "w3": 3}


def _weighted_proxy(lb_policy):
    echoes = _echoes(WEIGHTS)
    cfg = _config([_cluster("svc", echoes, list(WEIGHTS.values()), lb_policy=lb_policy)],
                  [_route("svc")])
    return _start_proxy(cfg)


def test_lb_round_robin_weighted():
    proxy = _weighted_proxy("ROUND_ROBIN")
    names = _names(proxy.addr["outbound"], 600)
    counts = collections.Counter(names)
    assert counts == collections.Counter({"w1": 100, "w2": 200, "w3": 300}), \
        f"weighted round robin 1:2:3 over 600 requests gave {dict(counts)}"
    # Smooth WRR from a fresh start: every window of sum(weights) picks holds each host exactly
    # `weight` times (no runs of the heavy host).
    total = sum(WEIGHTS.values())
    bad = [i for i in range(0, len(names), total)
           if collections.Counter(names[i:i + total]) != collections.Counter(WEIGHTS)]
    assert not bad, f"{len(bad)} windows of {total} picks are not 1:2:3, first at {bad[0]}: " \
                    f"{names[bad[0]:bad[0] + total]}"


def _check_weighted_random(policy, names):
    n = len(names)
    counts = collections.Counter(names)
    wsum = sum(WEIGHTS.values())
    for host, w in WEIGHTS.items():
        assert _binomial_ok(counts[host], n, w / wsum, 5), \
            f"{policy}: {host} (weight {w}) got {counts[host]} of {n}, expected about " \
            f"{n * w / wsum:.0f}; all: {dict(counts)}"
    # Independent draws repeat the previous host with probability sum(p^2); a fixed rotation
    # (round robin in disguise) repeats far less often.
    p_rep = sum((w / wsum) ** 2 for w in WEIGHTS.values())
    reps = _repeats(names)
    assert _binomial_ok(reps, n - 1, p_rep, 6), \
        f"{policy}: {reps} repeats of the previous host in {n} picks, independent draws give " \
        f"about {(n - 1) * p_rep:.0f}"


def test_lb_random_weighted():
    proxy = _weighted_proxy("RANDOM")
    _check_weighted_random("RANDOM", _names(proxy.addr["outbound"], 1200))


def test_lb_least_request():
    # Idle hosts (sequential requests): two weighted draws tie, so shares follow the weights.
    proxy = _weighted_proxy("LEAST_REQUEST")
    _check_weighted_random("LEAST_REQUEST", _names(proxy.addr["outbound"], 1200))
    # Under concurrent load, a slow host holds requests in flight and loses the comparison.
    echoes = _echoes(["fast1", "fast2", "slow"], {"slow": ["--delay-ms", "100"]})
    proxy2 = _start_proxy(_config([_cluster("svc", echoes, lb_policy="LEAST_REQUEST")],
                                  [_route("svc")]), name="proxy-lr-load")
    addr = proxy2.addr["outbound"]

    def client(i):
        return _names(addr, 30)
    results = _concurrently(client, 6, timeout=60)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"client errors: {errors[:3]}"
    counts = collections.Counter(n for r in results for n in r)
    total = sum(counts.values())
    print(f"    LEAST_REQUEST, 6 clients, one host 100 ms slow: {dict(counts)}")
    assert counts["slow"] <= 0.15 * total and counts["slow"] * 3 <= min(counts["fast1"],
                                                                          counts["fast2"]), \
        f"LEAST_REQUEST with 6 concurrent clients and one host 100 ms slow: {dict(counts)} " \
        f"(random would give the slow host a third)"


def test_lb_peak_ewma():
    # One host 30 ms slower than the others: its latency estimate keeps it out.
    echoes = _echoes(["f1", "f2", "slow"], {"slow": ["--delay-ms", "30"]})
    proxy = _start_proxy(_config([_cluster("svc", echoes, lb_policy="PEAK_EWMA")],
                                 [_route("svc")]), name="proxy-ewma-slow")
    counts = collections.Counter(_names(proxy.addr["outbound"], 300))
    print(f"    PEAK_EWMA, one host 30 ms slow: {dict(counts)}")
    assert counts["slow"] <= 15, \
        f"PEAK_EWMA with one host 30 ms slow, 300 requests: {dict(counts)} " \
        f"(random would give it about 100)"
    assert counts["f1"] >= 60 and counts["f2"] >= 60, \
        f"PEAK_EWMA should share between the two fast hosts: {dict(counts)}"
    ewma = {a: x["ewma_ms"] for (c, a), x in _clusters_json(proxy).items()}
    assert ewma[echoes[2].address] >= 20 and ewma[echoes[0].address] < 20 and \
        ewma[echoes[1].address] < 20, f"/clusters ewma_ms (slow host last): " \
        f"{[ewma[e.address] for e in echoes]}"

    # Equally fast hosts, sequential requests, a short ewma_decay: estimates of idle hosts fade
    # within milliseconds, so no host may be left out for good -- including one that has not had
    # a request yet (its default 30 ms estimate is not a measurement).
    echoes = _echoes(["e1", "e2", "e3"])
    proxy = _start_proxy(_config([_cluster("svc", echoes, lb_policy="PEAK_EWMA",
                                           ewma_decay="0.02s")], [_route("svc")]))
    counts = collections.Counter()
    t0 = time.monotonic()
    with h.KeepAliveClient(proxy.addr["outbound"]) as c:
        # At least 900 requests and 0.5 s (25 decay times), at most 3000.
        while sum(counts.values()) < 3000 and (sum(counts.values()) < 900 or
                                               time.monotonic() - t0 < 0.5):
            r = c.request("/")
            assert r.status == 200, f"{r.status} {r.body[:200]!r}"
            counts[r.json()["name"]] += 1
    total = sum(counts.values())
    print(f"    PEAK_EWMA, 3 fast hosts, ewma_decay 20 ms: {dict(counts)} in "
          f"{time.monotonic() - t0:.2f}s")
    assert all(counts[n] >= 0.05 * total for n in ("e1", "e2", "e3")), \
        f"PEAK_EWMA over 3 equally fast hosts (ewma_decay 20 ms), {total} requests: " \
        f"{dict(counts)} -- a host got (almost) nothing"


# --------------------------------------------------------------------------------------------
# 2. Consistent hashing

HASH_HOSTS = ["h1", "h2", "h3", "h4"]
HASH_KEYS = [f"user-{i}" for i in range(200)]


def _hash_mapping(addr, keys, header="x-user", rounds=1):
    """key -> host name; every round must give the same host (stickiness)."""
    mapping = {}
    with h.KeepAliveClient(addr) as c:
        for rnd in range(rounds):
            order = keys if rnd % 2 == 0 else list(reversed(keys))
            for k in order:
                hdrs = {header: k} if header != "cookie" else {"Cookie": f"a=1; session={k}"}
                r = c.request("/", headers=hdrs)
                assert r.status == 200, f"{header}={k}: {r.status} {r.body[:200]!r}"
                name = r.json()["name"]
                assert mapping.setdefault(k, name) == name, \
                    f"{header}={k} went to {mapping[k]} and then to {name}"
    return mapping


def _check_consistent_hash(lb_policy, max_extra_moves):
    echoes = _echoes(HASH_HOSTS)
    policy = [{"header": "x-user"}, {"cookie": "session"}]
    full = _start_proxy(_config([_cluster("svc", echoes, lb_policy=lb_policy,
                                          hash_policy=policy)], [_route("svc")]),
                        name="proxy-4-hosts")
    removed = "h3"
    fewer = _start_proxy(_config([_cluster("svc", [e for e in echoes if e.name != f"echo[{removed}]"],
                                           lb_policy=lb_policy, hash_policy=policy)],
                                 [_route("svc")]), name="proxy-3-hosts")
    before = _hash_mapping(full.addr["outbound"], HASH_KEYS, rounds=3)
    spread = collections.Counter(before.values())
    assert set(spread) == set(HASH_HOSTS) and min(spread.values()) >= 20, \
        f"{lb_policy}: 200 keys over 4 hosts: {dict(spread)}"
    after = _hash_mapping(fewer.addr["outbound"], HASH_KEYS, rounds=2)
    assert removed not in after.values(), f"{lb_policy}: a removed host still answers"
    moved_others = [k for k in HASH_KEYS if before[k] != removed and after[k] != before[k]]
    dest = collections.Counter(after[k] for k in HASH_KEYS if before[k] == removed)
    print(f"    {lb_policy}: keys per host {dict(spread)}; {removed}'s keys went to {dict(dest)};"
          f" {len(moved_others)} other keys moved")
    assert len(moved_others) <= max_extra_moves, \
        f"{lb_policy}: removing {removed} moved {len(moved_others)} keys that were on other " \
        f"hosts (at most {max_extra_moves} allowed): " + \
        ", ".join(f"{k} {before[k]}->{after[k]}" for k in moved_others[:10])
    assert len(dest) >= 2, f"{lb_policy}: all of {removed}'s keys moved to one host: {dict(dest)}"
    # Cookie: the second hash policy applies when the header is absent.
    cookie_keys = [f"s{i}" for i in range(30)]
    by_cookie = _hash_mapping(full.addr["outbound"], cookie_keys, header="cookie", rounds=2)
    assert len(set(by_cookie.values())) >= 2, f"{lb_policy}: 30 cookies all on one host"
    # No hash key at all: spread at random, not pinned.
    free = collections.Counter(_names(full.addr["outbound"], 40))
    assert len(free) >= 3, f"{lb_policy}: 40 requests without a hash key reached {dict(free)}"


def test_ring_hash_consistency():
    # Ring hash moves exactly the removed host's keys.
    _check_consistent_hash("RING_HASH", max_extra_moves=0)


def test_maglev_consistency():
    # Maglev moves "little more than" the removed host's share: allow 5% of the other keys.
    _check_consistent_hash("MAGLEV", max_extra_moves=8)


# --------------------------------------------------------------------------------------------
# 3-5, 9. Retries

GENEROUS_BUDGET = {"budget_percent": 100, "min_retries_per_second": 1000}


def test_retry_5xx_on_other_host():
    good, bad = _echoes(["good", "bad"], {"bad": ["--fail-rate", "1"]})
    cfg = _config([_cluster("svc", [good, bad], retry_budget=GENEROUS_BUDGET)],
                  [_route("svc", action={"retry_policy": {"retry_on": ["5xx"],
                                                          "num_retries": 2}})])
    proxy = _start_proxy(cfg)
    bad_count = h.EchoRequestCounter(bad.address)
    good_count = h.EchoRequestCounter(good.address)
    n = 60
    names = _names(proxy.addr["outbound"], n)
    assert set(names) == {"good"}, f"answers came from {collections.Counter(names)}"
    tried_bad, tried_good = bad_count.delta(), good_count.delta()
    retries = h.wait_metric(proxy.addr["admin"], "outrigger_upstream_rq_retry_total",
                            lambda v: v is not None and v >= 1, cluster="svc")
    print(f"    {n} requests: bad host tried {tried_bad}x, good {tried_good}x, {retries:.0f} retries")
    assert tried_good == n, f"the good host served {tried_good} tries for {n} requests"
    # Each request tried the bad host at most once (a retry goes to another host), and each such
    # try was followed by exactly one retry.
    assert 1 <= tried_bad <= n, f"the bad host saw {tried_bad} tries for {n} requests"
    assert retries == tried_bad, f"{retries:.0f} retries for {tried_bad} failed tries"
    assert _metric(proxy, "outrigger_upstream_rq_retry_success_total", cluster="svc") == retries
    assert _requests(proxy, 200, "-") == n


def test_retry_bodies_and_methods():
    # One host always answers 503: each request's tries all go to it, so the echo's count says
    # how many tries a request made. POST is retried only with retry_non_idempotent; a body
    # larger than max_retry_body_bytes is never kept for replay, so never retried.
    echo = h.start_echo("always-503", "v1", extra_args=["--fail-rate", "1"])
    policy = {"retry_on": ["5xx"], "num_retries": 2, "base_interval": "0.001s",
              "max_retry_body_bytes": 4096}
    cfg = _config([_cluster("svc", [echo], retry_budget=GENEROUS_BUDGET)], [
        _route("svc", prefix="/strict", action={"retry_policy": policy}),
        _route("svc", prefix="/any", action={"retry_policy": {**policy,
                                                              "retry_non_idempotent": True}}),
    ])
    proxy = _start_proxy(cfg)
    counter = h.EchoRequestCounter(echo.address)

    def tries(path, method, body):
        before = counter.delta()
        with h.KeepAliveClient(proxy.addr["outbound"]) as c:
            r = c.request(path, method=method, body=body)
        assert r.status == 503, f"{method} {path} answered {r.status}"
        return counter.delta() - before

    small, large = b"x" * 1000, b"y" * 100_000
    assert tries("/strict/get", "GET", None) == 3, "GET: first try and 2 retries"
    assert tries("/strict/put", "PUT", small) == 3, "PUT is idempotent: retried with its body"
    assert tries("/strict/post", "POST", small) == 1, "POST must not be retried by default"
    assert tries("/any/post", "POST", small) == 3, "retry_non_idempotent retries POST"
    assert tries("/any/large", "POST", large) == 1, "a body over the replay limit is not retried"
    assert tries("/strict/large", "PUT", large) == 1, "a body over the replay limit is not retried"


def test_retry_backoff_capped():
    # base_interval = max_interval = 0.1s: each of the 4 backoffs waits a uniform time in
    # [0, 0.1s], so a request's tries fit in 0.4s plus the (fast) tries themselves. Without the
    # cap the 4 waits could reach 0.1 + 0.2 + 0.4 + 0.8 s.
    echo = h.start_echo("always-503", "v1", extra_args=["--fail-rate", "1"])
    retries = 4
    cfg = _config([_cluster("svc", [echo], retry_budget=GENEROUS_BUDGET)],
                  [_route("svc", action={"retry_policy": {
                      "retry_on": ["5xx"], "num_retries": retries,
                      "base_interval": "0.1s", "max_interval": "0.1s"}})])
    proxy = _start_proxy(cfg)
    counter = h.EchoRequestCounter(echo.address)
    n = 20
    times = []
    with h.KeepAliveClient(proxy.addr["outbound"]) as c:
        for i in range(n):
            r, dt = _timed(c, f"/b/{i}")
            assert r.status == 503, f"request {i}: {r.status} {r.body[:200]!r}"
            times.append(dt)
    print(f"    {n} requests x {retries + 1} tries: max {max(times):.3f}s, "
          f"mean {statistics.mean(times):.3f}s (full jitter: expected mean ~0.2s)")
    assert max(times) <= retries * 0.1 + 0.25, \
        f"a request with {retries} retries capped at 0.1s each took {max(times):.3f}s"
    # Waits there are: 80 uniform waits in [0, 0.1s] add up to ~4s, not to nothing.
    assert sum(times) >= 1.5, f"{n * retries} backoffs took {sum(times):.2f}s in all"
    assert counter.delta() == n * (retries + 1), "every try must reach the upstream"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == n,
                  listener="outbound", response_code="503", response_flags="URX")
    assert _metric(proxy, "outrigger_upstream_rq_retry_total", cluster="svc") == n * retries
    assert _metric(proxy, "outrigger_upstream_rq_retry_limit_exceeded_total", cluster="svc") == n


def test_retry_budget_limits_retries():
    echoes = _echoes(["down1", "down2"], {"down1": ["--fail-rate", "1"],
                                          "down2": ["--fail-rate", "1"]})
    percent, min_rps, ttl = 20, 1, 10
    cfg = _config([_cluster("svc", echoes, retry_budget={
                      "budget_percent": percent, "min_retries_per_second": min_rps,
                      "ttl": f"{ttl}s"})],
                  [_route("svc", action={"retry_policy": {
                      "retry_on": ["5xx"], "num_retries": 3,
                      "base_interval": "0.001s", "max_interval": "0.001s"}})])
    proxy = _start_proxy(cfg)
    counters = [h.EchoRequestCounter(e.address) for e in echoes]
    n = 300
    t0 = time.monotonic()
    with h.KeepAliveClient(proxy.addr["outbound"]) as c:
        for i in range(n):
            r = c.request(f"/budget/{i}")
            assert r.status == 503, f"request {i}: {r.status}"
            assert time.monotonic() - t0 < 60, f"{i} requests took a minute"
    elapsed = time.monotonic() - t0
    upstream = sum(c.delta() for c in counters)
    retries = upstream - n
    # percent of the requests in the window, plus min_retries_per_second over the window; the
    # run may span several windows, each with its own floor.
    allowed = n * percent / 100 + min_rps * (ttl + elapsed)
    print(f"    {n} requests in {elapsed:.1f}s: {upstream} upstream tries ({retries} retries, "
          f"allowed {allowed:.0f}; without a budget {3 * n})")
    assert retries <= allowed + 1, \
        f"{retries} retries for {n} requests, the budget allows {allowed:.0f}"
    assert retries >= n * percent / 100, \
        f"only {retries} retries: the budget allows {n * percent / 100:.0f} + the floor"
    exhausted = _metric(proxy, "outrigger_upstream_rq_retry_budget_exhausted_total",
                        cluster="svc")
    assert exhausted > 0, "outrigger_upstream_rq_retry_budget_exhausted_total stayed 0"
    assert _metric(proxy, "outrigger_upstream_rq_retry_total", cluster="svc") == retries


def test_per_try_timeout_then_other_host():
    slow, fast = _echoes(["slow", "fast"], {"slow": ["--delay-ms", "2000"]})
    cfg = _config([_cluster("svc", [slow, fast], retry_budget=GENEROUS_BUDGET)],
                  [_route("svc", action={"timeout": "5s", "retry_policy": {
                      "retry_on": ["5xx"], "num_retries": 2, "per_try_timeout": "0.2s"}})])
    proxy = _start_proxy(cfg)
    slow_count = h.EchoRequestCounter(slow.address)
    n = 12
    times = []
    with h.KeepAliveClient(proxy.addr["outbound"]) as c:
        for i in range(n):
            r, dt = _timed(c, f"/pt/{i}")
            assert r.status == 200, f"request {i}: {r.status} after {dt:.2f}s {r.body[:200]!r}"
            assert r.json()["name"] == "fast", f"request {i} answered by {r.json()['name']}"
            times.append(dt)
    timeouts = _metric(proxy, "outrigger_upstream_rq_per_try_timeout_total", cluster="svc")
    tried_slow = slow_count.delta()
    print(f"    {n} requests: max {max(times):.3f}s; {tried_slow} tries at the slow host, "
          f"{timeouts:.0f} per-try timeouts")
    assert max(times) < 1.5, \
        f"a request took {max(times):.2f}s: the 0.2s per-try timeout should cut the 2s wait"
    assert timeouts >= 1, "outrigger_upstream_rq_per_try_timeout_total stayed 0"
    assert timeouts == tried_slow, \
        f"{tried_slow} tries reached the slow host but {timeouts:.0f} per-try timeouts counted"
    assert _requests(proxy, 200, "-") == n


def test_retry_reset_on_other_host():
    # One host closes every connection after reading the request (a reset before the response
    # head); retry_on reset must resend the whole request to the other host at once.
    closer = _Closer()
    try:
        good = h.start_echo("good", "v1")
        cfg = _config([_cluster("svc", [closer.address, good], retry_budget=GENEROUS_BUDGET)],
                      [_route("svc", action={"timeout": "5s", "retry_policy": {
                          "retry_on": ["reset"], "num_retries": 2, "per_try_timeout": "1s"}})])
        proxy = _start_proxy(cfg)
        good_count = h.EchoRequestCounter(good.address)
        n = 10
        for i in range(n):
            status, dt, name = _timed_fresh(proxy.addr["outbound"], f"/reset/{i}")
            assert status == 200 and name == "good", \
                f"request {i}: {status} from {name} after {dt:.2f}s"
            assert dt < 0.9, f"request {i} took {dt:.2f}s: the retry waited for a timeout"
        assert good_count.delta() == n, "the good host must see every request once"
        retries = _metric(proxy, "outrigger_upstream_rq_retry_total", cluster="svc")
        got = h.poll_until(lambda: (lambda r: r if len(r) >= retries else None)(
            closer.received()), 5, "the closing host to record its connections")
        print(f"    {n} requests: {retries:.0f} retries after a reset; the closing host got "
              f"{len(got)} connection(s)")
        assert retries >= 1, "no request was sent to the closing host first"
        empty = [d for d in got if not d.startswith(b"GET /reset/")]
        assert not empty, f"{len(empty)} connection(s) to the closing host carried no request: " \
                          f"{empty[:3]}"
    finally:
        closer.close()


# --------------------------------------------------------------------------------------------
# 6. Circuit breakers


def _check_overflow(proxy, what, n=10):
    addr = proxy.addr["outbound"]
    results = _concurrently(lambda i: _timed_fresh(addr, f"/cb/{i}", timeout=10), n, timeout=15)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, f"{what}: client errors {errors[:3]}"
    ok = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 503]
    print(f"    {what}: {len(ok)} x 200, {len(refused)} x 503; slowest 503 "
          f"{max((r[1] for r in refused), default=0):.3f}s")
    assert len(ok) + len(refused) == n, f"{what}: statuses {[r[0] for r in results]}"
    assert len(ok) >= 1, f"{what}: no request got through"
    assert len(refused) >= n // 2, f"{what}: only {len(refused)} of {n} were refused"
    # Refused at once: well before the upstream's 500 ms answer.
    slow_refusals = [round(r[1], 3) for r in refused if r[1] >= 0.3]
    assert not slow_refusals, f"{what}: 503s that took >= 0.3s: {slow_refusals}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == len(refused),
                  listener="outbound", response_code="503", response_flags="UO")
    assert _metric(proxy, "outrigger_upstream_rq_overflow_total", cluster="svc") == len(refused)
    # The breaker lets traffic through again once the requests in flight are done.
    status, _, name = _timed_fresh(addr, "/cb/after")
    assert status == 200, f"{what}: a request after the burst answered {status}"


def test_circuit_breaker_max_requests():
    echo = h.start_echo("slow", "v1", extra_args=["--delay-ms", "500"])
    proxy = _start_proxy(_config(
        [_cluster("svc", [echo], circuit_breakers={"max_requests": 1, "max_pending_requests": 1})],
        [_route("svc")]))
    _check_overflow(proxy, "max_requests 1")


def test_circuit_breaker_max_connections():
    echo = h.start_echo("slow", "v1", extra_args=["--delay-ms", "500"])
    proxy = _start_proxy(_config(
        [_cluster("svc", [echo], circuit_breakers={"max_connections": 1})], [_route("svc")]))
    _check_overflow(proxy, "max_connections 1")


# --------------------------------------------------------------------------------------------
# 7. Outlier detection


def test_outlier_ejection():
    good, bad = _echoes(["good", "bad"], {"bad": ["--fail-rate", "1"]})
    ejection = 2.0
    cfg = _config([_cluster("svc", [good, bad], outlier_detection={
        "consecutive_5xx": 3, "base_ejection_time": f"{ejection}s", "max_ejection_percent": 50})],
        [_route("svc")])  # no retry policy: a request sent to the bad host answers 503
    proxy = _start_proxy(cfg)
    addr, admin = proxy.addr["outbound"], proxy.addr["admin"]
    failures = 0
    t_third = None
    with h.KeepAliveClient(addr) as c:
        for i in range(30):
            t_send = time.monotonic()
            r = c.request(f"/o/{i}")
            if r.status == 503:
                failures += 1
                if failures == 3:
                    t_third = t_send  # the ejection happens while this request is served
                    break
    assert t_third is not None, f"only {failures} failures in 30 round-robin requests"
    h.wait_metric(admin, "outrigger_cluster_hosts_ejected", lambda v: v == 1, cluster="svc")
    flags = _health_flags(proxy, "svc", bad.address)
    t_flags = time.monotonic()
    assert t_flags < t_third + ejection, "too slow to look at /clusters inside the ejection"
    assert flags == "/failed_outlier_check", f"bad host health_flags while ejected: {flags!r}"
    assert _health_flags(proxy, "svc", good.address) == "healthy"
    assert _clusters_json(proxy)[("svc", bad.address)]["ejected_workers"] == 1
    assert _metric(proxy, "outrigger_outlier_ejections_total", cluster="svc") == 1

    # While ejected, the bad host gets nothing.
    counter = h.EchoRequestCounter(bad.address)
    in_window = 0
    with h.KeepAliveClient(addr) as c:
        for i in range(50):
            r = c.request(f"/ejected/{i}")
            t_recv = time.monotonic()
            if t_recv < t_third + ejection:
                in_window += 1
                assert r.status == 200 and r.json()["name"] == "good", \
                    f"request {i} during the ejection: {r.status} {r.body[:120]!r}"
    t_batch = time.monotonic()
    assert in_window >= 20, f"only {in_window} of 50 requests ran inside the {ejection}s " \
                            f"ejection (machine too slow for this test)"
    if t_batch < t_third + ejection:
        assert counter.delta() == 0, "the ejected host received requests"

    # After base_ejection_time it is back in rotation, and not before.
    def back():
        r = h.http_request(addr, "/back", timeout=5)
        t = time.monotonic()
        return t if r.status == 503 else None  # only the bad host answers 503
    t_back = h.poll_until(back, ejection + 4, "the ejected host to get traffic again")
    print(f"    ejected {t_flags - t_third:.2f}s after the 3rd failure was sent; "
          f"back after {t_back - t_third:.2f}s")
    assert t_back > t_third + ejection, \
        f"the bad host answered {t_back - t_third:.2f}s after its ejection; " \
        f"base_ejection_time is {ejection}s"


# --------------------------------------------------------------------------------------------
# 8. Active health checks


def test_active_health_check():
    a, b = _echoes(["a", "b"])
    cfg = _config([_cluster("svc", [a, b], health_check={
        "path": "/healthz", "interval": "0.2s", "timeout": "0.5s", "unhealthy_threshold": 2,
        "healthy_threshold": 1})], [_route("svc")])
    proxy = _start_proxy(cfg)
    addr, admin = proxy.addr["outbound"], proxy.addr["admin"]
    # Checks run without any traffic of ours. (The raw counter: EchoRequestCounter calibrates
    # on an idle echo, and this one is not idle. The echo does not count /_echo/stats.)
    b_base = h.echo_stats(b.address)["requests"]
    h.poll_until(lambda: h.echo_stats(b.address)["requests"] >= b_base + 2, 5,
                 "health checks to reach host b")
    assert _health_flags(proxy, "svc", b.address) == "healthy"
    assert set(_names(addr, 10)) == {"a", "b"}, "both hosts should serve while healthy"

    b_addr = b.address
    b.kill()
    h.poll_until(lambda: _health_flags(proxy, "svc", b_addr) == "/failed_active_hc", 5,
                 "/clusters to show /failed_active_hc for the killed host")
    h.wait_metric(admin, "outrigger_cluster_hosts_unhealthy", lambda v: v == 1, cluster="svc")
    assert _clusters_json(proxy)[("svc", b_addr)]["healthy"] is False
    assert _health_flags(proxy, "svc", a.address) == "healthy"
    # Traffic avoids it: no connection attempt to it at all (which a retry would hide).
    fails = _metric(proxy, "outrigger_upstream_cx_connect_fail_total", cluster="svc")
    names = _names(addr, 40)
    assert set(names) == {"a"}, f"answers while b is down: {collections.Counter(names)}"
    assert _metric(proxy, "outrigger_upstream_cx_connect_fail_total", cluster="svc") == fails, \
        "the proxy tried to connect to the unhealthy host"

    # A new process on the same address passes the next check and gets traffic again.
    b2 = h.Process("echo[b2]", [h.bin_path("outrigger-echo"), "--listen", b_addr,
                                "--name", "b2", "--version", "v1"])
    b2.wait_for_listen("echo", 10)
    h.poll_until(lambda: _health_flags(proxy, "svc", b_addr) == "healthy", 5,
                 "the restarted host to be healthy again")
    h.wait_metric(admin, "outrigger_cluster_hosts_unhealthy", lambda v: v == 0, cluster="svc")
    names = _names(addr, 10)
    assert "b2" in names, f"the recovered host got no traffic: {collections.Counter(names)}"


# --------------------------------------------------------------------------------------------
# 10. Fault injection


def test_fault_injection():
    echo = h.start_echo("faulty", "v1")
    cfg = _config([_cluster("svc", [echo])], [
        _route("svc", prefix="/abort", fault={"abort": {"http_status": 503, "percentage": 25}}),
        _route("svc", prefix="/delay", fault={"delay": {"fixed_delay": "0.1s",
                                                        "percentage": 50}}),
    ])
    proxy = _start_proxy(cfg)
    counter = h.EchoRequestCounter(echo.address)
    addr = proxy.addr["outbound"]

    n = 10000
    aborted = 0
    with h.KeepAliveClient(addr) as c:
        for i in range(n):
            r = c.request(f"/abort/{i}")
            assert r.status in (200, 503), f"abort route answered {r.status}"
            aborted += r.status == 503
    share = aborted / n
    print(f"    abort 25%: {aborted}/{n} = {share:.1%}")
    # One standard deviation of the share is 0.43 points over 10,000 requests: allow 3.5 of them.
    assert abs(share - 0.25) <= 0.015, \
        f"abort share {share:.1%} over {n} requests, want 25% +- 1.5"
    assert counter.delta() == n - aborted, "aborted requests must not reach the upstream"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == aborted,
                  listener="outbound", response_code="503", response_flags="FI")

    m = 150
    slow = 0
    with h.KeepAliveClient(addr) as c:
        for i in range(m):
            r, dt = _timed(c, f"/delay/{i}")
            assert r.status == 200, f"delay route answered {r.status}"
            slow += dt >= 0.1
    delayed = h.wait_metric(proxy.addr["admin"], "outrigger_requests_total",
                            lambda v: v is not None and v > 0, listener="outbound",
                            response_code="200", response_flags="DI")
    print(f"    delay 50%: {slow}/{m} took >= 100 ms; {delayed:.0f} flagged DI")
    assert _binomial_ok(delayed, m, 0.5, 4), \
        f"{delayed:.0f} of {m} requests delayed, want about {m // 2}"
    # Every delayed request takes the whole delay; others may only rarely be that slow.
    assert delayed <= slow <= delayed + 3, \
        f"{slow} requests took >= 100 ms but {delayed:.0f} were delayed"
    assert _requests(proxy, 200, "-") == (n - aborted) + (m - delayed)


# --------------------------------------------------------------------------------------------
# 11. Request mirroring


def test_request_mirroring():
    primary = h.start_echo("primary", "v1")
    shadow = h.start_echo("shadow", "v1", extra_args=["--delay-ms", "500"])
    recorder = _Recorder()
    try:
        cfg = _config([_cluster("svc", [primary]), _cluster("shadow-echo", [shadow]),
                       _cluster("shadow-rec", [recorder.address])],
                      [_route("svc", action={"request_mirror_policies": [
                          {"cluster": "shadow-echo", "percentage": 100},
                          {"cluster": "shadow-rec", "percentage": 100}]})])
        proxy = _start_proxy(cfg)
        shadow_count = h.EchoRequestCounter(shadow.address)
        n = 20
        times = []
        with h.KeepAliveClient(proxy.addr["outbound"]) as c:
            for i in range(n):
                r, dt = _timed(c, f"/m/{i}", headers={"Host": "shop"})
                assert r.status == 200 and r.json()["name"] == "primary", \
                    f"request {i}: {r.status} {r.body[:200]!r}"
                assert h.echo_header(r.json(), "host") == "shop", "the primary saw another Host"
                times.append(dt)
        print(f"    primary latency: median {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms (the mirror answers after 500 ms)")
        assert max(times) < 0.5 and statistics.median(times) < 0.25, \
            f"primary requests waited for the mirror: {[round(t, 3) for t in times]}"
        h.poll_until(lambda: shadow_count.delta() >= n, 15, f"{n} mirror copies at the echo")
        assert shadow_count.delta() == n, "the mirror echo got extra requests"
        seen = h.poll_until(lambda: (lambda s: s if len(s) >= n else None)(recorder.seen()), 10,
                            f"{n} mirror copies at the recorder")
        assert len(seen) == n, f"the recorder got {len(seen)} copies for {n} requests"
        assert all(m == "GET" for m, _, _ in seen), f"methods {set(m for m, _, _ in seen)}"
        assert sorted(p for _, p, _ in seen) == sorted(f"/m/{i}" for i in range(n)), \
            f"mirror paths {[p for _, p, _ in seen][:5]}..."
        hosts = collections.Counter(host for _, _, host in seen)
        assert hosts == collections.Counter({"shop-shadow": n}), f"mirror Host headers {hosts}"
        for cluster in ("shadow-echo", "shadow-rec"):
            h.wait_metric(proxy.addr["admin"], "outrigger_upstream_rq_mirror_total",
                          lambda v: v == n, cluster=cluster)
            assert _metric(proxy, "outrigger_upstream_rq_mirror_dropped_total",
                           cluster=cluster) == 0
        assert _requests(proxy, 200, "-") == n
    finally:
        recorder.close()


# --------------------------------------------------------------------------------------------
# 12. Local rate limit


def test_local_rate_limit():
    echo = h.start_echo("limited", "v1")
    cfg = _config([_cluster("svc", [echo])], [_route("svc", local_rate_limit={
        "max_tokens": 10, "tokens_per_fill": 10, "fill_interval": "1s"})])
    proxy = _start_proxy(cfg)
    counter = h.EchoRequestCounter(echo.address)
    addr = proxy.addr["outbound"]
    statuses = []
    with h.KeepAliveClient(addr) as c:
        t_first = time.monotonic()
        for i in range(30):
            statuses.append(c.request(f"/rl/{i}").status)
        burst = time.monotonic() - t_first
    counts = collections.Counter(statuses)
    print(f"    burst of 30 in {burst * 1000:.0f} ms: {dict(counts)}")
    assert set(counts) <= {200, 429}, f"statuses {dict(counts)}"
    if burst < 0.9:
        assert counts[200] == 10, f"a full bucket of 10 in one interval let {counts[200]} through"
        assert statuses[:10] == [200] * 10, f"the first 10 must pass: {statuses}"
    else:
        assert 10 <= counts[200] <= 10 * (1 + math.ceil(burst)), f"{dict(counts)} in {burst:.1f}s"
    assert counter.delta() == counts[200], "a rate-limited request reached the upstream"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == counts[429],
                  listener="outbound", response_code="429", response_flags="RL")

    # Refilled after fill_interval, not before.
    def passes():
        r = h.http_request(addr, "/rl/again", timeout=5)
        return time.monotonic() if r.status == 200 else None
    t_ok = h.poll_until(passes, 4, "a request to pass after the bucket refills")
    assert t_ok >= t_first + 1.0, \
        f"the bucket refilled {t_ok - t_first:.2f}s after its first request (fill_interval 1s)"
    assert _names(addr, 5, "/rl/more") == ["limited"] * 5


if __name__ == "__main__":
    h.main([
        test_lb_round_robin_weighted,
        test_lb_random_weighted,
        test_lb_least_request,
        test_lb_peak_ewma,
        test_ring_hash_consistency,
        test_maglev_consistency,
        test_retry_5xx_on_other_host,
        test_retry_bodies_and_methods,
        test_retry_backoff_capped,
        test_retry_budget_limits_retries,
        test_per_try_timeout_then_other_host,
        test_retry_reset_on_other_host,
        test_circuit_breaker_max_requests,
        test_circuit_breaker_max_connections,
        test_outlier_ejection,
        test_active_health_check,
        test_fault_injection,
        test_request_mirroring,
        test_local_rate_limit,
    ])
