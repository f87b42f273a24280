"""Timed queue figures: upload->ready latency and burst throughput through the real upload
service, queue and worker pool (workers/examples/e2e_latency.rs) with 1 and 2 workers, and
the queue's own overhead with a no-op handler (workers/examples/queue_bench.rs). Every
example runs in a temp directory on a fresh SQLite file; peak RSS comes from wait4."""

import os
import re
import subprocess
import tempfile


def _run(argv, cwd):
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith(("MOOCARD_", "DATABASE_URL"))})
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"{argv[0]} failed ({status}): {out[-500:]}")
    return out, ru.ru_maxrss / 1024


def _kv(line):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([\d.]+)", line)}


def e2e(run, e2e_bin, image, reps, uploads, workers=(1, 2)):
    for w in workers:
        lat50, lat99, per_min, rss = [], [], [], []
        for _ in range(reps):
            with tempfile.TemporaryDirectory(prefix="mbench-e2e.") as d:
                out, peak = _run([e2e_bin, str(w), str(uploads), image], d)
            kv = _kv(out.strip().splitlines()[-1].replace("latency_ms p50", "lat_p50").replace(" p99", " lat_p99"))
            lat50.append(kv["lat_p50"])
            lat99.append(kv["lat_p99"])
            per_min.append(kv["uploads_per_min"])
            rss.append(round(peak, 1))
        note = f"{uploads} sequential uploads, then a burst of {2 * uploads}; image {os.path.basename(image)}"
        run.record("queue", f"queue.w{w}.upload_ready_p50_ms", "ms", "lower", lat50, note=note)
        run.record("queue", f"queue.w{w}.upload_ready_p99_ms", "ms", "lower", lat99, note=note)
        run.record("queue", f"queue.w{w}.burst_uploads_per_min", "uploads/min", "higher", per_min, note=note)
        run.record("queue", f"queue.w{w}.peak_rss_mb", "MB", "lower", rss, note=note)


def noop(run, queue_bin, reps, jobs):
    got = {}
    for _ in range(reps):
        with tempfile.TemporaryDirectory(prefix="mbench-queue.") as d:
            out, _ = _run([queue_bin, "sqlite", str(jobs)], d)
        for line in out.splitlines():
            c = re.search(r"concurrency=(\d+)", line)
            e = re.search(r"enqueue\s+([\d.]+)/s", line)
            dr = re.search(r"drain\s+([\d.]+) jobs/s", line)
            p50 = re.search(r"p50\s+([\d.]+) ms", line)
            if c and e and dr and p50:
                g = got.setdefault(c.group(1), {"enq": [], "drain": [], "p50": []})
                g["enq"].append(float(e.group(1)))
                g["drain"].append(float(dr.group(1)))
                g["p50"].append(float(p50.group(1)))
    note = f"no-op handler, {jobs} jobs, SQLite"
    for c, g in sorted(got.items()):
        run.record("queue", f"queue.noop.c{c}.enqueue_per_s", "jobs/s", "higher", g["enq"], note=note)
        run.record("queue", f"queue.noop.c{c}.drain_per_s", "jobs/s", "higher", g["drain"], note=note)
        run.record("queue", f"queue.noop.c{c}.start_latency_p50_ms", "ms", "lower", g["p50"], note=note)
