//! Volumes plugged into a VM's QEMU.
//!
//! A VM never opens a volume's disk itself: the volume store serves it (one
//! `qemu-storage-daemon` per volume, see [`crate::volumes::daemon`]) and the VM's QEMU
//! is an NBD client of that daemon's Unix socket. Per attached volume the VM has:
//!
//! ```text
//!   virtio-blk-pci   qdev id "disk-<vol-id>", serial = DiskSpec::serial
//!        │
//!   "vd-<vol-id>"      raw format node: what the device uses, for the disk's whole life
//!        │ file
//!   "nbd-<vol-id>-<n>" NBD client of the volume's export (n grows with each refresh)
//! ```
//!
//! The raw node exists because NBD cannot tell a client that a disk grew: to show a
//! guest a grown volume, a new NBD connection (which learns the new size) replaces the
//! old one under the raw node (`blockdev-reopen`), and resizing the raw node then makes
//! virtio-blk signal the guest a capacity change.
//!
//! The NBD client reconnects by itself (`reconnect-delay`) when its daemon restarts or
//! withdraws the export for a moment (the daemon's side of growing a disk): guest I/O
//! waits meanwhile instead of failing.
//!
//! Detaching asks the guest first (`device_del` is an ACPI eject request); the block
//! nodes are removed and the volume unserved once QEMU has removed the device. A
//! forced detach that the guest has not honoured within a short grace (3 s) stops the
//! volume's daemon instead: the orphaned device then reaches nothing, and cannot reach
//! the volume again, since every serving has a new export name.

use super::{lock, QemuDriver, Vm};
use crate::volumes::{NbdExport, Qcow2VolumeStore, VolumeStore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use strato_agent_api::DiskSpec;
use strato_common::{time_fmt::now_ms, Error, InstanceId, Result, VolumeId};

/// Seconds guest I/O waits for a lost NBD connection to come back before failing.
const RECONNECT_DELAY_S: u64 = 5;
/// How long the detach that asks the guest waits for its answer before returning.
const DETACH_WAIT: Duration = Duration::from_millis(1500);
/// How long a forced detach waits for the guest before cutting the disk off.
const FORCE_GRACE: Duration = Duration::from_secs(3);
/// After this long without the guest's answer, a detach asks the guest again (an ACPI
/// event can be lost, e.g. while the guest boots).
const DETACH_RETRY_MS: i64 = 10_000;

/// Where an attached disk is in its life.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub(crate) enum DiskState {
    /// Plugged in (or being plugged in).
    #[default]
    Attached,
    /// The guest was asked to let go (epoch ms of the last request).
    Detaching { since_ms: i64 },
    /// Force-detached: its daemon is stopped; the guest still holds the device.
    Cut,
}

/// A disk as `vm.json` remembers it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct DiskRecord {
    pub spec: DiskSpec,
    #[serde(default)]
    pub state: DiskState,
}

/// The disk's qdev id (stable: derived from the volume id).
pub(super) fn device_id(vol: &VolumeId) -> String {
    format!("disk-{vol}")
}

/// The raw node the device uses.
pub(super) fn raw_node(vol: &VolumeId) -> String {
    format!("vd-{vol}")
}

/// The `n`th NBD client node of a volume (node names have at most 31 characters:
/// `nbd-vol-0123456789abcdef0-99999` is 31).
pub(super) fn nbd_node(vol: &VolumeId, n: u32) -> String {
    format!("nbd-{vol}-{n}")
}

/// The number of an NBD node of `vol`, if `name` is one.
fn nbd_number(vol: &VolumeId, name: &str) -> Option<u32> {
    name.strip_prefix(&format!("nbd-{vol}-"))?.parse().ok()
}

fn nbd_json(node: &str, export: &NbdExport) -> Value {
    json!({
        "driver": "nbd",
        "node-name": node,
        "server": {"type": "unix", "path": export.socket.display().to_string()},
        "export": export.name,
        "reconnect-delay": RECONNECT_DELAY_S,
    })
}

/// The raw node's options; `blockdev-reopen` must restate them all.
fn raw_json(vol: &VolumeId, file: &str) -> Value {
    json!({"driver": "raw", "node-name": raw_node(vol), "file": file, "discard": "unmap"})
}

