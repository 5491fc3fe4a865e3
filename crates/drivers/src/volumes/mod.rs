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
//! * [`Qcow2VolumeStore`] keeps a sparse qcow2 file per volume (LUKS-encrypted with a key
//!   of its own when asked) and serves attached volumes to VMs through one
//!   `qemu-storage-daemon` per volume (see [`qcow2`] for the layout and [`daemon`] for
//!   the serving process).
//!
//! Every method is idempotent and crash-safe: a disk is made under a temporary name and
//! renamed into place once complete, and removed by renaming it away first, so a crash
//! at any point leaves either the whole volume or none of it visible.

pub mod daemon;
mod img;
pub mod qcow2;
pub mod sim;

pub use qcow2::{NbdExport, Qcow2VolumeStore};
pub use sim::SimVolumeStore;

use strato_common::{Error, Result, VolumeId};

/// What a store knows of one volume's disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeInfo {
    /// The disk's virtual size: what a guest sees.
    pub size_bytes: u64,
    /// Bytes the host really holds for it (disks are sparse: a new volume holds almost
    /// nothing whatever its size).
    pub allocated_bytes: u64,
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
    fn create(&self, id: &VolumeId, size_bytes: u64, encrypted: bool) -> Result<()>;
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
