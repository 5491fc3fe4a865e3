//! Block storage on a host: one disk per EBS volume.
//!
//! A [`VolumeStore`] makes, measures, grows and removes the disks of the volumes that
//! live on this host. Volumes belong to the store, not to VMs: a VM only borrows one
//! while it is attached, and destroying a VM never touches its volumes.
//!
//! Two stores implement the contract:
//!
//! * [`SimVolumeStore`] keeps a small record per volume and no data at all, for the
//!   simulated hypervisor (API fidelity without disks).
//! * [`Qcow2VolumeStore`] builds volumes and snapshots from immutable qcow2 *layers*
//!   (sparse, LUKS-encrypted with a key of their own when asked): a volume is a chain
//!   whose top layer it writes, a snapshot freezes a volume's top and gives it a new
//!   one, so taking one copies nothing and holds only the blocks changed since the last.
//!   Attached volumes are served to VMs through one `qemu-storage-daemon` per volume
//!   (see [`qcow2`] for the layout and crash story, [`layers`] for the layer files and
//!   [`daemon`] for the serving process).
//!
//! Every method is idempotent and crash-safe: a disk is made under a temporary name and
//! renamed into place once complete, and removed by renaming it away first, so a crash
//! at any point leaves either the whole volume or none of it visible.

pub mod daemon;
pub(crate) mod img;
pub(crate) mod layers;
pub mod qcow2;
pub mod sim;

pub use img::{check_disk, qemu_format, CheckedDisk};
pub use qcow2::{NbdExport, Qcow2VolumeStore};
pub use sim::SimVolumeStore;

use strato_common::{Error, Result, SnapshotId, VolumeId};

/// What a store knows of one volume's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The disk's virtual size: what a guest sees.
    pub size_bytes: u64,
    /// Bytes the host really holds for it (disks are sparse: a new volume holds almost
    /// nothing whatever its size).
    pub allocated_bytes: u64,
}

/// What a store knows of one snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The size of the volume it was taken of, when it was taken.
    pub size_bytes: u64,
    /// Bytes the host holds for this snapshot alone: the blocks that changed since the
    /// snapshot it builds on (all written blocks for the first one of a volume).
    pub stored_bytes: u64,
    /// Whether its data is encrypted at rest.
    pub encrypted: bool,
}

/// A host's volume store: one disk per EBS volume. Every method is idempotent and
/// crash-safe (a half-made disk is never visible as made: it is written under a
/// temporary name, then renamed).
pub trait VolumeStore: Send + Sync {
    /// Short name of the implementation: `sim` or `qcow2`.
    fn kind(&self) -> &'static str;
    /// Makes the volume's disk, `size_bytes` large (a multiple of 512) and encrypted at
    /// rest with a key of its own when `encrypted`. Does nothing when the volume exists
    /// already, whatever its size: [`VolumeStore::grow`] changes sizes.
    ///
    /// With `source`, the volume starts as a copy of that snapshot: usable at once
    /// (copy-on-write, no data is copied) and independent of it afterwards.
    /// `size_bytes` may exceed the snapshot's size (the rest reads as zeros) but not be
    /// below it; `encrypted` may be asked for a snapshot that is not (what is written
    /// from then on is encrypted), and a snapshot that is encrypted gives an encrypted
    /// volume whatever `encrypted` says. An unknown snapshot is [`Error::NotFound`].
    fn create(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        source: Option<&SnapshotId>,
    ) -> Result<()>;
    /// Makes the volume's disk as a copy of a machine image's root disk: `image` is a
    /// qcow2 or raw file outside the store, without a parent of its own. Like a volume
    /// made from a snapshot, it is usable at once (copy-on-write), `size_bytes` may
    /// exceed the image's size (the rest reads as zeros) but not be below it, and it is
    /// independent of the image afterwards: the store imports each image file once (a
    /// file replaced or rewritten is a new image), keeps the copy for every later volume
    /// of that image, and never reads the file again. Idempotent as
    /// [`VolumeStore::create`]; an image that cannot be read is [`Error::NotFound`].
    fn create_from_image(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        image: &std::path::Path,
    ) -> Result<()>;
    /// The volume's sizes, or `None` when the store has no such volume.
    fn info(&self, id: &VolumeId) -> Option<VolumeInfo>;
    /// Grows the volume to `size_bytes` (nothing to do when it has that size already).
    /// A volume is never shrunk: a smaller size is refused with
    /// [`Error::InvalidParameterValue`], an unknown volume with [`Error::NotFound`].
    fn grow(&self, id: &VolumeId, size_bytes: u64) -> Result<()>;
    /// Removes the volume and everything that belongs to it: its disk, its key, and
    /// any process serving it. An unknown volume is not an error.
    fn delete(&self, id: &VolumeId) -> Result<()>;
    /// Every volume the store holds, sorted.
    fn list(&self) -> Vec<VolumeId>;

