#!/usr/bin/env bash
# Builds `debian-12`, a Debian 12 (bookworm) cloud image equivalent to Debian's own
# genericcloud image, from Debian packages only: debootstrap with cloud-init,
# openssh-server, linux-image-cloud-amd64, cloud-guest-utils (growpart) and GRUB. The
# packages' own configuration is left as shipped: cloud-init finds the EC2 datasource
# through the platform's identity, creates its default user `debian` with the key pair,
# runs #cloud-config user data, sets the hostname and grows the root file system.
#
#   IMAGES/debian-12/disk.raw      GPT disk: EFI system partition (GRUB at the removable
#                                  media path) + ext4 root labelled `debian-root`, last on
#                                  the disk so growpart can grow it
#   IMAGES/debian-12/manifest.txt  the packages in the image, with versions
#
# Usage: scripts/build-debian-image.sh [IMAGES]     (default: /tmp/strato-test-images)
# Needs root (debootstrap, ownership). Installs its missing tools with apt-get
# (debootstrap, fdisk, dosfstools, mtools, grub-efi-amd64-bin, e2fsprogs); needs no loop
# device and mounts nothing outside the chroot debootstrap makes. The mirror is the
# host's Debian mirror (DEBIAN_MIRROR to override). Skips the build when the disk exists
# and is newer than this script.
#
# Boots through UEFI firmware only (boot mode `uefi`): the disk has no BIOS boot code.
# GRUB is a standalone EFI binary whose configuration is written here, since grub-install
# and update-grub need the disk as a block device; it boots the kernel that the
# /vmlinuz symlink names, as Debian's kernel packages keep it.
set -euo pipefail

IMAGES="${1:-/tmp/strato-test-images}"
OUT="$IMAGES/debian-12"
SELF="${BASH_SOURCE[0]}"
ROOT_MIB="${DEBIAN_ROOT_MIB:-1800}"
ESP_MIB=64
MIRROR="${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PACKAGES=cloud-init,python3-cffi-backend,openssh-server,linux-image-cloud-amd64,cloud-guest-utils,gdisk,sudo,ifupdown,isc-dhcp-client,netbase,initramfs-tools,systemd-sysv,dbus,ca-certificates,locales

if [ "$(id -u)" != 0 ]; then
  echo "build-debian-image: needs root (debootstrap)" >&2
  exit 1
fi
if [ -e "$OUT/disk.raw" ] && [ "$OUT/disk.raw" -nt "$SELF" ]; then
  echo "build-debian-image: $OUT/disk.raw is up to date"
  exit 0
fi

need=()
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v sfdisk >/dev/null 2>&1 || need+=(fdisk)
command -v mkfs.vfat >/dev/null 2>&1 || need+=(dosfstools)
command -v mcopy >/dev/null 2>&1 || need+=(mtools)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
[ -e /usr/lib/grub/x86_64-efi/linux.mod ] || need+=(grub-efi-amd64-bin)
command -v grub-mkstandalone >/dev/null 2>&1 || need+=(grub-common)
if [ "${#need[@]}" -gt 0 ]; then
  echo "==> installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

tmp="$(mktemp -d /var/tmp/strato-debian.XXXXXX)"
root="$tmp/root"
cleanup() {
  # debootstrap mounts proc and sys inside the chroot; never leave them behind.
  for m in "$root/proc" "$root/sys" "$root/dev/pts" "$root/dev"; do
    mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "==> debootstrap bookworm from $MIRROR (a few minutes; every package is fetched)"
# Progress: debootstrap prints one line per step (retrieving, validating, unpacking,
# configuring); they are shown as they come.
# debootstrap does not resolve virtual packages, hence python3-cffi-backend (which
# provides python3-cryptography's python3-cffi-backend-api-*) in the list.
set +e
: > "$tmp/debootstrap.log"  # before tail looks for it
DEBIAN_FRONTEND=noninteractive debootstrap --arch=amd64 --include="$PACKAGES" \
  bookworm "$root" "$MIRROR" >> "$tmp/debootstrap.log" 2>&1 &
pid=$!
# Progress: debootstrap's own step lines, as they come.
tail -n +1 -f --pid="$pid" "$tmp/debootstrap.log" | grep --line-buffered -E '^I: (Retrieving|Validating|Extracting|Installing|Unpacking|Configuring|Base system)' \
  | awk '$2 ~ /^(Retrieving|Validating|Extracting|Unpacking|Configuring)$/ && $3 != "Release" {
           if (n[$2]++ % 25 == 0) { sub(/\.\.\.$/, "", $3); print "    " $2 " " $3 "… (" n[$2] ")"; fflush() }; next }
         { print "    " $0; fflush() }'
