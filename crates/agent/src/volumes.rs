//! The agent's half of block storage: converges the host's volume store to the newest
//! [`VolumeSpec`] of every volume and reports what it observes.
//!
//! | desired | disk in the store        | step                      | report            |
//! |---------|--------------------------|---------------------------|-------------------|
//! | present | absent                   | `create` (once per gen; of its image for a root volume) | available / failed |
//! | present | smaller than the spec    | `grow`                    | available / failed |
//! | present | as large as the spec     | none                      | available         |
//! | deleted | present                  | `delete`                  | deleted           |
//! | deleted | absent                   | none, forget the spec     | deleted           |
//!
//! A failed step is not retried for the same generation (the control plane shows the
//! volume in `error`); a newer generation tries again. Like the VM half it keeps no
//! durable state: after a restart the control plane re-sends every spec
//! ([`VolumeAgent::sync`]) and disks nobody names are removed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use strato_agent_api::{
    DesiredVolumeState, ObservedVolumeState, StorageReport, VolumeReport, VolumeSpec,
};
use strato_common::VolumeId;
use strato_drivers::volumes::VolumeStore;
use tokio::sync::mpsc;

const GIB: u64 = 1024 * 1024 * 1024;

struct Tracked {
    spec: VolumeSpec,
    /// The generation whose step failed: not retried until a newer one arrives.
    failed_gen: Option<u64>,
    last_report: Option<(u64, ObservedVolumeState)>,
    /// In its desired state at the last look: re-examined only when a spec arrives.
    settled: bool,
    last_error: Option<String>,
}

/// The volume half of a host agent.
pub struct VolumeAgent {
    store: Arc<dyn VolumeStore>,
    /// The host's image store: where a root volume's image is (`<images>/<dir>/<disk>`).
    images: PathBuf,
    vols: Mutex<HashMap<VolumeId, Tracked>>,
    reports: mpsc::UnboundedSender<StorageReport>,
}

impl VolumeAgent {
    /// A volume agent over a store, making root volumes from the images in `images`;
    /// reports go to `reports`.
    pub fn new(
        store: Arc<dyn VolumeStore>,
        images: PathBuf,
        reports: mpsc::UnboundedSender<StorageReport>,
    ) -> VolumeAgent {
        VolumeAgent {
            store,
            images,
            vols: Mutex::new(HashMap::new()),
            reports,
        }
    }

