#!/usr/bin/env python3
# Process lifecycle of the real outrigger-proxy: graceful drain on SIGTERM and on
# POST /quitquitquit (in-flight request completes, listeners refuse new connections, /ready says
# draining, exit 0 once idle and within --drain-timeout), --drain-timeout bounding shutdown,
# time from spawn to /ready (printed, not asserted), OUTRIGGER_* environment variables instead
# of flags, stale upstream keep-alive connections closed by the app between requests, and config
# errors (unknown field, YAML syntax, unknown cluster, bad duration, bad flag) exiting 1 with
# FILE:LINE: on stderr.
# Run: python3 tests/integration/test_lifecycle.py --bin-dir BUILD/bin

import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


# --------------------------------------------------------------------------------------------
# Drain


def _start_slow_request(addr, delay_ms):
    result = {}

    def run():
        try:
            r = h.http_request(addr, f"/slow?delay_ms={delay_ms}", timeout=30)
            result["status"] = r.status
            result["body"] = r.body
        except Exception as e:
            result["error"] = repr(e)
        finally:
            result["done_at"] = time.monotonic()
    t = threading.Thread(target=run, daemon=True, name="slow-request")
    t.start()
    return t, result


def _wait_in_flight(proxy, counter, result):
    """Until the proxy holds the slow request upstream (metric) or the echo has it (stats)."""
    def in_flight():
        if "done_at" in result:
            return "finished"
        m = h.metrics(proxy.addr["admin"])
        if (h.metric_sum(m, "outrigger_upstream_cx_active", cluster="local_app") or 0) >= 1:
            return "in flight"
        return "in flight" if counter.delta() >= 1 else None
    state = h.poll_until(in_flight, 5, "the slow request to be in flight")
    assert state == "in flight", f"the slow request finished before the drain started: {result}"


def _drain_scenario(trigger, drain_timeout_s=10, delay_ms=3000):
    echo = h.start_echo("drain-echo", "v1")
    proxy = h.start_inbound_proxy(echo.address, concurrency=2,
                                  extra_args=["--drain-timeout", f"{drain_timeout_s}s"])
    inbound, admin = proxy.addr["inbound"], proxy.addr["admin"]
    h.wait_http_ok(f"http://{admin}/ready", 5)
    counter = h.EchoRequestCounter(echo.address)
    thread, result = _start_slow_request(inbound, delay_ms)
    _wait_in_flight(proxy, counter, result)

    t_drain = time.monotonic()
    trigger(proxy)

    # New connections are refused while the slow request is still running.
    def refused():
        finished = "done_at" in result  # read first: once it ends, the proxy may exit
        if not h.try_connect(inbound):
            return "finished first" if finished else "refused"
        return "finished first" if finished else None
    outcome = h.poll_until(refused, delay_ms / 1000 + 5, "the inbound listener to close")
    assert outcome == "refused", \
        "new connections were still accepted during the drain, until the in-flight request ended"

    # /ready says draining while the request is in flight.
    def draining():
        if "done_at" in result:
            return ("finished first", None)
        r = h.http_request(admin, "/ready", timeout=2)
        if "done_at" in result:
            return ("finished first", None)
        return (r.status, r.text().strip()) if r.status == 503 else None
    status, text = h.poll_until(draining, delay_ms / 1000 + 5, "/ready to answer 503")
    assert status == 503, "/ready never answered 503 while the drain was waiting for a request"
    assert text == "draining", f"/ready during drain answered body {text!r}"

    thread.join(timeout=delay_ms / 1000 + 10)
    assert "status" in result, f"the in-flight request failed during the drain: {result}"
    assert result["status"] == 200, f"the in-flight request got {result['status']}"
    assert b"drain-echo" in result["body"], f"in-flight answer: {result['body'][:200]!r}"

    rc = proxy.wait_exit(drain_timeout_s + 3)
    exited = time.monotonic()
    print(f"    drain: request done {result['done_at'] - t_drain:.2f}s after the trigger, "
          f"proxy exited {exited - t_drain:.2f}s after it")
    assert rc == 0, f"proxy exit code {rc} after drain"
    assert exited - t_drain < drain_timeout_s - 2, \
        f"the proxy exited {exited - t_drain:.1f}s after the trigger: it should exit once the " \
        f"in-flight request ended ({result['done_at'] - t_drain:.1f}s), not wait out " \
        f"--drain-timeout {drain_timeout_s}s"


