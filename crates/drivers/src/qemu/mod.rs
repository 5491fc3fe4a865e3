//! The QEMU driver: one `qemu-system-x86_64` process per instance.
//!
//! Each VM lives in `<dir>/<instance-id>/`:
//!
//! | file | what |
//! |---|---|
//! | `vm.json` | what the driver must remember across restarts (shape, uid, stop requests, why it stopped) |
//! | `disk.qcow2` | only for VMs made before root volumes: their root disk, a copy-on-write overlay on the image's `root.qcow2` |
//! | `qmp.sock` | QMP control socket |
//! | `console.sock`, `console.log` | the serial console (interactive socket, and a log QEMU appends to) |
//! | `qemu.pid` | the daemonized QEMU's pid |
//! | `ephemeral<N>.qcow2` | an instance-store disk: made empty (sparse) at each start, removed when the VM goes off |
//!
//! Volumes are not files of the VM: a volume store ([`QemuDriver::with_volumes`])
//! serves each attached one over NBD, and QEMU is its client (see [`disks`]). The root
//! disk is a volume too (the one marked `boot`): the first disk on the command line, so
//! the guest sees it as `vda`. `vm.json`
//! remembers which are attached, so they are served again and plugged in at the next
//! boot, and unserved when the VM goes off or is destroyed (volumes outlive VMs).
//!
//! QEMU runs daemonized (so it outlives a restart of Strato, which re-adopts it through
//! the pid file and QMP), with `-no-shutdown` (a guest power-off leaves the process in
//! the `shutdown` run state, so the driver learns it was the guest even if it was not
//! watching), sandboxed with seccomp (`-sandbox on,obsolete=deny,elevateprivileges=deny,
//! spawn=deny,resourcecontrol=deny`), as a uid of its own whose VM directory no other
//! VM can enter, and in a cgroup sized to its instance type.
//!
//! Status is derived on every look: no process → off (the cause recorded in `vm.json`,
//! or `Crashed` when nothing was recorded); process in `prelaunch` → booting; `running`
//! → running (or shutting down when a stop was requested); `shutdown` → the guest
//! powered off, so the driver quits the process and records `GuestShutdown`.

pub mod accel;
pub mod cgroup;
pub mod disks;
pub mod qmp;

use crate::proc::{io_err, kill, wait_gone};
use crate::volumes::{NbdExport, Qcow2VolumeStore};
use crate::{net, Hypervisor, VmStatus};
use cgroup::{Layout, Limits};
use disks::DiskRecord;
use qmp::Qmp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strato_agent_api::{BootSpec, DiskSpec, EphemeralDiskSpec, NicSpec, StopCause, VmSpec};
use strato_common::{time_fmt::now_ms, Error, InstanceId, Result, VolumeId};

pub use accel::Accel;

/// Console bytes kept on disk per VM before the log is trimmed.
const CONSOLE_KEEP: u64 = 1024 * 1024;
/// First uid of the range QEMU processes run as (one uid per VM).
const UID_BASE: u32 = 900_000;

/// Settings of the QEMU driver.
#[derive(Clone, Debug)]
pub struct QemuConfig {
    /// Where VM directories live.
    pub dir: PathBuf,
    /// Where images live: `<images>/<name>/{vmlinuz,initrd.img,root.qcow2}`.
    pub images: PathBuf,
    pub qemu_binary: PathBuf,
    pub accel: Accel,
    /// Why that accelerator was chosen (shown to operators).
    pub accel_reason: String,
    /// How long a guest gets to power down after the ACPI button before power is cut.
    pub stop_timeout: Duration,
    /// How long a guest gets to reboot after ctrl-alt-delete before it is reset.
    pub reboot_timeout: Duration,
    /// Run each QEMU as a uid of its own (needs root). Its VM directory is then private
    /// to that uid, so a QEMU can read only its own files and the shared images.
    pub drop_privileges: bool,
    /// The group that may open /dev/kvm, if the host has one.
    pub kvm_gid: Option<u32>,
    pub cgroups: Layout,
}

/// What the driver remembers about a VM, in `vm.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct VmRecord {
    id: InstanceId,
    vcpus: u32,
    /// One socket of cores × threads; `None` (records from before): `vcpus` cores.
    #[serde(default)]
    topology: Option<strato_agent_api::CpuTopology>,
    memory_mib: u32,
    uid: u32,
    boot: BootSpec,
    /// When a stop was asked for (epoch ms) and whether power is to be cut at once.
    stop_requested_ms: Option<i64>,
    force: bool,
    /// When a reboot was asked for (epoch ms); cleared when the guest resets.
    reboot_requested_ms: Option<i64>,
    /// Why the VM last went off, once known.
    last_cause: Option<StopCause>,
    /// The host's boot id when QEMU was started: a VM found without its process under
    /// another boot id was lost to a host restart, not to a crash.
    #[serde(default)]
    host_boot_id: Option<String>,
    /// The interfaces of the last start (their taps are removed with the VM).
    #[serde(default)]
    nics: Vec<NicSpec>,
    /// The image directory as resolved when the VM was made (image builds are
    /// versioned directories behind a symlink): its kernel and initrd go with the root
    /// disk made from that version, even after the image is rebuilt.
    #[serde(default)]
    image_path: Option<PathBuf>,
    /// The volumes attached, in attach order, and where each is in its life.
    #[serde(default)]
    disks: Vec<DiskRecord>,
    /// The VM boots from its root volume (the disk marked `boot`), not from
    /// `disk.qcow2` (VMs made before root volumes existed).
    #[serde(default)]
    root_volume: bool,
    /// The instance-store disks of the last start (`<name>.qcow2` in the VM directory
    /// while the VM runs).
    #[serde(default)]
    instance_store: Vec<EphemeralDiskSpec>,
    /// QEMU was told to hold the guest when it resets (see `hold_reboot`): set until
    /// the guest is let boot again, so a driver restarted meanwhile lets it.
    #[serde(default)]
    reboot_held: bool,
}

