//! The QEMU driver with real VMs under TCG. Needs `qemu-system-x86_64` and the built
//! image (`scripts/build-image.sh`); `scripts/test.sh` provides both and sets
//! `STRATO_IMAGES` to the image store. Without it these tests fail rather than pass
//! silently, unless `STRATO_SKIP_QEMU_TESTS=1` says the caller knows.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use strato_agent_api::{
    disk_serial, BootSpec, DesiredVmState, DiskLimits, DiskSpec, StopCause, VmSpec,
};
use strato_common::{InstanceId, ResourceId, VolumeId};
use strato_drivers::qemu::{cgroup::Layout, Accel, QemuConfig, QemuDriver};
use strato_drivers::volumes::{Qcow2VolumeStore, VolumeStore};
use strato_drivers::{Hypervisor, VmStatus};

fn images() -> Option<PathBuf> {
    if std::env::var("STRATO_SKIP_QEMU_TESTS").as_deref() == Ok("1") {
        return None;
    }
    let dir = std::env::var("STRATO_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/tmp/strato-test-images"));
    assert!(
        dir.join("strato-minimal/vmlinuz").exists(),
        "no image at {} (run scripts/build-image.sh, or set STRATO_SKIP_QEMU_TESTS=1)",
        dir.display()
    );
    Some(dir)
}

fn driver(dir: &std::path::Path, images: PathBuf) -> QemuDriver {
    QemuDriver::open(QemuConfig {
        dir: dir.join("vms"),
        images,
        qemu_binary: "qemu-system-x86_64".into(),
        accel: Accel::Tcg,
        accel_reason: "test".into(),
        stop_timeout: Duration::from_secs(30),
        reboot_timeout: Duration::from_secs(60),
        drop_privileges: strato_common::host::is_root(),
        kvm_gid: strato_drivers::qemu::kvm_gid(),
        cgroups: Layout::detect(std::path::Path::new("/sys/fs/cgroup")),
    })
    .unwrap()
}

/// A temporary directory unprivileged QEMU processes can walk into.
fn traversable_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::Builder::new()
        .prefix("strato-qemu-test")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    t
}

/// Stops and removes the VMs a test started, even when the test fails half-way.
struct Cleanup<'a>(&'a QemuDriver, Vec<InstanceId>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            let _ = self.0.stop(id, true);
            let _ = self.0.destroy(id);
        }
    }
}

fn spec(id: &InstanceId) -> VmSpec {
    VmSpec {
        instance_id: id.clone(),
        generation: 1,
        desired: DesiredVmState::Running,
        force_stop: false,
        reboot_seq: 0,
        vcpus: 1,
        cpu_topology: None,
        memory_mib: 256,
        image_id: "ami-05a9d2c7e4b1f3801".into(),
        boot: BootSpec {
            image_dir: "strato-minimal".into(),
            kernel: Some("vmlinuz".into()),
            initrd: Some("initrd.img".into()),
            cmdline: Some("console=ttyS0 root=/dev/vda rootfstype=ext4 rw".into()),
            root_disk: "root.qcow2".into(),
            root_size_gib: 0,
            uefi: false,
        },
        user_data: vec![],
        nics: vec![],
        disks: vec![],
        force_detach: vec![],
        root_device: None,
        instance_store: vec![],
    }
}

