#!/usr/bin/env bash
# Builds Strato's built-in VM image `strato-minimal` (x86_64) from Debian packages only:
#
#   vmlinuz        Debian's cloud kernel (linux-image-cloud-amd64 -> linux-image-6.1.*-cloud-amd64)
#   initrd.img     small cpio.gz initramfs: static busybox, virtio modules, /init
#   root.qcow2     64 MiB qcow2 disk, ext4 root filesystem with a busybox userland and
#                  dropbear (SSH server) and resize2fs with the shared libraries they need
#   manifest.json  name, architecture, versions, sha256 of each file, kernel command line,
#                  hash of the build inputs
#
# Usage: scripts/build-image.sh [--force] [--data-dir DATA] [--move-legacy] [OUT]
#        scripts/build-image.sh --prune --data-dir DATA [OUT]
#   (default OUT: target/images/strato-minimal)
#
# Each build goes into its own version directory next to OUT, OUT.<first 12 hex digits of
# source_hash> (OUT.<hash12>-<UTC time> with --force), and OUT becomes a symlink to it,
# switched atomically. Version directories are never changed or removed afterwards, since
# instance disks keep naming their root.qcow2 as backing file. Skips the build when OUT
# already holds an image built from the same inputs (this script and every file under
# images/strato-minimal/), and only switches OUT when that version directory exists.
#   --force        build even so (into a new version directory, e.g. for a new Debian kernel)
#   --data-dir D   the Strato data directory using OUT: its disks (D/**/*.qcow2) are checked
#                  before a pre-versioning OUT directory is moved aside, and by --prune
#   --move-legacy  move a pre-versioning OUT directory aside without that check
#   --prune        remove the version directories (except OUT's) that no disk or VM under D uses
# A pre-versioning OUT (a real directory) is never replaced: see images/README.md.
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
# resize2fs grows the root file system to fill a root volume larger than the image (as
# cloud-init's resizefs does on EC2); it comes from e2fsprogs with these libraries.
E2FS_PKGS=(e2fsprogs libext2fs2 libcom-err2)
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

usage() { sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
log() { echo "==> $*"; }
die() { echo "build-image: error: $*" >&2; exit 1; }

FORCE=0
MOVE_LEGACY=0
PRUNE=0
DATA_DIR=""
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    -f|--force) FORCE=1 ;;
    --move-legacy) MOVE_LEGACY=1 ;;
    --prune) PRUNE=1 ;;
    --data-dir) [ $# -ge 2 ] || die "--data-dir needs a directory"; DATA_DIR="$2"; shift ;;
    --data-dir=*) DATA_DIR="${1#*=}" ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "build-image: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$OUT" ] || { echo "build-image: one OUT only" >&2; exit 2; }; OUT="$1" ;;
  esac
  shift
done
OUT="${OUT:-$REPO/target/images/$NAME}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
OUT="${OUT%/}"
PARENT="$(dirname "$OUT")"
if [ -n "$DATA_DIR" ]; then
  [ -d "$DATA_DIR" ] || die "no data directory $DATA_DIR"
  DATA_DIR="$(cd "$DATA_DIR" && pwd -P)"
fi

# --- versions ----------------------------------------------------------------------------
# Instance disks are qcow2 overlays whose backing file is the *canonical* path of the
# image's root.qcow2 (the QEMU driver resolves symlinks before `qemu-img create -b`), so
# with OUT a symlink they name OUT.<hash12>/root.qcow2, which never changes. Rebuilding
# only adds a version directory and re-points OUT; instances made before keep theirs.
#
# An OUT that is a real directory comes from before versioning: its instances name
# OUT/root.qcow2 literally, and whatever sits at that path is what they read. Neither
# replacing it nor making OUT a symlink to a new version is safe while they exist, and
# new instances need the new root.qcow2 at that same path, so both cannot be served. It is
# therefore left alone while it holds the current sources, and only moved aside (kept as
# OUT.<its hash12>, or OUT.legacy-<UTC time> without a manifest, never deleted) for a
# rebuild when no disk can be using it: it has no root.qcow2, or no disk under --data-dir
# names it, or the operator says so with --move-legacy. Otherwise the build refuses and
# says what to do. Disks of stopped instances can be re-pointed at the kept copy with
# `qemu-img rebase -u` (images/README.md).

