//! Hypervisor drivers.
//!
//! A driver owns VMs on one host and nothing else: it creates, starts, stops, reboots
//! and destroys them and reports what they are doing. It holds no opinion about EC2
//! semantics; the host agent decides what to ask for. Every driver implements
//! [`Hypervisor`]; the simulated driver ([`sim::SimDriver`]) is a first-class one with
//! the same state machine as a real VM, for fast tests and for users who only need API
//! fidelity.

pub mod net;
mod proc;
pub mod qemu;
pub mod sim;
pub mod volumes;

use strato_agent_api::{DiskSpec, StopCause, VmSpec};
use strato_common::{InstanceId, Result, VolumeId};

/// What a VM is doing, as its hypervisor sees it.
///
/// ```text
///   start()            boot done            stop()              off
/// ─────────▶ Booting ───────────▶ Running ─────────▶ ShuttingDown ──────▶ Off{Requested}
///               │                    │  ▲ reboot()                          │
///               │                    │  └─────── (Booting again)            │ start()
///               │                    ├── guest powers off ──▶ Off{GuestShutdown}
///               └────────────────────┴── process dies ──────▶ Off{Crashed}
///                                                            destroy() ──▶ (gone)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VmStatus {
    Booting,
    Running,
    ShuttingDown,
    Off(StopCause),
}

/// A hypervisor driver. Every method is idempotent and returns quickly: long work
/// (booting, shutting down) proceeds in the background and shows up in [`Hypervisor::status`].
pub trait Hypervisor: Send + Sync {
    /// Short name: `sim`, `kvm` or `tcg`.
    fn kind(&self) -> &'static str;
    /// One line for operators: which hypervisor and why it was chosen.
    fn describe(&self) -> String;
    /// Creates the VM if it does not exist (root disk and all) and starts it if it is off.
    fn start(&self, spec: &VmSpec) -> Result<()>;
    /// Asks the guest to power down; `force` cuts power at once.
    fn stop(&self, id: &InstanceId, force: bool) -> Result<()>;
    /// Reboots a running VM.
    fn reboot(&self, id: &InstanceId) -> Result<()>;
    /// Removes a VM that is off and everything that belongs to it.
    fn destroy(&self, id: &InstanceId) -> Result<()>;
    /// The VM's status, or `None` when no such VM exists on this host.
    fn status(&self, id: &InstanceId) -> Option<VmStatus>;
    /// Every VM that exists on this host (used to adopt VMs after a restart).
    fn list(&self) -> Vec<InstanceId>;
    /// The VM's serial console log, oldest first, bounded.
    fn console(&self, id: &InstanceId) -> Option<Vec<u8>>;
    /// A PNG of the VM's display as it is now; `None` when the VM is not running here.
    /// `wake` first sends a keystroke (a lone Shift), as EC2's `WakeUp` does, so a
    /// blanked screen redraws before it is captured.
    fn screenshot(&self, id: &InstanceId, wake: bool) -> Result<Option<Vec<u8>>>;
    /// Volumes attached to the VM right now (hot-plugged and present in the guest's
    /// bus), in attach order; empty when the VM is off or absent. A disk being detached
    /// is listed until its device is gone, except after a forced detach (its volume is
    /// then out of the VM's reach, even if the guest has not let go of the device).
    fn disks(&self, id: &InstanceId) -> Vec<VolumeId>;
    /// Hot-plugs a volume into a running VM (idempotent). For a VM that is off (or
    /// absent) this is a no-op: `start` attaches `spec.disks` at boot.
    ///
    /// On a disk that is attached already it converges instead: new limits take effect,
    /// a serving process that died is restarted, and the guest is shown the volume's
    /// current size, so calling it again after the volume store grew an attached volume
    /// grows the disk in the running guest (as EBS `ModifyVolume` does).
    fn attach_disk(&self, id: &InstanceId, disk: &DiskSpec) -> Result<()>;
    /// Unplugs a volume from a running VM (idempotent; the guest is asked via ACPI and
    /// the device disappears when it acknowledges; `force` removes the block backend
    /// even if the guest does not cooperate within a short time). Returns without
    /// waiting for the guest: call again (or look at [`Hypervisor::disks`]) until the
    /// disk is gone. Never deletes the volume.
    fn detach_disk(&self, id: &InstanceId, volume: &VolumeId, force: bool) -> Result<()>;
    /// Pauses a running VM's vCPUs once its in-flight I/O has completed, so its disks
    /// hold still (for snapshots taken together). Returns whether it paused anything:
    /// `false` for a VM that is not running, or a hypervisor with no I/O to drain.
    fn pause(&self, _id: &InstanceId) -> Result<bool> {
        Ok(false)
    }
    /// Resumes a VM that [`Hypervisor::pause`] paused.
    fn resume(&self, _id: &InstanceId) -> Result<()> {
        Ok(())
    }
    /// Asks a running guest to reboot and holds it off when it resets (its file
    /// systems unmounted, its disks quiet), waiting up to `timeout`. Returns whether
    /// the guest is now held: `false` for a VM that is not running, a guest that did
    /// not reset in time (it is left running, its reboot request withdrawn), or a
    /// hypervisor with no guest to hold. A held guest stays held, across restarts of
    /// the driver too, until [`Hypervisor::release_reboot`].
    fn hold_reboot(&self, _id: &InstanceId, _timeout: std::time::Duration) -> Result<bool> {
        Ok(false)
    }
    /// Lets a guest that [`Hypervisor::hold_reboot`] held boot again.
    fn release_reboot(&self, _id: &InstanceId) -> Result<()> {
        Ok(())
    }
    /// Stops serving every volume no VM of this host has plugged (or is plugging):
    /// daemons left behind by a VM that went while Strato was away. Returns how many.
    fn release_unused_disks(&self) -> Result<usize> {
        Ok(0)
    }
}
