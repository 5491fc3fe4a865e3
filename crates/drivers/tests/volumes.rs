//! The qcow2 volume store with the real tools: `qemu-img`, `qemu-storage-daemon` and
//! `qemu-io` as the NBD client. Without them these tests fail rather than pass
//! silently, unless `STRATO_SKIP_QEMU_TESTS=1` says the caller knows.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use strato_agent_api::DiskLimits;
use strato_common::{Error, ResourceId, VolumeId};
use strato_drivers::volumes::{daemon, NbdExport, Qcow2VolumeStore, VolumeStore};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn tools() -> bool {
    if std::env::var("STRATO_SKIP_QEMU_TESTS").as_deref() == Ok("1") {
        return false;
    }
    for tool in ["qemu-img", "qemu-io", "qemu-storage-daemon"] {
        let found = Command::new(tool).arg("--version").output().is_ok();
        assert!(
            found,
            "{tool} is missing (install QEMU, or set STRATO_SKIP_QEMU_TESTS=1)"
        );
    }
    true
}

/// A temporary directory other uids can walk through (as a VM's QEMU must).
fn tempdir() -> tempfile::TempDir {
    let t = tempfile::Builder::new()
        .prefix("strato-vol-test")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    t
}

/// Stops the daemons a test started, even when it fails half-way.
struct Unserve<'a>(&'a Qcow2VolumeStore, Vec<VolumeId>);

impl Drop for Unserve<'_> {
    fn drop(&mut self) {
        for id in &self.1 {
            let _ = self.0.unserve(id);
        }
    }
}

/// Runs `qemu-io` commands against an export; returns (success, stdout + stderr).
fn qemu_io(export: &NbdExport, cmds: &[String], uid: Option<u32>) -> (bool, String) {
    let mut cmd = Command::new("qemu-io");
    cmd.args(["-f", "raw"]);
    for c in cmds {
        cmd.arg("-c").arg(c);
    }
    cmd.arg(export.uri());
    if let Some(uid) = uid {
        use std::os::unix::process::CommandExt;
        cmd.uid(uid).gid(uid);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // qemu-io reports a failed command (or pattern mismatch) in its output.
    let ok = out.status.success() && !text.contains("failed") && !text.contains("Failed");
    (ok, text)
}

fn contains_run(haystack: &[u8], byte: u8, len: usize) -> bool {
    haystack.split(|b| *b != byte).any(|run| run.len() >= len)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn sparse_volumes_are_made_grown_and_removed() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    assert_eq!(store.kind(), "qcow2");
    let (small, huge) = (VolumeId::generate(), VolumeId::generate());

    let t = Instant::now();
    store.create(&small, GIB, false, None).unwrap();
    let small_ms = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    store.create(&huge, 1 << 40, false, None).unwrap();
    let huge_ms = t.elapsed().as_secs_f64() * 1000.0;
    eprintln!("created 1 GiB in {small_ms:.1} ms, 1 TiB in {huge_ms:.1} ms");

    let info = store.info(&huge).unwrap();
    assert_eq!(info.size_bytes, 1 << 40);
    assert!(info.allocated_bytes < 16 * MIB, "sparse: {info:?}");
    assert_eq!(store.info(&small).unwrap().size_bytes, GIB);
    assert_eq!(mode(&store.disk_path(&small)), 0o600);
    assert_eq!(mode(store.disk_path(&small).parent().unwrap()), 0o711);

    // Idempotent: a second create changes nothing, whatever it asks for.
    store.create(&small, 5 * GIB, true, None).unwrap();
    assert_eq!(store.info(&small).unwrap().size_bytes, GIB);
    assert!(!store.is_encrypted(&small));

    store.grow(&small, 3 * GIB).unwrap();
    store.grow(&small, 3 * GIB).unwrap();
    assert_eq!(store.info(&small).unwrap().size_bytes, 3 * GIB);
    assert!(matches!(
        store.grow(&small, 2 * GIB),
        Err(Error::InvalidParameterValue(_))
    ));
    assert!(matches!(
        store.grow(&VolumeId::generate(), GIB),
        Err(Error::NotFound { .. })
    ));
    assert!(store
        .create(&VolumeId::generate(), 1000, false, None)
        .is_err());

    // A crash half-way through a create leaves a temporary directory: it is not a
    // volume, and the next create of that volume starts over.
    let crashed = VolumeId::generate();
    let leftover = store.dir().join(format!(".tmp-{crashed}"));
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("disk.qcow2"), b"half a header").unwrap();
    let mut want = vec![small.clone(), huge.clone()];
    want.sort();
    assert_eq!(store.list(), want);
    assert!(store.info(&crashed).is_none());
    store.create(&crashed, GIB, false, None).unwrap();
    assert!(!leftover.exists());
    assert_eq!(store.info(&crashed).unwrap().size_bytes, GIB);

    for id in [&small, &huge, &crashed] {
        store.delete(id).unwrap();
        store.delete(id).unwrap();
        assert!(store.info(id).is_none());
    }
    assert!(store.list().is_empty());
    let left: Vec<_> = std::fs::read_dir(store.dir()).unwrap().collect();
    assert!(left.is_empty(), "the store dir is empty again: {left:?}");
}