# manifest_hash DIR: the source_hash recorded in DIR/manifest.json (empty without one).
manifest_hash() { sed -n 's/^ *"source_hash": "\([0-9a-f]*\)".*/\1/p' "$1/manifest.json" 2>/dev/null || true; }
# complete DIR: DIR holds a whole image.
complete() {
  local f
  for f in manifest.json vmlinuz initrd.img root.qcow2; do [ -s "$1/$f" ] || return 1; done
}
# disk_backings DIR: one line per qcow2 disk under DIR that has a backing file:
# "disk<TAB>backing file as recorded<TAB>backing file with symlinks resolved now".
# Fails when a disk cannot be read (callers then assume the worst).
disk_backings() {
  local disk info b
  command -v qemu-img >/dev/null || { echo "build-image: qemu-img is needed to check $1" >&2; return 1; }
  while IFS= read -r -d '' disk; do
    info="$(qemu-img info -U --output=json "$disk" 2>&1)" \
      || { echo "build-image: cannot read $disk: $info" >&2; return 1; }
    b="$(printf '%s\n' "$info" | sed -n 's/^ *"full-backing-filename": "\(.*\)",\{0,1\}$/\1/p')"
    [ -n "$b" ] || continue
    printf '%s\t%s\t%s\n' "$disk" "$b" "$(realpath -m "$b")"
  done < <(find "$1" \( -name '*.qcow2' -o -name '*.qcow2.tmp' \) -type f -print0)
}
# vm_images DIR: one line per QEMU VM under DIR (vms/*/vm.json) that boots the kernel of
# a version directory (VMs with root volumes have no disk naming the image: their root
# disk was copied into the volume store), in disk_backings' form.
vm_images() {
  local rec p
  while IFS= read -r -d '' rec; do
    p="$(sed -n 's/^ *"image_path": "\(.*\)",\{0,1\}$/\1/p' "$rec")"
    [ -n "$p" ] || continue
    printf '%s\t%s\t%s\n' "$rec" "$p/vmlinuz" "$(realpath -m "$p")/vmlinuz"
  done < <(find "$1" -name vm.json -type f -print0)
}
# legacy_users: the disks under DATA_DIR whose backing file is the real directory OUT's root.qcow2.
legacy_users() {
  local refs
  refs="$(disk_backings "$DATA_DIR")" || return 1
  [ -n "$refs" ] || return 0
  T="$(realpath "$OUT")/root.qcow2" L="$OUT/root.qcow2" awk -F'\t' \
    '$2 == ENVIRON["L"] || $2 == ENVIRON["T"] || $3 == ENVIRON["T"] { print $1 }' <<<"$refs"
}
stamp() { date -u +%Y%m%dT%H%M%SZ; }
# legacy_dest: where the pre-versioning directory OUT is moved: OUT.<its hash12>, unless
# that is taken (or is this build's) or it has no manifest, then OUT.legacy-<UTC time>.
legacy_dest() {
  local old dest
  old="$(manifest_hash "$OUT")"
  dest="$OUT.${old:0:12}"
  if [ -z "$old" ] || [ -e "$dest" ] || [ -L "$dest" ] || [ "$dest" = "$VERSION" ]; then
    dest="$OUT.legacy-$(stamp)"
  fi
  echo "$dest"
}

WORK=""
PARTIAL=""
cleanup() { rm -rf -- ${WORK:+"$WORK"} ${PARTIAL:+"$PARTIAL"} "$OUT.link.$$"; }
trap cleanup EXIT

# One build, switch or prune at a time per image directory (the lock is on OUT's parent).
mkdir -p "$PARENT"
exec 9<"$PARENT"
if ! flock -n 9; then
  log "waiting for another build-image.sh in $PARENT"
  flock 9
fi

# --- prune -------------------------------------------------------------------------------
if [ "$PRUNE" = 1 ]; then
  [ -n "$DATA_DIR" ] || die "--prune needs --data-dir (the Strato data directory whose disks use OUT)"
  current=""
  [ -L "$OUT" ] && current="$(readlink -f "$OUT" || true)"
  refs="$(disk_backings "$DATA_DIR")" || die "could not read every disk under $DATA_DIR: nothing removed"
  refs="$refs${refs:+$'\n'}$(vm_images "$DATA_DIR")"
  refs="$(sed '/^$/d' <<<"$refs")"
  for d in "$OUT".*; do
    if [ ! -d "$d" ] || [ -L "$d" ]; then continue; fi
    [[ "${d#"$OUT".}" =~ ^([0-9a-f]{12}(-[0-9]{8}T[0-9]{6}Z)?|legacy-[0-9]{8}T[0-9]{6}Z)$ ]] || continue
    real="$(realpath "$d")"
    if [ "$real" = "$current" ]; then
      log "keeping $d (current: $OUT points to it)"
      continue
    fi
    n=0
    [ -z "$refs" ] || n="$(D="$real/" awk -F'\t' 'index($2, ENVIRON["D"]) == 1 || index($3, ENVIRON["D"]) == 1' <<<"$refs" | wc -l)"
    if [ "$n" -gt 0 ]; then
      log "keeping $d (backing file of $n disk(s), or kernel of VMs, under $DATA_DIR)"
    else
      log "removing $d (no disk under $DATA_DIR uses it)"
      rm -rf -- "$d"
    fi
  done
  exit 0
