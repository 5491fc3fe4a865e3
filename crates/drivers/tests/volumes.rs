//! The qcow2 volume store with the real tools: `qemu-img`, `qemu-storage-daemon` and
//! `qemu-io` as the NBD client. Without them these tests fail rather than pass
//! silently, unless `STRATO_SKIP_QEMU_TESTS=1` says the caller knows.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use strato_agent_api::DiskLimits;
use strato_common::{Error, ResourceId, SnapshotId, VolumeId};
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
    assert_eq!(mode(&store.dir().join(small.as_str())), 0o711);
    assert_eq!(mode(store.layers_dir()), 0o700);

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
    assert_empty_store(&store);
}

/// Nothing is left in the store but its empty directories (and its lock).
fn assert_empty_store(store: &Qcow2VolumeStore) {
    let names = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(store.dir()),
        [".lock", "images", "layers", "snapshots"],
        "the store dir holds nothing else"
    );
    assert!(names(store.layers_dir()).is_empty(), "no layer is left");
    assert!(names(&store.dir().join("snapshots")).is_empty());
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
    let key_path = store.disk_path(&secret).with_extension("key");
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
    let key = store.disk_path(&id).with_extension("key");
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

// ---- snapshots ---------------------------------------------------------------------

/// A `qemu-io` that stays connected to an export and runs commands one at a time (as a
/// guest would keep its disk open).
struct IoClient {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::process::ChildStdout,
    /// Everything it printed.
    log: String,
}

const PROMPT: &str = "qemu-io> ";

impl IoClient {
    fn connect(export: &NbdExport) -> IoClient {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec qemu-io -f raw "$0" 2>&1"#)
            .arg(export.uri())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut c = IoClient {
            child,
            stdin,
            stdout,
            log: String::new(),
        };
        c.until_prompt();
        c
    }

    fn until_prompt(&mut self) -> String {
        use std::io::Read;
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while !out.ends_with(PROMPT.as_bytes()) {
            let n = self.stdout.read(&mut buf).unwrap();
            assert!(n > 0, "qemu-io exited: {}", String::from_utf8_lossy(&out));
            out.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&out[..out.len() - PROMPT.len()]).into_owned();
        self.log.push_str(&text);
        text
    }

    /// Runs one command; panics unless it succeeded.
    fn run(&mut self, cmd: &str) -> String {
        use std::io::Write;
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        let out = self.until_prompt();
        assert!(
            !out.contains("failed") && !out.contains("Failed") && !out.contains("error"),
            "{cmd}: {out}"
        );
        out
    }
}

impl Drop for IoClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `qemu-io` commands against a served volume and asserts they succeed.
fn check(store: &Qcow2VolumeStore, id: &VolumeId, cmds: &[String]) {
    let export = store.serve(id, DiskLimits::default(), None).unwrap();
    let (ok, out) = qemu_io(&export, cmds, None);
    assert!(ok, "{id}: {out}");
}