/// No `bootindex`, also for the root volume: direct kernel boot takes index 0 for
/// itself, and firmware boots the first disk (the root volume's slot) anyway.
fn device_json(disk: &DiskSpec) -> Value {
    json!({
        "driver": "virtio-blk-pci",
        "drive": raw_node(&disk.volume_id),
        "id": device_id(&disk.volume_id),
        "serial": disk.serial,
    })
}

/// QEMU arguments for disks present at boot. The root volume's come first on the
/// command line, the others after the NICs, so they take later PCI slots and the root
/// disk stays `vda`.
pub(super) fn command_line(disks: &[(DiskSpec, NbdExport)]) -> Vec<String> {
    let mut args = vec![];
    for (disk, export) in disks {
        let nbd = nbd_node(&disk.volume_id, 0);
        for (opt, value) in [
            ("-blockdev", nbd_json(&nbd, export)),
            ("-blockdev", raw_json(&disk.volume_id, &nbd)),
            ("-device", device_json(disk)),
        ] {
            args.push(opt.to_string());
            args.push(value.to_string());
        }
    }
    args
}

/// Whether a QMP error says the thing is not there (so removing it again is fine).
fn is_absent(e: &Error) -> bool {
    let m = e.to_string();
    m.contains("not found") || m.contains("Cannot find") || m.contains("No such")
}

impl QemuDriver {
    /// The volume store, which a VM with disks needs.
    pub(super) fn store(&self) -> Result<&Qcow2VolumeStore> {
        self.volumes.as_deref().ok_or_else(|| {
            Error::Internal("this QEMU driver has no volume store: it cannot attach volumes".into())
        })
    }

    /// The uid a VM's QEMU runs as, to which its disks' sockets are handed.
    pub(super) fn client_uid(&self, uid: u32) -> Option<u32> {
        self.cfg.drop_privileges.then_some(uid)
    }

    /// Serves the disks a VM boots with (and stops serving those it had before and no
    /// longer has): what `start` puts on the command line.
    pub(super) fn serve_boot_disks(
        &self,
        vm: &mut Vm,
        disks: &[DiskSpec],
    ) -> Result<Vec<(DiskSpec, NbdExport)>> {
        let old: Vec<VolumeId> = vm
            .rec
            .disks
            .iter()
            .map(|d| d.spec.volume_id.clone())
            .collect();
        if disks.is_empty() && (old.is_empty() || self.volumes.is_none()) {
            vm.rec.disks.clear();
            return Ok(vec![]);
        }
        let store = self.store()?;
        for vol in old {
            if !disks.iter().any(|d| d.volume_id == vol) {
                store.unserve(&vol)?;
            }
        }
        let uid = self.client_uid(vm.rec.uid);
        let mut served = vec![];
        for disk in disks {
            served.push((
                disk.clone(),
                store.serve(&disk.volume_id, disk.limits, uid)?,
            ));
        }
        vm.rec.disks = disks
            .iter()
            .map(|d| DiskRecord {
                spec: d.clone(),
                state: DiskState::Attached,
            })
            .collect();
        Ok(served)
    }

    /// Stops serving the disks of a VM that is off (nothing can use them), and forgets
    /// them: a VM that is off has nothing plugged, and its next start plugs what its
    /// spec names then. Forgetting matters: a volume detached from a stopped instance
    /// may be attached to another one at once, and must not be unserved under it.
    pub(super) fn release_disks(&self, vm: &mut Vm) {
        if vm.rec.disks.is_empty() {
            return;
        }
        let Some(store) = self.volumes.as_deref() else {
            return;
        };
        for d in &vm.rec.disks {
            if store.daemon_pid(&d.spec.volume_id).is_some() {
                if let Err(e) = store.unserve(&d.spec.volume_id) {
                    tracing::warn!(instance = %vm.rec.id, volume = %d.spec.volume_id, error = %e, "could not stop serving a disk");
                }
            }
        }
        vm.rec.disks.clear();
        let _ = self.save(&vm.rec);
    }