fi

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
H12="${SOURCE_HASH:0:12}"
VERSION="$OUT.$H12" # where these sources' image lives

# What OUT is now: a symlink to a version (or to anything else: only the link changes),
# a pre-versioning real directory, or nothing.
LEGACY=0
CURRENT=""
if [ -L "$OUT" ]; then
  CURRENT="$(readlink -f "$OUT" || true)"
elif [ -d "$OUT" ]; then
  LEGACY=1
  CURRENT="$OUT"
elif [ -e "$OUT" ]; then
  die "$OUT is neither a directory nor a symlink"
fi

if [ "$FORCE" = 0 ] && [ -n "$CURRENT" ] && complete "$CURRENT"; then
  built_from="$(manifest_hash "$CURRENT")"
  if [ "$built_from" = "$SOURCE_HASH" ]; then
    log "$OUT already holds $NAME built from these sources (use --force to rebuild)"
    exit 0
  fi
  log "$OUT holds $NAME built from other sources (${built_from:-no source hash}); these are $H12"
fi
# A version built before from these sources (e.g. they were changed and changed back) is
# used as it is: the newest one, so that a --force build (new kernel) is not undone.
REUSE=0
if [ "$FORCE" = 0 ]; then
  for d in "$VERSION" "$VERSION"-*; do
    if [ -d "$d" ] && [ ! -L "$d" ] && [[ "${d#"$VERSION"}" =~ ^(-[0-9]{8}T[0-9]{6}Z)?$ ]] \
      && complete "$d" && [ "$(manifest_hash "$d")" = "$SOURCE_HASH" ]; then
      REUSE=1
      VERSION="$d"
    fi
  done
fi
if [ "$REUSE" = 0 ] && { [ -e "$VERSION" ] || [ -L "$VERSION" ]; }; then
  # --force, or a damaged directory: never write into a directory disks may name.
  VERSION="$OUT.$H12-$(stamp)"
  [ ! -e "$VERSION" ] || die "$VERSION exists"
fi

# check_legacy: dies unless the pre-versioning directory OUT may be moved aside.
check_legacy() {
  local users old keep
  [ -e "$OUT/root.qcow2" ] || return 0
  [ "$MOVE_LEGACY" = 0 ] || return 0
  old="$(manifest_hash "$OUT")"
  keep="$(legacy_dest)"
  if [ -n "$DATA_DIR" ]; then
    users="$(legacy_users)" || die "could not read every disk under $DATA_DIR, so $OUT stays as it is"
    [ -n "$users" ] || return 0
    {
      echo "build-image: error: $OUT is a directory from before image versioning (sources"
      echo "${old:0:12}${old:+, }this build $H12), and these disks name $OUT/root.qcow2 as"
      echo "their backing file:"
      printf '%s\n' "$users" | sed 's/^/  /'
      echo "It cannot be replaced, nor can $OUT become a link to a new version, while they"
      echo "use it. Terminate those instances and run this again; or, to keep them, stop them,"
      echo "move the directory and re-point their disks at it:"
      echo "  mv -T $OUT $keep"
      echo "  qemu-img rebase -u -F qcow2 -b $keep/root.qcow2 DISK   # each disk above"
      echo "then run this again. See images/README.md (Versions)."
    } >&2
    exit 1
  fi
  {
    echo "build-image: error: $OUT is a directory from before image versioning (sources"
    echo "${old:0:12}${old:+, }this build $H12). Instances created from it name $OUT/root.qcow2"
    echo "as their disk's backing file, so it is not replaced. Run this again with --data-dir"
    echo "DATA (the Strato data directory using these images) to check that no disk uses it,"
    echo "or with --move-legacy if you know none does: it is then kept as $keep"
    echo "and $OUT becomes a link to the new version. See images/README.md (Versions)."
  } >&2
  exit 1
}
[ "$LEGACY" = 0 ] || check_legacy

# switch_to DIR: points OUT at the version directory DIR (a sibling) in one rename,
# moving a pre-versioning OUT directory aside first.
switch_to() {
  local link="$OUT.link.$$" dest
  ln -sfn "$(basename "$1")" "$link"
  if [ "$LEGACY" = 1 ]; then
    check_legacy # again: an instance may have been created during the build
    dest="$(legacy_dest)"
    [ ! -e "$dest" ] || die "$dest exists"
    mv -T "$OUT" "$dest"
    log "moved the pre-versioning directory $OUT to $dest (kept; see images/README.md)"
  fi
  mv -T "$link" "$OUT"
  if [ -n "$CURRENT" ] && [ "$LEGACY" = 0 ] && [ "$CURRENT" != "$(realpath "$1")" ]; then
    log "previous version $CURRENT kept (disks made from it may still use it; see --prune)"
  fi
}

