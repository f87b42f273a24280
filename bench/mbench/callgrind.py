"""User-space instruction counts with valgrind's callgrind: per image for `moocard thumbnail`,
per request for a server answering one keep-alive client.

Counts do not depend on what else the machine is doing, which is why the CI gate uses them.
The kernel's share (loopback TCP, file reads) is not counted.
"""

import glob
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import time


def total_ir(pattern):
    """Sum of the totals in every callgrind output file matching `pattern` (one per process).
    Only `totals:` (written at the end) counts: with instrumentation switched on later, the
    header's `summary:` still says 0."""
    ir = 0
    for path in glob.glob(pattern):
        with open(path) as f:
            for line in f:
                if line.startswith("totals:"):
                    ir += int(line.split()[1])
    return ir


def image_ir(binary, image):
    """Instructions for `binary thumbnail --master image outdir`: the whole pipeline as a worker
    runs it (master and all five sizes), process start-up included (a few million
    instructions, the same for every image)."""
    with tempfile.TemporaryDirectory(prefix="mbench-ir.") as d:
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={d}/cg.%p", binary, "thumbnail", "--master", image, f"{d}/out"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return total_ir(f"{d}/cg.*")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _get(conn, path, headers=None):
    conn.request("GET", path, headers=headers or {})
    r = conn.getresponse()
    r.read()
    return r


def _wait_up(port, path, proc, secs=120):
    deadline = time.time() + secs
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            _get(c, path)
            c.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not come up")


def _control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def requests_ir(argv, port, paths, n=2000, warm=200, stop=signal.SIGINT, env=None, windows=1):
    """Instructions per request for each `(name, path, conditional)` in `paths`.

    The server (`argv`, already told to listen on `port`) runs under callgrind with
    instrumentation off through start-up. For each path a single keep-alive client sends
    `warm` requests, the counters are zeroed, `n` counted requests follow (with If-None-Match
    set to the ETag when `conditional`) and the counters are dumped. One connection and a
    fixed request count keep the count repeatable. With `windows` > 1 the `n` requests are
    counted in that many windows and the smallest per-request count is kept: the server's
    periodic work (a metrics drain every 5 s) lands in some windows by wall time, and a
    window without it is the request's own cost. Returns {name: (per request, status)}.
    """
    out = {}
    with tempfile.TemporaryDirectory(prefix="mbench-req.") as d:
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={d}/cg.%p", *argv]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(f"{d}/log", "w"),
                                env={**os.environ, **(env or {})})
        try:
            try:
                _wait_up(port, paths[0][1], proc)
            except RuntimeError as e:
                raise RuntimeError(f"{e}: {open(f'{d}/log').read()[-2000:]}") from None
            _control(proc.pid, "-i", "on")
            dumps = 0
            for name, path, conditional in paths:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
                headers = {}
                if conditional:
                    etag = _get(conn, path).getheader("ETag")
                    headers = {"If-None-Match": etag} if etag else {}
                for _ in range(warm):
                    status = _get(conn, path, headers).status
                per = n // windows
                counts = []
                for _ in range(windows):
                    _control(proc.pid, "-z")
                    for _ in range(per):
                        _get(conn, path, headers)
                    _control(proc.pid, "-d")  # writes cg.<pid>.<k>: the counts since the zeroing
                    dumps += 1
                    counts.append(total_ir(f"{d}/cg.{proc.pid}.{dumps}") / per)
                conn.close()
                out[name] = (min(counts), status)
        finally:
            proc.send_signal(stop)
            try:
                # nginx under valgrind sees the signal only when a connection wakes it.
                time.sleep(0.5)
                try:
                    http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/")
                except OSError:
                    pass
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return out


NGINX_CONF = """worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
  client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f;
  uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;
  types {{ image/jpeg jpg; }}
  server {{ listen 127.0.0.1:{port}; root {root}; etag on;
    location /a/ {{ add_header Cache-Control "public, max-age=31536000, immutable"; }} }}
}}
"""


def nginx_argv(workdir, root, port):
    """nginx serving `root` (which holds a/avatar.jpg) on `port`, one process, as the anchor."""
    os.makedirs(workdir, exist_ok=True)
    with open(f"{workdir}/nginx.conf", "w") as f:
        f.write(NGINX_CONF.format(d=workdir, root=root, port=port))
    return ["nginx", "-p", workdir, "-c", f"{workdir}/nginx.conf", "-g", "daemon off; master_process off;"]
