"""Timed queue figures: upload->ready latency and burst throughput through the real upload
service, queue and worker pool (workers/examples/e2e_latency.rs) with 1 and 2 workers, and
the queue's own overhead with a no-op handler (workers/examples/queue_bench.rs). Every
example runs in a temp directory on a fresh SQLite file; peak RSS comes from wait4."""

import os
import re
import subprocess
import tempfile


def _run(argv, cwd, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOOCARD_", "DATABASE_URL"))}
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env={**env, **(extra_env or {})})
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError(f"{argv[0]} failed ({status}): {out[-500:]}")
    return out, ru.ru_maxrss / 1024


def _kv(line):
    """`latency_ms p50=1 p99=2 pipeline_ms p50=3 ...` -> {latency_ms.p50: 1, ...}; a bare
    `key=value` keeps its own name."""
    out, group = {}, ""
    for tok in line.split():
        if "=" not in tok:
            group = tok
            continue
        k, v = tok.split("=", 1)
        try:
            out[f"{group}.{k}" if k in ("p50", "p99") else k] = float(v)
        except ValueError:
            pass
    return out


def e2e(run, e2e_bin, image, reps, uploads, workers=(1, 2), modes=("separate", "embedded"), tag="",
        extra_env=None, after_rep=None):
    """Upload->ready latency (sequential) and burst throughput, per worker count and mode
    (separate: the workers poll; embedded: one process, woken in-process). `after_rep`, if
    given, runs after each rep: an anchor timed next to each rep instead of after all of them."""
    results = {}
    for mode in modes:
        for w in workers:
            f = {k: [] for k in ("lat50", "lat99", "over50", "own50", "acc50", "per_min", "vs_pipe", "rss")}
            for _ in range(reps):
                with tempfile.TemporaryDirectory(prefix="mbench-e2e.") as d:
                    out, peak = _run([e2e_bin, str(w), str(uploads), image, mode], d, extra_env)
                # The summary line; e2e_latency prints its stage split after it.
                kv = _kv(next(ln for ln in out.splitlines() if ln.startswith("backend=")))
                f["lat50"].append(kv["latency_ms.p50"])
                f["lat99"].append(kv["latency_ms.p99"])
                f["over50"].append(round(kv["overhead_ms.p50"], 1))
                # The last line: accept percentiles, latency minus each upload's own pipeline run.
                split = _kv(next(ln for ln in out.splitlines() if ln.startswith("accept_ms")))
                f["own50"].append(round(split["latency_minus_own_pipeline_ms.p50"], 1))
                f["acc50"].append(round(split["accept_ms.p50"], 1))
                f["per_min"].append(kv["uploads_per_min"])
                # Pipeline-alone throughput of w workers: w images per single-image time.
                f["vs_pipe"].append(round(kv["uploads_per_min"] / (w * 60000 / kv["pipeline_ms.p50"]), 3))
                f["rss"].append(round(peak, 1))
                if after_rep:
                    after_rep()
            name = f"queue{tag}.{mode}.w{w}"
            note = (f"{uploads} sequential uploads, then a burst of {2 * uploads}; image {os.path.basename(image)}; "
                    f"{mode} workers" + (f"; env {extra_env}" if extra_env else ""))
            run.record("queue", f"{name}.upload_ready_p50_ms", "ms", "lower", f["lat50"], note=note)
            run.record("queue", f"{name}.upload_ready_p99_ms", "ms", "lower", f["lat99"], note=note)
            run.record("queue", f"{name}.overhead_p50_ms", "ms", "lower", f["over50"],
                       note=note + "; upload->ready p50 minus the pipeline's own p50 on that image")
            run.record("queue", f"{name}.overhead_own_pipeline_p50_ms", "ms", "lower", f["own50"],
                       note=note + "; p50 over uploads of latency minus that upload's own pipeline run in the worker")
            run.record("queue", f"{name}.accept_p50_ms", "ms", "lower", f["acc50"],
                       note=note + "; the upload service's accept (checks, seal, store the original, enqueue)")
            run.record("queue", f"{name}.burst_uploads_per_min", "uploads/min", "higher", f["per_min"], note=note)
            run.record("queue", f"{name}.burst_vs_pipeline", "x", "higher", f["vs_pipe"],
                       note=note + "; burst rate / (workers x 1 / pipeline p50)")
            run.record("queue", f"{name}.peak_rss_mb", "MB", "lower", f["rss"], note=note)
            results[(mode, w)] = f
    return results


def pipeline_alone(moocard_bin, image, jobs, parallel):
    """Uploads per minute the pipeline alone reaches: `moocard thumbnail` (master included,
    as a worker runs it) on `image` `jobs` times, `parallel` processes at once. The burst's
    fair anchor: a pipeline uses a second thread for its largest encode, so two workers on
    two cores cannot each run at the speed of one pipeline timed alone."""
    import concurrent.futures
    import time

    with tempfile.TemporaryDirectory(prefix="mbench-alone.") as d:
        def one(i):
            subprocess.run([moocard_bin, "thumbnail", "--master", image, os.path.join(d, str(i))], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
            list(ex.map(one, range(jobs)))
        return jobs / (time.perf_counter() - t) * 60


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
