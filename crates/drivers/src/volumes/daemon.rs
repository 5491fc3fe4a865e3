//! The process that serves one volume: `qemu-storage-daemon`.
//!
//! An attached volume is opened by a daemon of its own, never by the VM's QEMU: the
//! key of an encrypted volume stays in the daemon (the VM's QEMU, unprivileged and
//! sandboxed, only ever sees plaintext blocks over NBD), limits are enforced outside
//! the guest's reach, and the same export can later be offered over TCP to a VM on
//! another host. The daemon runs daemonized with a pid file, so it outlives a restart
//! of Strato and is found again through that file, as QEMU processes are.
//!
//! Its block graph has fixed names where the rest of Strato reaches it (the export and
//! the throttle filter), and the layers of the volume's chain (see [`super::qcow2`])
//! below it are named after their layer ids, so that a live snapshot can put a new
//! layer on top without renaming anything:
//!
//! ```text
//!   NBD export  id "vol-export", name = the serving's export name (see qcow2.rs)
//!        │
//!   "vol-throttle"    throttle filter, in throttle group object "vol-limits": the
//!        │            volume's top as a fixed name (resizes go through it)
//!   "layer-<top>"     qcow2 format node of the writable top layer, opened with secret
//!        │            object "key-<top>" when encrypted, over file node "file-<top>"
//!        │  backing
//!   "layer-<parent>"  read-only qcow2 node of the layer below ("file-<parent>",
//!        │            "key-<parent>"), and so on down to a layer without a parent
//!        ⋮  backing: null
//! ```
//!
//! Every node of the chain is given on the command line from the layers' records,
//! parents first, each with its `backing` named explicitly: the backing file names in
//! the qcow2 headers are never followed.
//!
//! A snapshot while the daemon serves the volume (`switch_top`) adds the new, empty
//! layer N as node `layer-<N>` (with `backing: null`, and its secret object first when
//! encrypted), then `blockdev-snapshot` node `layer-<T>` → overlay `layer-<N>`: QEMU
//! drains and flushes T, makes N's backing T, moves T's parent (the throttle filter)
//! onto N and reopens T read-only, all in one step between two requests of the client,
//! which stays connected. From then on the guest writes N, and T is the snapshot. The
//! current top is therefore the read-write `layer-*` node, not a fixed name; a daemon
//! started before layers existed names its top "vol-disk" (secret "vol-key", file
//! "vol-file"), which `switch_top` accepts as the old top too.
//!
//! Files of the daemon in the volume's directory: `qsd.pid` (pid file), `qsd.sock`
//! (QMP, root only), `nbd.sock` (the NBD server: only the client's uid may connect),
//! `qsd.log` (its stderr).

use super::img;
use super::layers::ChainLayer;
use crate::proc::{io_err, kill, live_pid, signal, wait_gone};
use crate::qemu::qmp::Qmp;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use strato_agent_api::DiskLimits;
use strato_common::{Error, Result};

/// The top node of a daemon started before volumes were made of layers.
const LEGACY_NODE_DISK: &str = "vol-disk";
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
    /// The volume's chain of layers, its top first.
    pub chain: &'a [ChainLayer],
    pub limits: DiskLimits,
    pub export_name: &'a str,
}

/// The qcow2 format node of a layer.
pub fn layer_node(layer: &str) -> String {
    format!("layer-{layer}")
}

/// The file protocol node of a layer.
pub fn file_node(layer: &str) -> String {
    format!("file-{layer}")
}

/// The secret object of a layer's key, on the command line or over QMP.
fn secret_json(l: &ChainLayer, key: &Path) -> Value {
    json!({"qom-type": "secret", "id": img::secret_id(&l.id),
           "file": key.display().to_string(), "format": "raw"})
}

/// The qcow2 node of a layer over its file node (given by name, or inline), with
/// `backing` naming its parent's node (or `null`).
fn layer_json(l: &ChainLayer, file: Value, backing: Value, writable: bool) -> Value {
    let mut node = json!({
        "driver": "qcow2",
        "node-name": layer_node(&l.id),
        "file": file,
        "backing": backing,
    });
    if writable {
        node["discard"] = json!("unmap");
    } else {
        node["read-only"] = json!(true);
    }
    if l.key.is_some() {
        node["encrypt"] = json!({"format": "luks", "key-secret": img::secret_id(&l.id)});
    }
    node
}

