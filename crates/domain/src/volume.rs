//! EBS volumes: a disk of a zone that outlives the instances it is attached to.
//!
//! A volume's life, as EC2 shows it (`State`):
//!
//! ```text
//!  CreateVolume        host made the disk            AttachVolume
//! ─────────────▶ creating ─────────────▶ available ◀──────────────▶ in-use
//!                   │ host failed            │ DeleteVolume              (while any
//!                   ▼                        ▼                          attachment is
//!                 error ──DeleteVolume──▶ deleting ──host removed it──▶ deleted)
//! ```
//!
//! Each attachment moves `attaching → attached → detaching → (gone)`, advanced only by
//! what the host reports; the volume is `in-use` while it has any attachment.

use crate::DocRev;
use serde::{Deserialize, Serialize};
use strato_common::{AccountId, ImageId, InstanceId, SnapshotId, VolumeId};

/// EC2's volume types.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum VolumeType {
    Standard,
    Gp2,
    Gp3,
    Io1,
    Io2,
    St1,
    Sc1,
}

impl VolumeType {
    /// Every type, in EC2's documentation order.
    pub const ALL: [VolumeType; 7] = [
        VolumeType::Gp2,
        VolumeType::Gp3,
        VolumeType::Io1,
        VolumeType::Io2,
        VolumeType::St1,
        VolumeType::Sc1,
        VolumeType::Standard,
    ];

    /// The wire name (`gp3`).
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Standard => "standard",
            VolumeType::Gp2 => "gp2",
            VolumeType::Gp3 => "gp3",
            VolumeType::Io1 => "io1",
            VolumeType::Io2 => "io2",
            VolumeType::St1 => "st1",
            VolumeType::Sc1 => "sc1",
        }
    }

    /// The type named `s`, if EC2 has one.
    pub fn parse(s: &str) -> Option<VolumeType> {
        VolumeType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A volume's state (EC2's `VolumeState`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum VolumeState {
    Creating,
    Available,
    InUse,
    Deleting,
    Deleted,
    Error,
}

impl VolumeState {
    /// The wire name (`in-use`).
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeState::Creating => "creating",
            VolumeState::Available => "available",
            VolumeState::InUse => "in-use",
            VolumeState::Deleting => "deleting",
            VolumeState::Deleted => "deleted",
            VolumeState::Error => "error",
        }
    }
}

/// An attachment's state (EC2's `VolumeAttachmentState`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum AttachmentState {
    Attaching,
    Attached,
    Detaching,
    Detached,
}

impl AttachmentState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttachmentState::Attaching => "attaching",
            AttachmentState::Attached => "attached",
            AttachmentState::Detaching => "detaching",
            AttachmentState::Detached => "detached",
        }
    }
}

/// One volume.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Volume {
    pub id: VolumeId,
    pub account_id: AccountId,
    /// The region of its zone (with the account, its [`crate::Scope`]).
    pub region: String,
    pub availability_zone: String,
    pub size_gib: u32,
    pub volume_type: VolumeType,
    /// Provisioned (gp3, io1, io2) or baseline (gp2, st1, sc1 show none) IOPS.
    pub iops: Option<u32>,
    /// Provisioned throughput in MiB/s (gp3 only).
    pub throughput: Option<u32>,
    pub encrypted: bool,
    /// The KMS key ARN shown for an encrypted volume (the region's default EBS key:
    /// the data key itself never leaves the host's volume store).
    pub kms_key_id: Option<String>,
    pub multi_attach: bool,
    /// The snapshot it was made from, if any.
    pub snapshot_id: Option<SnapshotId>,
    pub state: VolumeState,
    pub attachments: Vec<VolumeAttachment>,
    pub created_ms: i64,
    /// The generation of the last spec sent to the host for it.
    pub generation: u64,
    /// Why it is in `error`, for logs.
    #[serde(default)]
    pub error_reason: Option<String>,
    /// The `ClientToken` of the CreateVolume that made it (a retry answers this one).
    #[serde(default)]
    pub client_token: Option<String>,
    /// A hash of the CreateVolume parameters the token was used with, so a retry with
    /// other parameters is refused (`IdempotentParameterMismatch`).
    #[serde(default)]
    pub client_token_digest: Option<String>,
    /// The most recent ModifyVolume of it (DescribeVolumesModifications).
    #[serde(default)]
    pub modification: Option<VolumeModification>,
    /// The `autoEnableIO` attribute (ModifyVolumeAttribute). Strato never suspends a
    /// volume's I/O, so it only records the wish.
    #[serde(default)]
    pub auto_enable_io: bool,
    /// The machine image whose root disk a root volume was made from (`None` for
    /// every other volume).
    #[serde(default)]
    pub source_image: Option<VolumeImage>,
    /// The stored text this record was read from ([`DocRev`]).
    #[serde(skip)]
    pub rev: DocRev,
}

