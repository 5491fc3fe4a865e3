//! The QEMU driver with real VMs under TCG. Needs `qemu-system-x86_64` and the built
//! image (`scripts/build-image.sh`); `scripts/test.sh` provides both and sets
//! `STRATO_IMAGES` to the image store. Without it these tests fail rather than pass
//! silently, unless `STRATO_SKIP_QEMU_TESTS=1` says the caller knows.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::PathBuf;
use std::time::{Duration, Instant};
use strato_agent_api::{BootSpec, DesiredVmState, StopCause, VmSpec};
use strato_common::{InstanceId, ResourceId};
use strato_drivers::qemu::{cgroup::Layout, Accel, QemuConfig, QemuDriver};
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
        },
        user_data: vec![],
        nics: vec![],
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
