#!/usr/bin/env python3
"""retained-jobs.py - idle CPU of `moocard serve` (embedded workers polling the queue) with N
finished jobs kept in its SQLite queue, as `queue.retain_finished_jobs_secs` keeps them.

For each binary given: start `serve` once on a fresh data dir (migrations), stop it, insert
N `Done` jobs, start it again, wait 4 s, then read its CPU time (utime + stime from /proc)
over `--secs` seconds of idling. Binaries alternate, `--reps` times.

    bench/retained-jobs.py [--jobs 200000] [--secs 20] [--reps 1] BIN [BIN ...]

Compare two commits with their release binaries (e.g. one built in a worktree of the older
commit): a506a43 made polls and the depth check read only unfinished jobs.
"""
import argparse
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

QUEUE = "moocard.avatar.v1"


def idle_cpu(binary, jobs, secs, port):
    d = tempfile.mkdtemp(prefix="retained-jobs.")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOOCARD_", "DATABASE_URL"))}
    env["MOOCARD_DATA_DIR"] = d
    argv = [binary, "serve", "--listen", f"127.0.0.1:{port}"]

    def start():
        return subprocess.Popen(argv, cwd=d, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    try:
        p = start()
        time.sleep(3)
        p.terminate()
        p.wait()
        db = sqlite3.connect(os.path.join(d, "moocard.db"))
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, done_at) "
            "SELECT X'7B7D', 'done-' || i, ?, 'Done', 1, 3, CAST(strftime('%s','now') AS INTEGER) FROM n",
            (jobs, QUEUE))
        db.commit()
        db.close()
        p = start()
        time.sleep(4)
        tck = os.sysconf("SC_CLK_TCK")

        def cpu():
            f = open(f"/proc/{p.pid}/stat").read().split()
            return (int(f[13]) + int(f[14])) / tck

        a = cpu()
        time.sleep(secs)
        b = cpu()
        p.terminate()
        p.wait()
        return 100 * (b - a) / secs
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--jobs", type=int, default=200000)
    ap.add_argument("--secs", type=float, default=20)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--port", type=int, default=18099)
    a = ap.parse_args()
    for _ in range(a.reps):
        for b in a.binaries:
            pct = idle_cpu(b, a.jobs, a.secs, a.port)
            print(f"{b}\tretained={a.jobs}\tidle_cpu={pct:.1f}% of a core over {a.secs:g} s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
