#!/usr/bin/env python3
"""formats.py - bytes and DSSIM of moocard's JPEG, WebP and AVIF variants against libvips
JPEG q80, over the whole shared corpus (issue 15's "bytes at DSSIM" goals).

For every image of $MOOCARD_BENCH_WORK/corpus (bench/setup.sh builds it) at one size
(default 512 px):
  - the anchor: `vipsthumbnail -s NxN -m centre` to JPEG Q=80 (optimize_coding, strip), as
    ../shared/bench/thumb-baseline.sh makes it (PNG for inputs with transparency);
  - moocard: `moocard thumbnail --formats webp,avif` once per quality pair;
  - DSSIM of each against the shared bench's reference square (lib/quality.py refs: Pillow
    full-resolution Lanczos, independent of every tool), WebP/AVIF decoded by Pillow first.
Prints one TSV row per image and output, then a summary per format and quality: the
geometric mean over images of bytes / libvips bytes, and the mean DSSIM next to the mean
DSSIM of our own JPEG (the bound the goals set). Opaque inputs and inputs with
transparency are summarised apart (the latter's anchor is a PNG).

    bench/formats.py target/release/moocard [--size 512] [--webp 70,75,80] [--avif 50,60,70]
"""
import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

WORK = os.environ.get("MOOCARD_BENCH_WORK", "/var/tmp/moocard-bench")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def dssim(ref, files):
    """DSSIM of each file against ref (the `dssim` CLI takes PNG/JPEG of equal size)."""
    binary = shutil.which("dssim") or os.path.expanduser("~/.cargo/bin/dssim")
    out = run([binary, ref] + files).stdout
    got = {}
    for line in out.splitlines():
        score, path = line.split("\t", 1)
        got[path.strip()] = float(score)
    return [got[f] for f in files]


def to_png(path, tmp):
    from PIL import Image
    # Unique per output: <quality dir>_<image>_<size>_<ext>.png
    parts = os.path.relpath(path, tmp).replace(os.sep, "_").replace(".", "_")
    png = os.path.join(tmp, "decoded", parts + ".png")
    os.makedirs(os.path.dirname(png), exist_ok=True)
    Image.open(path).save(png)
    return png


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("moocard")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--webp", default="75", help="WebP qualities, comma-separated")
    ap.add_argument("--avif", default="60", help="AVIF qualities, comma-separated (paired with --webp)")
    ap.add_argument("--avif-speed", type=int, default=None)
    ap.add_argument("--images", default="", help="only these corpus files (default: all)")
    a = ap.parse_args()
    webp_q = [int(q) for q in a.webp.split(",")]
    avif_q = [int(q) for q in a.avif.split(",")]
    pairs = [(webp_q[min(i, len(webp_q) - 1)], avif_q[min(i, len(avif_q) - 1)])
             for i in range(max(len(webp_q), len(avif_q)))]
    corpus = os.path.join(WORK, "corpus")
    images = sorted(f for f in os.listdir(corpus) if f.rsplit(".", 1)[-1] in ("jpg", "png", "webp", "gif"))
    if a.images:
        images = [i for i in images if i in a.images.split(",")]
    py = os.path.join(WORK, ".venv", "bin", "python")
    quality_py = os.path.join(WORK, "lib", "quality.py")
    refdir = os.path.join(WORK, ".cache", "ref")
    paths = [os.path.join(corpus, i) for i in images]
    run([py, quality_py, "refs", refdir] + paths)
    alpha = {}
    for line in run([py, quality_py, "probe"] + paths).stdout.splitlines():
        f = line.split("\t")
        alpha[f[0]] = f[4] == "1"
    s = a.size
    rows = []  # (image, output, bytes, dssim)
    with tempfile.TemporaryDirectory(prefix="formats.") as tmp:
        for img in images:
            name = img.rsplit(".", 1)[0]
            ref = os.path.join(refdir, name, f"{s}.png")
            src = os.path.join(corpus, img)
            ext = "png" if alpha[name] else "jpg"
            opt = "compression=9,filter=all,strip" if alpha[name] else "Q=80,strip,optimize_coding"
            vips = os.path.join(tmp, "vips", name, f"{s}.{ext}")
            os.makedirs(os.path.dirname(vips), exist_ok=True)
            run(["vipsthumbnail", src, "-s", f"{s}x{s}", "-m", "centre", "-o", f"{vips}[{opt}]"])
            outs = [("libvips", vips, vips)]
            for wq, aq in pairs:
                d = os.path.join(tmp, f"m{wq}_{aq}", name)
                cmd = [a.moocard, "thumbnail", "--formats", "webp,avif",
                       "--webp-quality", str(wq), "--avif-quality", str(aq), src, d]
                if a.avif_speed:
                    cmd += ["--avif-speed", str(a.avif_speed)]
                run(cmd)
                if (wq, aq) == pairs[0]:
                    base = os.path.join(d, f"{s}.{ext}")
                    outs.append(("moocard-" + ext, base, base))
                for fmt, q in (("webp", wq), ("avif", aq)):
                    f = os.path.join(d, f"{s}.{fmt}")
                    outs.append((f"{fmt}-q{q}", f, to_png(f, tmp)))
            scores = dssim(ref, [o[2] for o in outs])
            for (label, f, _), sc in zip(outs, scores):
                rows.append((name, label, os.path.getsize(f), sc))
                print(f"{name}\t{label}\t{os.path.getsize(f)}\t{sc:.6f}", flush=True)
    summarize(rows, alpha)


