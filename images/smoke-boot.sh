#!/usr/bin/env bash
# Smoke check for the strato-minimal image: boots it under QEMU TCG and checks that
#   1. the guest reaches "multi-user ready" (timeout SMOKE_READY_TIMEOUT, default 60 s),
#   2. QMP system_powerdown (ACPI power button) makes it power off by itself
#      (QEMU exits within SMOKE_POWEROFF_TIMEOUT, default 30 s),
#   3. a second boot of the same disk reaches ready again and sees what the first
#      boot wrote (the boot counter in /var/lib/strato/boot-count goes 1 -> 2),
#   4. ctrl-alt-delete through QMP send-key reboots the guest gracefully (boot marker
#      seen a second time, boot counter 3), then system_powerdown again.
# The image is never modified: the guest writes to a temporary qcow2 overlay.
#
# Usage: images/smoke-boot.sh [OUT_DIR]     (default target/images/strato-minimal)
#   SMOKE_SKIP_REBOOT=1     skip step 4
#   SMOKE_KEEP=1            keep the work directory (console logs) for inspection
# Always uses TCG (the KVM here cannot boot stock kernels). Exit status 0 = pass.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMG="${1:-$REPO/target/images/strato-minimal}"
IMG="$(cd "$IMG" && pwd -P)" || { echo "smoke-boot: no image directory $1" >&2; exit 2; }
READY_TIMEOUT="${SMOKE_READY_TIMEOUT:-60}"
POWEROFF_TIMEOUT="${SMOKE_POWEROFF_TIMEOUT:-30}"
INIT_MARKER="strato-minimal: init running"
READY_MARKER="strato-minimal: multi-user ready"

for f in vmlinuz initrd.img root.qcow2 manifest.json; do
  [ -s "$IMG/$f" ] || { echo "smoke-boot: missing $IMG/$f (run scripts/build-image.sh)" >&2; exit 2; }
done
for c in qemu-system-x86_64 qemu-img python3; do
  command -v "$c" >/dev/null || { echo "smoke-boot: needs $c (apt-get install qemu-system-x86 qemu-utils python3)" >&2; exit 2; }
done
CMDLINE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"])' "$IMG/manifest.json")"

WORK="$(mktemp -d /tmp/strato-smoke.XXXXXX)"
QEMU_PID=""
cleanup() {
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    kill "$QEMU_PID" 2>/dev/null || true
    sleep 0.5
    kill -9 "$QEMU_PID" 2>/dev/null || true
  fi
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "smoke-boot: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

qemu-img create -q -f qcow2 -b "$IMG/root.qcow2" -F qcow2 "$WORK/overlay.qcow2"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() {
  echo "smoke-boot: FAIL: $*" >&2
  if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
    echo "---- last console lines ($LOG) ----" >&2
    tail -n 40 "$LOG" | tr -d '\r' >&2
    echo "----" >&2
  fi
  exit 1
}

# qmp COMMAND [JSON-ARGUMENTS]: run one QMP command on the current VM's socket.
qmp() {
  python3 - "$WORK/qmp.sock" "$@" <<'PY'
import json, socket, sys
path, cmd = sys.argv[1], sys.argv[2]
args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(path)
f = s.makefile("rw")
json.loads(f.readline())  # greeting
def call(name, arguments=None):
    msg = {"execute": name}
    if arguments is not None:
        msg["arguments"] = arguments
    f.write(json.dumps(msg) + "\n"); f.flush()
    while True:
        line = f.readline()
        if not line:
            sys.exit("qmp: connection closed")
        r = json.loads(line)
        if "return" in r:
            return r["return"]
        if "error" in r:
            sys.exit("qmp: %s: %s" % (name, r["error"]))
call("qmp_capabilities")
print(json.dumps(call(cmd, args)))
PY
}

# boot N: start QEMU on the overlay with console log $WORK/console-N.log.
boot() {
  LOG="$WORK/console-$1.log"
  rm -f "$WORK/qmp.sock"
  : >"$LOG"
  START=$(now)
  qemu-system-x86_64 -M pc -accel tcg -m 256 -smp 1 -nographic -no-user-config -nodefaults \
    -serial "file:$LOG" \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "$CMDLINE" \
    -drive "file=$WORK/overlay.qcow2,if=virtio,format=qcow2" \
    -qmp "unix:$WORK/qmp.sock,server=on,wait=off" \
    </dev/null >"$WORK/qemu-$1.out" 2>&1 &
  QEMU_PID=$!
}

# count PATTERN: how many console lines contain PATTERN.
count() { grep -aFc -- "$1" "$LOG" 2>/dev/null || true; }

# wait_for PATTERN N TIMEOUT: wait until PATTERN has appeared N times; prints seconds since boot.
wait_for() {
  local deadline
  deadline=$(awk -v a="$(now)" -v t="$3" 'BEGIN { printf "%.3f", a + t }')
  while [ "$(count "$1")" -lt "$2" ]; do
    kill -0 "$QEMU_PID" 2>/dev/null || fail "QEMU exited while waiting for '$1' ($(cat "$WORK"/qemu-*.out 2>/dev/null | tail -3))"
    awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n > d) }' && fail "timeout ($3 s) waiting for '$1'"
    sleep 0.1
  done
  elapsed "$START"
}