fn file_json(l: &ChainLayer, writable: bool) -> Value {
    let mut node = json!({"driver": "file", "node-name": file_node(&l.id),
                          "filename": l.path.display().to_string()});
    if writable {
        node["discard"] = json!("unmap");
    } else {
        node["read-only"] = json!(true);
    }
    node
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
fn args(files: &Files, l: &Launch) -> Result<Vec<String>> {
    let top = l
        .chain
        .first()
        .ok_or_else(|| Error::Internal("a volume without layers".into()))?;
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
    // Parents first: a node's backing must exist when it is added.
    for (i, layer) in l.chain.iter().enumerate().rev() {
        let writable = i == 0;
        if let Some(key) = &layer.key {
            args.push("--object".into());
            args.push(secret_json(layer, key).to_string());
        }
        let backing = match l.chain.get(i + 1) {
            Some(parent) => json!(layer_node(&parent.id)),
            None => Value::Null,
        };
        args.push("--blockdev".into());
        args.push(file_json(layer, writable).to_string());
        args.push("--blockdev".into());
        args.push(layer_json(layer, json!(file_node(&layer.id)), backing, writable).to_string());
    }
    args.push("--object".into());
    args.push(
        json!({"qom-type": "throttle-group", "id": THROTTLE_GROUP,
               "limits": limits_json(l.limits)})
        .to_string(),
    );
    args.push("--blockdev".into());
    args.push(
        json!({"driver": "throttle", "node-name": NODE_THROTTLE,
               "throttle-group": THROTTLE_GROUP, "file": layer_node(&top.id)})
        .to_string(),
    );
    args.push("--nbd-server".into());
    args.push(
        json!({"addr": {"type": "unix", "path": files.nbd().display().to_string()}}).to_string(),
    );
    args.push("--export".into());
    args.push(export_json(l.export_name).to_string());
    Ok(args)
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
    cmd.args(args(files, l)?)
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

/// The daemon's named nodes: name → (read-only, depth of its backing chain).
fn nodes(q: &mut Qmp) -> Result<std::collections::HashMap<String, (bool, u64)>> {
    // Not `flat`: only the full form counts the backing chain a node really has (the
    // `backing_file` field is the name in the qcow2 header, whether opened or not).
    let list = q.execute("query-named-block-nodes", None)?;
    Ok(list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| {
                    Some((
                        n["node-name"].as_str()?.to_string(),
                        (
                            n["ro"].as_bool().unwrap_or(false),
                            n["backing_file_depth"].as_u64().unwrap_or(0),
                        ),
                    ))
                })
                .collect()
        })
        .unwrap_or_default())
}

/// Puts layer `new` (an empty layer whose parent is `old`, the daemon's current top) on
/// top of the running daemon's chain: see the module docs. Idempotent, and resumable at
/// any step: a daemon whose `layer-<new>` node has its backing already is switched (then
/// nothing is done and `false` returned); one where the node was added but not yet put
/// on top gets only the `blockdev-snapshot`.
pub(crate) fn switch_top(files: &Files, old: &str, new: &ChainLayer) -> Result<bool> {
    let mut q = connect(files)?;
    let nodes = nodes(&mut q)?;
    let new_node = layer_node(&new.id);
    if nodes.get(&new_node).is_some_and(|(_, depth)| *depth > 0) {
        return Ok(false);
    }
    let old_node = [layer_node(old), LEGACY_NODE_DISK.to_string()]
        .into_iter()
        .find(|n| nodes.get(n).is_some_and(|(ro, _)| !ro))
        .ok_or_else(|| {
            Error::Internal(format!(
                "qemu-storage-daemon in {} does not write layer {old}",
                files.dir.display()
            ))
        })?;
    if !nodes.contains_key(&new_node) {
        if let Some(key) = &new.key {
            let objects = q.execute("qom-list", Some(json!({"path": "/objects"})))?;
            let id = img::secret_id(&new.id);
            let have = objects
                .as_array()
                .is_some_and(|a| a.iter().any(|o| o["name"] == id.as_str()));
            if !have {
                q.execute("object-add", Some(secret_json(new, key)))?;
            }
        }
        q.execute(
            "blockdev-add",
            Some(layer_json(new, file_json(new, true), Value::Null, true)),
        )?;
        strato_common::crash::point("snapshot-overlay-added");
    }
    q.execute(
        "blockdev-snapshot",
        Some(json!({"node": old_node, "overlay": new_node})),
    )?;
    Ok(true)
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
    fn command_line_names_the_stable_nodes_and_every_layer() {
        let files = Files {
            dir: PathBuf::from("/v/vol-1,2"),
        };
        let chain = [
            ChainLayer {
                id: "bb".into(),
                path: PathBuf::from("/v/layers/bb.qcow2"),
                key: Some(PathBuf::from("/v/layers/bb.key")),
            },
            ChainLayer {
                id: "aa".into(),
                path: PathBuf::from("/v/layers/aa.qcow2"),
                key: None,
            },
        ];
        let a = args(
            &files,
            &Launch {
                chain: &chain,
                limits: DiskLimits::default(),
                export_name: "vol-x",
            },
        )
        .unwrap();
        let joined = a.join(" ");
        assert!(joined.contains("path=/v/vol-1,,2/qsd.sock"), "{joined}");
        for needle in [
            r#""node-name":"vol-throttle""#,
            r#""file":"layer-bb""#,
            r#""key-secret":"key-bb""#,
            r#""id":"key-bb""#,
            r#""id":"vol-export""#,
            r#""name":"vol-x""#,
        ] {
            assert!(joined.contains(needle), "{needle} in {joined}");
        }
        assert!(!joined.contains("key-aa"), "{joined}");
        // Parents come first, each node names its backing, and only the top is written.
        let blockdevs: Vec<Value> = a
            .windows(2)
            .filter(|w| w[0] == "--blockdev")
            .map(|w| serde_json::from_str(&w[1]).unwrap())
            .collect();
        let names: Vec<&str> = blockdevs
            .iter()
            .map(|b| b["node-name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["file-aa", "layer-aa", "file-bb", "layer-bb", "vol-throttle"]
        );
        assert!(blockdevs[1]["backing"].is_null());
        assert_eq!(blockdevs[1]["read-only"], true);
        assert_eq!(blockdevs[3]["backing"], "layer-aa");
        assert!(blockdevs[3].get("read-only").is_none());
    }
}
