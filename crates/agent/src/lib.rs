//! The host agent.
//!
//! Holds the newest [`VmSpec`] per VM and, on every tick (and right after a spec
//! arrives), compares it with what the hypervisor driver says and takes the one step
//! that moves the VM closer. Observations go back to the control plane as [`VmReport`]s
//! whenever they change. The agent keeps no durable state of its own: after a restart
//! the control plane re-sends every spec with [`AgentClient::sync`] and the driver
//! still knows its VMs, so the agent adopts what is running and removes VMs nobody
//! asked for.
//!
//! Per VM, given the desired state and the driver's status:
//!
//! | desired  | driver status           | step                                       |
//! |----------|-------------------------|--------------------------------------------|
//! | running  | absent / off (new gen)  | `start` (creates on first use)             |
//! | running  | off (same generation)   | none: report it; the control plane decides |
//! | running  | off, host restarted     | `start`                                    |
//! | running  | running, reboot pending | `reboot`                                   |
//! | stopped  | booting / running       | `stop(force)`                              |
//! | deleted  | booting / running       | `stop(force)`                              |
//! | deleted  | off                     | `destroy`                                  |
//! | deleted  | absent                  | report deleted, forget the spec            |

pub mod net;
pub mod snapshots;
pub mod volumes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strato_agent_api::{
    AgentClient, DesiredVmState, HostNetSpec, ObservedVmState, Quiesce, SnapshotSpec, StopCause,
    StorageReport, VmReport, VmSpec, VolumeSpec,
};
use strato_common::{InstanceId, VolumeId};
use strato_drivers::{Hypervisor, VmStatus};
use tokio::sync::{mpsc, Notify};

/// How often VMs in transition are re-examined when nothing else wakes the agent.
const TICK: Duration = Duration::from_millis(100);
/// How often settled VMs are examined too (to notice guests that power off or die on
/// their own). Time-based, so a burst of new specs never triggers extra full sweeps.
const FULL_SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How long a guest gets to shut down for CreateImage's reboot before its snapshots
/// are taken with it paused instead.
const REBOOT_HOLD_TIMEOUT: Duration = Duration::from_secs(120);

struct Tracked {
    spec: VmSpec,
    /// The generation for which `start` was last issued: a VM that is off although
    /// it should run was either never started for this spec, or went off by itself.
    started_gen: Option<u64>,
    applied_reboot_seq: u64,
    last_report: Option<(u64, ObservedVmState, Vec<VolumeId>)>,
    /// The VM was in its desired steady state at the last look: it is re-examined
    /// only on full sweeps, which keeps a host with thousands of idle VMs cheap.
    settled: bool,
    /// The last hypervisor error for this VM, sent with the next report.
    last_error: Option<String>,
    /// The disks as last plugged: a plugged disk whose spec changed since (its
    /// limits, or its volume grown) is handed to the driver again, which re-applies it.
    applied_disks: Vec<strato_agent_api::DiskSpec>,
}

/// A host agent driving one hypervisor.
pub struct Agent {
    host: String,
    driver: Arc<dyn Hypervisor>,
    vms: Mutex<HashMap<InstanceId, Tracked>>,
    wake: Notify,
    reports: mpsc::UnboundedSender<VmReport>,
    /// The host's dataplane, when VMs get real networks (not with the simulator).
    net: std::sync::OnceLock<Arc<net::NetAgent>>,
    /// The host's volume store, once given one, and its snapshots.
    volumes: std::sync::OnceLock<(volumes::VolumeAgent, snapshots::SnapshotAgent)>,
}