fn cmds(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// A snapshot freezes the volume as it was; a volume made from it reads that, and a
/// later snapshot holds only the blocks written in between.
#[test]
fn snapshots_freeze_data_and_hold_only_changed_blocks() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let (v, w, x) = (
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
    );
    let (s1, s2) = (SnapshotId::generate(), SnapshotId::generate());
    let _cleanup = Unserve(&store, vec![v.clone(), w.clone(), x.clone()]);
    store.create(&v, 256 * MIB, false, None).unwrap();
    check(&store, &v, &cmds(&["write -P 0x11 0 64M"]));
    store.unserve(&v).unwrap();

    // Unserved.
    let t = Instant::now();
    let first = store.snapshot(&v, &s1).unwrap();
    let first_ms = ms(t);
    assert_eq!((first.size_bytes, first.encrypted), (256 * MIB, false));
    assert!(
        (64 * MIB..68 * MIB).contains(&first.stored_bytes),
        "{first:?}"
    );
    assert!(
        store.info(&v).unwrap().allocated_bytes < MIB,
        "the new top holds nothing yet"
    );
    // Idempotent: the same snapshot again changes nothing.
    assert_eq!(store.snapshot(&v, &s1).unwrap(), first);

    // About 10% rewritten, then a snapshot while served.
    let rewrite = 64 * MIB / 10 / 512 * 512;
    check(&store, &v, &[format!("write -P 0x22 0 {rewrite}")]);
    let t = Instant::now();
    let second = store.snapshot(&v, &s2).unwrap();
    let second_ms = ms(t);
    eprintln!(
        "snapshot of 64 MiB written: {first_ms:.0} ms, stores {} bytes; of {rewrite} bytes rewritten (served): {second_ms:.0} ms, stores {} bytes",
        first.stored_bytes, second.stored_bytes
    );
    // The changed blocks and a little qcow2 metadata (its header, tables and refcounts:
    // about 300 KiB here), well under 12% of the 64 MiB the volume holds.
    assert!(second.stored_bytes >= rewrite, "{second:?}");
    assert!(
        second.stored_bytes <= rewrite + MIB,
        "the second snapshot holds only the changed blocks: {second:?}"
    );
    assert!(second.stored_bytes <= 64 * MIB * 12 / 100, "{second:?}");
    let mut want = vec![s1.clone(), s2.clone()];
    want.sort();
    assert_eq!(store.list_snapshots(), want);
    // The chain: v's new top over s2's layer over s1's.
    assert_eq!(store.chain_paths(&v).len(), 3);

    // A volume from the first snapshot reads what was there then, not the later writes;
    // a larger one reads zeros beyond.
    let t = Instant::now();
    store.create(&w, 512 * MIB, false, Some(&s1)).unwrap();
    eprintln!("volume from a snapshot made in {:.0} ms", ms(t));
    assert_eq!(store.info(&w).unwrap().size_bytes, 512 * MIB);
    check(
        &store,
        &w,
        &cmds(&[
            "read -P 0x11 0 64M",
            "read -P 0 100M 1M",
            "read -P 0 300M 1M",
            "write -P 0x44 0 1M",
            "read -P 0x44 0 1M",
        ]),
    );
    // The source reads the newer writes, untouched by w's.
    check(
        &store,
        &v,
        &[
            format!("read -P 0x22 0 {rewrite}"),
            format!("read -P 0x11 {rewrite} {}", 64 * MIB - rewrite),
            "read -P 0 100M 1M".into(),
        ],
    );
    // A volume from the second reads both.
    store.create(&x, 256 * MIB, false, Some(&s2)).unwrap();
    check(
        &store,
        &x,
        &[
            format!("read -P 0x22 0 {rewrite}"),
            "read -P 0x11 60M 4M".into(),
            "read -P 0 100M 1M".into(),
        ],
    );
    store.unserve(&w).unwrap();
    // Grown offline over its chain; the data stays.
    store.grow(&w, GIB).unwrap();
    assert_eq!(store.info(&w).unwrap().size_bytes, GIB);
    check(
        &store,
        &w,
        &cmds(&[
            "read -P 0x44 0 1M",
            "read -P 0x11 1M 63M",
            "read -P 0 900M 1M",
        ]),
    );

    // What a volume from a snapshot may not be: smaller, or from nothing.
    assert!(matches!(
        store.create(&VolumeId::generate(), 128 * MIB, false, Some(&s1)),
        Err(Error::InvalidParameterValue(_))
    ));
    assert!(matches!(
        store.create(
            &VolumeId::generate(),
            GIB,
            false,
            Some(&SnapshotId::generate())
        ),
        Err(Error::NotFound { .. })
    ));
    assert!(store.snapshot_info(&SnapshotId::generate()).is_none());
}