boot_count() { grep -aoE 'strato-minimal: boot [0-9]+' "$LOG" | tail -1 | awk '{ print $3 }'; }

powerdown() {
  local t0 i=0
  t0=$(now)
  qmp system_powerdown >/dev/null || fail "QMP system_powerdown failed"
  while kill -0 "$QEMU_PID" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt $((POWEROFF_TIMEOUT * 10)) ] && fail "guest did not power off within $POWEROFF_TIMEOUT s after system_powerdown"
    sleep 0.1
  done
  wait "$QEMU_PID" || fail "QEMU exited with status $?"
  QEMU_PID=""
  grep -aqF "strato-minimal: power button pressed" "$LOG" || fail "acpid did not see the power button"
  grep -aqF "strato-minimal: root filesystem synced" "$LOG" || fail "shutdown script did not run"
  echo "$1: system_powerdown -> clean guest poweroff, QEMU exited after $(elapsed "$t0") s"
}

echo "smoke-boot: $IMG ($(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["kernel_version"])' "$IMG/manifest.json")), TCG"

# 1-2: first boot, then ACPI power off.
boot 1
t_init=$(wait_for "$INIT_MARKER" 1 "$READY_TIMEOUT")
t_ready=$(wait_for "$READY_MARKER" 1 "$READY_TIMEOUT")
n=$(boot_count)
echo "boot 1: init marker after $t_init s, multi-user ready after $t_ready s (boot count $n)"
[ "$n" = 1 ] || fail "expected boot count 1 on a fresh disk, got '$n'"
powerdown "boot 1"

# 3: second boot of the same overlay must see the first boot's write.
boot 2
t_init=$(wait_for "$INIT_MARKER" 1 "$READY_TIMEOUT")
t_ready=$(wait_for "$READY_MARKER" 1 "$READY_TIMEOUT")
n=$(boot_count)
echo "boot 2: init marker after $t_init s, multi-user ready after $t_ready s (boot count $n: root disk writes persist)"
[ "$n" = 2 ] || fail "expected boot count 2 on the second boot, got '$n'"

# 4: ctrl-alt-delete -> graceful reboot inside the same QEMU process.
if [ "${SMOKE_SKIP_REBOOT:-0}" != 1 ]; then
  START=$(now)
  qmp send-key '{"keys": [{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}]}' >/dev/null \
    || fail "QMP send-key failed"
  t_init=$(wait_for "$INIT_MARKER" 2 "$READY_TIMEOUT")
  t_ready=$(wait_for "$READY_MARKER" 2 "$READY_TIMEOUT")
  n=$(boot_count)
  grep -aqF "strato-minimal: root filesystem synced" "$LOG" || fail "shutdown script did not run before the reboot"
  echo "boot 3 (ctrl-alt-delete): init marker after $t_init s, multi-user ready after $t_ready s (boot count $n)"
  [ "$n" = 3 ] || fail "expected boot count 3 after the reboot, got '$n'"
fi
powerdown "boot 2"

echo "smoke-boot: PASS"
