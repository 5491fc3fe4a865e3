//! The simulated volume store: volumes without data.
//!
//! Each volume is one row of `<dir>/volumes.db` (SQLite), holding its size and whether
//! it is encrypted; nothing is ever allocated for it (`allocated_bytes` is 0). One
//! database rather than a file per volume: creating tens of thousands of small files
//! made a large simulated fleet spend its time in the file system's inode allocation.
//! Every write is one statement, so a crash never leaves half a record.

use super::{check_size, not_found, shrink_refused, VolumeInfo, VolumeStore};
use rusqlite::OptionalExtension;
use std::path::Path;
use std::sync::Mutex;
use strato_common::{Error, Result, VolumeId};

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

    fn create(&self, id: &VolumeId, size_bytes: u64, encrypted: bool) -> Result<()> {
        check_size(size_bytes)?;
        self.conn()
            .prepare_cached(
                "INSERT INTO volumes(id, size_bytes, encrypted) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO NOTHING",
            )
            .and_then(|mut st| {
                st.execute(rusqlite::params![id.as_str(), size_bytes as i64, encrypted])
            })
            .map(|_| ())
            .map_err(db_err)
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
            s.create(&a, GIB, false).unwrap();
            s.create(&a, 2 * GIB, true).unwrap(); // exists: unchanged
            s.create(&b, 1 << 40, true).unwrap();
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
            assert!(s.create(&VolumeId::generate(), 100, false).is_err());
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
}