def test_sigterm_drains():
    _drain_scenario(lambda p: p.send_signal(signal.SIGTERM))


def test_quitquitquit_drains():
    def quit(p):
        r = h.http_request(p.addr["admin"], "/quitquitquit", method="POST", timeout=5)
        assert r.status == 200, f"POST /quitquitquit answered {r.status}"
    _drain_scenario(quit)


def test_drain_timeout_bounds_shutdown():
    echo = h.start_echo("drain-echo", "v1")
    proxy = h.start_inbound_proxy(echo.address, concurrency=1,
                                  extra_args=["--drain-timeout", "500ms"])
    counter = h.EchoRequestCounter(echo.address)
    thread, result = _start_slow_request(proxy.addr["inbound"], 20000)
    _wait_in_flight(proxy, counter, result)
    t0 = time.monotonic()
    proxy.send_signal(signal.SIGTERM)
    rc = proxy.wait_exit(10)
    elapsed = time.monotonic() - t0
    print(f"    exit {elapsed * 1000:.0f} ms after SIGTERM with --drain-timeout 500ms")
    assert rc == 0, f"exit code {rc} after the drain timeout"
    assert elapsed < 5, f"exit took {elapsed:.1f}s with --drain-timeout 500ms"
    thread.join(timeout=10)
    assert "done_at" in result, "the cut request is still hanging after the proxy exited"


# --------------------------------------------------------------------------------------------
# Start


def test_start_to_ready():
    echo = h.start_echo("ready-echo", "v1")
    t0 = time.monotonic()
    proxy = h.start_inbound_proxy(echo.address, concurrency=2)
    t_listen = time.monotonic()
    h.wait_http_ok(f"http://{proxy.addr['admin']}/ready", 10)
    t_ready = time.monotonic()
    print(f"    spawn -> listening lines: {(t_listen - t0) * 1000:.1f} ms, "
          f"spawn -> /ready 200: {(t_ready - t0) * 1000:.1f} ms")
    r = h.http_request(proxy.addr["inbound"], "/first")
    assert r.status == 200, f"first request after /ready answered {r.status}"


def test_env_vars_instead_of_flags():
    echo = h.start_echo("env-echo", "v1")
    proxy = h.start_proxy([], env={
        "OUTRIGGER_INBOUND": "127.0.0.1:0",
        "OUTRIGGER_APP": echo.address,
        "OUTRIGGER_ADMIN": "127.0.0.1:0",
        "OUTRIGGER_CONCURRENCY": "1",
        "OUTRIGGER_ACCESS_LOG": "off",
    }, listeners=["inbound", "admin"])
    h.wait_http_ok(f"http://{proxy.addr['admin']}/ready", 5)
    r = h.http_request(proxy.addr["inbound"], "/env", headers={"X-Request-Id": "env-1"})
    assert r.status == 200, f"request through env-configured proxy: {r.status}"
    assert r.json().get("name") == "env-echo", f"reached {r.body[:200]!r}"
    h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="inbound", response_code="200")
    # The request is counted, so its log line would have been written by now.
    logged = [e for e in proxy.access_log() if e.get("request_id") == "env-1"]
    assert not logged, f"OUTRIGGER_ACCESS_LOG=off but the request was logged: {logged}"


# --------------------------------------------------------------------------------------------
# Stale upstream keep-alive


