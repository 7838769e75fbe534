# Shared by scripts/check-pyairbyte, check-singer and check-dagster (sourced, never run):
# the binary, a temp dir, a sandbox, and a pinned PyPI venv under
# ${XDG_CACHE_HOME:-~/.cache}/driftbridge/ (exit 3 "skipped" when PyPI cannot be reached).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
check_name=$(basename "$0")
fail() { echo "$check_name: FAIL: $*" >&2; exit 1; }

# venv NAME PACKAGE==VERSION... -> sets VENV; installs once (exit 3 when it cannot).
venv() {
  local name=$1; shift
  VENV="${XDG_CACHE_HOME:-$HOME/.cache}/driftbridge/$name"
  local stamp="$VENV/.driftbridge-installed"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$*" ]; then
    echo "$check_name: installing $* into $VENV"
    rm -rf "$VENV"
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check \
        --timeout 30 --retries 1 "$@"; }; then
      echo "$check_name: skipped: cannot install $* (python3 venv or PyPI unavailable)" >&2
      exit 3
    fi
    echo "$*" >"$stamp"
  fi
}

# the driftbridge binary: DRIFTBRIDGE_BIN, or a debug build
binary() {
  BIN="${DRIFTBRIDGE_BIN:-}"
  if [ -z "$BIN" ]; then
    cargo build -q -p driftbridge --bin driftbridge
    BIN="$root/target/debug/driftbridge"
  fi
  export BIN
  export DRIFTBRIDGE_DATA_DIR="$tmp/data"
  DRIFTBRIDGE_MASTER_KEY=$(python3 -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())')
  export DRIFTBRIDGE_MASTER_KEY
}

# start_sandbox [flags] -> SB_URL, SB_TOKEN
start_sandbox() {
  "$BIN" sandbox --port 0 "$@" >"$tmp/sandbox.out" 2>"$tmp/sandbox.err" &
  pids+=($!)
  for _ in $(seq 1 100); do
    head -1 "$tmp/sandbox.out" 2>/dev/null | python3 -c 'import json,sys;json.loads(sys.stdin.readline())' 2>/dev/null && break
    sleep 0.1
  done
  SB_URL=$(head -1 "$tmp/sandbox.out" | python3 -c 'import json,sys;print(json.load(sys.stdin)["base_url"])')
  SB_TOKEN=$(head -1 "$tmp/sandbox.out" | python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')
  export SB_URL SB_TOKEN
}
