"""The history: one JSON record per figure per run in `bench/history/<suite>.jsonl`.

A record carries the commit, the run's date, the machine's facts, the load average when the
figure was taken, the figure's name, unit and direction, every sample, and the samples of the
anchors (nginx, pyvips) measured in the same run.
"""

import json
import os
import platform
import subprocess
import time
from pathlib import Path

from .stats import median

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
HISTORY = BENCH / "history"


def git(*args, cwd=REPO):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


# What a build measures: a tree that differs from a commit only outside these paths (bench/,
# docs) builds the same binaries, so it may be recorded as that commit (`--as-commit`).
CODE = ["src", "workers", "examples", "migrations", "fixtures", "Cargo.toml", "Cargo.lock", ":(exclude,glob)**/*.md"]


def commit_facts(repo=REPO, rev="HEAD"):
    """The commit being measured (the tree of `repo`), and whether its code has local changes
    against `rev`."""
    sha = git("rev-parse", rev, cwd=repo)
    if rev == "HEAD":
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", cwd=repo))
    else:
        dirty = subprocess.run(["git", "diff", "--quiet", sha, "--", *CODE], cwd=repo).returncode != 0
        if dirty:
            raise SystemExit(f"the code in {repo} differs from {rev}; cannot record it as {rev}")
    rev = sha
    return {
        "commit": sha,
        "short": sha[:7],
        "subject": git("log", "-1", "--format=%s", rev, cwd=repo)[:120],
        "commit_time": git("log", "-1", "--format=%cI", rev, cwd=repo),
        "dirty": dirty,
    }


def cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def isa_level():
    """The SIMD level code picks at run time *under valgrind*: valgrind hides AVX-512, so a
    machine with AVX2 counts the AVX2 paths whatever its model; without AVX2 the paths (and
    the counts) differ."""
    f = cpu_flags()
    if {"avx2", "fma", "bmi2"} <= f:
        return "x86-64-v3"
    if {"sse4_2", "popcnt"} <= f:
        return "x86-64-v2"
    return platform.machine()


def machine_facts():
    model = ""
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal")))
    try:
        vg = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    except OSError:
        vg = None
    return {
        "cpu": model,
        "isa": isa_level(),
        "nproc": os.cpu_count(),
        "mem_gb": round(mem_kb / 1024 / 1024),
        "kernel": platform.release(),
        "valgrind": vg,
    }


def loadavg():
    return [float(x) for x in open("/proc/loadavg").read().split()[:3]]


class Run:
    """One invocation of the suite: shared facts, and records appended as figures come in."""

    def __init__(self, mode, profile, repo=REPO, history=HISTORY, rev="HEAD"):
        self.facts = commit_facts(repo, rev)
        self.machine = machine_facts()
        self.date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.run_id = f"{self.date}-{self.facts['short']}"
        self.mode = mode
        self.profile = profile
        self.history = Path(history)
        self.count = 0

    def record(self, suite, figure, unit, better, samples, kind="timed", anchors=None, note=None):
        """Append one figure; `anchors` maps an anchor's name to its samples."""
        samples = [s for s in samples if s is not None]
        if not samples:
            return None
        rec = {
            **self.facts,
            "date": self.date,
            "run_id": self.run_id,
            "machine": self.machine,
            "load": loadavg(),
            "mode": self.mode,
            "profile": self.profile,
            "suite": suite,
            "figure": figure,
            "kind": kind,
            "unit": unit,
            "better": better,
            "samples": samples,
            "median": median(samples),
            "anchors": {k: v for k, v in (anchors or {}).items() if v},
        }
        if note:
            rec["note"] = note
        self.history.mkdir(parents=True, exist_ok=True)
        with open(self.history / f"{suite}.jsonl", "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.count += 1
        print(f"  {figure}: median {rec['median']:.6g} {unit} (n={len(samples)})", flush=True)
        return rec


def load(history=HISTORY):
    """Every record, oldest run first."""
    recs = []
    for p in sorted(Path(history).glob("*.jsonl")):
        for line in open(p):
            if line.strip():
                recs.append(json.loads(line))
    recs.sort(key=lambda r: (r["date"], r["figure"]))
    return recs