    /// The store (the VM half needs it to serve attached disks).
    pub fn store(&self) -> &Arc<dyn VolumeStore> {
        &self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VolumeId, Tracked>> {
        self.vols.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a spec (newer generations replace older ones).
    pub fn apply(&self, spec: VolumeSpec) {
        let mut vols = self.lock();
        match vols.get_mut(&spec.volume_id) {
            Some(t) if t.spec.generation >= spec.generation => {}
            Some(t) => {
                t.spec = spec;
                t.settled = false;
            }
            None => {
                vols.insert(spec.volume_id.clone(), tracked(spec));
            }
        }
    }

    /// Replaces the whole desired set; disks in the store that no spec names are
    /// removed (a volume whose creation never committed, or one deleted while the
    /// agent was away).
    pub fn sync(&self, specs: Vec<VolumeSpec>) {
        let mut vols = self.lock();
        let next: HashMap<VolumeId, Tracked> = specs
            .into_iter()
            .map(|s| (s.volume_id.clone(), tracked(s)))
            .collect();
        for id in self.store.list() {
            if !next.contains_key(&id) {
                tracing::warn!(volume = %id, "removing orphaned volume disk");
                if let Err(e) = self.store.delete(&id) {
                    tracing::error!(volume = %id, error = %e, "could not remove orphaned volume disk");
                }
            }
        }
        *vols = next;
    }

    /// Whether the volume's disk is still to be made: a spec wants it, no step for it
    /// has failed, and the store does not have it yet.
    pub fn making(&self, id: &VolumeId) -> bool {
        let wanted = self.lock().get(id).is_some_and(|t| {
            t.spec.desired == DesiredVolumeState::Present && t.failed_gen != Some(t.spec.generation)
        });
        wanted && self.store.info(id).is_none()
    }

    /// Whether any volume is still converging.
    pub fn busy(&self) -> bool {
        self.lock().values().any(|t| !t.settled)
    }

    /// One pass over the volumes not in their desired state (or all, when `full`).
    pub fn reconcile_pass(&self, full: bool) {
        let ids: Vec<VolumeId> = self
            .lock()
            .iter()
            .filter(|(_, t)| full || !t.settled)
            .map(|(id, _)| id.clone())
            .collect();
        for id in ids {
            self.reconcile(&id);
        }
    }

    fn reconcile(&self, id: &VolumeId) {
        let mut vols = self.lock();
        let Some(t) = vols.get_mut(id) else { return };
        let gen = t.spec.generation;
        let want = u64::from(t.spec.size_gib) * GIB;
        let observed = match t.spec.desired {
            DesiredVolumeState::Present if t.failed_gen == Some(gen) => ObservedVolumeState::Failed,
            DesiredVolumeState::Present => {
                let step = match self.store.info(id) {
                    None => match &t.spec.source_image {
                        Some(img) => self.store.create_from_image(
                            id,
                            want,
                            t.spec.encrypted,
                            &self.images.join(&img.dir).join(&img.root_disk),
                        ),
                        None => self.store.create(
                            id,
                            want,
                            t.spec.encrypted,
                            t.spec.source_snapshot.as_ref(),
                        ),
                    }
                    .inspect(|_| {
                        strato_common::crash::point("volume-disk-made");
                    }),
                    Some(info) if info.size_bytes < want => self.store.grow(id, want),
                    Some(_) => Ok(()),
                };
                match step.map(|_| self.store.info(id)) {
                    Ok(Some(info)) => ObservedVolumeState::Available {
                        size_bytes: info.size_bytes,
                        allocated_bytes: info.allocated_bytes,
                    },
                    Ok(None) => {
                        t.failed_gen = Some(gen);
                        t.last_error = Some("the disk vanished after it was made".into());
                        ObservedVolumeState::Failed
                    }
                    Err(e) => {
                        tracing::error!(volume = %id, error = %e, "volume step failed");
                        t.failed_gen = Some(gen);
                        t.last_error = Some(e.to_string());
                        ObservedVolumeState::Failed
                    }
                }
            }
            DesiredVolumeState::Deleted => match self.store.delete(id) {
                Ok(()) => {
                    strato_common::crash::point("volume-disk-deleted");
                    ObservedVolumeState::Deleted
                }
                Err(e) => {
                    // Tried again on the next pass; nothing new to report.
                    tracing::error!(volume = %id, error = %e, "could not delete a volume disk");
                    return;
                }
            },
        };
        t.settled = true;
        let key = (gen, observed.clone());
        if t.last_report.as_ref() != Some(&key) {
            t.last_report = Some(key);
            let _ = self.reports.send(StorageReport::Volume(VolumeReport {
                volume_id: id.clone(),
                generation: gen,
                observed: observed.clone(),
                detail: t.last_error.take(),
            }));
        }
        if observed == ObservedVolumeState::Deleted {
            vols.remove(id);
        }
    }
}

fn tracked(spec: VolumeSpec) -> Tracked {
    Tracked {
        spec,
        failed_gen: None,
        last_report: None,
        settled: false,
        last_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_agent_api::DiskLimits;
    use strato_common::ResourceId;
    use strato_drivers::volumes::sim::SimVolumeStore;

    fn spec(id: &VolumeId, gen: u64, desired: DesiredVolumeState, size_gib: u32) -> VolumeSpec {
        VolumeSpec {
            volume_id: id.clone(),
            generation: gen,
            desired,
            size_gib,
            encrypted: false,
            limits: DiskLimits::default(),
            source_snapshot: None,
            source_image: None,
        }
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<StorageReport>) -> Vec<ObservedVolumeState> {
        let mut out = vec![];
        while let Ok(r) = rx.try_recv() {
            if let StorageReport::Volume(r) = r {
                out.push(r.observed);
            }
        }
        out
    }

    #[test]
    fn makes_grows_and_deletes_disks_and_removes_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SimVolumeStore::open(dir.path()).unwrap());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let agent = VolumeAgent::new(store.clone(), dir.path().join("images"), tx);
        let id = VolumeId::generate();
        agent.apply(spec(&id, 1, DesiredVolumeState::Present, 1));
        agent.reconcile_pass(false);
        assert!(matches!(
            drain(&mut rx).as_slice(),
            [ObservedVolumeState::Available { size_bytes, .. }] if *size_bytes == GIB
        ));
        // Settled: a pass changes and reports nothing.
        agent.reconcile_pass(false);
        assert!(drain(&mut rx).is_empty());
        agent.apply(spec(&id, 2, DesiredVolumeState::Present, 3));
        agent.reconcile_pass(false);
        assert!(matches!(
            drain(&mut rx).as_slice(),
            [ObservedVolumeState::Available { size_bytes, .. }] if *size_bytes == 3 * GIB
        ));
        // An older generation is ignored.
        agent.apply(spec(&id, 1, DesiredVolumeState::Deleted, 3));
        agent.reconcile_pass(false);
        assert!(drain(&mut rx).is_empty());
        agent.apply(spec(&id, 3, DesiredVolumeState::Deleted, 3));
        agent.reconcile_pass(false);
        assert_eq!(drain(&mut rx), vec![ObservedVolumeState::Deleted]);
        assert!(store.info(&id).is_none());

        // A disk no spec names is removed at sync; a named one is kept.
        let keep = VolumeId::generate();
        let orphan = VolumeId::generate();
        store.create(&keep, GIB, false, None).unwrap();
        store.create(&orphan, GIB, false, None).unwrap();
        agent.sync(vec![spec(&keep, 1, DesiredVolumeState::Present, 1)]);
        agent.reconcile_pass(true);
        assert_eq!(store.list(), vec![keep]);
    }
}
