#!/usr/bin/env python3
"""Makes a GPT disk image file boot GRUB through a PC BIOS (SeaBIOS), as grub-install
does on a block device, without one: no loop device, nothing mounted.

Usage: grub-bios-embed.py DISK BOOT_IMG CORE_IMG LBA

- BOOT_IMG (GRUB's i386-pc boot.img) becomes the disk's boot sector. The disk's own
  BPB area, disk signature and protective MBR partition table are kept; the sector
  is told where core.img starts (LBA) and to skip its floppy-drive check.
- CORE_IMG (made by `grub-mkimage -O i386-pc`, its configuration embedded) is written
  at LBA, which must be the start of the disk's BIOS boot partition (type
  21686148-6449-6E6F-744E-656564454649) and large enough. Its first sector
  (diskboot.img) gets the block list of the rest. No Reed-Solomon codes are added
  (as `grub-bios-setup --no-rs-codes`): the partition is not shared with anything.

grub-bios-setup itself insists on resolving the GRUB directory's host device, which
fails for a disk image file; the offsets used here are GRUB 2.06's
(include/grub/i386/pc/boot.h and boot/i386/pc/diskboot.S).
"""
import sys

BPB = slice(0x03, 0x5A)
KERNEL_SECTOR = slice(0x5C, 0x64)
DRIVE_CHECK = slice(0x66, 0x68)
MBR_TAIL = slice(0x1B8, 0x200)  # disk signature, partition table, 0x55AA
BLOCKLIST_START = slice(0x1F4, 0x1FC)
BLOCKLIST_LEN = slice(0x1FC, 0x1FE)


def main():
    disk, boot_img, core_img, lba = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    boot = bytearray(open(boot_img, "rb").read())
    core = bytearray(open(core_img, "rb").read())
    if len(boot) != 512:
        sys.exit(f"{boot_img}: not a 512-byte boot sector")
    sectors = (len(core) + 511) // 512
    core += b"\0" * (sectors * 512 - len(core))
    with open(disk, "r+b") as f:
        mbr = bytearray(f.read(512))
        if mbr[0x1FE:0x200] != b"\x55\xaa":
            sys.exit(f"{disk}: no protective MBR (make the GPT first)")
        boot[BPB] = mbr[BPB]
        boot[MBR_TAIL] = mbr[MBR_TAIL]
        boot[KERNEL_SECTOR] = lba.to_bytes(8, "little")
        boot[DRIVE_CHECK] = b"\x90\x90"  # nop nop: a hard disk, not a floppy
        core[BLOCKLIST_START] = (lba + 1).to_bytes(8, "little")
        core[BLOCKLIST_LEN] = (sectors - 1).to_bytes(2, "little")
        f.seek(0)
        f.write(boot)
        f.seek(lba * 512)
        f.write(core)
    print(f"    GRUB for BIOS: boot sector, core.img ({sectors} sectors) at LBA {lba}")


if __name__ == "__main__":
    main()
