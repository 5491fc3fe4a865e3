//! Import tasks: ImportSnapshot and ImportImage bring a disk image from outside (a
//! file of the host or an http(s) URL) into a snapshot, and ImportImage then into an
//! image.
//!
//! A task's status, as EC2 shows it (`Status`, with `StatusMessage` and `Progress`):
//!
//! ```text
//!  ImportSnapshot / ImportImage      the host converted the disk
//! ──────────────────────────────▶ active ───────────────────────────▶ completed
//!   (pending → converting, 0–100%)   │ not a disk image, download failed,
//!                                    │ or CancelImportTask
//!                                    ▼
//!                                 deleted   (StatusMessage says why; the snapshot
//!                                            and anything half-made are gone)
//! ```
//!
//! The task's snapshot record exists from the start (`pending`, origin `Import`):
//! it is what the host is asked to make, and what startup sends again after a crash.
//! An ImportImage task's image is made when its snapshot completes, in the same
//! transaction.

use crate::DocRev;
use serde::{Deserialize, Serialize};
use strato_common::{AccountId, ImageId, SnapshotId};

/// Where a task is (EC2's `Status`).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    Active,
    Completed,
    Deleted,
}

impl ImportStatus {
    /// The wire name (`active`).
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Active => "active",
            ImportStatus::Completed => "completed",
            ImportStatus::Deleted => "deleted",
        }
    }
}

/// What an ImportImage task makes of its snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImportedImage {
    /// The image's name (the task id unless an operator named it).
    pub name: Option<String>,
    pub architecture: String,
    /// `legacy-bios` | `uefi` | `uefi-preferred`; unset while the request named none
    /// and the import has not completed (the disk's partitions then tell).
    pub boot_mode: Option<String>,
    /// Launchable by every account, shown with this owner alias (operators'
    /// `strato images import`).
    pub public: bool,
    pub owner_alias: Option<String>,
    /// Its root device (`/dev/xvda` unless the disk container names one).
    pub root_device: Option<String>,
    /// The image, once made.
    pub image_id: Option<ImageId>,
}

/// One import task.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImportTask {
    /// `import-snap-…` or `import-ami-…` and 17 hex digits.
    pub id: String,
    pub account_id: AccountId,
    pub region: String,
    pub description: String,
    /// The disk container: EC2's format name, its URL and description.
    pub format: String,
    pub url: String,
    pub disk_description: String,
    pub snapshot_id: SnapshotId,
    /// Set for ImportImage tasks.
    pub image: Option<ImportedImage>,
    pub status: ImportStatus,
    /// `pending`, `converting`, `completed`, or why it was deleted.
    pub status_message: String,
    pub progress: u8,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    /// The disk image's size in bytes, once known.
    pub size_bytes: Option<u64>,
    pub client_token: Option<String>,
    pub created_ms: i64,
    /// The stored text this record was read from ([`DocRev`]).
    #[serde(skip)]
    pub rev: DocRev,
}

impl ImportTask {
    /// Whether an id has the form of an import task's (`import-snap-…`, `import-ami-…`).
    pub fn valid_id(id: &str) -> bool {
        let hex = id
            .strip_prefix("import-snap-")
            .or_else(|| id.strip_prefix("import-ami-"));
        hex.is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
    }
}
