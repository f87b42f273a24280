#!/usr/bin/env python3
"""avif-settings.py - which rav1e settings save bytes at equal DSSIM (issue 15), over the
opaque images of the shared corpus at 512 px, with workers/examples/avif_probe.rs.

Input per image: the shared bench's reference square (lib/quality.py refs: Pillow full
resolution Lanczos), so every setting compresses the same pixels. Each setting is encoded
at several qualities; bytes are interpolated (log-log) to the DSSIM that ravif at speed 10
(the pipeline's encoder before this probe) reaches at q85 (the default `avif_quality`) on
that image, and summarised as a geometric mean over images of bytes / that baseline's
bytes. Also prints the encode CPU seconds each setting took at q85 over all images.

    cargo build --release -p moocard-worker --features avif-asm --example avif_probe
    /var/tmp/moocard-bench/.venv/bin/python bench/avif-settings.py target/release/examples/avif_probe
"""
import concurrent.futures as cf
import glob
import os
import subprocess
import sys
import tempfile

WORK = os.environ.get("MOOCARD_BENCH_WORK", "/var/tmp/moocard-bench")
sys.path.insert(0, os.path.join(WORK, "lib"))
import quality  # noqa: E402
from mbench import stats  # noqa: E402

# name -> (speed, chroma, tune, depth); chroma "ravif" means ravif's own encoder.
SETTINGS = {
    "ravif s10 (444 psy 8-bit)": ("10", "ravif", "-", "-"),
    "s10 444 psy 8": ("10", "444", "psy", "8"),
    "s10 420 psy 8": ("10", "420", "psy", "8"),
    "s10 420 psnr 8": ("10", "420", "psnr", "8"),
    "s10 420 psy 10": ("10", "420", "psy", "10"),
    "s10 444 psy 10": ("10", "444", "psy", "10"),
    "s9 420 psy 8": ("9", "420", "psy", "8"),
    "s8 420 psy 8": ("8", "420", "psy", "8"),
    "s8 444 psy 8": ("8", "444", "psy", "8"),
}
SETTINGS = {k: v for k, v in SETTINGS.items()
            if not os.environ.get("ONLY") or k in os.environ["ONLY"].split(";")}
QUALITIES = [int(q) for q in os.environ.get("QUALITIES", "70,78,85,90,94").split(",")]
BASE, BASE_Q = "ravif s10 (444 psy 8-bit)", 85
DSSIM = os.path.expanduser("~/.cargo/bin/dssim")


def main():
    from PIL import Image
    probe = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="avif-settings.")
    refs = os.path.join(WORK, "refs")
    imgs = sorted(glob.glob(os.path.join(WORK, "corpus", "*")))
    quality.refs(refs, imgs)
    names = [quality.name_of(p) for p in imgs]
    opaque = [n for n in names if Image.open(os.path.join(refs, n, "512.png")).mode == "RGB"]
    pngs = [os.path.join(refs, n, "512.png") for n in opaque]

    def one(job):
        s, q = job
        out = os.path.join(tmp, f"{abs(hash(s))}_{q}")
        os.makedirs(out)
        speed, chroma, tune, depth = SETTINGS[s]
        lines = subprocess.run([probe, out, str(q), speed, chroma, tune, depth, *pngs],
                               check=True, capture_output=True, text=True).stdout.split("\n")
        got = {}
        for line in filter(None, lines):
            n, size, cpu = line.split("\t")
            avif = os.path.join(out, n + ".avif")
            Image.open(avif).save(avif + ".png")
            ref = os.path.join(refs, n, "512.png")
            d = subprocess.run([DSSIM, ref, avif + ".png"], capture_output=True, text=True,
                               check=True)
            got[n] = (int(size), float(d.stdout.split()[0]), float(cpu))
        return job, got

    res = {}
    jobs = [(s, q) for s in SETTINGS for q in sorted(set(QUALITIES + [BASE_Q]))]
    with cf.ThreadPoolExecutor(os.cpu_count()) as ex:
        for (s, q), got in ex.map(one, jobs):
            for n, v in got.items():
                res[(n, s, q)] = v
    qs = sorted(set(QUALITIES + [BASE_Q]))

    def bytes_at(n, s, target):
        return stats.loglog_at(sorted((res[(n, s, q)][1], res[(n, s, q)][0]) for q in qs), target)

    print("setting\tbytes_at_equal_dssim_vs_ravif_s10\timages\tcpu_s_q85_all_images")
    for s in SETTINGS:
        ratios = []
        for n in opaque:
            target = res[(n, BASE, BASE_Q)][1]
            a, b = bytes_at(n, BASE, target), bytes_at(n, s, target)
            if a and b:
                ratios.append(b / a)
        g = stats.geomean(ratios)
        cpu = sum(res[(n, s, BASE_Q)][2] for n in opaque)
        print(f"{s}\t{g:.3f}\t{len(ratios)}\t{cpu:.2f}", flush=True)


if __name__ == "__main__":
    main()
