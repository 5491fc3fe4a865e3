#!/usr/bin/env bash
# Network check for the strato-minimal image: boots it under QEMU TCG with a virtio-net
# NIC on a tap inside a network namespace of its own that plays the VPC router (dnsmasq
# as DHCP server, a small IMDSv2 stand-in at 169.254.169.254:80), and checks that
#   1. first boot (ed25519 key pair, #! user data): DHCP address and hostname, the key
#      installed for ec2-user and root, SSH works for both, the user data ran once;
#   2. second boot of the same disk (the key pair now RSA): the new key is added, the
#      ed25519 one still works, same host keys, the user data does not run again;
#   3. a fresh disk with no key pair and no user data, metadata service started 10 s
#      after QEMU: "imds no key", "user-data none", SSH still comes up.
# Traffic stays inside the namespace (10.9.0.0/24 and 169.254.169.254).
#
# Usage: images/smoke-net.sh [OUT_DIR]     (default target/images/strato-minimal)
#   SMOKE_TIMEOUT=120   seconds to wait for each console marker
#   SMOKE_KEEP=1        keep the work directory (console logs) for inspection
# Needs root, qemu-system-x86_64, qemu-img, dnsmasq, ssh, ssh-keygen, python3.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMG="${1:-$REPO/target/images/strato-minimal}"
IMG="$(cd "$IMG" && pwd -P)" || { echo "smoke-net: no image directory $1" >&2; exit 2; }
TIMEOUT="${SMOKE_TIMEOUT:-120}"
[ "$(id -u)" = 0 ] || { echo "smoke-net: needs root (network namespace, tap)" >&2; exit 2; }
for c in qemu-system-x86_64 qemu-img dnsmasq ssh ssh-keygen python3 ip; do
  command -v "$c" >/dev/null || { echo "smoke-net: needs $c (scripts/install-deps.sh)" >&2; exit 2; }
done
CMDLINE="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"])' "$IMG/manifest.json")"

NS="strato-smoke-net-$$"
ROUTER=10.9.0.1
GUEST=10.9.0.10
MAC=02:00:00:00:00:01
WORK="$(mktemp -d /tmp/strato-smoke-net.XXXXXX)"
QEMU_PID="" DNSMASQ_PID="" IMDS_PID=""

stop_pid() {
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}
cleanup() {
  stop_pid "$QEMU_PID"
  stop_pid "$IMDS_PID"
  stop_pid "$DNSMASQ_PID"
  ip netns delete "$NS" 2>/dev/null || true
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "smoke-net: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
fail() {
  echo "smoke-net: FAIL: $*" >&2
  if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
    echo "---- last console lines ($LOG) ----" >&2
    tail -n 40 "$LOG" | tr -d '\r' >&2
    echo "----" >&2
  fi
  exit 1
}
in_ns() { ip netns exec "$NS" "$@"; }

# --- the VPC side --------------------------------------------------------------------------
ip netns add "$NS"
in_ns ip link set lo up
in_ns ip addr add 169.254.169.254/32 dev lo
in_ns ip tuntap add tap0 mode tap
in_ns ip addr add "$ROUTER/24" dev tap0
in_ns ip link set tap0 up
# Started with ip netns exec directly (it execs the command), so that $! is the daemon.
ip netns exec "$NS" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=tap0 \
  --bind-interfaces --leasefile-ro --dhcp-authoritative --user=root \
  --dhcp-range="$GUEST,$GUEST,255.255.255.0,1h" --dhcp-host="$MAC,$GUEST,ip-10-9-0-10" \
  --dhcp-option=option:router,"$ROUTER" --dhcp-option=option:dns-server,"$ROUTER" \
  --domain=ec2.internal --pid-file="$WORK/dnsmasq.pid" --log-facility="$WORK/dnsmasq.log" &
DNSMASQ_PID=$!

# IMDSv2 stand-in: token from PUT /latest/api/token (TTL header required), GETs need it.
# It reads its answers from files at each request, so a boot can change them.
cat >"$WORK/imds.py" <<'PY'
import http.server, os, secrets, sys
root = sys.argv[1]
tokens = set()
paths = {
    "/latest/meta-data/instance-id": "instance-id",
    "/latest/meta-data/public-keys/0/openssh-key": "openssh-key",
    "/latest/user-data": "user-data",
}
class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body=b""):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.reply(404)
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "").isdigit():
            return self.reply(400)
        t = secrets.token_urlsafe(40)
        tokens.add(t)
        self.reply(200, t.encode())
    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") not in tokens:
            return self.reply(401)
        f = os.path.join(root, paths.get(self.path, "-"))
        if not os.path.isfile(f):
            return self.reply(404)
        self.reply(200, open(f, "rb").read())
    def log_message(self, fmt, *args):
        sys.stderr.write("%s\n" % (fmt % args))
