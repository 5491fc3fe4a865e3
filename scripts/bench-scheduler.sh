#!/usr/bin/env bash
# Benchmarks the scheduler: placements per second for 1,000 hosts and 10,000 pending
# instances (goal >= 5,000/s; Nomad's published C1M figure is 3,750/s). See
# crates/bench/src/sched.rs.
#
#   ./scripts/bench-scheduler.sh                          # seconds after the build
#   ./scripts/bench-scheduler.sh --hosts 5000 --rounds 9  # extra arguments go to it
#
# Needs no root, no VM and no server: placement is pure. Output also goes to
# target/bench-scheduler.txt. Exit code: 0 goal met, 2 missed, else failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

OUT=target/bench-scheduler.txt
echo "==> cargo build --release --locked -p strato-bench --bin strato-sched-bench"
cargo build --release --locked -p strato-bench --bin strato-sched-bench
mkdir -p target
set +e
target/release/strato-sched-bench "$@" 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
set -e
echo "==> written to $OUT (exit code $rc)"
exit "$rc"
