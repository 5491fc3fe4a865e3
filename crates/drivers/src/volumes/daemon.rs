//! The process that serves one volume: `qemu-storage-daemon`.
//!
//! An attached volume is opened by a daemon of its own, never by the VM's QEMU: the
//! key of an encrypted volume stays in the daemon (the VM's QEMU, unprivileged and
//! sandboxed, only ever sees plaintext blocks over NBD), limits are enforced outside
//! the guest's reach, and the same export can later be offered over TCP to a VM on
//! another host. The daemon runs daemonized with a pid file, so it outlives a restart
//! of Strato and is found again through that file, as QEMU processes are.
//!
//! Its block graph has fixed node names, the same in every daemon, so later work
//! (snapshots, migration, cross-host serving) can address them over the daemon's QMP
//! socket without asking the daemon first:
//!
//! ```text
//!   NBD export  id "vol-export", name = the serving's export name (see qcow2.rs)
//!        │
//!   "vol-throttle"  throttle filter, in throttle group object "vol-limits"
//!        │
//!   "vol-disk"      qcow2 format node (LUKS opened with secret object "vol-key")
//!        │          ← the point-in-time layer: `blockdev-snapshot-sync` with
//!        │            node-name "vol-disk" puts an overlay above it while the guest
//!        │            writes (the throttle follows the overlay); the old file is then
//!        │            a crash-consistent, read-only image of the volume
//!   "vol-file"      file protocol node: <volume dir>/disk.qcow2
//! ```
//!
//! Files of the daemon in the volume's directory: `qsd.pid` (pid file), `qsd.sock`
//! (QMP, root only), `nbd.sock` (the NBD server: only the client's uid may connect),
//! `qsd.log` (its stderr).

use crate::proc::{io_err, kill, live_pid, signal, wait_gone};
use crate::qemu::qmp::Qmp;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use strato_agent_api::DiskLimits;
use strato_common::{Error, Result};

/// The file protocol node (the qcow2 file on the host).
pub const NODE_FILE: &str = "vol-file";
/// The qcow2 format node: where snapshots attach.
pub const NODE_DISK: &str = "vol-disk";
/// The throttle filter node: what is exported.
pub const NODE_THROTTLE: &str = "vol-throttle";
/// The throttle group object holding the volume's limits (`qom-set` its `limits`).
pub const THROTTLE_GROUP: &str = "vol-limits";
/// The NBD export's id.
pub const EXPORT_ID: &str = "vol-export";
/// The binary (Debian's qemu-system-common installs it at /usr/bin).
const BINARY: &str = "qemu-storage-daemon";
/// The most bytes an I/O may have to count as one operation, as EBS counts SSD I/O
/// (larger ones count as several).
const IOPS_SIZE: u64 = 256 * 1024;
/// How long a daemon gets to start, and to stop after SIGTERM.
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The daemon's files in a volume directory.
pub(crate) struct Files {
    pub dir: PathBuf,
}

impl Files {
    pub fn pid(&self) -> PathBuf {
        self.dir.join("qsd.pid")
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qsd.sock")
    }
    pub fn nbd(&self) -> PathBuf {
        self.dir.join("nbd.sock")
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("qsd.log")
    }
}

/// What a daemon is started with.
pub(crate) struct Launch<'a> {
    pub disk: &'a Path,
    /// The key file of an encrypted volume.
    pub key: Option<&'a Path>,
    pub limits: DiskLimits,
    pub export_name: &'a str,
}

/// The throttle group's `limits` for a volume's [`DiskLimits`] (0 = unlimited). The
/// I/O size that counts as one operation is only set with an IOPS limit, which QEMU
/// requires.
pub fn limits_json(l: DiskLimits) -> Value {
    json!({
        "iops-total": l.iops,
        "bps-total": l.bytes_per_sec,
        "iops-size": if l.iops > 0 { IOPS_SIZE } else { 0 },
    })
}

/// The NBD export's `block-export-add` arguments.
fn export_json(name: &str) -> Value {
    json!({
        "type": "nbd",
        "id": EXPORT_ID,
        "node-name": NODE_THROTTLE,
        "name": name,
        "writable": true,
    })
}