def summarize(rows, alpha):
    by = {}
    for name, label, size, sc in rows:
        by.setdefault(name, {})[label] = (size, sc)
    for kind, pick in (("opaque (anchor: libvips JPEG q80)", False), ("with transparency (anchor: libvips PNG)", True)):
        names = [n for n in by if alpha[n] == pick]
        if not names:
            continue
        labels = sorted({lb for n in names for lb in by[n]} - {"libvips"})
        print(f"\n{kind}, {len(names)} images, size {sys.argv and ''}")
        print("output\tbytes/libvips (geomean)\tmedian bytes\tmean DSSIM x1000\tmedian DSSIM x1000")
        for lb in ["libvips"] + labels:
            have = [n for n in names if lb in by[n]]
            ratio = geomean([by[n][lb][0] / by[n]["libvips"][0] for n in have])
            sizes = [by[n][lb][0] for n in have]
            scores = [by[n][lb][1] * 1000 for n in have]
            print(f"{lb}\t{ratio:.3f}\t{statistics.median(sizes):.0f}\t"
                  f"{statistics.mean(scores):.3f}\t{statistics.median(scores):.3f}")
        ours = "moocard-png" if pick else "moocard-jpg"
        if sum(1 for lb in labels if lb.startswith("webp-q")) < 2:
            continue  # one quality: nothing to interpolate between
        for bound, what in ((ours, "our own JPEG/PNG"), ("libvips", "libvips'")):
            print(f"bytes / libvips at each image's DSSIM of {what} output (interpolated between "
                  f"qualities; '>=' images needed more than the highest quality swept):")
            for fmt in ("webp", "avif"):
                ratios, above = [], 0
                for n in names:
                    pts = sorted((sc, size) for lb, (size, sc) in by[n].items() if lb.startswith(fmt + "-q"))
                    b, clipped = bytes_at(pts, by[n][bound][1])
                    above += clipped
                    ratios.append(b / by[n]["libvips"][0])
                print(f"  {fmt}\t{geomean(ratios):.3f}\t(>= on {above} of {len(names)})")


def bytes_at(points, target):
    """Bytes at DSSIM `target` on one image's (dssim, bytes) curve, log-linear in bytes.
    Returns (bytes, 1 if even the best quality swept was worse than target)."""
    if target <= points[0][0]:
        return points[0][1], 1
    if target >= points[-1][0]:
        return points[-1][1], 0
    for (d0, b0), (d1, b1) in zip(points, points[1:]):
        if d0 <= target <= d1:
            f = 0 if d1 == d0 else (target - d0) / (d1 - d0)
            return math.exp(math.log(b0) + f * (math.log(b1) - math.log(b0))), 0
    return points[-1][1], 0


if __name__ == "__main__":
    main()