/// This boot of the host (`/proc/sys/kernel/random/boot_id`).
fn host_boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_string())
}

struct Vm {
    rec: VmRecord,
    qmp: Option<Qmp>,
    /// The QEMU process when this driver started it (so it can be reaped); adopted
    /// processes belong to init.
    child: Option<std::process::Child>,
    /// A `hold_reboot` of this driver is holding the guest right now.
    holding: bool,
}

/// The QEMU driver.
pub struct QemuDriver {
    cfg: QemuConfig,
    /// The map is locked only to find a VM; each VM has its own lock, so a slow QMP
    /// exchange with one VM never stalls the others.
    vms: Mutex<HashMap<InstanceId, Arc<Mutex<Vm>>>>,
    /// Serves the volumes attached to VMs; `None`: VMs cannot have volumes.
    volumes: Option<Arc<Qcow2VolumeStore>>,
}

impl QemuDriver {
    /// Opens the VM directory and adopts every VM recorded there.
    pub fn open(cfg: QemuConfig) -> Result<QemuDriver> {
        std::fs::create_dir_all(&cfg.dir).map_err(|e| io_err("creating VM dir", e))?;
        if cfg.drop_privileges {
            for path in [&cfg.dir, &cfg.images] {
                check_traversable(path)?;
            }
        }
        let mut vms = HashMap::new();
        for entry in std::fs::read_dir(&cfg.dir).map_err(|e| io_err("reading VM dir", e))? {
            let path = entry.map_err(|e| io_err("reading VM dir", e))?.path();
            let Ok(bytes) = std::fs::read(path.join("vm.json")) else {
                continue;
            };
            match serde_json::from_slice::<VmRecord>(&bytes) {
                Ok(rec) => {
                    vms.insert(
                        rec.id.clone(),
                        Arc::new(Mutex::new(Vm {
                            rec,
                            qmp: None,
                            child: None,
                            holding: false,
                        })),
                    );
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable VM record")
                }
            }
        }
        tracing::info!(vms = vms.len(), accel = %cfg.accel, "QEMU driver adopted its VMs");
        Ok(QemuDriver {
            cfg,
            vms: Mutex::new(vms),
            volumes: None,
        })
    }

    /// Gives the driver the volume store that serves the disks of its VMs (without
    /// one, a VM with volumes cannot start and attaching fails). A setter rather than a
    /// [`QemuConfig`] field, since the store is shared with whoever creates and grows
    /// volumes (the host agent). With `drop_privileges`, the store's directory must be
    /// traversable by VMs' uids.
    pub fn with_volumes(mut self, store: Arc<Qcow2VolumeStore>) -> Result<QemuDriver> {
        disks::check_store(&store, self.cfg.drop_privileges)?;
        self.volumes = Some(store);
        Ok(self)
    }

    fn vm_dir(&self, id: &InstanceId) -> PathBuf {
        self.cfg.dir.join(id.as_str())
    }

    fn save(&self, rec: &VmRecord) -> Result<()> {
        let dir = self.vm_dir(&rec.id);
        let tmp = dir.join(".vm.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(rec).map_err(Error::internal)?,
        )
        .map_err(|e| io_err("writing vm.json", e))?;
        std::fs::rename(&tmp, dir.join("vm.json")).map_err(|e| io_err("writing vm.json", e))
    }

    /// The live QEMU pid of a VM, checked against /proc so a recycled pid is not mistaken
    /// for our process.
    fn live_pid(&self, id: &InstanceId) -> Option<u32> {
        crate::proc::live_pid(&self.vm_dir(id).join("qemu.pid"), &format!("guest={id}"))
    }

