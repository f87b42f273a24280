"""A/B of moocard binaries: `moocard thumbnail` (five sizes, a fresh process each) for every
binary, then in-process pyvips, interleaved per image and round, so a noisy shared machine
hits all of them alike. For a change that cannot be two commits of one suite run (a machine
change in between, a build flag). Prints per-image medians and, per binary, the geometric
mean over images of moocard / pyvips in each round.

    cd bench && /var/tmp/moocard-bench/.venv/bin/python -m mbench.ab --lib /var/tmp/moocard-bench/lib \\
        --rounds 3 BIN_A BIN_B -- /var/tmp/moocard-bench/corpus/*
"""

import argparse
import os
import sys
import tempfile
import time

from .pipeline_timing import run_moocard
from .stats import median
from .suite import geomean_vs_pyvips


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", required=True, help="the shared bench's lib/ (thumb_inproc.py)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("bins", nargs="+", help="binaries, then -- and the images")
    # argparse would take the images after `--` as more binaries: split there first.
    argv = sys.argv[1:]
    if "--" not in argv:
        ap.error("give the images after --")
    cut = argv.index("--")
    a, images = ap.parse_args(argv[:cut]), argv[cut + 1:]
    if not images:
        ap.error("no images after --")
    sys.path.insert(0, a.lib)
    import thumb_inproc

    thumb_inproc.tool_setup("pyvips")
    anchor = thumb_inproc.TOOLS["pyvips"]
    res = {}
    with tempfile.TemporaryDirectory(prefix="mbench-ab.") as d:
        for img in images:
            r = res[os.path.basename(img)] = {b: [] for b in a.bins} | {"pyvips": []}
            for b in a.bins:  # warm-up: page cache
                run_moocard(b, img, f"{d}/w")
            anchor(img)
            for _ in range(a.rounds):
                for b in a.bins:
                    r[b].append(run_moocard(b, img, f"{d}/o")[0])
                t0 = time.perf_counter()
                anchor(img)
                r["pyvips"].append((time.perf_counter() - t0) * 1000)
            med = {k: median(v) for k, v in r.items()}
            print(os.path.basename(img), " ".join(f"{med[b]:.1f}" for b in a.bins), f"pyvips {med['pyvips']:.1f} ms",
                  flush=True)
    for b in a.bins:
        gm = geomean_vs_pyvips(res, b, a.rounds)
        print(f"{b}: geomean vs pyvips per round", " ".join(f"{g:.3f}" for g in gm))


if __name__ == "__main__":
    main()
