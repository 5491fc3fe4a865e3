#!/usr/bin/env bash
# Benchmarks EBS volumes: CreateVolume to `available` (1 GiB and 1 TiB, real qcow2
# disks), AttachVolume until a TCG guest sees the disk, and DescribeVolumes over
# 10,000 volumes (simulated host). See bench/volume_bench.py for what is measured.
#
#   sudo ./scripts/bench-volumes.sh                 # about 3 minutes after the build
#   sudo ./scripts/bench-volumes.sh --volumes 2000  # extra arguments go to the script
#
# Builds the release binary and the built-in image (/tmp/strato-test-images), then runs
# the script with the repository's venv (.venv: boto3). Output also goes to
# target/bench-volumes.txt. Exit code: 0 all goals met, 2 some missed, else failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

OUT=target/bench-volumes.txt
IMAGES=/tmp/strato-test-images
PY=.venv/bin/python

if [ "$(id -u)" != 0 ]; then
  echo "bench-volumes.sh must run as root (Strato runs QEMU under unprivileged uids)" >&2
  exit 1
fi
if [ ! -x "$PY" ] || ! "$PY" -c 'import boto3' 2>/dev/null; then
  echo "no venv with boto3 at .venv (python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt)" >&2
  exit 1
fi
echo "==> cargo build --release -p strato"
cargo build --release -p strato
echo "==> ./scripts/build-image.sh --move-legacy $IMAGES/strato-minimal"
./scripts/build-image.sh --move-legacy "$IMAGES/strato-minimal"
mkdir -p target
rc=0
"$PY" -u bench/volume_bench.py --strato-bin target/release/strato --images-dir "$IMAGES" "$@" 2>&1 |
  (trap '' INT; tee "$OUT") || rc=$?
echo "==> written to $OUT (exit code $rc)"
exit "$rc"
