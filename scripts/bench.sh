#!/usr/bin/env bash
# Benchmarks Strato's EC2 API (RunInstances / DescribeInstances latency and
# throughput at 1,000 and 10,000 instances) against the issue's targets, and the
# moto EC2 emulator as the peer at 1,000 instances, in one run.
#
#   ./scripts/bench.sh                      # everything (about 1.5 min after the build)
#   ./scripts/bench.sh --scales 1000        # extra arguments go to strato-bench
#   BENCH_SKIP_MOTO=1 ./scripts/bench.sh    # Strato only
#
# Builds the release binaries, installs moto into .venv-bench (pip, from PyPI; the
# peer is skipped with a note if that fails), starts moto_server on 127.0.0.1,
# runs target/release/strato-bench (which starts its own `strato up` on 127.0.0.1
# per scale) and writes everything printed to target/bench-api.txt (and the
# figures as JSON to target/bench-api.json). Every server is stopped at the end,
# also on failure or Ctrl-C. Exit code: 0 all targets met, 2 some target missed,
# anything else the run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

OUT=target/bench-api.txt
JSON=target/bench-api.json
WORK=target/bench-work
VENV=.venv-bench
MOTO_PID=""
BENCH_PID=""
TAIL_PID=""

# Stop a process group we started (each server runs under setsid, so the group id
# is its pid): TERM, a grace period, then KILL.
stop_group() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM -- "-$pid" 2>/dev/null || return 0
  for _ in $(seq 1 30); do
    kill -0 -- "-$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
}
cleanup() {
  stop_group "$BENCH_PID"
  stop_group "$MOTO_PID"
  [ -z "$TAIL_PID" ] || kill "$TAIL_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "==> cargo build --release --locked -p strato -p strato-bench"
cargo build --release --locked -p strato -p strato-bench

mkdir -p target
rm -rf "$WORK"
mkdir -p "$WORK"
: >"$OUT"
note() { echo "$*" | tee -a "$OUT"; }

note "strato-bench via scripts/bench.sh; commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)'); kernel $(uname -r)"

# ---- the peer: moto ---------------------------------------------------------
moto_args=()
if [ "${BENCH_SKIP_MOTO:-0}" = 1 ]; then
  note "peer: moto skipped (BENCH_SKIP_MOTO=1)"
else
  if [ ! -x "$VENV/bin/moto_server" ]; then
    echo "==> installing moto[server] into $VENV"
    if ! { python3 -m venv "$VENV" &&
      "$VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]'; }; then
      note "peer: NOTE could not install moto[server] with pip; the moto comparison is skipped"
    fi
  fi
  # Keep the venv out of git without touching the repository's .gitignore.
  [ -d "$VENV" ] && printf '*\n' >"$VENV/.gitignore"
  if [ -x "$VENV/bin/moto_server" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >target/bench-moto.log 2>&1 &
    MOTO_PID=$!
    up=0
    for _ in $(seq 1 100); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
      kill -0 "$MOTO_PID" 2>/dev/null || break
      sleep 0.2
    done
    if [ "$up" = 1 ]; then
      note "peer: moto $("$VENV/bin/python" -c 'import moto; print(moto.__version__)') (moto_server, its default werkzeug server and request log) on 127.0.0.1:$port"
      moto_args=(--moto "http://127.0.0.1:$port" --moto-pid "$MOTO_PID")
    else
      note "peer: NOTE moto_server did not start; the moto comparison is skipped"
      tail -5 target/bench-moto.log || true
      stop_group "$MOTO_PID"
      MOTO_PID=""
    fi
  fi
fi

# ---- the benchmark ----------------------------------------------------------
# strato-bench runs in a session of its own so that the trap can stop it and the
# `strato up` servers it starts as one process group. Its output is appended to
# $OUT and followed on the terminal.
skip=$(wc -l <"$OUT")
setsid target/release/strato-bench --work-dir "$WORK" --json "$JSON" \
  ${moto_args[@]+"${moto_args[@]}"} "$@" >>"$OUT" 2>&1 &
BENCH_PID=$!
# tail and wait both in the background/`wait`, so that a signal to this script runs
# the trap at once (bash defers traps while a foreground command runs).
tail -n "+$((skip + 1))" -f --pid="$BENCH_PID" "$OUT" &
TAIL_PID=$!
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=""
wait "$TAIL_PID" || true
TAIL_PID=""
echo
echo "==> written to $OUT and $JSON (strato-bench exit code $rc)"
exit "$rc"
