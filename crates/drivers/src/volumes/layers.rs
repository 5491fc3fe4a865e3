//! Layers: the immutable qcow2 files that volumes and snapshots are made of (see
//! [`super::qcow2`] for the store's layout and crash story).
//!
//! A layer is `<store>/layers/<id>.qcow2` with its record `<id>.json` (its parent and
//! whether it is encrypted) and, when encrypted, its key `<id>.key`. Its id is lowercase
//! hex: 16 random digits, or the hex digits of a volume id for a volume migrated from
//! the one-file layout. A layer is written only while it is the top of exactly one
//! volume; once a snapshot freezes it, nothing writes it again, so volumes and
//! snapshots share layers freely.
//!
//! A layer is made under temporary names (`.tmp-<id>.*`) and renamed into place, its
//! key and record first and its `.qcow2` last: a layer whose `.qcow2` exists is
//! complete. Making layers holds the store lock shared; the garbage collector takes it
//! exclusively (and gives up at once when it cannot), so it never sees a layer half made
//! or made but not yet referenced.

use crate::proc::{hex, io_err, random_bytes};
use crate::volumes::img;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use strato_common::{Error, Result};

/// Bytes of key per encrypted layer (hex-encoded in its file: QEMU wants a LUKS
/// passphrase as UTF-8).
pub(crate) const KEY_BYTES: usize = 32;
/// Random bytes in a new layer's id.
const ID_BYTES: usize = 8;
/// The longest chain followed before giving up (a loop of parents is corruption).
const MAX_CHAIN: usize = 100_000;

/// A layer's record (`<id>.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Meta {
    /// The layer below it: what reads through where this one holds nothing.
    pub parent: Option<String>,
    /// Whether its data is LUKS-encrypted (with the key in `<id>.key`).
    pub encrypted: bool,
}

/// One layer of a chain, as QEMU opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChainLayer {
    pub id: String,
    pub path: PathBuf,
    /// The key file of an encrypted layer.
    pub key: Option<PathBuf>,
}

/// The key a new layer is encrypted with.
pub(crate) enum Key<'a> {
    /// Not encrypted.
    None,
    /// A new random key.
    New,
    /// The key in this file (a volume's next layer keeps the volume's key).
    Copy(&'a Path),
}