    /// Takes snapshot `snap` of volume `id`: a point-in-time image of the volume as it
    /// is when this returns, also while it is served and a guest keeps writing (the
    /// guest's writes after that are not in it, and every write acknowledged before it
    /// is). Successive snapshots of one volume hold only the blocks that changed in
    /// between. Idempotent: a snapshot that exists already is left as it is and its
    /// info returned. An unknown volume is [`Error::NotFound`].
    fn snapshot(&self, id: &VolumeId, snap: &SnapshotId) -> Result<SnapshotInfo>;
    /// Makes snapshot `to` a copy of snapshot `from`, holding the same data. With
    /// `encrypted` the copy is encrypted at rest even if `from` is not (its data is then
    /// rewritten, so this takes time in proportion to it). Idempotent as
    /// [`VolumeStore::snapshot`]; an unknown `from` is [`Error::NotFound`].
    fn copy_snapshot(
        &self,
        from: &SnapshotId,
        to: &SnapshotId,
        encrypted: bool,
    ) -> Result<SnapshotInfo>;
    /// Makes snapshot `snap` of a disk image from outside the store (ImportSnapshot):
    /// `src` in qemu-img format `format`, `size_bytes` as [`img::check_disk`] found
    /// it (the caller checks it first). With `encrypted` it is encrypted at rest.
    /// `progress` hears the percentage converted as it goes. Idempotent as
    /// [`VolumeStore::snapshot`].
    fn import_snapshot(
        &self,
        snap: &SnapshotId,
        src: &std::path::Path,
        format: &str,
        size_bytes: u64,
        encrypted: bool,
        progress: &dyn Fn(u8),
    ) -> Result<SnapshotInfo>;
    /// Removes a snapshot. Data it shares with volumes or other snapshots stays for as
    /// long as they need it. An unknown snapshot is not an error.
    fn delete_snapshot(&self, snap: &SnapshotId) -> Result<()>;
    /// A snapshot's info, or `None` when the store has no such snapshot.
    fn snapshot_info(&self, snap: &SnapshotId) -> Option<SnapshotInfo>;
    /// Every snapshot the store holds, sorted.
    fn list_snapshots(&self) -> Vec<SnapshotId>;
}

/// The error for a snapshot the store does not hold.
pub(crate) fn snapshot_not_found(id: &SnapshotId) -> Error {
    Error::NotFound {
        kind: strato_common::ResourceKind::Snapshot,
        id: id.to_string(),
    }
}

/// The error for a volume the store does not hold.
pub(crate) fn not_found(id: &VolumeId) -> Error {
    Error::NotFound {
        kind: strato_common::ResourceKind::Volume,
        id: id.to_string(),
    }
}

/// Checks a requested size: disks are made of 512-byte sectors, and a volume has at
/// least one.
pub(crate) fn check_size(size_bytes: u64) -> Result<()> {
    if size_bytes == 0 || !size_bytes.is_multiple_of(512) {
        return Err(Error::InvalidParameterValue(format!(
            "a volume's size must be a positive multiple of 512 bytes, not {size_bytes}"
        )));
    }
    Ok(())
}

/// The error for a grow that would shrink.
pub(crate) fn shrink_refused(id: &VolumeId, have: u64, asked: u64) -> Error {
    Error::InvalidParameterValue(format!(
        "volume {id} is {have} bytes and cannot shrink to {asked} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_whole_sectors() {
        assert!(check_size(512).is_ok());
        assert!(check_size(1 << 40).is_ok());
        assert!(check_size(0).is_err());
        assert!(check_size(1000).is_err());
    }
}
