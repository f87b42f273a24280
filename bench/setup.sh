#!/usr/bin/env bash
# bench/setup.sh - install what bench/run needs on a fresh Debian machine, idempotently:
# valgrind, nginx, wrk, libvips (pyvips' library), the corpus' build tools, and a venv with
# pyvips in $MOOCARD_BENCH_WORK (default /var/tmp/moocard-bench), where the shared bench's
# scripts are copied (the shared folder may be read-only) and its corpus is built once.
#   bench/setup.sh [--gate]    --gate: only what the CI gate needs (valgrind)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${MOOCARD_SHARED_BENCH:-$REPO/../shared/bench}
[ -d "$SHARED" ] || SHARED=/work/shared/bench
# Not under $HOME: nginx's workers (user nobody) serve the anchors' files from here, and
# root's home is 0700 (they answered 403, which a benchmark must not compare against).
WORK=${MOOCARD_BENCH_WORK:-/var/tmp/moocard-bench}

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have valgrind || need+=(valgrind)
if [ "${1:-}" != --gate ]; then
  have nginx || need+=(nginx-light)
  have wrk || need+=(wrk)
  have vipsthumbnail || need+=(libvips-tools)
  have djpeg || need+=(libjpeg-turbo-progs)
  have exiftool || need+=(libimage-exiftool-perl)
  have cwebp || need+=(webp)
  [ -x /usr/bin/convert ] || need+=(imagemagick)
  have taskset || need+=(util-linux)
  have curl || need+=(curl)
  [ -x /usr/bin/time ] || need+=(time)   # peak RSS of the pipeline runs (GNU time)
  have nasm || need+=(nasm)   # mozjpeg's SIMD, as in .ci/run
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "bench/setup.sh: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
[ "${1:-}" = --gate ] && exit 0

mkdir -p "$WORK" && chmod 755 "$WORK"
cp -r "$SHARED/." "$WORK/" && chmod -R u+w "$WORK"
[ -x "$WORK/.venv/bin/python" ] || python3 -m venv "$WORK/.venv"
"$WORK/.venv/bin/python" -c 'import pyvips, skimage' 2>/dev/null \
  || "$WORK/.venv/bin/pip" install -q pyvips pillow numpy scikit-image
[ -f "$WORK/corpus/p01_kleiber_20mp.jpg" ] || (cd "$WORK" && ./build-corpus.sh >&2)
# kornelski's dssim for formats.py, webp-settings.py and avif-settings.py (bytes at equal
# DSSIM, issue 15); about a minute to build.
command -v dssim >/dev/null || [ -x "$HOME/.cargo/bin/dssim" ] || cargo install -q --locked dssim@3.5.1 >&2
echo "$WORK"
