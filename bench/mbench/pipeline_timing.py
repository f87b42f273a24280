"""Pipeline wall time per image, moocard against in-process pyvips, rounds interleaved.

moocard runs four ways per round: `moocard thumbnail` (the five sizes only: the same work as the
anchor), as a worker runs an upload (`--master`: plus the sanitized 1024 px master), and with
every extra format (`--master --formats webp`: what a worker spends per upload with WebP
variants configured); and
`moocard_warm`: the five sizes timed inside one process on its third run (`--repeat 3`), warm
like a long-running worker and like the in-process anchor (no process start, no cold memory).

Runs under the benchmark venv's python (it has pyvips); imports the anchor from the shared
bench's `lib/thumb_inproc.py` so both do exactly what BASELINE.md describes. Each round runs
`moocard thumbnail IN OUT` as a process (start-up included, about 1 ms) and then pyvips in
this process, so load from other tenants hits both alike. Prints one JSON object:
{image: {"moocard": [ms...], "moocard_cpu": [ms...], "moocard_rss_kb": [..], "pyvips": [ms...]}}.

    python -m mbench.pipeline_timing --bin BIN --lib SHARED/lib --runs 3 IMAGE...
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


# name in the output -> extra arguments of `moocard thumbnail`
VARIANTS = {"moocard": [], "moocard_master": ["--master"], "moocard_webp": ["--master", "--formats", "webp"],
            "moocard_all": ["--master", "--formats", "webp,avif"]}


def run_moocard(binary, image, outdir, args=()):
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "thumbnail", *args, image, outdir], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    if status != 0:
        raise RuntimeError(f"moocard thumbnail {image} failed ({status})")
    # ru_maxrss is not used: see peak_rss_kb.
    return wall, (ru.ru_utime + ru.ru_stime) * 1000, None


def run_warm(binary, image, outdir, repeat=3):
    """Wall ms of the last of `repeat` runs inside one `moocard thumbnail` process:
    read and process, warm (allocator, code and page cache), as a long-running worker runs a
    job and as the in-process pyvips anchor is timed."""
    out = subprocess.run([binary, "thumbnail", "--repeat", str(repeat), image, outdir],
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    return float([ln for ln in out.splitlines() if ln.startswith("run_ms=")][-1].split("=", 1)[1])


def peak_rss_kb(argv):
    """Peak RSS of `argv` in KB, read by GNU time. Not wait4's ru_maxrss: a child forked from
    this process counts this process's resident pages until it execs (pyvips has hundreds of
    MB here), which made moocard and pyvips both read 350.8 MB."""
    with tempfile.NamedTemporaryFile("r") as out:
        r = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out.name, *argv], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        return int(out.read().split()[-1]) if r.returncode == 0 else None


def pyvips_rss(lib, image):
    """Peak RSS of one pyvips run in a fresh interpreter (interpreter and libvips included)."""
    with tempfile.TemporaryDirectory() as d:
        return peak_rss_kb([sys.executable, f"{lib}/thumb_inproc.py", "once", "pyvips", image, d])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--lib", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-anchor", action="store_true")
    ap.add_argument("images", nargs="+")
    a = ap.parse_args()
    anchor = None
    if not a.no_anchor:
        sys.path.insert(0, a.lib)
        try:
            import thumb_inproc

            thumb_inproc.tool_setup("pyvips")
            anchor = thumb_inproc.TOOLS["pyvips"]
        except ImportError as e:
            print(f"pyvips anchor unavailable: {e}", file=sys.stderr)
    out = {}
    with tempfile.TemporaryDirectory(prefix="mbench-thumb.") as d:
        for img in a.images:
            name = os.path.splitext(os.path.basename(img))[0]
            r = out[name] = {"pyvips": [], "moocard_warm": []}
            for v in VARIANTS:
                r.update({v: [], f"{v}_cpu": [], f"{v}_rss_kb": []})
            run_moocard(a.bin, img, f"{d}/{name}")  # warm-up: page cache, first-touch
            if anchor:
                anchor(img)
            for _ in range(a.runs):
                for v, args in VARIANTS.items():
                    wall, cpu, rss = run_moocard(a.bin, img, f"{d}/{name}.{v}", args)
                    r[v].append(round(wall, 2))
                    r[f"{v}_cpu"].append(round(cpu, 2))
                    r[f"{v}_rss_kb"].append(rss)
                r["moocard_warm"].append(round(run_warm(a.bin, img, f"{d}/{name}.warm"), 2))
                if anchor:
                    t0 = time.perf_counter()
                    anchor(img)
                    r["pyvips"].append(round((time.perf_counter() - t0) * 1000, 2))
            for v, args in VARIANTS.items():
                r[f"{v}_rss_kb"] = [peak_rss_kb([a.bin, "thumbnail", *args, img, f"{d}/{name}.rss"])]
            if anchor:
                r["pyvips_rss_kb"] = pyvips_rss(a.lib, img)
            med = {v: sorted(r[v])[len(r[v]) // 2] for v in VARIANTS}
            print(f"  {name}: moocard {med['moocard']:.0f} ms (with master {med['moocard_master']:.0f}, "
                  f"all formats {med['moocard_all']:.0f}, warm {sorted(r['moocard_warm'])[len(r['moocard_warm']) // 2]:.0f})"
                  + (f", pyvips {sorted(r['pyvips'])[len(r['pyvips']) // 2]:.0f} ms" if anchor else ""),
                  file=sys.stderr, flush=True)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
