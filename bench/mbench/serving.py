"""Timed serving figures: `/avatar` req/s and p99 against nginx (the shared
serve-baseline.sh, both scenarios) and under 1-256 concurrent clients (wrk, nginx at each
level in the same run), plus the server's peak RSS."""

import csv
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

from .callgrind import free_port, nginx_argv
from .callgrind import _wait_up as wait_up


def baseline_script(run, shared, bench_bin, avatar_path, work, duration, reps, file=None, prefix="serve"):
    """serve-baseline.sh with serve_bench as the extra server; one record per
    scenario/response/figure with the nginx samples of the same run as the anchor.
    `file`: the body both serve (default: the script's 21 KB avatar)."""
    out = f"{work}/{prefix}"
    env = dict(os.environ, OUT=out, DURATION=str(duration), REPS=str(reps),
               EXTRA_NAME="moocard", EXTRA_PATH=avatar_path,
               EXTRA_CMD=f"{bench_bin} --listen 127.0.0.1:{{port}} --root {{root}}")
    if file:
        env["FILE"] = str(file)
    subprocess.run([f"{shared}/serve-baseline.sh"], env=env, check=True, stdout=subprocess.DEVNULL)
    rows = list(csv.DictReader(open(f"{out}/wrk.tsv"), delimiter="\t"))
    # An anchor that answered errors (nginx's workers could not read the file: 403) must
    # fail the run, not be compared against.
    bad = [r for r in rows if r["non2xx3xx"] not in ("0", "")]
    kinds = {(r["server"], r["kind"]) for r in rows}
    if bad or not {("nginx", "200"), ("nginx", "304"), ("moocard", "200"), ("moocard", "304")} <= kinds:
        raise RuntimeError(f"serve-baseline.sh: an answer was not 200/304 or a run is missing "
                           f"(see {out}/logs): {bad[:2]} {sorted(kinds)}")

    def col(server, scen, kind, key):
        return [float(r[key]) for r in rows
                if (r["server"], r["scenario"], r["kind"]) == (server, scen, kind) and r[key] != "NA"]

    for scen in ("pinned", "shared"):
        for kind in ("200", "304"):
            m, n = col("moocard", scen, kind, "rps"), col("nginx", scen, kind, "rps")
            suite = prefix.split(".")[0]
            run.record(suite, f"{prefix}.{scen}.{kind}.rps", "req/s", "higher", m, anchors={"nginx": n})
            run.record(suite, f"{prefix}.{scen}.{kind}.p99_ms", "ms", "lower",
                       col("moocard", scen, kind, "p99_ms"), anchors={"nginx": col("nginx", scen, kind, "p99_ms")})
            # Each rep's ratio pairs two wrk runs taken seconds apart: the figure to compare
            # across commits and machines.
            run.record(suite, f"{prefix}.{scen}.{kind}.vs_nginx", "x", "higher",
                       [round(a / b, 4) for a, b in zip(m, n) if b], anchors={"parity": [1.0]})


def wrk(url, duration, conns=64, threads=2, script=None, headers=()):
    """One wrk run with --latency: req/s, p99 (ms), requests, non-2xx/3xx answers and socket
    errors. Raises when wrk printed no figures."""
    argv = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{duration}s", "--latency"]
    for h in headers:
        argv += ["-H", h]
    if script:
        argv += ["-s", script]
    t = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 60).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", t)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)", t, re.M)
    total = re.search(r"(\d+) requests in", t)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    sock = re.search(r"Socket errors: (.*)", t)
    if not rps or not p99:
        raise RuntimeError(f"wrk printed no figures:\n{t}")
    ms = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return {"rps": float(rps.group(1)), "p99": round(ms, 3), "requests": int(total.group(1)),
            "non2xx": int(bad.group(1)) if bad else 0, "socket_errors": sock.group(1).strip() if sock else ""}


def fetch(port, path):
    """GET `path`: (status, body, seconds)."""
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            return r.status, r.read(), time.perf_counter() - t
    except urllib.error.HTTPError as e:
        return e.code, e.read(), time.perf_counter() - t


def expect_status(port, path, code):
    """Fails the run unless `path` answers `code` (an anchor serving errors is no anchor)."""
    got = fetch(port, path)[0]
    if got != code:
        raise RuntimeError(f"127.0.0.1:{port}{path} answered {got}, not {code}")


def start(argv, port, path, env=None, secs=120):
    """Starts a server and waits until `path` answers 200 (at most `secs`)."""
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env={**os.environ, **(env or {})})
    wait_up(port, path, p, secs)
    expect_status(port, path, 200)
    return p


def _stop(p, sig):
    p.send_signal(sig)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def scalability(run, bench_bin, root, avatar_path, work, duration, reps, levels=(1, 4, 16, 64, 256)):
    """Hot 200 req/s and p99 at each client count; the two servers alternate per level and
    rep so noise hits both alike. Records moocard's peak RSS (VmHWM) after all levels."""
    got = {s: {c: {"rps": [], "p99": []} for c in levels} for s in ("moocard", "nginx")}
    hwm = []
    for _ in range(reps):
        mp, np_ = free_port(), free_port()
        moo = start([bench_bin, "--listen", f"127.0.0.1:{mp}", "--root", root], mp, avatar_path)
        ng_argv = nginx_argv(f"{work}/scale-nginx", root, np_)
        ng_argv[-1] = "daemon off; master_process on;"
        ng_conf = open(f"{work}/scale-nginx/nginx.conf").read().replace("worker_processes 1;", "worker_processes auto;")
        open(f"{work}/scale-nginx/nginx.conf", "w").write(ng_conf)
        ng = start(ng_argv, np_, "/a/avatar.jpg")
        try:
            for c in levels:
                for name, url in (("nginx", f"http://127.0.0.1:{np_}/a/avatar.jpg"),
                                  ("moocard", f"http://127.0.0.1:{mp}{avatar_path}")):
                    try:
                        r = wrk(url, duration, conns=c)
                    except RuntimeError:  # a level wrk could not measure stays out of the record
                        r = {"rps": None, "p99": None}
                    got[name][c]["rps"].append(r["rps"])
                    got[name][c]["p99"].append(r["p99"])
            for line in open(f"/proc/{moo.pid}/status"):
                if line.startswith("VmHWM:"):
                    hwm.append(int(line.split()[1]) / 1024)
        finally:
            _stop(moo, signal.SIGINT)
            _stop(ng, signal.SIGQUIT)
        time.sleep(0.5)
    for c in levels:
        m, n = got["moocard"][c], got["nginx"][c]
        run.record("scale", f"scale.c{c}.rps", "req/s", "higher", m["rps"], anchors={"nginx": n["rps"]})
        run.record("scale", f"scale.c{c}.p99_ms", "ms", "lower", m["p99"], anchors={"nginx": n["p99"]})
    run.record("scale", "scale.server_peak_rss_mb", "MB", "lower", [round(x, 1) for x in hwm],
               note=f"VmHWM of serve_bench after {len(levels)} levels x {duration} s of wrk")