/// What a new layer holds.
pub(crate) enum Content<'a> {
    /// Nothing of its own (everything reads through to its parent, or as zeros), with
    /// this virtual size.
    Empty { size_bytes: u64 },
    /// The data of a whole chain (top first), copied into a layer without a parent.
    Flatten { chain: &'a [ChainLayer] },
    /// A copy of a disk image from outside the store (a machine image's root disk).
    Import { path: &'a Path },
    /// A copy of a disk image a user imports, of qemu-img format `format`, with its
    /// progress reported as it is converted.
    Disk {
        path: &'a Path,
        format: &'a str,
        progress: &'a dyn Fn(u8),
    },
}

/// A fresh random layer id.
pub(crate) fn new_id() -> Result<String> {
    Ok(hex(&random_bytes(ID_BYTES)?))
}

/// Whether `s` can be a layer id (so it can be part of a path and a node name).
pub(crate) fn valid_id(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The layers directory of a store.
#[derive(Debug)]
pub(crate) struct Layers {
    dir: PathBuf,
}

impl Layers {
    pub fn new(dir: PathBuf) -> Layers {
        Layers { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The layer's qcow2 file.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.qcow2"))
    }

    /// The layer's key file (it exists only for an encrypted layer).
    pub fn key(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.key"))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn tmp(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!(".tmp-{id}.{ext}"))
    }

    /// Writes the layer's record in one step.
    pub fn write_meta(&self, id: &str, meta: &Meta) -> Result<()> {
        write_atomic(
            &self.meta_path(id),
            &serde_json::to_vec(meta).map_err(Error::internal)?,
        )
    }

    /// Whether the layer is complete (its qcow2 file is in place).
    pub fn exists(&self, id: &str) -> bool {
        valid_id(id) && self.path(id).exists()
    }

    /// The layer's record.
    pub fn meta(&self, id: &str) -> Result<Meta> {
        if !valid_id(id) {
            return Err(Error::Internal(format!("not a layer id: {id:?}")));
        }
        let bytes = std::fs::read(self.meta_path(id))
            .map_err(|e| io_err(&format!("reading layer {id}"), e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("layer {id}'s record: {e}")))
    }

    /// The chain that ends at `top`, top first.
    pub fn chain(&self, top: &str) -> Result<Vec<ChainLayer>> {
        let mut chain: Vec<ChainLayer> = vec![];
        let mut next = Some(top.to_string());
        while let Some(id) = next {
            if chain.len() >= MAX_CHAIN || chain.iter().any(|l| l.id == id) {
                return Err(Error::Internal(format!("layer {top}: its chain loops")));
            }
            let meta = self.meta(&id)?;
            if !self.path(&id).exists() {
                return Err(Error::Internal(format!("layer {id} is missing")));
            }
            chain.push(ChainLayer {
                path: self.path(&id),
                key: meta.encrypted.then(|| self.key(&id)),
                id,
            });
            next = meta.parent;
        }
        Ok(chain)
    }

    /// Whether every layer of the chain is encrypted (its data is all ciphertext at
    /// rest), and whether any is.
    pub fn encryption(&self, top: &str) -> Result<(bool, bool)> {
        let chain = self.chain(top)?;
        Ok((
            chain.iter().all(|l| l.key.is_some()),
            chain.iter().any(|l| l.key.is_some()),
        ))
    }

    /// Makes layer `id` (see the module docs for the order of its files). The caller
    /// holds the store lock shared until something references the layer.
    pub fn make(&self, id: &str, meta: &Meta, key: Key, content: Content) -> Result<()> {
        if !valid_id(id) {
            return Err(Error::Internal(format!("not a layer id: {id:?}")));
        }
        self.discard_tmp(id);
        let result = self.make_tmp(id, meta, key, content).and_then(|()| {
            if meta.encrypted {
                rename(&self.tmp(id, "key"), &self.key(id))?;
            }
            rename(&self.tmp(id, "json"), &self.meta_path(id))?;
            rename(&self.tmp(id, "qcow2"), &self.path(id))?;
            sync_dir(&self.dir);
            Ok(())
        });
        if result.is_err() {
            self.discard_tmp(id);
        }
        result
    }

    fn make_tmp(&self, id: &str, meta: &Meta, key: Key, content: Content) -> Result<()> {
        let key_path = self.tmp(id, "key");
        match (&key, meta.encrypted) {
            (Key::None, false) => {}
            (Key::New, true) => write_new(&key_path, hex(&random_bytes(KEY_BYTES)?).as_bytes())?,
            (Key::Copy(from), true) => {
                let bytes = std::fs::read(from).map_err(|e| io_err("reading a layer's key", e))?;
                write_new(&key_path, &bytes)?
            }
            _ => {
                return Err(Error::Internal(format!(
                    "layer {id}: encrypted is {} but its key does not say so",
                    meta.encrypted
                )))
            }
        }
        let secret = img::secret_id(id);
        let key_arg = meta
            .encrypted
            .then_some((secret.as_str(), key_path.as_path()));
        let disk = self.tmp(id, "qcow2");
        match content {
            Content::Empty { size_bytes } => {
                let parent = meta.parent.as_ref().map(|p| self.path(p));
                img::create(&disk, size_bytes, key_arg, parent.as_deref())?
            }
            Content::Flatten { chain } => img::convert(chain, &disk, key_arg)?,
            Content::Import { path } => img::import(path, &disk)?,
            Content::Disk {
                path,
                format,
                progress,
            } => img::import_disk(path, format, &disk, key_arg, progress)?,
        }
        set_private(&disk)?;
        File::open(&disk)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err("syncing a new layer", e))?;
        write_new(
            &self.tmp(id, "json"),
            &serde_json::to_vec(meta).map_err(Error::internal)?,
        )
    }

    /// Removes what an interrupted [`Layers::make`] of `id` left.
    pub fn discard_tmp(&self, id: &str) {
        for ext in ["qcow2", "json", "key"] {
            remove_file(&self.tmp(id, ext));
        }
    }

    /// Removes every layer not in `live`, and every leftover of a layer being made (the
    /// caller holds the store lock exclusively). Returns how many layers went.
    pub fn sweep(&self, live: &HashSet<String>) -> Result<usize> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io_err("listing layers", e))?;
        let mut gone = HashSet::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let doomed = match name.strip_prefix(".tmp-") {
                Some(_) => true,
                None => {
                    let id = name.split('.').next().unwrap_or_default();
                    if !valid_id(id) || live.contains(id) {
                        continue;
                    }
                    gone.insert(id.to_string());
                    true
                }
            };
            if doomed {
                remove_file(&e.path());
            }
        }
        if !gone.is_empty() {
            sync_dir(&self.dir);
        }
        Ok(gone.len())
    }
}

