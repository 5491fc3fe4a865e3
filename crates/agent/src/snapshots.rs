//! The agent's half of snapshots: takes, copies and releases them in the host's volume
//! store and reports what it observes (see [`strato_agent_api::snapshot`]).
//!
//! | spec                       | in the store | step                          | report    |
//! |----------------------------|--------------|-------------------------------|-----------|
//! | present, of a volume       | either       | `snapshot` (now, in the call) | completed / failed |
//! | present, a copy            | either       | `copy_snapshot` (background)  | completed / failed |
//! | deleted                    | either       | `delete_snapshot` (background)| deleted   |
//!
//! Every store step is idempotent, so a spec sent again (after a restart) is simply
//! answered again. Snapshots the store holds that no spec names are released at sync
//! (taken by a call whose record never committed, or deleted while the agent was
//! away).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use strato_agent_api::{
    DesiredSnapshotState, ObservedSnapshotState, SnapshotReport, SnapshotSource, SnapshotSpec,
    StorageReport,
};
use strato_common::{Error, Result, SnapshotId};
use strato_drivers::volumes::{check_disk, qemu_format, VolumeStore};
use tokio::sync::mpsc;

/// The snapshot half of a host agent.
pub struct SnapshotAgent {
    store: Arc<dyn VolumeStore>,
    reports: mpsc::UnboundedSender<StorageReport>,
}

impl SnapshotAgent {
    /// A snapshot agent over a store, reporting on `reports`.
    pub fn new(
        store: Arc<dyn VolumeStore>,
        reports: mpsc::UnboundedSender<StorageReport>,
    ) -> SnapshotAgent {
        SnapshotAgent { store, reports }
    }

    /// Takes the snapshots of volumes among `specs` now (in order), and starts the
    /// rest in the background.
    pub fn apply(&self, specs: Vec<SnapshotSpec>) {
        let (now, later): (Vec<_>, Vec<_>) = specs.into_iter().partition(|s| {
            s.desired == DesiredSnapshotState::Present
                && matches!(s.source, SnapshotSource::Volume { .. })
        });
        for spec in now {
            self.step(&spec);
        }
        if later.is_empty() {
            return;
        }
        let me = SnapshotAgent {
            store: self.store.clone(),
            reports: self.reports.clone(),
        };
        std::thread::spawn(move || {
            for spec in later {
                me.step(&spec);
            }
        });
    }

    /// Replaces the whole set: releases what no spec names, then applies every spec.
    pub fn sync(&self, specs: Vec<SnapshotSpec>) {
        let named: HashSet<&SnapshotId> = specs.iter().map(|s| &s.snapshot_id).collect();
        for id in self.store.list_snapshots() {
            if !named.contains(&id) {
                tracing::warn!(snapshot = %id, "releasing an orphaned snapshot");
                if let Err(e) = self.store.delete_snapshot(&id) {
                    tracing::error!(snapshot = %id, error = %e, "could not release an orphaned snapshot");
                }
            }
        }
        self.apply(specs);
    }

    fn step(&self, spec: &SnapshotSpec) {
        let id = &spec.snapshot_id;
        let done = match (&spec.desired, &spec.source) {
            (DesiredSnapshotState::Deleted, _) => self.store.delete_snapshot(id).map(|_| {
                strato_common::crash::point("snapshot-data-released");
                ObservedSnapshotState::Deleted
            }),
            (DesiredSnapshotState::Present, SnapshotSource::Volume { volume_id }) => {
                self.store.snapshot(volume_id, id).map(|i| {
                    strato_common::crash::point("snapshot-data-taken");
                    ObservedSnapshotState::Completed {
                        size_bytes: i.size_bytes,
                        stored_bytes: i.stored_bytes,
                        boot_mode: None,
                    }
                })
            }
            (
                DesiredSnapshotState::Present,
                SnapshotSource::Import {
                    url,
                    format,
                    encrypted,
                    bootable,
                },
            ) => self.import(id, url, format, *encrypted, *bootable),
            (DesiredSnapshotState::Present, SnapshotSource::Copy { from, encrypted }) => self
                .store
                .copy_snapshot(from, id, *encrypted)
                .map(|i| ObservedSnapshotState::Completed {
                    size_bytes: i.size_bytes,
                    stored_bytes: i.stored_bytes,
                    boot_mode: None,
                }),
        };
        let (observed, detail) = match done {
            Ok(o) => (o, None),
            Err(e) => {
                tracing::error!(snapshot = %id, error = %e, "snapshot step failed");
                if spec.desired == DesiredSnapshotState::Deleted {
                    // Tried again at the next sync; the record stays `deleting`.
                    return;
                }
                (ObservedSnapshotState::Failed, Some(e.to_string()))
            }
        };
        let _ = self.reports.send(StorageReport::Snapshot(SnapshotReport {
            snapshot_id: id.clone(),
            observed,
            detail,
        }));
    }
}

