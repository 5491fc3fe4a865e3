//! The qcow2 volume store: one sparse qcow2 file per volume, served to VMs by
//! `qemu-storage-daemon`.
//!
//! Each volume lives in `<dir>/<vol-id>/`:
//!
//! | file | what |
//! |---|---|
//! | `disk.qcow2` | the disk (root, 0600), sparse: making 1 GiB or 1 TiB takes milliseconds |
//! | `key` | an encrypted volume's key (root, 0600): 32 random bytes, hex-encoded (QEMU wants a LUKS passphrase as UTF-8); it exists nowhere else |
//! | `serving.json` | while served: the export name, the client uid and the limits |
//! | `qsd.pid`, `qsd.sock`, `nbd.sock`, `qsd.log` | the serving daemon's (see [`super::daemon`]) |
//!
//! A volume is made in `<dir>/.tmp-<vol-id>/` and renamed into place when complete; it
//! is removed by renaming it to `<dir>/.del-<vol-id>-<random>/` first. Dot-names are
//! never volumes, and leftovers of a crash are removed by the next `create` of that
//! volume (`.tmp-`) or the next `open` (`.del-`).
//!
//! Directories are mode 0711: a VM's QEMU, which runs as a uid of its own, must walk to
//! `nbd.sock`, but may not list or read anything. Only the uid a volume is served to
//! (and root) may connect to its `nbd.sock` (a socket connect needs write permission).
//!
//! Each serving has an export name of its own (`<vol-id>-<random>`), kept for as long
//! as the volume is served to the same client, also across a restart of the daemon
//! (so the client's NBD connection simply reconnects). A new serving (after
//! [`Qcow2VolumeStore::unserve`], or for another client) gets a new name, so a client
//! that was cut off (a VM whose guest never released a force-detached disk) can never
//! reconnect to the volume once it is attached elsewhere.

use super::daemon::{self, Files, Launch};
use super::{check_size, img, not_found, shrink_refused, SnapshotInfo, VolumeInfo, VolumeStore};
use crate::proc::{hex, io_err, random_bytes};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use strato_agent_api::DiskLimits;
use strato_common::{Error, Result, SnapshotId, VolumeId};

/// Bytes of key per encrypted volume.
const KEY_BYTES: usize = 32;
/// The longest path a Unix socket may have (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Where a served volume can be reached over NBD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NbdExport {
    /// The daemon's NBD Unix socket (`<dir>/<vol-id>/nbd.sock`).
    pub socket: PathBuf,
    /// The export's name on that server (new for each serving, see the module docs).
    pub name: String,
}

impl NbdExport {
    /// The export as an NBD URI (`nbd+unix:///<name>?socket=<path>`), as `qemu-io`,
    /// `qemu-img` and `nbdinfo` take it.
    pub fn uri(&self) -> String {
        format!("nbd+unix:///{}?socket={}", self.name, self.socket.display())
    }
}

/// What is remembered of a volume while it is served (`serving.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Serving {
    export: String,
    client_uid: Option<u32>,
    limits: DiskLimits,
}

/// The qcow2 store (see the module documentation).
pub struct Qcow2VolumeStore {
    dir: PathBuf,
    /// One lock per volume: operations on one volume are serialized (a serve racing a
    /// delete…), operations on different volumes are not.
    locks: Mutex<HashMap<VolumeId, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for Qcow2VolumeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2VolumeStore")
            .field("dir", &self.dir)
            .finish()
    }
}