    fn qmp<'a>(&self, vm: &'a mut Vm) -> Result<&'a mut Qmp> {
        if vm.qmp.is_none() {
            let q = Qmp::connect(
                &self.vm_dir(&vm.rec.id).join("qmp.sock"),
                Duration::from_secs(5),
            )?;
            vm.qmp = Some(q);
        }
        Ok(vm.qmp.as_mut().expect("just connected"))
    }

    /// Runs a QMP command, dropping the connection on failure so the next call reconnects.
    fn command(
        &self,
        vm: &mut Vm,
        cmd: &str,
        args: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let r = self.qmp(vm).and_then(|q| q.execute(cmd, args));
        if r.is_err() {
            vm.qmp = None;
        }
        r
    }

    /// Builds the root disk overlay for a new VM.
    fn create_disk(&self, dir: &Path, boot: &BootSpec) -> Result<()> {
        let disk = dir.join("disk.qcow2");
        if disk.exists() {
            return Ok(());
        }
        let base = self.cfg.images.join(&boot.image_dir).join(&boot.root_disk);
        let base = base
            .canonicalize()
            .map_err(|e| io_err(&format!("image disk {}", base.display()), e))?;
        let tmp = dir.join("disk.qcow2.tmp");
        // Images may be qcow2 or raw (an ordinary disk image with its own bootloader);
        // the overlay must name its backing file's real format.
        let format = crate::volumes::img::format(&base)?;
        let mut cmd = Command::new("qemu-img");
        cmd.args(["create", "-q", "-f", "qcow2", "-F", &format, "-b"])
            .arg(&base)
            .arg(&tmp);
        if boot.root_size_gib > 0 {
            cmd.arg(format!("{}G", boot.root_size_gib));
        }
        let out = cmd.output().map_err(|e| io_err("running qemu-img", e))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "qemu-img create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        std::fs::rename(&tmp, &disk).map_err(|e| io_err("placing root disk", e))
    }

    /// Makes the VM's instance-store disks: sparse and empty, owned by its uid.
    fn make_instance_store(&self, rec: &VmRecord) -> Result<()> {
        let dir = self.vm_dir(&rec.id);
        for e in &rec.instance_store {
            let path = dir.join(format!("{}.qcow2", e.name));
            crate::volumes::img::create_plain(&path, e.size_bytes)?;
            if self.cfg.drop_privileges {
                std::os::unix::fs::chown(&path, Some(rec.uid), Some(rec.uid))
                    .map_err(|e| io_err("chown instance-store disk", e))?;
            }
        }
        Ok(())
    }

    /// Removes the instance-store disks of a VM that is off: what the guest wrote
    /// there is gone, as on EC2 when an instance stops.
    fn erase_instance_store(&self, rec: &mut VmRecord) {
        if rec.instance_store.is_empty() {
            return;
        }
        let dir = self.vm_dir(&rec.id);
        for e in &rec.instance_store {
            let path = dir.join(format!("{}.qcow2", e.name));
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(instance = %rec.id, disk = %e.name, "instance-store disk erased")
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::warn!(instance = %rec.id, disk = %e.name, error = %err, "could not erase an instance-store disk")
                }
            }
        }
        rec.instance_store.clear();
        let _ = self.save(rec);
    }

    /// The QEMU command line for a VM, with the volumes it boots with.
    fn command_line(
        &self,
        rec: &VmRecord,
        dir: &Path,
        disks: &[(DiskSpec, NbdExport)],
    ) -> Vec<String> {
        let image = rec
            .image_path
            .clone()
            .unwrap_or_else(|| self.cfg.images.join(&rec.boot.image_dir));
        let smbios_id = smbios_uuid(&rec.id);
        let mut args: Vec<String> = vec![
            "-name".into(),
            format!("guest={},debug-threads=on", rec.id),
            "-machine".into(),
            "pc".into(),
            "-accel".into(),
            self.cfg.accel.qemu_arg(),
            "-cpu".into(),
            self.cfg.accel.cpu_model().into(),
            "-smp".into(),
            smp_arg(rec.vcpus, rec.topology),
            "-m".into(),
            format!("{}M", rec.memory_mib),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            // A display adapter, never shown in a window: GetConsoleScreenshot captures
            // what the firmware and the guest draw on it.
            "-device".into(),
            "VGA".into(),
            "-no-shutdown".into(),
            "-smbios".into(),
            format!(
                "type=1,manufacturer=Strato,product=Strato EC2,uuid={smbios_id},serial={smbios_id}"
            ),
            "-chardev".into(),
            format!(
                "socket,id=console,path={},server=on,wait=off,logfile={},logappend=on",
                console_socket(&self.cfg.dir, rec.id.as_str()).display(),
                dir.join("console.log").display()
            ),
            "-serial".into(),
            "chardev:console".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display()),
            "-pidfile".into(),
            dir.join("qemu.pid").display().to_string(),
            "-sandbox".into(),
            "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny".into(),
        ];
        // The root disk first, so it takes the first free PCI slot and is `vda`.
        let (boot, data): (Vec<_>, Vec<_>) = disks.iter().cloned().partition(|(d, _)| d.boot);
        if rec.root_volume {
            args.extend(disks::command_line(&boot));
        } else {
            args.push("-drive".into());
            args.push(format!(
                "file={},if=virtio,format=qcow2,cache=writeback",
                dir.join("disk.qcow2").display()
            ));
        }
        for (n, nic) in rec.nics.iter().enumerate() {
            args.push("-netdev".into());
            // The tap arrives already open (see `launch`): /dev/net/tun is often
            // root-only, and QEMU runs unprivileged.
            args.push(format!("tap,id=net{n},fd={}", TAP_FD_BASE + n as i32));
            args.push("-device".into());
            args.push(format!("virtio-net-pci,netdev=net{n},mac={}", nic.mac));
        }
        args.extend(disks::command_line(&data));
        // Instance-store disks last: local files, the guest's last disks. Their devices
        // are given as JSON like the volumes': QEMU creates JSON `-device`s after the
        // key=value ones, so a key=value disk would take a slot before the root disk.
        for e in &rec.instance_store {
            args.push("-drive".into());
            args.push(format!(
                "file={},if=none,id={},format=qcow2,cache=writeback,discard=unmap",
                dir.join(format!("{}.qcow2", e.name)).display(),
                e.name
            ));
            args.push("-device".into());
            args.push(
                json!({
                    "driver": "virtio-blk-pci",
                    "drive": e.name,
                    "id": e.name,
                    "serial": e.serial,
                })
                .to_string(),
            );
        }
        if rec.boot.kernel.is_none() && rec.boot.uefi {
            args.push("-drive".into());
            args.push(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                Path::new(OVMF_DIR).join(OVMF_CODE).display()
            ));
            args.push("-drive".into());
            args.push(format!(
                "if=pflash,format=raw,unit=1,file={}",
                dir.join(UEFI_VARS).display()
            ));
        }
        if let Some(kernel) = &rec.boot.kernel {
            args.push("-kernel".into());
            args.push(image.join(kernel).display().to_string());
            if let Some(initrd) = &rec.boot.initrd {
                args.push("-initrd".into());
                args.push(image.join(initrd).display().to_string());
            }
            args.push("-append".into());
            args.push(
                rec.boot
                    .cmdline
                    .clone()
                    .unwrap_or_else(|| "console=ttyS0".into()),
            );
        }
        args
    }

    /// Starts QEMU for a VM whose process is not running.
    fn launch(
        &self,
        rec: &VmRecord,
        disks: &[(DiskSpec, NbdExport)],
        started: &mut Option<std::process::Child>,
    ) -> Result<()> {
        let dir = self.vm_dir(&rec.id);
        for stale in ["qmp.sock", "console.sock", "qemu.pid"] {
            let _ = std::fs::remove_file(dir.join(stale));
        }
        self.cfg.cgroups.create(
            rec.id.as_str(),
            Limits {
                cpu_percent: rec.vcpus * 100 + self.cfg.accel.emulator_cpu_percent(),
                memory_bytes: rec.memory_mib as u64 * 1024 * 1024 + self.cfg.accel.overhead_bytes(),
            },
        )?;
        if rec.boot.kernel.is_none() && rec.boot.uefi && !dir.join(UEFI_VARS).exists() {
            // The VM's own UEFI variables (boot entries), kept across its starts.
            let template = Path::new(OVMF_DIR).join(OVMF_VARS);
            std::fs::copy(&template, dir.join(UEFI_VARS)).map_err(|e| {
                io_err(
                    &format!(
                        "copying {} (install Debian's ovmf package for UEFI images)",
                        template.display()
                    ),
                    e,
                )
            })?;
        }
        if self.cfg.drop_privileges {
            chown_for_vm(&dir, rec.uid)?;
        }
        // A VM with interfaces runs inside its VPC's namespace, where its taps are.
        let netns = match vm_namespace(&rec.nics) {
            Some(_) => Some(net::with_namespace_lock(|| -> Result<std::fs::File> {
                let ns = net::ensure_vpc_namespace(&rec.nics[0].vpc_id)?;
                for nic in &rec.nics {
                    let tap = nic.tap_name();
                    let owner = if self.cfg.drop_privileges { rec.uid } else { 0 };
                    net::ensure_tap(&ns, &tap, owner)?;
                    net::configure_port(&ns, &tap, &nic.subnet_cidr, &nic.private_ip)?;
                }
                // Held open, the namespace cannot vanish before QEMU is inside it.
                let path = format!("/run/netns/{ns}");
                std::fs::File::open(&path).map_err(|e| io_err(&path, e))
            })?),
            None => None,
        };
        let args = self.command_line(rec, &dir, disks);
        let log = std::fs::File::create(dir.join("qemu.log"))
            .map_err(|e| io_err("creating qemu.log", e))?;
        // QEMU's seccomp sandbox forbids the fork that -daemonize needs, so it runs as
        // our child in a process group of its own (a Ctrl-C or SIGTERM aimed at Strato
        // does not reach it; if Strato dies, init adopts it and it keeps running).
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new(&self.cfg.qemu_binary);
        cmd.args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(|e| io_err("qemu.log", e))?)
            .stderr(log)
            .process_group(0);
        // QEMU's `elevateprivileges=deny` sandbox forbids the setuid that `-runas`
        // would do after start-up, so QEMU starts unprivileged: a uid of its own, and
        // the kvm group (for /dev/kvm) or a gid of its own. Entering the VPC namespace
        // needs privileges, so both happen here, namespace first, instead of through
        // `Command::uid` (which std applies before any pre-exec hook).
        let ids = self
            .cfg
            .drop_privileges
            .then(|| (rec.uid, self.cfg.kvm_gid.unwrap_or(rec.uid)));
        let ns_fd = netns.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
        let taps: Vec<[u8; 40]> = rec.nics.iter().map(|n| tap_ifreq(&n.tap_name())).collect();
        // SAFETY: the hook only makes async-signal-safe system calls (setns, open,
        // ioctl, dup2, close, setgroups, setgid, setuid) on values computed before the
        // fork.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = ns_fd {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Attach to the taps while still privileged and inside the namespace
                // (a tun file finds its device in the namespace it was opened in); the
                // descriptors stay open across exec at fixed numbers QEMU is told.
                for (n, ifr) in taps.iter().enumerate() {
                    let fd = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR);
                    if fd < 0 || libc::ioctl(fd, TUNSETIFF, ifr.as_ptr()) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let target = TAP_FD_BASE + n as i32;
                    if libc::dup2(fd, target) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    libc::close(fd);
                }
                if let Some((uid, gid)) = ids {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(gid) != 0
                        || libc::setuid(uid) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| io_err("starting qemu", e))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let pid = loop {
            if let Some(status) = child
                .try_wait()
                .map_err(|e| io_err("waiting for qemu", e))?
            {
                let err = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
                return Err(Error::Internal(format!(
                    "qemu exited at start ({status}): {}",
                    err.trim()
                )));
            }
            if let Some(pid) = self.live_pid(&rec.id) {
                break pid;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Internal("qemu did not write its pid file".into()));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        started.replace(child);
        // Move it (and its threads) into the VM's cgroup before the guest gets going.
        if let Err(e) = self.cfg.cgroups.add(rec.id.as_str(), pid) {
            tracing::warn!(instance = %rec.id, error = %e, "could not place QEMU in its cgroup");
        }
        tracing::info!(instance = %rec.id, pid, accel = %self.cfg.accel, "QEMU started");
        Ok(())
    }

    /// Status of one VM; also performs the bookkeeping a look implies (quitting a
    /// powered-off guest, cutting power after the stop timeout, resetting a guest that
    /// ignored a reboot request).
    fn observe(&self, vm: &mut Vm) -> VmStatus {
        let id = vm.rec.id.clone();
        if let Some(c) = vm.child.as_mut() {
            if let Ok(Some(_)) = c.try_wait() {
                vm.child = None;
            }
        }
        let Some(pid) = self.live_pid(&id) else {
            vm.qmp = None;
            self.release_disks(vm);
            self.erase_instance_store(&mut vm.rec);
            let cause = match (vm.rec.last_cause, vm.rec.stop_requested_ms) {
                (Some(c), _) => c,
                (None, Some(_)) => StopCause::Requested,
                (None, None)
                    if vm.rec.host_boot_id.is_some() && vm.rec.host_boot_id != host_boot_id() =>
                {
                    StopCause::HostRestart
                }
                (None, None) => StopCause::Crashed,
            };
            if vm.rec.last_cause != Some(cause) {
                vm.rec.last_cause = Some(cause);
                let _ = self.save(&vm.rec);
                if cause == StopCause::Crashed {
                    tracing::warn!(instance = %id, "QEMU process is gone without a shutdown");
                }
            }
            return VmStatus::Off(cause);
        };
        let status = match self.command(vm, "query-status", None) {
            Ok(v) => v
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or("unknown")
                .to_string(),
            Err(_) => return VmStatus::Booting,
        };
        if vm.rec.reboot_held {
            if vm.holding {
                return VmStatus::Running;
            }
            // Held by a driver that is gone: the snapshots it held the guest for are
            // taken again from the records; the guest boots now.
            tracing::info!(instance = %id, "guest held for snapshots by an earlier run; booting it");
            if let Err(e) = self.let_reboot(vm) {
                tracing::warn!(instance = %id, error = %e, "could not boot a held guest");
            }
            return VmStatus::Running;
        }
        let events = vm.qmp.as_mut().map(|q| q.take_events()).unwrap_or_default();
        if events.iter().any(|e| e["event"] == "RESET") {
            vm.rec.reboot_requested_ms = None;
            let _ = self.save(&vm.rec);
        }
        let now = now_ms();
        match status.as_str() {
            "shutdown" => {
                // The guest powered off (or completed an ACPI shutdown we asked for).
                let cause = if vm.rec.stop_requested_ms.is_some() {
                    StopCause::Requested
                } else {
                    StopCause::GuestShutdown
                };
                vm.rec.last_cause = Some(cause);
                let _ = self.save(&vm.rec);
                let _ = self.command(vm, "quit", None);
                wait_gone(pid, Duration::from_secs(5));
                VmStatus::Off(cause)
            }
            "prelaunch" | "inmigrate" => VmStatus::Booting,
            _ => {
                if let Some(asked) = vm.rec.stop_requested_ms {
                    if vm.rec.force || now - asked > self.cfg.stop_timeout.as_millis() as i64 {
                        tracing::info!(instance = %id, force = vm.rec.force, "cutting power");
                        vm.rec.last_cause = Some(StopCause::Requested);
                        let _ = self.save(&vm.rec);
                        let _ = self.command(vm, "quit", None);
                        if !wait_gone(pid, Duration::from_secs(3)) {
                            kill(pid);
                        }
                        return VmStatus::Off(StopCause::Requested);
                    }
                    return VmStatus::ShuttingDown;
                }
                if let Some(asked) = vm.rec.reboot_requested_ms {
                    if now - asked > self.cfg.reboot_timeout.as_millis() as i64 {
                        tracing::info!(instance = %id, "guest ignored the reboot request; resetting");
                        let _ = self.command(vm, "system_reset", None);
                        vm.rec.reboot_requested_ms = None;
                        let _ = self.save(&vm.rec);
                    }
                }
                self.trim_console(&id);
                VmStatus::Running
            }
        }
    }

    /// QMP `set-action` for a guest's resets: held (`reboot` → `shutdown` → `pause`:
    /// the VM stops in the `shutdown` run state) or as usual.
    fn reset_action(&self, vm: &mut Vm, hold: bool) -> Result<()> {
        let actions = if hold {
            json!({"reboot": "shutdown", "shutdown": "pause"})
        } else {
            json!({"reboot": "reset", "shutdown": "poweroff"})
        };
        self.command(vm, "set-action", Some(actions)).map(|_| ())
    }

    /// Lets a held guest boot: resets are resets again, the VM is reset and runs.
    fn let_reboot(&self, vm: &mut Vm) -> Result<()> {
        self.reset_action(vm, false)?;
        let status = self.command(vm, "query-status", None)?;
        if status["status"] == "shutdown" {
            self.command(vm, "system_reset", None)?;
            // The reset is carried out by QEMU's main loop, after which `cont` is
            // accepted (before, QEMU answers that a reset is required).
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                match self.command(vm, "cont", None) {
                    Ok(_) => break,
                    Err(e) if std::time::Instant::now() > deadline => return Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        vm.rec.reboot_held = false;
        vm.rec.reboot_requested_ms = None;
        vm.holding = false;
        self.save(&vm.rec)
    }

    /// Keeps the console log bounded: past `CONSOLE_KEEP` bytes, only the newest half stays.
    fn trim_console(&self, id: &InstanceId) {
        let path = self.vm_dir(id).join("console.log");
        let Ok(meta) = std::fs::metadata(&path) else {
            return;
        };
        if meta.len() <= CONSOLE_KEEP {
            return;
        }
        if let Ok(tail) = read_tail(&path, CONSOLE_KEEP / 2) {
            // QEMU appends with O_APPEND, so after truncation its writes land at the new end.
            if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path) {
                let _ = f.set_len(0);
                drop(f);
                let mut f = std::fs::OpenOptions::new().append(true).open(&path).ok();
                if let Some(f) = f.as_mut() {
                    use std::io::Write;
                    let _ = f.write_all(&tail);
                }
            }
        }
    }
}