if [ "$REUSE" = 1 ]; then
  switch_to "$VERSION"
  log "$OUT -> $(basename "$VERSION") (built before from these sources)"
  exit 0
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
chmod 755 "$WORK"

# --- packages ----------------------------------------------------------------------------
have_lists=1
for p in "$KERNEL_META" "$BUSYBOX_PKG" "$DROPBEAR_PKG" "${DROPBEAR_LIB_PKGS[@]}" "${E2FS_PKGS[@]}"; do
  apt-cache show "$p" >/dev/null 2>&1 || have_lists=0
done
if [ "$have_lists" = 0 ]; then
  log "apt-get update"
  apt-get update -qq
fi
KERNEL_PKG="$(apt-cache depends "$KERNEL_META" | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')"
[ -n "$KERNEL_PKG" ] || die "cannot resolve the kernel package $KERNEL_META depends on"
log "downloading $KERNEL_PKG $BUSYBOX_PKG $DROPBEAR_PKG ${DROPBEAR_LIB_PKGS[*]} ${E2FS_PKGS[*]}"
mkdir -p "$WORK/debs"
download() {
  (cd "$WORK/debs" && apt-get download -qq -o APT::Sandbox::User=root "$KERNEL_PKG" "$BUSYBOX_PKG" \
    "$KERNEL_META" "$DROPBEAR_PKG" "${DROPBEAR_LIB_PKGS[@]}" "${E2FS_PKGS[@]}")
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
# dropbear, resize2fs and their libraries, unpacked together: the libraries they load
# are taken from here.
DB="$WORK/dropbear"
for p in "$DROPBEAR_PKG" "${DROPBEAR_LIB_PKGS[@]}" "${E2FS_PKGS[@]}"; do
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

# install_bins DESTROOT BIN...: the binaries (paths inside $DB) and every shared library
# they load, at the paths the packages use (the loader's default search path finds them).
install_bins() {
  local dest="$1" bin lib libs
  shift
  mkdir -p "$dest/lib64"
  for bin in "$@"; do
    mkdir -p "$dest/$(dirname "$bin")"
    install -m 755 "$DB/$bin" "$dest/$bin"
    # The packages' own loader lists what the binary needs; anything it finds outside
    # $DB came from the host and means a package is missing from the lists above.
    libs="$("$DB/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" --library-path "$DB_LIBPATH" --list "$DB/$bin" \
      | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $2 == "=>" && $3 == "not" { print "MISSING:" $1 }')" \
      || die "cannot list the libraries of $bin"
    for lib in $libs; do
      case "$lib" in
        "$DB"/*) ;;
        *) die "$bin needs ${lib#MISSING:}, which no package in DROPBEAR_LIB_PKGS or E2FS_PKGS provides" ;;
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
RESIZE2FS=
for f in sbin/resize2fs usr/sbin/resize2fs; do
  [ -x "$DB/$f" ] && RESIZE2FS="$f" && break
done
[ -n "$RESIZE2FS" ] || die "no resize2fs in e2fsprogs"
install_bins "$RF" usr/sbin/dropbear usr/bin/dropbearkey "$RESIZE2FS"
cp -a "$SRC/rootfs/." "$RF/"
chown -R 0:0 "$RF"
chmod 640 "$RF/etc/shadow"
mkdir -p "$RF/etc/dropbear" "$RF/home/$SSH_USER/.ssh"
chmod 700 "$RF/etc/dropbear" "$RF/home/$SSH_USER" "$RF/home/$SSH_USER/.ssh"
chown -R "$SSH_UID:$SSH_UID" "$RF/home/$SSH_USER"
grep -q "^$SSH_USER:x:$SSH_UID:$SSH_UID:" "$RF/etc/passwd" || die "rootfs/etc/passwd lacks $SSH_USER ($SSH_UID)"
# The libraries must work inside the image, not only next to the host's.
chroot "$RF" /usr/sbin/dropbear -V 2>&1 | grep -q "Dropbear v" || die "dropbear does not run in the root fs"
# (Without arguments it prints its version and usage, and exits 1.)
{ chroot "$RF" "/$RESIZE2FS" 2>&1 || true; } | grep -q "^resize2fs 1\." || die "resize2fs does not run in the root fs"
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

# --- install: a new version directory, then OUT points to it ---------------------------
mv -T "$PARTIAL" "$VERSION"
switch_to "$VERSION"

T1=$(date +%s.%N)
log "built $NAME in $(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.1f", b - a }') s: $OUT -> $(basename "$VERSION")"
(cd "$OUT" && ls -l vmlinuz initrd.img root.qcow2 manifest.json | awk '{ printf "    %-14s %10s bytes\n", $9, $5 }')
