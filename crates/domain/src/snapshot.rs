//! EBS snapshots: point-in-time images of volumes, kept per region, shared with other
//! accounts by `createVolumePermission`.
//!
//! A snapshot's life, as EC2 shows it (`State`):
//!
//! ```text
//!  CreateSnapshot / CopySnapshot     host holds its data
//! ───────────────────────────────▶ pending ───────────────▶ completed
//!                                     │ host failed               │
//!                                     ▼                           │ DeleteSnapshot
//!                                   error ──DeleteSnapshot──▶ deleting ──host removed it──▶ (gone)
//! ```
//!
//! `deleting` is Strato's own step (EC2 shows none): the record stays, hidden from every
//! listing, until the host confirms the data is released, so a crash in between is
//! finished by the next startup.

use crate::DocRev;
use serde::{Deserialize, Serialize};
use strato_common::{AccountId, SnapshotId, VolumeId};

/// A snapshot's state.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotState {
    Pending,
    Completed,
    Error,
    /// Deleted by its owner, its data not yet released by the host (never shown).
    Deleting,
}

impl SnapshotState {
    /// The wire name (and the stored column's value).
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotState::Pending => "pending",
            SnapshotState::Completed => "completed",
            SnapshotState::Error => "error",
            SnapshotState::Deleting => "deleting",
        }
    }
}

/// Where a snapshot's data comes from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotOrigin {
    /// Taken of a volume (CreateSnapshot, CreateSnapshots).
    Volume,
    /// A copy of another snapshot (CopySnapshot), possibly of another region.
    Copy {
        source: SnapshotId,
        source_region: String,
    },
    /// A disk image imported by an import task (ImportSnapshot, ImportImage).
    Import {
        /// The task (`import-snap-…`, `import-ami-…`).
        task: String,
        url: String,
        /// EC2's format name (`RAW`, `VMDK`, `VHD`, `VHDX`, `QCOW2`).
        format: String,
        /// An image's root disk: it must have a partition table, boot sector or file
        /// system.
        bootable: bool,
    },
}

/// One snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub account_id: AccountId,
    pub region: String,
    /// The volume it was taken of; for a copy, the source's volume (EC2 shows an
    /// arbitrary id for copies: Strato shows the original one).
    pub volume_id: Option<VolumeId>,
    /// The volume's size when it was taken, in GiB.
    pub volume_size_gib: u32,
    pub origin: SnapshotOrigin,
    pub state: SnapshotState,
    pub description: String,
    pub encrypted: bool,
    /// The KMS key ARN shown for an encrypted snapshot (see `Volume::kms_key_id`).
    pub kms_key_id: Option<String>,
    pub start_ms: i64,
    pub completion_ms: Option<i64>,
    /// Bytes the host holds for this snapshot alone (the blocks changed since the
    /// snapshot of the same volume before it), once completed.
    pub stored_bytes: Option<u64>,
    /// Accounts that may create volumes from it (createVolumePermission `UserId`s).
    #[serde(default)]
    pub shared_with: Vec<AccountId>,
    /// Shared with every account (createVolumePermission `Group=all`).
    #[serde(default)]
    pub public: bool,
    /// Why it is in `error`.
    #[serde(default)]
    pub state_message: Option<String>,
    /// The stored text this record was read from ([`DocRev`]).
    #[serde(skip)]
    pub rev: DocRev,
}

impl Snapshot {
    /// Whether `account` may create volumes from it (and see it): its owner, an account
    /// it is shared with, or anyone when it is public.
    pub fn restorable_by(&self, account: &AccountId) -> bool {
        self.account_id == *account || self.public || self.shared_with.contains(account)
    }
}