#[test]
fn encrypted_volumes_hold_no_plaintext() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let (plain, secret) = (VolumeId::generate(), VolumeId::generate());
    let _cleanup = Unserve(&store, vec![plain.clone(), secret.clone()]);
    store.create(&plain, 64 * MIB, false, None).unwrap();
    let t = Instant::now();
    store.create(&secret, 64 * MIB, true, None).unwrap();
    eprintln!("created an encrypted volume in {:?}", t.elapsed());
    assert!(store.is_encrypted(&secret));
    let key_path = store.disk_path(&secret).with_file_name("key");
    let key = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key.len(), 64, "32 bytes, hex");
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(std::fs::metadata(&key_path).unwrap().uid(), unsafe_euid());

    let write = ["write -P 0x5a 0 1M".to_string()];
    for id in [&plain, &secret] {
        let export = store.serve(id, DiskLimits::default(), None).unwrap();
        let (ok, out) = qemu_io(&export, &write, None);
        assert!(ok, "{out}");
        // The key is read from its file: it is on no command line.
        let pid = store.daemon_pid(id).unwrap();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(!String::from_utf8_lossy(&cmdline).contains(&key));
        store.unserve(id).unwrap(); // flushes and closes the disk
    }
    let plain_bytes = std::fs::read(store.disk_path(&plain)).unwrap();
    let secret_bytes = std::fs::read(store.disk_path(&secret)).unwrap();
    assert!(contains_run(&plain_bytes, 0x5a, 64 * 1024));
    assert!(
        !contains_run(&secret_bytes, 0x5a, 64),
        "the encrypted disk holds the plaintext"
    );

    // Through its daemon the encrypted volume reads back as written, also after an
    // offline grow (which needs the key).
    store.grow(&secret, 128 * MIB).unwrap();
    assert_eq!(store.info(&secret).unwrap().size_bytes, 128 * MIB);
    let export = store.serve(&secret, DiskLimits::default(), None).unwrap();
    let (ok, out) = qemu_io(&export, &["read -P 0x5a 0 1M".to_string()], None);
    assert!(ok, "{out}");
    store.delete(&secret).unwrap();
    assert!(!key_path.exists());
    assert!(store.daemon_pid(&secret).is_none());
}

fn unsafe_euid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

#[test]
fn serving_is_idempotent_and_adopted_after_a_restart() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path().join("volumes");
    let id = VolumeId::generate();
    let janitor = Qcow2VolumeStore::open(&dir).unwrap();
    let _cleanup = Unserve(&janitor, vec![id.clone()]);
    let store = Qcow2VolumeStore::open(&dir).unwrap();
    store.create(&id, GIB, false, None).unwrap();
    let limits = DiskLimits {
        iops: 3000,
        bytes_per_sec: 125 * MIB,
    };
    let t = Instant::now();
    let export = store.serve(&id, limits, None).unwrap();
    eprintln!("served in {:?}", t.elapsed());
    let pid = store.daemon_pid(&id).unwrap();
    assert_eq!(store.serve(&id, limits, None).unwrap(), export);
    // New limits are applied to the running daemon.
    let faster = DiskLimits {
        iops: 16000,
        bytes_per_sec: 1000 * MIB,
    };
    assert_eq!(store.serve(&id, faster, None).unwrap(), export);
    assert_eq!(store.daemon_pid(&id), Some(pid));
    let mut q =
        strato_drivers::qemu::qmp::Qmp::connect(&store.qmp_socket(&id), Duration::from_secs(2))
            .unwrap();
    let got = q
        .execute(
            "qom-get",
            Some(serde_json::json!({"path": daemon::THROTTLE_GROUP, "property": "limits"})),
        )
        .unwrap();
    assert_eq!(got["iops-total"], 16000);
    drop(q);

    // "Restart": a new store over the same directory finds the daemon.
    drop(store);
    let store = Qcow2VolumeStore::open(&dir).unwrap();
    assert_eq!(store.served(&id), Some(export.clone()));
    assert_eq!(store.serving_volumes(), vec![id.clone()]);
    assert_eq!(store.serve(&id, faster, None).unwrap(), export);
    assert_eq!(store.daemon_pid(&id), Some(pid));

    // Grown while served: through the daemon, and a new connection sees it.
    store.grow(&id, 2 * GIB).unwrap();
    assert_eq!(store.info(&id).unwrap().size_bytes, 2 * GIB);
    let (ok, out) = qemu_io(&export, &["length".to_string()], None);
    assert!(ok && out.contains("2 GiB"), "{out}");

    // A daemon that died is started again under the same export name (its client
    // reconnects to it).
    unsafe_kill(pid);
    let t = Instant::now();
    while store.daemon_pid(&id).is_some() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = store.serve(&id, faster, None).unwrap();
    assert_eq!(again, export);
    assert_ne!(store.daemon_pid(&id), Some(pid));

    // Unserving is idempotent, cleans up, and the next serving has a new name.
    store.unserve(&id).unwrap();
    store.unserve(&id).unwrap();
    assert!(store.daemon_pid(&id).is_none());
    assert!(!export.socket.exists());
    assert!(!store.qmp_socket(&id).exists());
    let fresh = store.serve(&id, faster, None).unwrap();
    assert_ne!(fresh.name, export.name);
    store.unserve(&id).unwrap();
}