impl SnapshotAgent {
    /// Imports a disk image: fetched (a download goes to a temporary file, removed
    /// after), checked to be a disk image of its format, converted into the store,
    /// with its progress reported every 5%.
    fn import(
        &self,
        id: &SnapshotId,
        url: &str,
        format: &str,
        encrypted: bool,
        bootable: bool,
    ) -> Result<ObservedSnapshotState> {
        let fmt = qemu_format(format).ok_or_else(|| {
            Error::InvalidParameterValue(format!(
                "the disk format {format} is not one of RAW, VMDK, VHD, VHDX, QCOW2"
            ))
        })?;
        let (path, _download) = fetch(url)?;
        let disk = check_disk(&path, fmt, bootable)?;
        let reports = self.reports.clone();
        let sid = id.clone();
        let last = std::sync::atomic::AtomicU8::new(0);
        let progress = move |p: u8| {
            if p / 5 > last.load(std::sync::atomic::Ordering::Relaxed) / 5 {
                last.store(p, std::sync::atomic::Ordering::Relaxed);
                let _ = reports.send(StorageReport::Snapshot(SnapshotReport {
                    snapshot_id: sid.clone(),
                    observed: ObservedSnapshotState::Progress { percent: p },
                    detail: None,
                }));
            }
        };
        let info = self
            .store
            .import_snapshot(id, &path, fmt, disk.size, encrypted, &progress)?;
        strato_common::crash::point("snapshot-data-imported");
        Ok(ObservedSnapshotState::Completed {
            size_bytes: info.size_bytes,
            stored_bytes: info.stored_bytes,
            boot_mode: disk.boot_mode.map(str::to_string),
        })
    }
}

/// The file an import `url` names: a file of this host (`/path`, `file:///path`), or an
/// `http(s)://` URL downloaded with curl into a temporary file (returned too: it is
/// removed when dropped).
fn fetch(url: &str) -> Result<(PathBuf, Option<tempfile::TempPath>)> {
    if let Some(p) = url
        .strip_prefix("file://")
        .or(Some(url).filter(|u| u.starts_with('/')))
    {
        return Ok((PathBuf::from(p), None));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::InvalidParameterValue(format!(
            "the Url {url} is neither a file of the host (/path or file:///path) nor an http(s) URL"
        )));
    }
    let tmp = tempfile::Builder::new()
        .prefix("strato-import-")
        .tempfile()
        .map_err(|e| Error::Internal(format!("a temporary file for a download: {e}")))?
        .into_temp_path();
    let out = std::process::Command::new("curl")
        .args(["-fsSL", "--proto", "=http,https", "--retry", "2", "-o"])
        .arg(&*tmp)
        .arg(url)
        .output()
        .map_err(|e| Error::Internal(format!("running curl: {e}")))?;
    if !out.status.success() {
        return Err(Error::InvalidParameterValue(format!(
            "could not download {url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok((tmp.to_path_buf(), Some(tmp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::{ResourceId, VolumeId};
    use strato_drivers::volumes::sim::SimVolumeStore;

    const GIB: u64 = 1 << 30;

    fn of_volume(snap: &SnapshotId, vol: &VolumeId) -> SnapshotSpec {
        SnapshotSpec {
            snapshot_id: snap.clone(),
            source: SnapshotSource::Volume {
                volume_id: vol.clone(),
            },
            desired: DesiredSnapshotState::Present,
        }
    }

    fn next(rx: &mut mpsc::UnboundedReceiver<StorageReport>) -> SnapshotReport {
        for _ in 0..500 {
            if let Ok(StorageReport::Snapshot(r)) = rx.try_recv() {
                return r;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        panic!("no snapshot report");
    }

    #[test]
    fn volume_snapshots_are_taken_in_the_call_and_orphans_released_at_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn VolumeStore> = Arc::new(SimVolumeStore::open(dir.path()).unwrap());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let agent = SnapshotAgent::new(store.clone(), tx);
        let vol = VolumeId::generate();
        store.create(&vol, 2 * GIB, false, None).unwrap();
        let (a, b, orphan) = (
            SnapshotId::generate(),
            SnapshotId::generate(),
            SnapshotId::generate(),
        );
        agent.apply(vec![of_volume(&a, &vol)]);
        // Taken before `apply` returned.
        assert!(store.snapshot_info(&a).is_some());
        assert!(matches!(
            next(&mut rx).observed,
            ObservedSnapshotState::Completed { size_bytes, .. } if size_bytes == 2 * GIB
        ));
        // A snapshot of a volume the store lacks fails and says why.
        agent.apply(vec![of_volume(&b, &VolumeId::generate())]);
        let r = next(&mut rx);
        assert_eq!(r.observed, ObservedSnapshotState::Failed);
        assert!(r.detail.is_some());
        store.snapshot(&vol, &orphan).unwrap();
        let copy = SnapshotId::generate();
        agent.sync(vec![
            of_volume(&a, &vol),
            SnapshotSpec {
                snapshot_id: copy.clone(),
                source: SnapshotSource::Copy {
                    from: a.clone(),
                    encrypted: true,
                },
                desired: DesiredSnapshotState::Present,
            },
        ]);
        assert!(store.snapshot_info(&orphan).is_none());
        let mut seen = [next(&mut rx), next(&mut rx)];
        seen.sort_by_key(|r| r.snapshot_id.to_string());
        assert!(seen
            .iter()
            .all(|r| matches!(r.observed, ObservedSnapshotState::Completed { .. })));
        assert!(store.snapshot_info(&copy).unwrap().encrypted);
        agent.apply(vec![SnapshotSpec {
            desired: DesiredSnapshotState::Deleted,
            ..of_volume(&a, &vol)
        }]);
        assert_eq!(next(&mut rx).observed, ObservedSnapshotState::Deleted);
        assert!(store.snapshot_info(&a).is_none());
    }
}
