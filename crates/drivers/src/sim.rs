//! The simulated hypervisor.
//!
//! Behaves like a real one, minus the guest: VMs boot after `boot_delay`, shut down
//! after `stop_delay` (at once when forced), keep a serial console log, and persist in
//! `<dir>/<instance-id>.json` so they survive a restart of the agent exactly as QEMU
//! processes would. Time-based transitions are computed from the wall clock whenever a
//! VM is looked at, so a VM that was booting when the agent stopped is running when it
//! comes back.
//!
//! The simulated guest "runs" its user data: in a shell script, `sleep N` lines advance
//! its clock and a `poweroff` (or `shutdown -h now`, `halt -p`) line powers the guest
//! off, so guest-initiated shutdown can be tested through the public API.
//!
//! Attached volumes are remembered with the VM (and persisted with it). The simulated
//! guest always lets go of a disk at once, so a detach completes immediately. A VM that
//! is off reports no disks (nothing is plugged into a machine that is not running); the
//! next `start` attaches its spec's disks, as a real boot does.

use crate::{Hypervisor, VmStatus};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use strato_agent_api::{DiskSpec, StopCause, VmSpec};
use strato_common::{time_fmt::now_ms, Error, InstanceId, Result, VolumeId};

/// Most console bytes kept per VM, like a real serial log ring.
const CONSOLE_LIMIT: usize = 256 * 1024;

/// Timing knobs of the simulator.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub boot_delay: Duration,
    pub stop_delay: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            boot_delay: Duration::from_millis(1500),
            stop_delay: Duration::from_millis(1000),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
enum Phase {
    Booting { since_ms: i64 },
    Running { since_ms: i64 },
    ShuttingDown { since_ms: i64, force: bool },
    Off { cause: StopCause },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SimVm {
    id: InstanceId,
    vcpus: u32,
    memory_mib: u32,
    image_id: String,
    phase: Phase,
    boots: u32,
    /// When, after reaching running, the guest powers itself off (from user data).
    poweroff_after_ms: Option<i64>,
    console: String,
    /// The volumes plugged in, in attach order (meaningful while the VM runs).
    #[serde(default)]
    disks: Vec<DiskSpec>,
}

/// The simulated driver.
pub struct SimDriver {
    db: Mutex<rusqlite::Connection>,
    cfg: SimConfig,
    vms: Mutex<HashMap<InstanceId, SimVm>>,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Internal(format!("simulator state: {e}"))
}

impl SimDriver {
    /// Opens the simulator's state directory, adopting every VM recorded there.
    pub fn open(dir: &Path, cfg: SimConfig) -> Result<SimDriver> {
        std::fs::create_dir_all(dir).map_err(Error::internal)?;
        let conn = rusqlite::Connection::open(dir.join("sim.db")).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;
             CREATE TABLE IF NOT EXISTS vms (id TEXT PRIMARY KEY, data TEXT NOT NULL);",
        )
        .map_err(db_err)?;
        let mut vms = HashMap::new();
        {
            let mut st = conn.prepare("SELECT id, data FROM vms").map_err(db_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(db_err)?;
            for row in rows {
                let (id, data) = row.map_err(db_err)?;
                match serde_json::from_str::<SimVm>(&data) {
                    Ok(vm) => {
                        vms.insert(vm.id.clone(), vm);
                    }
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "ignoring unreadable simulated VM record")
                    }
                }
            }
        }
        Ok(SimDriver {
            db: Mutex::new(conn),
            cfg,
            vms: Mutex::new(vms),
        })
    }

    fn save(&self, vm: &SimVm) -> Result<()> {
        let data = serde_json::to_string(vm).map_err(Error::internal)?;
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        db.prepare_cached(
            "INSERT INTO vms(id, data) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
        )
        .and_then(|mut st| st.execute(rusqlite::params![vm.id.as_str(), data]))
        .map(|_| ())
        .map_err(db_err)
    }

    fn forget(&self, id: &InstanceId) -> Result<()> {
        let db = self.db.lock().unwrap_or_else(|p| p.into_inner());
        db.execute("DELETE FROM vms WHERE id = ?1", [id.as_str()])
            .map(|_| ())
            .map_err(db_err)
    }

    /// Applies the transitions that time has made due; true when something changed.
    fn advance(&self, vm: &mut SimVm, now: i64) -> bool {
        let boot = self.cfg.boot_delay.as_millis() as i64;
        let stop = self.cfg.stop_delay.as_millis() as i64;
        let mut changed = false;
        loop {
            let next = match &vm.phase {
                Phase::Booting { since_ms } if now >= since_ms + boot => {
                    let at = since_ms + boot;
                    console_line(vm, "[  OK  ] Reached target Multi-User System.");
                    console_line(vm, &format!("strato-sim: {} is running", vm.id));
                    Phase::Running { since_ms: at }
                }
                Phase::Running { since_ms } => match vm.poweroff_after_ms {
                    Some(after) if now >= since_ms + after => {
                        console_line(vm, "reboot: Power down");
                        Phase::Off {
                            cause: StopCause::GuestShutdown,
                        }
                    }
                    _ => break,
                },
                Phase::ShuttingDown { since_ms, force } if *force || now >= since_ms + stop => {
                    console_line(vm, "reboot: Power down");
                    Phase::Off {
                        cause: StopCause::Requested,
                    }
                }
                _ => break,
            };
            vm.phase = next;
            changed = true;
        }
        changed
    }

    fn exists(&self, id: &InstanceId) -> bool {
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        vms.contains_key(id)
    }

    fn with_vm<T>(&self, id: &InstanceId, f: impl FnOnce(&mut SimVm) -> Result<T>) -> Result<T> {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let vm = vms
            .get_mut(id)
            .ok_or_else(|| Error::Internal(format!("simulated VM {id} does not exist")))?;
        self.advance(vm, now_ms());
        let out = f(vm)?;
        self.save(vm)?;
        Ok(out)
    }
}

