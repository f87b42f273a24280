"""The public read path against nginx in the same run (issue 13): hot avatars at two body
sizes, 2,000 distinct users, unknown hashes with every kind of default, and (suite
`outage`) a store that stops: p99 and answers while MariaDB is down, RSS after a 60 s
unknown-hash flood, and whether the real avatars stayed cached through it.

Setting: "shared" of serve-baseline.sh (server and wrk on both cores, nginx
`worker_processes auto`, wrk -t2 -c64); servers alternate per scenario and repetition so
noise hits both alike. Unknown hashes are new on every request (wrk Lua, per-thread seeds).
"""

import os
import signal
import subprocess
import time

from .callgrind import free_port, nginx_argv
from . import serving
from .serving import _stop, expect_status, fetch, start

CONNS = 64
DEFAULTS = ["404", "mm", "identicon", "retro", "monsterid", "wavatar", "robohash", "initials"]

RANDOM_LUA = """
local n = 0
function setup(thread) n = n + 1; thread:set("seed", n) end
function init(args) math.randomseed(os.time() * 131 + seed) end
local hex = {"0","1","2","3","4","5","6","7","8","9","a","b","c","d","e","f"}
request = function()
  local t = {}
  for i = 1, 32 do t[i] = hex[math.random(16)] end
  return wrk.format("GET", "%s" .. table.concat(t) .. "%s")
end
"""

LIST_LUA = """
local n = 0
function setup(thread) n = n + 1; thread:set("seed", n) end
paths = {}
function init(args)
  math.randomseed(os.time() * 131 + seed)
  for line in io.lines("%s") do paths[#paths + 1] = line end
end
request = function() return wrk.format("GET", paths[math.random(#paths)]) end
"""


def wrk(port, script, duration):
    """`script`'s requests against 127.0.0.1:`port`, the suite's connections."""
    return serving.wrk(f"http://127.0.0.1:{port}/", duration, conns=CONNS, script=script)


def scripts(work, paths_file):
    d = f"{work}/reads-lua"
    os.makedirs(d, exist_ok=True)
    out = {}

    def put(name, text):
        out[name] = f"{d}/{name}.lua"
        with open(out[name], "w") as f:
            f.write(text)
    put("nginx404", RANDOM_LUA % ("/x/", ""))
    for dflt in DEFAULTS:
        extra = "&name=Ada+Lovelace" if dflt == "initials" else ""
        put(f"d_{dflt}", RANDOM_LUA % ("/avatar/", f"?d={dflt}{extra}"))
    put("users_moocard", LIST_LUA % f"{paths_file}.moocard")
    put("users_nginx", LIST_LUA % f"{paths_file}.nginx")
    return out


def seed_root(work, avatar, hashes):
    """`root/a/avatar.jpg` for serve_bench and nginx, and `root/u/<md5>` for nginx's
    2,000 files (hard links: the same bytes)."""
    root = f"{work}/reads-root"
    os.makedirs(f"{root}/a", exist_ok=True)
    os.makedirs(f"{root}/u", exist_ok=True)
    with open(f"{root}/a/avatar.jpg", "wb") as f:
        f.write(open(avatar, "rb").read())
    for h in hashes:
        p = f"{root}/u/{h}"
        if not os.path.exists(p):
            os.link(f"{root}/a/avatar.jpg", p)
    paths = f"{work}/reads-paths"
    with open(f"{paths}.moocard", "w") as f:
        f.write("".join(f"/avatar/{h}\n" for h in hashes))
    with open(f"{paths}.nginx", "w") as f:
        f.write("".join(f"/u/{h}\n" for h in hashes))
    return root, paths


def start_nginx(work, root):
    port = free_port()
    argv = nginx_argv(f"{work}/reads-nginx", root, port)
    argv[-1] = "daemon off; master_process on;"
    conf = f"{work}/reads-nginx/nginx.conf"
    text = open(conf).read().replace("worker_processes 1;", "worker_processes auto;")
    open(conf, "w").write(text.replace("worker_connections 1024", "worker_connections 4096"))
    p = start(argv, port, "/a/avatar.jpg")
    try:
        expect_status(port, "/a/avatar.jpg", 200)
        expect_status(port, "/u/" + os.listdir(f"{root}/u")[0], 200)
        expect_status(port, "/x/" + "0" * 32, 404)
    except RuntimeError:
        _stop(p, signal.SIGQUIT)
        raise
    return p, port