    /// Devices with an id in the VM now (`/machine/peripheral`).
    fn devices(&self, vm: &mut Vm) -> Result<HashSet<String>> {
        let list = self.command(vm, "qom-list", Some(json!({"path": "/machine/peripheral"})))?;
        Ok(list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|p| p["type"].as_str().is_some_and(|t| t.starts_with("child<")))
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Named block nodes and their sizes.
    fn nodes(&self, vm: &mut Vm) -> Result<BTreeMap<String, u64>> {
        let list = self.command(vm, "query-named-block-nodes", Some(json!({"flat": true})))?;
        Ok(list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|n| {
                        Some((
                            n["node-name"].as_str()?.to_string(),
                            n["image"]["virtual-size"].as_u64().unwrap_or(0),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Removes a volume's block nodes (raw first: it holds the NBD node). Nodes that
    /// are not there, or still in use, are left alone.
    fn remove_nodes(&self, vm: &mut Vm, vol: &VolumeId) {
        let Ok(nodes) = self.nodes(vm) else { return };
        let mut doomed: Vec<String> = vec![];
        if nodes.contains_key(&raw_node(vol)) {
            doomed.push(raw_node(vol));
        }
        doomed.extend(
            nodes
                .keys()
                .filter(|n| nbd_number(vol, n).is_some())
                .cloned(),
        );
        for node in doomed {
            if let Err(e) = self.command(vm, "blockdev-del", Some(json!({"node-name": node}))) {
                if !is_absent(&e) {
                    tracing::warn!(instance = %vm.rec.id, %node, error = %e, "could not remove a block node");
                }
            }
        }
    }

    /// Plugs a served volume into the running VM: NBD node, raw node, device.
    fn plug(&self, vm: &mut Vm, disk: &DiskSpec, export: &NbdExport) -> Result<()> {
        let vol = &disk.volume_id;
        // Nodes without a device are leftovers of an attempt that was interrupted;
        // they may name an export that no longer exists.
        self.remove_nodes(vm, vol);
        let nbd = nbd_node(vol, 0);
        self.command(vm, "blockdev-add", Some(nbd_json(&nbd, export)))?;
        self.command(vm, "blockdev-add", Some(raw_json(vol, &nbd)))?;
        self.command(vm, "device_add", Some(device_json(disk)))?;
        Ok(())
    }

    /// Shows the guest the volume's current size when it grew: a new NBD connection
    /// (which learns the size) replaces the old one under the raw node, and the raw
    /// node is resized, which virtio-blk reports to the guest as a capacity change.
    fn refresh_size(&self, vm: &mut Vm, vol: &VolumeId, export: &NbdExport) -> Result<()> {
        let store = self.store()?;
        let Some(info) = store.info(vol) else {
            return Ok(());
        };
        let nodes = self.nodes(vm)?;
        let have = nodes.get(&raw_node(vol)).copied().unwrap_or(0);
        if info.size_bytes <= have {
            return Ok(());
        }
        let current = nodes.keys().filter_map(|n| nbd_number(vol, n)).max();
        let next = nbd_node(vol, current.map_or(0, |n| n + 1));
        self.command(vm, "blockdev-add", Some(nbd_json(&next, export)))?;
        let reopened = self.command(
            vm,
            "blockdev-reopen",
            Some(json!({"options": [raw_json(vol, &next)]})),
        );
        if let Err(e) = reopened {
            let _ = self.command(vm, "blockdev-del", Some(json!({"node-name": next})));
            return Err(e);
        }
        if let Some(old) = current {
            let old = nbd_node(vol, old);
            if let Err(e) = self.command(vm, "blockdev-del", Some(json!({"node-name": old}))) {
                tracing::warn!(instance = %vm.rec.id, node = %old, error = %e, "could not remove the old NBD node");
            }
        }
        let grown = self.nodes(vm)?.get(&next).copied().unwrap_or(0);
        self.command(
            vm,
            "block_resize",
            Some(json!({"node-name": raw_node(vol), "size": grown})),
        )?;
        tracing::info!(instance = %vm.rec.id, volume = %vol, from = have, to = grown, "disk grown in the guest");
        Ok(())
    }

    /// Completes the detaches whose devices the guest has let go of: their nodes go,
    /// their volumes are unserved, and they are forgotten.
    fn reconcile_disks(&self, vm: &mut Vm) -> Result<()> {
        if vm.rec.disks.iter().all(|d| d.state == DiskState::Attached) {
            return Ok(());
        }
        let devices = self.devices(vm)?;
        let gone: Vec<VolumeId> = vm
            .rec
            .disks
            .iter()
            .filter(|d| d.state != DiskState::Attached)
            .map(|d| d.spec.volume_id.clone())
            .filter(|v| !devices.contains(&device_id(v)))
            .collect();
        for vol in &gone {
            self.finish_detach(vm, vol)?;
        }
        Ok(())
    }

    /// Removes what is left of a disk whose device is gone.
    fn finish_detach(&self, vm: &mut Vm, vol: &VolumeId) -> Result<()> {
        self.remove_nodes(vm, vol);
        self.store()?.unserve(vol)?;
        vm.rec.disks.retain(|d| &d.spec.volume_id != vol);
        self.save(&vm.rec)?;
        tracing::info!(instance = %vm.rec.id, volume = %vol, "disk detached");
        Ok(())
    }

    /// [`crate::Hypervisor::disks`].
    pub(super) fn vm_disks(&self, id: &InstanceId) -> Vec<VolumeId> {
        let Some(handle) = self.get(id) else {
            return vec![];
        };
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        if self.live_pid(id).is_none() {
            return vec![];
        }
        if let Err(e) = self.reconcile_disks(vm) {
            tracing::warn!(instance = %id, error = %e, "could not complete detaches");
        }
        let recorded = |d: &&DiskRecord| d.state != DiskState::Cut;
        let devices = match self.devices(vm) {
            Ok(d) => d,
            Err(e) => {
                // QEMU did not answer: what was last plugged in is the best guess.
                tracing::warn!(instance = %id, error = %e, "could not list the VM's devices");
                return vm
                    .rec
                    .disks
                    .iter()
                    .filter(recorded)
                    .map(|d| d.spec.volume_id.clone())
                    .collect();
            }
        };
        let mut out: Vec<VolumeId> = vm
            .rec
            .disks
            .iter()
            .filter(recorded)
            .map(|d| d.spec.volume_id.clone())
            .filter(|v| devices.contains(&device_id(v)))
            .collect();
        // A disk device QEMU has and the record lacks still is one.
        let mut extra: Vec<VolumeId> = devices
            .iter()
            .filter_map(|d| VolumeId::parse_str(d.strip_prefix("disk-")?))
            .filter(|v| !vm.rec.disks.iter().any(|d| &d.spec.volume_id == v))
            .collect();
        extra.sort();
        // A daemon that died (killed, crashed) is started again under the same export
        // name: the VM's NBD client reconnects within its `reconnect-delay` and the
        // guest's I/O resumes where it stopped (what it had flushed is on disk).
        if let Some(store) = self.volumes.as_deref() {
            let uid = self.client_uid(vm.rec.uid);
            for d in vm
                .rec
                .disks
                .iter()
                .filter(|d| d.state == DiskState::Attached && out.contains(&d.spec.volume_id))
            {
                let vol = &d.spec.volume_id;
                if store.daemon_pid(vol).is_none() {
                    match store.serve(vol, d.spec.limits, uid) {
                        Ok(_) => {
                            tracing::warn!(instance = %id, volume = %vol, "the volume's daemon had died: serving it again")
                        }
                        Err(e) => {
                            tracing::error!(instance = %id, volume = %vol, error = %e, "could not serve the volume again")
                        }
                    }
                }
            }
        }
        out.extend(extra);
        out
    }

    /// [`crate::Hypervisor::attach_disk`].
    pub(super) fn vm_attach_disk(&self, id: &InstanceId, disk: &DiskSpec) -> Result<()> {
        let Some(handle) = self.get(id) else {
            return Ok(());
        };
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        if self.live_pid(id).is_none() {
            return Ok(());
        }
        let store = self.store()?;
        let vol = &disk.volume_id;
        self.reconcile_disks(vm)?;
        if let Some(d) = vm.rec.disks.iter().find(|d| &d.spec.volume_id == vol) {
            if d.state != DiskState::Attached {
                return Err(Error::Internal(format!(
                    "volume {vol} is still being detached from {id}; attach it again once the guest has let go"
                )));
            }
        }
        let plugged = self.devices(vm)?.contains(&device_id(vol));
        if disk.boot && !plugged {
            return Err(Error::IncorrectState(format!(
                "volume {vol} is {id}'s root volume: it is plugged in only when the VM starts"
            )));
        }
        let export = store.serve(vol, disk.limits, self.client_uid(vm.rec.uid))?;
        match vm.rec.disks.iter_mut().find(|d| &d.spec.volume_id == vol) {
            Some(d) if d.spec == *disk => {}
            Some(d) => {
                d.spec = disk.clone();
                self.save(&vm.rec)?;
            }
            None => {
                // Remembered before it is plugged: a crash half-way leaves a record to
                // finish or undo, never a device nobody knows about.
                vm.rec.disks.push(DiskRecord {
                    spec: disk.clone(),
                    state: DiskState::Attached,
                });
                self.save(&vm.rec)?;
            }
        }
        if plugged {
            return self.refresh_size(vm, vol, &export);
        }
        let started = Instant::now();
        if let Err(e) = self.plug(vm, disk, &export) {
            self.remove_nodes(vm, vol);
            vm.rec.disks.retain(|d| &d.spec.volume_id != vol);
            let _ = self.save(&vm.rec);
            let _ = store.unserve(vol);
            return Err(e);
        }
        tracing::info!(instance = %id, volume = %vol, serial = %disk.serial, elapsed = ?started.elapsed(), "disk hot-plugged");
        Ok(())
    }

    /// [`crate::Hypervisor::detach_disk`].
    pub(super) fn vm_detach_disk(
        &self,
        id: &InstanceId,
        vol: &VolumeId,
        force: bool,
    ) -> Result<()> {
        let Some(handle) = self.get(id) else {
            return Ok(());
        };
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        if self.live_pid(id).is_none() {
            // Nothing is plugged into a VM that is off.
            if let Some(store) = self.volumes.as_deref() {
                store.unserve(vol)?;
            }
            let before = vm.rec.disks.len();
            vm.rec.disks.retain(|d| &d.spec.volume_id != vol);
            if vm.rec.disks.len() != before {
                self.save(&vm.rec)?;
            }
            return Ok(());
        }
        self.reconcile_disks(vm)?;
        let dev = device_id(vol);
        if !self.devices(vm)?.contains(&dev) {
            return self.finish_detach(vm, vol);
        }
        let now = now_ms();
        let state = match vm.rec.disks.iter().find(|d| &d.spec.volume_id == vol) {
            Some(d) => d.state,
            None => {
                // A device without a record (Strato stopped between device_add and
                // saving): track it like any other.
                vm.rec.disks.push(DiskRecord {
                    spec: DiskSpec {
                        volume_id: vol.clone(),
                        device: String::new(),
                        serial: String::new(),
                        limits: Default::default(),
                        size_gib: 1,
                        boot: false,
                    },
                    state: DiskState::Attached,
                });
                DiskState::Attached
            }
        };
        let since_ms = match state {
            DiskState::Attached => None,
            DiskState::Detaching { since_ms } if now - since_ms > DETACH_RETRY_MS => None,
            DiskState::Detaching { since_ms } => Some(since_ms),
            DiskState::Cut => return Ok(()),
        };
        let since_ms = match since_ms {
            Some(s) => s,
            None => {
                if let Err(e) = self.command(vm, "device_del", Some(json!({"id": dev}))) {
                    // "already in the process of unplug" is the request we want.
                    if !e.to_string().contains("in the process of unplug") {
                        return Err(e);
                    }
                }
                self.set_state(vm, vol, DiskState::Detaching { since_ms: now })?;
                now
            }
        };
        // A cooperative guest answers within a moment of the request, so only the call
        // that asks waits for it; later calls just look (an agent polling a guest that
        // takes its time is not held up on every pass).
        let wait = if force {
            FORCE_GRACE.saturating_sub(Duration::from_millis((now - since_ms).max(0) as u64))
        } else if since_ms == now {
            DETACH_WAIT
        } else {
            Duration::ZERO
        };
        let deadline = Instant::now() + wait;
        loop {
            if !self.devices(vm)?.contains(&dev) {
                return self.finish_detach(vm, vol);
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if force {
            tracing::warn!(instance = %id, volume = %vol, "guest did not release the disk: cutting it off");
            self.store()?.unserve(vol)?;
            self.set_state(vm, vol, DiskState::Cut)?;
        }
        Ok(())
    }

    fn set_state(&self, vm: &mut Vm, vol: &VolumeId, state: DiskState) -> Result<()> {
        for d in vm.rec.disks.iter_mut() {
            if &d.spec.volume_id == vol {
                d.state = state;
            }
        }
        self.save(&vm.rec)
    }

    /// The serial number of each disk device the VM has now, as QEMU reports it (for
    /// operators and tests; the guest reads the same value).
    pub fn disk_serials(&self, id: &InstanceId) -> Result<Vec<(VolumeId, String)>> {
        let Some(handle) = self.get(id) else {
            return Ok(vec![]);
        };
        if self.live_pid(id).is_none() {
            return Ok(vec![]);
        }
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        let mut out = vec![];
        let mut devices: Vec<String> = self.devices(vm)?.into_iter().collect();
        devices.sort();
        for dev in devices {
            let Some(vol) = dev.strip_prefix("disk-").and_then(VolumeId::parse_str) else {
                continue;
            };
            let serial = self.command(
                vm,
                "qom-get",
                Some(json!({"path": format!("/machine/peripheral/{dev}"), "property": "serial"})),
            )?;
            out.push((vol, serial.as_str().unwrap_or_default().to_string()));
        }
        Ok(out)
    }

    /// Stops serving every disk of a VM being destroyed (the volumes stay).
    pub(super) fn unserve_all(&self, disks: &[DiskRecord]) {
        let Some(store) = self.volumes.as_deref() else {
            return;
        };
        for d in disks {
            if let Err(e) = store.unserve(&d.spec.volume_id) {
                tracing::error!(volume = %d.spec.volume_id, error = %e, "could not stop serving a disk");
            }
        }
    }
}

/// Checks that a volume store can serve this driver's VMs.
pub(super) fn check_store(store: &Qcow2VolumeStore, drop_privileges: bool) -> Result<()> {
    // Unprivileged QEMU processes walk to the volumes' NBD sockets.
    if drop_privileges {
        super::check_traversable(store.dir())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use strato_common::ResourceId;

    #[test]
    fn names_fit_qemu_limits() {
        let vol = VolumeId::generate();
        assert!(nbd_node(&vol, 99_999).len() <= 31);
        assert!(raw_node(&vol).len() <= 31);
        assert_eq!(nbd_number(&vol, &nbd_node(&vol, 7)), Some(7));
        assert_eq!(nbd_number(&vol, &raw_node(&vol)), None);
        assert_eq!(nbd_number(&VolumeId::generate(), &nbd_node(&vol, 7)), None);
    }

    #[test]
    fn boot_disks_follow_on_the_command_line() {
        let vol = VolumeId::generate();
        let disk = DiskSpec {
            serial: strato_agent_api::disk_serial(&vol),
            volume_id: vol.clone(),
            device: "/dev/sdf".into(),
            limits: Default::default(),
            size_gib: 1,
            boot: false,
        };
        let export = NbdExport {
            socket: PathBuf::from("/v/x/nbd.sock"),
            name: "e".into(),
        };
        let args = command_line(&[(disk.clone(), export)]);
        assert_eq!(args.len(), 6);
        let dev: Value = serde_json::from_str(&args[5]).unwrap();
        assert_eq!(dev["serial"], disk.serial.as_str());
        assert_eq!(dev["drive"], raw_node(&vol).as_str());
        let nbd: Value = serde_json::from_str(&args[1]).unwrap();
        assert_eq!(nbd["server"]["path"], "/v/x/nbd.sock");
        assert_eq!(nbd["export"], "e");
    }

    #[test]
    fn records_read_back() {
        let vol = VolumeId::generate();
        let rec = DiskRecord {
            spec: DiskSpec {
                serial: strato_agent_api::disk_serial(&vol),
                volume_id: vol,
                device: "/dev/sdf".into(),
                limits: Default::default(),
                size_gib: 1,
                boot: false,
            },
            state: DiskState::Detaching { since_ms: 5 },
        };
        let back: DiskRecord = serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        assert_eq!(back, rec);
    }
}