/// Where Debian's `ovmf` package puts the UEFI firmware, and its files: the code
/// (read-only, shared) and the template of each VM's variable store.
const OVMF_DIR: &str = "/usr/share/OVMF";
const OVMF_CODE: &str = "OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "OVMF_VARS_4M.fd";
/// A UEFI VM's variable store in its directory.
const UEFI_VARS: &str = "uefi-vars.fd";

/// A VM's interactive serial console socket under the driver's VM directory (what
/// `strato console` attaches to).
pub fn console_socket(vms_dir: &Path, id: &str) -> PathBuf {
    vms_dir.join(id).join("console.sock")
}

/// An SMBIOS UUID that starts with `ec2` so cloud-init recognises the platform, derived
/// from the instance id so it is stable across restarts.
pub fn smbios_uuid(id: &InstanceId) -> String {
    let hex: String = id.as_str().trim_start_matches("i-").chars().collect();
    let mut h = format!("ec2{hex}");
    while h.len() < 32 {
        h.push('0');
    }
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn read_tail(path: &Path, n: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(n)))?;
    let mut buf = Vec::with_capacity(n as usize);
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

/// Unprivileged QEMU processes must be able to walk to their VM directory and to the
/// images: every ancestor needs the execute bit for others.
fn check_traversable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let path = path
        .canonicalize()
        .map_err(|e| io_err(&format!("{}", path.display()), e))?;
    for dir in path.ancestors() {
        let mode = std::fs::metadata(dir)
            .map_err(|e| io_err("stat", e))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(Error::Internal(format!(
                "{} is not traversable by QEMU's unprivileged users (mode {:o}); use a data directory \
                 such as /var/lib/strato, or chmod o+x {}",
                path.display(),
                mode & 0o7777,
                dir.display()
            )));
        }
    }
    Ok(())
}

