#!/usr/bin/env bash
# serve-ir.sh - user-space instructions per request (callgrind) for nginx and moocard serving
# the same avatar, 304s and 200s. Instruction counts do not depend on what else the shared
# machine is doing, so this separates "our code got cheaper" from noise; req/s still comes
# from /work/shared/bench/serve-baseline.sh. Kernel work (the loopback TCP path, about 60%
# of either server's CPU) is not counted.
#
#   cargo build --release -p moocard --example serve_bench
#   FILE=avatar.jpg bench/serve-ir.sh [target/release/examples/serve_bench]
#
# Env: FILE (the JPEG to serve, required), SECS=8 (measured window per run, after a 2 s
# warm-up), CONNS=64. Needs valgrind, nginx, wrk, curl.
set -euo pipefail
BIN=${1:-target/release/examples/serve_bench}
SECS=${SECS:-8}
CONNS=${CONNS:-64}
: "${FILE:?FILE=path/to/avatar.jpg is required}"
for b in valgrind callgrind_control nginx wrk curl; do
  command -v $b >/dev/null || { echo "missing: $b" >&2; exit 1; }
done
W=$(mktemp -d /tmp/serve-ir.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$W"' EXIT
mkdir -p "$W/root/a" "$W/ng"
cp "$FILE" "$W/root/a/avatar.jpg"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

measure() { # name kind url pid stop-signal -> prints "name kind requests Ir Ir/req"
  local name=$1 kind=$2 url=$3 pid=$4 sig=$5 lua="" etag n ir
  for _ in $(seq 1 300); do curl -s -o /dev/null "$url" && break; sleep 0.1; done
  if [ "$kind" = 304 ]; then
    etag=$(curl -s -D - -o /dev/null "$url" | grep -i '^etag:' | cut -d' ' -f2- | tr -d '\r')
    printf 'wrk.headers["If-None-Match"] = %s\n' "'$etag'" > "$W/inm.lua"
    lua="-s $W/inm.lua"
  fi
  wrk -t1 -c"$CONNS" -d2s $lua "$url" > /dev/null
  callgrind_control -i on "$pid" > /dev/null
  n=$(wrk -t1 -c"$CONNS" -d"${SECS}"s $lua "$url" | awk '/requests in/{print $1}')
  callgrind_control -i off "$pid" > /dev/null
  kill -"$sig" "$pid"
  # nginx under valgrind notices the signal only when a connection wakes its event loop.
  sleep 0.5; curl -s -o /dev/null --max-time 2 "$url" || true
  wait "$pid" 2>/dev/null || true
  ir=$(grep -h '^summary:\|^totals:' "$W"/cg.* | awk '{s+=$2} END{print s}')
  rm -f "$W"/cg.*
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$n" "$ir" "$((ir / n))"
}

CG=(valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.%p")

printf 'server\tresponse\trequests\tIr\tIr/req\n'
for kind in 304 200; do
  p=$(port)
  cat > "$W/ng/nginx.conf" <<EOF
worker_processes 1;
pid $W/ng/nginx.pid;
error_log $W/ng/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_timeout 65; keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s; open_file_cache_valid 60s;
  client_body_temp_path $W/ng/b; proxy_temp_path $W/ng/p; fastcgi_temp_path $W/ng/f;
  uwsgi_temp_path $W/ng/u; scgi_temp_path $W/ng/s;
  types { image/jpeg jpg; }
  server { listen 127.0.0.1:$p; root $W/root; etag on;
    location /a/ { add_header Cache-Control "public, max-age=31536000, immutable"; } }
}
EOF
  "${CG[@]}" nginx -p "$W/ng" -c "$W/ng/nginx.conf" -g 'daemon off; master_process off;' > "$W/nginx.log" 2>&1 &
  PIDS=($!)
  measure nginx "$kind" "http://127.0.0.1:$p/a/avatar.jpg" "$!" TERM
  p=$(port)
  "${CG[@]}" "$BIN" --listen "127.0.0.1:$p" --root "$W/root" > "$W/moocard.log" 2>&1 &
  PIDS=($!)
  measure moocard "$kind" "http://127.0.0.1:$p/avatar/$("$BIN" --print-path)" "$!" INT
done
