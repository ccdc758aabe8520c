# Protocols beyond plain HTTP/1.1 requests, with real processes: WebSocket (an Upgrade request
# answered 101, then frames both ways) through two sidecars over mTLS, with a server that speaks
# first right behind its 101 head and frames of every length encoding; an upgrade the app refuses
# (an ordinary answer, the connection stays usable); h2c upgrades are not forwarded. Raw TCP: a
# port declared TCP on its Service (`tcp-*`) relayed through two sidecars over mTLS (a client-first
# echo with a half-close, and a server-first protocol whose greeting comes before the client says
# anything), protocol detection on an inbound listener (HTTP stays HTTP, binary and silent clients
# are relayed), and a drain that lets an open relay finish. HTTP/2 from clients (h2c with prior
# knowledge) with curl, nghttp and h2load through two sidecars over mTLS; flow control keeping
# the proxy's memory flat while a client does not read a large response; a rapid-reset flood
# answered with GOAWAY without memory growth; GOAWAY on drain with the open stream finished.

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time

import harness as h
from mesh_ca import fresh_path, make_token, token_file

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

POLICY = """\
apiVersion: outrigger.dev/v1alpha1
kind: Mesh
metadata: {name: mesh}
spec: {trustDomain: cluster.local, mtls: STRICT}
---
apiVersion: v1
kind: Service
metadata: {name: chat}
spec:
  selector: {app: chat}
  ports: [{name: http, port: 80}]
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
metadata: {name: db}
spec:
  selector: {app: db}
  ports: [{name: tcp-db, port: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: smtp}
spec:
  selector: {app: smtp}
  ports: [{name: smtp, port: 25, appProtocol: tcp}]
---
apiVersion: v1
kind: Service
metadata: {name: greeter}
spec:
  selector: {app: greeter}
  ports: [{name: grpc, port: 50051, appProtocol: grpc}]
---
apiVersion: v1
kind: Service
metadata: {name: books}
spec:
  selector: {app: books}
  ports: [{name: http, port: 80}]
---
apiVersion: outrigger.dev/v1alpha1
kind: TrafficPolicy
metadata: {name: books}
spec:
  targetRef: {group: "", kind: Service, name: books}
  connectionPool: {h2UpgradePolicy: UPGRADE}
---
apiVersion: v1
kind: Service
metadata: {name: ledger}
spec:
  selector: {app: ledger}
  ports: [{name: grpc, port: 50051}]
---
apiVersion: v1
kind: Service
metadata: {name: ledger-shadow}
spec:
  selector: {app: ledger-shadow}
  ports: [{name: grpc, port: 50051}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ledger}
spec:
  parentRefs: [{group: "", kind: Service, name: ledger, port: 50051}]
  rules:
    - filters:
        - type: RequestMirror
          requestMirror: {backendRef: {name: ledger-shadow, port: 50051}}
      backendRefs: [{name: ledger, port: 50051}]
"""


# --------------------------------------------------------------------------------------------
# A WebSocket echo server (RFC 6455, enough for the test): answers the handshake, sends a text
# frame "hello" in the same write as its 101 head, then echoes text/binary frames, answers pings
# and closes after a close frame. A request without `Upgrade: websocket` gets a plain 426 answer
# on a keep-alive connection.