/// What ModifyVolume can change.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct VolumeConfig {
    pub size_gib: u32,
    pub volume_type: VolumeType,
    pub iops: Option<u32>,
    pub throughput: Option<u32>,
    pub multi_attach: bool,
}

/// A modification's state, as EC2 shows it:
///
/// ```text
///  ModifyVolume      host grew the disk /          every attached VM runs with
/// ─────────────▶ modifying ───applied its type───▶ optimizing ───the new size and limits──▶ completed
///                    │ host failed                  (straight to completed when detached)
///                    ▼
///                  failed
/// ```
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ModificationState {
    Modifying,
    Optimizing,
    Completed,
    Failed,
}

impl ModificationState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ModificationState::Modifying => "modifying",
            ModificationState::Optimizing => "optimizing",
            ModificationState::Completed => "completed",
            ModificationState::Failed => "failed",
        }
    }

    /// Whether a new modification must wait for this one.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            ModificationState::Modifying | ModificationState::Optimizing
        )
    }
}

/// One ModifyVolume: what the volume was, what it becomes, and how far it got.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct VolumeModification {
    pub state: ModificationState,
    pub original: VolumeConfig,
    pub target: VolumeConfig,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub status_message: Option<String>,
    /// While optimizing: the attached instances whose VMs must report this spec
    /// generation (or a later one), i.e. run with the new size and limits.
    #[serde(default)]
    pub awaiting: Vec<(InstanceId, u64)>,
}

/// The machine image a root volume starts as a copy of: where a host finds the image's
/// root disk (`<images>/<dir>/<root_disk>`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct VolumeImage {
    pub image_id: ImageId,
    pub dir: String,
    pub root_disk: String,
}

/// A volume's attachment to an instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct VolumeAttachment {
    pub instance_id: InstanceId,
    /// The device name asked for (`/dev/sdf`).
    pub device: String,
    pub state: AttachmentState,
    pub attach_time_ms: i64,
    pub delete_on_termination: bool,
    /// Detaching with `Force`: unplugged without waiting for the guest.
    #[serde(default)]
    pub force: bool,
}

impl Volume {
    /// Its current configuration.
    pub fn config(&self) -> VolumeConfig {
        VolumeConfig {
            size_gib: self.size_gib,
            volume_type: self.volume_type,
            iops: self.iops,
            throughput: self.throughput,
            multi_attach: self.multi_attach,
        }
    }

    /// Takes on a configuration (a modification reached the disk).
    pub fn set_config(&mut self, c: VolumeConfig) {
        self.size_gib = c.size_gib;
        self.volume_type = c.volume_type;
        self.iops = c.iops;
        self.throughput = c.throughput;
        self.multi_attach = c.multi_attach;
    }

    /// The configuration the host should give the disk: a modification's target while
    /// it is `modifying`, else the current one.
    pub fn desired_config(&self) -> VolumeConfig {
        match &self.modification {
            Some(m) if m.state == ModificationState::Modifying => m.target,
            _ => self.config(),
        }
    }

    /// The state EC2 shows for a volume that exists on its host: `in-use` while any
    /// attachment is not yet gone, else `available`.
    pub fn settled_state(&self) -> VolumeState {
        if self.attachments.is_empty() {
            VolumeState::Available
        } else {
            VolumeState::InUse
        }
    }
}

/// An account's settings for one region (one record per scope): what EC2 keeps per
/// account and region, such as EBS encryption by default.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegionSettings {
    pub account_id: AccountId,
    pub region: String,
    /// New volumes are encrypted whatever CreateVolume says
    /// (Enable/DisableEbsEncryptionByDefault).
    #[serde(default)]
    pub ebs_encryption_by_default: bool,
}

impl RegionSettings {
    /// The record's id in its table (one per scope).
    pub const ID: &'static str = "settings";
}