fn wait_console(d: &QemuDriver, id: &InstanceId, needle: &str, count: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        // Look at the VM as the agent does on every pass (timeouts act on a look).
        let _ = d.status(id);
        let log = String::from_utf8_lossy(&d.console(id).unwrap_or_default()).into_owned();
        if log.matches(needle).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} x{count} in console:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_status(d: &QemuDriver, id: &InstanceId, want: VmStatus, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let s = d.status(id);
        if s == Some(want) {
            return;
        }
        assert!(Instant::now() < deadline, "status {s:?}, wanted {want:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn boots_stops_and_is_destroyed_without_leftovers() {
    let Some(images) = images() else { return };
    let tmp = traversable_tempdir();
    let d = driver(tmp.path(), images);
    let id = InstanceId::generate();
    let _cleanup = Cleanup(&d, vec![id.clone()]);
    let started = Instant::now();
    d.start(&spec(&id)).unwrap();
    wait_status(&d, &id, VmStatus::Running, Duration::from_secs(10));
    wait_console(
        &d,
        &id,
        "strato-minimal: multi-user ready",
        1,
        Duration::from_secs(90),
    );
    eprintln!("ready after {:?}", started.elapsed());
    d.stop(&id, false).unwrap();
    wait_status(
        &d,
        &id,
        VmStatus::Off(StopCause::Requested),
        Duration::from_secs(40),
    );
    d.destroy(&id).unwrap();
    assert!(!tmp.path().join("vms").join(id.as_str()).exists());
    assert!(d.status(&id).is_none());
}

/// A disk laid out like a stock cloud image (GPT, an EFI system partition with GRUB,
/// an ext4 root partition; scripts/build-boot-disk.sh) boots through UEFI firmware
/// (OVMF): GRUB is found at the removable-media path and loads Linux, which mounts its
/// root partition.
#[test]
fn boots_a_uefi_disk_through_grub() {
    let Some(images) = images() else { return };
    assert!(
        images.join("strato-uefi/disk.raw").exists(),
        "no UEFI test disk in {} (run scripts/build-boot-disk.sh)",
        images.display()
    );
    let tmp = traversable_tempdir();
    let d = driver(tmp.path(), images);
    let id = InstanceId::generate();
    let _cleanup = Cleanup(&d, vec![id.clone()]);
    let mut s = spec(&id);
    s.boot = BootSpec {
        image_dir: "strato-uefi".into(),
        kernel: None,
        initrd: None,
        cmdline: None,
        root_disk: "disk.raw".into(),
        root_size_gib: 0,
        uefi: true,
    };
    d.start(&s).unwrap();
    wait_console(
        &d,
        &id,
        "strato-uefi: GRUB started by the UEFI firmware",
        1,
        Duration::from_secs(120),
    );
    wait_console(
        &d,
        &id,
        "strato-minimal: multi-user ready",
        1,
        Duration::from_secs(120),
    );
    // The VM keeps its own UEFI variable store.
    assert!(tmp
        .path()
        .join("vms")
        .join(id.as_str())
        .join("uefi-vars.fd")
        .exists());
    d.stop(&id, true).unwrap();
    wait_status(
        &d,
        &id,
        VmStatus::Off(StopCause::Requested),
        Duration::from_secs(20),
    );
    d.destroy(&id).unwrap();
}

/// CreateImage's reboot: the guest is asked to reboot and held when it resets (the
/// driver shows it running meanwhile), then let boot again in the same process.
#[test]
fn a_rebooting_guest_is_held_until_released() {
    let Some(images) = images() else { return };
    let tmp = traversable_tempdir();
    let d = driver(tmp.path(), images);
    let id = InstanceId::generate();
    let _cleanup = Cleanup(&d, vec![id.clone()]);
    d.start(&spec(&id)).unwrap();
    wait_console(
        &d,
        &id,
        "strato-minimal: multi-user ready",
        1,
        Duration::from_secs(90),
    );
    assert!(d.hold_reboot(&id, Duration::from_secs(90)).unwrap());
    assert_eq!(d.status(&id), Some(VmStatus::Running));
    // Held: the guest went down cleanly and does not boot again by itself.
    std::thread::sleep(Duration::from_secs(3));
    let log = String::from_utf8_lossy(&d.console(&id).unwrap_or_default()).into_owned();
    assert!(!log.contains("strato-minimal: boot 2"), "{log}");
    d.release_reboot(&id).unwrap();
    wait_console(
        &d,
        &id,
        "strato-minimal: boot 2",
        1,
        Duration::from_secs(120),
    );
    // A second hold of a guest that is not running holds nothing.
    d.stop(&id, true).unwrap();
    wait_status(
        &d,
        &id,
        VmStatus::Off(StopCause::Requested),
        Duration::from_secs(20),
    );
    assert!(!d.hold_reboot(&id, Duration::from_secs(5)).unwrap());
    d.destroy(&id).unwrap();
}

/// An ordinary disk image with its own bootloader (here a raw disk whose boot sector
/// prints a line on the serial port and halts) boots without a kernel: the path
/// user-imported images will take.
#[test]
fn boots_a_raw_disk_with_its_own_bootloader() {
    let Some(_) = images() else { return };
    let tmp = traversable_tempdir();
    let images = bootsector_image(tmp.path());
    let d = driver(tmp.path(), images);
    let id = InstanceId::generate();
    let _cleanup = Cleanup(&d, vec![id.clone()]);
    d.start(&bootsector_spec(&id)).unwrap();
    wait_console(&d, &id, "strato-bootsector-ok", 1, Duration::from_secs(60));
    d.stop(&id, true).unwrap();
    wait_status(
        &d,
        &id,
        VmStatus::Off(StopCause::Requested),
        Duration::from_secs(20),
    );
    d.destroy(&id).unwrap();
}

/// An image store holding `bootsector/disk.raw`: a raw disk whose boot sector prints
/// `strato-bootsector-ok` on the serial port and halts. It ignores ACPI and the
/// keyboard, which makes it the unresponsive guest the timeouts exist for.
fn bootsector_image(base: &std::path::Path) -> PathBuf {
    let images = base.join("images");
    let image = images.join("bootsector");
    std::fs::create_dir_all(&image).unwrap();
    // xor ax,ax; mov ds,ax; cld; mov si,msg; mov dx,0x3f8;
    // next: lodsb; test al,al; jz done; out dx,al; jmp next; done: cli; hlt; jmp done
    let mut mbr: Vec<u8> = vec![
        0x31, 0xC0, 0x8E, 0xD8, 0xFC, 0xBE, 0x17, 0x7C, 0xBA, 0xF8, 0x03, 0xAC, 0x84, 0xC0, 0x74,
        0x03, 0xEE, 0xEB, 0xF8, 0xFA, 0xF4, 0xEB, 0xFC,
    ];
    mbr.extend_from_slice(b"strato-bootsector-ok\r\n\0");
    mbr.resize(510, 0);
    mbr.extend_from_slice(&[0x55, 0xAA]);
    mbr.resize(1024 * 1024, 0);
    std::fs::write(image.join("disk.raw"), &mbr).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [&images, &image] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(
            image.join("disk.raw"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    images
}

fn bootsector_spec(id: &InstanceId) -> VmSpec {
    let mut s = spec(id);
    s.boot = BootSpec {
        image_dir: "bootsector".into(),
        kernel: None,
        initrd: None,
        cmdline: None,
        root_disk: "disk.raw".into(),
        root_size_gib: 0,
        uefi: false,
    };
    s
}

/// A guest that ignores the ACPI power button loses power after the stop timeout, and
/// one that ignores ctrl-alt-delete is reset after the reboot timeout.
#[test]
fn unresponsive_guests_are_powered_off_and_reset() {
    let Some(_) = images() else { return };
    let tmp = traversable_tempdir();
    let images = bootsector_image(tmp.path());
    let mut cfg_driver = QemuDriver::open(QemuConfig {
        dir: tmp.path().join("vms"),
        images,
        qemu_binary: "qemu-system-x86_64".into(),
        accel: Accel::Tcg,
        accel_reason: "test".into(),
        stop_timeout: Duration::from_secs(2),
        reboot_timeout: Duration::from_secs(2),
        drop_privileges: strato_common::host::is_root(),
        kvm_gid: strato_drivers::qemu::kvm_gid(),
        cgroups: Layout::detect(std::path::Path::new("/sys/fs/cgroup")),
    })
    .unwrap();
    let d = &mut cfg_driver;
    let id = InstanceId::generate();
    let _cleanup = Cleanup(d, vec![id.clone()]);
    d.start(&bootsector_spec(&id)).unwrap();
    wait_console(d, &id, "strato-bootsector-ok", 1, Duration::from_secs(60));
    d.reboot(&id).unwrap();
    let asked = Instant::now();
    wait_console(d, &id, "strato-bootsector-ok", 2, Duration::from_secs(30));
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "reset only after the timeout"
    );
    d.stop(&id, false).unwrap();
    assert_eq!(d.status(&id), Some(VmStatus::ShuttingDown));
    let asked = Instant::now();
    wait_status(
        d,
        &id,
        VmStatus::Off(StopCause::Requested),
        Duration::from_secs(30),
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "power cut only after the timeout"
    );
}

fn disk(volume_id: &VolumeId, device: &str) -> DiskSpec {
    DiskSpec {
        volume_id: volume_id.clone(),
        device: device.into(),
        serial: disk_serial(volume_id),
        limits: DiskLimits {
            iops: 3000,
            bytes_per_sec: 125 << 20,
        },
        size_gib: 1,
        boot: false,
    }
}

/// Types a command on the VM's serial console (a root shell in strato-minimal).
fn type_on_console(vms: &std::path::Path, id: &InstanceId, line: &str) {
    use std::io::Write;
    let path = strato_drivers::qemu::console_socket(vms, id.as_str());
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.write_all(format!("{line}\n").as_bytes()).unwrap();
    // Held open a moment so QEMU reads it before the connection goes.
    std::thread::sleep(Duration::from_millis(300));
}

/// Volumes on a real guest: one present at boot, one hot-plugged (the guest's kernel
/// finds it, with its serial), grown online (the guest sees the new capacity), and
/// unplugged (the guest lets go, the daemon stops); volumes outlive the VM.
#[test]
fn volumes_are_plugged_grown_and_unplugged_in_a_running_guest() {
    let Some(images) = images() else { return };
    let tmp = traversable_tempdir();
    let store = Arc::new(Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap());
    let d = driver(tmp.path(), images)
        .with_volumes(store.clone())
        .unwrap();
    let (boot_vol, hot_vol) = (VolumeId::generate(), VolumeId::generate());
    store.create(&boot_vol, 1 << 30, false, None).unwrap();
    store.create(&hot_vol, 64 << 20, true, None).unwrap();
    let id = InstanceId::generate();
    let _cleanup = Cleanup(&d, vec![id.clone()]);
    assert!(d.disks(&id).is_empty());
    let mut s = spec(&id);
    s.disks = vec![disk(&boot_vol, "/dev/sdf")];
    d.attach_disk(&id, &s.disks[0]).unwrap(); // no VM yet: nothing to do
    d.start(&s).unwrap();
    wait_console(
        &d,
        &id,
        "strato-minimal: multi-user ready",
        1,
        Duration::from_secs(90),
    );
    wait_console(
        &d,
        &id,
        "[vdb] 2097152 512-byte logical blocks",
        1,
        Duration::from_secs(5),
    );
    assert_eq!(d.disks(&id), vec![boot_vol.clone()]);

    let hot = disk(&hot_vol, "/dev/sdg");
    let t = Instant::now();
    d.attach_disk(&id, &hot).unwrap();
    let plugged = t.elapsed();
    wait_console(
        &d,
        &id,
        "[vdc] 131072 512-byte logical blocks",
        1,
        Duration::from_secs(30),
    );
    eprintln!(
        "hot-plug: attach_disk returned after {plugged:?}, guest kernel saw vdc after {:?}",
        t.elapsed()
    );
    d.attach_disk(&id, &hot).unwrap();
    assert_eq!(d.disks(&id), vec![boot_vol.clone(), hot_vol.clone()]);
    let serials = d.disk_serials(&id).unwrap();
    assert!(
        serials.contains(&(hot_vol.clone(), hot.serial.clone())),
        "{serials:?}"
    );
    // The guest reads the serial EC2's Nitro instances show: the volume id.
    type_on_console(
        &tmp.path().join("vms"),
        &id,
        "echo serial=$(cat /sys/block/vdc/serial)",
    );
    wait_console(
        &d,
        &id,
        &format!("serial={}", hot.serial),
        1,
        Duration::from_secs(20),
    );

    // Grown while attached: the guest sees the new capacity without a reboot.
    store.grow(&hot_vol, 128 << 20).unwrap();
    let t = Instant::now();
    d.attach_disk(&id, &hot).unwrap();
    wait_console(
        &d,
        &id,
        "vdc: detected capacity change from 131072 to 262144",
        1,
        Duration::from_secs(20),
    );
    eprintln!("online grow seen by the guest after {:?}", t.elapsed());

    let t = Instant::now();
    d.detach_disk(&id, &hot_vol, false).unwrap();
    while d.disks(&id).contains(&hot_vol) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the guest never let go"
        );
        std::thread::sleep(Duration::from_millis(200));
        d.detach_disk(&id, &hot_vol, false).unwrap();
    }
    eprintln!("unplugged after {:?}", t.elapsed());
    assert_eq!(d.disks(&id), vec![boot_vol.clone()]);
    assert!(store.daemon_pid(&hot_vol).is_none(), "its daemon stopped");
    assert!(d
        .disk_serials(&id)
        .unwrap()
        .iter()
        .all(|(v, _)| v != &hot_vol));
    d.detach_disk(&id, &hot_vol, true).unwrap();

    d.stop(&id, true).unwrap();
    wait_status(
        &d,
        &id,
        VmStatus::Off(StopCause::Requested),
        Duration::from_secs(20),
    );
    assert!(d.disks(&id).is_empty());
    assert!(
        store.daemon_pid(&boot_vol).is_none(),
        "an off VM's disks are not served"
    );
    d.destroy(&id).unwrap();
    assert!(
        store.info(&boot_vol).is_some() && store.info(&hot_vol).is_some(),
        "volumes outlive VMs"
    );
    assert_eq!(store.info(&hot_vol).unwrap().size_bytes, 128 << 20);
}