def _read_head(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return (lines[0], headers), rest


def _recv_exact(sock, n, buf):
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf[:n], buf[n:]


def read_frame(sock, buf):
    """-> (opcode, payload, rest)"""
    hdr, buf = _recv_exact(sock, 2, buf)
    opcode = hdr[0] & 0x0F
    masked = hdr[1] & 0x80
    n = hdr[1] & 0x7F
    if n == 126:
        ext, buf = _recv_exact(sock, 2, buf)
        n = struct.unpack("!H", ext)[0]
    elif n == 127:
        ext, buf = _recv_exact(sock, 8, buf)
        n = struct.unpack("!Q", ext)[0]
    mask = b""
    if masked:
        mask, buf = _recv_exact(sock, 4, buf)
    payload, buf = _recv_exact(sock, n, buf)
    if masked:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return opcode, payload, buf


def frame(opcode, payload, mask=False):
    n = len(payload)
    head = bytes([0x80 | opcode])
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


class WsServer:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.handshakes = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while True:
                req, buf = _read_head(c, buf)
                if req is None:
                    return
                line, hs = req
                if hs.get("upgrade", "").lower() != "websocket":
                    body = b"upgrade required\n"
                    c.sendall(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: " +
                              str(len(body)).encode() + b"\r\n\r\n" + body)
                    continue
                self.handshakes.append((line, hs))
                accept = base64.b64encode(hashlib.sha1(
                    (hs["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
                c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                           "\r\n\r\n").encode() + frame(1, b"hello"))
                break
            while True:
                op, payload, buf = read_frame(c, buf)
                if op in (1, 2):
                    c.sendall(frame(op, payload))
                elif op == 9:
                    c.sendall(frame(10, payload))
                elif op == 8:
                    c.sendall(frame(8, payload))
                    c.shutdown(socket.SHUT_WR)
                    while c.recv(65536):
                        pass
                    return
        except (EOFError, OSError):
            return
        finally:
            c.close()

    def close(self):
        self.sock.close()


def ws_connect(addr, host, path="/chat", extra=""):
    """The client side of the handshake; returns (socket, response head, leftover bytes)."""
    s = socket.create_connection(h.split_addr(addr), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    resp, rest = _read_head(s, b"")
    assert resp is not None, "no answer to the WebSocket handshake"
    line, hs = resp
    assert line.startswith("HTTP/1.1 101"), f"handshake answered {line!r} {hs}"
    want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    assert hs.get("sec-websocket-accept") == want, f"Sec-WebSocket-Accept {hs}"
    assert hs.get("upgrade", "").lower() == "websocket" and \
        "upgrade" in hs.get("connection", "").lower(), f"101 without upgrade headers: {hs}"
    return s, hs, rest


def exchange(s, rest):
    """hello, then echoes of every length encoding, a ping, and the close handshake."""
    op, payload, rest = read_frame(s, rest)
    assert (op, payload) == (1, b"hello"), f"first frame {op} {payload[:40]!r}"
    sizes = [0, 5, 125, 126, 1000, 65535, 65536, 300_000]
    for n in sizes:
        data = os.urandom(n)
        s.sendall(frame(2, data, mask=True))
        op, payload, rest = read_frame(s, rest)
        assert op == 2 and payload == data, f"echo of {n} bytes: op {op}, {len(payload)} bytes"
    s.sendall(frame(9, b"ping!", mask=True))
    op, payload, rest = read_frame(s, rest)
    assert (op, payload) == (10, b"ping!"), f"pong {op} {payload!r}"
    s.sendall(frame(8, struct.pack("!H", 1000), mask=True))
    op, payload, rest = read_frame(s, rest)
    assert op == 8, f"close answered with opcode {op}"
    s.settimeout(5)
    assert s.recv(100) == b"", "the connection must end after the close handshake"
    s.close()
    return sum(sizes)


def start_control():
    """outrigger-control with the mesh CA and POLICY: (its --xds address, its --ca-dir)."""
    ca_dir = fresh_path("ca")
    policy = fresh_path("policy")
    os.makedirs(policy)
    with open(os.path.join(policy, "mesh.yaml"), "w") as f:
        f.write(POLICY)
    cp = h.Process("outrigger-control", [
        h.bin_path("outrigger-control"), "--policy", policy, "--xds", "127.0.0.1:0",
        "--admin", "127.0.0.1:0", "--ca-dir", ca_dir], env=h.clean_env())
    return cp.wait_for_listen("xds"), ca_dir


def mesh_sidecar(xds, ca_dir, service, *extra):
    """A sidecar of `service` (label app=SERVICE) with its join token, ready."""
    p = h.start_proxy(["--admin", "127.0.0.1:0", "--control-plane", xds, "--service", service,
                       "--label", f"app={service}", "--ca-bundle", f"{ca_dir}/ca.pem",
                       "--join-token-file", token_file(make_token(ca_dir, service)), *extra],
                      name=f"{service}-sidecar")
    h.wait_http_ok(f"http://{p.addr['admin']}/ready", 15)
    return p


# --------------------------------------------------------------------------------------------

def test_websocket_through_two_sidecars_with_mtls():
    ws = WsServer()
    xds, ca_dir = start_control()
    chat = mesh_sidecar(xds, ca_dir, "chat", "--inbound", "127.0.0.1:0", "--app", ws.address,
                        "--access-log", "off")
    front = mesh_sidecar(xds, ca_dir, "frontend", "--outbound", "127.0.0.1:0",
                         "--access-log", "off")
    h.poll_until(lambda: h.http_request(front.addr["outbound"], "/",
                                        headers={"Host": "chat"}).status == 426, 15,
                 "frontend's sidecar to reach chat")
    total = 0
    for i in range(3):
        s, hs, rest = ws_connect(front.addr["outbound"], "chat", f"/chat/{i}")
        total += exchange(s, rest)
    # The app saw a proper handshake: the mesh's own headers gone, the upgrade kept.
    line, hs = ws.handshakes[-1]
    assert line == "GET /chat/2 HTTP/1.1" and hs.get("upgrade") == "websocket", (line, hs)
    assert "x-outrigger-source-workload" not in hs, hs
    assert hs.get("x-request-id"), hs
    for p, reporter in ((front, "source"), (chat, "destination")):
        n = h.wait_metric(p.addr["admin"], "outrigger_requests_total", lambda v: v == 3,
                          response_code="101", reporter=reporter,
                          connection_security_policy="mutual_tls")
    up = h.metric_sum(h.metrics(front.addr["admin"]), "outrigger_upstream_tls_handshakes_total")
    assert up and up >= 1, "the hop between the sidecars must be mTLS"
    ws.close()
    print(f"    3 WebSocket sessions through two sidecars over mTLS, {total} bytes echoed each; "
          f"101 counted on both sides")


def test_refused_upgrade_is_an_ordinary_answer():
    ws = WsServer()
    proxy = h.start_inbound_proxy(ws.address, extra_args=["--access-log", "off"])
    addr = proxy.addr["inbound"]
    s = socket.create_connection(h.split_addr(addr), timeout=10)
    # Upgrade to something the app does not speak: its 426 comes back, and the same connection
    # then carries a WebSocket handshake.
    s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: foo/1\r\nConnection: upgrade\r\n\r\n")
    resp, rest = _read_head(s, b"")
    assert resp[0].startswith("HTTP/1.1 426"), resp
    body, rest = _recv_exact(s, int(resp[1]["content-length"]), rest)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    resp, rest = _read_head(s, rest)
    assert resp[0].startswith("HTTP/1.1 101"), resp
    exchange(s, rest)
    # h2c is not forwarded as an upgrade (the proxy would have to speak HTTP/2 on this hop):
    # the app sees a plain request.
    s = socket.create_connection(h.split_addr(addr), timeout=10)
    s.sendall(b"GET /h2c HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, "
              b"HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
    resp, rest = _read_head(s, b"")
    assert resp[0].startswith("HTTP/1.1 426"), resp
    s.close()
    ws.close()


# --------------------------------------------------------------------------------------------
# Raw TCP

class TcpServer:
    """A TCP server on 127.0.0.1: `greeting` (sent on accept: a server-first protocol), then an
    echo of everything; when the client half-closes, the rest is echoed and the server closes."""

    def __init__(self, greeting=b""):
        self.greeting = greeting
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            if self.greeting:
                c.sendall(self.greeting)
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


def recv_all(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(min(65536, n - len(buf)))
        if not chunk:
            raise AssertionError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def echo_roundtrip(addr, size=1 << 20, greeting=b""):
    """Connects, expects `greeting` first, sends `size` random bytes (concurrently with reading
    them back), half-closes, and expects the echo then EOF. Returns seconds to the greeting."""
    s = socket.create_connection(h.split_addr(addr), timeout=10)
    t0 = time.monotonic()
    if greeting:
        assert recv_all(s, len(greeting)) == greeting
    first = time.monotonic() - t0
    data = os.urandom(size)
    got = []

    def reader():
        got.append(recv_all(s, size))
    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    t.join(30)
    assert got and got[0] == data, "the echo differs from what was sent"
    s.shutdown(socket.SHUT_WR)
    assert s.recv(10) == b"", "the relay must end with the server's FIN"
    s.close()
    return first


def test_tcp_through_two_sidecars_with_mtls():
    xds, ca_dir = start_control()
    results = {}
    for kind, svc, greeting in (("client-first", "db", b""),
                                ("server-first", "smtp", b"220 smtp ready\r\n")):
        app = TcpServer(greeting)
        db = h.start_proxy(["--admin", "127.0.0.1:0", "--control-plane", xds, "--service", svc,
                            "--label", f"app={svc}", "--ca-bundle", f"{ca_dir}/ca.pem",
                            "--join-token-file", token_file(make_token(ca_dir, svc)),
                            "--inbound", "127.0.0.1:0", "--app", app.address],
                           name=f"{svc}-sidecar")
        front = h.start_proxy(["--admin", "127.0.0.1:0", "--control-plane", xds, "--service",
                               "frontend", "--ca-bundle", f"{ca_dir}/ca.pem",
                               "--join-token-file", token_file(make_token(ca_dir, "frontend")),
                               "--tcp-upstream", f"{svc}.default=127.0.0.1:0"],
                              listeners=["admin", f"tcp:{svc}.default"],
                              name=f"frontend-sidecar-{kind}")
        for p in (db, front):
            h.wait_http_ok(f"http://{p.addr['admin']}/ready", 15)
        # The db sidecar learns that its port is TCP from the Service (name tcp-db).
        h.poll_until(lambda: '"inbound_protocol": "TCP"' in h.http_request(
            db.addr["admin"], "/config_dump").text(), 15, f"{svc}'s sidecar to get protocol TCP")
        addr = front.addr[f"tcp:{svc}.default"]
        h.poll_until(lambda: _tcp_ok(addr, greeting), 15, "the relay to reach the db app")
        first = echo_roundtrip(addr, greeting=greeting)
        m = h.metrics(front.addr["admin"])
        assert (h.metric_sum(m, "outrigger_upstream_tls_handshakes_total") or 0) >= 1, \
            "the hop between the sidecars must be mTLS"
        for p in (front, db):
            h.wait_metric(p.addr["admin"], "outrigger_tcp_received_bytes_total",
                          lambda v: (v or 0) >= 1 << 20)
        dm = h.metrics(db.addr["admin"])
        assert (h.metric_sum(dm, "outrigger_tcp_connections_mutual_tls_total") or 0) >= 1
        # Relays carry the Istio labels requests have: on the callee's side, the caller from its
        # certificate; on the caller's side, the destination Service.
        assert (h.metric_sum(dm, "outrigger_tcp_received_bytes_total", reporter="destination",
                             source_workload="frontend", destination_service=f"{svc}.default",
                             connection_security_policy="mutual_tls") or 0) >= 1 << 20, \
            h.series(dm, "outrigger_tcp_received_bytes_total")
        fm = h.metrics(front.addr["admin"])
        assert (h.metric_sum(fm, "outrigger_tcp_relays_total", reporter="source",
                             source_workload="frontend", destination_service=f"{svc}.default",
                             connection_security_policy="mutual_tls") or 0) >= 1, \
            h.series(fm, "outrigger_tcp_relays_total")
        line = front.wait_for_access_log(lambda e: e.get("protocol") == "TCP" and
                                         e.get("bytes_received", 0) >= 1 << 20)
        assert line["upstream_cluster"] == f"{svc}.default" and line["response_flags"] == "-", line
        results[kind] = first
        front.kill()
        db.kill()
        app.close()
    print(f"    1 MiB echoed through two sidecars over mTLS (client-first and server-first); "
          f"server-first greeting after {results['server-first'] * 1000:.1f} ms (not delayed "
          f"by detection: the port is declared TCP)")


def _tcp_ok(addr, greeting):
    try:
        s = socket.create_connection(h.split_addr(addr), timeout=2)
        s.settimeout(2)
        if greeting:
            ok = recv_all(s, len(greeting)) == greeting
        else:
            s.sendall(b"x")
            ok = s.recv(1) == b"x"
        s.close()
        return ok
    except (OSError, AssertionError):
        return False


def test_protocol_detection_on_inbound():
    tcp_app = TcpServer(b"")
    greet_app = TcpServer(b"+OK ready\r\n")
    echo = h.start_echo("web")
    # HTTP to an HTTP app: detected as HTTP (counted as a request, routed, logged).
    web = h.start_inbound_proxy(echo.address, extra_args=["--inbound-protocol", "detect"])
    r = h.http_request(web.addr["inbound"], "/detected")
    assert r.status == 200 and r.json().get("path") == "/detected", r
    h.wait_metric(web.addr["admin"], "outrigger_requests_total", lambda v: v == 1,
                  listener="inbound")
    # Binary bytes: relayed as TCP.
    raw = h.start_inbound_proxy(tcp_app.address, extra_args=["--inbound-protocol", "detect"])
    s = socket.create_connection(h.split_addr(raw.addr["inbound"]), timeout=5)
    s.sendall(b"\x00\x01binary\xff")
    assert recv_all(s, 9) == b"\x00\x01binary\xff"
    s.close()
    # A silent client of a server-first protocol: relayed after the detection timeout.
    quiet = h.start_inbound_proxy(greet_app.address, extra_args=["--inbound-protocol", "detect"])
    t0 = time.monotonic()
    s = socket.create_connection(h.split_addr(quiet.addr["inbound"]), timeout=5)
    assert recv_all(s, 11) == b"+OK ready\r\n"
    waited = time.monotonic() - t0
    s.sendall(b"PING\r\n")
    assert recv_all(s, 6) == b"PING\r\n"
    s.close()
    for p in (raw, quiet):
        h.wait_metric(p.addr["admin"], "outrigger_tcp_relays_total", lambda v: v == 1)
    assert (h.metric_sum(h.metrics(web.addr["admin"]), "outrigger_tcp_relays_total") or 0) == 0
    # A bad value is refused with the flag's name.
    bad = h.start_proxy(["--inbound", "127.0.0.1:0", "--app", echo.address,
                         "--inbound-protocol", "udp"], listeners=[])
    bad.wait_exit(5)
    assert bad.returncode != 0 and "--inbound-protocol" in bad.stderr_text(), bad.stderr_text()
    print(f"    HTTP stayed HTTP; binary relayed; silent client got the greeting after "
          f"{waited * 1000:.0f} ms (detection timeout 100 ms)")


def test_drain_lets_a_tcp_relay_finish():
    app = TcpServer(b"")
    proxy = h.start_inbound_proxy(app.address, extra_args=["--inbound-protocol", "tcp",
                                                           "--drain-timeout", "20s"])
    s = socket.create_connection(h.split_addr(proxy.addr["inbound"]), timeout=5)
    s.sendall(b"before")
    assert recv_all(s, 6) == b"before"
    proxy.send_signal(signal.SIGTERM)
    proxy.wait_for_stderr("draining", 5)
    time.sleep(0.3)
    s.sendall(b"during the drain")
    assert recv_all(s, 16) == b"during the drain", "an open relay must keep working"
    assert proxy.alive(), "the proxy must wait for the relay"
    s.shutdown(socket.SHUT_WR)
    assert s.recv(10) == b""
    s.close()
    proxy.wait_exit(10)
    assert proxy.returncode == 0, proxy.stderr_text()
    proxy.wait_for_stderr("drained: every connection finished", 1)


# --------------------------------------------------------------------------------------------
# HTTP/2

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, stream, payload=b""):
    n = len(payload)
    return bytes([n >> 16 & 255, n >> 8 & 255, n & 255, ftype, flags]) + \
        struct.pack("!I", stream) + payload


def h2_get(path, authority="a"):
    """An HPACK header block for GET http://authority/path (static table indexes, literals)."""
    block = b"\x82\x86"  # :method GET, :scheme http
    block += b"\x44" + bytes([len(path)]) + path.encode()  # :path, literal value
    block += b"\x41" + bytes([len(authority)]) + authority.encode()  # :authority
    return block


def h2_read_frames(sock, buf, timeout=5):
    """Reads whole frames: [(type, flags, stream, payload)], leftover; stops at EOF."""
    sock.settimeout(timeout)
    frames = []
    eof = False
    try:
        chunk = sock.recv(65536)
        eof = chunk == b""
    except socket.timeout:
        chunk = b""
    except ConnectionResetError:
        chunk, eof = b"", True
    buf += chunk
    while len(buf) >= 9:
        n = buf[0] << 16 | buf[1] << 8 | buf[2]
        if len(buf) < 9 + n:
            break
        frames.append((buf[3], buf[4], struct.unpack("!I", buf[5:9])[0] & 0x7FFFFFFF,
                       buf[9:9 + n]))
        buf = buf[9 + n:]
    return frames, buf, eof


def curl_h2(*args):
    return subprocess.run(["curl", "-q", "--http2-prior-knowledge", "-sS", "--max-time", "30",
                           *args], capture_output=True, text=True, timeout=40)


def test_http2_through_two_sidecars_with_mtls():
    xds, ca_dir = start_control()
    echo = h.start_echo("chat")
    chat = mesh_sidecar(xds, ca_dir, "chat", "--inbound", "127.0.0.1:0", "--app", echo.address,
                        "--concurrency", "2", "--access-log", "off")
    front = mesh_sidecar(xds, ca_dir, "frontend", "--outbound", "127.0.0.1:0",
                         "--concurrency", "2")
    out = front.addr["outbound"]
    h.poll_until(lambda: h.http_request(out, "/", headers={"Host": "chat"}).status == 200, 15,
                 "frontend's sidecar to reach chat")
    # curl, HTTP/2 with prior knowledge: GET, a 1 MiB upload, a 5 MB download.
    r = curl_h2("-w", "\n%{http_version} %{http_code}", "-H", "Host: chat",
                f"http://{out}/h2/get")
    body, _, tail = r.stdout.rpartition("\n")
    assert tail == "2 200", f"curl: {tail!r} {r.stderr}"
    assert json.loads(body)["path"] == "/h2/get"
    data_path = os.path.join(h.tmp_dir(), "upload.bin")
    with open(data_path, "wb") as f:
        f.write(os.urandom(1 << 20))
    r = curl_h2("-H", "Host: chat", "--data-binary", f"@{data_path}", f"http://{out}/h2/post")
    assert json.loads(r.stdout)["body_bytes"] == 1 << 20, r.stdout[:300]
    r = curl_h2("-H", "Host: chat", "-o", "/dev/null", "-w", "%{size_download}",
                f"http://{out}/h2/big?bytes=5000000")
    assert r.stdout == "5000000", r.stdout
    # curl --http2 on http:// asks to upgrade (Upgrade: h2c); the proxy does not upgrade (like
    # Envoy by default) and answers in HTTP/1.1.
    r = subprocess.run(["curl", "-q", "-sS", "--http2", "-o", "/dev/null", "-w", "%{http_version}",
                        "-H", "Host: chat", f"http://{out}/h2c-upgrade"],
                       capture_output=True, text=True, timeout=30)
    assert r.stdout == "1.1", f"curl --http2: {r.stdout} {r.stderr}"
    # nghttp and h2load: many streams on few connections.
    r = subprocess.run(["nghttp", "-n", "-s", "-H", ":authority: chat",
                        f"http://{out}/nghttp/1", f"http://{out}/nghttp/2"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["h2load", "-n", "3000", "-c", "4", "-m", "20", "-H", ":authority: chat",
                        f"http://{out}/load"], capture_output=True, text=True, timeout=60)
    assert "3000 succeeded, 0 failed" in r.stdout and "3000 2xx" in r.stdout, r.stdout
    # Counted as requests from frontend to chat over mTLS; logged as HTTP/2.
    n = h.wait_metric(front.addr["admin"], "outrigger_requests_total", lambda v: (v or 0) >= 3005,
                      reporter="source", destination_service="chat.default",
                      connection_security_policy="mutual_tls", response_code="200")
    line = front.wait_for_access_log(lambda e: e.get("path") == "/h2/post")
    assert line["protocol"] == "HTTP/2" and line["bytes_received"] == 1 << 20, line
    rps = [l for l in r.stdout.splitlines() if l.startswith("finished in")]
    print(f"    curl, nghttp and h2load over HTTP/2 through two sidecars (mTLS between them); "
          f"{n:.0f} requests counted; h2load {rps[0] if rps else ''}")


def test_http1_apps_talk_http2_between_sidecars():
    """h2UpgradePolicy: UPGRADE on books: its callers' sidecars carry HTTP/1.1 requests over one
    multiplexed HTTP/2 connection (mTLS) to books' sidecar, which hands HTTP/1.1 to the app."""
    xds, ca_dir = start_control()
    echo = h.start_echo("books")

    books = mesh_sidecar(xds, ca_dir, "books", "--inbound", "127.0.0.1:0", "--app", echo.address,
                         "--concurrency", "1")
    front = mesh_sidecar(xds, ca_dir, "frontend", "--outbound", "127.0.0.1:0",
                         "--concurrency", "1")
    out = front.addr["outbound"]
    h.poll_until(lambda: '"upstream_protocol": "HTTP2"' in h.http_request(
        front.addr["admin"], "/config_dump").text(), 15, "books' cluster upgraded to HTTP/2")
    h.poll_until(lambda: h.http_request(out, "/", headers={"Host": "books"}).status == 200, 15,
                 "frontend's sidecar to reach books")
    # 40 requests at once from HTTP/1.1 clients, a 1 MiB body, a 3 MB answer.
    results = []

    def one(i):
        results.append(h.http_request(out, f"/par/{i}?delay_ms=100",
                                      headers={"Host": "books"}).status)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results.count(200) == 40, results
    body = os.urandom(1 << 20)
    r = h.http_request(out, "/upload", method="POST", headers={"Host": "books"}, body=body)
    assert r.status == 200 and r.json()["body_bytes"] == 1 << 20, r
    r = h.http_request(out, "/big?bytes=3000000", headers={"Host": "books"})
    assert r.status == 200 and len(r.body) == 3000000, (r.status, len(r.body))
    m = h.metrics(front.addr["admin"])
    cx = h.metric_sum(m, "outrigger_upstream_cx_total", cluster="books.default")
    assert cx is not None and cx <= 2, f"{cx} connections for 43 requests: not multiplexed"
    line = books.wait_for_access_log(lambda e: e.get("path") == "/upload")
    assert line["protocol"] == "HTTP/2" and \
        line["source_identity"] == "spiffe://cluster.local/ns/default/sa/frontend", line
    assert echo_http_version(r) == "1.1"
    print(f"    43 HTTP/1.1 requests (40 at once) over {cx:.0f} HTTP/2 connection(s) between "
          f"the sidecars; books' app saw HTTP/1.1")


def echo_http_version(r):
    return r.json().get("http_version") if r.header("content-type") == "application/json" \
        else "1.1"


def test_http2_flow_control_bounds_memory():
    echo = h.start_echo("big")
    proxy = h.start_inbound_proxy(echo.address, extra_args=["--access-log", "off"],
                                  concurrency=1)
    pid = proxy.proc.pid
    rss0 = h.rss_kb(pid)
    s = socket.create_connection(h.split_addr(proxy.addr["inbound"]), timeout=5)
    # Our window stays at the default 65,535 bytes and we never send WINDOW_UPDATE.
    s.sendall(H2_PREFACE + h2_frame(0x4, 0, 0) +
              h2_frame(0x1, 0x5, 1, h2_get("/?bytes=200000000")))
    got = 0
    buf = b""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        frames, buf, eof = h2_read_frames(s, buf, timeout=0.2)
        got += sum(len(p) for t, _, sid, p in frames if t == 0 and sid == 1)
        if eof:
            break
    rss1 = h.rss_kb(pid)
    assert got <= 65535, f"{got} bytes of DATA beyond the client's window"
    if not h.memory_sanitized(pid):  # (ASan's quarantine makes RSS meaningless)
        assert rss1 - rss0 < 16 * 1024, \
            f"RSS grew {rss0} -> {rss1} kB while the client did not read"
    s.close()
    print(f"    200 MB response to a client that reads nothing: {got} bytes sent (one window), "
          f"proxy RSS {rss0} -> {rss1} kB")


def test_http2_rapid_reset_flood_refused():
    echo = h.start_echo("app")
    proxy = h.start_inbound_proxy(echo.address, extra_args=["--access-log", "off"],
                                  concurrency=1)
    pid = proxy.proc.pid
    counter = h.EchoRequestCounter(echo.address)
    rss0 = h.rss_kb(pid)
    s = socket.create_connection(h.split_addr(proxy.addr["inbound"]), timeout=5)
    wire = bytearray(H2_PREFACE + h2_frame(0x4, 0, 0))
    block = h2_get("/flood")
    for i in range(20000):
        sid = 2 * i + 1
        wire += h2_frame(0x1, 0x5, sid, block)                          # HEADERS
        wire += h2_frame(0x3, 0, sid, struct.pack("!I", 8))             # RST_STREAM CANCEL
    try:
        s.sendall(bytes(wire))
    except OSError:
        pass  # the proxy may close before reading it all
    goaway = None
    buf = b""
    for _ in range(50):
        frames, buf, eof = h2_read_frames(s, buf, timeout=0.2)
        for t, _, _, payload in frames:
            if t == 0x7:
                goaway = struct.unpack("!I", payload[4:8])[0]
        if eof:
            break
    s.close()
    rss1 = h.rss_kb(pid)
    assert goaway is not None, "no GOAWAY for a rapid-reset flood"
    served = counter.delta()
    # Still serving others.
    r = curl_h2("-o", "/dev/null", "-w", "%{http_code}", f"http://{proxy.addr['inbound']}/ok")
    assert r.stdout == "200", r.stdout + r.stderr
    if not h.memory_sanitized(pid):  # (ASan's quarantine makes RSS meaningless)
        assert rss1 - rss0 < 16 * 1024, f"RSS grew {rss0} -> {rss1} kB under the flood"
    print(f"    20,000 HEADERS+RST_STREAM: GOAWAY (error {goaway}), {served} requests reached "
          f"the app, RSS {rss0} -> {rss1} kB")


def test_grpc_deadline_and_proxy_errors_speak_grpc():
    """grpc-timeout shortens the route timeout, and the proxy's own answers to gRPC clients are
    trailers-only gRPC errors (HTTP 200, grpc-status)."""
    echo = h.start_echo("slow")
    proxy = h.start_inbound_proxy(echo.address, extra_args=["--access-log", "off"])
    addr = proxy.addr["inbound"]
    r = curl_h2("-i", "-H", "content-type: application/grpc", "-H", "te: trailers",
                "-H", "grpc-timeout: 200m", "-o", "-", f"http://{addr}/svc/Slow?delay_ms=3000")
    head = r.stdout.lower()
    assert head.startswith("http/2 200"), r.stdout[:300] + r.stderr
    assert "grpc-status: 4" in head, f"want DEADLINE_EXCEEDED: {r.stdout[:400]}"
    dead = h.start_inbound_proxy(f"127.0.0.1:{h.closed_port()}",
                                 extra_args=["--access-log", "off"])
    r = curl_h2("-i", "-H", "content-type: application/grpc", "-o", "-",
                f"http://{dead.addr['inbound']}/svc/Any")
    assert "grpc-status: 14" in r.stdout.lower(), r.stdout[:400]
    m = h.metrics(proxy.addr["admin"])
    assert h.metric_sum(m, "outrigger_requests_total", grpc_response_status="4",
                        response_flags="UT") == 1, h.series(m, "outrigger_requests_total")


def test_http2_goaway_on_drain():
    echo = h.start_echo("slow")
    proxy = h.start_inbound_proxy(echo.address, extra_args=["--drain-timeout", "10s"],
                                  concurrency=1)
    s = socket.create_connection(h.split_addr(proxy.addr["inbound"]), timeout=5)
    s.sendall(H2_PREFACE + h2_frame(0x4, 0, 0) +
              h2_frame(0x1, 0x5, 1, h2_get("/?delay_ms=700")))
    time.sleep(0.2)
    proxy.send_signal(signal.SIGTERM)
    seen = []
    buf = b""
    for _ in range(100):
        frames, buf, eof = h2_read_frames(s, buf, timeout=0.1)
        seen += [(t, fl, sid) for t, fl, sid, _ in frames]
        if eof:
            break
    s.close()
    types = [t for t, _, _ in seen]
    assert 0x7 in types, f"no GOAWAY on drain: {seen}"
    assert any(t == 0x1 and sid == 1 for t, _, sid in seen), \
        f"the open stream got no answer: {seen} {proxy.stderr_text()[-2000:]}"
    assert any(t in (0x0, 0x1) and sid == 1 and fl & 0x1 for t, fl, sid in seen), \
        f"the open stream did not finish: {seen}"
    proxy.wait_exit(10)
    assert proxy.returncode == 0, proxy.stderr_text()


def test_grpc_through_two_sidecars_with_mtls():
    """A gRPC client (gRPC C++) calls a gRPC server through its sidecar and the server's, with mTLS
    between them: unary, a bidirectional stream of 200 messages of 10 kB, and an error status,
    with trailers (grpc-status, grpc-message, custom trailing metadata) intact."""
    xds, ca_dir = start_control()
    server = h.Process("grpc-server", [h.bin_path("outrigger-grpc-echo"), "serve", "--listen",
                                       "127.0.0.1:0", "--name", "greeter-1"])
    app = server.wait_for_listen("grpc")

    greeter = mesh_sidecar(xds, ca_dir, "greeter", "--inbound", "127.0.0.1:0", "--app", app,
                           "--app-protocol", "http2")
    front = mesh_sidecar(xds, ca_dir, "frontend", "--outbound", "127.0.0.1:0")
    # The caller's cluster for greeter speaks HTTP/2 (the Service port says grpc).
    h.poll_until(lambda: '"upstream_protocol": "HTTP2"' in h.http_request(
        front.addr["admin"], "/config_dump").text(), 15, "greeter's cluster with HTTP/2")

    def call():
        return subprocess.run([h.bin_path("outrigger-grpc-echo"), "call", "--target",
                               front.addr["outbound"], "--authority", "greeter",
                               "--messages", "200", "--bytes", "10000"],
                              capture_output=True, text=True, timeout=60)
    r = h.poll_until(lambda: (lambda x: x if x.returncode == 0 else None)(call()), 20,
                     "a gRPC call through the mesh to succeed", interval=0.2)
    got = json.loads(r.stdout)
    assert got["unary_text"] == "greeter-1: hello" and got["unary_trailer"] == "unary-greeter-1"
    assert got["chat_echoed"] == 200 and got["chat_trailer_count"] == "200", got
    assert got["fail_status"] == 5 and "widget" in got["fail_message"], got
    m = h.metrics(front.addr["admin"])
    assert (h.metric_sum(m, "outrigger_upstream_tls_handshakes_total") or 0) >= 1
    # Three calls on the caller's side, all over mTLS to greeter (HTTP status 200: gRPC errors
    # travel in trailers).
    n = h.metric_sum(m, "outrigger_requests_total", reporter="source",
                     destination_service="greeter.default", connection_security_policy="mutual_tls")
    assert n and n >= 3, h.series(m, "outrigger_requests_total")
    codes = {ls.get("grpc_response_status"): v for ls, v in h.series(
        m, "outrigger_requests_total", reporter="source", destination_service="greeter.default")}
    assert codes.get("5", 0) >= 1 and codes.get("0", 0) >= 2, f"grpc_response_status: {codes}"
    line = greeter.wait_for_access_log(lambda e: e.get("path", "").endswith("/Chat"))
    assert line["protocol"] == "HTTP/2" and line["response_code"] == 200, line
    assert line["source_identity"] == "spiffe://cluster.local/ns/default/sa/frontend", line
    server.send_signal(signal.SIGTERM)
    print(f"    gRPC through two sidecars over mTLS: {got}")


def test_grpc_mirrored_to_a_mesh_peer_over_mtls():
    """An HTTPRoute mirrors the ledger's gRPC calls to ledger-shadow: the caller's sidecar sends
    each copy over HTTP/2 with mTLS to the shadow's sidecar (mirrors used to be plaintext only,
    so copies for mesh peers were dropped)."""
    xds, ca_dir = start_control()
    ledger_app = h.Process("grpc-ledger", [h.bin_path("outrigger-grpc-echo"), "serve",
                                           "--listen", "127.0.0.1:0", "--name", "ledger"])
    shadow_app = h.Process("grpc-shadow", [h.bin_path("outrigger-grpc-echo"), "serve",
                                           "--listen", "127.0.0.1:0", "--name", "shadow"])
    mesh_sidecar(xds, ca_dir, "ledger", "--inbound", "127.0.0.1:0",
                 "--app", ledger_app.wait_for_listen("grpc"), "--app-protocol", "http2")
    shadow = mesh_sidecar(xds, ca_dir, "ledger-shadow", "--inbound", "127.0.0.1:0",
                          "--app", shadow_app.wait_for_listen("grpc"), "--app-protocol", "http2")
    front = mesh_sidecar(xds, ca_dir, "frontend", "--outbound", "127.0.0.1:0")
    h.poll_until(lambda: "ledger-shadow.default" in h.http_request(
        front.addr["admin"], "/config_dump").text(), 15, "the mirror route at the caller")

    def call():
        r = subprocess.run([h.bin_path("outrigger-grpc-echo"), "call", "--target",
                            front.addr["outbound"], "--authority", "ledger", "--unary", "10"],
                           capture_output=True, text=True, timeout=60)
        got = json.loads(r.stdout)
        return got if got["ok"] == 10 else None
    got = h.poll_until(call, 20, "10 gRPC calls to the ledger through the mesh", interval=0.3)
    assert got["servers"] == {"ledger": 10}, got

    def copies():
        return [e for e in shadow.access_log() if e.get("path", "").endswith("/Unary")]
    h.poll_until(lambda: len(copies()) >= 10, 10, "10 copies at the shadow's sidecar")
    line = copies()[-1]
    assert line["authority"] == "ledger-shadow" and line["protocol"] == "HTTP/2", line
    assert line["source_identity"] == "spiffe://cluster.local/ns/default/sa/frontend", line
    m = h.metrics(front.addr["admin"])
    dropped = h.metric_sum(m, "outrigger_upstream_rq_mirror_dropped_total") or 0
    print(f"    {len(copies())} gRPC copies reached ledger-shadow over HTTP/2 + mTLS "
          f"(authority {line['authority']}), {dropped:.0f} dropped")


if __name__ == "__main__":
    h.main([
        test_websocket_through_two_sidecars_with_mtls,
        test_refused_upgrade_is_an_ordinary_answer,
        test_tcp_through_two_sidecars_with_mtls,
        test_protocol_detection_on_inbound,
        test_drain_lets_a_tcp_relay_finish,
        test_http2_through_two_sidecars_with_mtls,
        test_http1_apps_talk_http2_between_sidecars,
        test_http2_flow_control_bounds_memory,
        test_http2_rapid_reset_flood_refused,
        test_http2_goaway_on_drain,
        test_grpc_deadline_and_proxy_errors_speak_grpc,
        test_grpc_through_two_sidecars_with_mtls,
        test_grpc_mirrored_to_a_mesh_peer_over_mtls,
    ])
