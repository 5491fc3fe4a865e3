//! Block storage in the control plane ↔ host agent contract.
//!
//! A volume is desired state like a VM: the control plane sends a [`VolumeSpec`] with
//! a growing `generation`, the agent converges its host's volume store towards it and
//! answers [`VolumeReport`]s. A volume belongs to a host's volume store, not to a VM;
//! a VM names the volumes attached to it in [`crate::VmSpec::disks`], and the agent
//! hot-plugs or unplugs them to match.
//!
//! ```text
//!   spec (present)        disk made                     spec (deleted)
//! ────────────────▶ Creating ─────────▶ Available{size} ────────────────▶ Deleted
//!                      │ failure
//!                      └──────────▶ Failed{reason}  (the control plane shows `error`)
//! ```

use serde::{Deserialize, Serialize};
use strato_common::{SnapshotId, VolumeId};

/// What should become of a volume.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DesiredVolumeState {
    /// The disk exists with (at least) the spec's size.
    Present,
    /// The disk and everything that belongs to it are gone.
    Deleted,
}

/// The desired state of one volume on a host.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeSpec {
    pub volume_id: VolumeId,
    /// Increases with every change to the spec; older generations are ignored.
    pub generation: u64,
    pub desired: DesiredVolumeState,
    /// The disk's virtual size. A larger size than the disk has grows it; a disk is
    /// never shrunk.
    pub size_gib: u32,
    /// Encrypted at rest with a key of its own, which the host's volume store keeps.
    pub encrypted: bool,
    /// What the disk may do per second once it is attached.
    pub limits: DiskLimits,
    /// The snapshot the disk starts as a copy of (copy-on-write), if any.
    #[serde(default)]
    pub source_snapshot: Option<SnapshotId>,
    /// The machine image whose root disk the disk starts as a copy of (an instance's
    /// root volume), if any; never together with `source_snapshot`.
    #[serde(default)]
    pub source_image: Option<ImageDisk>,
}

/// A machine image's root disk on a host: `<images>/<dir>/<root_disk>` in the host's
/// image store (the [`crate::BootSpec`] of the image names the same file).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct ImageDisk {
    pub dir: String,
    pub root_disk: String,
}

/// A volume type's performance, enforced on the attached disk.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskLimits {
    /// Reads and writes per second together; 0 is unlimited.
    pub iops: u32,
    /// Bytes read and written per second together; 0 is unlimited.
    pub bytes_per_sec: u64,
}

/// What an agent observed of a volume.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum ObservedVolumeState {
    /// Being made.
    Creating,
    /// The disk exists.
    Available {
        /// Its virtual size in bytes.
        size_bytes: u64,
        /// Bytes the host really holds for it.
        allocated_bytes: u64,
    },
    /// It could not be made (or grown); `detail` of the report says why.
    Failed,
    /// Removed entirely.
    Deleted,
}

/// One observation, tagged with the spec generation the agent was working towards.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeReport {
    pub volume_id: VolumeId,
    pub generation: u64,
    pub observed: ObservedVolumeState,
    /// A short human explanation (logged; the reason of a failure).
    pub detail: Option<String>,
}

/// A volume attached to a VM, as the VM's spec names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DiskSpec {
    pub volume_id: VolumeId,
    /// The device name the user asked for (`/dev/sdf`), for reports and ordering.
    pub device: String,
    /// What the guest reads as the disk's serial number: the volume id without its
    /// dash (`vol0123456789abcdef0`), as EC2's Nitro instances show it (20 bytes, the
    /// most a virtio-blk serial holds).
    pub serial: String,
    pub limits: DiskLimits,
    /// The volume's size in GiB: a new size hands the disk to the hypervisor again,
    /// which shows the guest the size the volume store has grown it to.
    #[serde(default)]
    pub size_gib: u32,
    /// The instance's root volume: the VM boots from it, and the guest sees it as its
    /// first disk (`vda`). It is first in [`crate::VmSpec::disks`] and is plugged and
    /// unplugged only while the VM is off.
    #[serde(default)]
    pub boot: bool,
}

/// The serial number a guest sees for a volume.
pub fn disk_serial(id: &VolumeId) -> String {
    id.as_str().replacen('-', "", 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::ResourceId;

    #[test]
    fn serials_fit_virtio() {
        let id = VolumeId::generate();
        let s = disk_serial(&id);
        assert_eq!(s.len(), 20);
        assert!(s.starts_with("vol") && !s.contains('-'));
    }
}
