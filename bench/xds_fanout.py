#!/usr/bin/env python3
# Control-plane fan-out benchmark (issue 3): for N = 1,000 and 10,000 simulated proxies, starts a
# fresh outrigger-control on loopback with the example policy (examples/mesh), connects N streams
# with bench xds_fanout (each subscribes and ACKs like a proxy), changes one route's canary weights
# through the admin API, and reports p50 / p99 / max time until every stream received and ACKed
# the change, plus the control plane's RSS growth per connected stream.
# Targets on a 2-core machine: p99 <= 1 s at 10,000 streams, <= 20 KB per proxy. Figures are
# printed, never asserted; --smoke runs one small size (for CTest) and fails only if it breaks.
#
#   bench/xds_fanout.py --bin-dir build/bin            # 1,000 and 10,000 streams
#   bench/xds_fanout.py --bin-dir build/bin --sizes 200 --smoke
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LISTEN = re.compile(r"listening name=xds address=(\S+)")


def run_size(bin_dir, n, channels, timeout):
    tmp = tempfile.mkdtemp(prefix="outrigger-fanout-")
    try:
        policy = os.path.join(tmp, "policy")
        shutil.copytree(os.path.join(ROOT, "examples", "mesh"), policy)
        cp = subprocess.Popen([os.path.join(bin_dir, "outrigger-control"), "--policy", policy,
                               "--xds", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            addr = None
            deadline = time.monotonic() + 10
            while addr is None and time.monotonic() < deadline:
                line = cp.stderr.readline()
                if not line:
                    break
                m = LISTEN.search(line)
                if m:
                    addr = m.group(1)
            if addr is None:
                raise RuntimeError("outrigger-control did not start")
            # Keep draining the control plane's log so it never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in cp.stderr], daemon=True).start()
            out = subprocess.run([os.path.join(bin_dir, "xds_fanout"), "--control-plane", addr,
                                  "--streams", str(n), "--channels", str(channels),
                                  "--control-plane-pid", str(cp.pid),
                                  "--timeout-seconds", str(timeout)],
                                 capture_output=True, text=True, timeout=timeout * 3 + 30)
            if out.returncode != 0:
                raise RuntimeError(f"xds_fanout failed: {out.stdout}{out.stderr}")
            return dict(kv.split("=") for kv in out.stdout.split())
        finally:
            cp.send_signal(signal.SIGTERM)
            try:
                cp.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cp.kill()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--timeout", type=int, default=90, help="seconds per phase")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("control-plane fan-out: one route change pushed to N streams (loopback, 2 cores)")
    print(f"{'streams':>8} {'connect s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'CP RSS MB':>10} {'KB/proxy':>9}")
    for n in sizes:
        channels = max(1, min(100, n // 100))
        r = run_size(args.bin_dir, n, channels, args.timeout)
        print(f"{n:>8} {float(r['connected_ms']) / 1000:>10.1f} {float(r['p50_ms']):>8.1f} "
              f"{float(r['p99_ms']):>8.1f} {float(r['max_ms']):>8.1f} "
              f"{int(r['cp_rss_connected_kb']) / 1024:>10.1f} {float(r['cp_kb_per_stream']):>9.1f}")
        sys.stdout.flush()
    print("targets at 10,000 streams: p99 <= 1000 ms, <= 20 KB per proxy "
          "(p99 includes the control plane's 100 ms debounce)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
