"""The CI gate: instructions per image and per request against `bench/baseline.json`.

    bench/gate                 measure, compare with the baseline, exit 1 on a regression
    bench/gate --record        measure and write bench/baseline.json (commit it: a reviewed step)
    bench/gate --measured F    compare an earlier measurement (F, from --save) instead

Exit 0: no figure grew beyond its threshold; 1: a regression (or a figure went missing);
2: the baseline was recorded on a machine whose SIMD level differs (counts are not
comparable there; re-record on this kind of machine).

Deterministic by construction: callgrind counts user-space instructions, whatever else the
machine is doing; valgrind hides AVX-512, so machines with AVX2 (Intel or AMD) run the same
SIMD paths under it. The baseline records the CPU model and ISA level; a different model
with the same level is compared (and said), a different level is refused.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import deterministic
from .history import BENCH, REPO, commit_facts, machine_facts

BASELINE = BENCH / "baseline.json"
# Growth allowed before the gate fails, in percent. Images run one process with fixed
# threads and repeat to the instruction (0.0001% between an incremental build and CI's).
# Requests are counted in 10 windows and the smallest kept: the server's periodic work (a
# metrics drain every 5 s) falls into a window by wall time (one window: 147,831 then 158,297
# for the same 304 build); the smallest window repeated within 0.25% (dev) and 0.07% (release).
THRESHOLD_PCT = {"ir.image.": 1.0, "ir.request.": 3.0}
# The gate counts the dev-profile binaries that `cargo test --workspace` has just built in
# CI: no extra build. An optimised build of this dependency tree costs several minutes of
# both cores (bench/README.md), more than the gate's whole budget. Unoptimised counts weigh
# our code and the codecs differently from release, but they are as repeatable, and a
# change that adds work (another pass, a copy, a bigger search) adds instructions in both.
# `--profile release` gates the release binaries instead (a baseline of the same profile).
PROFILE = "dev"


def threshold(figure, thresholds):
    return next((v for k, v in thresholds.items() if figure.startswith(k)), 1.0)


def build(profile):
    """Builds (or finds up to date) the two binaries the gate runs."""
    subprocess.run(["cargo", "build", "--profile", profile, "-p", "moocard-worker", "-p", "moocard",
                    "--bin", "moocard", "--example", "serve_bench"], cwd=REPO, check=True)
    d = REPO / "target" / ("debug" if profile == "dev" else profile)
    return str(d / "moocard"), str(d / "examples" / "serve_bench")


def measure(profile=PROFILE):
    moocard, serve_bench = build(profile)
    figures = {}

    def emit(name, value, anchors=None, note=None):
        figures[name] = value
        print(f"  {name}: {value:,}", flush=True)

    t = time.time()
    deterministic.images(moocard, [deterministic.FIXTURES / f for f in deterministic.GATE_IMAGES], emit)
    deterministic.requests(serve_bench, emit, n=1000, warm=100, anchor=False, windows=10)
    print(f"  measured in {time.time() - t:.0f} s", flush=True)
    return {"machine": machine_facts(), "profile": profile, "figures": figures}


def compare(measured, baseline, out=sys.stdout):
    """Returns the exit code and prints one line per figure."""
    bm, mm = baseline["machine"], measured["machine"]
    if bm.get("isa") != mm.get("isa") or baseline.get("profile") != measured.get("profile"):
        print(f"gate: baseline is {bm.get('isa')}/{baseline.get('profile')}, this run {mm.get('isa')}/"
              f"{measured.get('profile')}: counts are not comparable; re-record with bench/gate --record",
              file=out)
        return 2
    if bm.get("cpu") != mm.get("cpu"):
        print(f"gate: note: baseline CPU {bm.get('cpu')!r}, this one {mm.get('cpu')!r} (same ISA level)", file=out)
    thresholds = baseline.get("threshold_pct", THRESHOLD_PCT)
    code = 0
    print(f"{'figure':<28} {'baseline':>14} {'now':>14} {'change':>8}  limit", file=out)
    for fig, old in sorted(baseline["figures"].items()):
        new = measured["figures"].get(fig)
        lim = threshold(fig, thresholds)
        if new is None:
            print(f"{fig:<28} {old:>14,} {'missing':>14}", file=out)
            code = 1
            continue
        pct = (new / old - 1) * 100
        bad = pct > lim
        code = 1 if bad else code
        print(f"{fig:<28} {old:>14,} {new:>14,} {pct:>+7.2f}%  +{lim:g}%{'  REGRESSION' if bad else ''}", file=out)
    for fig in sorted(set(measured["figures"]) - set(baseline["figures"])):
        print(f"{fig:<28} {'(new)':>14} {measured['figures'][fig]:>14,}", file=out)
    print("gate: " + ("FAILED: instructions grew beyond the limit (if intended, re-record the baseline "
                      "with bench/gate --record and commit it)" if code else "ok"), file=out)
    return code


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench/gate", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", action="store_true", help="write the baseline from this measurement")
    ap.add_argument("--baseline", default=str(BASELINE))
    ap.add_argument("--measured", help="compare this saved measurement instead of measuring")
    ap.add_argument("--save", help="also write the measurement here")
    ap.add_argument("--history", action="store_true", help="also append the counts to bench/history (mode gate)")
    ap.add_argument("--as-commit", default="HEAD", help="with --history: record as this commit (same code)")
    ap.add_argument("--profile", default=PROFILE, help="cargo profile of the binaries to count (default dev)")
    a = ap.parse_args(argv)
    measured = json.load(open(a.measured)) if a.measured else measure(a.profile)
    if a.save:
        Path(a.save).parent.mkdir(parents=True, exist_ok=True)
        json.dump(measured, open(a.save, "w"), indent=1)
    if a.history:
        from .history import Run

        run = Run("gate", measured["profile"], rev=a.as_commit)
        run.machine = measured["machine"]
        for fig, v in sorted(measured["figures"].items()):
            run.record("ir", fig, "instructions", "lower", [v], kind="ir",
                       note=f"bench/gate, {measured['profile']} profile binaries")
    if a.record:
        facts = commit_facts()
        rec = {**measured, "commit": facts["commit"], "dirty": facts["dirty"],
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "threshold_pct": THRESHOLD_PCT}
        with open(a.baseline, "w") as f:
            json.dump(rec, f, indent=1, sort_keys=True)
            f.write("\n")
        print(f"gate: wrote {os.path.relpath(a.baseline)}; review and commit it")
        return 0
    if not os.path.exists(a.baseline):
        print(f"gate: no baseline at {a.baseline}; record one with bench/gate --record", file=sys.stderr)
        return 2
    return compare(measured, json.load(open(a.baseline)))
