"""The deterministic suite: instructions per image and per request (callgrind).

Two fixed sets: the history's (real photos from the shared corpus: small, medium, 20 MP,
progressive, PNG with alpha, GIF, WebP) and the CI gate's (small files in fixtures/images, so
CI needs no corpus). Requests: the hot `/avatar` 200 and 304 and an unknown hash, with nginx
answering 200, 304 and 404 for the same file as the anchor.
"""

import os
import shutil
import signal
import subprocess
import tempfile

from .callgrind import free_port, image_ir, nginx_argv, requests_ir
from .history import REPO

HISTORY_IMAGES = [
    "s01_astronaut_512_skimage.png",  # small: 0.3 MP PNG
    "p13_fallenleaf_4mp_exif_canon.jpg",  # medium: 4 MP baseline JPEG with EXIF
    "p01_kleiber_20mp.jpg",  # 20 MP baseline JPEG
    "p05_sunset_12mp_prog.jpg",  # progressive JPEG (no DCT-domain skip of entropy decoding)
    "d09_cups_circle_alpha_1mp.png",  # PNG with real alpha: PNG out, oxipng
    "d08_eveningglow_1mp.gif",  # GIF
    "d07_dragonfly_13mp.webp",  # lossy WebP, full decode
]
GATE_IMAGES = ["photo-hubble.jpg", "p3.png", "lossy.webp", "animated.gif"]
FIXTURES = REPO / "fixtures" / "images"
# Served for the request counts, in the gate and in the history alike; user-space
# instructions barely depend on the body's size (the kernel copies it).
SERVED = FIXTURES / "p3.jpg"
UNKNOWN = "/avatar/" + "0" * 32


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def images(binary, paths, emit):
    for p in paths:
        emit(f"ir.image.{stem(p)}", image_ir(binary, str(p)), None)


def requests(bench_bin, emit, n=2000, warm=200, anchor=True, windows=1):
    """Counts for moocard's serve_bench (the real HttpService over SQLite) and, when nginx
    is installed and `anchor`, nginx serving the same file."""
    avatar = "/avatar/" + subprocess.run([bench_bin, "--print-path"], capture_output=True, text=True,
                                         check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="mbench-root.") as root:
        os.makedirs(f"{root}/a")
        shutil.copy(SERVED, f"{root}/a/avatar.jpg")
        port = free_port()
        # One tokio worker: with two, the count depends on how often the idle one is woken
        # and searches for work, which follows timing, not code.
        moo = requests_ir([bench_bin, "--listen", f"127.0.0.1:{port}", "--root", root], port,
                          [("304", avatar, True), ("200", avatar, False), ("unknown", UNKNOWN, False)], n, warm,
                          env={"TOKIO_WORKER_THREADS": "1",
                               # A hot entry re-read from the store when its TTL passes
                               # would fall into a counted window by wall time.
                               "MOOCARD_AVATARS__CACHE_TTL_SECS": "86400",
                               # Nor the metrics drain (every 5 s by default): on a loaded
                               # machine a callgrind window outlasts it, and then every window
                               # held one (CI, 2026-12-07: 304 +7%).
                               "MOOCARD_SERVER__METRICS_UPKEEP_SECS": "86400",
                               # Nor a background WAL checkpoint (every 500 ms by default).
                               "MOOCARD_DATABASE__SQLITE_CHECKPOINT_MS": "86400000"}, windows=windows)
        ng = {}
        if anchor and shutil.which("nginx"):
            port = free_port()
            ng = requests_ir(nginx_argv(f"{root}/ng", root, port), port,
                             [("304", "/a/avatar.jpg", True), ("200", "/a/avatar.jpg", False),
                              ("unknown", "/a/unknown.jpg", False)], n, warm, stop=signal.SIGTERM)
    for kind, (ir, status) in moo.items():
        emit(f"ir.request.{kind}", round(ir), {"nginx": [round(ng[kind][0])]} if kind in ng else None,
             note=f"status {status}; {n} requests on one keep-alive connection, one tokio worker"
             + (f"; smallest of {windows} windows" if windows > 1 else ""))
