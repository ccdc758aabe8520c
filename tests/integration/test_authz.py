#!/usr/bin/env python3
# Authorization policy in the real outrigger-proxy's inbound listener, from a static --config
# (the control plane sends the same InboundPolicy; test_mtls.py covers identities over mTLS):
# DENY before ALLOW, a request matching no ALLOW policy answered 403 with flag RBAC, a metric and
# the access log's "authz" field; dry-run policies logged and counted but never enforced;
# plaintext callers have no principal, so identity rules never match them.
# Run: python3 tests/integration/test_authz.py --bin-dir BUILD/bin

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CONFIG = """
inbound_policy:
  authorization:
    - name: default/public
      rules:
        - paths: ["/public*"]
          methods: [GET, POST]
    - name: default/members
      rules:
        - principals: ["*"]
    - name: default/no-evil
      action: DENY
      rules:
        - headers: [{name: x-evil, values: ["yes"]}]
    - name: audit/no-posts
      action: DENY
      dry_run: true
      rules:
        - methods: [POST]
"""


def _start():
    echo = h.start_echo("app", "v1")
    cfg = h.write_temp("authz.yaml", CONFIG)
    proxy = h.start_inbound_proxy(echo.address, ["--config", cfg, "--access-log", "stdout"],
                                  concurrency=1)
    return proxy


def _status(proxy, path, method="GET", headers=None):
    return h.http_request(proxy.addr["inbound"], path, method=method, headers=headers or {},
                          body=b"x" if method == "POST" else None).status


def test_allow_deny_and_default_deny():
    proxy = _start()
    assert _status(proxy, "/public/index.html") == 200
    r = h.http_request(proxy.addr["inbound"], "/private")
    assert r.status == 403, f"no ALLOW policy matches: must be denied, got {r.status}"
    assert r.text().startswith("RBAC: access denied"), r.text()
    assert _status(proxy, "/public/x", headers={"x-evil": "yes"}) == 403, "DENY wins"
    # "*" principals need an authenticated (mTLS) caller; this one is plaintext.
    assert _status(proxy, "/members") == 403
    n = h.wait_metric(proxy.addr["admin"], "outrigger_requests_total", lambda v: v == 3,
                      listener="inbound", response_code="403", response_flags="RBAC")
    assert h.metric_sum(h.metrics(proxy.addr["admin"]), "outrigger_authz_denied_total",
                        listener="inbound") == 3, n
    h.poll_until(lambda: sum(1 for o in proxy.access_log() if o.get("response_code") == 403) == 3,
                 5, "three 403 access log lines")
    lines = proxy.access_log()
    notes = sorted(o["authz"] for o in lines if o.get("response_code") == 403)
    assert notes == ["deny (no ALLOW policy matches)", "deny (no ALLOW policy matches)",
                     "deny default/no-evil"], notes
    allowed = [o for o in lines if o.get("response_code") == 200]
    assert allowed and allowed[0]["authz"] == "allow default/public", allowed


def test_dry_run_is_reported_not_enforced():
    proxy = _start()
    assert _status(proxy, "/public/form", method="POST") == 200, "dry-run policies never deny"
    h.wait_metric(proxy.addr["admin"], "outrigger_authz_dry_run_denied_total", lambda v: v == 1,
                  listener="inbound")
    proxy.wait_for_stderr(r"authorization dry run: POST /public/form .* would be denied "
                          r"\(audit/no-posts\)")
    post = proxy.wait_for_access_log(lambda o: o.get("method") == "POST")
    assert post["authz"] == "dry-run deny audit/no-posts", post


if __name__ == "__main__":
    h.main([test_allow_deny_and_default_deny, test_dry_run_is_reported_not_enforced])
