#!/usr/bin/env bash
# Benchmarks Strato's real VMs (QEMU under TCG) on this host: launch overhead against
# the same QEMU command line started by hand, host memory per idle instance, density
# (idle t2.nano instances until a cap) and root-disk (qcow2 overlay) creation time.
#
#   sudo ./scripts/bench-vm.sh                   # everything (about 5-10 min after the build)
#   sudo ./scripts/bench-vm.sh --rounds 3 --cap 20  # extra arguments go to bench/vm_bench.py
#
# Builds the release binary, makes sure the built-in image exists in
# /tmp/strato-test-images (scripts/build-image.sh; needs root), then runs
# bench/vm_bench.py with the repository's venv (.venv: boto3). Everything printed is
# also written to target/bench-vm.txt. The Python script starts its own `strato up` on
# 127.0.0.1 and stops it, its VMs and its temp dirs at the end, also on failure or
# Ctrl-C. Exit code: 0 all targets met, 2 some target missed, anything else the run failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

OUT=target/bench-vm.txt
IMAGES=/tmp/strato-test-images
PY=.venv/bin/python

if [ "$(id -u)" != 0 ]; then
  echo "bench-vm.sh must run as root (Strato runs QEMU under unprivileged uids)" >&2
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
echo "==> $PY -u bench/vm_bench.py --images-dir $IMAGES $* (output also in $OUT)"
# tee ignores SIGINT so that a Ctrl-C reaches only the benchmark, which cleans up
# and still gets its last lines into the file.
rc=0
"$PY" -u bench/vm_bench.py --strato-bin target/release/strato --images-dir "$IMAGES" "$@" 2>&1 |
  (trap '' INT; tee "$OUT") || rc=$?
echo "==> written to $OUT (exit code $rc)"
exit "$rc"
