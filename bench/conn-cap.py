#!/usr/bin/env python3
"""conn-cap.py - /__lbheartbeat__ latency while every connection place is held (issue 16).

Holds `server.max_connections` idle connections (opened from several loopback source
addresses, because `server.max_connections_per_ip` caps each one), then times N
sequential `GET /__lbheartbeat__` requests on fresh connections from another address, and
the same N with no connection held. Prints p50/p99/max in milliseconds for both.

    cargo build --release -p moocard --example serve_bench
    bench/conn-cap.py target/release/examples/serve_bench [N=1000]

serve_bench runs the default configuration: max_connections 1024, 256 per address.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

CAP, PER_IP = 1024, 256


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(port, path, src="127.0.0.200"):
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(src, 0))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    return data[9:12].decode(), (time.perf_counter() - t) * 1000


def summary(label, times):
    times = sorted(times)
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    print(f"{label}\tn={len(times)}\tp50={pick(0.5):.2f}ms\tp99={pick(0.99):.2f}ms\tmax={times[-1]:.2f}ms")


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    root = tempfile.mkdtemp()
    os.makedirs(f"{root}/a")
    with open(f"{root}/a/avatar.jpg", "wb") as f:
        f.write(open(os.path.join(os.path.dirname(__file__), "..", "fixtures/images/grey.jpg"), "rb").read())
    port = free_port()
    server = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--root", root],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                get(port, "/__lbheartbeat__")
                break
            except OSError:
                time.sleep(0.1)
        free = [get(port, "/__lbheartbeat__")[1] for _ in range(n)]
        held = []
        for i in range(CAP // PER_IP):
            for _ in range(PER_IP):
                held.append(socket.create_connection(("127.0.0.1", port), source_address=(f"127.0.0.{10 + i}", 0)))
        time.sleep(0.5)
        statuses = {}
        at_cap = []
        for _ in range(n):
            status, ms = get(port, "/__lbheartbeat__")
            statuses[status] = statuses.get(status, 0) + 1
            at_cap.append(ms)
        api = get(port, "/v1/limits")[0]
        print(f"held {len(held)} connections; lbheartbeat statuses at the cap: {statuses}; /v1/limits at the cap: {api}")
        summary("lbheartbeat, no connection held", free)
        summary(f"lbheartbeat, {len(held)} held (at the cap)", at_cap)
        for s in held:
            s.close()
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
