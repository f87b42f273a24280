"""`bench/run`: the standard suite on the current commit, one history record per figure.

    bench/run                      everything, full corpus (about 20 min on 2 cores)
    bench/run --quick              a subset (6 images, short wrk runs, 1 rep); recorded as mode "quick"
    bench/run --suites ir,serve    only some suites: ir pipeline serve scale queue reads, and outage
                                   (not in the default set: it stops the MariaDB server at
                                   127.0.0.1:3306 for a minute and starts it again)
    bench/run --repo DIR           measure another checkout (e.g. a worktree of an older commit);
                                   the history and page stay in this one

Binaries are the release build a user runs (`cargo build --release`).
"""

import argparse
import json
import statistics
import os
import subprocess
import sys
import time
from pathlib import Path

from . import deterministic, page, queue, reads, serving
from .history import BENCH, REPO, Run

SUITES = ["ir", "pipeline", "serve", "scale", "queue", "reads"]
OPT_IN = ["outage"]
QUICK_IMAGES = ["p01_kleiber_20mp.jpg", "d04_sunset_24mp_upscaled.jpg", "p05_sunset_12mp_prog.jpg",
                "p13_fallenleaf_4mp_exif_canon.jpg", "d01_bridge_orient6.jpg", "d05_friends_alpha_4mp.png"]


def binaries(repo):
    rel = Path(repo) / "target" / "release"
    return {"moocard": str(rel / "moocard"), "serve_bench": str(rel / "examples" / "serve_bench"),
            "e2e": str(rel / "examples" / "e2e_latency"), "queue": str(rel / "examples" / "queue_bench")}


def build(repo):
    # avif-asm: rav1e's SIMD, as deploy/ builds it (bench/setup.sh installs nasm).
    subprocess.run(["cargo", "build", "--release", "-p", "moocard-worker", "-p", "moocard", "--bin", "moocard",
                    "--features", "moocard-worker/avif-asm",
                    "--example", "serve_bench", "--example", "e2e_latency", "--example", "queue_bench"],
                   cwd=repo, check=True)