fn console_line(vm: &mut SimVm, line: &str) {
    vm.console.push_str(line);
    vm.console.push_str("\r\n");
    if vm.console.len() > CONSOLE_LIMIT {
        let mut cut = vm.console.len() - CONSOLE_LIMIT;
        while !vm.console.is_char_boundary(cut) {
            cut += 1;
        }
        vm.console.drain(..cut);
    }
}

fn boot_banner(vm: &mut SimVm) {
    vm.boots += 1;
    let (id, vcpus, mem, image, boots) = (
        vm.id.to_string(),
        vm.vcpus,
        vm.memory_mib,
        vm.image_id.clone(),
        vm.boots,
    );
    console_line(
        vm,
        &format!("[    0.000000] Linux version 6.1.0-strato-sim (simulated guest) boot #{boots}"),
    );
    console_line(
        vm,
        &format!("[    0.000000] Command line: console=ttyS0 image={image}"),
    );
    console_line(
        vm,
        &format!("[    0.010000] smpboot: Allowing {vcpus} CPUs, Memory: {mem}MiB"),
    );
    console_line(vm, &format!("strato-sim: booting {id}"));
}

/// Reads a user-data shell script for the simulated guest's actions: the total of
/// `sleep N` lines before a power-off command, in milliseconds.
fn poweroff_after(user_data: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(user_data).ok()?;
    if !text.starts_with("#!") {
        return None;
    }
    let mut delay_ms = 0i64;
    for line in text.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("sleep ") {
            let secs: f64 = n.trim().parse().ok()?;
            delay_ms += (secs * 1000.0) as i64;
        } else if matches!(
            line,
            "poweroff" | "shutdown -h now" | "halt -p" | "shutdown -P now"
        ) {
            return Some(delay_ms);
        }
    }
    None
}

impl Hypervisor for SimDriver {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn describe(&self) -> String {
        format!(
            "sim (simulated hypervisor, boot {:?}, stop {:?})",
            self.cfg.boot_delay, self.cfg.stop_delay
        )
    }