def test_stale_upstream_keepalive_inbound():
    echo = h.start_echo("idle-echo", "v1", ["--idle-timeout-ms", "200"])
    proxy = h.start_inbound_proxy(echo.address, concurrency=1)
    statuses, per_conn = [], []
    with h.KeepAliveClient(proxy.addr["inbound"]) as c:
        for i in range(20):
            r = c.request(f"/stale/{i}")
            statuses.append(r.status)
            if r.status == 200:
                per_conn.append(r.json().get("connection_requests"))
            time.sleep(0.4)  # the scenario: longer than the app's 200 ms idle timeout
    bad = [(i, s) for i, s in enumerate(statuses) if s != 200]
    assert not bad, f"requests after the app closed an idle upstream connection failed: {bad}"
    assert all(n == 1 for n in per_conn), \
        f"the echo did not close idle connections (connection_requests {per_conn}): " \
        "scenario not exercised"


def test_stale_upstream_keepalive_long_pool_idle():
    # The proxy keeps idle upstream connections 30 s; the app drops them after 200 ms.
    echo = h.start_echo("idle-echo", "v1", ["--idle-timeout-ms", "200"])
    cfg = h.write_temp("stale.yaml", f"""clusters:
  - name: local
    idle_timeout: 30s
    endpoints:
      - address: "{echo.address}"
""")
    proxy = h.start_proxy(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                           "--config", cfg, "--concurrency", "1"])
    bad = []
    for i in range(10):
        r = h.http_request(proxy.addr["outbound"], f"/stale/{i}", headers={"Host": "local"})
        if r.status != 200:
            bad.append((i, r.status))
        time.sleep(0.4)  # the scenario: the app closes the pooled connection meanwhile
    assert not bad, f"requests on stale pooled connections failed: {bad}"


# --------------------------------------------------------------------------------------------
# Config errors


def _config_error(yaml_text, filename, extra_args=("--outbound", "127.0.0.1:0")):
    path = h.write_temp(filename, yaml_text)
    p = h.start_proxy(["--config", path, "--admin", "127.0.0.1:0", *extra_args], listeners=[])
    p.expect_exit = True
    rc = p.wait_exit(10)
    p.wait_eof(5)  # all of stderr collected
    return path, rc, p.stderr_text()


def test_config_unknown_field():
    path, rc, err = _config_error("""# unknown field in a cluster
clusters:
  - name: a
    endpoints:
      - address: "127.0.0.1:1"
    bogus_field: 3
""", "unknown-field.yaml")
    assert rc == 1, f"exit code {rc}, want 1; stderr:\n{err[-800:]}"
    assert f"{path}:6:" in err, f"stderr lacks {path}:6: (the bogus_field line):\n{err[-800:]}"
    assert "bogus_field" in err, f"stderr does not name the field:\n{err[-800:]}"

    path, rc, err = _config_error("""clusters:
  - name: a
    endpoints: [{address: "127.0.0.1:1"}]
routes:
  - name: outbound
    virtual_hosts:
      - name: vh
        domains: ["a"]
        routes:
          - match:
              regex: "^/x"
            route: {cluster: a}
""", "unknown-nested-field.yaml")
    assert rc == 1, f"nested unknown field: exit code {rc}, want 1; stderr:\n{err[-800:]}"
    assert f"{path}:11:" in err and "regex" in err, \
        f"stderr lacks {path}:11: and the field name `regex`:\n{err[-800:]}"


def test_config_yaml_syntax_error():
    path, rc, err = _config_error("""# a map value where none may be
clusters:
  - name: a
    connect_timeout: 1s: 2s
    endpoints:
      - address: "127.0.0.1:1"
""", "syntax.yaml")
    assert rc == 1, f"exit code {rc}, want 1; stderr:\n{err[-800:]}"
    assert f"{path}:4:" in err, f"stderr lacks {path}:4: (the bad line):\n{err[-800:]}"