def setup():
    out = subprocess.run([str(BENCH / "setup.sh")], check=True, stdout=subprocess.PIPE, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def geomean_vs_pyvips(res, key, runs):
    """Per round: the geometric mean over images of `key`'s ms / pyvips' ms in that round."""
    import math
    return [round(math.exp(sum(math.log(r[key][i] / r["pyvips"][i]) for r in res.values()) / len(res)), 4)
            for i in range(runs)]


def pipeline(run, work, moocard, quick):
    corpus = work / "corpus"
    names = QUICK_IMAGES if quick else sorted(p.name for p in corpus.iterdir()
                                               if p.suffix in (".jpg", ".png", ".webp", ".gif"))
    runs = 3
    res = json.loads(subprocess.run(
        [str(work / ".venv/bin/python"), "-m", "mbench.pipeline_timing", "--bin", moocard, "--lib", str(work / "lib"),
         "--runs", str(runs), *[str(corpus / n) for n in names]],
        cwd=BENCH, check=True, stdout=subprocess.PIPE, text=True).stdout)
    note = f"{len(res)} images of the shared corpus, {runs} interleaved rounds; moocard thumbnail (5 sizes)"
    # Round r's corpus total: the sum over images of their r-th run, for moocard and pyvips.
    tot = [round(sum(r["moocard"][i] for r in res.values()), 1) for i in range(runs)]
    ptot = [round(sum(r["pyvips"][i] for r in res.values()), 1) for i in range(runs)] if all(
        r["pyvips"] for r in res.values()) else []
    run.record("pipeline", "pipeline.corpus_ms", "ms", "lower", tot, anchors={"pyvips": ptot}, note=note)
    if ptot:
        run.record("pipeline", "pipeline.vs_pyvips", "x", "lower", geomean_vs_pyvips(res, "moocard", runs),
                   anchors={"parity": [1.0]}, note=note)
        # Warm: the third run inside one process, timed like the in-process anchor.
        run.record("pipeline", "pipeline.warm.vs_pyvips", "x", "lower", geomean_vs_pyvips(res, "moocard_warm", runs),
                   anchors={"parity": [1.0]},
                   note=note + "; moocard thumbnail --repeat 3, the third run's wall ms (in process, warm)")
    cpu = [round(sum(r["moocard_cpu"][i] for r in res.values()), 1) for i in range(runs)]
    run.record("pipeline", "pipeline.corpus_cpu_ms", "ms", "lower", cpu, note=note)
    # What an upload costs a worker: with the master (the default) and with every extra
    # format, as a ratio to the five sizes alone (issue 15: <= 2x), median over images.
    # all_formats: WebP and AVIF from this record on (WebP only before AVIF existed).
    for v, label in (("moocard_master", "master"), ("moocard_webp", "webp"), ("moocard_all", "all_formats")):
        if v not in next(iter(res.values())):
            continue
        per = [round(statistics.median(sorted(statistics.median(r[v + "_cpu"]) / statistics.median(r["moocard_cpu"])
                                              for r in res.values())), 3)]
        run.record("pipeline", f"pipeline.{label}.cpu_vs_sizes_only", "x", "lower", per,
                   note=note + f"; median over images of CPU ms ({v}) / CPU ms (5 sizes alone)")
        if ptot:
            run.record("pipeline", f"pipeline.{label}.vs_pyvips", "x", "lower", geomean_vs_pyvips(res, v, runs),
                       anchors={"parity": [1.0]}, note=note + f"; {v}")
    rss = [max(x for x in r["moocard_rss_kb"] if x) / 1024 for r in res.values() if any(r["moocard_rss_kb"])]
    prss = [r["pyvips_rss_kb"] / 1024 for r in res.values() if r.get("pyvips_rss_kb")]
    run.record("pipeline", "pipeline.peak_rss_mb_max", "MB", "lower", [round(max(rss), 1)],
               anchors={"pyvips": [round(max(prss), 1)] if prss else []}, note=note + "; max over images")
    for name, r in sorted(res.items()):
        run.record("pipeline", f"pipeline.ms.{name}", "ms", "lower", r["moocard"], anchors={"pyvips": r["pyvips"]})
        run.record("pipeline", f"pipeline.warm_ms.{name}", "ms", "lower", r["moocard_warm"],
                   anchors={"pyvips": r["pyvips"]})


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--repo", default=str(REPO))
    ap.add_argument("--as-commit", default="HEAD",
                    help="record as this commit (refused unless the code is identical to it)")
    ap.add_argument("--no-build", action="store_true", help="use the release binaries already built")
    a = ap.parse_args(argv)
    suites = a.suites.split(",")
    bad = set(suites) - set(SUITES) - set(OPT_IN)
    if bad:
        ap.error(f"unknown suites {bad}")
    work = setup()
    if not a.no_build:
        build(a.repo)
    bins = binaries(a.repo)
    run = Run("quick" if a.quick else "full", "release", repo=a.repo, rev=a.as_commit)
    print(f"bench/run: {run.facts['short']}{' (dirty)' if run.facts['dirty'] else ''} {run.mode}, "
          f"load {open('/proc/loadavg').read().split()[:3]}", flush=True)
    t0 = time.time()
    shared = work  # the writable copy of the shared bench (scripts, corpus, venv)
    missing = [k for k, b in bins.items() if not os.path.exists(b)]
    if missing:  # with --no-build: run what the binaries at hand allow
        print(f"bench/run: not built: {', '.join(missing)}; skipping what needs them", flush=True)
    avatar = "/avatar/" + subprocess.run([bins["serve_bench"], "--print-path"], capture_output=True, text=True,
                                         check=True).stdout.strip() if "serve_bench" not in missing else None
    if "ir" in suites:
        print("== ir: instructions per image and per request (callgrind)", flush=True)
        imgs = [work / "corpus" / n for n in deterministic.HISTORY_IMAGES] + \
               [deterministic.FIXTURES / n for n in deterministic.GATE_IMAGES]

        def emit(name, value, anchors=None, note=None):
            run.record("ir", name, "instructions", "lower", [value], kind="ir", anchors=anchors, note=note)

        deterministic.images(bins["moocard"], imgs if not a.quick else imgs[-4:], emit)
        if avatar:
            deterministic.requests(bins["serve_bench"], emit, n=500 if a.quick else 2000)
    if "pipeline" in suites:
        print("== pipeline: ms per image vs in-process pyvips", flush=True)
        pipeline(run, work, bins["moocard"], a.quick)
    if "serve" in suites and avatar:
        print("== serve: /avatar req/s vs nginx (serve-baseline.sh)", flush=True)
        serving.baseline_script(run, shared, bins["serve_bench"], avatar, work, 3 if a.quick else 5,
                                1 if a.quick else 3)
    if "scale" in suites and avatar:
        print("== scale: req/s and p99 at 1-256 clients, nginx alongside", flush=True)
        root = work / "scale-root"
        (root / "a").mkdir(parents=True, exist_ok=True)
        avatar_file = work / ".cache" / "avatar-20k.jpg"
        src = avatar_file if avatar_file.exists() else deterministic.SERVED
        (root / "a" / "avatar.jpg").write_bytes(src.read_bytes())
        serving.scalability(run, bins["serve_bench"], str(root), avatar, str(work), 2 if a.quick else 3,
                            1 if a.quick else 3)
    if "queue" in suites and "e2e" not in missing and "queue" not in missing:
        print("== queue: upload->ready latency, burst throughput (1 and 2 workers), queue overhead", flush=True)
        img = str(deterministic.FIXTURES / "photo-hubble.jpg")
        queue.e2e(run, bins["e2e"], img, 1 if a.quick else 3, 10 if a.quick else 20)
        if not a.quick:
            # Issue 14's burst: 100 distinct 12 MP uploads on 2 workers (peak RSS, vs pipeline).
            big = str(work / "corpus" / "p05_sunset_12mp_prog.jpg")
            # Anchor in the same run: the pipeline alone, two processes at once, 100 images,
            # right after each rep, so each rep has an anchor timed at the same machine speed
            # (on shared cores the speed drifts by more than the overhead measured).
            alone = []
            res = queue.e2e(run, bins["e2e"], big, 3, 50, workers=(2,), modes=("embedded",), tag=".12mp",
                            after_rep=lambda: alone.append(round(queue.pipeline_alone(bins["moocard"], big, 100, 2))))
            run.record("queue", "queue.12mp.pipeline_alone_per_min", "uploads/min", "higher", alone,
                       note="moocard thumbnail (master included) x100, 2 processes at once, after each burst rep")
            run.record("queue", "queue.12mp.embedded.w2.burst_vs_pipeline_alone", "x", "higher",
                       [round(b / a, 3) for b, a in zip(res[("embedded", 2)]["per_min"], alone)],
                       note="burst uploads/min of each rep / pipeline-alone uploads/min (2 at once) timed right after it")
        queue.noop(run, bins["queue"], 1 if a.quick else 3, 200 if a.quick else 500)
    if ("reads" in suites or "outage" in suites) and avatar:
        # Avatars as our pipeline makes them (128 and 512 px) from one corpus photo.
        out = work / "reads-avatars"
        subprocess.run([bins["moocard"], "thumbnail", str(work / "corpus" / "p13_fallenleaf_4mp_exif_canon.jpg"),
                        str(out)], check=True, stdout=subprocess.DEVNULL)
        dur, reps = (3, 1) if a.quick else (10, 3)
    if "reads" in suites and avatar:
        print("== reads: hot 128/512 px, 2,000 users, unknown hashes (every d=) vs nginx", flush=True)
        for px in (128, 512):
            serving.baseline_script(run, shared, bins["serve_bench"], f"{avatar}?s={px}", work, dur, reps,
                                    file=out / f"{px}.jpg", prefix=f"reads.hot{px}")
        reads.reads(run, bins["serve_bench"], out / "128.jpg", str(work), dur, reps)
    if "outage" in suites and avatar:
        print("== outage: MariaDB stopped under load (the server is started again)", flush=True)
        reads.outage(run, bins["serve_bench"], out / "128.jpg", str(work), dur, flood_secs=20 if a.quick else 60)
    print(f"bench/run: {run.count} figures appended to bench/history/ in {time.time() - t0:.0f} s", flush=True)
    page.write()
    return 0
