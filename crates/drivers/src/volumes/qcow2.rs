//! The qcow2 volume store: volumes and snapshots made of immutable qcow2 *layers*,
//! served to VMs by `qemu-storage-daemon`.
//!
//! A volume is a chain of layers: a writable top layer over the read-only layers of
//! the snapshots it descends from. A snapshot freezes a volume's top layer as it is and
//! gives the volume a new, empty top over it, so taking one copies nothing and takes
//! milliseconds (two seconds for an encrypted volume: see `img.rs`), and each
//! snapshot holds exactly the blocks written since the one before. A volume made from
//! a snapshot is a new empty top over the snapshot's layer: usable at once, copy-on-write,
//! and independent of the snapshot from then on (layers are never written once frozen,
//! so deleting the snapshot only drops a name).
//!
//! Layout of the store's directory `<dir>`:
//!
//! | file | what |
//! |---|---|
//! | `layers/<layer>.qcow2` | a layer (root, 0600), sparse: making 1 GiB or 1 TiB takes milliseconds |
//! | `layers/<layer>.json` | its record: `{"parent": <layer> or null, "encrypted": bool}` |
//! | `layers/<layer>.key` | an encrypted layer's key (root, 0600): 32 random bytes, hex-encoded (QEMU wants a LUKS passphrase as UTF-8); it exists nowhere else. A volume's next layer gets a copy of its top's key; a volume made from a snapshot a new one |
//! | `snapshots/<snap-id>.json` | a snapshot: `{"layer", "size_bytes", "encrypted"}`, the layer it froze (copies of a snapshot name the same layer) |
//! | `images/<key>.json` | a machine image's root disk imported as a layer: `{"layer", "size_bytes", "source"}`, keyed by a hash of the file's canonical path, length and modification time. Root volumes are tops over it ([`VolumeStore::create_from_image`]); it is kept for later volumes of the image (removing records of images no longer used is left to the operator) |
//! | `<vol-id>/top` | the id of the volume's writable top layer: the volume exists when this file does |
//! | `<vol-id>/snapshot.next` | while a snapshot is taken: `{"snap", "old", "new"}` (see the crash story) |
//! | `<vol-id>/serving.json` | while served: the export name, the client uid and the limits |
//! | `<vol-id>/qsd.pid`, `qsd.sock`, `nbd.sock`, `qsd.log` | the serving daemon's (see [`super::daemon`]) |
//! | `.lock` | the store lock (an `flock`, see below) |
//!
//! A layer's id is 16 random hex digits (the hex digits of the volume id for a volume
//! migrated from the old layout). Chains are opened from the layer records, never from
//! the backing file names in the qcow2 headers (see `img.rs` and
//! [`super::daemon`]). Each snapshot adds a layer to its volume's chain for good, and
//! chains only grow: a read of a block the top does not hold looks it up layer by layer
//! down the chain, and serving opens every layer, so a volume snapshotted thousands of
//! times pays for it in read latency and open time. Merging layers that no snapshot
//! needs any longer (or a volume's layers once its snapshots are gone) is future work.
//!
//! Sizes: a volume's [`VolumeInfo::size_bytes`] is its top layer's virtual size, and
//! its `allocated_bytes` the top layer's allocation alone (what was written since its
//! last snapshot; the layers below are counted by the snapshots that hold them). A
//! snapshot's `stored_bytes` is its layer's allocation on the host, qcow2 metadata
//! (and an encrypted layer's 2 MiB LUKS header) included: the blocks that changed
//! since the volume's previous snapshot. Snapshots sharing a layer (copies) each count
//! it.
//!
//! Locking: one lock per volume in this process serializes the operations on a volume
//! (serve, grow, snapshot, delete). The store lock `.lock` is held shared by everything
//! that makes layers or records (from the first temporary file until a record or a
//! volume references what was made) and exclusively by the garbage collector, which
//! never waits for it: when it is busy, collection is left to the next operation that
//! lets go of it (or the next `open`).
//!
//! Garbage collection (after deleting a volume or a snapshot, and at `open`) is mark and
//! sweep: a layer is live when it is a volume's top, a snapshot's layer, an imported
//! image's layer, either layer of a pending snapshot (`snapshot.next`), or the parent of
//! a live layer; every other
//! layer's files go (its key overwritten first), and so do temporary files. A record it
//! cannot read stops it without removing anything.
//!
//! ## Crash story
//!
//! Everything is made under a temporary name and renamed into place: a layer's key and
//! record, then its `.qcow2` last (a layer exists when its `.qcow2` does); a record, a
//! `top`, an intent as `.tmp-<name>` then renamed; a new volume's directory as
//! `<dir>/.tmp-<vol-id>/` (holding `top`, whose layer is made first). A crash leaves
//! either the whole thing or nothing visible, plus unreferenced layers and temporary
//! files that the next collection removes. A volume is removed by renaming its
//! directory to `<dir>/.del-<vol-id>-<random>/` first (finished by the next `open`).
//!
//! A volume of an image ([`VolumeStore::create_from_image`]) imports the image first
//! when the store has no record of it: its layer is made (`image-layer-made`), then
//! `images/<key>.json` written (`image-recorded`), then the volume's top made over it
//! as for any new volume. A crash before the record leaves an unreferenced layer for
//! the collector (the next attempt imports again); after it, the import is done.
//!
//! A snapshot S of volume V whose top is layer T goes in steps, each followed by a
//! crash point (`strato_common::crash::point`, see `STRATO_CRASH_AT`):
//!
//! 1. write `V/snapshot.next` = {S, old T, new N} (N a fresh id) — `snapshot-intent-written`
//! 2. make layer N: empty, parent T, V's size and key — `snapshot-layer-made`
//! 3. if a daemon serves V, put N on top of its chain over QMP (`blockdev-add` of N,
//!    `snapshot-overlay-added`, then `blockdev-snapshot`; see [`super::daemon`]); from
//!    here the guest writes N and T is frozen — `snapshot-switched`
//! 4. write `snapshots/S.json` naming T — `snapshot-recorded`
//! 5. write `V/top` = N — `snapshot-top-moved`
//! 6. remove `V/snapshot.next`.
//!
//! Recovery rolls forward, at `open` and before any other operation on V: when N's
//! `.qcow2` was never made, the intent is dropped (S does not exist; the caller, who got
//! no answer, asks again); otherwise steps 3 to 6 are done again, each skipped when
//! already done (a daemon whose chain has N on top already is left alone; a daemon that
//! died needs nothing: it will be started over N). Rolling forward is always right: N
//! starts empty over T, so V reads the same whichever is its top, and everything the
//! guest wrote before the switch is in T. S is point-in-time at step 3.
//!
//! A volume directory of the old layout (`disk.qcow2` and `key` in it, no `top`) is
//! migrated at `open`: the disk becomes the layer named by the volume id's hex digits
//! (record first, then the key, then the disk renamed into `layers/`, then `top`
//! written), resumable at any step. A daemon started before the migration keeps
//! serving the same file (renaming does not disturb an open file).
//!
//! Directories are mode 0711 (the store and volume directories: a VM's QEMU, which runs
//! as a uid of its own, must walk to `nbd.sock`, but may not list or read anything) or
//! 0700 (`layers/`, `snapshots/`: only the daemons, which run as root, open layers).
//! Only the uid a volume is served to (and root) may connect to its `nbd.sock` (a
//! socket connect needs write permission).
//!
//! Each serving has an export name of its own (`<vol-id>-<random>`), kept for as long
//! as the volume is served to the same client, also across a restart of the daemon
//! (so the client's NBD connection simply reconnects) and across snapshots (the client
//! stays connected). A new serving (after [`Qcow2VolumeStore::unserve`], or for another
//! client) gets a new name, so a client that was cut off (a VM whose guest never
//! released a force-detached disk) can never reconnect to the volume once it is
//! attached elsewhere.

