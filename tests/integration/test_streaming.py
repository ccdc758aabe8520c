#!/usr/bin/env python3
# Body streaming through the real outrigger-proxy (inbound, in front of outrigger-echo):
# a 100 MiB upload (byte count and FNV-1a 64 checked by the echo) and a 100 MiB download, with the
# proxy's peak RSS (VmHWM) under 64 MiB, i.e. bodies are streamed and never buffered whole;
# chunked request bodies (curl with Transfer-Encoding: chunked, curl -T - from stdin, a raw
# request with chunk extensions and trailers); chunked responses passed on as chunked (and
# close-delimited for an HTTP/1.0 client); Content-Length responses; Expect: 100-continue.
# Run: python3 tests/integration/test_streaming.py --bin-dir BUILD/bin

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

MIB = 1 << 20
BIG = 100 * MIB
HWM_LIMIT_KB = 64 * 1024


def _setup():
    echo = h.start_echo("stream-echo", "v1")
    proxy = h.start_inbound_proxy(echo.address, concurrency=2)
    return echo, proxy


def _check_hwm(proxy, what):
    assert proxy.alive(), f"proxy exited during {what}"
    hwm = h.hwm_kb(proxy.pid)
    print(f"    proxy VmHWM after {what}: {hwm} kB (VmRSS {h.rss_kb(proxy.pid)} kB)")
    if h.memory_sanitized(proxy.pid):
        print(f"    (sanitizer build: peak RSS limit of {HWM_LIMIT_KB} kB not checked)")
        return
    assert hwm < HWM_LIMIT_KB, f"proxy peak RSS {hwm} kB >= {HWM_LIMIT_KB} kB after {what}"


def _upload(url, path, *extra):
    code, obj, raw = h.curl_json("-T", path, *extra, url, timeout=60)
    assert code == 200, f"upload answered {code}: {raw[:300]}"
    assert obj is not None, f"upload answer is not JSON: {raw[:300]}"
    return obj


def _check_body(obj, body, what):
    assert obj.get("body_bytes") == body.size, \
        f"{what}: echo got {obj.get('body_bytes')} bytes, sent {body.size}"
    assert h.parse_hex(obj.get("body_fnv1a64", "0")) == body.fnv1a64(), \
        f"{what}: body hash {obj.get('body_fnv1a64')} != {body.fnv1a64():016x}"


def test_upload_100mib():
    echo, proxy = _setup()
    body = h.PatternBody(BIG)
    path = body.write_file(os.path.join(h.tmp_dir(), "upload-100mib.bin"))
    try:
        # `Expect:` off: this test is about the body, test_expect_100_continue about Expect.
        obj = _upload(f"http://{proxy.addr['inbound']}/upload", path, "-H", "Expect:")
    finally:
        os.remove(path)
    assert obj.get("method") == "PUT", f"method {obj.get('method')!r}"
    _check_body(obj, body, "100 MiB upload")
    _check_hwm(proxy, "100 MiB upload")


def test_download_100mib():
    echo, proxy = _setup()
    r = h.curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}",
               f"http://{proxy.addr['inbound']}/download?bytes={BIG}", timeout=60)
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr.decode()[-400:]}"
    code, size = r.stdout.decode().split()
    assert code == "200", f"download answered {code}"
    assert int(size) == BIG, f"downloaded {size} bytes, want {BIG}"
    _check_hwm(proxy, "100 MiB download")


