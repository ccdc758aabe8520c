# The shop demo (examples/shop/demo.py, what `scripts/demo` runs) end to end with the real
# binaries: outrigger-control with the mesh CA, four sidecars joining with tokens, the Python apps,
# traffic at a fixed rate and the canary moved 90/10 -> 50/50 -> 0/100 with `outrigger canary`.
# Covered: it exits 0, both catalog versions take traffic, v2's share rises with each shift, and
# its temp dir and every process it started are gone afterwards; SIGINT in the middle of a phase
# and SIGTERM during start-up stop everything within a few seconds with status 130 / 143 and leave
# no process behind.
#
# Run by hand with: python3 tests/integration/test_demo.py --bin-dir BUILD/bin

import os
import re
import signal
import sys
import time

import harness as h

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "examples", "shop", "demo.py")

PHASE_RE = re.compile(r"^phase (\d)/3 (\S+ \S+): (\d+) requests; v1 (\d+) \((\d+)%, [^)]*\), "
                      r"v2 (\d+) \((\d+)%")
PID_RE = re.compile(r"\(pid (\d+)\)")
TMP_RE = re.compile(r"^demo: temp dir (\S+)")


def start_demo(*extra):
    argv = [sys.executable, DEMO, "--bin-dir", h.BIN_DIR, "--no-prometheus", *extra]
    return h.Process("demo", argv)


def output(demo):
    return demo.stdout_lines() + demo.stderr_lines()


def wait_line(demo, regex, timeout):
    rx = re.compile(regex)

    def find():
        for line in demo.stdout_lines():
            if rx.search(line):
                return line
        if not demo.alive():
            raise AssertionError(f"the demo exited ({demo.returncode}) before printing a line "
                                 f"matching {regex!r}; output:\n" + "\n".join(output(demo)[-40:]))
        return None
    return h.poll_until(find, timeout, f"demo output line matching {regex!r}", interval=0.05)


def started(demo):
    """(temp dir, [pids of the processes the demo said it started])."""
    lines = demo.stdout_lines()
    tmp = next((m.group(1) for line in lines if (m := TMP_RE.match(line))), None)
    pids = [int(p) for line in lines for p in PID_RE.findall(line)]
    return tmp, pids


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def assert_nothing_left(tmp, pids):
    """No process the demo started is still there (a PID reused by an unrelated process does not
    count: its command line must name an Outrigger binary, the shop app or Prometheus), no
    process at all mentions the demo's temp dir, and the temp dir is gone."""
    assert tmp, "the demo did not print its temp dir ('demo: temp dir ...')"
    left = []
    for pid in pids:
        cl = cmdline(pid)
        if cl and ("outrigger" in cl or "app.py" in cl or "prometheus" in cl):
            left.append(f"{pid}: {cl[:200]}")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            cl = cmdline(entry)
            if cl and tmp in cl:
                left.append(f"{entry}: {cl[:200]}")
    assert not left, "processes left behind by the demo:\n  " + "\n  ".join(sorted(set(left)))
    assert not os.path.exists(tmp), f"the demo's temp dir {tmp} is still there"


def test_demo_shifts_the_canary():
    demo = start_demo("--phase-seconds", "3")
    rc = demo.wait_exit(150)
    demo.wait_eof()
    out = output(demo)
    text = "\n".join(out)
    assert rc == 0, f"the demo exited with {rc}; output:\n" + "\n".join(out[-60:])
    for cmd in ("outrigger canary catalog catalog-v1=50 catalog-v2=50",
                "outrigger canary catalog catalog-v1=0 catalog-v2=100"):
        assert cmd in text, f"the demo did not show `{cmd}`"
    phases = {}
    for line in demo.stdout_lines():
        m = PHASE_RE.match(line)
        if m:
            phases[int(m.group(1))] = {
                "label": m.group(2), "requests": int(m.group(3)),
                "v1": int(m.group(4)), "v1_share": int(m.group(5)),
                "v2": int(m.group(6)), "v2_share": int(m.group(7))}
    assert sorted(phases) == [1, 2, 3], f"phase summary lines: {phases}; output:\n{text[-3000:]}"
    assert phases[1]["label"] == "catalog-v1=90 catalog-v2=10", phases[1]
    for i in (1, 2):
        assert phases[i]["v1"] > 0 and phases[i]["v2"] > 0, \
            f"phase {i}: both versions must take traffic: {phases[i]}"
    # Each shift moves traffic to v2 (90/10 -> 50/50 -> 0/100; about 150 requests a phase).
    assert phases[1]["v2_share"] < phases[2]["v2_share"] < phases[3]["v2_share"], phases
    assert phases[1]["v2_share"] <= 30, f"90/10 gave v2 too much: {phases[1]}"
    assert 25 <= phases[2]["v2_share"] <= 75, f"50/50 is not about even: {phases[2]}"
    assert phases[3]["v2_share"] >= 85, f"0/100 left too much on v1: {phases[3]}"
    assert "demo: done" in text
    tmp, pids = started(demo)
    assert len(pids) >= 9, f"expected the pids of 9 processes in the output, got {pids}"
    assert_nothing_left(tmp, pids)


def _stop_and_check(demo, sig, want_rc, what):
    tmp, pids = started(demo)
    t0 = time.monotonic()
    demo.send_signal(sig)
    rc = demo.wait_exit(15)
    took = time.monotonic() - t0
    demo.wait_eof()
    out = output(demo)
    assert rc == want_rc, f"{what}: exit status {rc}, want {want_rc}; output:\n" + \
        "\n".join(out[-40:])
    assert took < 10, f"{what}: the demo took {took:.1f}s to stop"
    assert any(signal.Signals(sig).name in line for line in out), \
        f"{what}: the demo did not say it was stopped by {signal.Signals(sig).name}"
    assert_nothing_left(tmp, pids)


def test_sigint_mid_run_stops_everything():
    demo = start_demo("--phase-seconds", "30")
    wait_line(demo, r"^== phase 1/3", 90)
    wait_line(demo, r"^\s+2s\s+sent", 30)   # traffic flowing
    tmp, pids = started(demo)
    assert len(pids) >= 9, f"expected the pids of 9 processes in the output, got {pids}"
    alive = [p for p in pids if cmdline(p)]
    assert len(alive) == len(pids), f"not every started process runs: {pids} vs {alive}"
    _stop_and_check(demo, signal.SIGINT, 130, "SIGINT mid-run")


def test_sigterm_during_startup_stops_everything():
    demo = start_demo("--phase-seconds", "30")
    # Right after the first sidecar: the control plane and a sidecar run, the rest is starting.
    wait_line(demo, r"^\s+sidecar frontend\s+\(pid \d+\)", 60)
    _stop_and_check(demo, signal.SIGTERM, 143, "SIGTERM during start-up")


if __name__ == "__main__":
    h.main([test_demo_shifts_the_canary, test_sigint_mid_run_stops_everything,
            test_sigterm_during_startup_stops_everything])
