#!/usr/bin/env bash
# One command from a fresh Debian 12 machine to a running Strato:
# installs what is missing, builds the release binary, starts `strato up` in the
# background on its embedded defaults and prints the environment for the aws CLI.
#
#   ./scripts/quickstart.sh            # data in /var/lib/strato (root) or ~/.local/share/strato, port 8773
#   STRATO_DATA_DIR=/srv/strato ./scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> building strato (release)"
cargo build --release --locked -p strato

# The same default as `strato up`: /var/lib/strato for root, ~/.local/share/strato otherwise.
if [ "$(id -u)" = 0 ]; then DEFAULT_DIR=/var/lib/strato; else DEFAULT_DIR="$HOME/.local/share/strato"; fi
DATA_DIR="${STRATO_DATA_DIR:-$DEFAULT_DIR}"
LISTEN="${STRATO_LISTEN:-127.0.0.1:8773}"
mkdir -p "$DATA_DIR"
LOG="$DATA_DIR/strato.log"

# The built-in image, so instances are real QEMU VMs (the build needs root). A rebuild
# adds a version directory and re-points the strato-minimal symlink; --data-dir lets it
# check that no instance disk uses a directory from before versioning (images/README.md).
echo "==> building the built-in image into $DATA_DIR/images/strato-minimal"
SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
$SUDO ./scripts/build-image.sh --data-dir "$DATA_DIR" "$DATA_DIR/images/strato-minimal"

if [ -f "$DATA_DIR/strato.pid" ] && kill -0 "$(cat "$DATA_DIR/strato.pid")" 2>/dev/null; then
  echo "==> strato is already running (pid $(cat "$DATA_DIR/strato.pid"))"
else
  echo "==> starting strato up (log: $LOG)"
  nohup ./target/release/strato up --data-dir "$DATA_DIR" --listen "$LISTEN" >>"$LOG" 2>&1 &
  echo $! >"$DATA_DIR/strato.pid"
  for _ in $(seq 1 100); do
    if curl -fsS "http://$LISTEN/healthz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$(cat "$DATA_DIR/strato.pid")" 2>/dev/null; then
      echo "strato failed to start; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1
    fi
    sleep 0.1
  done
fi

# A real Linux in the catalog: Debian 12 with cloud-init, built from Debian's packages
# (a few minutes the first time, with progress) and published to every account as the
# public image `debian-12-amd64`. STRATO_DEBIAN_IMAGE=0 skips it.
if [ "${STRATO_DEBIAN_IMAGE:-1}" != 0 ]; then
  echo "==> building the Debian 12 cloud image into $DATA_DIR/images/debian-12"
  $SUDO ./scripts/build-debian-image.sh "$DATA_DIR/images"
  echo "==> publishing it as debian-12-amd64 (strato images import)"
  ./target/release/strato images --data-dir "$DATA_DIR" import "$DATA_DIR/images/debian-12/disk.raw" \
    --name debian-12-amd64 --public --owner-alias strato --boot-mode uefi --format raw --if-missing \
    --description "Debian 12 (bookworm) with cloud-init, built by scripts/build-debian-image.sh"
fi

# The aws CLI, if it is not there yet, in a venv of its own.
if ! command -v aws >/dev/null 2>&1; then
  python3 -m venv .venv
  .venv/bin/pip install -q awscli
  echo "==> the aws CLI is in .venv/bin (add it to PATH: export PATH=\$PWD/.venv/bin:\$PATH)"
fi

echo
echo "Strato is running. Point the aws CLI at it with:"
echo
echo "  eval \"\$(./target/release/strato env --data-dir $DATA_DIR)\""
echo "  aws ec2 run-instances --image-id ami-05a9d2c7e4b1f3801 --instance-type t3.micro"
if [ "${STRATO_DEBIAN_IMAGE:-1}" != 0 ]; then
  echo "  aws ec2 describe-images --owners strato --filters Name=name,Values=debian-12*   # log in as 'debian'"
fi
echo
./target/release/strato env --data-dir "$DATA_DIR"