UNKNOWN_CLUSTER_YAML = """clusters:
  - name: reviews
    endpoints: [{address: "127.0.0.1:1"}]
routes:
  - name: outbound
    virtual_hosts:
      - name: reviews
        domains: ["reviews"]
        routes:
          - match: {prefix: "/"}
            route:
              cluster: no-such-cluster
"""


def test_config_route_to_unknown_cluster():
    path, rc, err = _config_error(UNKNOWN_CLUSTER_YAML, "unknown-cluster.yaml")
    assert rc == 1, f"exit code {rc}, want 1; stderr:\n{err[-800:]}"
    assert "no-such-cluster" in err, f"stderr does not name the cluster:\n{err[-800:]}"
    assert path in err, f"stderr does not name the file {path}:\n{err[-800:]}"

    path, rc, err = _config_error("""clusters:
  - name: v1
    endpoints: [{address: "127.0.0.1:1"}]
routes:
  - name: outbound
    virtual_hosts:
      - name: reviews
        domains: ["reviews"]
        routes:
          - match: {prefix: "/"}
            route:
              weighted_clusters:
                clusters:
                  - {name: v1, weight: 90}
                  - {name: v2-missing, weight: 10}
""", "unknown-weighted-cluster.yaml")
    assert rc == 1, f"weighted unknown cluster: exit code {rc}; stderr:\n{err[-800:]}"
    assert "v2-missing" in err, f"stderr does not name the missing cluster:\n{err[-800:]}"


def test_config_semantic_error_has_line():
    # The contract: every config error is FILE:LINE:COL: FIELD_PATH: problem, including errors
    # found after parsing (a reference to a cluster that does not exist).
    path, rc, err = _config_error(UNKNOWN_CLUSTER_YAML, "unknown-cluster-line.yaml")
    assert rc == 1, f"exit code {rc}, want 1; stderr:\n{err[-800:]}"
    lines = re.findall(re.escape(path) + r":(\d+):\d+:", err)
    assert lines and any(10 <= int(n) <= 12 for n in lines), \
        f"stderr lacks {path}:LINE:COL: pointing at the route (lines 10-12):\n{err[-800:]}"


def test_config_bad_values():
    path, rc, err = _config_error("""clusters:
  - name: a
    connect_timeout: five seconds
    endpoints: [{address: "127.0.0.1:1"}]
""", "bad-duration.yaml")
    assert rc == 1, f"bad duration: exit code {rc}; stderr:\n{err[-800:]}"
    assert f"{path}:3:" in err and "connect_timeout" in err, \
        f"stderr lacks {path}:3: and connect_timeout:\n{err[-800:]}"

    missing = os.path.join(h.tmp_dir(), "does-not-exist.yaml")
    p = h.start_proxy(["--config", missing, "--admin", "127.0.0.1:0"], listeners=[])
    rc = p.wait_exit(10)
    assert rc == 1, f"missing config file: exit code {rc}"

    p = h.start_proxy(["--inbound", "not-an-address", "--app", "127.0.0.1:1"], listeners=[])
    rc = p.wait_exit(10)
    p.wait_eof(5)
    err = p.stderr_text()
    assert rc == 1, f"--inbound not-an-address: exit code {rc}; stderr:\n{err[-500:]}"
    assert "inbound" in err, f"the error does not name the flag:\n{err[-500:]}"


if __name__ == "__main__":
    h.main([
        test_sigterm_drains,
        test_quitquitquit_drains,
        test_drain_timeout_bounds_shutdown,
        test_start_to_ready,
        test_env_vars_instead_of_flags,
        test_stale_upstream_keepalive_inbound,
        test_stale_upstream_keepalive_long_pool_idle,
        test_config_unknown_field,
        test_config_yaml_syntax_error,
        test_config_route_to_unknown_cluster,
        test_config_semantic_error_has_line,
        test_config_bad_values,
    ])