/// The gid of the `kvm` group, when the host has one.
pub fn kvm_gid() -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|l| {
        let mut parts = l.split(':');
        (parts.next() == Some("kvm")).then(|| parts.nth(1)?.parse().ok())?
    })
}

fn chown_for_vm(dir: &Path, uid: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::os::unix::fs::chown(dir, Some(uid), Some(uid)).map_err(|e| io_err("chown VM dir", e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| io_err("chmod VM dir", e))?;
    for f in [
        "disk.qcow2",
        "console.log",
        "qmp.sock",
        "console.sock",
        UEFI_VARS,
    ] {
        let p = dir.join(f);
        if p.exists() {
            std::os::unix::fs::chown(&p, Some(uid), Some(uid))
                .map_err(|e| io_err("chown VM file", e))?;
        }
    }
    Ok(())
}

/// Where a VM's tap descriptors sit in QEMU's descriptor table (`fd=` of `-netdev`).
const TAP_FD_BASE: i32 = 200;
/// `TUNSETIFF` from linux/if_tun.h.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;

/// A `struct ifreq` attaching to tap `name` (`IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, the
/// flags QEMU's own tap set-up uses).
fn tap_ifreq(name: &str) -> [u8; 40] {
    const IFF_TAP: u16 = 0x0002;
    const IFF_NO_PI: u16 = 0x1000;
    const IFF_VNET_HDR: u16 = 0x4000;
    let mut ifr = [0u8; 40];
    let bytes = name.as_bytes();
    let len = bytes.len().min(libc::IFNAMSIZ - 1);
    ifr[..len].copy_from_slice(&bytes[..len]);
    ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR).to_ne_bytes());
    ifr
}

