//! Machine images (AMIs): the built-in ones a host holds as files, and the ones
//! accounts make, whose disks are EBS snapshots.
//!
//! An image's life, as EC2 shows it (`imageState`):
//!
//! ```text
//!  CreateImage / RegisterImage / CopyImage   every snapshot completed
//! ─────────────────────────────────────────▶ pending ─────────────────▶ available
//!                                              │ a snapshot failed          │
//!                                              ▼                            │ DeregisterImage
//!                                            failed ──DeregisterImage──▶ deregistered
//! ```
//!
//! A deregistered image is hidden from every listing and launch, but its record stays:
//! instances launched from it still boot the way it said.

use crate::volume::VolumeType;
use serde::{Deserialize, Serialize};
use strato_common::{AccountId, ImageId, InstanceId, SnapshotId};

/// An image's state (EC2's `ImageState`).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ImageState {
    Pending,
    #[default]
    Available,
    Failed,
    Deregistered,
}

impl ImageState {
    /// The wire name (`available`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImageState::Pending => "pending",
            ImageState::Available => "available",
            ImageState::Failed => "failed",
            ImageState::Deregistered => "deregistered",
        }
    }
}

/// The firmware a VM starts: what an image's boot mode asks for.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Firmware {
    /// SeaBIOS: boot modes `legacy-bios` and (the default of x86) `uefi-preferred`.
    #[default]
    Bios,
    /// OVMF: boot mode `uefi`.
    Uefi,
}

/// A machine image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Image {
    pub id: ImageId,
    /// `None` for the built-in public images.
    pub owner: Option<AccountId>,
    pub owner_alias: Option<String>,
    pub name: String,
    pub description: String,
    pub architecture: String,
    pub root_device_name: String,
    pub root_device_type: String,
    pub virtualization_type: String,
    pub hypervisor: String,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    /// Launchable by every account (`launchPermission` group `all`).
    pub public: bool,
    pub creation_ms: i64,
    pub platform_details: String,
    pub ena_support: bool,
    /// `legacy-bios` | `uefi` | `uefi-preferred`, as registered.
    pub boot_mode: String,
    /// Size of the root volume in GiB.
    pub root_size_gib: u32,
    /// Where a host finds the image's files and how it boots them.
    #[serde(default)]
    pub boot: ImageBoot,
    /// The region it belongs to; `None` for built-ins, which every region offers.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub state: ImageState,
    /// Why it failed.
    #[serde(default)]
    pub state_reason: Option<String>,
    /// Its block devices; a built-in image's root disk is a file of the host, shown as
    /// one mapping without a snapshot (see [`Image::mappings`]).
    #[serde(default)]
    pub block_devices: Vec<ImageMapping>,
    /// Accounts it is shared with (`launchPermission` `UserId`s).
    #[serde(default)]
    pub shared_with: Vec<AccountId>,
    /// `v2.0`: its instances require IMDSv2 tokens by default.
    #[serde(default)]
    pub imds_support: Option<String>,
    /// When it is (or was) deprecated (`DeprecationTime`).
    #[serde(default)]
    pub deprecation_ms: Option<i64>,
    /// The instance CreateImage made it of.
    #[serde(default)]
    pub source_instance_id: Option<InstanceId>,
    /// The image CopyImage copied, and its region.
    #[serde(default)]
    pub source_image_id: Option<ImageId>,
    #[serde(default)]
    pub source_region: Option<String>,
    /// The `ClientToken` of the CopyImage that made it.
    #[serde(default)]
    pub client_token: Option<String>,
}

impl Image {
    /// Its block devices as DescribeImages shows them and launches use them: a
    /// built-in image's root disk is one mapping at its root device.
    pub fn mappings(&self) -> Vec<ImageMapping> {
        if !self.block_devices.is_empty() {
            return self.block_devices.clone();
        }
        vec![ImageMapping {
            device_name: self.root_device_name.clone(),
            virtual_name: None,
            ebs: Some(ImageEbs {
                snapshot_id: None,
                volume_size_gib: self.root_size_gib,
                volume_type: VolumeType::Gp3,
                iops: None,
                throughput: None,
                delete_on_termination: true,
                encrypted: false,
            }),
        }]
    }

    /// The snapshots holding its disks.
    pub fn snapshot_ids(&self) -> Vec<SnapshotId> {
        self.block_devices
            .iter()
            .filter_map(|m| m.ebs.as_ref()?.snapshot_id.clone())
            .collect()
    }

    /// Whether `account` may see and launch it: its owner, an account it is shared
    /// with, or anyone when it is public; never once deregistered.
    pub fn launchable_by(&self, account: &AccountId) -> bool {
        self.state != ImageState::Deregistered
            && (self.public
                || self.owner.as_ref() == Some(account)
                || self.shared_with.contains(account))
    }

    /// The firmware its instances start. `uefi-preferred` means UEFI wherever the
    /// instance type supports it, which every type here does (OVMF).
    pub fn firmware(&self) -> Firmware {
        if self.boot_mode == "uefi" || self.boot_mode == "uefi-preferred" {
            Firmware::Uefi
        } else {
            Firmware::Bios
        }
    }
}

/// One block device of an image (`blockDeviceMapping` item).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageMapping {
    pub device_name: String,
    /// `ephemeralN`: an instance-store disk.
    pub virtual_name: Option<String>,
    pub ebs: Option<ImageEbs>,
}

/// The EBS volume an image's mapping gives each instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageEbs {
    /// The snapshot it is made of; `None` for an empty volume (or a built-in image's
    /// root disk).
    pub snapshot_id: Option<SnapshotId>,
    pub volume_size_gib: u32,
    pub volume_type: VolumeType,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub delete_on_termination: bool,
    pub encrypted: bool,
}

/// The files of an image in a host's image store, and how to boot them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageBoot {
    /// Directory name under the host's image store.
    pub dir: String,
    /// Kernel and initrd for direct kernel boot; `None` boots the disk's bootloader.
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    /// The qcow2 root disk that instance disks overlay (empty for an image whose root
    /// disk is a snapshot).
    pub root_disk: String,
}
