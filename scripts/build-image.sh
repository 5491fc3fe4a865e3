#!/usr/bin/env bash
# Builds Strato's built-in VM image `strato-minimal` (x86_64) from Debian packages only:
#
#   vmlinuz        Debian's cloud kernel (linux-image-cloud-amd64 -> linux-image-6.1.*-cloud-amd64)
#   initrd.img     small cpio.gz initramfs: static busybox, virtio modules, /init
#   root.qcow2     64 MiB qcow2 disk, ext4 root filesystem with a busybox userland and
#                  dropbear (SSH server) with the shared libraries it needs
#   manifest.json  name, architecture, versions, sha256 of each file, kernel command line,
#                  hash of the build inputs
#
# Usage: scripts/build-image.sh [--force] [OUT_DIR]   (default OUT_DIR: target/images/strato-minimal)
#
# Skips the build when OUT_DIR already holds a complete image built from the same inputs
# (this script and every file under images/strato-minimal/), unless --force is given.
# Needs root (device nodes, ownership, apt). Installs its missing build tools with apt-get.
# The kernel, busybox and dropbear packages (and dropbear's libraries) are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x` into a temporary directory: nothing
# is installed on the host for them.
# Files copied into the image come from images/strato-minimal/ in this repository.
# Set SOURCE_DATE_EPOCH to fix timestamps (default: the kernel package's build date).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$REPO/images/strato-minimal"
NAME=strato-minimal
ARCH=x86_64
ROOT_SIZE_MIB=64
ROOT_DEVICE=/dev/vda
KERNEL_META=linux-image-cloud-amd64
BUSYBOX_PKG=busybox-static
DROPBEAR_PKG=dropbear-bin
# dropbear's shared libraries come from these packages (its Depends, and libtomcrypt's
# libgmp); the build checks that they resolve every library dropbear loads.
DROPBEAR_LIB_PKGS=(libc6 libcrypt1 libtomcrypt1 libtommath1 zlib1g libgmp10)
# The image's login user, as on Amazon Linux (the key pair's key goes to it and to root).
SSH_USER=ec2-user
SSH_UID=1000
# Kernel command line for QEMU's -append (the initramfs reads root=, rootfstype=, init=).
CMDLINE="console=ttyS0 root=$ROOT_DEVICE rootfstype=ext4 rw"
# Loaded by the initramfs /init, in this order (dependency order). ext4, jbd2, mbcache,
# crc16 and crc32c are built into the Debian cloud kernel, so they need no module.
INITRD_MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
  failover net_failover virtio_net virtio_blk virtio_rng evdev button)
# Also copied to the root fs (/lib/modules), loaded by /etc/init.d/rcS from /etc/modules.
ROOTFS_MODULES=("${INITRD_MODULES[@]}")
INIT_MARKER="strato-minimal: init running"
READY_MARKER="strato-minimal: multi-user ready"
SSH_READY_MARKER="strato-minimal: ssh ready"

usage() { sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

FORCE=0
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f|--force) FORCE=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "build-image: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$OUT" ] || { echo "build-image: one OUT_DIR only" >&2; exit 2; }; OUT="$1" ;;
  esac
  shift
done
OUT="${OUT:-$REPO/target/images/$NAME}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
OUT="${OUT%/}"

log() { echo "==> $*"; }
die() { echo "build-image: error: $*" >&2; exit 1; }

# Hash of everything the image is made of in this repository: this script and each file
# under images/strato-minimal/ (path, executable bit, content or link target). Package
# versions are not in it: a new Debian kernel needs --force.
source_hash() {
  (
    cd "$REPO"
    { echo scripts/build-image.sh; find images/strato-minimal \( -type f -o -type l \); } \
      | LC_ALL=C sort | while IFS= read -r f; do
        if [ -L "$f" ]; then
          printf 'link %s %s\n' "$f" "$(readlink "$f")"
        else
          x=-; [ -x "$f" ] && x=x
          printf 'file %s %s %s\n' "$f" "$x" "$(sha256sum <"$f" | cut -d' ' -f1)"
        fi
      done
  ) | sha256sum | cut -d' ' -f1
}
SOURCE_HASH="$(source_hash)"

if [ "$FORCE" = 0 ] && [ -s "$OUT/manifest.json" ] && [ -s "$OUT/vmlinuz" ] \
  && [ -s "$OUT/initrd.img" ] && [ -s "$OUT/root.qcow2" ]; then
  built_from="$(sed -n 's/^ *"source_hash": "\([0-9a-f]*\)".*/\1/p' "$OUT/manifest.json")"
  if [ "$built_from" = "$SOURCE_HASH" ]; then
    log "$OUT already holds $NAME built from these sources (use --force to rebuild)"
    exit 0
  fi
  log "$OUT holds $NAME built from other sources (${built_from:-no source hash}): rebuilding"