impl Qcow2VolumeStore {
    /// Opens (creating it if needed) the store's directory. Daemons serving its volumes
    /// are found through their pid files on use: opening adopts them.
    pub fn open(dir: &Path) -> Result<Qcow2VolumeStore> {
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating volume dir", e))?;
        set_mode(dir, 0o711)?;
        let dir = dir
            .canonicalize()
            .map_err(|e| io_err("resolving volume dir", e))?;
        // `<dir>/vol-0123456789abcdef0/nbd.sock` must fit in a socket address.
        if dir.as_os_str().len() + 31 > MAX_SOCKET_PATH {
            return Err(Error::Internal(format!(
                "volume dir {} is too long for socket paths",
                dir.display()
            )));
        }
        // Deletions that a crash interrupted: the volumes were already gone.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".del-") {
                    remove_tree(&e.path())?;
                }
            }
        }
        Ok(Qcow2VolumeStore {
            dir,
            locks: Mutex::new(HashMap::new()),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn vol_dir(&self, id: &VolumeId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    fn files(&self, id: &VolumeId) -> Files {
        Files {
            dir: self.vol_dir(id),
        }
    }

    /// The volume's disk file (whether or not the volume exists).
    pub fn disk_path(&self, id: &VolumeId) -> PathBuf {
        self.vol_dir(id).join("disk.qcow2")
    }

    fn key_path(&self, id: &VolumeId) -> PathBuf {
        self.vol_dir(id).join("key")
    }

    fn exists(&self, id: &VolumeId) -> bool {
        self.disk_path(id).exists()
    }

    fn lock(&self, id: &VolumeId) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.clone()).or_default().clone()
    }

    fn serving(&self, id: &VolumeId) -> Option<Serving> {
        let bytes = std::fs::read(self.vol_dir(id).join("serving.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn save_serving(&self, id: &VolumeId, s: &Serving) -> Result<()> {
        let dir = self.vol_dir(id);
        let tmp = dir.join(".serving.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(s).map_err(Error::internal)?)
            .map_err(|e| io_err("writing serving.json", e))?;
        std::fs::rename(&tmp, dir.join("serving.json"))
            .map_err(|e| io_err("writing serving.json", e))
    }

    /// Whether the volume is encrypted (it has a key).
    pub fn is_encrypted(&self, id: &VolumeId) -> bool {
        self.key_path(id).exists()
    }

    /// Serves the volume over NBD to `client_uid` (`None`: to this process's own uid),
    /// with `limits` applied, and returns where to connect. Idempotent: a volume already
    /// served to that client keeps its daemon and export (new limits take effect at
    /// once); a daemon that died is started again under the same export name; a volume
    /// served to another client is cut off from it first and served afresh.
    pub fn serve(
        &self,
        id: &VolumeId,
        limits: DiskLimits,
        client_uid: Option<u32>,
    ) -> Result<NbdExport> {
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        if !self.exists(id) {
            return Err(not_found(id));
        }
        let files = self.files(id);
        let live = daemon::pid(&files).is_some();
        let previous = self.serving(id);
        let export = match previous {
            Some(s) if s.client_uid == client_uid && live => {
                if s.limits != limits {
                    daemon::set_limits(&files, limits)?;
                    self.save_serving(
                        id,
                        &Serving {
                            limits,
                            ..s.clone()
                        },
                    )?;
                }
                grant(&files, client_uid)?;
                return Ok(self.export(id, s.export));
            }
            // The daemon died (or the host restarted): same client, same export name,
            // so the VM's NBD client reconnects by itself.
            Some(s) if s.client_uid == client_uid => s.export,
            _ => {
                if live {
                    tracing::info!(volume = %id, "serving to another client: restarting its daemon");
                }
                daemon::stop(&files)?;
                let nonce = random_bytes(6)?;
                format!("{id}-{}", hex(&nonce))
            }
        };
        self.save_serving(
            id,
            &Serving {
                export: export.clone(),
                client_uid,
                limits,
            },
        )?;
        let key = self.key_path(id);
        let disk = self.disk_path(id);
        let pid = daemon::start(
            &files,
            &Launch {
                disk: &disk,
                key: key.exists().then_some(key.as_path()),
                limits,
                export_name: &export,
            },
        )?;
        if let Err(e) = grant(&files, client_uid) {
            let _ = daemon::stop(&files);
            return Err(e);
        }
        tracing::info!(volume = %id, pid, ?client_uid, "volume served");
        Ok(self.export(id, export))
    }

    fn export(&self, id: &VolumeId, name: String) -> NbdExport {
        NbdExport {
            socket: self.files(id).nbd(),
            name,
        }
    }

    /// Stops serving the volume: its daemon exits (flushing the disk) and its sockets
    /// go. Idempotent; an unknown volume is not an error.
    pub fn unserve(&self, id: &VolumeId) -> Result<()> {
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.unserve_locked(id)
    }

    fn unserve_locked(&self, id: &VolumeId) -> Result<()> {
        if !self.vol_dir(id).exists() {
            return Ok(());
        }
        daemon::stop(&self.files(id))?;
        match std::fs::remove_file(self.vol_dir(id).join("serving.json")) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing serving.json", e)),
        }
    }

    /// Where the volume is served now, if a daemon serves it.
    pub fn served(&self, id: &VolumeId) -> Option<NbdExport> {
        daemon::pid(&self.files(id))?;
        self.serving(id).map(|s| self.export(id, s.export))
    }

    /// The pid of the daemon serving the volume, if any.
    pub fn daemon_pid(&self, id: &VolumeId) -> Option<u32> {
        daemon::pid(&self.files(id))
    }

    /// The daemon's QMP socket (root only), for snapshots and diagnostics; the node
    /// names are in [`super::daemon`].
    pub fn qmp_socket(&self, id: &VolumeId) -> PathBuf {
        self.files(id).qmp()
    }

    /// Every volume a daemon serves now (to find daemons no VM needs after a restart).
    pub fn serving_volumes(&self) -> Vec<VolumeId> {
        self.list()
            .into_iter()
            .filter(|id| self.daemon_pid(id).is_some())
            .collect()
    }
}

/// Hands the NBD socket to the client's uid, alone (0600): connecting needs write
/// permission, so no other VM's uid can reach the volume. The QMP socket stays root's.
fn grant(files: &Files, client_uid: Option<u32>) -> Result<()> {
    if let Some(uid) = client_uid {
        std::os::unix::fs::chown(files.nbd(), Some(uid), None)
            .map_err(|e| io_err("handing nbd.sock to the VM", e))?;
    }
    set_mode(&files.nbd(), 0o600)?;
    set_mode(&files.qmp(), 0o600)
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err(&format!("chmod {}", path.display()), e))
}

/// Removes a directory tree; a missing one is fine. A key inside is overwritten first:
/// without its key an encrypted disk is noise, so the key's blocks should not linger.
fn remove_tree(path: &Path) -> Result<()> {
    let key = path.join("key");
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&key) {
        use std::io::Write;
        let mut f = f;
        let _ = f
            .write_all(&[0u8; KEY_BYTES * 2])
            .and_then(|_| f.sync_all());
    }
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&format!("removing {}", path.display()), e)),
    }
}

