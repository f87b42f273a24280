#!/usr/bin/env bash
# Real Gravatar clients against a real moocard (issue 13): URLs built by `libgravatar`
# (PyPI) and `gravatar-url` (npm) plus the URL shapes of WordPress, GitLab, Discourse,
# Gitea and Mozilla's SSO dashboard, fetched from `moocard serve` with one real avatar
# (uploaded and processed by the embedded workers). Every URL must yield an image, or the
# 404 / 302 it asked for.
#
# Installs its clients locally (tests/clients/.venv, tests/clients/node_modules), nothing
# global. Environment: CARGO_PROFILE (default: dev), KEEP_TMP=1 to keep the temp dir.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
profile="${CARGO_PROFILE:-dev}"
email="client-test@example.com"
log() { printf '==> %s\n' "$*" >&2; }

if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  log "installing python3-venv (Debian package)"
  sudo=""; [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q python3-venv
fi
if [[ ! -x "$here/.venv/bin/python" ]]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
if [[ ! -d "$here/node_modules/gravatar-url" ]] \
  || [[ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]]; then
  log "installing gravatar-url (npm ci)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

log "building moocard ($profile)"
(cd "$root" && cargo build --profile "$profile" -p moocard-worker --bin moocard)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
dir="$profile"; [[ "$profile" == "dev" ]] && dir="debug"
bin="$target_dir/$dir/moocard"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/moocard-clients.XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ "${KEEP_TMP:-0}" == "1" ]]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
export MOOCARD_CONFIG="$tmp/moocard.toml"
: >"$MOOCARD_CONFIG"
export MOOCARD_DATA_DIR="$tmp/data"
export MOOCARD_SERVER__LISTEN="127.0.0.1:$port"
export MOOCARD_AVATARS__DEFAULT_URL_HOSTS='["sso.mozilla.com"]'
unset DATABASE_URL MOOCARD_AUTH__ISSUER || true
mkdir -p "$MOOCARD_DATA_DIR"

"$bin" migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; exit 1; }
token="$("$bin" token "$email" 2>"$tmp/token.log")" || { cat "$tmp/token.log" >&2; exit 1; }
log "starting moocard serve on $base"
"$bin" serve >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/__lbheartbeat__" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
  sleep 0.1
done

log "uploading a real avatar and waiting for the workers"
curl -fsS -X PUT "$base/v1/profiles/$email/avatar" -H "Authorization: Bearer $token" \
  -H 'content-type: image/jpeg' --data-binary "@$root/fixtures/images/photo-hubble.jpg" >/dev/null
for _ in $(seq 1 300); do
  state="$(curl -fsS "$base/v1/profiles/$email/avatar" -H "Authorization: Bearer $token" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')"
  [[ "$state" == "ready" ]] && break
  [[ "$state" == "failed" ]] && { log "processing failed"; exit 1; }
  sleep 0.2
done
[[ "$state" == "ready" ]] || { log "avatar never became ready ($state)"; exit 1; }

status=0
"$here/.venv/bin/python" "$here/check.py" "$base" "$email" || status=$?
[[ "$status" -eq 0 ]] || tail -n 40 "$tmp/server.log" >&2
exit "$status"