/// The VPC namespace a VM with these interfaces runs in (they share one VPC).
fn vm_namespace(nics: &[NicSpec]) -> Option<String> {
    nics.first().map(|n| net::vpc_namespace(&n.vpc_id))
}

fn lock(vm: &Mutex<Vm>) -> std::sync::MutexGuard<'_, Vm> {
    vm.lock().unwrap_or_else(|p| p.into_inner())
}

impl QemuDriver {
    fn get(&self, id: &InstanceId) -> Option<Arc<Mutex<Vm>>> {
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        vms.get(id).cloned()
    }
}

impl Hypervisor for QemuDriver {
    fn kind(&self) -> &'static str {
        match self.cfg.accel {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    fn describe(&self) -> String {
        format!(
            "qemu/{} ({}; {})",
            self.cfg.accel,
            self.cfg.accel_reason,
            self.cfg.cgroups.describe()
        )
    }

    fn start(&self, spec: &VmSpec) -> Result<()> {
        let mut vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        if !vms.contains_key(&spec.instance_id) {
            let dir = self.vm_dir(&spec.instance_id);
            std::fs::create_dir_all(&dir).map_err(|e| io_err("creating VM dir", e))?;
            if spec.root_device.is_none() {
                self.create_disk(&dir, &spec.boot)?;
            }
            let used: std::collections::HashSet<u32> =
                vms.values().map(|v| lock(v).rec.uid).collect();
            let uid = (UID_BASE..)
                .find(|u| !used.contains(u))
                .expect("a free uid");
            let rec = VmRecord {
                id: spec.instance_id.clone(),
                vcpus: spec.vcpus,
                topology: spec.cpu_topology,
                memory_mib: spec.memory_mib,
                uid,
                boot: spec.boot.clone(),
                stop_requested_ms: None,
                force: false,
                reboot_requested_ms: None,
                last_cause: Some(StopCause::Requested),
                host_boot_id: None,
                nics: vec![],
                disks: vec![],
                root_volume: spec.root_device.is_some(),
                instance_store: vec![],
                reboot_held: false,
                image_path: self
                    .cfg
                    .images
                    .join(&spec.boot.image_dir)
                    .canonicalize()
                    .ok(),
            };
            self.save(&rec)?;
            vms.insert(
                spec.instance_id.clone(),
                Arc::new(Mutex::new(Vm {
                    rec,
                    qmp: None,
                    child: None,
                    holding: false,
                })),
            );
        }
        let handle = vms.get(&spec.instance_id).cloned().expect("inserted");
        drop(vms);
        let mut vm = lock(&handle);
        if self.live_pid(&spec.instance_id).is_some() {
            return Ok(());
        }
        if vm.rec.root_volume && !spec.disks.iter().any(|d| d.boot) {
            return Err(Error::IncorrectState(format!(
                "instance {} has no root volume attached: it cannot start",
                spec.instance_id
            )));
        }
        // A start takes the current shape (ModifyInstanceAttribute while stopped).
        vm.rec.vcpus = spec.vcpus;
        vm.rec.topology = spec.cpu_topology;
        vm.rec.memory_mib = spec.memory_mib;
        vm.rec.stop_requested_ms = None;
        vm.rec.force = false;
        vm.rec.reboot_requested_ms = None;
        vm.rec.last_cause = None;
        vm.rec.host_boot_id = host_boot_id();
        // Interfaces attached or detached while the VM was off take effect now.
        let old_taps: Vec<String> = vm.rec.nics.iter().map(NicSpec::tap_name).collect();
        if let Some(ns) = vm_namespace(&vm.rec.nics) {
            for tap in old_taps {
                if !spec.nics.iter().any(|n| n.tap_name() == tap) {
                    net::remove_port(&ns, &tap)?;
                }
            }
        }
        vm.rec.nics = spec.nics.clone();
        vm.qmp = None;
        // A start finds its instance store empty (a stop erased it).
        self.erase_instance_store(&mut vm.rec);
        vm.rec.instance_store = spec.instance_store.clone();
        self.make_instance_store(&vm.rec)?;
        // Volumes attached or detached while the VM was off take effect now.
        let vm = &mut *vm;
        let disks = self.serve_boot_disks(vm, &spec.disks)?;
        self.save(&vm.rec)?;
        self.launch(&vm.rec, &disks, &mut vm.child)
    }

    fn stop(&self, id: &InstanceId, force: bool) -> Result<()> {
        let Some(handle) = self.get(id) else {
            return Ok(());
        };
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        if self.live_pid(id).is_none() {
            return Ok(());
        }
        let first = vm.rec.stop_requested_ms.is_none();
        if first {
            vm.rec.stop_requested_ms = Some(now_ms());
        }
        vm.rec.force |= force;
        self.save(&vm.rec)?;
        if vm.rec.force {
            self.observe(vm);
        } else if first {
            if let Err(e) = self.command(vm, "system_powerdown", None) {
                tracing::warn!(instance = %id, error = %e, "ACPI power-down failed; power will be cut at the timeout");
            }
        }
        Ok(())
    }

    fn reboot(&self, id: &InstanceId) -> Result<()> {
        let Some(handle) = self.get(id) else {
            return Ok(());
        };
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        vm.rec.reboot_requested_ms = Some(now_ms());
        self.save(&vm.rec)?;
        if let Err(e) = self.command(vm, "send-key", Some(ctrl_alt_delete())) {
            tracing::warn!(instance = %id, error = %e, "reboot request failed; resetting");
            self.command(vm, "system_reset", None)?;
        }
        Ok(())
    }

    fn destroy(&self, id: &InstanceId) -> Result<()> {
        if let Some(pid) = self.live_pid(id) {
            if let Some(handle) = self.get(id) {
                let _ = self.command(&mut lock(&handle), "quit", None);
            }
            if !wait_gone(pid, Duration::from_secs(3)) {
                kill(pid);
                wait_gone(pid, Duration::from_secs(3));
            }
        }
        let removed = self
            .vms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        // Reap the process if this driver started it, or it lingers as a zombie.
        if let Some(handle) = &removed {
            if let Some(mut child) = lock(handle).child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(handle) = &removed {
            let rec = &lock(handle).rec;
            // Its volumes stay, unserved, for other VMs.
            self.unserve_all(&rec.disks);
            if let Some(ns) = vm_namespace(&rec.nics) {
                for nic in &rec.nics {
                    if let Err(e) = net::remove_port(&ns, &nic.tap_name()) {
                        tracing::error!(instance = %id, error = %e, "could not remove a tap");
                    }
                }
            }
        }
        let dir = self.vm_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing VM dir", e)),
        }
        self.cfg.cgroups.remove(id.as_str())
    }

    fn status(&self, id: &InstanceId) -> Option<VmStatus> {
        let handle = self.get(id)?;
        let mut vm = lock(&handle);
        Some(self.observe(&mut vm))
    }

    fn list(&self) -> Vec<InstanceId> {
        let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<_> = vms.keys().cloned().collect();
        ids.sort();
        ids
    }

    fn console(&self, id: &InstanceId) -> Option<Vec<u8>> {
        let path = self.vm_dir(id).join("console.log");
        if !self.vm_dir(id).exists() {
            return None;
        }
        Some(read_tail(&path, CONSOLE_KEEP).unwrap_or_default())
    }

    /// QEMU draws the guest's VGA display whether or not a window shows it; QMP's
    /// `screendump` writes it as PNG into the VM's own directory (QEMU runs
    /// unprivileged and sandboxed, and may only write there), from where it is read
    /// and removed.
    fn screenshot(&self, id: &InstanceId, wake: bool) -> Result<Option<Vec<u8>>> {
        if self.live_pid(id).is_none() {
            return Ok(None);
        }
        let Some(handle) = self.get(id) else {
            return Ok(None);
        };
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        if wake {
            let keys = json!({ "keys": [{"type": "qcode", "data": "shift"}] });
            self.command(vm, "send-key", Some(keys))?;
        }
        let file = self
            .vm_dir(id)
            .join(format!("screen-{:016x}.png", rand_u64()));
        let args = json!({ "filename": file.display().to_string(), "format": "png" });
        let result = self.command(vm, "screendump", Some(args));
        let png = result.and_then(|_| {
            std::fs::read(&file).map_err(|e| io_err(&format!("reading {}", file.display()), e))
        });
        let _ = std::fs::remove_file(&file);
        png.map(Some)
    }

    /// The disk devices QEMU has (`qom-list /machine/peripheral`), in attach order.
    fn disks(&self, id: &InstanceId) -> Vec<VolumeId> {
        self.vm_disks(id)
    }

    /// `blockdev-add` (NBD client of the volume's daemon, then a raw node) and
    /// `device_add virtio-blk-pci` with the disk's serial; see [`disks`].
    fn attach_disk(&self, id: &InstanceId, disk: &DiskSpec) -> Result<()> {
        self.vm_attach_disk(id, disk)
    }

    /// `device_del`, then (once QEMU has removed the device) `blockdev-del` and
    /// unserving. The call that asks the guest waits up to 1.5 s for its answer (later
    /// calls only look); with `force`, up to 3 s from the request before the volume's
    /// daemon is stopped.
    fn detach_disk(&self, id: &InstanceId, volume: &VolumeId, force: bool) -> Result<()> {
        self.vm_detach_disk(id, volume, force)
    }

    /// QMP `stop`: QEMU drains every block device (the NBD clients' writes are then
    /// acknowledged by the volumes' daemons) before it returns. Only a running VM is
    /// paused, so `resume` never starts one that was paused for another reason.
    fn pause(&self, id: &InstanceId) -> Result<bool> {
        if self.live_pid(id).is_none() {
            return Ok(false);
        }
        let Some(handle) = self.get(id) else {
            return Ok(false);
        };
        let mut guard = lock(&handle);
        let vm = &mut *guard;
        let status = self.command(vm, "query-status", None)?;
        if status["status"] != "running" {
            return Ok(false);
        }
        self.command(vm, "stop", None).map(|_| true)
    }

    /// Every volume a VM's record holds plugged (or being unplugged) is in use; the
    /// daemons of all others are stopped.
    fn release_unused_disks(&self) -> Result<usize> {
        let Some(store) = self.volumes.as_deref() else {
            return Ok(0);
        };
        let handles: Vec<Arc<Mutex<Vm>>> = {
            let vms = self.vms.lock().unwrap_or_else(|p| p.into_inner());
            vms.values().cloned().collect()
        };
        let mut used = std::collections::HashSet::new();
        for h in handles {
            let vm = lock(&h);
            for d in &vm.rec.disks {
                if d.state != disks::DiskState::Cut {
                    used.insert(d.spec.volume_id.clone());
                }
            }
        }
        let mut released = 0;
        for vol in store.serving_volumes() {
            if !used.contains(&vol) {
                tracing::warn!(volume = %vol, "no VM uses this volume: stopping its daemon");
                store.unserve(&vol)?;
                released += 1;
            }
        }
        Ok(released)
    }

    /// QMP `cont`.
    fn resume(&self, id: &InstanceId) -> Result<()> {
        let Some(handle) = self.get(id) else {
            return Ok(());
        };
        let mut guard = lock(&handle);
        self.command(&mut guard, "cont", None).map(|_| ())
    }

    fn hold_reboot(&self, id: &InstanceId, timeout: Duration) -> Result<bool> {
        if self.live_pid(id).is_none() {
            return Ok(false);
        }
        let Some(handle) = self.get(id) else {
            return Ok(false);
        };
        {
            let mut guard = lock(&handle);
            let vm = &mut *guard;
            let status = self.command(vm, "query-status", None)?;
            if status["status"] != "running" {
                return Ok(false);
            }
            self.reset_action(vm, true)?;
            vm.holding = true;
            vm.rec.reboot_held = true;
            vm.rec.reboot_requested_ms = Some(now_ms());
            self.save(&vm.rec)?;
            self.command(vm, "send-key", Some(ctrl_alt_delete()))?;
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            std::thread::sleep(Duration::from_millis(50));
            let mut guard = lock(&handle);
            let vm = &mut *guard;
            let status = self.command(vm, "query-status", None)?;
            if status["status"] == "shutdown" {
                return Ok(true);
            }
            if std::time::Instant::now() > deadline {
                tracing::warn!(instance = %id, "guest did not reboot in time to be held");
                self.reset_action(vm, false)?;
                vm.holding = false;
                vm.rec.reboot_held = false;
                self.save(&vm.rec)?;
                return Ok(false);
            }
        }
    }

    fn release_reboot(&self, id: &InstanceId) -> Result<()> {
        let Some(handle) = self.get(id) else {
            return Ok(());
        };
        let mut guard = lock(&handle);
        if !guard.rec.reboot_held {
            return Ok(());
        }
        self.let_reboot(&mut guard)
    }
}

/// QMP `send-key` arguments for ctrl-alt-delete, which guests' init systems take as a
/// request to reboot cleanly.
fn ctrl_alt_delete() -> serde_json::Value {
    json!({ "keys": [
        {"type": "qcode", "data": "ctrl"},
        {"type": "qcode", "data": "alt"},
        {"type": "qcode", "data": "delete"}
    ]})
}

/// A random number for names that must not collide.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// QEMU's `-smp` value: one socket of `cores × threads` when a topology is given (the
/// guest then sees the cores and hyperthreads `CpuOptions` asked for), else `vcpus`
/// plain CPUs.
fn smp_arg(vcpus: u32, topology: Option<strato_agent_api::CpuTopology>) -> String {
    match topology {
        Some(t) => format!(
            "{},sockets=1,cores={},threads={}",
            t.cores * t.threads_per_core,
            t.cores,
            t.threads_per_core
        ),
        None => vcpus.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_agent_api::CpuTopology;

    #[test]
    fn smp_follows_the_topology() {
        assert_eq!(smp_arg(2, None), "2");
        let t = CpuTopology {
            cores: 2,
            threads_per_core: 1,
        };
        assert_eq!(smp_arg(4, Some(t)), "2,sockets=1,cores=2,threads=1");
    }
}