def status(pid, key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def hashes_of(bench_bin, users):
    out = subprocess.run([bench_bin, "--print-path", "--users", str(users)], capture_output=True, text=True,
                         check=True).stdout.split()
    return out


def reads(run, bench_bin, avatar, work, duration, reps, users=2000):
    """2,000 distinct users and unknown hashes (each default) vs nginx, SQLite store."""
    hashes = hashes_of(bench_bin, users)
    root, paths = seed_root(work, avatar, hashes)
    sc = scripts(work, paths)
    got = {}

    def add(name, r):
        got.setdefault(name, []).append(r)
    env = {"MOOCARD_AVATARS__FILTER_REFRESH_MS": "1000", "MOOCARD_AUDIT__OUTPUT": "off"}
    hwm = []
    for _ in range(reps):
        ng, nport = start_nginx(work, root)
        try:
            wrk(nport, sc["users_nginx"], 2)
            add("nginx.users", wrk(nport, sc["users_nginx"], duration))
            add("nginx.404", wrk(nport, sc["nginx404"], duration))
        finally:
            _stop(ng, signal.SIGQUIT)
        mport = free_port()
        moo = start([bench_bin, "--listen", f"127.0.0.1:{mport}", "--root", root, "--users", str(users)],
                    mport, f"/avatar/{hashes[0]}", env, secs=900)
        try:
            wrk(mport, sc["users_moocard"], 2)
            add("moocard.users", wrk(mport, sc["users_moocard"], duration))
            for d in DEFAULTS:
                add(f"moocard.d_{d}", wrk(mport, sc[f"d_{d}"], duration))
            hwm.append(status(moo.pid, "VmHWM"))
        finally:
            _stop(moo, signal.SIGINT)
        time.sleep(0.5)
    note = f"shared cores, wrk -t2 -c{CONNS}, {duration} s, {users} users seeded; unknown hashes new per request"
    n404 = [r["rps"] for r in got["nginx.404"]]
    m, n = [r["rps"] for r in got["moocard.users"]], [r["rps"] for r in got["nginx.users"]]
    run.record("reads", "reads.users2000.rps", "req/s", "higher", m, anchors={"nginx": n}, note=note)
    run.record("reads", "reads.users2000.vs_nginx", "x", "higher", [round(a / b, 4) for a, b in zip(m, n)],
               anchors={"goal": [0.9]}, note=note)
    run.record("reads", "reads.users2000.p99_ms", "ms", "lower", [r["p99"] for r in got["moocard.users"]],
               anchors={"nginx": [r["p99"] for r in got["nginx.users"]]}, note=note)
    for d in DEFAULTS:
        rs = got[f"moocard.d_{d}"]
        m = [r["rps"] for r in rs]
        goal = 0.8 if d == "404" else 0.5
        run.record("reads", f"reads.unknown.{d}.rps", "req/s", "higher", m, anchors={"nginx_404": n404}, note=note)
        run.record("reads", f"reads.unknown.{d}.vs_nginx404", "x", "higher",
                   [round(a / b, 4) for a, b in zip(m, n404)], anchors={"goal": [goal]}, note=note)
        run.record("reads", f"reads.unknown.{d}.p99_ms", "ms", "lower", [r["p99"] for r in rs],
                   anchors={"nginx_404": [r["p99"] for r in got["nginx.404"]]}, note=note)
        wrong = sum(r["non2xx"] for r in rs) if d != "404" else sum(r["requests"] - r["non2xx"] for r in rs)
        run.record("reads", f"reads.unknown.{d}.wrong_status", "answers", "lower", [wrong],
                   note="answers that were not 200 (not 404 for d=404), all reps")
    run.record("reads", "reads.server_peak_rss_mb", "MB", "lower", hwm,
               note=f"VmHWM of serve_bench after users and {len(DEFAULTS)} unknown-hash runs")


def mysql(*args):
    return subprocess.run(["mysql", "--host=127.0.0.1", "--port=3306", "--user=root", *args],
                          capture_output=True, text=True)


def mysqladmin(*args):
    return subprocess.run(["mysqladmin", "--host=127.0.0.1", "--port=3306", "--user=root", "--connect-timeout=2",
                           *args], capture_output=True, text=True).returncode == 0


def mariadb_start():
    subprocess.run(["start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd"],
                   check=True)
    t = time.time()
    while not mysqladmin("ping"):
        if time.time() - t > 60:
            raise RuntimeError("MariaDB did not come back")
        time.sleep(0.2)


def outage(run, bench_bin, avatar, work, duration, users=2000, flood_secs=60):
    """serve_bench on MariaDB (database moocard_bench, dropped first): warm every user,
    flood 60 s of new identicon hashes (RSS before/after), stop MariaDB, load each kind of
    request (p99, non-image answers), fetch every user once (real avatar or default?),
    start MariaDB again and time until a read reaches the store again."""
    if mysql("-e", "DROP DATABASE IF EXISTS moocard_bench; CREATE DATABASE moocard_bench").returncode:
        raise RuntimeError("outage: MariaDB at 127.0.0.1:3306 is needed")
    hashes = hashes_of(bench_bin, users)
    root, paths = seed_root(work, avatar, hashes)
    sc = scripts(work, paths)
    body = open(avatar, "rb").read()
    env = {"DATABASE_URL": "mysql://root@127.0.0.1:3306/moocard_bench", "MOOCARD_AVATARS__FILTER_REFRESH_MS": "1000",
           "MOOCARD_AUDIT__OUTPUT": "off"}
    port = free_port()
    moo = start([bench_bin, "--listen", f"127.0.0.1:{port}", "--root", root, "--users", str(users)], port,
                f"/avatar/{hashes[0]}", env, secs=900)
    stopped = False
    try:
        warm = [fetch(port, f"/avatar/{h}") for h in hashes]
        assert all(s == 200 and b == body for s, b, _ in warm), "warm-up did not serve the seeded avatars"
        rss0 = status(moo.pid, "VmRSS")
        flood = wrk(port, sc["d_identicon"], flood_secs)
        rss1, hwm = status(moo.pid, "VmRSS"), status(moo.pid, "VmHWM")
        note = f"MariaDB store, {users} users warmed; flood: {flood_secs} s of new identicon hashes, wrk -t2 -c{CONNS}"
        run.record("outage", "outage.flood.rps", "req/s", "higher", [flood["rps"]], note=note)
        run.record("outage", "outage.flood.rss_mb", "MB", "lower", [rss1], anchors={"before": [rss0]},
                   note=note + f"; VmRSS after (anchor: before); VmHWM {hwm} MB")
        assert mysqladmin("shutdown"), "mysqladmin shutdown failed"
        stopped = True
        t = time.time()
        while mysqladmin("ping") and time.time() - t < 60:
            time.sleep(0.1)
        note = f"MariaDB stopped; wrk -t2 -c{CONNS}, {duration} s each"
        for name, script in (("users", sc["users_moocard"]), ("default", sc["d_mm"]),
                             ("identicon", sc["d_identicon"]), ("initials", sc["d_initials"]), ("404", sc["d_404"])):
            r = wrk(port, script, duration)
            run.record("outage", f"outage.{name}.p99_ms", "ms", "lower", [r["p99"]], anchors={"goal": [20.0]},
                       note=note)
            run.record("outage", f"outage.{name}.rps", "req/s", "higher", [r["rps"]], note=note)
            wrong = r["non2xx"] if name != "404" else r["requests"] - r["non2xx"]
            run.record("outage", f"outage.{name}.wrong_status", "answers", "lower", [wrong],
                       note=note + f"; of {r['requests']} answers, those not 200 (not 404 for d=404); "
                       f"socket errors: {r['socket_errors'] or 'none'}")
        seen = [fetch(port, f"/avatar/{h}") for h in hashes]
        kept = sum(1 for s, b, _ in seen if s == 200 and b == body)
        run.record("outage", "outage.users_still_served", "users", "higher", [kept], anchors={"of": [len(hashes)]},
                   note="after the flood and the outage runs, each seeded user once: the real avatar (stale) "
                        f"rather than a default graphic; slowest {max(x for _, _, x in seen) * 1000:.1f} ms")
        mariadb_start()
        stopped = False
        t = time.time()
        fresh = None
        while time.time() - t < 60:
            # A hash the store must be asked about (the filter of known aliases says
            # "maybe" only for seeded ones): a seeded user past its TTL is re-read.
            s, b, _ = fetch(port, "/__heartbeat__")
            if s == 200:
                fresh = time.time() - t
                break
            time.sleep(0.1)
        run.record("outage", "outage.recovery_s", "s", "lower", [round(fresh, 2) if fresh is not None else -1],
                   note="seconds from MariaDB answering ping to /__heartbeat__ 200 without a restart of moocard")
    finally:
        if stopped:
            mariadb_start()
        _stop(moo, signal.SIGINT)