/// The daemon's command line. JSON option values spare escaping paths, except for the
/// chardev, which only takes key=value (commas doubled).
fn args(files: &Files, l: &Launch) -> Vec<String> {
    let mut qcow2 = json!({
        "driver": "qcow2",
        "node-name": NODE_DISK,
        "file": NODE_FILE,
        "discard": "unmap",
    });
    let mut args: Vec<String> = vec![
        "--daemonize".into(),
        "--pidfile".into(),
        files.pid().display().to_string(),
        "--chardev".into(),
        format!(
            "socket,id=qmp,path={},server=on,wait=off",
            files.qmp().display().to_string().replace(',', ",,")
        ),
        "--monitor".into(),
        "chardev=qmp".into(),
    ];
    if let Some(key) = l.key {
        args.push("--object".into());
        args.push(
            json!({"qom-type": "secret", "id": super::img::SECRET_ID,
                   "file": key.display().to_string(), "format": "raw"})
            .to_string(),
        );
        qcow2["encrypt"] = json!({"format": "luks", "key-secret": super::img::SECRET_ID});
    }
    let blockdevs = [
        json!({"driver": "file", "node-name": NODE_FILE,
               "filename": l.disk.display().to_string(), "discard": "unmap"}),
        qcow2,
        json!({"driver": "throttle", "node-name": NODE_THROTTLE,
               "throttle-group": THROTTLE_GROUP, "file": NODE_DISK}),
    ];
    args.push("--object".into());
    args.push(
        json!({"qom-type": "throttle-group", "id": THROTTLE_GROUP,
               "limits": limits_json(l.limits)})
        .to_string(),
    );
    for b in blockdevs {
        args.push("--blockdev".into());
        args.push(b.to_string());
    }
    args.push("--nbd-server".into());
    args.push(
        json!({"addr": {"type": "unix", "path": files.nbd().display().to_string()}}).to_string(),
    );
    args.push("--export".into());
    args.push(export_json(l.export_name).to_string());
    args
}

/// The daemon's pid when one serves this directory.
pub(crate) fn pid(files: &Files) -> Option<u32> {
    // The pid file's path is on the daemon's command line: it names this volume.
    live_pid(&files.pid(), &files.pid().display().to_string())
}

/// Starts a daemon for a volume that has none; returns once its sockets exist.
pub(crate) fn start(files: &Files, l: &Launch) -> Result<u32> {
    remove_leftovers(files)?;
    let log = std::fs::File::create(files.log()).map_err(|e| io_err("creating qsd.log", e))?;
    let mut cmd = Command::new(BINARY);
    cmd.args(args(files, l))
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| io_err("qsd.log", e))?)
        .stderr(log);
    // Sockets are made owner-only from the start (QEMU binds them with the umask), so
    // nobody can slip in before they are handed to the VM's uid.
    use std::os::unix::process::CommandExt;
    // SAFETY: umask(2) is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| io_err("starting qemu-storage-daemon", e))?;
    // With --daemonize the process we started exits once the daemon is ready (its
    // sockets listening), successfully or with the reason it is not.
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(s) = child
            .try_wait()
            .map_err(|e| io_err("waiting for qemu-storage-daemon", e))?
        {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::Internal(
                "qemu-storage-daemon did not become ready".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let pid = pid(files);
    match (status.success(), pid) {
        (true, Some(pid)) => Ok(pid),
        _ => {
            let err = std::fs::read_to_string(files.log()).unwrap_or_default();
            if let Some(pid) = pid {
                kill(pid);
            }
            Err(Error::Internal(format!(
                "qemu-storage-daemon failed to start ({status}): {}",
                err.trim()
            )))
        }
    }
}

/// Stops the daemon (if any) and removes its sockets and pid file. SIGTERM lets it
/// flush and close the disk cleanly; SIGKILL follows if it does not go in time.
pub(crate) fn stop(files: &Files) -> Result<()> {
    if let Some(pid) = pid(files) {
        signal(pid, libc::SIGTERM);
        if !wait_gone(pid, STOP_TIMEOUT) {
            tracing::warn!(dir = %files.dir.display(), pid, "qemu-storage-daemon ignored SIGTERM; killing it");
            kill(pid);
            wait_gone(pid, STOP_TIMEOUT);
        }
    }
    remove_leftovers(files)
}

fn remove_leftovers(files: &Files) -> Result<()> {
    for p in [files.nbd(), files.qmp(), files.pid()] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&format!("removing {}", p.display()), e)),
        }
    }
    Ok(())
}