fi

[ "$(id -u)" = 0 ] || die "run as root (needs device nodes, root-owned files and apt-get)"
[ "$(uname -m)" = x86_64 ] || die "builds on x86_64 hosts only (runs busybox --list-full)"
[ -d "$SRC/rootfs" ] && [ -x "$SRC/initramfs/init" ] || die "missing $SRC"

# --- build tools -------------------------------------------------------------------------
need=()
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "needs a Debian system (apt-get, dpkg-deb)"
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
command -v depmod >/dev/null || need+=(kmod)
command -v modinfo >/dev/null || need+=(kmod)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v sha256sum >/dev/null || need+=(coreutils)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing build tools: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
case "$(mkfs.ext4 -V 2>&1 | head -1)" in
  *"mke2fs 1.4"[3-9]* | *"mke2fs 1."[5-9]*) ;;
  *) die "mkfs.ext4 too old for -d (need e2fsprogs >= 1.43)" ;;
esac

T0=$(date +%s.%N)
WORK="$(mktemp -d /tmp/strato-image.XXXXXX)"
PARTIAL="$OUT.partial.$$"
cleanup() { rm -rf "$WORK" "$PARTIAL"; }
trap cleanup EXIT
chmod 755 "$WORK"

# --- packages ----------------------------------------------------------------------------
have_lists=1
for p in "$KERNEL_META" "$BUSYBOX_PKG" "$DROPBEAR_PKG" "${DROPBEAR_LIB_PKGS[@]}"; do
  apt-cache show "$p" >/dev/null 2>&1 || have_lists=0
done
if [ "$have_lists" = 0 ]; then
  log "apt-get update"
  apt-get update -qq
