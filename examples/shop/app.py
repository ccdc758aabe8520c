#!/usr/bin/env python3
"""The shop's application: one small HTTP/1.1 service (Python 3 standard library only) that plays
one of three roles, each beside its own outrigger-proxy sidecar.

    frontend   GET /  -> calls catalog (GET /products), answers with what catalog said
    catalog    GET /products -> calls inventory (GET /stock), answers JSON with its version;
               --delay-ms and --fail-percent make a version slower or make it fail (500) on a
               share of requests, so that a canary's success rate differs from the stable one's
    inventory  GET /stock -> answers JSON (--fail-percent: 503 on a share of requests, which the
               mesh retries)

Every role answers GET /healthz itself (no downstream call).

The app knows nothing of mTLS, retries or where other services run: it calls them through its own
sidecar's outbound listener (--sidecar IP:PORT) with plain HTTP and `Host: SERVICE`, on keep-alive
connections (one http.client connection per thread), with a timeout on every call. It copies the
trace headers of the request it is serving onto the calls it makes (TRACE_HEADERS) so that the
sidecars' spans of one user request join into one trace.

Once listening it prints `listening name=app address=IP:PORT` on stderr (--listen 127.0.0.1:0
picks a free port), the same line the Outrigger binaries print.
"""

import argparse
import http.client
import http.server
import json
import random
import signal
import socket
import sys
import threading
import time

# Headers that carry a trace's context (W3C Trace Context, Envoy's request id, Zipkin B3 in its
# multi- and single-header forms). Copied from the incoming request onto every outgoing call.
TRACE_HEADERS = (
    "traceparent", "tracestate", "x-request-id",
    "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags", "b3",
)

# Who each role calls, and on which path.
DOWNSTREAM = {
    "frontend": ("catalog", "/products"),
    "catalog": ("inventory", "/stock"),
    "inventory": None,
}

PRODUCTS = ["anchor", "rope", "paddle", "life-vest", "compass"]


class CallError(Exception):
    """A call to another service that got no usable answer (what failed is in the message)."""


