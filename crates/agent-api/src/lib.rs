//! The control plane ↔ host agent contract.
//!
//! The control plane never tells an agent *what to do*; it tells it *what should be*: a
//! [`VmSpec`] per instance carrying a monotonically increasing `generation`. The agent
//! converges the hypervisor towards the newest spec it has seen and sends [`VmReport`]s
//! of what it observes. Specs are idempotent: sending the same spec twice, or an older
//! generation after a newer one, changes nothing. After a restart of either side the
//! control plane re-sends the full set of specs for the host ([`AgentClient::sync`]) and
//! the agent re-reports the state of every VM, so no message needs to be durable.

pub mod metadata;
pub mod net;
pub mod snapshot;
pub mod volume;

pub use metadata::{InstanceMetadata, MetadataSource};
pub use net::{HostNetSpec, NicSpec, PortSpec, RuleSpec, VpcNetSpec};
pub use volume::{
    disk_serial, DesiredVolumeState, DiskLimits, DiskSpec, ImageDisk, ObservedVolumeState,
    VolumeReport, VolumeSpec,
};

pub use snapshot::{
    DesiredSnapshotState, ObservedSnapshotState, SnapshotReport, SnapshotSource, SnapshotSpec,
};

use serde::{Deserialize, Serialize};
use strato_common::InstanceId;

/// A report of the host's block storage: about a volume or about a snapshot (one
/// channel, so the order in which the host saw things is the order they arrive).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "about")]
pub enum StorageReport {
    Volume(VolumeReport),
    Snapshot(SnapshotReport),
}

/// What the hypervisor should be doing with one VM.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum DesiredVmState {
    /// Exists and runs.
    Running,
    /// Exists (its disks are kept) but does not run.
    Stopped,
    /// Gone, with everything that belonged to it.
    Deleted,
}

/// The desired state of one VM on a host.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VmSpec {
    pub instance_id: InstanceId,
    /// Increases with every change to the spec; older generations are ignored.
    pub generation: u64,
    pub desired: DesiredVmState,
    /// Stop without waiting for the guest to shut down (StopInstances `Force`).
    pub force_stop: bool,
    /// A reboot is requested each time this grows.
    pub reboot_seq: u64,
    pub vcpus: u32,
    /// How the vCPUs are arranged (one socket of `cores × threads_per_core`), as the
    /// guest sees them; `None` (older specs): `vcpus` single-thread cores.
    #[serde(default)]
    pub cpu_topology: Option<CpuTopology>,
    pub memory_mib: u32,
    pub image_id: String,
    /// How to boot the image on the host.
    pub boot: BootSpec,
    /// Decoded user data, which the guest (or the simulator) runs at boot.
    pub user_data: Vec<u8>,
    /// The VM's network interfaces, primary (device index 0) first. A VM without any
    /// boots with no network device (the simulator, and older specs).
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// The root disk is a volume, attached at this device name: the VM boots from the
    /// disk of `disks` marked `boot` and cannot start without one (it never falls back
    /// to a disk of its own). `None` only for instances launched before root volumes
    /// existed, which boot from an overlay of the image that the hypervisor keeps with
    /// the VM.
    #[serde(default)]
    pub root_device: Option<String>,
    /// The volumes attached, in attachment order (the root volume first). A running VM
    /// gets a disk hot-plugged when one is added here and unplugged when one is
    /// removed; each must be present in the host's volume store.
    #[serde(default)]
    pub disks: Vec<DiskSpec>,
    /// The instance-store disks of the VM's type (`ephemeral0`, …): local to the host,
    /// empty at every start and erased when the VM goes off, as EC2 erases an instance
    /// store at stop. The guest sees them after the volumes.
    #[serde(default)]
    pub instance_store: Vec<EphemeralDiskSpec>,
    /// Volumes being detached with DetachVolume `Force`: unplugged without waiting
    /// for the guest to let go of them.
    #[serde(default)]
    pub force_detach: Vec<strato_common::VolumeId>,
}

/// One instance-store disk of a VM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EphemeralDiskSpec {
    /// `ephemeral0`, `ephemeral1`, … (the `VirtualName` a block device mapping gives it).
    pub name: String,
    pub size_bytes: u64,
    /// What the guest reads as its serial number (`AWS` and 17 hex digits, as EC2's
    /// NVMe instance-store devices show theirs).
    pub serial: String,
}

/// A guest's CPU topology: one socket of `cores × threads_per_core` vCPUs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CpuTopology {
    pub cores: u32,
    pub threads_per_core: u32,
}