fi
KERNEL_PKG="$(apt-cache depends "$KERNEL_META" | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')"
[ -n "$KERNEL_PKG" ] || die "cannot resolve the kernel package $KERNEL_META depends on"
log "downloading $KERNEL_PKG $BUSYBOX_PKG $DROPBEAR_PKG ${DROPBEAR_LIB_PKGS[*]}"
mkdir -p "$WORK/debs"
download() {
  (cd "$WORK/debs" && apt-get download -qq -o APT::Sandbox::User=root "$KERNEL_PKG" "$BUSYBOX_PKG" \
    "$KERNEL_META" "$DROPBEAR_PKG" "${DROPBEAR_LIB_PKGS[@]}")
}
# Stale package lists name versions the mirror no longer has: refresh once and retry.
if ! download; then
  log "download failed; refreshing package lists and retrying"
  apt-get update -qq
  KERNEL_PKG="$(apt-cache depends "$KERNEL_META" | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')"
  rm -f "$WORK"/debs/*.deb
  download || die "apt-get download failed"
fi
deb_of() { ls "$WORK/debs/$1"_*.deb; }
KERNEL_DEB="$(deb_of "$KERNEL_PKG")"
BUSYBOX_DEB="$(deb_of "$BUSYBOX_PKG")"
KERNEL_PKG_VERSION="$(dpkg-deb -f "$KERNEL_DEB" Version)"
KERNEL_META_VERSION="$(dpkg-deb -f "$(deb_of "$KERNEL_META")" Version)"
BUSYBOX_VERSION="$(dpkg-deb -f "$BUSYBOX_DEB" Version)"
DROPBEAR_DEB="$(deb_of "$DROPBEAR_PKG")"
DROPBEAR_VERSION="$(dpkg-deb -f "$DROPBEAR_DEB" Version)"

dpkg-deb -x "$KERNEL_DEB" "$WORK/kernel"
dpkg-deb -x "$BUSYBOX_DEB" "$WORK/busybox"
KVER="$(ls "$WORK/kernel/lib/modules")"
[ "$(echo "$KVER" | wc -l)" = 1 ] || die "expected one module tree in $KERNEL_DEB"
VMLINUZ="$WORK/kernel/boot/vmlinuz-$KVER"
KCONFIG="$WORK/kernel/boot/config-$KVER"
[ -f "$VMLINUZ" ] && [ -f "$KCONFIG" ] || die "no vmlinuz/config in $KERNEL_DEB"
BUSYBOX="$WORK/busybox/bin/busybox"
[ -x "$BUSYBOX" ] || die "no /bin/busybox in $BUSYBOX_DEB"
"$BUSYBOX" true || die "busybox from $BUSYBOX_DEB does not run"
# dropbear and its libraries, unpacked together: the libraries it loads are taken from here.
DB="$WORK/dropbear"
for p in "$DROPBEAR_PKG" "${DROPBEAR_LIB_PKGS[@]}"; do
  dpkg-deb -x "$(deb_of "$p")" "$DB"
done
DB_LDSO=/lib64/ld-linux-x86-64.so.2
DB_LIBPATH="$DB/lib/x86_64-linux-gnu:$DB/usr/lib/x86_64-linux-gnu"
[ -x "$DB/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ] || die "no dynamic loader in libc6"
log "kernel $KVER ($KERNEL_PKG $KERNEL_PKG_VERSION), busybox $BUSYBOX_VERSION, dropbear $DROPBEAR_VERSION"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(stat -c %Y "$VMLINUZ")"
fi
export SOURCE_DATE_EPOCH

# Features the image relies on must be built in (=y) or come as one of our modules.
for opt in DEVTMPFS EXT4_FS BLK_DEV_INITRD ACPI SERIAL_8250_CONSOLE VT INPUT KEYBOARD_ATKBD SERIO_I8042; do
  grep -q "^CONFIG_$opt=y" "$KCONFIG" || die "kernel $KVER lacks CONFIG_$opt=y"
done
for opt in VIRTIO_PCI VIRTIO_BLK VIRTIO_NET INPUT_EVDEV ACPI_BUTTON; do
  grep -q "^CONFIG_$opt=[ym]" "$KCONFIG" || die "kernel $KVER lacks CONFIG_$opt"
done

# --- modules -----------------------------------------------------------------------------
MODSRC="$WORK/kernel/lib/modules/$KVER"
# Index "name path" of the package's modules (module names treat - and _ alike).
find "$MODSRC/kernel" -name '*.ko*' \
  | awk '{ n = $0; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n); print n, $0 }' >"$WORK/module-index"
# Path of module NAME, or nothing when it is built into the kernel; fails when unknown.
module_path() {
  local n="${1//-/_}" p
  p="$(awk -v n="$n" '$1 == n { print $2; exit }' "$WORK/module-index")"
  if [ -n "$p" ]; then echo "$p"; return 0; fi
  awk -v n="$n" '{ b = $0; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b) } b == n { f = 1 } END { exit !f }' \
    "$MODSRC/modules.builtin"
}
# install_modules DESTROOT NAME...: copy the modules and all their dependencies, run depmod.
install_modules() {
  local dest="$1"; shift
  local queue=("$@") seen=" " m p deps d
  while [ "${#queue[@]}" -gt 0 ]; do
    m="${queue[0]//-/_}"; queue=("${queue[@]:1}")
    case "$seen" in *" $m "*) continue ;; esac
    seen="$seen$m "
    p="$(module_path "$m")" || die "module $m not found in $KERNEL_PKG"
    [ -n "$p" ] || continue # built in
    mkdir -p "$dest/lib/modules/$KVER/$(dirname "${p#"$MODSRC"/}")"
    cp "$p" "$dest/lib/modules/$KVER/${p#"$MODSRC"/}"
    deps="$(modinfo -F depends "$p")"
    for d in ${deps//,/ }; do queue+=("$d"); done
  done
  cp "$MODSRC"/modules.builtin "$MODSRC"/modules.builtin.modinfo "$MODSRC"/modules.order "$dest/lib/modules/$KVER/"
  depmod -b "$dest" "$KVER"
}

# Busybox with its applet links (as in busybox --install -s, but relative and built here).
install_busybox() {
  local dest="$1" a
  mkdir -p "$dest/bin" "$dest/sbin" "$dest/usr/bin" "$dest/usr/sbin"
  cp "$BUSYBOX" "$dest/bin/busybox"
  chmod 755 "$dest/bin/busybox"
  "$BUSYBOX" --list-full | while read -r a; do
    [ "$a" = bin/busybox ] && continue
    [ -e "$dest/$a" ] || [ -L "$dest/$a" ] && continue
    case "$a" in
      bin/*) ln -s busybox "$dest/$a" ;;
      sbin/*) ln -s ../bin/busybox "$dest/$a" ;;
      usr/bin/* | usr/sbin/*) ln -s ../../bin/busybox "$dest/$a" ;;
    esac
  done
}

# install_dropbear DESTROOT: dropbear, dropbearkey and every shared library they load,
# at the paths the packages use (the loader's default search path finds them).
install_dropbear() {
  local dest="$1" bin lib libs
  mkdir -p "$dest/usr/sbin" "$dest/usr/bin" "$dest/lib64"
  install -m 755 "$DB/usr/sbin/dropbear" "$dest/usr/sbin/dropbear"
  install -m 755 "$DB/usr/bin/dropbearkey" "$dest/usr/bin/dropbearkey"
  for bin in usr/sbin/dropbear usr/bin/dropbearkey; do
    # The packages' own loader lists what the binary needs; anything it finds outside
    # $DB came from the host and means a package is missing from DROPBEAR_LIB_PKGS.
    libs="$("$DB/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$DB_LIBPATH" --list "$DB/$bin" \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $2 == "=>" && $3 == "not" { print "MISSING:" $1 }')" \
      || die "cannot list the libraries of $bin"
    for lib in $libs; do
      case "$lib" in
        "$DB"/*) ;;
        *) die "$bin needs ${lib#MISSING:}, which no package in DROPBEAR_LIB_PKGS provides" ;;
      esac
      mkdir -p "$dest/$(dirname "${lib#"$DB"/}")"
      cp -L "$lib" "$dest/${lib#"$DB"/}"
    done
  done
  cp -L "$DB/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$dest/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
  ln -sfn /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$dest$DB_LDSO"
}

# --- initramfs ---------------------------------------------------------------------------
log "building initrd.img"
IR="$WORK/initramfs"
mkdir -p "$IR"/{dev,proc,sys,run,tmp,newroot,etc,root,lib/modules}
install_busybox "$IR"
install_modules "$IR" "${INITRD_MODULES[@]}"
printf '%s\n' "${INITRD_MODULES[@]}" >"$IR/etc/initrd-modules"
cp "$SRC/initramfs/init" "$IR/init"
chmod 755 "$IR/init"
mknod -m 600 "$IR/dev/console" c 5 1
mknod -m 666 "$IR/dev/null" c 1 3
find "$IR" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$PARTIAL"
(cd "$IR" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) \
  | gzip -9 -n >"$PARTIAL/initrd.img"

# --- root filesystem ---------------------------------------------------------------------
log "building root.qcow2 (${ROOT_SIZE_MIB} MiB ext4)"
RF="$WORK/rootfs"
mkdir -p "$RF"/{dev,proc,sys,run,tmp,mnt,root,home,etc,lib/modules,var/log,var/lib/strato,var/tmp}
ln -s ../run "$RF/var/run"
chmod 1777 "$RF/tmp" "$RF/var/tmp"
chmod 700 "$RF/root"
install_busybox "$RF"
install_dropbear "$RF"
cp -a "$SRC/rootfs/." "$RF/"
chown -R 0:0 "$RF"
chmod 640 "$RF/etc/shadow"
mkdir -p "$RF/etc/dropbear" "$RF/home/$SSH_USER/.ssh"
chmod 700 "$RF/etc/dropbear" "$RF/home/$SSH_USER" "$RF/home/$SSH_USER/.ssh"
chown -R "$SSH_UID:$SSH_UID" "$RF/home/$SSH_USER"
grep -q "^$SSH_USER:x:$SSH_UID:$SSH_UID:" "$RF/etc/passwd" || die "rootfs/etc/passwd lacks $SSH_USER ($SSH_UID)"
# The libraries must work inside the image, not only next to the host's.
chroot "$RF" /usr/sbin/dropbear -V 2>&1 | grep -q "Dropbear v" || die "dropbear does not run in the root fs"
install_modules "$RF" "${ROOTFS_MODULES[@]}"
mknod -m 600 "$RF/dev/console" c 5 1
mknod -m 666 "$RF/dev/null" c 1 3
cat >"$RF/etc/os-release" <<EOF
NAME="Strato minimal"
ID=strato-minimal
ID_LIKE=debian
VERSION_ID="1"
PRETTY_NAME="Strato minimal (Debian kernel $KVER, busybox $BUSYBOX_VERSION)"
HOME_URL="https://github.com/"
EOF
printf '%s\n' "$NAME" "kernel=$KVER" "kernel_package=$KERNEL_PKG $KERNEL_PKG_VERSION" \
  "busybox=$BUSYBOX_VERSION" "dropbear=$DROPBEAR_VERSION" >"$RF/etc/strato/image"
find "$RF" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# Deterministic UUID and hash seed (derived from the versions), fixed timestamps.
seed="$(printf '%s %s %s %s' "$NAME" "$KERNEL_PKG_VERSION" "$BUSYBOX_VERSION" "$DROPBEAR_VERSION" | sha256sum | cut -c1-32)"
FS_UUID="${seed:0:8}-${seed:8:4}-4${seed:13:3}-a${seed:17:3}-${seed:20:12}"
truncate -s "${ROOT_SIZE_MIB}M" "$WORK/root.raw"
E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" mkfs.ext4 -q -F -b 4096 -I 256 -L strato-root \
  -U "$FS_UUID" -E "hash_seed=$FS_UUID,root_owner=0:0" -d "$RF" "$WORK/root.raw"
qemu-img convert -q -f raw -O qcow2 "$WORK/root.raw" "$PARTIAL/root.qcow2"

cp "$VMLINUZ" "$PARTIAL/vmlinuz"

# --- manifest ----------------------------------------------------------------------------
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
json_list() { local first=1 x; printf '['; for x in "$@"; do [ $first = 1 ] || printf ', '; first=0; json_str "$x"; done; printf ']'; }
file_entry() {
  printf '    %s: {"sha256": "%s", "size": %s}' "$(json_str "$1")" \
    "$(sha256sum "$PARTIAL/$1" | cut -d' ' -f1)" "$(stat -c %s "$PARTIAL/$1")"
}
DEBIAN_RELEASE="$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-unknown}")"
{
  echo "{"
  echo "  \"name\": $(json_str "$NAME"),"
  echo "  \"architecture\": $(json_str "$ARCH"),"
  echo "  \"kernel_version\": $(json_str "$KVER"),"
  echo "  \"kernel_package\": $(json_str "$KERNEL_PKG"),"
  echo "  \"kernel_package_version\": $(json_str "$KERNEL_PKG_VERSION"),"
  echo "  \"kernel_meta_package\": $(json_str "$KERNEL_META $KERNEL_META_VERSION"),"
  echo "  \"busybox_package\": $(json_str "$BUSYBOX_PKG"),"
  echo "  \"busybox_version\": $(json_str "$BUSYBOX_VERSION"),"
  echo "  \"dropbear_package\": $(json_str "$DROPBEAR_PKG"),"
  echo "  \"dropbear_version\": $(json_str "$DROPBEAR_VERSION"),"
  echo "  \"source_hash\": $(json_str "$SOURCE_HASH"),"
  echo "  \"debian_release\": $(json_str "$DEBIAN_RELEASE"),"
  echo "  \"build_date\": $(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),"
  echo "  \"source_date_epoch\": $SOURCE_DATE_EPOCH,"
  echo "  \"kernel\": \"vmlinuz\","
  echo "  \"initrd\": \"initrd.img\","
  echo "  \"root_disk\": \"root.qcow2\","
  echo "  \"root_disk_format\": \"qcow2\","
  echo "  \"root_fs\": \"ext4\","
  echo "  \"root_fs_uuid\": $(json_str "$FS_UUID"),"
  echo "  \"root_size_mib\": $ROOT_SIZE_MIB,"
  echo "  \"root_device_name\": $(json_str "$ROOT_DEVICE"),"
  echo "  \"cmdline\": $(json_str "$CMDLINE"),"
  echo "  \"qemu_machine\": \"pc\","
  echo "  \"console\": \"ttyS0\","
  echo "  \"init_marker\": $(json_str "$INIT_MARKER"),"
  echo "  \"ready_marker\": $(json_str "$READY_MARKER"),"
  echo "  \"ssh_ready_marker\": $(json_str "$SSH_READY_MARKER"),"
  echo "  \"ssh_user\": $(json_str "$SSH_USER"),"
  echo "  \"initrd_modules\": $(json_list "${INITRD_MODULES[@]}"),"
  echo "  \"files\": {"
  file_entry vmlinuz; echo ","
  file_entry initrd.img; echo ","
  file_entry root.qcow2; echo
  echo "  }"
  echo "}"
} >"$PARTIAL/manifest.json"

# --- install into OUT_DIR ----------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
if [ -e "$OUT" ]; then
  rm -rf "$OUT.old.$$"
  mv "$OUT" "$OUT.old.$$"
fi
mv "$PARTIAL" "$OUT"
rm -rf "$OUT.old.$$"

T1=$(date +%s.%N)
log "built $NAME in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s: $OUT"
(cd "$OUT" && ls -l vmlinuz initrd.img root.qcow2 manifest.json | awk '{ printf "    %-14s %10s bytes\n", $9, $5 }')
