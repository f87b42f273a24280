#!/usr/bin/env bash
# End-to-end browser test of the profile page (issue 6).
#
# Installs Debian's chromium when it is missing (CI machines are fresh; `npx playwright
# install` does not work here), builds the `moocard` binary, starts `moocard serve` on a
# free port with a temporary data dir and a small upload limit, mints a dev token, runs
# the Playwright script and leaves screenshots in test-artifacts/. Exits non-zero on failure.
#
# Environment: CARGO_PROFILE (default: dev), CHROMIUM (default: /usr/bin/chromium),
# KEEP_TMP=1 to keep the temp dir, MOCK_AVATAR=1 to answer the avatar endpoints from the
# test (only for working on the page before the server implements them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
artifacts="$root/test-artifacts"
chromium="${CHROMIUM:-/usr/bin/chromium}"
profile="${CARGO_PROFILE:-dev}"
email="browser-test@example.com"
# Small enough that the test can build a too-large file cheaply, large enough for the fixture.
max_upload=$((256 * 1024))

log() { printf '==> %s\n' "$*" >&2; }

if [[ ! -x "$chromium" ]]; then
  log "installing chromium (Debian package)"
  sudo=""
  [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -q
  # Fonts are only recommended by the package, but screenshots need them.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    chromium fonts-liberation fonts-dejavu-core
fi
"$chromium" --version >&2

if [[ ! -d "$here/node_modules/playwright-core" ]] \
  || [[ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]]; then
  log "installing playwright-core (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

log "building moocard ($profile)"
(cd "$root" && cargo build --profile "$profile" -p moocard-worker --bin moocard)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
  | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')"
dir="$profile"; [[ "$profile" == "dev" ]] && dir="debug"
bin="$target_dir/$dir/moocard"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/moocard-browser.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-0}" == "1" ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

port="$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
base="http://127.0.0.1:$port"

# Everything the server reads comes from here: no moocard.toml from the checkout leaks in.
export MOOCARD_CONFIG="$tmp/moocard.toml"
: >"$MOOCARD_CONFIG"
export MOOCARD_DATA_DIR="$tmp/data"
export MOOCARD_LIMITS__MAX_UPLOAD_BYTES="$max_upload"
# Small enough that a cheap fixture can exceed it (the page checks pixels before sending).
export MOOCARD_LIMITS__MAX_DIMENSION=2000
export MOOCARD_SERVER__LISTEN="127.0.0.1:$port"
# Issue 15: the page lists the WebP and AVIF variants, and Chromium must decode them.
export MOOCARD_AVATARS__FORMATS='["webp", "avif"]'
unset DATABASE_URL MOOCARD_AUTH__ISSUER || true
mkdir -p "$MOOCARD_DATA_DIR"

log "migrating and minting a token"
"$bin" migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; exit 1; }
token="$("$bin" token "$email" 2>"$tmp/token.log")" || { cat "$tmp/token.log" >&2; exit 1; }

log "starting moocard serve on $base"
"$bin" serve >"$tmp/server.log" 2>&1 &
server_pid=$!
probe() { node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' "$base/__lbheartbeat__"; }
for _ in $(seq 1 100); do
  if probe; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "server exited early"; cat "$tmp/server.log" >&2; exit 1
  fi
  sleep 0.1
done
probe || { log "server did not come up"; cat "$tmp/server.log" >&2; exit 1; }

log "running the Playwright script"
status=0
BASE_URL="$base" TOKEN="$token" EMAIL="$email" MAX_UPLOAD_BYTES="$max_upload" \
  WORK_DIR="$tmp" ARTIFACTS_DIR="$artifacts" CHROMIUM="$chromium" \
  node "$here/profile-page.test.mjs" || status=$?
if [[ "$status" -ne 0 ]]; then
  log "server log (last 40 lines):"
  tail -n 40 "$tmp/server.log" >&2
  exit "$status"
fi

# Issue 12: the page signing in through a real OpenID provider (code flow with PKCE).
oidc="$root/tests/oidc"
if [[ ! -d "$oidc/node_modules/oidc-provider" ]] \
  || [[ "$oidc/package-lock.json" -nt "$oidc/node_modules/.package-lock.json" ]]; then
  log "installing oidc-provider (npm ci)"
  (cd "$oidc" && npm ci --no-audit --no-fund --loglevel=error)
fi
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
port2="$(free_port)"; idp_port="$(free_port)"
base2="http://127.0.0.1:$port2"; issuer="http://127.0.0.1:$idp_port"
log "starting the OpenID provider on $issuer"
(cd "$oidc" && PORT="$idp_port" REDIRECT_URI="$base2/" exec node provider.mjs) >"$tmp/idp.log" 2>&1 &
idp_pid=$!
for _ in $(seq 1 150); do
  node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' \
    "$issuer/.well-known/openid-configuration" && break
  sleep 0.2
done
mkdir -p "$tmp/data2"
log "starting moocard serve with that issuer on $base2"
MOOCARD_DATA_DIR="$tmp/data2" MOOCARD_SERVER__LISTEN="127.0.0.1:$port2" \
  MOOCARD_AUTH__ISSUER="$issuer" MOOCARD_AUTH__AUDIENCE=moocard-page \
  "$bin" serve >"$tmp/server2.log" 2>&1 &
server2_pid=$!
trap 'kill "$idp_pid" "$server2_pid" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 150); do
  node -e 'fetch(process.argv[1]).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))' \
    "$base2/__lbheartbeat__" && break
  sleep 0.2
done
BASE_URL="$base2" ISSUER="$issuer" EMAIL="ada@example.org" WORK_DIR="$tmp" \
  ARTIFACTS_DIR="$artifacts" CHROMIUM="$chromium" \
  node "$here/oidc-signin.test.mjs" || status=$?
if [[ "$status" -ne 0 ]]; then
  log "server log (last 40 lines):"; tail -n 40 "$tmp/server2.log" >&2
  log "provider log (last 20 lines):"; tail -n 20 "$tmp/idp.log" >&2
fi
exit "$status"
