#!/usr/bin/env bash
# Installs what building and testing Strato needs on Debian 12, skipping what is there.
# Safe to run repeatedly. Needs root (or sudo) for apt.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv python3-pip)
# Real VMs: QEMU (7.2 on Debian 12) and qemu-img for copy-on-write root disks.
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_apt+=(qemu-system-x86)
command -v qemu-img >/dev/null 2>&1 || need_apt+=(qemu-utils)
# UEFI firmware for images with boot mode uefi (SeaBIOS comes with QEMU).
[ -e /usr/share/OVMF/OVMF_CODE_4M.fd ] || need_apt+=(ovmf)
# VPC dataplane tests: namespaces, bridges and veths (iproute2), packets (ping).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
# VPC dataplane: DHCP for guests (dnsmasq), security groups and NAT (nftables).
command -v dnsmasq >/dev/null 2>&1 || need_apt+=(dnsmasq-base)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
# Logging into guests over SSH (tests, images/smoke-net.sh) with keys made by ssh-keygen.
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)

if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "==> installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# A newer qemu-utils from backports conflicts with Debian 12's QEMU, so installing
# qemu-system-x86 above can remove it: then Debian 12's own qemu-utils goes in.
if ! command -v qemu-img >/dev/null 2>&1; then
  echo "==> installing Debian packages: qemu-utils"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-utils
fi

# Rust: Debian's rustc is too old for this workspace; use rustup's stable toolchain.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "==> installing Rust with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