def test_chunked_request_passthrough():
    echo, proxy = _setup()
    url = f"http://{proxy.addr['inbound']}/chunked-up"
    body = h.PatternBody(5 * MIB + 12345, block=4096)
    path = body.write_file(os.path.join(h.tmp_dir(), "chunked.bin"))
    obj = _upload(url, path, "-H", "Transfer-Encoding: chunked", "-H", "Expect:")
    _check_body(obj, body, "chunked upload from a file")

    # curl -T - reads stdin and sends it chunked (length unknown).
    data = b"".join(body.blocks())
    r = h.curl("-w", "\n%{http_code}", "-H", "Expect:", "-T", "-", url, input=data, timeout=60)
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr.decode()[-400:]}"
    raw, _, code = r.stdout.decode().rpartition("\n")
    assert code == "200", f"stdin upload answered {code}: {raw[:300]}"
    _check_body(json.loads(raw), body, "chunked upload from stdin")

    # Chunk extensions and trailers are legal and must not break framing.
    req = (b"POST /ext HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n"
           b"Connection: close\r\n\r\n"
           b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
    raw_resp, closed = h.raw_request(proxy.addr["inbound"], req, timeout=5)
    status, _, payload = h.parse_http_response(raw_resp)
    assert status == 200, f"chunk extensions/trailers: {raw_resp[:200]!r}"
    got = json.loads(payload).get("body_bytes")
    assert got == 11, f"echo counted {got} body bytes, want 11 ('hello world')"


def test_chunked_response_passthrough():
    echo, proxy = _setup()
    addr = proxy.addr["inbound"]
    n = 3 * MIB + 7
    url = f"http://{addr}/chunked-down?bytes={n}&chunked=1"
    r = h.curl("-o", "/dev/null", "-w", "%{http_code} %{size_download}", url, timeout=60)
    assert r.returncode == 0, f"curl exit {r.returncode}: {r.stderr.decode()[-400:]}"
    code, size = r.stdout.decode().split()
    assert code == "200" and int(size) == n, f"chunked download: code {code}, {size} bytes of {n}"

    resp = h.http_request(addr, f"/chunked-down?bytes={n}&chunked=1", timeout=30)
    te = (resp.header("transfer-encoding") or "").lower()
    assert te == "chunked", \
        f"a chunked answer should reach an HTTP/1.1 client chunked, got transfer-encoding={te!r} " \
        f"content-length={resp.header('content-length')}"
    assert len(resp.body) == n, f"decoded chunked body {len(resp.body)} bytes, want {n}"

    # An HTTP/1.0 client cannot take chunked: the proxy must delimit by close (or by length).
    r = h.curl("-0", "-D", "-", "-o", "/dev/null", "-w", "\n%{http_code} %{size_download}",
               url, timeout=60)
    assert r.returncode == 0, f"curl -0 exit {r.returncode}: {r.stderr.decode()[-400:]}"
    out = r.stdout.decode("utf-8", "replace")
    headers, _, tail = out.rpartition("\n")
    code, size = tail.split()
    assert code == "200" and int(size) == n, f"HTTP/1.0 chunked download: {code}, {size} of {n}"
    assert "transfer-encoding: chunked" not in headers.lower(), \
        f"chunked sent to an HTTP/1.0 client:\n{headers}"

    # A Content-Length answer keeps its length.
    resp = h.http_request(addr, "/cl-down?bytes=100000", timeout=30)
    assert resp.status == 200 and len(resp.body) == 100000, f"{resp.status}, {len(resp.body)}"
    assert resp.header("content-length") == "100000", \
        f"content-length {resp.header('content-length')!r}, te {resp.header('transfer-encoding')!r}"


def test_expect_100_continue():
    echo, proxy = _setup()
    body = h.PatternBody(2 * MIB, block=4096)
    path = body.write_file(os.path.join(h.tmp_dir(), "expect.bin"))
    # curl waits up to --expect100-timeout for "100 Continue" before sending the body anyway;
    # seeing the interim response (and finishing well inside that timeout) proves it came.
    r = h.curl("-v", "-w", "\n%{http_code} %{time_total}", "-H", "Expect: 100-continue",
               "--expect100-timeout", "10", "-T", path,
               f"http://{proxy.addr['inbound']}/expect", timeout=60)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 0, f"curl exit {r.returncode}: {err[-500:]}"
    raw, _, tail = r.stdout.decode().rpartition("\n")
    code, total = tail.split()
    assert code == "200", f"Expect upload answered {code}: {raw[:300]}"
    assert "< HTTP/1.1 100" in err, f"no 100 Continue reached curl:\n{err[-1500:]}"
    print(f"    Expect: 100-continue upload of 2 MiB took {float(total) * 1000:.0f} ms")
    assert float(total) < 10, f"took {total}s: the proxy sat on the Expect until curl gave up"
    _check_body(json.loads(raw), body, "Expect: 100-continue upload")


if __name__ == "__main__":
    h.main([
        test_upload_100mib,
        test_download_100mib,
        test_chunked_request_passthrough,
        test_chunked_response_passthrough,
        test_expect_100_continue,
    ])