/// A snapshot of a volume a client is writing to holds every write acknowledged before
/// it was asked for and none asked for after it returned; the client never notices.
#[test]
fn snapshots_of_a_served_volume_are_point_in_time() {
    if !tools() {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let (v, w) = (VolumeId::generate(), VolumeId::generate());
    let snap = SnapshotId::generate();
    let _cleanup = Unserve(&store, vec![v.clone(), w.clone()]);
    store.create(&v, 256 * MIB, false, None).unwrap();
    let export = store.serve(&v, DiskLimits::default(), None).unwrap();
    let pid = store.daemon_pid(&v).unwrap();

    const BLOCK: u64 = 64 * 1024;
    const BLOCKS: u64 = 4000;
    let pattern = |i: u64| i % 250 + 1;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut client = IoClient::connect(&export);
        std::thread::spawn(move || {
            // (block, asked at, acknowledged at)
            let mut done: Vec<(u64, Instant, Instant)> = vec![];
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) && i < BLOCKS {
                let asked = Instant::now();
                client.run(&format!("write -P {} {} {BLOCK}", pattern(i), i * BLOCK));
                done.push((i, asked, Instant::now()));
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            (client, done)
        })
    };
    std::thread::sleep(Duration::from_millis(400));
    let asked = Instant::now();
    let info = store.snapshot(&v, &snap).unwrap();
    let returned = Instant::now();
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::SeqCst);
    let (mut client, done) = writer.join().unwrap();
    eprintln!(
        "snapshot of a served volume under writes: {:.1} ms",
        (returned - asked).as_secs_f64() * 1000.0
    );
    let before: Vec<u64> = done
        .iter()
        .filter(|(_, _, acked)| *acked <= asked)
        .map(|d| d.0)
        .collect();
    let after: Vec<u64> = done
        .iter()
        .filter(|(_, sent, _)| *sent >= returned)
        .map(|d| d.0)
        .collect();
    eprintln!(
        "{} writes acknowledged before, {} asked for after, {} during",
        before.len(),
        after.len(),
        done.len() - before.len() - after.len()
    );
    assert!(
        before.len() >= 10 && after.len() >= 10,
        "the writer kept writing"
    );
    assert!(
        (after[0] as usize) < (BLOCKS as usize),
        "the writer did not run out"
    );

    // The same connection keeps working: it reads what it wrote, before and after.
    for &i in [
        before[0],
        *before.last().unwrap(),
        after[0],
        *after.last().unwrap(),
    ]
    .iter()
    {
        client.run(&format!("read -P {} {} {BLOCK}", pattern(i), i * BLOCK));
    }
    client.run(&format!("write -P 0xee {} {BLOCK}", BLOCKS * BLOCK));
    assert!(
        !client.log.contains("reconnect") && !client.log.contains("Connection"),
        "{}",
        client.log
    );
    drop(client);
    assert_eq!(store.daemon_pid(&v), Some(pid), "the same daemon serves on");
    assert_eq!(store.served(&v), Some(export));
    assert_eq!(info.size_bytes, 256 * MIB);
    // Grown while served, through the daemon, whose top is now the new layer.
    store.grow(&v, 512 * MIB).unwrap();
    assert_eq!(store.info(&v).unwrap().size_bytes, 512 * MIB);
    assert_eq!(store.snapshot_info(&snap).unwrap().size_bytes, 256 * MIB);

    // The snapshot holds exactly what was acknowledged before.
    store.create(&w, 256 * MIB, false, Some(&snap)).unwrap();
    assert!(matches!(
        store.grow(&w, 128 * MIB),
        Err(Error::InvalidParameterValue(_))
    ));
    let mut reads: Vec<String> = before
        .iter()
        .map(|i| format!("read -P {} {} {BLOCK}", pattern(*i), i * BLOCK))
        .collect();
    reads.extend(
        after
            .iter()
            .map(|i| format!("read -P 0 {} {BLOCK}", i * BLOCK)),
    );
    check(&store, &w, &reads);
    // The volume holds everything.
    let mut all: Vec<String> = done
        .iter()
        .map(|(i, _, _)| format!("read -P {} {} {BLOCK}", pattern(*i), i * BLOCK))
        .collect();
    all.push("read -P 0 300M 1M".into());
    check(&store, &v, &all);
}