use super::daemon::{self, Files, Launch};
use super::layers::{self, ChainLayer, Content, Key, Layers, Meta, StoreLock};
use super::{
    check_size, img, not_found, shrink_refused, snapshot_not_found, SnapshotInfo, VolumeInfo,
    VolumeStore,
};
use crate::proc::{hex, io_err, random_bytes};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use strato_agent_api::DiskLimits;
use strato_common::crash;
use strato_common::{Error, Result, SnapshotId, VolumeId};

/// The longest path a Unix socket may have (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;
/// A volume directory's file naming its top layer.
const TOP: &str = "top";
/// A volume directory's snapshot intent.
const INTENT: &str = "snapshot.next";

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

/// A snapshot being taken (`<vol-id>/snapshot.next`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Intent {
    snap: SnapshotId,
    /// The volume's top when the snapshot began: the layer the snapshot freezes.
    old: String,
    /// The volume's next top.
    new: String,
}

/// A snapshot (`snapshots/<snap-id>.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct SnapRecord {
    /// The layer it froze (the top of its chain).
    layer: String,
    /// The volume's size when it was taken.
    size_bytes: u64,
    /// Whether every layer of its chain is encrypted.
    encrypted: bool,
}

/// A machine image's root disk imported into the store (`images/<key>.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct ImageRecord {
    /// The layer holding the image's data.
    layer: String,
    /// The image's virtual size.
    size_bytes: u64,
    /// The file it was imported from (for operators).
    source: PathBuf,
}

