#!/usr/bin/env python3
"""config-ab.py - the hot /avatar path under two configurations of one binary, interleaved.

Starts serve_bench once per configuration and repetition (A, B, A, B, ...), loads the
seeded avatar with wrk (shared cores, -t2 -c64, 200 and 304), and prints each
configuration's median req/s and the B/A ratio with its per-repetition values. Used for
issue 16: the audit log and the shared limits on (B, the defaults with the audit log
written to a file) against both off (A).

    bench/config-ab.py target/release/examples/serve_bench [reps=5] [seconds=10]
    bench/config-ab.py --ir target/release/examples/serve_bench

`--ir` counts user-space instructions per request instead (callgrind, one tokio worker, the
smallest of 10 windows of 100 requests, twice per configuration): independent of the load
of a shared machine, where the timed A/B's per-rep ratios spread from 0.8 to 1.3.
"""
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mbench.callgrind import free_port, requests_ir  # noqa: E402
from mbench import serving  # noqa: E402
from mbench.serving import _stop, start  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "images", "p3.jpg")


def wrk(url, seconds, etag=None):
    return serving.wrk(url, seconds, headers=[f"If-None-Match: {etag}"] if etag else ())["rps"]


def main():
    if sys.argv[1] == "--ir":
        return instructions(sys.argv[2])
    bench = sys.argv[1]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    path = "/avatar/" + subprocess.run([bench, "--print-path"], capture_output=True, text=True,
                                       check=True).stdout.split()[0]
    with tempfile.TemporaryDirectory(prefix="config-ab.") as d:
        os.makedirs(f"{d}/a")
        with open(f"{d}/a/avatar.jpg", "wb") as f:
            f.write(open(FIXTURE, "rb").read())
        configs = CONFIGS(d)
        got = {name: {"200": [], "304": []} for name in configs}
        for _ in range(reps):
            for name, env in configs.items():
                port = free_port()
                p = start([bench, "--listen", f"127.0.0.1:{port}", "--root", d], port, path,
                          {**env, "MOOCARD_AVATARS__FILTER_REFRESH_MS": "1000"})
                try:
                    url = f"http://127.0.0.1:{port}{path}"
                    etag = subprocess.run(["curl", "-sI", url], capture_output=True, text=True).stdout
                    etag = re.search(r"(?im)^etag:\s*(\S+)", etag).group(1)
                    wrk(url, 2)
                    got[name]["200"].append(wrk(url, seconds))
                    got[name]["304"].append(wrk(url, seconds, etag))
                finally:
                    _stop(p, signal.SIGINT)
        load = open("/proc/loadavg").read().split()[:3]
        print(f"load average at the end: {' '.join(load)}; {reps} reps x {seconds} s, wrk -t2 -c64, shared cores")
        (a, b) = configs
        for kind in ("200", "304"):
            ma, mb = statistics.median(got[a][kind]), statistics.median(got[b][kind])
            ratios = [round(y / x, 3) for x, y in zip(got[a][kind], got[b][kind])]
            print(f"{kind}: {a} median {ma:.0f} req/s {got[a][kind]}")
            print(f"{kind}: {b} median {mb:.0f} req/s {got[b][kind]}")
            print(f"{kind}: B/A {mb / ma:.3f} (per rep {ratios})")


def CONFIGS(d):
    return {
        "A: audit off, no quotas": {"MOOCARD_AUDIT__OUTPUT": "off", "MOOCARD_QUOTAS__UPLOADS_PER_DAY": "0",
                                    "MOOCARD_QUOTAS__OWNER_REQUESTS_PER_MINUTE_PER_IP": "0"},
        "B: audit to a file, default quotas": {"MOOCARD_AUDIT__OUTPUT": f"{d}/audit.log"},
    }


def instructions(bench):
    path = "/avatar/" + subprocess.run([bench, "--print-path"], capture_output=True, text=True,
                                       check=True).stdout.split()[0]
    with tempfile.TemporaryDirectory(prefix="config-ab.") as d:
        os.makedirs(f"{d}/a")
        with open(f"{d}/a/avatar.jpg", "wb") as f:
            f.write(open(FIXTURE, "rb").read())
        base = {"TOKIO_WORKER_THREADS": "1", "MOOCARD_AVATARS__CACHE_TTL_SECS": "86400"}
        for name, env in CONFIGS(d).items():
            for rep in (1, 2):
                port = free_port()
                r = requests_ir([bench, "--listen", f"127.0.0.1:{port}", "--root", d], port,
                                [("304", path, True), ("200", path, False), ("unknown", "/avatar/" + "0" * 32, False)],
                                1000, 100, env={**base, **env}, windows=10)
                print(name, rep, {k: round(v[0]) for k, v in r.items()}, "instructions/request", flush=True)


if __name__ == "__main__":
    main()