/// Every run of a byte in the files under `dir`.
fn any_file_holds(dir: &Path, byte: u8, len: usize) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| contains_run(&std::fs::read(p).unwrap(), byte, len))
        .map(|p| p.display().to_string())
        .collect()
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// Snapshots of encrypted volumes, and volumes made from them, are encrypted at rest;
/// an encrypted copy of a plain snapshot is too, and reads back.
#[test]
fn encrypted_snapshots_and_copies_hold_no_plaintext() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let (e, f, p, g) = (
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
    );
    let (se, se2, sp, sc, sc2) = (
        SnapshotId::generate(),
        SnapshotId::generate(),
        SnapshotId::generate(),
        SnapshotId::generate(),
        SnapshotId::generate(),
    );
    let _cleanup = Unserve(&store, vec![e.clone(), f.clone(), p.clone(), g.clone()]);

    store.create(&e, 64 * MIB, true, None).unwrap();
    check(&store, &e, &cmds(&["write -P 0x5a 0 4M"]));
    let t = Instant::now();
    let info = store.snapshot(&e, &se).unwrap(); // while served
    eprintln!("snapshot of a served encrypted volume: {:.0} ms", ms(t));
    assert!(info.encrypted);
    assert!(store.is_encrypted(&e));
    // Asked unencrypted, a volume from an encrypted snapshot is encrypted all the same.
    store.create(&f, 64 * MIB, false, Some(&se)).unwrap();
    assert!(store.is_encrypted(&f));
    check(
        &store,
        &f,
        &cmds(&[
            "read -P 0x5a 0 4M",
            "write -P 0x5a 4M 1M",
            "read -P 0x5a 0 5M",
        ]),
    );
    check(&store, &e, &cmds(&["write -P 0x5a 8M 1M"]));
    // A copy of an encrypted snapshot shares its layers.
    let layers_before = count_files(store.layers_dir());
    let copied = store.copy_snapshot(&se, &se2, true).unwrap();
    assert_eq!(copied, store.snapshot_info(&se).unwrap());
    assert_eq!(count_files(store.layers_dir()), layers_before);
    store.unserve(&e).unwrap();
    store.unserve(&f).unwrap();
    let leaks = any_file_holds(store.layers_dir(), 0x5a, 64);
    assert!(leaks.is_empty(), "plaintext in {leaks:?}");

    // A plain snapshot, and its encrypted copy.
    store.create(&p, 64 * MIB, false, None).unwrap();
    check(
        &store,
        &p,
        &cmds(&["write -P 0x6b 0 4M", "write -P 0x6c 32M 1M"]),
    );
    store.unserve(&p).unwrap();
    let plain = store.snapshot(&p, &sp).unwrap();
    assert!(!plain.encrypted);
    let t = Instant::now();
    let copy = store.copy_snapshot(&sp, &sc, true).unwrap();
    eprintln!(
        "encrypted copy of a snapshot of 5 MiB written: {:.0} ms, stores {} bytes",
        ms(t),
        copy.stored_bytes
    );
    assert!(copy.encrypted);
    assert_eq!(copy.size_bytes, 64 * MIB);
    assert_eq!(store.copy_snapshot(&sp, &sc, true).unwrap(), copy);
    // Unencrypted, a copy shares the layer.
    assert_eq!(store.copy_snapshot(&sp, &sc2, false).unwrap(), plain);
    // Once the plain volume and snapshots are gone, no layer holds the plaintext.
    store.delete(&p).unwrap();
    store.delete_snapshot(&sp).unwrap();
    store.delete_snapshot(&sc2).unwrap();
    let leaks = any_file_holds(store.layers_dir(), 0x6b, 64);
    assert!(leaks.is_empty(), "plaintext in {leaks:?}");
    store.create(&g, 64 * MIB, false, Some(&sc)).unwrap();
    assert!(store.is_encrypted(&g));
    check(
        &store,
        &g,
        &cmds(&[
            "read -P 0x6b 0 4M",
            "read -P 0x6c 32M 1M",
            "read -P 0 40M 1M",
        ]),
    );
    store.unserve(&g).unwrap();
    let leaks = any_file_holds(store.layers_dir(), 0x6b, 64);
    assert!(leaks.is_empty(), "plaintext in {leaks:?}");
}

/// Deleting a volume or a snapshot keeps the layers others still read through, and
/// deleting everything leaves nothing behind.
#[test]
fn deleting_keeps_what_others_need_and_removes_the_rest() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    let (v, w, x, y) = (
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
    );
    let (s1, s2) = (SnapshotId::generate(), SnapshotId::generate());
    let _cleanup = Unserve(&store, vec![v.clone(), w.clone(), x.clone(), y.clone()]);
    store.create(&v, 64 * MIB, true, None).unwrap();
    check(&store, &v, &cmds(&["write -P 0x11 0 2M"]));
    store.snapshot(&v, &s1).unwrap();
    check(&store, &v, &cmds(&["write -P 0x22 2M 2M"]));
    store.snapshot(&v, &s2).unwrap();
    store.create(&w, 64 * MIB, false, Some(&s1)).unwrap();
    store.create(&x, 64 * MIB, false, Some(&s2)).unwrap();

    let t = Instant::now();
    store.delete(&v).unwrap();
    store.delete_snapshot(&s1).unwrap();
    store.delete_snapshot(&s1).unwrap();
    eprintln!("volume and snapshot deleted in {:.0} ms", ms(t));
    assert_eq!(store.list_snapshots(), vec![s2.clone()]);
    assert!(store.snapshot_info(&s1).is_none());
    check(
        &store,
        &w,
        &cmds(&["read -P 0x11 0 2M", "read -P 0 2M 2M", "write -P 0x33 0 1M"]),
    );
    // A sibling served from the same snapshot while another is grown offline.
    store.create(&y, 64 * MIB, false, Some(&s2)).unwrap();
    check(&store, &y, &cmds(&["read -P 0x22 2M 2M"]));
    store.grow(&x, 128 * MIB).unwrap();
    check(
        &store,
        &x,
        &cmds(&[
            "read -P 0x11 0 2M",
            "read -P 0x22 2M 2M",
            "read -P 0 100M 1M",
        ]),
    );

    for id in [&w, &x, &y] {
        store.delete(id).unwrap();
    }
    assert!(
        count_files(store.layers_dir()) > 0,
        "s2 still holds its layers"
    );
    store.delete_snapshot(&s2).unwrap();
    assert!(store.list().is_empty() && store.list_snapshots().is_empty());
    assert_empty_store(&store);
}