/// The key of an image file: its canonical path, length and modification time, hashed
/// (so a file replaced or rewritten in place is imported again), and that path.
fn image_key(image: &Path) -> Result<(String, PathBuf)> {
    use sha2::{Digest, Sha256};
    let path = image.canonicalize().map_err(|e| Error::NotFound {
        kind: strato_common::ResourceKind::Image,
        id: format!("{} ({e})", image.display()),
    })?;
    let meta = std::fs::metadata(&path).map_err(|e| io_err("reading an image", e))?;
    let mut h = Sha256::new();
    h.update(path.as_os_str().as_encoded_bytes());
    h.update(meta.len().to_le_bytes());
    h.update(meta.mtime().to_le_bytes());
    h.update(meta.mtime_nsec().to_le_bytes());
    Ok((hex(&h.finalize()[..12]), path))
}

/// The qcow2 store (see the module documentation).
pub struct Qcow2VolumeStore {
    dir: PathBuf,
    layers: Layers,
    /// The store lock (shared: making layers or records; exclusive: collecting).
    store_lock: StoreLock,
    /// A collection found the store lock busy: the next one to let go of it collects.
    gc_wanted: AtomicBool,
    /// One lock per volume: operations on one volume are serialized (a serve racing a
    /// delete or a snapshot…), operations on different volumes are not.
    locks: Mutex<HashMap<VolumeId, Arc<Mutex<()>>>>,
}

impl std::fmt::Debug for Qcow2VolumeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2VolumeStore")
            .field("dir", &self.dir)
            .finish()
    }
}

/// The store lock held shared; letting go of it runs a collection that was put off.
struct Making<'a> {
    store: &'a Qcow2VolumeStore,
    lock: Option<std::fs::File>,
}

impl Drop for Making<'_> {
    fn drop(&mut self) {
        drop(self.lock.take());
        if self.store.gc_wanted.load(Ordering::SeqCst) {
            if let Err(e) = self.store.gc() {
                tracing::warn!(error = %e, "volume store: collecting layers failed");
            }
        }
    }
}

/// The layer id of a volume migrated from the one-file layout: its id's hex digits.
fn migrated_layer(id: &VolumeId) -> String {
    id.as_str().trim_start_matches("vol-").to_string()
}