    fn start(&self, spec: &VmSpec) -> Result<()> {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let vm = vms
            .entry(spec.instance_id.clone())
            .or_insert_with(|| SimVm {
                id: spec.instance_id.clone(),
                vcpus: spec.vcpus,
                memory_mib: spec.memory_mib,
                image_id: spec.image_id.clone(),
                phase: Phase::Off {
                    cause: StopCause::Requested,
                },
                boots: 0,
                poweroff_after_ms: None,
                console: String::new(),
                disks: vec![],
            });
        self.advance(vm, now);
        if spec.root_device.is_some()
            && matches!(vm.phase, Phase::Off { .. })
            && !spec.disks.iter().any(|d| d.boot)
        {
            return Err(Error::IncorrectState(format!(
                "instance {} has no root volume attached: it cannot start",
                spec.instance_id
            )));
        }
        if let Phase::Off { .. } = vm.phase {
            // A start picks up the current shape (ModifyInstanceAttribute while stopped).
            vm.vcpus = spec.vcpus;
            vm.memory_mib = spec.memory_mib;
            vm.poweroff_after_ms = poweroff_after(&spec.user_data);
            vm.phase = Phase::Booting { since_ms: now };
            boot_banner(vm);
            vm.disks = spec.disks.clone();
            for disk in spec.disks.iter() {
                disk_line(vm, disk, "present at boot");
            }
            // The simulator keeps no data: an instance store is empty at every start.
            for e in &spec.instance_store {
                console_line(
                    vm,
                    &format!(
                        "strato-sim: instance-store disk {} ({}, {} bytes) empty at boot",
                        e.serial, e.name, e.size_bytes
                    ),
                );
            }
            let vm = vm.clone();
            drop(vms);
            self.save(&vm)?;
        }
        Ok(())
    }

    fn stop(&self, id: &InstanceId, force: bool) -> Result<()> {
        self.with_vm(id, |vm| {
            match vm.phase {
                Phase::Booting { .. } | Phase::Running { .. } => {
                    console_line(vm, "strato-sim: ACPI power button pressed");
                    vm.phase = Phase::ShuttingDown {
                        since_ms: now_ms(),
                        force,
                    };
                }
                Phase::ShuttingDown { since_ms, .. } if force => {
                    vm.phase = Phase::ShuttingDown {
                        since_ms,
                        force: true,
                    };
                }
                _ => {}
            }
            self.advance(vm, now_ms());
            Ok(())
        })
    }

    fn reboot(&self, id: &InstanceId) -> Result<()> {
        self.with_vm(id, |vm| {
            if let Phase::Running { .. } | Phase::Booting { .. } = vm.phase {
                console_line(vm, "reboot: Restarting system");
                vm.phase = Phase::Booting { since_ms: now_ms() };
                boot_banner(vm);
            }
            Ok(())
        })
    }

    fn destroy(&self, id: &InstanceId) -> Result<()> {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        if vms.remove(id).is_some() {
            self.forget(id)?;
        }
        Ok(())
    }

    fn status(&self, id: &InstanceId) -> Option<VmStatus> {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let vm = vms.get_mut(id)?;
        if self.advance(vm, now_ms()) {
            let vm = vm.clone();
            drop(vms);
            if let Err(e) = self.save(&vm) {
                tracing::warn!(instance = %vm.id, error = %e, "could not persist simulated VM");
            }
            return Some(phase_status(&vm.phase));
        }
        Some(phase_status(&vm.phase))
    }