/// The child half of [`interrupted_snapshots_roll_forward_with_the_daemon_live`]: takes
/// a snapshot and dies at the crash point its parent names. Does nothing on its own.
#[test]
fn crash_helper_takes_a_snapshot() {
    let Ok(dir) = std::env::var("STRATO_TEST_CRASH_STORE") else {
        return;
    };
    let vol = VolumeId::parse_str(&std::env::var("STRATO_TEST_CRASH_VOLUME").unwrap()).unwrap();
    let snap =
        SnapshotId::parse_str(&std::env::var("STRATO_TEST_CRASH_SNAPSHOT").unwrap()).unwrap();
    let store = Qcow2VolumeStore::open(Path::new(&dir)).unwrap();
    store.snapshot(&vol, &snap).unwrap();
    panic!("the crash point was not reached");
}

/// A snapshot interrupted at any step (the process killed there) is rolled forward by
/// the next `open`, while the daemon keeps serving the same client.
#[test]
fn interrupted_snapshots_roll_forward_with_the_daemon_live() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path().join("volumes");
    let store = Qcow2VolumeStore::open(&dir).unwrap();
    let v = VolumeId::generate();
    let _cleanup = Unserve(&store, vec![v.clone()]);
    store.create(&v, 64 * MIB, true, None).unwrap();
    let export = store.serve(&v, DiskLimits::default(), None).unwrap();
    let pid = store.daemon_pid(&v).unwrap();
    let mut client = IoClient::connect(&export);
    let points = [
        "snapshot-intent-written",
        "snapshot-layer-made",
        "snapshot-overlay-added",
        "snapshot-switched",
        "snapshot-recorded",
        "snapshot-top-moved",
    ];
    let mut snaps = vec![];
    for (n, point) in points.iter().enumerate() {
        let byte = 0x10 + n;
        client.run(&format!("write -P {byte} 0 1M"));
        let snap = SnapshotId::generate();
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["crash_helper_takes_a_snapshot", "--exact", "--nocapture"])
            .env("STRATO_CRASH_AT", point)
            .env("STRATO_TEST_CRASH_STORE", &dir)
            .env("STRATO_TEST_CRASH_VOLUME", v.as_str())
            .env("STRATO_TEST_CRASH_SNAPSHOT", snap.as_str())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("STRATO_CRASH_AT={point}: aborting")),
            "{point}: {stderr}"
        );
        assert!(store.dir().join(v.as_str()).join("snapshot.next").exists());

        // "Restart".
        let t = Instant::now();
        let store = Qcow2VolumeStore::open(&dir).unwrap();
        eprintln!("{point}: recovered at open in {:.0} ms", ms(t));
        assert!(!store.dir().join(v.as_str()).join("snapshot.next").exists());
        assert_eq!(
            store.daemon_pid(&v),
            Some(pid),
            "{point}: the daemon lives on"
        );
        if *point == "snapshot-intent-written" {
            // Never made: the snapshot does not exist, and asking again takes it.
            assert!(store.snapshot_info(&snap).is_none());
            store.snapshot(&v, &snap).unwrap();
        }
        let info = store.snapshot_info(&snap).unwrap();
        assert!(info.encrypted && info.size_bytes == 64 * MIB, "{info:?}");
        // The daemon writes the new top: what the client writes now is not in it.
        client.run("write -P 0xff 0 1M");
        client.run("read -P 0xff 0 1M");
        snaps.push((snap, byte));
    }
    // Each snapshot holds what was written before it, through one chain per snapshot.
    assert_eq!(store.chain_paths(&v).len(), points.len() + 1);
    for (snap, byte) in &snaps {
        let from = VolumeId::generate();
        store.create(&from, 64 * MIB, false, Some(snap)).unwrap();
        check(&store, &from, &[format!("read -P {byte} 0 1M")]);
        store.delete(&from).unwrap();
    }
    assert!(!client.log.contains("Connection"), "{}", client.log);
}