impl Qcow2VolumeStore {
    /// Opens (creating it if needed) the store's directory: finishes interrupted
    /// deletions, migrates volumes of the one-file layout, rolls interrupted snapshots
    /// forward and collects unreferenced layers. Daemons serving its volumes are found
    /// through their pid files on use: opening adopts them.
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
        for sub in ["layers", "snapshots", "images"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|e| io_err(&format!("creating {sub}"), e))?;
            set_mode(&p, 0o700)?;
        }
        // Deletions that a crash interrupted: the volumes were already gone.
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".del-") {
                    remove_tree(&e.path())?;
                }
            }
        }
        let store = Qcow2VolumeStore {
            layers: Layers::new(dir.join("layers")),
            store_lock: StoreLock::new(dir.join(".lock")),
            gc_wanted: AtomicBool::new(false),
            dir,
            locks: Mutex::new(HashMap::new()),
        };
        store.migrate_all()?;
        for id in store.list() {
            let lock = store.lock(&id);
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            // A volume whose snapshot cannot be finished now (its daemon does not
            // answer) is retried before its next operation; the others open.
            if let Err(e) = store.recover(&id) {
                tracing::error!(volume = %id, error = %e, "could not finish an interrupted snapshot");
            }
        }
        if let Err(e) = store.gc() {
            tracing::error!(error = %e, "volume store: collecting layers failed");
        }
        Ok(store)
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory holding every layer (`<dir>/layers`).
    pub fn layers_dir(&self) -> &Path {
        self.layers.dir()
    }

    fn snapshots_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }

    fn images_dir(&self) -> PathBuf {
        self.dir.join("images")
    }

    /// Every imported image's record.
    fn image_records(&self) -> Result<Vec<ImageRecord>> {
        let mut out = vec![];
        for (name, path) in record_files(&self.images_dir(), "images")? {
            let bytes = std::fs::read(path).map_err(|e| io_err("reading an image", e))?;
            out.push(
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Internal(format!("image record {name}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// The layer holding a machine image's root disk, imported now if this file was
    /// never imported. The caller holds the store lock shared (so the new layer is not
    /// collected before a volume names it).
    fn image_base(&self, image: &Path) -> Result<ImageRecord> {
        let (key, source) = image_key(image)?;
        let path = self.images_dir().join(format!("{key}.json"));
        if let Ok(bytes) = std::fs::read(&path) {
            if let Ok(rec) = serde_json::from_slice::<ImageRecord>(&bytes) {
                if self.layers.exists(&rec.layer) {
                    return Ok(rec);
                }
            }
        }
        let layer = layers::new_id()?;
        let started = std::time::Instant::now();
        self.layers.make(
            &layer,
            &Meta {
                parent: None,
                encrypted: false,
            },
            Key::None,
            Content::Import { path: &source },
        )?;
        crash::point("image-layer-made");
        let size_bytes = img::info(&self.layers.path(&layer))
            .ok_or_else(|| Error::Internal(format!("layer {layer} cannot be read")))?
            .size_bytes;
        let rec = ImageRecord {
            layer,
            size_bytes,
            source,
        };
        layers::write_atomic(&path, &serde_json::to_vec(&rec).map_err(Error::internal)?)?;
        crash::point("image-recorded");
        tracing::info!(image = %rec.source.display(), layer = %rec.layer, size_bytes, elapsed = ?started.elapsed(), "machine image imported into the volume store");
        Ok(rec)
    }

    /// Makes volume `id` as a new top layer over what `base` names (its layer, its
    /// size and what it is, for messages), or over nothing. `base` runs once the store
    /// lock is held shared, so what it makes is not collected before the volume names
    /// it.
    fn create_over(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        base: impl FnOnce(&Self) -> Result<Option<(String, u64, String)>>,
    ) -> Result<()> {
        check_size(size_bytes)?;
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.exists(id) {
            return Ok(());
        }
        let tmp = self.dir.join(format!(".tmp-{id}"));
        remove_tree(&tmp)?;
        let _m = self.making()?;
        let base = base(self)?;
        let (parent, encrypted) = match &base {
            None => (None, encrypted),
            Some((layer, base_size, what)) => {
                if size_bytes < *base_size {
                    return Err(Error::InvalidParameterValue(format!(
                        "a volume of {size_bytes} bytes cannot hold {what} of {base_size} bytes"
                    )));
                }
                let any = self.layers.encryption(layer)?.1;
                (Some(layer.clone()), encrypted || any)
            }
        };
        let layer = layers::new_id()?;
        self.layers.make(
            &layer,
            &Meta { parent, encrypted },
            if encrypted { Key::New } else { Key::None },
            Content::Empty { size_bytes },
        )?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmp)
            .map_err(|e| io_err("creating volume", e))?;
        layers::write_new(&tmp.join(TOP), layer.as_bytes())?;
        set_mode(&tmp, 0o711)?;
        std::fs::rename(&tmp, self.vol_dir(id)).map_err(|e| io_err("placing volume", e))?;
        layers::sync_dir(&self.dir);
        let source = base.map(|b| b.2);
        tracing::info!(volume = %id, size_bytes, encrypted, source = ?source, layer, "volume created");
        Ok(())
    }

    fn vol_dir(&self, id: &VolumeId) -> PathBuf {
        self.dir.join(id.as_str())
    }

    fn files(&self, id: &VolumeId) -> Files {
        Files {
            dir: self.vol_dir(id),
        }
    }

    /// The volume's top layer, if the volume exists.
    fn top(&self, id: &VolumeId) -> Option<String> {
        let s = std::fs::read_to_string(self.vol_dir(id).join(TOP)).ok()?;
        let s = s.trim();
        layers::valid_id(s).then(|| s.to_string())
    }

    /// The file of the volume's writable top layer (a path that does not exist for a
    /// volume that does not). An encrypted layer's key is beside it (`.key`).
    pub fn disk_path(&self, id: &VolumeId) -> PathBuf {
        match self.top(id) {
            Some(top) => self.layers.path(&top),
            None => self.vol_dir(id).join(TOP),
        }
    }

    /// The files of the volume's whole chain of layers, its top first (empty for a
    /// volume that does not exist).
    pub fn chain_paths(&self, id: &VolumeId) -> Vec<PathBuf> {
        self.top(id)
            .and_then(|t| self.layers.chain(&t).ok())
            .map(|c| c.into_iter().map(|l| l.path).collect())
            .unwrap_or_default()
    }

    fn exists(&self, id: &VolumeId) -> bool {
        self.top(id).is_some()
    }

    fn lock(&self, id: &VolumeId) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.clone()).or_default().clone()
    }

    /// Takes the store lock shared, for making layers or records.
    fn making(&self) -> Result<Making<'_>> {
        Ok(Making {
            store: self,
            lock: Some(self.store_lock.shared()?),
        })
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

    /// Whether the volume is encrypted (what is written to it is: its top layer has a
    /// key).
    pub fn is_encrypted(&self, id: &VolumeId) -> bool {
        self.top(id)
            .and_then(|t| self.layers.meta(&t).ok())
            .is_some_and(|m| m.encrypted)
    }

    fn intent(&self, id: &VolumeId) -> Result<Option<Intent>> {
        match std::fs::read(self.vol_dir(id).join(INTENT)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Internal(format!("volume {id}'s {INTENT}: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&format!("reading {id}'s {INTENT}"), e)),
        }
    }

    fn drop_intent(&self, id: &VolumeId) -> Result<()> {
        match std::fs::remove_file(self.vol_dir(id).join(INTENT)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&format!("removing {id}'s {INTENT}"), e)),
        }
        layers::sync_dir(&self.vol_dir(id));
        Ok(())
    }

    fn record_path(&self, snap: &SnapshotId) -> PathBuf {
        self.snapshots_dir().join(format!("{snap}.json"))
    }

    fn record(&self, snap: &SnapshotId) -> Result<Option<SnapRecord>> {
        match std::fs::read(self.record_path(snap)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Internal(format!("snapshot {snap}'s record: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&format!("reading snapshot {snap}"), e)),
        }
    }

    fn write_record(&self, snap: &SnapshotId, rec: &SnapRecord) -> Result<()> {
        layers::write_atomic(
            &self.record_path(snap),
            &serde_json::to_vec(rec).map_err(Error::internal)?,
        )
    }

    fn info_of(&self, rec: &SnapRecord) -> SnapshotInfo {
        let stored_bytes = std::fs::metadata(self.layers.path(&rec.layer))
            .map(|m| m.blocks() * 512)
            .unwrap_or(0);
        SnapshotInfo {
            size_bytes: rec.size_bytes,
            stored_bytes,
            encrypted: rec.encrypted,
        }
    }

    /// A new record for a snapshot freezing `layer`.
    fn new_record(&self, layer: &str) -> Result<SnapRecord> {
        let size_bytes = img::info(&self.layers.path(layer))
            .ok_or_else(|| Error::Internal(format!("layer {layer} cannot be read")))?
            .size_bytes;
        Ok(SnapRecord {
            layer: layer.to_string(),
            size_bytes,
            encrypted: self.layers.encryption(layer)?.0,
        })
    }

    fn chain_layer(&self, id: &str) -> Result<ChainLayer> {
        let meta = self.layers.meta(id)?;
        Ok(ChainLayer {
            id: id.to_string(),
            path: self.layers.path(id),
            key: meta.encrypted.then(|| self.layers.key(id)),
        })
    }

    /// Finishes a snapshot that a crash (or a failure) interrupted: see the module
    /// docs. The caller holds the volume's lock.
    fn recover(&self, id: &VolumeId) -> Result<()> {
        let Some(intent) = self.intent(id)? else {
            return Ok(());
        };
        let _m = self.making()?;
        if !self.layers.exists(&intent.new) {
            self.layers.discard_tmp(&intent.new);
            self.drop_intent(id)?;
            tracing::warn!(volume = %id, snapshot = %intent.snap, "an interrupted snapshot was never made: dropped");
            return Ok(());
        }
        tracing::info!(volume = %id, snapshot = %intent.snap, "finishing an interrupted snapshot");
        self.finish_snapshot(id, &intent)
    }

    /// Steps 3 to 6 of a snapshot (see the module docs), each skipped when done.
    fn finish_snapshot(&self, id: &VolumeId, intent: &Intent) -> Result<()> {
        let top = self.top(id);
        if top.as_deref() != Some(intent.old.as_str()) && top.as_deref() != Some(&intent.new) {
            return Err(Error::Internal(format!(
                "volume {id}: {INTENT} names layers {} and {}, but its top is {top:?}",
                intent.old, intent.new
            )));
        }
        let files = self.files(id);
        if daemon::pid(&files).is_some() {
            let new = self.chain_layer(&intent.new)?;
            if daemon::switch_top(&files, &intent.old, &new)? {
                tracing::info!(volume = %id, layer = %intent.new, "serving daemon switched to a new top layer");
            }
            crash::point("snapshot-switched");
        }
        // The daemon flushed the old top before leaving it; make sure it is on disk.
        if let Ok(f) = std::fs::File::open(self.layers.path(&intent.old)) {
            let _ = f.sync_all();
        }
        if self.record(&intent.snap)?.is_none() {
            let rec = self.new_record(&intent.old)?;
            self.write_record(&intent.snap, &rec)?;
            crash::point("snapshot-recorded");
        }
        layers::write_atomic(&self.vol_dir(id).join(TOP), intent.new.as_bytes())?;
        crash::point("snapshot-top-moved");
        self.drop_intent(id)
    }

    /// Moves every volume directory of the one-file layout to layers (see the module
    /// docs). Idempotent and resumable.
    fn migrate_all(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Ok(());
        };
        let ids: Vec<VolumeId> = entries
            .filter_map(|e| VolumeId::parse_str(e.ok()?.file_name().to_str()?))
            .collect();
        for id in ids {
            if self.exists(&id) {
                continue;
            }
            let layer = migrated_layer(&id);
            let dir = self.vol_dir(&id);
            let (disk, key) = (dir.join("disk.qcow2"), dir.join("key"));
            if !disk.exists() && !self.layers.exists(&layer) {
                continue; // never a complete volume
            }
            let _m = self.making()?;
            if disk.exists() {
                let meta = Meta {
                    parent: None,
                    encrypted: key.exists() || self.layers.key(&layer).exists(),
                };
                self.layers.write_meta(&layer, &meta)?;
                if key.exists() {
                    std::fs::rename(&key, self.layers.key(&layer))
                        .map_err(|e| io_err("migrating a volume's key", e))?;
                }
                std::fs::rename(&disk, self.layers.path(&layer))
                    .map_err(|e| io_err("migrating a volume's disk", e))?;
                layers::sync_dir(self.layers.dir());
            }
            layers::write_atomic(&dir.join(TOP), layer.as_bytes())?;
            tracing::info!(volume = %id, layer, "volume migrated to layers");
        }
        Ok(())
    }

    /// Collects unreferenced layers (see the module docs); puts it off when the store
    /// lock is busy.
    fn gc(&self) -> Result<()> {
        let Some(_ex) = self.store_lock.try_exclusive()? else {
            self.gc_wanted.store(true, Ordering::SeqCst);
            return Ok(());
        };
        self.gc_wanted.store(false, Ordering::SeqCst);
        let mut roots: Vec<String> = vec![];
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_err("listing volumes", e))?;
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().and_then(VolumeId::parse_str) else {
                continue;
            };
            match self.top(&id) {
                Some(top) => roots.push(top),
                // Half migrated (only `open` finishes it).
                None => roots.push(migrated_layer(&id)),
            }
            if let Some(i) = self.intent(&id)? {
                roots.push(i.old);
                roots.push(i.new);
            }
        }
        for (name, _) in record_files(&self.snapshots_dir(), "snapshots")? {
            let Some(snap) = SnapshotId::parse_str(&name) else {
                continue;
            };
            if let Some(rec) = self.record(&snap)? {
                roots.push(rec.layer);
            }
        }
        roots.extend(self.image_records()?.into_iter().map(|r| r.layer));
        let mut live = HashSet::new();
        while let Some(layer) = roots.pop() {
            if !layers::valid_id(&layer) || !live.insert(layer.clone()) {
                continue;
            }
            if !self.layers.exists(&layer) {
                continue; // not made (yet), or not a layer at all
            }
            if let Some(parent) = self.layers.meta(&layer)?.parent {
                roots.push(parent);
            }
        }
        let gone = self.layers.sweep(&live)?;
        if gone > 0 {
            tracing::info!(layers = gone, "volume store: unreferenced layers removed");
        }
        Ok(())
    }

    /// Collects after a removal: a failure is logged (the removal is done; the next
    /// collection retries).
    fn gc_after_removal(&self) {
        if let Err(e) = self.gc() {
            tracing::error!(error = %e, "volume store: collecting layers failed");
        }
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
        self.recover(id)?;
        let top = self.top(id).ok_or_else(|| not_found(id))?;
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
        let chain = self.layers.chain(&top)?;
        let pid = daemon::start(
            &files,
            &Launch {
                chain: &chain,
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

    /// The daemon's QMP socket (root only), for diagnostics; the node names are in
    /// [`super::daemon`].
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
/// The `<name>.json` records of a records directory (`snapshots/`, `images/`), by
/// name without the extension. Leftovers of records never placed (`.tmp-…`) are
/// removed: only the collector, which holds the store lock exclusively, lists them.
fn record_files(dir: &Path, what: &str) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(&format!("listing {what}"), e))?;
    let mut out = vec![];
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            layers::remove_file(&e.path()); // a record never placed
            continue;
        }
        if let Some(stem) = name.strip_suffix(".json") {
            out.push((stem.to_string(), e.path()));
        }
    }
    Ok(out)
}

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

