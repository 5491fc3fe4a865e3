//! The simulated volume store: volumes without data.
//!
//! Each volume is one row of `<dir>/volumes.db` (SQLite), holding its size and whether
//! it is encrypted; nothing is ever allocated for it (`allocated_bytes` is 0). One
//! database rather than a file per volume: creating tens of thousands of small files
//! made a large simulated fleet spend its time in the file system's inode allocation.
//! Every write is one statement, so a crash never leaves half a record. Snapshots are
//! rows of their own (size and encryption at the time they were taken).

use super::{
    check_size, not_found, shrink_refused, snapshot_not_found, SnapshotInfo, VolumeInfo,
    VolumeStore,
};
use rusqlite::OptionalExtension;
use std::path::Path;
use std::sync::Mutex;
use strato_common::{Error, Result, SnapshotId, VolumeId};

fn db_err(e: rusqlite::Error) -> Error {
    Error::Internal(format!("simulated volume store: {e}"))
}

/// The simulated store (see the module documentation).
pub struct SimVolumeStore {
    db: Mutex<rusqlite::Connection>,
}

impl SimVolumeStore {
    /// Opens (creating it if needed) the store in `dir`.
    pub fn open(dir: &Path) -> Result<SimVolumeStore> {
        std::fs::create_dir_all(dir).map_err(Error::internal)?;
        let conn = rusqlite::Connection::open(dir.join("volumes.db")).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;
             CREATE TABLE IF NOT EXISTS volumes (
                 id TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, encrypted INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS snapshots (
                 id TEXT PRIMARY KEY, size_bytes INTEGER NOT NULL, encrypted INTEGER NOT NULL);",
        )
        .map_err(db_err)?;
        Ok(SimVolumeStore {
            db: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A row of `table` (volumes or snapshots): its size and whether it is encrypted.
    fn row(conn: &rusqlite::Connection, table: &str, id: &str) -> Result<Option<(u64, bool)>> {
        conn.prepare_cached(&format!(
            "SELECT size_bytes, encrypted FROM {table} WHERE id = ?1"
        ))
        .and_then(|mut st| {
            st.query_row([id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
                .optional()
        })
        .map_err(db_err)
    }

    fn put_snapshot(
        conn: &rusqlite::Connection,
        id: &SnapshotId,
        size_bytes: u64,
        encrypted: bool,
    ) -> Result<SnapshotInfo> {
        conn.prepare_cached(
            "INSERT INTO snapshots(id, size_bytes, encrypted) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO NOTHING",
        )
        .and_then(|mut st| st.execute(rusqlite::params![id.as_str(), size_bytes as i64, encrypted]))
        .map_err(db_err)?;
        let (size_bytes, encrypted) =
            Self::row(conn, "snapshots", id.as_str())?.ok_or_else(|| snapshot_not_found(id))?;
        Ok(SnapshotInfo {
            size_bytes,
            stored_bytes: 0,
            encrypted,
        })
    }

    fn size_of(conn: &rusqlite::Connection, id: &VolumeId) -> Result<Option<u64>> {
        conn.prepare_cached("SELECT size_bytes FROM volumes WHERE id = ?1")
            .and_then(|mut st| {
                st.query_row([id.as_str()], |r| r.get::<_, i64>(0))
                    .optional()
            })
            .map(|v| v.map(|n| n as u64))
            .map_err(db_err)
    }
}

impl VolumeStore for SimVolumeStore {
    fn kind(&self) -> &'static str {
        "sim"
    }

    fn create(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        source: Option<&SnapshotId>,
    ) -> Result<()> {
        check_size(size_bytes)?;
        let conn = self.conn();
        let mut encrypted = encrypted;
        if let Some(snap) = source {
            let (snap_size, snap_encrypted) = Self::row(&conn, "snapshots", snap.as_str())?
                .ok_or_else(|| snapshot_not_found(snap))?;
            if size_bytes < snap_size {
                return Err(Error::InvalidParameterValue(format!(
                    "a volume of {size_bytes} bytes cannot hold snapshot {snap} of {snap_size} bytes"
                )));
            }
            encrypted |= snap_encrypted;
        }
        conn.prepare_cached(
            "INSERT INTO volumes(id, size_bytes, encrypted) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO NOTHING",
        )
        .and_then(|mut st| st.execute(rusqlite::params![id.as_str(), size_bytes as i64, encrypted]))
        .map(|_| ())
        .map_err(db_err)
    }

    /// The simulator has no image files: a volume of an image is an empty record of
    /// the size asked for.
    fn create_from_image(
        &self,
        id: &VolumeId,
        size_bytes: u64,
        encrypted: bool,
        _image: &std::path::Path,
    ) -> Result<()> {
        self.create(id, size_bytes, encrypted, None)
    }

    fn info(&self, id: &VolumeId) -> Option<VolumeInfo> {
        let conn = self.conn();
        Self::size_of(&conn, id)
            .ok()
            .flatten()
            .map(|size_bytes| VolumeInfo {
                size_bytes,
                allocated_bytes: 0,
            })
    }

    fn grow(&self, id: &VolumeId, size_bytes: u64) -> Result<()> {
        check_size(size_bytes)?;
        let conn = self.conn();
        let have = Self::size_of(&conn, id)?.ok_or_else(|| not_found(id))?;
        if size_bytes < have {
            return Err(shrink_refused(id, have, size_bytes));
        }
        if size_bytes == have {
            return Ok(());
        }
        conn.prepare_cached("UPDATE volumes SET size_bytes = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(rusqlite::params![id.as_str(), size_bytes as i64]))
            .map(|_| ())
            .map_err(db_err)
    }

    fn delete(&self, id: &VolumeId) -> Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM volumes WHERE id = ?1")
            .and_then(|mut st| st.execute([id.as_str()]))
            .map(|_| ())
            .map_err(db_err)
    }

    fn list(&self) -> Vec<VolumeId> {
        let conn = self.conn();
        let ids = conn
            .prepare("SELECT id FROM volumes ORDER BY id")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .unwrap_or_default();
        ids.iter().filter_map(|s| VolumeId::parse_str(s)).collect()
    }

    fn snapshot(&self, id: &VolumeId, snap: &SnapshotId) -> Result<SnapshotInfo> {
        let conn = self.conn();
        if let Some((size_bytes, encrypted)) = Self::row(&conn, "snapshots", snap.as_str())? {
            return Ok(SnapshotInfo {
                size_bytes,
                stored_bytes: 0,
                encrypted,
            });
        }
        let (size, encrypted) =
            Self::row(&conn, "volumes", id.as_str())?.ok_or_else(|| not_found(id))?;
        Self::put_snapshot(&conn, snap, size, encrypted)
    }

    fn copy_snapshot(
        &self,
        from: &SnapshotId,
        to: &SnapshotId,
        encrypted: bool,
    ) -> Result<SnapshotInfo> {
        let conn = self.conn();
        if let Some(info) = Self::row(&conn, "snapshots", to.as_str())? {
            return Ok(SnapshotInfo {
                size_bytes: info.0,
                stored_bytes: 0,
                encrypted: info.1,
            });
        }
        let (size, was) = Self::row(&conn, "snapshots", from.as_str())?
            .ok_or_else(|| snapshot_not_found(from))?;
        Self::put_snapshot(&conn, to, size, was || encrypted)
    }

    fn import_snapshot(
        &self,
        snap: &SnapshotId,
        _src: &std::path::Path,
        _format: &str,
        size_bytes: u64,
        encrypted: bool,
        progress: &dyn Fn(u8),
    ) -> Result<SnapshotInfo> {
        let conn = self.conn();
        if let Some(info) = Self::row(&conn, "snapshots", snap.as_str())? {
            return Ok(SnapshotInfo {
                size_bytes: info.0,
                stored_bytes: 0,
                encrypted: info.1,
            });
        }
        progress(100);
        Self::put_snapshot(&conn, snap, size_bytes, encrypted)
    }

    fn delete_snapshot(&self, snap: &SnapshotId) -> Result<()> {
        self.conn()
            .prepare_cached("DELETE FROM snapshots WHERE id = ?1")
            .and_then(|mut st| st.execute([snap.as_str()]))
            .map(|_| ())
            .map_err(db_err)
    }

    fn snapshot_info(&self, snap: &SnapshotId) -> Option<SnapshotInfo> {
        let conn = self.conn();
        Self::row(&conn, "snapshots", snap.as_str())
            .ok()
            .flatten()
            .map(|(size_bytes, encrypted)| SnapshotInfo {
                size_bytes,
                stored_bytes: 0,
                encrypted,
            })
    }

    fn list_snapshots(&self) -> Vec<SnapshotId> {
        let conn = self.conn();
        let ids = conn
            .prepare("SELECT id FROM snapshots ORDER BY id")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .unwrap_or_default();
        ids.iter()
            .filter_map(|s| SnapshotId::parse_str(s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::ResourceId;

    const GIB: u64 = 1 << 30;

    #[test]
    fn volumes_persist_grow_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (VolumeId::generate(), VolumeId::generate());
        {
            let s = SimVolumeStore::open(dir.path()).unwrap();
            assert_eq!(s.kind(), "sim");
            s.create(&a, GIB, false, None).unwrap();
            s.create(&a, 2 * GIB, true, None).unwrap(); // exists: unchanged
            s.create(&b, 1 << 40, true, None).unwrap();
            assert_eq!(
                s.info(&a),
                Some(VolumeInfo {
                    size_bytes: GIB,
                    allocated_bytes: 0
                })
            );
            s.grow(&a, 3 * GIB).unwrap();
            s.grow(&a, 3 * GIB).unwrap();
            assert!(matches!(
                s.grow(&a, GIB),
                Err(Error::InvalidParameterValue(_))
            ));
            assert!(matches!(
                s.grow(&VolumeId::generate(), GIB),
                Err(Error::NotFound { .. })
            ));
            assert!(s.create(&VolumeId::generate(), 100, false, None).is_err());
        }
        let s = SimVolumeStore::open(dir.path()).unwrap();
        let mut want = vec![a.clone(), b.clone()];
        want.sort();
        assert_eq!(s.list(), want);
        assert_eq!(s.info(&a).unwrap().size_bytes, 3 * GIB);
        s.delete(&a).unwrap();
        s.delete(&a).unwrap();
        assert_eq!(s.info(&a), None);
        assert_eq!(s.list(), vec![b]);
    }

    #[test]
    fn snapshots_keep_sizes_and_give_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SimVolumeStore::open(dir.path()).unwrap();
        let (v, w, snap, copy) = (
            VolumeId::generate(),
            VolumeId::generate(),
            SnapshotId::generate(),
            SnapshotId::generate(),
        );
        assert!(matches!(s.snapshot(&v, &snap), Err(Error::NotFound { .. })));
        s.create(&v, 2 * GIB, false, None).unwrap();
        let info = s.snapshot(&v, &snap).unwrap();
        assert_eq!((info.size_bytes, info.encrypted), (2 * GIB, false));
        s.grow(&v, 4 * GIB).unwrap();
        // Idempotent: the snapshot keeps the size it was taken at.
        assert_eq!(s.snapshot(&v, &snap).unwrap().size_bytes, 2 * GIB);
        assert!(s.copy_snapshot(&snap, &copy, true).unwrap().encrypted);
        assert!(matches!(
            s.create(&w, GIB, false, Some(&snap)),
            Err(Error::InvalidParameterValue(_))
        ));
        s.create(&w, 3 * GIB, false, Some(&copy)).unwrap();
        assert_eq!(s.info(&w).unwrap().size_bytes, 3 * GIB);
        s.delete_snapshot(&snap).unwrap();
        s.delete_snapshot(&snap).unwrap();
        assert_eq!(s.list_snapshots(), vec![copy.clone()]);
        assert!(matches!(
            s.create(&VolumeId::generate(), 3 * GIB, false, Some(&snap)),
            Err(Error::NotFound { .. })
        ));
    }
}