/// A volume directory of the one-file layout (`disk.qcow2`, `key`) becomes a layer at
/// `open`, also when a migration was interrupted half-way.
#[test]
fn old_layout_volumes_are_migrated_at_open() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path().join("volumes");
    let (plain, secret, never) = (
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
    );
    let run = |args: &[&str]| {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    };
    // The old layout, as the store made it before layers.
    for id in [&plain, &secret, &never] {
        std::fs::create_dir_all(dir.join(id.as_str())).unwrap();
    }
    let plain_disk = dir.join(plain.as_str()).join("disk.qcow2");
    let p = plain_disk.to_str().unwrap();
    run(&["qemu-img", "create", "-q", "-f", "qcow2", p, "64M"]);
    run(&["qemu-io", "-f", "qcow2", "-c", "write -P 0x42 0 1M", p]);
    let secret_dir = dir.join(secret.as_str());
    let key = secret_dir.join("key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let secret_obj = format!("secret,id=k,file={},format=raw", key.display());
    let s = secret_dir.join("disk.qcow2");
    let s = s.to_str().unwrap();
    run(&[
        "qemu-img",
        "create",
        "-q",
        "-f",
        "qcow2",
        "--object",
        &secret_obj,
        "-o",
        "encrypt.format=luks,encrypt.key-secret=k,encrypt.iter-time=10",
        s,
        "64M",
    ]);
    run(&[
        "qemu-io",
        "--object",
        &secret_obj,
        "--image-opts",
        "-c",
        "write -P 0x43 0 1M",
        &format!("driver=qcow2,file.filename={s},encrypt.key-secret=k"),
    ]);
    // The encrypted one was half migrated: its record written and key moved, when the
    // process died.
    let layer = secret.as_str().trim_start_matches("vol-").to_string();
    let layers = dir.join("layers");
    std::fs::create_dir_all(&layers).unwrap();
    std::fs::write(
        layers.join(format!("{layer}.json")),
        r#"{"parent":null,"encrypted":true}"#,
    )
    .unwrap();
    std::fs::rename(&key, layers.join(format!("{layer}.key"))).unwrap();

    // The plain one is served by a daemon started before layers (its nodes named
    // "vol-file", "vol-disk"), which the migration must not disturb.
    let vd = dir.join(plain.as_str());
    let path = |f: &str| vd.join(f).display().to_string();
    let legacy = Command::new("qemu-storage-daemon")
        .args(["--daemonize", "--pidfile", &path("qsd.pid"), "--chardev"])
        .arg(format!(
            "socket,id=qmp,path={},server=on,wait=off",
            path("qsd.sock")
        ))
        .args(["--monitor", "chardev=qmp", "--blockdev"])
        .arg(
            serde_json::json!({"driver": "file", "node-name": "vol-file",
                               "filename": path("disk.qcow2")})
            .to_string(),
        )
        .arg("--blockdev")
        .arg(r#"{"driver":"qcow2","node-name":"vol-disk","file":"vol-file"}"#)
        .arg("--object")
        .arg(r#"{"qom-type":"throttle-group","id":"vol-limits","limits":{}}"#)
        .arg("--blockdev")
        .arg(r#"{"driver":"throttle","node-name":"vol-throttle","throttle-group":"vol-limits","file":"vol-disk"}"#)
        .arg("--nbd-server")
        .arg(serde_json::json!({"addr": {"type": "unix", "path": path("nbd.sock")}}).to_string())
        .arg("--export")
        .arg(r#"{"type":"nbd","id":"vol-export","node-name":"vol-throttle","name":"legacy","writable":true}"#)
        .output()
        .unwrap();
    assert!(legacy.status.success(), "{legacy:?}");
    let legacy = NbdExport {
        socket: vd.join("nbd.sock"),
        name: "legacy".into(),
    };

    let t = Instant::now();
    let store = Qcow2VolumeStore::open(&dir).unwrap();
    eprintln!("two volumes migrated at open in {:.0} ms", ms(t));
    let _cleanup = Unserve(&store, vec![plain.clone(), secret.clone()]);
    let mut want = vec![plain.clone(), secret.clone()];
    want.sort();
    assert_eq!(
        store.list(),
        want,
        "a directory without a disk is no volume"
    );
    // The old daemon serves on, and a snapshot switches it too.
    let pid = store.daemon_pid(&plain).unwrap();
    let io = |cmds: &[&str]| {
        let (ok, out) = qemu_io(&legacy, &self::cmds(cmds), None);
        assert!(ok, "{out}");
    };
    io(&["read -P 0x42 0 1M", "write -P 0x44 1M 1M"]);
    let old_snap = SnapshotId::generate();
    store.snapshot(&plain, &old_snap).unwrap();
    io(&["write -P 0x45 1M 1M", "read -P 0x42 0 1M"]);
    assert_eq!(store.daemon_pid(&plain), Some(pid));
    let from_old = VolumeId::generate();
    let _cleanup0 = Unserve(&store, vec![from_old.clone()]);
    store
        .create(&from_old, 64 * MIB, false, Some(&old_snap))
        .unwrap();
    check(
        &store,
        &from_old,
        &cmds(&["read -P 0x42 0 1M", "read -P 0x44 1M 1M"]),
    );
    store.unserve(&plain).unwrap();
    assert!(store.daemon_pid(&plain).is_none());
    check(&store, &plain, &cmds(&["read -P 0x45 1M 1M"]));

    for id in [&plain, &secret] {
        assert!(store.disk_path(id).starts_with(store.layers_dir()));
        assert!(!dir.join(id.as_str()).join("disk.qcow2").exists());
        assert_eq!(store.info(id).unwrap().size_bytes, 64 * MIB);
    }
    assert!(!store.is_encrypted(&plain) && store.is_encrypted(&secret));
    check(&store, &plain, &cmds(&["read -P 0x42 0 1M"]));
    check(&store, &secret, &cmds(&["read -P 0x43 0 1M"]));
    // Opening again changes nothing; migrated volumes snapshot like any other.
    let again = Qcow2VolumeStore::open(&dir).unwrap();
    want.push(from_old.clone());
    want.sort();
    assert_eq!(again.list(), want);
    let snap = SnapshotId::generate();
    let copy = VolumeId::generate();
    let _cleanup2 = Unserve(&again, vec![copy.clone()]);
    assert!(again.snapshot(&secret, &snap).unwrap().encrypted);
    again.create(&copy, 64 * MIB, false, Some(&snap)).unwrap();
    check(&again, &copy, &cmds(&["read -P 0x43 0 1M"]));
    check(&again, &secret, &cmds(&["read -P 0x43 0 1M"]));
}

/// A volume of a machine image reads the image's data at once (raw and qcow2 images
/// alike), may be larger than it, is independent of the file afterwards, and each
/// image file is imported once for all its volumes.
#[test]
fn volumes_of_images_copy_the_image_once() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let store = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    // A raw image with a pattern, and the same as qcow2.
    let raw = tmp.path().join("root.raw");
    let mut data = vec![0u8; 8 * MIB as usize];
    data[..MIB as usize].fill(0x5a);
    std::fs::write(&raw, &data).unwrap();
    let qcow = tmp.path().join("root.qcow2");
    let st = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow)
        .status()
        .unwrap();
    assert!(st.success());
    let (a, b, c, d) = (
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
        VolumeId::generate(),
    );
    let _cleanup = Unserve(&store, vec![a.clone(), b.clone(), c.clone(), d.clone()]);

    let t = Instant::now();
    store.create_from_image(&a, GIB, false, &qcow).unwrap();
    eprintln!(
        "first volume of an image (import included) in {:.0} ms",
        ms(t)
    );
    let t = Instant::now();
    store.create_from_image(&b, GIB, true, &qcow).unwrap();
    eprintln!("second volume of the image in {:.0} ms", ms(t));
    store.create_from_image(&c, 8 * MIB, false, &raw).unwrap();
    // One imported layer per image file, however many volumes.
    let images = std::fs::read_dir(store.dir().join("images"))
        .unwrap()
        .count();
    assert_eq!(images, 2, "one record per image file");
    assert_eq!(store.info(&a).unwrap().size_bytes, GIB);

    // Too small for the image: refused, and nothing is left of the attempt.
    match store.create_from_image(&d, 4 * MIB, false, &raw) {
        Err(Error::InvalidParameterValue(m)) => assert!(m.contains("cannot hold image"), "{m}"),
        other => panic!("expected InvalidParameterValue, got {other:?}"),
    }
    assert!(store.info(&d).is_none());
    // A missing image is NotFound.
    assert!(matches!(
        store.create_from_image(&d, GIB, false, &tmp.path().join("nope.qcow2")),
        Err(Error::NotFound { .. })
    ));

    // The image file goes away: its volumes do not notice.
    std::fs::remove_file(&qcow).unwrap();
    std::fs::remove_file(&raw).unwrap();
    for v in [&a, &b, &c] {
        check(
            &store,
            v,
            &cmds(&[
                "read -P 0x5a 0 1M",
                "read -P 0 1M 7M",
                "write -P 0x77 0 64k",
            ]),
        );
    }
    // Writes stay in their own volume.
    check(&store, &a, &cmds(&["read -P 0x77 0 64k"]));
    // The encrypted one holds no plaintext of what it was written.
    assert!(store.is_encrypted(&b));

    for v in [&a, &b, &c] {
        store.delete(v).unwrap();
    }
    // The imported images stay for later volumes (reopening keeps them too).
    let again = Qcow2VolumeStore::open(&tmp.path().join("volumes")).unwrap();
    assert_eq!(
        count_files(again.layers_dir()),
        4,
        "two image layers (qcow2 + json each)"
    );
}

/// The child half of [`interrupted_image_imports_leave_nothing_behind`]: makes a volume
/// of an image and dies at the crash point its parent names. Does nothing on its own.
#[test]
fn crash_helper_makes_a_volume_of_an_image() {
    let Ok(dir) = std::env::var("STRATO_TEST_CRASH_STORE") else {
        return;
    };
    let vol = VolumeId::parse_str(&std::env::var("STRATO_TEST_CRASH_VOLUME").unwrap()).unwrap();
    let image = std::env::var("STRATO_TEST_CRASH_IMAGE").unwrap();
    let store = Qcow2VolumeStore::open(Path::new(&dir)).unwrap();
    store
        .create_from_image(&vol, 64 * MIB, false, Path::new(&image))
        .unwrap();
    panic!("the crash point was not reached");
}

/// A volume of an image interrupted at each step of the import leaves no volume and,
/// after the next `open`, no stray layer; asking again makes it whole.
#[test]
fn interrupted_image_imports_leave_nothing_behind() {
    if !tools() {
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path().join("volumes");
    let image = tmp.path().join("root.raw");
    let mut data = vec![0u8; 4 * MIB as usize];
    data[..MIB as usize].fill(0x42);
    std::fs::write(&image, &data).unwrap();
    for point in ["image-layer-made", "image-recorded", "volume-disk-made"] {
        let store = Qcow2VolumeStore::open(&dir).unwrap();
        let v = VolumeId::generate();
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_helper_makes_a_volume_of_an_image",
                "--exact",
                "--nocapture",
            ])
            .env("STRATO_CRASH_AT", point)
            .env("STRATO_TEST_CRASH_STORE", &dir)
            .env("STRATO_TEST_CRASH_VOLUME", v.as_str())
            .env("STRATO_TEST_CRASH_IMAGE", &image)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if point == "volume-disk-made" {
            // Not a store crash point: the helper finishes, the volume is whole.
            assert!(
                stderr.contains("the crash point was not reached"),
                "{stderr}"
            );
            assert!(store.info(&v).is_some());
            store.delete(&v).unwrap();
            continue;
        }
        assert!(
            stderr.contains(&format!("STRATO_CRASH_AT={point}: aborting")),
            "{point}: {stderr}"
        );
        assert!(store.info(&v).is_none(), "{point}: no volume");
        drop(store);
        // "Restart": an import never recorded leaves nothing; a recorded one its layer.
        let store = Qcow2VolumeStore::open(&dir).unwrap();
        let layers = count_files(store.layers_dir());
        let records = std::fs::read_dir(store.dir().join("images"))
            .unwrap()
            .count();
        match point {
            "image-layer-made" => assert_eq!((layers, records), (0, 0), "{point}"),
            _ => assert_eq!((layers, records), (2, 1), "{point}"),
        }
        store
            .create_from_image(&v, 64 * MIB, false, &image)
            .unwrap();
        check(
            &store,
            &v,
            &cmds(&["read -P 0x42 0 1M", "read -P 0 1M 63M"]),
        );
        store.unserve(&v).unwrap();
        store.delete(&v).unwrap();
        // The next round starts from a store without the image.
        for e in std::fs::read_dir(store.dir().join("images")).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}