/// Flushes a directory's entries (a rename into it) to disk.
fn sync_dir(path: &Path) {
    if let Ok(d) = std::fs::File::open(path) {
        let _ = d.sync_all();
    }
}

impl VolumeStore for Qcow2VolumeStore {
    fn kind(&self) -> &'static str {
        "qcow2"
    }

    fn create(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        source: Option<&SnapshotId>,
    ) -> Result<()> {
        check_size(size_bytes)?;
        if let Some(snap) = source {
            return Err(Error::Unsupported(format!(
                "volumes from snapshots ({snap})"
            )));
        }
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.exists(id) {
            return Ok(());
        }
        let tmp = self.dir.join(format!(".tmp-{id}"));
        remove_tree(&tmp)?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| io_err("creating volume", e))?;
        let key = tmp.join("key");
        if encrypted {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key)
                .map_err(|e| io_err("creating key", e))?;
            use std::io::Write;
            f.write_all(hex(&random_bytes(KEY_BYTES)?).as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| io_err("writing key", e))?;
        }
        let disk = tmp.join("disk.qcow2");
        img::create(&disk, size_bytes, encrypted.then_some(key.as_path()))?;
        set_mode(&disk, 0o600)?;
        if let Ok(f) = std::fs::File::open(&disk) {
            let _ = f.sync_all();
        }
        set_mode(&tmp, 0o711)?;
        std::fs::rename(&tmp, self.vol_dir(id)).map_err(|e| io_err("placing volume", e))?;
        sync_dir(&self.dir);
        tracing::info!(volume = %id, size_bytes, encrypted, "volume created");
        Ok(())
    }

    fn info(&self, id: &VolumeId) -> Option<VolumeInfo> {
        let disk = self.disk_path(id);
        if !disk.exists() {
            return None;
        }
        img::info(&disk)
    }

    /// Grows offline with `qemu-img resize`, or, while a daemon serves the volume,
    /// through the daemon (which has the disk open). A VM's QEMU learns the new size
    /// when the QEMU driver refreshes the disk (see `Hypervisor::attach_disk`).
    fn grow(&self, id: &VolumeId, size_bytes: u64) -> Result<()> {
        check_size(size_bytes)?;
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let info = self.info(id).ok_or_else(|| not_found(id))?;
        if size_bytes < info.size_bytes {
            return Err(shrink_refused(id, info.size_bytes, size_bytes));
        }
        if size_bytes == info.size_bytes {
            return Ok(());
        }
        let files = self.files(id);
        match (daemon::pid(&files), self.serving(id)) {
            (Some(_), Some(s)) => daemon::resize(&files, &s.export, size_bytes)?,
            _ => {
                let key = self.key_path(id);
                img::resize(
                    &self.disk_path(id),
                    size_bytes,
                    key.exists().then_some(key.as_path()),
                )?
            }
        }
        tracing::info!(volume = %id, size_bytes, "volume grown");
        Ok(())
    }

    fn delete(&self, id: &VolumeId) -> Result<()> {
        let lock = self.lock(id);
        {
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            remove_tree(&self.dir.join(format!(".tmp-{id}")))?;
            if self.vol_dir(id).exists() {
                self.unserve_locked(id)?;
                // Gone in one step, then removed at leisure (resumed by `open`).
                let doomed = self
                    .dir
                    .join(format!(".del-{id}-{}", hex(&random_bytes(4)?)));
                std::fs::rename(self.vol_dir(id), &doomed)
                    .map_err(|e| io_err("removing volume", e))?;
                sync_dir(&self.dir);
                remove_tree(&doomed)?;
                tracing::info!(volume = %id, "volume deleted");
            }
        }
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }

    fn list(&self) -> Vec<VolumeId> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return vec![];
        };
        let mut ids: Vec<VolumeId> = entries
            .filter_map(|e| VolumeId::parse_str(e.ok()?.file_name().to_str()?))
            .filter(|id| self.exists(id))
            .collect();
        ids.sort();
        ids
    }

    fn snapshot(&self, _id: &VolumeId, snap: &SnapshotId) -> Result<SnapshotInfo> {
        Err(Error::Unsupported(format!("snapshots ({snap})")))
    }

    fn copy_snapshot(&self, from: &SnapshotId, _to: &SnapshotId, _e: bool) -> Result<SnapshotInfo> {
        Err(Error::Unsupported(format!("snapshots ({from})")))
    }

    fn delete_snapshot(&self, _snap: &SnapshotId) -> Result<()> {
        Ok(())
    }

    fn snapshot_info(&self, _snap: &SnapshotId) -> Option<SnapshotInfo> {
        None
    }

    fn list_snapshots(&self) -> Vec<SnapshotId> {
        vec![]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::ResourceId;

    #[test]
    fn export_uris() {
        let e = NbdExport {
            socket: PathBuf::from("/v/vol-1/nbd.sock"),
            name: "vol-1-abc".into(),
        };
        assert_eq!(e.uri(), "nbd+unix:///vol-1-abc?socket=/v/vol-1/nbd.sock");
    }

    #[test]
    fn leftovers_of_crashes_are_not_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let id = VolumeId::generate();
        std::fs::create_dir_all(dir.path().join(format!(".tmp-{id}"))).unwrap();
        std::fs::create_dir_all(dir.path().join(format!(".del-{id}-00"))).unwrap();
        // A directory without a disk (never a complete volume) is not one either.
        std::fs::create_dir_all(dir.path().join(VolumeId::generate().as_str())).unwrap();
        let s = Qcow2VolumeStore::open(dir.path()).unwrap();
        assert!(s.list().is_empty());
        assert!(s.info(&id).is_none());
        assert!(!dir.path().join(format!(".del-{id}-00")).exists());
        assert!(matches!(
            s.serve(&id, DiskLimits::default(), None),
            Err(Error::NotFound { .. })
        ));
        s.unserve(&id).unwrap();
        s.delete(&id).unwrap();
        assert!(!dir.path().join(format!(".tmp-{id}")).exists());
    }
}