http.server.ThreadingHTTPServer(("169.254.169.254", 80), Handler).serve_forever()
PY
mkdir -p "$WORK/md"
start_imds() {
  ip netns exec "$NS" python3 "$WORK/imds.py" "$WORK/md" 2>>"$WORK/imds.log" &
  IMDS_PID=$!
}

ssh-keygen -q -t ed25519 -N '' -C smoke-ed25519 -f "$WORK/id_ed25519"
ssh-keygen -q -t rsa -b 3072 -N '' -C smoke-rsa -f "$WORK/id_rsa"
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o ConnectTimeout=10 -o BatchMode=yes -o IdentitiesOnly=yes)
guest_ssh() { # KEY USER COMMAND
  local key="$1" user="$2"
  shift 2
  in_ns ssh "${SSH_OPTS[@]}" -i "$key" "$user@$GUEST" "$@" </dev/null
}

# --- the guest -----------------------------------------------------------------------------
boot() { # NAME OVERLAY
  LOG="$WORK/console-$1.log"
  : >"$LOG"
  START=$(now)
  ip netns exec "$NS" qemu-system-x86_64 -machine pc -accel tcg -cpu qemu64 -m 256 -smp 1 -nodefaults \
    -no-user-config -display none -serial "file:$LOG" \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "$CMDLINE" \
    -drive "file=$2,if=virtio,format=qcow2" \
    -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
    -device "virtio-net-pci,netdev=n0,mac=$MAC" \
    </dev/null >"$WORK/qemu-$1.out" 2>&1 &
  QEMU_PID=$!
}
# halt: power the guest off from inside (as a user would), wait for QEMU to exit.
halt() {
  guest_ssh "$WORK/id_ed25519" root poweroff || true
  local i=0
  while kill -0 "$QEMU_PID" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 300 ] && fail "guest did not power off"
    sleep 0.1
  done
  QEMU_PID=""
}
count() { grep -aFc -- "$1" "$LOG" 2>/dev/null || true; }
wait_for() { # MARKER: prints seconds since QEMU started
  local deadline
  deadline=$(awk -v a="$(now)" -v t="$TIMEOUT" 'BEGIN { printf "%.3f", a + t }')
  while [ "$(count "$1")" -lt 1 ]; do
    kill -0 "$QEMU_PID" 2>/dev/null || fail "QEMU exited while waiting for '$1' ($(tail -3 "$WORK"/qemu-*.out))"
    awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n > d) }' && fail "timeout ($TIMEOUT s) waiting for '$1'"
    sleep 0.1
  done
  elapsed "$START"
}
expect() { # DESCRIPTION EXPECTED ACTUAL
  [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
}
host_keys() {
  sed -n '/BEGIN SSH HOST KEY KEYS/,/END SSH HOST KEY KEYS/p' "$LOG" | tr -d '\r' | grep -E '^(ssh|ecdsa)-'
}

echo "smoke-net: $IMG, TCG, namespace $NS"

# 1: fresh disk, ed25519 key pair, user data.
qemu-img create -q -f qcow2 -b "$IMG/root.qcow2" -F qcow2 "$WORK/disk1.qcow2"
echo i-0123456789abcdef0 >"$WORK/md/instance-id"
cp "$WORK/id_ed25519.pub" "$WORK/md/openssh-key"
printf '#!/bin/sh\necho "user data ran as $(id -un) in $(pwd)"\necho ran >>/var/lib/user-data-runs\nexit 3\n' \
  >"$WORK/md/user-data"
start_imds
boot 1 "$WORK/disk1.qcow2"
t_ready=$(wait_for "strato-minimal: multi-user ready")
t_net=$(wait_for "strato-minimal: network up $GUEST")
t_key=$(wait_for "strato-minimal: imds key installed")
t_ssh=$(wait_for "strato-minimal: ssh ready")
t_ud=$(wait_for "strato-minimal: user-data exit 3")
echo "boot 1: ready ${t_ready} s, network up ${t_net} s, key ${t_key} s, ssh ready ${t_ssh} s, user data ${t_ud} s"
grep -aqF "user data ran as root in /" "$LOG" || fail "user data output not on the console"
expect "hostname" "ip-10-9-0-10" "$(guest_ssh "$WORK/id_ed25519" ec2-user hostname)"
expect "id" "uid=1000(ec2-user) gid=1000(ec2-user) groups=1000(ec2-user)" \
  "$(guest_ssh "$WORK/id_ed25519" ec2-user id)"
expect "root login" "root" "$(guest_ssh "$WORK/id_ed25519" root id -un)"
expect "resolv.conf" "nameserver $ROUTER" "$(guest_ssh "$WORK/id_ed25519" root grep nameserver /etc/resolv.conf)"
expect "user-data.log" "user data ran as root in /" "$(guest_ssh "$WORK/id_ed25519" root cat /var/log/user-data.log)"
expect "modes" "700 1000 600 1000" \
  "$(guest_ssh "$WORK/id_ed25519" root stat -c "'%a %u'" /home/ec2-user/.ssh /home/ec2-user/.ssh/authorized_keys | tr '\n' ' ' | sed 's/ $//')"
if guest_ssh "$WORK/id_rsa" ec2-user true 2>/dev/null; then fail "a key that is not the instance's was accepted"; fi
keys1="$(host_keys)"
[ -n "$keys1" ] || fail "no host keys on the console"
# A client that only takes RSA host keys makes dropbear create one on demand.
expect "rsa host key" "ec2-user" \
  "$(guest_ssh "$WORK/id_ed25519" ec2-user -o HostKeyAlgorithms=rsa-sha2-512,rsa-sha2-256 id -un 2>/dev/null || true)"
halt

# 2: same disk, the key pair is now RSA.
cp "$WORK/id_rsa.pub" "$WORK/md/openssh-key"
boot 2 "$WORK/disk1.qcow2"
t_ssh=$(wait_for "strato-minimal: ssh ready")
wait_for "strato-minimal: user-data already ran" >/dev/null
echo "boot 2: ssh ready ${t_ssh} s"
expect "rsa login" "ec2-user" "$(guest_ssh "$WORK/id_rsa" ec2-user id -un)"
expect "ed25519 login" "ec2-user" "$(guest_ssh "$WORK/id_ed25519" ec2-user id -un)"
expect "user data runs" "ran" "$(guest_ssh "$WORK/id_rsa" root cat /var/lib/user-data-runs)"
keys2="$(host_keys)"
while IFS= read -r k; do
  printf '%s\n' "$keys2" | grep -qxF -- "$k" || fail "host key changed across reboots: $k"
done <<<"$keys1"
printf '%s\n' "$keys2" | grep -q '^ssh-rsa ' || fail "the RSA host key made on demand was not kept"
[ "$(count "strato-minimal: user-data exit")" = 0 ] || fail "user data ran again"
halt

# 3: fresh disk, no key pair, no user data, metadata service late.
stop_pid "$IMDS_PID"
rm -f "$WORK/md/openssh-key" "$WORK/md/user-data"
echo i-0fedcba9876543210 >"$WORK/md/instance-id"
qemu-img create -q -f qcow2 -b "$IMG/root.qcow2" -F qcow2 "$WORK/disk3.qcow2"
boot 3 "$WORK/disk3.qcow2"
sleep 10
start_imds
wait_for "strato-minimal: imds no key" >/dev/null
t_ssh=$(wait_for "strato-minimal: ssh ready")
wait_for "strato-minimal: user-data none" >/dev/null
echo "boot 3: imds started at 10 s, no key, ssh ready ${t_ssh} s"
if guest_ssh "$WORK/id_ed25519" ec2-user true 2>/dev/null; then fail "login without a key pair"; fi
stop_pid "$QEMU_PID"
QEMU_PID=""

echo "smoke-net: PASS"
