#!/usr/bin/env python3
"""webp-settings.py - which libwebp settings save bytes at equal DSSIM (issue 15), over the
opaque images of the shared corpus at 512 px, with the cwebp CLI (same libwebp family as the
`webp` crate's bundled one).

Input per image: the shared bench's reference square (lib/quality.py refs: Pillow full
resolution Lanczos), so every setting compresses the same pixels. Each setting is encoded at
q70..95; bytes are interpolated (log-log) to the DSSIM that method 4 (moocard's variant
setting) reaches at q80 on that image, and summarised as a geometric mean over images of
bytes / method-4 bytes. Also prints the CPU seconds each setting took.

    /var/tmp/moocard-bench/.venv/bin/python bench/webp-settings.py   (after bench/setup.sh)
"""
import concurrent.futures as cf
import glob
import os
import resource
import subprocess
import sys
import tempfile

WORK = os.environ.get("MOOCARD_BENCH_WORK", "/var/tmp/moocard-bench")
sys.path.insert(0, os.path.join(WORK, "lib"))
import quality  # noqa: E402
from mbench import stats  # noqa: E402

SETTINGS = {
    "m4": ["-m", "4"],
    "m6": ["-m", "6"],
    "m4 sharp_yuv": ["-m", "4", "-sharp_yuv"],
    "m6 sharp_yuv": ["-m", "6", "-sharp_yuv"],
    "m6 sharp_yuv af": ["-m", "6", "-sharp_yuv", "-af"],
    "m4 sns25": ["-m", "4", "-sns", "25"],
}
QUALITIES = [70, 75, 80, 85, 90, 95]
DSSIM = os.path.expanduser("~/.cargo/bin/dssim")


def main():
    from PIL import Image
    tmp = tempfile.mkdtemp(prefix="webp-settings.")
    refs = os.path.join(WORK, "refs")
    imgs = sorted(glob.glob(os.path.join(WORK, "corpus", "*")))
    quality.refs(refs, imgs)
    names = [quality.name_of(p) for p in imgs]
    opaque = [n for n in names if Image.open(os.path.join(refs, n, "512.png")).mode == "RGB"]

    def one(job):
        n, s, q = job
        ref = os.path.join(refs, n, "512.png")
        out = os.path.join(tmp, f"{s.replace(' ', '_')}_{q}_{n}.webp")
        subprocess.run(["cwebp", "-quiet", "-q", str(q), *SETTINGS[s], ref, "-o", out], check=True)
        Image.open(out).save(out + ".png")
        d = subprocess.run([DSSIM, ref, out + ".png"], capture_output=True, text=True, check=True)
        return job, os.path.getsize(out), float(d.stdout.split()[0])

    res = {}
    jobs = [(n, s, q) for n in opaque for s in SETTINGS for q in QUALITIES]
    with cf.ThreadPoolExecutor(os.cpu_count()) as ex:
        for job, size, d in ex.map(one, jobs):
            res[job] = (size, d)

    def bytes_at(n, s, target):
        return stats.loglog_at(sorted((res[(n, s, q)][1], res[(n, s, q)][0]) for q in QUALITIES), target)

    def cpu(s, n):
        ref = os.path.join(refs, n, "512.png")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(["cwebp", "-quiet", "-q", "82", *SETTINGS[s], ref, "-o", os.devnull], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    print("setting\tbytes_at_equal_dssim_vs_m4\timages\tcpu_s_q82_all_images")
    for s in SETTINGS:
        ratios = []
        for n in opaque:
            target = res[(n, "m4", 80)][1]
            a, b = bytes_at(n, "m4", target), bytes_at(n, s, target)
            if a and b:
                ratios.append(b / a)
        g = stats.geomean(ratios)
        print(f"{s}\t{g:.3f}\t{len(ratios)}\t{sum(cpu(s, n) for n in opaque):.2f}")


if __name__ == "__main__":
    main()