class Sidecar:
    """Calls other services through the sidecar's outbound listener, one keep-alive connection
    per thread (http.client connections are not thread-safe)."""

    def __init__(self, address, timeout):
        host, _, port = address.rpartition(":")
        self.host, self.port = host, int(port)
        self.address = address
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def get(self, service, path, headers):
        """GET http://SERVICE/PATH through the sidecar -> (status, body bytes). Raises CallError.
        A GET on a reused connection that the sidecar had closed meanwhile is sent once more on a
        new connection (GET is idempotent; the sidecar closes idle connections)."""
        hdrs = dict(headers)
        hdrs["Host"] = service
        for attempt in (1, 2):
            conn = self._conn()
            reused = conn.sock is not None
            try:
                conn.request("GET", path, headers=hdrs)
                resp = conn.getresponse()
                body = resp.read()
                if resp.will_close:
                    self._drop()
                return resp.status, body
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self._drop()
                if reused and attempt == 1:
                    continue
                raise CallError(f"GET http://{service}{path} via sidecar {self.address}: "
                                f"connection closed ({e.__class__.__name__})") from None
            except TimeoutError:
                self._drop()
                raise CallError(f"GET http://{service}{path} via sidecar {self.address}: "
                                f"no answer within {self.timeout:g}s") from None
            except ConnectionRefusedError:
                self._drop()
                raise CallError(f"GET http://{service}{path}: sidecar outbound listener "
                                f"{self.address} refused the connection") from None
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                raise CallError(f"GET http://{service}{path} via sidecar {self.address}: "
                                f"{e.__class__.__name__}: {e}") from None
        raise AssertionError("unreachable")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive with the sidecar
    server_version = "shop-app"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms Nagle stall
    cfg = None                      # argparse namespace, set in main()
    sidecar = None                  # Sidecar, or None for inventory

    def log_message(self, fmt, *args):  # quiet: the sidecars keep the access log
        if self.cfg.verbose:
            sys.stderr.write(f"{self.cfg.role}-{self.cfg.version}: {fmt % args}\n")

    def answer(self, status, obj):
        body = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        cfg = self.cfg
        me = {"service": cfg.role, "version": cfg.version}
        if self.path == "/healthz":
            return self.answer(200, {**me, "status": "ok"})
        if cfg.delay_ms > 0:
            time.sleep(cfg.delay_ms / 1000.0)
        if cfg.fail_percent > 0 and random.random() * 100 < cfg.fail_percent:
            status = 503 if cfg.role == "inventory" else 500
            return self.answer(status, {**me, "error": f"injected failure ({cfg.fail_percent:g}% "
                                                       f"of requests, --fail-percent)"})
        downstream = DOWNSTREAM[cfg.role]
        if downstream is None:  # inventory
            item = random.choice(PRODUCTS)
            return self.answer(200, {**me, "item": item, "in_stock": random.randint(0, 40)})
        service, path = downstream
        propagated = {k: v for k in TRACE_HEADERS if (v := self.headers.get(k)) is not None}
        try:
            status, body = self.sidecar.get(service, path, propagated)
        except CallError as e:
            return self.answer(502, {**me, "error": str(e)})
        try:
            inner = json.loads(body)
        except ValueError:
            inner = {"raw": body[:200].decode("utf-8", "replace")}
        if status != 200:
            return self.answer(502, {**me, "error": f"{service} answered {status}",
                                     service: inner})
        return self.answer(200, {**me, service: inner})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", required=True, choices=sorted(DOWNSTREAM))
    ap.add_argument("--version", default="v1", help="reported in every answer (default v1)")
    ap.add_argument("--listen", default="127.0.0.1:0", help="IP:PORT (port 0: a free port)")
    ap.add_argument("--listen-fd", type=int, default=None,
                    help="serve on this already listening socket instead of --listen (the demo "
                         "binds the port first, so that it can give the address to the sidecar)")
    ap.add_argument("--sidecar", default="",
                    help="the sidecar's outbound listener IP:PORT (frontend and catalog)")
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="seconds for each call through the sidecar (default 3)")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="added to every answer but /healthz (default 0)")
    ap.add_argument("--fail-percent", type=float, default=0.0,
                    help="share of requests answered with an error: 500, or 503 for inventory")
    ap.add_argument("--verbose", action="store_true", help="log every request on stderr")
    cfg = ap.parse_args(argv)
    if DOWNSTREAM[cfg.role] is not None and not cfg.sidecar:
        ap.error(f"--role {cfg.role} calls {DOWNSTREAM[cfg.role][0]}: give --sidecar IP:PORT "
                 f"(its sidecar's outbound listener)")
    if not 0 <= cfg.fail_percent <= 100:
        ap.error("--fail-percent must be between 0 and 100")
    host, _, port = cfg.listen.rpartition(":")
    if not host or not port.isdigit():
        ap.error(f"--listen {cfg.listen!r}: expected IP:PORT")

    Handler.cfg = cfg
    Handler.sidecar = Sidecar(cfg.sidecar, cfg.timeout) if cfg.sidecar else None
    try:
        if cfg.listen_fd is not None:
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler,
                                                     bind_and_activate=False)
            server.socket.close()
            server.socket = socket.socket(fileno=cfg.listen_fd)
            server.server_address = server.socket.getsockname()[:2]
        else:
            server = http.server.ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
    except OSError as e:
        where = f"fd {cfg.listen_fd}" if cfg.listen_fd is not None else cfg.listen
        sys.exit(f"app {cfg.role}: cannot listen on {where}: {e}")
    server.daemon_threads = True
    # SIGTERM: stop serving and exit 0 (the demo stops its children with SIGTERM).
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    addr = server.server_address
    print(f"listening name=app address={addr[0]}:{addr[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