impl Agent {
    /// Pauses a VM for snapshots taken together; `Some` when it paused (to resume).
    fn pause_for_snapshots<'a>(&self, id: &'a InstanceId) -> Option<(&'a InstanceId, Quiesce)> {
        match self.driver.pause(id) {
            Ok(p) => p.then_some((id, Quiesce::Pause)),
            Err(e) => {
                tracing::warn!(instance = %id, error = %e, "could not pause the VM for its snapshots");
                None
            }
        }
    }

    /// Creates an agent; reports are delivered on the returned receiver.
    pub fn new(
        host: impl Into<String>,
        driver: Arc<dyn Hypervisor>,
    ) -> (Arc<Agent>, mpsc::UnboundedReceiver<VmReport>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let agent = Arc::new(Agent {
            host: host.into(),
            driver,
            vms: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            reports: tx,
            net: std::sync::OnceLock::new(),
            volumes: std::sync::OnceLock::new(),
        });
        (agent, rx)
    }

    /// Gives the agent a volume store; volume and snapshot reports are delivered on the
    /// returned receiver. `None` when the agent already has one.
    pub fn set_volumes(
        &self,
        store: Arc<dyn strato_drivers::volumes::VolumeStore>,
        images: std::path::PathBuf,
    ) -> Option<mpsc::UnboundedReceiver<StorageReport>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let va = volumes::VolumeAgent::new(store.clone(), images, tx.clone());
        let sa = snapshots::SnapshotAgent::new(store, tx);
        self.volumes.set((va, sa)).ok().map(|_| rx)
    }

    /// Whether a disk of the VM is still being made by the volume half.
    fn disks_being_made(&self, spec: &VmSpec) -> bool {
        let Some((v, _)) = self.volumes.get() else {
            return false;
        };
        spec.disks.iter().any(|d| v.making(&d.volume_id))
    }

    /// Gives the agent a dataplane: from now on it asks for and applies network specs.
    pub fn set_network(&self, net: Arc<net::NetAgent>) {
        let _ = self.net.set(net);
    }

    /// Runs the reconcile loop until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut last_full = std::time::Instant::now() - FULL_SWEEP_EVERY;
        loop {
            let full = last_full.elapsed() >= FULL_SWEEP_EVERY;
            if full {
                last_full = std::time::Instant::now();
            }
            self.reconcile_pass(full);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// One pass over every VM (public so tests can step the agent deterministically).
    pub fn reconcile_all(&self) {
        self.reconcile_pass(true);
    }

    /// One pass over the volumes and VMs in transition, or over all when `full`.
    /// Volumes go first: a VM that starts finds its disks made.
    pub fn reconcile_pass(&self, full: bool) {
        if let Some((v, _)) = self.volumes.get() {
            v.reconcile_pass(full);
        }
        let ids: Vec<InstanceId> = {
            let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
            vms.iter()
                .filter(|(_, t)| full || !t.settled)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in ids {
            self.reconcile(&id);
        }
    }

    fn reconcile(&self, id: &InstanceId) {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = vms.get_mut(id) else { return };
        let status = self.driver.status(id);
        let gen = t.spec.generation;
        // A VM seen running under the current spec counts as started for it, so a newer
        // generation that only edits attributes never revives a guest that later powers
        // itself off.
        if t.spec.desired == DesiredVmState::Running
            && matches!(status, Some(VmStatus::Booting | VmStatus::Running))
        {
            t.started_gen = Some(gen);
        }
        let step = match (t.spec.desired, status) {
            (DesiredVmState::Running, None) => Some(Step::Start),
            // After a host crash or reboot, what should run runs again.
            (DesiredVmState::Running, Some(VmStatus::Off(StopCause::HostRestart))) => {
                Some(Step::Start)
            }
            (DesiredVmState::Running, Some(VmStatus::Off(_))) if t.started_gen != Some(gen) => {
                Some(Step::Start)
            }
            (DesiredVmState::Running, Some(VmStatus::Running))
                if t.spec.reboot_seq > t.applied_reboot_seq =>
            {
                Some(Step::Reboot)
            }
            (
                DesiredVmState::Stopped | DesiredVmState::Deleted,
                Some(VmStatus::Booting | VmStatus::Running),
            ) => Some(Step::Stop(t.spec.force_stop)),
            (DesiredVmState::Stopped | DesiredVmState::Deleted, Some(VmStatus::ShuttingDown))
                if t.spec.force_stop =>
            {
                Some(Step::Stop(true))
            }
            (DesiredVmState::Deleted, Some(VmStatus::Off(_))) => Some(Step::Destroy),
            _ => None,
        };
        // A VM starts once the disks it boots with are made: the spec of a new volume
        // (a launch's root volume) may have arrived after this pass's volume half ran.
        let waiting = matches!(step, Some(Step::Start)) && self.disks_being_made(&t.spec);
        let step = if waiting { None } else { step };
        if let Some(step) = step {
            let result = match step {
                Step::Start => {
                    t.started_gen = Some(gen);
                    // A fresh start consumes any pending reboot request.
                    t.applied_reboot_seq = t.spec.reboot_seq;
                    self.driver.start(&t.spec)
                }
                Step::Reboot => {
                    t.applied_reboot_seq = t.spec.reboot_seq;
                    self.driver.reboot(id)
                }
                Step::Stop(force) => self.driver.stop(id, force),
                Step::Destroy => self.driver.destroy(id),
            };
            if let Err(e) = result {
                tracing::error!(instance = %id, ?step, error = %e, "hypervisor step failed");
                t.last_error = Some(format!("{step:?} failed: {e}"));
            }
        }
        let status = self.driver.status(id);
        // A running VM's plugged disks follow its spec: hot-plug what is missing,
        // unplug what is no longer named (the guest acknowledges in its own time).
        let mut disks_pending = false;
        let disks = match status {
            Some(VmStatus::Booting | VmStatus::Running) => {
                let mut plugged = self.driver.disks(id);
                if t.spec.desired == DesiredVmState::Running {
                    for d in &t.spec.disks {
                        let changed =
                            plugged.contains(&d.volume_id) && !t.applied_disks.contains(d);
                        if changed {
                            if let Err(e) = self.driver.attach_disk(id, d) {
                                tracing::error!(instance = %id, volume = %d.volume_id, error = %e, "re-applying a volume failed");
                                t.last_error =
                                    Some(format!("re-applying {} failed: {e}", d.volume_id));
                            }
                        }
                        if !plugged.contains(&d.volume_id) {
                            disks_pending = true;
                            if let Err(e) = self.driver.attach_disk(id, d) {
                                tracing::error!(instance = %id, volume = %d.volume_id, error = %e, "attaching a volume failed");
                                t.last_error =
                                    Some(format!("attaching {} failed: {e}", d.volume_id));
                            }
                        }
                    }
                    for v in &plugged {
                        if !t.spec.disks.iter().any(|d| &d.volume_id == v) {
                            disks_pending = true;
                            let force = t.spec.force_detach.contains(v);
                            if let Err(e) = self.driver.detach_disk(id, v, force) {
                                tracing::error!(instance = %id, volume = %v, error = %e, "detaching a volume failed");
                                t.last_error = Some(format!("detaching {v} failed: {e}"));
                            }
                        }
                    }
                    if disks_pending {
                        plugged = self.driver.disks(id);
                    }
                    t.applied_disks = t
                        .spec
                        .disks
                        .iter()
                        .filter(|d| plugged.contains(&d.volume_id))
                        .cloned()
                        .collect();
                }
                plugged
            }
            _ => vec![],
        };
        let observed = match status {
            Some(VmStatus::Booting) => ObservedVmState::Starting,
            Some(VmStatus::Running) => ObservedVmState::Running,
            Some(VmStatus::ShuttingDown) => ObservedVmState::Stopping,
            Some(VmStatus::Off(cause)) => ObservedVmState::Stopped { cause },
            None if t.spec.desired == DesiredVmState::Deleted => ObservedVmState::Deleted,
            // Absent but wanted: it will be created on the next step.
            None => ObservedVmState::Stopped {
                cause: StopCause::Requested,
            },
        };
        t.settled = step.is_none()
            && !waiting
            && !disks_pending
            && match (t.spec.desired, &observed) {
                (DesiredVmState::Running, ObservedVmState::Running) => {
                    t.spec.reboot_seq <= t.applied_reboot_seq
                }
                (DesiredVmState::Stopped, ObservedVmState::Stopped { .. }) => true,
                _ => false,
            };
        let key = (gen, observed.clone(), disks.clone());
        if t.last_report.as_ref() != Some(&key) {
            t.last_report = Some(key);
            let _ = self.reports.send(VmReport {
                instance_id: id.clone(),
                generation: gen,
                observed: observed.clone(),
                detail: t.last_error.take(),
                disks,
            });
        }
        if observed == ObservedVmState::Deleted {
            vms.remove(id);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Start,
    Reboot,
    Stop(bool),
    Destroy,
}

impl AgentClient for Agent {
    fn host(&self) -> &str {
        &self.host
    }

    fn apply(&self, spec: VmSpec) {
        {
            let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
            match vms.get_mut(&spec.instance_id) {
                Some(t)
                    if t.spec.generation >= spec.generation
                        && t.spec.reboot_seq >= spec.reboot_seq =>
                {
                    return;
                }
                Some(t) => {
                    t.spec = spec;
                    t.settled = false;
                }
                None => {
                    vms.insert(
                        spec.instance_id.clone(),
                        Tracked {
                            spec,
                            started_gen: None,
                            applied_reboot_seq: 0,
                            last_report: None,
                            settled: false,
                            last_error: None,
                            applied_disks: vec![],
                        },
                    );
                }
            }
        }
        self.wake.notify_one();
    }

    fn sync(&self, specs: Vec<VmSpec>) {
        {
            let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
            let mut next = HashMap::new();
            for spec in specs {
                let id = spec.instance_id.clone();
                // An adopted VM that runs counts as started for its current generation,
                // so a guest that powered off while we were away is reported, not revived;
                // a VM that is off but should run (host crash) is started again.
                // Also a guest that powered off or died while we were away: that is
                // news for the control plane, not something to undo.
                let running_now = matches!(
                    self.driver.status(&id),
                    Some(
                        VmStatus::Booting
                            | VmStatus::Running
                            | VmStatus::ShuttingDown
                            | VmStatus::Off(StopCause::GuestShutdown | StopCause::Crashed)
                    )
                );
                let prev = vms.remove(&id);
                next.insert(
                    id,
                    Tracked {
                        started_gen: prev
                            .as_ref()
                            .and_then(|p| p.started_gen)
                            .or(running_now.then_some(spec.generation)),
                        applied_reboot_seq: prev
                            .as_ref()
                            .map(|p| p.applied_reboot_seq)
                            .unwrap_or(spec.reboot_seq),
                        applied_disks: prev
                            .as_ref()
                            .map(|p| p.applied_disks.clone())
                            .unwrap_or_default(),
                        spec,
                        last_report: None,
                        settled: false,
                        last_error: None,
                    },
                );
            }
            // Whatever the hypervisor runs that no spec names is an orphan (for example
            // a VM whose launch never committed): remove it.
            for id in self.driver.list() {
                if !next.contains_key(&id) {
                    tracing::warn!(instance = %id, "removing orphaned VM");
                    let _ = self.driver.stop(&id, true);
                    if let Err(e) = self.driver.destroy(&id) {
                        tracing::error!(instance = %id, error = %e, "could not remove orphaned VM");
                    }
                }
            }
            *vms = next;
        }
        // Volume daemons no VM uses any more (their VM went while Strato was away).
        match self.driver.release_unused_disks() {
            Ok(0) => {}
            Ok(n) => tracing::info!(daemons = n, "stopped serving volumes no VM uses"),
            Err(e) => tracing::error!(error = %e, "could not stop serving unused volumes"),
        }
        self.wake.notify_one();
    }

    fn console(&self, id: &InstanceId) -> Option<Vec<u8>> {
        self.driver.console(id)
    }

    fn screenshot(&self, id: &InstanceId, wake: bool) -> strato_common::Result<Option<Vec<u8>>> {
        self.driver.screenshot(id, wake)
    }

    fn hypervisor_description(&self) -> String {
        self.driver.describe()
    }

    fn wants_network(&self) -> bool {
        self.net.get().is_some()
    }

    fn apply_network(&self, spec: HostNetSpec) {
        if let Some(net) = self.net.get() {
            net.apply(spec);
        }
    }

    fn apply_volume(&self, spec: VolumeSpec) {
        match self.volumes.get() {
            Some((v, _)) => v.apply(spec),
            None => tracing::error!(volume = %spec.volume_id, "this host has no volume store"),
        }
        self.wake.notify_one();
    }

    fn sync_volumes(&self, specs: Vec<VolumeSpec>) {
        if let Some((v, _)) = self.volumes.get() {
            v.sync(specs);
        }
        self.wake.notify_one();
    }

    fn apply_snapshots(&self, specs: Vec<SnapshotSpec>, quiesce: Option<(&InstanceId, Quiesce)>) {
        let Some((_, snaps)) = self.volumes.get() else {
            tracing::error!("this host has no volume store: snapshots cannot be taken");
            return;
        };
        // A held or paused VM issues no I/O (pausing drains what is in flight), so the
        // volumes snapshotted meanwhile all show the guest at one instant.
        let held = match quiesce {
            Some((id, Quiesce::Reboot)) => match self.driver.hold_reboot(id, REBOOT_HOLD_TIMEOUT) {
                Ok(true) => Some((id, Quiesce::Reboot)),
                Ok(false) => self.pause_for_snapshots(id),
                Err(e) => {
                    tracing::warn!(instance = %id, error = %e, "could not reboot the guest for its snapshots; pausing it");
                    self.pause_for_snapshots(id)
                }
            },
            Some((id, Quiesce::Pause)) => self.pause_for_snapshots(id),
            None => None,
        };
        snaps.apply(specs);
        match held {
            Some((id, Quiesce::Reboot)) => {
                if let Err(e) = self.driver.release_reboot(id) {
                    tracing::error!(instance = %id, error = %e, "could not boot the guest again after its snapshots");
                }
            }
            Some((id, Quiesce::Pause)) => {
                if let Err(e) = self.driver.resume(id) {
                    tracing::error!(instance = %id, error = %e, "could not resume the VM after its snapshots");
                }
            }
            None => {}
        }
    }

    fn sync_snapshots(&self, specs: Vec<SnapshotSpec>) {
        if let Some((_, snaps)) = self.volumes.get() {
            snaps.sync(specs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::ResourceId;
    use strato_drivers::sim::{SimConfig, SimDriver};

    fn spec(id: &InstanceId, gen: u64, desired: DesiredVmState) -> VmSpec {
        VmSpec {
            instance_id: id.clone(),
            generation: gen,
            desired,
            force_stop: false,
            reboot_seq: 0,
            vcpus: 1,
            cpu_topology: None,
            memory_mib: 512,
            image_id: "ami-00000000000000001".into(),
            boot: Default::default(),
            user_data: vec![],
            nics: vec![],
            disks: vec![],
            force_detach: vec![],
            root_device: None,
            instance_store: vec![],
        }
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<VmReport>) -> Vec<ObservedVmState> {
        let mut out = vec![];
        while let Ok(r) = rx.try_recv() {
            out.push(r.observed);
        }
        out
    }

    #[test]
    fn drives_a_vm_through_its_life() {
        let dir = tempfile::tempdir().unwrap();
        let driver = Arc::new(
            SimDriver::open(
                dir.path(),
                SimConfig {
                    boot_delay: Duration::ZERO,
                    stop_delay: Duration::ZERO,
                },
            )
            .unwrap(),
        );
        let (agent, mut rx) = Agent::new("host-1", driver.clone());
        let id = InstanceId::generate();
        agent.sync(vec![]);
        agent.apply(spec(&id, 1, DesiredVmState::Running));
        agent.reconcile_all();
        agent.reconcile_all();
        assert!(drain(&mut rx).contains(&ObservedVmState::Running));

        agent.apply(spec(&id, 2, DesiredVmState::Stopped));
        agent.reconcile_all();
        assert_eq!(
            drain(&mut rx),
            vec![ObservedVmState::Stopped {
                cause: StopCause::Requested
            }]
        );
        // An older generation is ignored.
        agent.apply(spec(&id, 1, DesiredVmState::Running));
        agent.reconcile_all();
        assert!(drain(&mut rx).is_empty());

        agent.apply(spec(&id, 3, DesiredVmState::Deleted));
        agent.reconcile_all();
        agent.reconcile_all();
        assert!(drain(&mut rx).contains(&ObservedVmState::Deleted));
        assert!(driver.list().is_empty());
    }

    #[test]
    fn sync_removes_orphans_and_adopts_running_vms() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SimConfig {
            boot_delay: Duration::ZERO,
            stop_delay: Duration::ZERO,
        };
        let driver = Arc::new(SimDriver::open(dir.path(), cfg.clone()).unwrap());
        let keep = InstanceId::generate();
        let orphan = InstanceId::generate();
        driver
            .start(&spec(&keep, 1, DesiredVmState::Running))
            .unwrap();
        driver
            .start(&spec(&orphan, 1, DesiredVmState::Running))
            .unwrap();
        let (agent, mut rx) = Agent::new("host-1", driver.clone());
        agent.sync(vec![spec(&keep, 1, DesiredVmState::Running)]);
        agent.reconcile_all();
        assert_eq!(driver.list(), vec![keep.clone()]);
        assert_eq!(drain(&mut rx), vec![ObservedVmState::Running]);
    }
}