/// Stops and removes a test's VMs through a driver of its own, opened when the test
/// ends (the test's drivers may be gone by then).
struct CleanupDir(PathBuf, PathBuf, Vec<InstanceId>);

impl Drop for CleanupDir {
    fn drop(&mut self) {
        let d = driver(&self.0, self.1.clone());
        for id in &self.2 {
            let _ = d.stop(id, true);
            let _ = d.destroy(id);
        }
    }
}

/// A guest that never answers the eject request (the boot-sector guest ignores ACPI)
/// keeps its device, so a plain detach waits; a forced one cuts the disk off after a
/// short grace (its daemon stops) and the volume cannot be attached to that VM again
/// until the device is gone. A new driver (a restart of Strato) adopts the disks.
#[test]
fn a_guest_that_keeps_a_disk_is_cut_off_by_force() {
    let Some(_) = images() else { return };
    let tmp = traversable_tempdir();
    let images = bootsector_image(tmp.path());
    let id = InstanceId::generate();
    let _cleanup = CleanupDir(tmp.path().to_path_buf(), images.clone(), vec![id.clone()]);
    let store = Arc::new(Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap());
    let vol = VolumeId::generate();
    store.create(&vol, 64 << 20, false, None).unwrap();
    let spec = bootsector_spec(&id);
    {
        let d = driver(tmp.path(), images.clone())
            .with_volumes(store.clone())
            .unwrap();
        d.start(&spec).unwrap();
        wait_console(&d, &id, "strato-bootsector-ok", 1, Duration::from_secs(60));
        d.attach_disk(&id, &disk(&vol, "/dev/sdf")).unwrap();
        assert_eq!(d.disks(&id), vec![vol.clone()]);
    }
    // Restarted: the new driver finds the VM and its disk as QEMU has them.
    let d = driver(tmp.path(), images)
        .with_volumes(store.clone())
        .unwrap();
    assert_eq!(d.disks(&id), vec![vol.clone()]);
    let daemon = store.daemon_pid(&vol).unwrap();

    d.detach_disk(&id, &vol, false).unwrap();
    assert_eq!(d.disks(&id), vec![vol.clone()], "the guest still holds it");
    assert_eq!(store.daemon_pid(&vol), Some(daemon));
    let t = Instant::now();
    d.detach_disk(&id, &vol, true).unwrap();
    eprintln!("forced detach returned after {:?}", t.elapsed());
    assert!(d.disks(&id).is_empty(), "cut off");
    assert!(store.daemon_pid(&vol).is_none(), "its daemon stopped");
    assert_eq!(
        d.disk_serials(&id).unwrap().len(),
        1,
        "the orphaned device lingers"
    );
    assert!(d.attach_disk(&id, &disk(&vol, "/dev/sdf")).is_err());
    d.detach_disk(&id, &vol, true).unwrap();

    d.stop(&id, true).unwrap();
    wait_status(
        &d,
        &id,
        VmStatus::Off(StopCause::Requested),
        Duration::from_secs(20),
    );
    // Powered off, the VM holds nothing; it boots again without the disk.
    let mut again = spec.clone();
    again.generation = 2;
    d.start(&again).unwrap();
    wait_console(&d, &id, "strato-bootsector-ok", 2, Duration::from_secs(60));
    assert!(d.disks(&id).is_empty());
    assert!(store.daemon_pid(&vol).is_none());
}
