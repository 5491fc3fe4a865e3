#!/usr/bin/env bash
# Benchmarks images: CreateImage of a running instance against a snapshot of its root
# volume, ImportImage of a 2 GiB disk against qemu-img convert, and booting the
# imported UEFI image against the same QEMU by hand. See bench/image_bench.py.
#
#   sudo ./scripts/bench-images.sh                  # about 10 minutes after the build
#   sudo ./scripts/bench-images.sh --rounds 3       # extra arguments go to the script
#
# Builds the release binary, the built-in image and the UEFI test disk
# (/tmp/strato-test-images), then runs the script with the repository's venv (.venv:
# boto3). Output also goes to target/bench-images.txt. Exit code: 0 all goals met, 2
# some missed, else failed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

OUT=target/bench-images.txt
IMAGES=/tmp/strato-test-images
PY=.venv/bin/python

if [ "$(id -u)" != 0 ]; then
  echo "bench-images.sh must run as root (Strato runs QEMU under unprivileged uids)" >&2
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
./scripts/build-boot-disk.sh "$IMAGES"
./scripts/build-debian-image.sh "$IMAGES"
mkdir -p target
rc=0
"$PY" -u bench/image_bench.py --strato-bin target/release/strato --images-dir "$IMAGES" "$@" 2>&1 |
  (trap '' INT; tee "$OUT") || rc=$?
echo "==> written to $OUT (exit code $rc)"
exit "$rc"