/// A QMP connection to the daemon.
pub(crate) fn connect(files: &Files) -> Result<Qmp> {
    Qmp::connect(&files.qmp(), Duration::from_secs(3))
}

/// Applies new limits to a running daemon (takes effect at once).
pub(crate) fn set_limits(files: &Files, limits: DiskLimits) -> Result<()> {
    connect(files)?
        .execute(
            "qom-set",
            Some(json!({"path": THROTTLE_GROUP, "property": "limits",
                        "value": limits_json(limits)})),
        )
        .map(|_| ())
}

/// Grows the disk of a running daemon. An NBD export forbids resizing what it exports
/// (NBD has no way to tell a client), so the export is withdrawn, the disk grown and
/// the export offered again under the same name; a connected client reconnects within
/// its `reconnect-delay` and sees the old size until it opens a new connection (see
/// the QEMU driver's disk refresh). The export is offered again even if growing
/// failed, so a failure never takes the disk away from its VM.
pub(crate) fn resize(files: &Files, export_name: &str, size_bytes: u64) -> Result<()> {
    let mut q = connect(files)?;
    let exports = q.execute("query-block-exports", None)?;
    let exported = exports
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["id"] == EXPORT_ID));
    if exported {
        q.execute(
            "block-export-del",
            Some(json!({"id": EXPORT_ID, "mode": "hard"})),
        )?;
        wait_event(&mut q, "BLOCK_EXPORT_DELETED", Duration::from_secs(5))?;
    }
    let grown = q.execute(
        "block_resize",
        Some(json!({"node-name": NODE_THROTTLE, "size": size_bytes})),
    );
    let added = q.execute("block-export-add", Some(export_json(export_name)));
    grown?;
    added.map(|_| ())
}

/// Waits for an event (queued or new).
fn wait_event(q: &mut Qmp, name: &str, timeout: Duration) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Some(ev) = q.next_event(left)? {
            if ev["event"] == name {
                return Ok(ev);
            }
            continue;
        }
        if left.is_zero() {
            return Err(Error::Internal(format!(
                "qemu-storage-daemon: no {name} event"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_unlimited_at_zero_and_count_ebs_sized_ios() {
        let v = limits_json(DiskLimits::default());
        assert_eq!(v["iops-total"], 0);
        assert_eq!(v["iops-size"], 0);
        let v = limits_json(DiskLimits {
            iops: 3000,
            bytes_per_sec: 125 << 20,
        });
        assert_eq!(v["iops-total"], 3000);
        assert_eq!(v["bps-total"], 125u64 << 20);
        assert_eq!(v["iops-size"], 256 * 1024);
    }

    #[test]
    fn command_line_names_the_stable_nodes() {
        let files = Files {
            dir: PathBuf::from("/v/vol-1,2"),
        };
        let a = args(
            &files,
            &Launch {
                disk: Path::new("/v/vol-1,2/disk.qcow2"),
                key: Some(Path::new("/v/vol-1,2/key")),
                limits: DiskLimits::default(),
                export_name: "vol-x",
            },
        )
        .join(" ");
        assert!(a.contains("path=/v/vol-1,,2/qsd.sock"), "{a}");
        for needle in [
            r#""node-name":"vol-file""#,
            r#""node-name":"vol-disk""#,
            r#""node-name":"vol-throttle""#,
            r#""key-secret":"vol-key""#,
            r#""id":"vol-export""#,
            r#""name":"vol-x""#,
        ] {
            assert!(a.contains(needle), "{needle} in {a}");
        }
    }
}
