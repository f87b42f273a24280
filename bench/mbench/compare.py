"""`bench/compare A B`: which figures changed between two commits, beyond noise.

A and B are commit prefixes in the history (B defaults to the latest run's commit). For each
figure measured at both, the samples of each commit's latest run (of the same mode) are
compared: timed figures by the bootstrap 95% interval of the median ratio and Mann-Whitney,
called changed when the interval excludes 1 and the change is at least --min-effect;
instruction counts exactly. Exit status 0; the table is the answer.
"""

import argparse
import sys

from .history import load
from .stats import verdict


def latest_per_figure(recs, prefix, mode):
    out = {}
    for r in recs:
        if r["commit"].startswith(prefix) and (mode is None or r["mode"] == mode):
            out[r["figure"]] = r  # records are in date order: the last one wins
    return out


def compare(recs, a, b, mode="full", min_effect=0.03, only_changed=False, out=sys.stdout):
    old, new = latest_per_figure(recs, a, mode), latest_per_figure(recs, b, mode)
    if not old or not new:
        print(f"compare: no {mode or ''} records for {a if not old else b}", file=out)
        return []
    o0, n0 = next(iter(old.values())), next(iter(new.values()))
    print(f"old {o0['short']} {o0['subject'][:60]!r} run {o0['date']} ({o0['machine'].get('cpu')})", file=out)
    print(f"new {n0['short']} {n0['subject'][:60]!r} run {n0['date']} ({n0['machine'].get('cpu')})", file=out)
    if o0["machine"].get("cpu") != n0["machine"].get("cpu"):
        print("note: different CPU models; compare the vs_* ratios and instruction counts, not absolute times", file=out)
    rows = []
    print(f"\n{'figure':<44} {'old':>12} {'new':>12} {'new/old':>8} {'95% CI':>15} {'p':>6}  verdict", file=out)
    for fig in sorted(set(old) & set(new)):
        ro, rn = old[fig], new[fig]
        v = verdict(ro["samples"], rn["samples"], rn["better"], min_effect=min_effect, exact=rn["kind"] == "ir")
        rows.append((fig, v))
        if only_changed and v["change"] == "same":
            continue
        ci = f"{v['ci'][0]:.3f}-{v['ci'][1]:.3f}" if v["ci"] else "exact"
        p = f"{v['p']:.2g}" if v["p"] is not None else ""
        mark = {"worse": "WORSE", "better": "better", "same": "-"}[v["change"]]
        print(f"{fig:<44} {v['old']:>12.6g} {v['new']:>12.6g} {v['ratio']:>8.3f} {ci:>15} {p:>6}  {mark} "
              f"(n={len(ro['samples'])}/{len(rn['samples'])})", file=out)
    worse = [f for f, v in rows if v["change"] == "worse"]
    better = [f for f, v in rows if v["change"] == "better"]
    print(f"\n{len(rows)} figures: {len(worse)} worse, {len(better)} better, "
          f"{len(rows) - len(worse) - len(better)} within noise", file=out)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bench/compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new", nargs="?")
    ap.add_argument("--mode", default="full", help="full, quick or any")
    ap.add_argument("--min-effect", type=float, default=0.03, help="smallest relative change called (timed)")
    ap.add_argument("--changed", action="store_true", help="list only the figures that changed")
    a = ap.parse_args(argv)
    recs = load()
    new = a.new or (recs[-1]["commit"] if recs else "")
    compare(recs, a.old, new, None if a.mode == "any" else a.mode, a.min_effect, a.changed)
    return 0