/// How a VM boots: files inside the host's copy of the image, and the root disk size.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct BootSpec {
    /// The image's directory name in the host's image store.
    pub image_dir: String,
    /// Kernel for direct kernel boot; `None` boots the disk's own bootloader.
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    /// The image's root disk (qcow2), which the instance's disk overlays.
    pub root_disk: String,
    /// Virtual size of the instance's root disk in GiB (0 keeps the image's size).
    pub root_size_gib: u32,
    /// Without a kernel, the firmware that boots the root disk: OVMF (UEFI) when set,
    /// else SeaBIOS.
    #[serde(default)]
    pub uefi: bool,
}

/// What a host agent observed of a VM.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum ObservedVmState {
    /// Being created or booting.
    Starting,
    /// The guest is running.
    Running,
    /// Shutting down on request.
    Stopping,
    /// Not running, resources kept. `cause` says why it is not running.
    Stopped { cause: StopCause },
    /// Removed entirely.
    Deleted,
}

/// Why a VM stopped.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum StopCause {
    /// The control plane asked for it.
    Requested,
    /// The guest powered itself off.
    GuestShutdown,
    /// The hypervisor process died or failed.
    Crashed,
    /// The host itself restarted while the VM ran: it should simply run again.
    HostRestart,
}

/// One observation, tagged with the spec generation the agent was working towards.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VmReport {
    pub instance_id: InstanceId,
    pub generation: u64,
    pub observed: ObservedVmState,
    /// A short human explanation (shown in logs, and in StateReason for crashes).
    pub detail: Option<String>,
    /// The volumes plugged into the VM as the hypervisor sees them (empty when it is
    /// off): what moves attachments from `attaching` to `attached` and ends
    /// `detaching` ones.
    #[serde(default)]
    pub disks: Vec<strato_common::VolumeId>,
}

/// How a guest is held still while snapshots of its volumes are taken together.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Quiesce {
    /// The VM is paused once its in-flight I/O completes: the snapshots are
    /// crash-consistent with one another (CreateSnapshots, CreateImage `NoReboot`).
    Pause,
    /// The guest is asked to reboot and held off when it resets, its file systems
    /// unmounted, until the snapshots are taken; then it boots again (CreateImage).
    /// A guest that ignores the request within the reboot timeout is paused instead.
    Reboot,
}

/// How the control plane reaches a host agent. In one-process mode this is a direct
/// call; a remote agent would implement it over the network.
pub trait AgentClient: Send + Sync {
    /// The host this agent manages.
    fn host(&self) -> &str;
    /// Applies one spec (newer generations replace older ones).
    fn apply(&self, spec: VmSpec);
    /// Replaces the agent's whole desired set: VMs not named are deleted. Sent at startup.
    fn sync(&self, specs: Vec<VmSpec>);
    /// The serial console log of a VM (most recent bytes last), if the VM exists here.
    fn console(&self, id: &InstanceId) -> Option<Vec<u8>>;
    /// A PNG of a running VM's display, `None` when it does not run here; `wake`
    /// sends a keystroke first (EC2's `WakeUp`).
    fn screenshot(&self, id: &InstanceId, wake: bool) -> strato_common::Result<Option<Vec<u8>>>;
    /// Which hypervisor the agent uses (`sim`, `kvm`, `tcg`) and why, for operators.
    fn hypervisor_description(&self) -> String;
    /// Whether this host builds a real dataplane (VPC namespaces, taps, nftables) and
    /// so wants [`AgentClient::apply_network`] calls.
    fn wants_network(&self) -> bool {
        false
    }
    /// Replaces the host's whole desired dataplane (every VPC with ports on this host).
    fn apply_network(&self, _spec: HostNetSpec) {}
    /// Applies one volume spec (newer generations replace older ones).
    fn apply_volume(&self, spec: VolumeSpec);
    /// Replaces the agent's whole desired set of volumes: disks not named are deleted
    /// once nothing uses them. Sent at startup, before [`AgentClient::sync`].
    fn sync_volumes(&self, specs: Vec<VolumeSpec>);
    /// Applies snapshot specs (see [`snapshot`]). The snapshots of volumes among them
    /// are taken before this returns, together: with `quiesce`, that instance's guest
    /// is held still while they are taken (see [`Quiesce`]). Copies and deletions
    /// finish in the background.
    fn apply_snapshots(&self, specs: Vec<SnapshotSpec>, quiesce: Option<(&InstanceId, Quiesce)>);
    /// Replaces the agent's whole set of snapshots: those not named are released, those
    /// named but missing are made. Sent at startup, after [`AgentClient::sync_volumes`].
    fn sync_snapshots(&self, specs: Vec<SnapshotSpec>);
}