/// Removes a directory tree; a missing one is fine. A key inside (a volume directory of
/// the one-file layout) is overwritten first.
fn remove_tree(path: &Path) -> Result<()> {
    layers::remove_file(&path.join("key"));
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&format!("removing {}", path.display()), e)),
    }
}

impl VolumeStore for Qcow2VolumeStore {
    fn kind(&self) -> &'static str {
        "qcow2"
    }

    /// A new volume is a new top layer: without a source, with no parent; from a
    /// snapshot, over the snapshot's layer (with the size asked for, which may be
    /// larger). It is encrypted with a new key when asked, or when any layer of the
    /// snapshot's chain is.
    fn create(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        source: Option<&SnapshotId>,
    ) -> Result<()> {
        self.create_over(id, size_bytes, encrypted, |store| match source {
            None => Ok(None),
            Some(snap) => {
                let rec = store
                    .record(snap)?
                    .ok_or_else(|| snapshot_not_found(snap))?;
                Ok(Some((
                    rec.layer,
                    rec.size_bytes,
                    format!("snapshot {snap}"),
                )))
            }
        })
    }

    /// A volume of an image is a new top over the image's imported layer.
    fn create_from_image(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        image: &Path,
    ) -> Result<()> {
        self.create_over(id, size_bytes, encrypted, |store| {
            let rec = store.image_base(image)?;
            Ok(Some((
                rec.layer,
                rec.size_bytes,
                format!("image {}", rec.source.display()),
            )))
        })
    }

    /// The top layer's virtual size, and its allocation alone (see the module docs).
    fn info(&self, id: &VolumeId) -> Option<VolumeInfo> {
        img::info(&self.layers.path(&self.top(id)?))
    }

    /// Grows offline with `qemu-img resize` of the top layer (the chain opened from the
    /// records), or, while a daemon serves the volume, through the daemon (which has
    /// the chain open). A VM's QEMU learns the new size when the QEMU driver refreshes
    /// the disk (see `Hypervisor::attach_disk`).
    fn grow(&self, id: &VolumeId, size_bytes: u64) -> Result<()> {
        check_size(size_bytes)?;
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.recover(id)?;
        let top = self.top(id).ok_or_else(|| not_found(id))?;
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
            _ => img::resize(&self.layers.chain(&top)?, size_bytes)?,
        }
        tracing::info!(volume = %id, size_bytes, "volume grown");
        Ok(())
    }

    /// Removes the volume's directory (its daemon stopped first), then collects the
    /// layers nothing else needs.
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
                layers::sync_dir(&self.dir);
                remove_tree(&doomed)?;
                tracing::info!(volume = %id, "volume deleted");
            }
        }
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.gc_after_removal();
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

    /// Freezes the volume's top layer and gives the volume a new one (see the module
    /// docs for the steps and their crash story).
    fn snapshot(&self, id: &VolumeId, snap: &SnapshotId) -> Result<SnapshotInfo> {
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        self.recover(id)?;
        if let Some(rec) = self.record(snap)? {
            return Ok(self.info_of(&rec));
        }
        let old = self.top(id).ok_or_else(|| not_found(id))?;
        let _m = self.making()?;
        let meta = self.layers.meta(&old)?;
        let size_bytes = img::info(&self.layers.path(&old))
            .ok_or_else(|| Error::Internal(format!("volume {id}'s layer cannot be read")))?
            .size_bytes;
        let intent = Intent {
            snap: snap.clone(),
            old: old.clone(),
            new: layers::new_id()?,
        };
        layers::write_atomic(
            &self.vol_dir(id).join(INTENT),
            &serde_json::to_vec(&intent).map_err(Error::internal)?,
        )?;
        crash::point("snapshot-intent-written");
        let key = self.layers.key(&old);
        let made = self.layers.make(
            &intent.new,
            &Meta {
                parent: Some(old),
                encrypted: meta.encrypted,
            },
            if meta.encrypted {
                Key::Copy(&key)
            } else {
                Key::None
            },
            Content::Empty { size_bytes },
        );
        if let Err(e) = made {
            // Nothing was switched: the snapshot simply was not taken.
            self.drop_intent(id)?;
            return Err(e);
        }
        crash::point("snapshot-layer-made");
        self.finish_snapshot(id, &intent)?;
        let rec = self.record(snap)?.ok_or_else(|| snapshot_not_found(snap))?;
        tracing::info!(volume = %id, snapshot = %snap, layer = %rec.layer, "snapshot taken");
        Ok(self.info_of(&rec))
    }

    /// A copy names the same layer; an encrypted copy of a snapshot whose chain is not
    /// all encrypted is the chain flattened into one new encrypted layer (`qemu-img
    /// convert`: time in proportion to the data).
    fn copy_snapshot(
        &self,
        from: &SnapshotId,
        to: &SnapshotId,
        encrypted: bool,
    ) -> Result<SnapshotInfo> {
        let _m = self.making()?;
        if let Some(rec) = self.record(to)? {
            return Ok(self.info_of(&rec));
        }
        let rec = self.record(from)?.ok_or_else(|| snapshot_not_found(from))?;
        let copy = if !encrypted || rec.encrypted {
            rec
        } else {
            let layer = layers::new_id()?;
            let chain = self.layers.chain(&rec.layer)?;
            self.layers.make(
                &layer,
                &Meta {
                    parent: None,
                    encrypted: true,
                },
                Key::New,
                Content::Flatten { chain: &chain },
            )?;
            SnapRecord {
                layer,
                size_bytes: rec.size_bytes,
                encrypted: true,
            }
        };
        self.write_record(to, &copy)?;
        tracing::info!(from = %from, to = %to, encrypted, layer = %copy.layer, "snapshot copied");
        Ok(self.info_of(&copy))
    }

    /// One new layer without a parent holding the disk's data, then the record naming
    /// it (a crash in between leaves a layer the collector removes).
    fn import_snapshot(
        &self,
        snap: &SnapshotId,
        src: &Path,
        format: &str,
        size_bytes: u64,
        encrypted: bool,
        progress: &dyn Fn(u8),
    ) -> Result<SnapshotInfo> {
        let _m = self.making()?;
        if let Some(rec) = self.record(snap)? {
            return Ok(self.info_of(&rec));
        }
        let layer = layers::new_id()?;
        let started = std::time::Instant::now();
        self.layers.make(
            &layer,
            &Meta {
                parent: None,
                encrypted,
            },
            if encrypted { Key::New } else { Key::None },
            Content::Disk {
                path: src,
                format,
                progress,
            },
        )?;
        crash::point("import-layer-made");
        let rec = SnapRecord {
            layer,
            size_bytes,
            encrypted,
        };
        self.write_record(snap, &rec)?;
        tracing::info!(snapshot = %snap, src = %src.display(), format, layer = %rec.layer, elapsed = ?started.elapsed(), "disk image imported");
        Ok(self.info_of(&rec))
    }

    /// Removes the record, then collects the layers nothing else needs.
    fn delete_snapshot(&self, snap: &SnapshotId) -> Result<()> {
        match std::fs::remove_file(self.record_path(snap)) {
            Ok(()) => {
                layers::sync_dir(&self.snapshots_dir());
                tracing::info!(snapshot = %snap, "snapshot deleted");
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&format!("removing snapshot {snap}"), e)),
        }
        self.gc_after_removal();
        Ok(())
    }

    fn snapshot_info(&self, snap: &SnapshotId) -> Option<SnapshotInfo> {
        self.record(snap).ok().flatten().map(|r| self.info_of(&r))
    }

    fn list_snapshots(&self) -> Vec<SnapshotId> {
        let Ok(entries) = std::fs::read_dir(self.snapshots_dir()) else {
            return vec![];
        };
        let mut ids: Vec<SnapshotId> = entries
            .filter_map(|e| {
                let name = e.ok()?.file_name();
                SnapshotId::parse_str(name.to_str()?.strip_suffix(".json")?)
            })
            .collect();
        ids.sort();
        ids
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
        // A directory without a top (never a complete volume) is not one either.
        std::fs::create_dir_all(dir.path().join(VolumeId::generate().as_str())).unwrap();
        // Nor are layers nothing references, or half-made ones, or unplaced records.
        let layers = dir.path().join("layers");
        std::fs::create_dir_all(&layers).unwrap();
        for f in ["0a0a.qcow2", "0a0a.json", "0a0a.key", ".tmp-0b0b.qcow2"] {
            std::fs::write(layers.join(f), b"x").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("snapshots")).unwrap();
        std::fs::write(dir.path().join("snapshots/.tmp-snap-1.json"), b"{").unwrap();
        let s = Qcow2VolumeStore::open(dir.path()).unwrap();
        assert!(s.list().is_empty());
        assert!(s.list_snapshots().is_empty());
        assert!(s.info(&id).is_none());
        assert!(!dir.path().join(format!(".del-{id}-00")).exists());
        assert_eq!(std::fs::read_dir(&layers).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("snapshots"))
                .unwrap()
                .count(),
            0
        );
        assert!(matches!(
            s.serve(&id, DiskLimits::default(), None),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            s.snapshot(&id, &SnapshotId::generate()),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            s.copy_snapshot(&SnapshotId::generate(), &SnapshotId::generate(), true),
            Err(Error::NotFound { .. })
        ));
        s.delete_snapshot(&SnapshotId::generate()).unwrap();
        s.unserve(&id).unwrap();
        s.delete(&id).unwrap();
        assert!(!dir.path().join(format!(".tmp-{id}")).exists());
    }

    #[test]
    fn migrated_layers_are_named_after_the_volume() {
        let id = VolumeId::parse_str("vol-0123456789abcdef0").unwrap();
        let layer = migrated_layer(&id);
        assert_eq!(layer, "0123456789abcdef0");
        assert!(layers::valid_id(&layer));
    }
}
