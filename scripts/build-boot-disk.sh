#!/usr/bin/env bash
# Builds `strato-uefi`, a disk laid out like a stock cloud image that boots through
# UEFI firmware and through a PC BIOS: a GPT disk with an EFI system partition holding
# GRUB (Debian's grub-efi-amd64-bin, as a standalone EFI binary at the removable-media
# path /EFI/BOOT/BOOTX64.EFI) with the built-in image's kernel and initrd, an ext4 root
# partition holding the built-in image's root file system, and a BIOS boot partition
# holding GRUB for BIOS (grub-pc-bin's core.img, the boot sector pointing at it).
# Nothing in it knows about Strato's direct kernel boot: OVMF or SeaBIOS finds GRUB,
# GRUB loads Linux, Linux mounts /dev/vda2.
#
#   IMAGES/strato-uefi/disk.raw    the disk (raw, sparse)
#
# Usage: scripts/build-boot-disk.sh [IMAGES]     (default: /tmp/strato-test-images)
# Needs IMAGES/strato-minimal (scripts/build-image.sh). Installs its missing tools with
# apt-get (fdisk, dosfstools, mtools, grub-efi-amd64-bin); needs no loop device and
# mounts nothing. Skips the build when the disk exists and is newer than its inputs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES="${1:-/tmp/strato-test-images}"
SRC="$IMAGES/strato-minimal"
OUT="$IMAGES/strato-uefi"
ESP_MIB=48

for f in vmlinuz initrd.img root.qcow2; do
  [ -e "$SRC/$f" ] || { echo "build-boot-disk: $SRC/$f missing; run scripts/build-image.sh first" >&2; exit 1; }
done
if [ -e "$OUT/disk.raw" ] && [ "$OUT/disk.raw" -nt "$SRC/root.qcow2" ] \
  && [ "$OUT/disk.raw" -nt "${BASH_SOURCE[0]}" ] \
  && [ "$OUT/disk.raw" -nt "$REPO/scripts/lib/grub-bios-embed.py" ]; then
  echo "build-boot-disk: $OUT/disk.raw is up to date"
  exit 0
fi

need=()
command -v sfdisk >/dev/null 2>&1 || need+=(fdisk)
command -v mkfs.vfat >/dev/null 2>&1 || need+=(dosfstools)
command -v mcopy >/dev/null 2>&1 || need+=(mtools)
[ -e /usr/lib/grub/x86_64-efi/linux.mod ] || need+=(grub-efi-amd64-bin)
[ -e /usr/lib/grub/i386-pc/boot.img ] || need+=(grub-pc-bin)
command -v grub-mkstandalone >/dev/null 2>&1 || need+=(grub-common)
if [ "${#need[@]}" -gt 0 ]; then
  echo "==> installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "==> root file system from $SRC/root.qcow2"
qemu-img convert -O raw "$SRC/root.qcow2" "$tmp/root.ext4"
root_bytes=$(stat -c %s "$tmp/root.ext4")
root_mib=$(( (root_bytes + 1048575) / 1048576 ))
truncate -s "${root_mib}M" "$tmp/root.ext4"

echo "==> GRUB for UEFI"
# GRUB's own output goes to the firmware's console, which OVMF mirrors to the serial
# port; the kernel gets the serial console as the built-in image does.
cat > "$tmp/grub.cfg" <<'EOF'
set timeout=0
echo "strato-uefi: GRUB started by the UEFI firmware"
search --no-floppy --label STRATO-ESP --set=root
linux /vmlinuz console=ttyS0 root=/dev/vda2 rootfstype=ext4 rw
initrd /initrd.img
boot
EOF
grub-mkstandalone -O x86_64-efi -o "$tmp/BOOTX64.EFI" \
  --modules="part_gpt fat search search_label linux echo normal" \
  "boot/grub/grub.cfg=$tmp/grub.cfg"

echo "==> GRUB for BIOS"
# The same, for SeaBIOS: GRUB's console is the serial port too (a BIOS does not mirror
# its screen there), and the ESP is found by its label as under UEFI.
cat > "$tmp/bios.cfg" <<'EOF'
serial --unit=0 --speed=115200
terminal_output serial console
echo "strato-uefi: GRUB started by the BIOS"
search --no-floppy --label STRATO-ESP --set=root
linux /vmlinuz console=ttyS0 root=/dev/vda2 rootfstype=ext4 rw
initrd /initrd.img
boot
EOF
grub-mkimage -O i386-pc -o "$tmp/core.img" -c "$tmp/bios.cfg" -p /boot/grub \
  biosdisk part_gpt fat search search_label linux echo normal serial terminal

echo "==> EFI system partition (${ESP_MIB} MiB FAT)"
mkfs.vfat -C -n STRATO-ESP "$tmp/esp.img" $((ESP_MIB * 1024)) >/dev/null
mmd -i "$tmp/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$tmp/esp.img" "$tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$tmp/esp.img" "$SRC/vmlinuz" ::/vmlinuz
mcopy -i "$tmp/esp.img" "$SRC/initrd.img" ::/initrd.img

echo "==> GPT disk"
# 1 MiB before the first partition (the BIOS boot partition, 1 MiB) and after the last
# (the backup GPT). Partition numbers: 1 ESP, 2 root, 3 BIOS boot (first on the disk).
total_mib=$((2 + ESP_MIB + root_mib + 1))
truncate -s "${total_mib}M" "$tmp/disk.raw"
sfdisk -q "$tmp/disk.raw" <<EOF
label: gpt
start=4096, size=$((ESP_MIB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"
start=$((4096 + ESP_MIB * 2048)), size=$((root_mib * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name="BIOS boot"
EOF
dd if="$tmp/esp.img" of="$tmp/disk.raw" bs=1M seek=2 conv=notrunc,sparse status=none
dd if="$tmp/root.ext4" of="$tmp/disk.raw" bs=1M seek=$((2 + ESP_MIB)) conv=notrunc,sparse status=none
python3 "$REPO/scripts/lib/grub-bios-embed.py" "$tmp/disk.raw" /usr/lib/grub/i386-pc/boot.img "$tmp/core.img" 2048

mkdir -p "$OUT"
chmod 755 "$OUT"
mv "$tmp/disk.raw" "$OUT/disk.raw.new"
chmod 644 "$OUT/disk.raw.new"
mv "$OUT/disk.raw.new" "$OUT/disk.raw"
echo "build-boot-disk: $OUT/disk.raw (${total_mib} MiB, built from $REPO)"
