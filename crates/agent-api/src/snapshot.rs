//! Snapshots in the control plane ↔ host agent contract.
//!
//! A snapshot is desired state without generations (its life only moves forward:
//! present, then deleted). The control plane sends a [`SnapshotSpec`]; the agent
//! answers [`SnapshotReport`]s.
//!
//! * A snapshot of a volume is taken *before* [`crate::AgentClient::apply_snapshot`]
//!   returns: that call is the snapshot's point in time, so CreateSnapshot can answer
//!   knowing the guest's later writes are not in it. The report follows at once.
//! * A copy (and an encrypting copy, which rewrites the data), an import and a
//!   deletion run in the background; their reports come when done (an import also
//!   reports its progress while it runs).
//! * After a restart the control plane sends every snapshot it knows
//!   ([`crate::AgentClient::sync_snapshots`]): the agent takes those it does not hold
//!   (their request never reached it), releases those nobody names, and reports all.
//!
//! ```text
//!   spec (present)     data held                         spec (deleted)
//! ────────────────▶ ─────────────▶ Completed{sizes}   ──────────────────▶ Deleted
//!                  │ failure
//!                  └───────────▶ Failed   (the control plane shows `error`)
//! ```

use serde::{Deserialize, Serialize};
use strato_common::{SnapshotId, VolumeId};

/// What a snapshot is made of.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SnapshotSource {
    /// The volume as it is now.
    Volume { volume_id: VolumeId },
    /// The same data as another snapshot; `encrypted` makes the copy encrypted at rest
    /// even when the source is not.
    Copy { from: SnapshotId, encrypted: bool },
    /// A disk image from outside (ImportSnapshot, ImportImage): a file of the host
    /// (`/path` or `file:///path`) or an `http(s)://` URL the host downloads, in
    /// `format` (`raw`, `vmdk`, `vhd`, `vhdx`, `qcow2`). Anything that is not a disk
    /// image of that format fails the snapshot with a message saying why; `bootable`
    /// also asks for a partition table, a boot sector or a file system on it (an
    /// image's root disk).
    Import {
        url: String,
        format: String,
        encrypted: bool,
        #[serde(default)]
        bootable: bool,
    },
}

/// What should become of a snapshot.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DesiredSnapshotState {
    Present,
    Deleted,
}

/// The desired state of one snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotSpec {
    pub snapshot_id: SnapshotId,
    pub source: SnapshotSource,
    pub desired: DesiredSnapshotState,
}

/// What an agent observed of a snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum ObservedSnapshotState {
    /// The host holds all of its data.
    Completed {
        /// The volume's size when it was taken.
        size_bytes: u64,
        /// Bytes held for this snapshot alone (changed blocks).
        stored_bytes: u64,
        /// For the import of a bootable disk: the firmware its partitions are made for
        /// (`legacy-bios` or `uefi`), when they show it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot_mode: Option<String>,
    },
    /// It could not be made; `detail` says why.
    Failed,
    /// An import is under way: `percent` of its data converted (sent now and then
    /// while it runs; a completion or failure follows).
    Progress { percent: u8 },
    /// Its data is released.
    Deleted,
}

/// One observation of a snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotReport {
    pub snapshot_id: SnapshotId,
    pub observed: ObservedSnapshotState,
    /// A short human explanation (the reason of a failure).
    pub detail: Option<String>,
}
