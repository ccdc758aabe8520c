# Helpers shared by the tests of the mesh CA (test_identity.py, test_mtls.py): fresh temporary
# paths, the `outrigger` CLI (every run recorded, for the checks that no key ever leaks), join
# tokens and token files.

import os
import subprocess
import time

import harness as h

_seq = [0]
CLI_OUTPUTS = []   # (argv, stdout, stderr) of every CLI run, for the key-leak check


def fresh_path(prefix):
    """A new, not yet existing path in the run's temporary directory."""
    _seq[0] += 1
    return os.path.join(h.tmp_dir(), f"{prefix}-{_seq[0]}-{time.monotonic_ns()}")


def cli(*args, env=None, timeout=20):
    argv = [h.bin_path("outrigger"), *[str(a) for a in args]]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       env=h.clean_env(env))
    CLI_OUTPUTS.append((argv, r.stdout, r.stderr))
    return r


def make_token(ca_dir, service, *extra):
    r = cli("token", "create", "--ca-dir", ca_dir, "--service", service, *extra)
    assert r.returncode == 0, f"token create exited {r.returncode}: {r.stdout}{r.stderr}"
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ort1."), \
        f"token create must print one line starting with 'ort1.': {r.stdout!r}"
    return lines[0]


def token_file(token):
    path = fresh_path("token")
    with open(path, "w") as f:
        f.write(token + "\n")
    return path