fn unsafe_kill(pid: u32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

/// Only the uid a volume is served to (and root) may connect to its socket; serving it
/// to another uid cuts the first one off.
#[test]
fn only_the_client_uid_may_connect() {
    if !tools() || !strato_common::host::is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let id = VolumeId::generate();
    let _cleanup = Unserve(&store, vec![id.clone()]);
    store.create(&id, 64 * MIB, true, None).unwrap();
    let (vm_a, vm_b) = (900_901, 900_902);
    let export = store.serve(&id, DiskLimits::default(), Some(vm_a)).unwrap();
    let meta = std::fs::metadata(&export.socket).unwrap();
    assert_eq!(
        (meta.uid(), meta.permissions().mode() & 0o777),
        (vm_a, 0o600)
    );
    assert_eq!(mode(&store.qmp_socket(&id)), 0o600);
    let read = ["read 0 64k".to_string()];
    let (ok, out) = qemu_io(&export, &read, Some(vm_a));
    assert!(ok, "the client may connect: {out}");
    let (ok, _) = qemu_io(&export, &read, Some(vm_b));
    assert!(!ok, "another uid may not");
    // The key and disk are root's alone.
    let key = store.disk_path(&id).with_file_name("key");
    assert!(std::fs::metadata(&key).unwrap().uid() == 0 && mode(&key) == 0o600);

    let moved = store.serve(&id, DiskLimits::default(), Some(vm_b)).unwrap();
    assert_ne!(moved.name, export.name, "a new client gets a new export");
    assert!(qemu_io(&moved, &read, Some(vm_b)).0);
    assert!(!qemu_io(&moved, &read, Some(vm_a)).0);
    store.unserve(&id).unwrap();
}

/// A volume served with an IOPS limit does about that many operations per second.
#[test]
fn throttling_holds_iops_to_the_limit() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let id = VolumeId::generate();
    let _cleanup = Unserve(&store, vec![id.clone()]);
    store.create(&id, GIB, false, None).unwrap();
    let ops = 250;
    let writes: Vec<String> = (0..ops)
        .map(|i| format!("write -q {} 4k", i * 4096))
        .collect();
    let measure = |limits: DiskLimits| {
        let export = store.serve(&id, limits, None).unwrap();
        let t = Instant::now();
        let (ok, out) = qemu_io(&export, &writes, None);
        assert!(ok, "{out}");
        ops as f64 / t.elapsed().as_secs_f64()
    };
    let free = measure(DiskLimits::default());
    let limited = measure(DiskLimits {
        iops: 100,
        bytes_per_sec: 0,
    });
    eprintln!("{ops} sequential 4 KiB writes: {free:.0} IOPS unlimited, {limited:.1} IOPS with a limit of 100");
    assert!(
        (80.0..=120.0).contains(&limited),
        "measured {limited:.1} IOPS for a limit of 100"
    );
    assert!(free > 150.0, "unlimited: {free:.0} IOPS");
}

/// The daemon's node names are stable: a snapshot taken at `vol-disk` while a client
/// writes freezes the volume's contents as they were (the base of later EBS snapshots).
#[test]
fn snapshots_attach_at_the_disk_node() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let id = VolumeId::generate();
    let _cleanup = Unserve(&store, vec![id.clone()]);
    store.create(&id, 64 * MIB, false, None).unwrap();
    let export = store.serve(&id, DiskLimits::default(), None).unwrap();
    assert!(qemu_io(&export, &["write -P 0xaa 0 1M".to_string()], None).0);
    let overlay = store.disk_path(&id).with_file_name("snap-test.qcow2");
    let mut q =
        strato_drivers::qemu::qmp::Qmp::connect(&store.qmp_socket(&id), Duration::from_secs(2))
            .unwrap();
    q.execute(
        "blockdev-snapshot-sync",
        Some(serde_json::json!({
            "node-name": daemon::NODE_DISK,
            "snapshot-file": overlay.display().to_string(),
            "snapshot-node-name": "vol-snap-test",
            "format": "qcow2",
        })),
    )
    .unwrap();
    assert!(qemu_io(&export, &["write -P 0xbb 0 1M".to_string()], None).0);
    let frozen = Command::new("qemu-io")
        .args(["-r", "-U", "-f", "qcow2", "-c", "read -P 0xaa 0 1M"])
        .arg(store.disk_path(&id))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&frozen.stdout);
    assert!(frozen.status.success() && !text.contains("fail"), "{text}");
    assert!(qemu_io(&export, &["read -P 0xbb 0 1M".to_string()], None).0);
    store.delete(&id).unwrap();
}