/// Writes a new private file (0600) and flushes it.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io_err(&format!("creating {}", path.display()), e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err(&format!("writing {}", path.display()), e))
}

/// Replaces `path` with `bytes` in one step (written aside, flushed, renamed, the
/// directory flushed).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".tmp-{name}"));
    write_new(&tmp, bytes)?;
    rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| io_err(&format!("placing {}", to.display()), e))
}

fn set_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io_err(&format!("chmod {}", path.display()), e))
}

/// Removes a file; a missing one is fine. A key is overwritten first: without its key
/// an encrypted layer is noise, so the key's blocks should not linger.
pub(crate) fn remove_file(path: &Path) {
    if path.extension().is_some_and(|e| e == "key") {
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(path) {
            let _ = f
                .write_all(&[0u8; KEY_BYTES * 2])
                .and_then(|_| f.sync_all());
        }
    }
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove a layer file");
        }
    }
}

/// Flushes a directory's entries (a rename into it) to disk.
pub(crate) fn sync_dir(path: &Path) {
    if let Ok(d) = File::open(path) {
        let _ = d.sync_all();
    }
}

/// The store-wide lock (`<store>/.lock`, an `flock`): held shared by whatever makes
/// layers or records, exclusively by the garbage collector. An `flock` rather than a
/// mutex so that two stores over one directory (two processes, or a restart that
/// overlaps) exclude each other too.
#[derive(Debug)]
pub(crate) struct StoreLock {
    path: PathBuf,
}

impl StoreLock {
    pub fn new(path: PathBuf) -> StoreLock {
        StoreLock { path }
    }

    fn open(&self) -> Result<File> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| io_err("opening the store lock", e))
    }

    /// Waits for the lock, shared (released when the file is dropped).
    pub fn shared(&self) -> Result<File> {
        let f = self.open()?;
        loop {
            // SAFETY: flock(2) on a descriptor we own; no memory is involved.
            if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH) } == 0 {
                return Ok(f);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_err("locking the store", e));
            }
        }
    }

    /// The lock, exclusively, if nobody holds it now.
    pub fn try_exclusive(&self) -> Result<Option<File>> {
        let f = self.open()?;
        // SAFETY: as above.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(Some(f));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        Err(io_err("locking the store", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_hex() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 16);
        assert!(valid_id(&id));
        assert!(valid_id("0123456789abcdef0"));
        for bad in ["", "ABC", "../x", "a.b", &"a".repeat(33)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn the_lock_is_shared_or_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let lock = StoreLock::new(dir.path().join(".lock"));
        let a = lock.shared().unwrap();
        let b = lock.shared().unwrap();
        assert!(lock.try_exclusive().unwrap().is_none());
        drop((a, b));
        let ex = lock.try_exclusive().unwrap();
        assert!(ex.is_some());
        assert!(lock.try_exclusive().unwrap().is_none());
    }

    #[test]
    fn sweeping_keeps_live_layers_and_drops_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let layers = Layers::new(dir.path().to_path_buf());
        for name in [
            "aa.qcow2",
            "aa.json",
            "bb.qcow2",
            "bb.json",
            "bb.key",
            ".tmp-cc.qcow2",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let live: HashSet<String> = ["aa".to_string()].into();
        assert_eq!(layers.sweep(&live).unwrap(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, vec!["aa.json", "aa.qcow2"]);
    }
}