    fn list(&self) -> Vec<InstanceId> {
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<_> = vms.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn console(&self, id: &InstanceId) -> Option<Vec<u8>> {
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        vms.get(id).map(|vm| vm.console.as_bytes().to_vec())
    }

    /// A simulated VM has no display: a running one shows what a VGA text console
    /// that nothing has drawn on shows, a black 720×400 screen.
    fn screenshot(&self, id: &InstanceId, _wake: bool) -> Result<Option<Vec<u8>>> {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let Some(vm) = vms.get_mut(id) else {
            return Ok(None);
        };
        self.advance(vm, now_ms());
        if !matches!(vm.phase, Phase::Running { .. }) {
            return Ok(None);
        }
        blank_png(720, 400).map(Some)
    }

    fn disks(&self, id: &InstanceId) -> Vec<VolumeId> {
        // No clock advance here: transitions are taken (and persisted) by `status`.
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let Some(vm) = vms.get(id) else {
            return vec![];
        };
        if matches!(vm.phase, Phase::Off { .. }) {
            return vec![];
        }
        vm.disks.iter().map(|d| d.volume_id.clone()).collect()
    }

    fn attach_disk(&self, id: &InstanceId, disk: &DiskSpec) -> Result<()> {
        if !self.exists(id) {
            return Ok(());
        }
        self.with_vm(id, |vm| {
            if matches!(vm.phase, Phase::Off { .. }) {
                return Ok(());
            }
            match vm.disks.iter_mut().find(|d| d.volume_id == disk.volume_id) {
                Some(d) => *d = disk.clone(),
                None if disk.boot => {
                    return Err(Error::IncorrectState(format!(
                        "volume {} is {id}'s root volume: it is plugged in only when the VM starts",
                        disk.volume_id
                    )))
                }
                None => {
                    vm.disks.push(disk.clone());
                    disk_line(vm, disk, "hot-plugged");
                }
            }
            Ok(())
        })
    }

    fn detach_disk(&self, id: &InstanceId, volume: &VolumeId, _force: bool) -> Result<()> {
        if !self.exists(id) {
            return Ok(());
        }
        self.with_vm(id, |vm| {
            if let Some(n) = vm.disks.iter().position(|d| &d.volume_id == volume) {
                let disk = vm.disks.remove(n);
                if !matches!(vm.phase, Phase::Off { .. }) {
                    disk_line(vm, &disk, "removed");
                }
            }
            Ok(())
        })
    }
}

/// A console line about a disk, as the simulated guest kernel logs it.
fn disk_line(vm: &mut SimVm, disk: &DiskSpec, what: &str) {
    console_line(
        vm,
        &format!(
            "strato-sim: virtio_blk disk {} ({}) {what}",
            disk.serial, disk.device
        ),
    );
}

/// A black RGB PNG of `width` × `height`.
fn blank_png(width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let pixels = vec![0u8; (width * height * 3) as usize];
    enc.write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(Error::internal)?;
    Ok(out)
}

fn phase_status(p: &Phase) -> VmStatus {
    match p {
        Phase::Booting { .. } => VmStatus::Booting,
        Phase::Running { .. } => VmStatus::Running,
        Phase::ShuttingDown { .. } => VmStatus::ShuttingDown,
        Phase::Off { cause } => VmStatus::Off(*cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_agent_api::DesiredVmState;
    use strato_common::ResourceId;

    fn spec(id: &InstanceId, user_data: &[u8]) -> VmSpec {
        VmSpec {
            instance_id: id.clone(),
            generation: 1,
            desired: DesiredVmState::Running,
            force_stop: false,
            reboot_seq: 0,
            vcpus: 2,
            cpu_topology: None,
            memory_mib: 1024,
            image_id: "ami-00000000000000001".into(),
            boot: Default::default(),
            user_data: user_data.to_vec(),
            nics: vec![],
            disks: vec![],
            force_detach: vec![],
            root_device: None,
            instance_store: vec![],
        }
    }

    fn fast() -> SimConfig {
        SimConfig {
            boot_delay: Duration::from_millis(50),
            stop_delay: Duration::from_millis(50),
        }
    }

    #[test]
    fn lifecycle_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let id = InstanceId::generate();
        {
            let d = SimDriver::open(dir.path(), fast()).unwrap();
            assert_eq!(d.status(&id), None);
            d.start(&spec(&id, b"")).unwrap();
            assert_eq!(d.status(&id), Some(VmStatus::Booting));
            std::thread::sleep(Duration::from_millis(80));
            assert_eq!(d.status(&id), Some(VmStatus::Running));
            d.stop(&id, false).unwrap();
            assert_eq!(d.status(&id), Some(VmStatus::ShuttingDown));
        }
        // A new driver on the same directory sees the VM where time has taken it.
        std::thread::sleep(Duration::from_millis(80));
        let d = SimDriver::open(dir.path(), fast()).unwrap();
        assert_eq!(d.list(), vec![id.clone()]);
        assert_eq!(d.status(&id), Some(VmStatus::Off(StopCause::Requested)));
        let console = String::from_utf8(d.console(&id).unwrap()).unwrap();
        assert!(console.contains("is running"), "{console}");
        d.destroy(&id).unwrap();
        assert_eq!(d.status(&id), None);
        drop(d);
        let again = SimDriver::open(dir.path(), fast()).unwrap();
        assert!(again.list().is_empty(), "a destroyed VM stays gone");
    }

    #[test]
    fn forced_stop_is_immediate_and_guest_can_power_off() {
        let dir = tempfile::tempdir().unwrap();
        let d = SimDriver::open(dir.path(), fast()).unwrap();
        let a = InstanceId::generate();
        d.start(&spec(&a, b"")).unwrap();
        d.stop(&a, true).unwrap();
        assert_eq!(d.status(&a), Some(VmStatus::Off(StopCause::Requested)));

        let b = InstanceId::generate();
        d.start(&spec(&b, b"#!/bin/sh\nsleep 0.05\npoweroff\n"))
            .unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(d.status(&b), Some(VmStatus::Off(StopCause::GuestShutdown)));
    }

    #[test]
    fn user_data_scripts() {
        assert_eq!(poweroff_after(b"#!/bin/sh\npoweroff"), Some(0));
        assert_eq!(
            poweroff_after(b"#!/bin/sh\nsleep 2\nsleep 1.5\nshutdown -h now"),
            Some(3500)
        );
        assert_eq!(poweroff_after(b"poweroff"), None);
        assert_eq!(poweroff_after(b"#!/bin/sh\necho hi"), None);
        assert_eq!(poweroff_after(&[0xff, 0xfe]), None);
    }

    fn disk(n: u8) -> DiskSpec {
        let volume_id = VolumeId::generate();
        DiskSpec {
            serial: strato_agent_api::disk_serial(&volume_id),
            volume_id,
            device: format!("/dev/sd{}", (b'f' + n) as char),
            limits: Default::default(),
            size_gib: 1,
            boot: false,
        }
    }

    #[test]
    fn disks_attach_detach_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let id = InstanceId::generate();
        let (a, b, c) = (disk(0), disk(1), disk(2));
        {
            let d = SimDriver::open(dir.path(), fast()).unwrap();
            // Nothing to plug into: a VM that does not exist, then one that is off.
            d.attach_disk(&id, &a).unwrap();
            let mut s = spec(&id, b"");
            s.disks = vec![a.clone()];
            d.start(&s).unwrap();
            assert_eq!(d.disks(&id), vec![a.volume_id.clone()]);
            d.attach_disk(&id, &b).unwrap();
            d.attach_disk(&id, &b).unwrap();
            d.attach_disk(&id, &c).unwrap();
            d.detach_disk(&id, &a.volume_id, false).unwrap();
            d.detach_disk(&id, &a.volume_id, true).unwrap();
        }
        let d = SimDriver::open(dir.path(), fast()).unwrap();
        assert_eq!(d.disks(&id), vec![b.volume_id.clone(), c.volume_id.clone()]);
        let console = String::from_utf8(d.console(&id).unwrap()).unwrap();
        assert!(console.contains(&b.serial), "{console}");
        d.stop(&id, true).unwrap();
        assert!(d.disks(&id).is_empty(), "an off VM has nothing plugged in");
        d.attach_disk(&id, &a).unwrap();
        assert!(d.disks(&id).is_empty());
        // The next boot plugs in what its spec names.
        let mut s = spec(&id, b"");
        s.disks = vec![c.clone()];
        d.start(&s).unwrap();
        assert_eq!(d.disks(&id), vec![c.volume_id.clone()]);
        assert!(d.disks(&InstanceId::generate()).is_empty());
    }
}
