#!/usr/bin/env bash
# Benchmarks Strato's VPC dataplane with real VMs (QEMU under TCG) on this host: how
# soon a security group rule is enforced after AuthorizeSecurityGroupIngress returns
# (p50/p99), and RunInstances until SSH answers beside RunInstances until init.
#
#   sudo ./scripts/bench-net.sh                          # 30 rule rounds, 5 launches (a few minutes)
#   sudo ./scripts/bench-net.sh --rounds 50 --launches 9  # extra arguments go to bench/net_bench.py
#
# Builds the release binary, makes sure the built-in image exists in
# /tmp/strato-test-images (scripts/build-image.sh; needs root), then runs
# bench/net_bench.py with the repository's venv (.venv: boto3). Everything printed is
# also written to target/bench-net.txt. The Python script creates its own "internet"
# namespace, starts its own `strato up` on 127.0.0.1 and removes all of it at the end,
# also on failure or Ctrl-C. Exit code: 0 goal met, 2 missed, anything else the run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

OUT=target/bench-net.txt
IMAGES=/tmp/strato-test-images
PY=.venv/bin/python

if [ "$(id -u)" != 0 ]; then
  echo "bench-net.sh must run as root (Strato runs QEMU under unprivileged uids)" >&2
  exit 1
fi
if [ ! -x "$PY" ] || ! "$PY" -c 'import boto3' 2>/dev/null; then
  echo "no venv with boto3 at .venv (python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt)" >&2
  exit 1
fi

echo "==> cargo build --release -p strato"
cargo build --release -p strato

# The store of scripts/test.sh: only temporary data directories use it (--move-legacy:
# see images/README.md, Versions).
echo "==> ./scripts/build-image.sh --move-legacy $IMAGES/strato-minimal"
./scripts/build-image.sh --move-legacy "$IMAGES/strato-minimal"

mkdir -p target
echo "==> $PY -u bench/net_bench.py --images-dir $IMAGES $* (output also in $OUT)"
# tee ignores SIGINT so that a Ctrl-C reaches only the benchmark, which cleans up
# and still gets its last lines into the file.
rc=0
"$PY" -u bench/net_bench.py --strato-bin target/release/strato --images-dir "$IMAGES" "$@" 2>&1 |
  (trap '' INT; tee "$OUT") || rc=$?
echo "==> written to $OUT (exit code $rc)"
exit "$rc"