wait "$pid"
rc=$?
set -e
# Every package configured, or the image would boot without them (a package left
# `unpacked` is installed but never set up, e.g. cloud-init's services not enabled).
broken=$(chroot "$root" dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 != "ii" { print $2 }' || true)
if [ "$rc" != 0 ] || [ -n "$broken" ] || [ ! -x "$root/usr/bin/cloud-init" ]; then
  tail -30 "$tmp/debootstrap.log" >&2
  [ -n "$broken" ] && echo "build-debian-image: packages not configured: $broken" >&2
  echo "build-debian-image: debootstrap failed (exit $rc)" >&2
  exit 1
fi

echo "==> the image's first-boot state"
# What an image must not carry from its build: the machine identity, SSH host keys
# (cloud-init makes new ones on first boot, as on Debian's images), apt lists, logs.
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
find "$root/var/log" -type f -exec truncate -s 0 {} +
echo debian > "$root/etc/hostname"
# debootstrap copies the build host's resolv.conf in; a guest would wait on that
# nameserver (cloud-init checks DNS before it reads the metadata service). dhclient
# writes the VPC's own at boot, as on Debian's images.
: > "$root/etc/resolv.conf"
# cloud-init sets LANG=en_US.UTF-8 (its default locale) and Debian's locale-gen builds
# only what /etc/locale.gen names, so the locale is made here, as Debian's images have it.
sed -i 's/^# *\(en_US.UTF-8 UTF-8\)/\1/' "$root/etc/locale.gen"
chroot "$root" locale-gen >/dev/null
cat > "$root/etc/fstab" <<'EOF'
LABEL=debian-root  /          ext4  rw,discard,errors=remount-ro                   0 1
LABEL=DEBIAN-EFI   /boot/efi  vfat  umask=0077,nofail                                0 2
EOF
mkdir -p "$root/boot/efi"
# Debian's images set the apt sources through cloud-init from the mirror in cloud.cfg;
# the chroot's own sources.list is the build mirror.
echo "deb http://deb.debian.org/debian bookworm main" > "$root/etc/apt/sources.list"
chroot "$root" dpkg-query -W -f '${Package} ${Version}\n' > "$tmp/manifest.txt"
kernel=$(readlink "$root/vmlinuz" || true)
[ -n "$kernel" ] || { echo "build-debian-image: no /vmlinuz symlink in the image" >&2; exit 1; }
echo "    kernel: $kernel, $(wc -l < "$tmp/manifest.txt") packages"
for m in "$root/proc" "$root/sys" "$root/dev/pts" "$root/dev"; do
  mountpoint -q "$m" 2>/dev/null && umount -l "$m" || true
done

echo "==> root file system (${ROOT_MIB} MiB ext4)"
mkfs.ext4 -q -L debian-root -d "$root" "$tmp/root.ext4" "${ROOT_MIB}M"

echo "==> GRUB for UEFI"
cat > "$tmp/grub.cfg" <<'EOF'
set timeout=0
search --no-floppy --label debian-root --set=root
linux /vmlinuz root=LABEL=debian-root ro console=tty0 console=ttyS0,115200
initrd /initrd.img
boot
EOF
grub-mkstandalone -O x86_64-efi -o "$tmp/BOOTX64.EFI" \
  --modules="part_gpt fat ext2 search search_label linux echo normal gzio" \
  "boot/grub/grub.cfg=$tmp/grub.cfg"
mkfs.vfat -C -n DEBIAN-EFI "$tmp/esp.img" $((ESP_MIB * 1024)) >/dev/null
mmd -i "$tmp/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$tmp/esp.img" "$tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI

echo "==> GPT disk"
total_mib=$((1 + ESP_MIB + ROOT_MIB + 1))
truncate -s "${total_mib}M" "$tmp/disk.raw"
sfdisk -q "$tmp/disk.raw" <<EOF
label: gpt
start=2048, size=$((ESP_MIB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"
start=$((2048 + ESP_MIB * 2048)), size=$((ROOT_MIB * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"
EOF
dd if="$tmp/esp.img" of="$tmp/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
dd if="$tmp/root.ext4" of="$tmp/disk.raw" bs=1M seek=$((1 + ESP_MIB)) conv=notrunc,sparse status=none

mkdir -p "$OUT"
chmod 755 "$OUT"
cp "$tmp/manifest.txt" "$OUT/manifest.txt"
mv "$tmp/disk.raw" "$OUT/disk.raw.new"
chmod 644 "$OUT/disk.raw.new"
mv "$OUT/disk.raw.new" "$OUT/disk.raw"
echo "build-debian-image: $OUT/disk.raw (${total_mib} MiB)"
