//! EBS snapshots: CreateSnapshot(s), CopySnapshot, DeleteSnapshot, DescribeSnapshots,
//! the `createVolumePermission` attribute, and how host reports complete them.
//!
//! A snapshot is a record first: CreateSnapshot commits it `pending`, then asks the
//! host to take it. The host takes a snapshot of a volume before that call returns (the
//! snapshot's point in time) and reports it; the report makes it `completed`. A copy is
//! made in the background the same way. DeleteSnapshot commits `deleting` (hidden from
//! then on) and the host's report of the data's release removes the record. After a
//! crash at any step, [`ControlPlane::sync_snapshots`] sends every record again: the
//! host takes what it never took, releases what no record names, and reports the rest.
//!
//! Visibility: an account sees its own snapshots and those it may create volumes from
//! (shared with it by id, or public) in the region; it may create volumes from and copy
//! those, and do nothing else with them.

use super::{load_volume, resolve_kms_key, DEFAULT_KMS_ALIAS};
use crate::page::{paginate, PageRequest};
use crate::tags::{put_tags, tags_for, TagSpec};
use crate::{Caller, ControlPlane, Tags};
use strato_agent_api::{
    DesiredSnapshotState, ObservedSnapshotState, Quiesce, SnapshotReport, SnapshotSource,
    SnapshotSpec,
};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::{ec2_timestamp, now_ms};
use strato_common::{
    AccountId, Error, InstanceId, ResourceId, ResourceKind, Result, SnapshotId, VolumeId,
};
use strato_domain::{InstanceState, Scope};
use strato_store::{ReadTx, Snapshot, SnapshotOrigin, SnapshotState, Volume, VolumeState};

/// Filter names DescribeSnapshots accepts.
pub const SNAPSHOT_FILTERS: &[&str] = &[
    "description",
    "encrypted",
    "owner-alias",
    "owner-id",
    "progress",
    "snapshot-id",
    "start-time",
    "status",
    "storage-tier",
    "transfer-type",
    "volume-id",
    "volume-size",
];

/// The tag resource type of snapshots.
pub const SNAPSHOT_RESOURCE_TYPE: &str = "snapshot";

/// DescribeSnapshots' page bounds (EC2: 5 to 1,000).
pub const MAX_PAGE: i64 = 1000;

/// The longest description EC2 takes.
const MAX_DESCRIPTION: usize = 255;

/// A page of DescribeSnapshots: snapshots with their tags (empty for other accounts'
/// snapshots: tags belong to their owner), and the next page's token.
pub type SnapshotPage = (Vec<(Snapshot, Tags)>, Option<String>);

/// Who a DescribeSnapshots asks about, as the front door decoded it.
#[derive(Clone, Debug, Default)]
pub struct SnapshotQuery {
    pub ids: Vec<SnapshotId>,
    /// `OwnerIds`: account ids, `self`, or `amazon` / `aws-marketplace` (none here).
    pub owners: Vec<String>,
    /// `RestorableByUserIds`: account ids, `self`, or `all` (public ones).
    pub restorable_by: Vec<String>,
}

/// A change to `createVolumePermission`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PermissionChange {
    pub add_accounts: Vec<AccountId>,
    pub add_public: bool,
    pub remove_accounts: Vec<AccountId>,
    pub remove_public: bool,
}

/// A CopySnapshot request.
#[derive(Clone, Debug)]
pub struct CopySnapshotInput {
    pub source: SnapshotId,
    pub source_region: String,
    pub description: Option<String>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub tag_specs: Vec<TagSpec>,
}

/// What the host should do for a snapshot record.
pub fn snapshot_spec(s: &Snapshot) -> SnapshotSpec {
    SnapshotSpec {
        snapshot_id: s.id.clone(),
        source: match &s.origin {
            SnapshotOrigin::Volume => SnapshotSource::Volume {
                // Every snapshot of a volume names it; were one not to, an id the host
                // does not hold fails the step, and the snapshot shows `error`.
                volume_id: s.volume_id.clone().unwrap_or_else(VolumeId::generate),
            },
            SnapshotOrigin::Copy { source, .. } => SnapshotSource::Copy {
                from: source.clone(),
                encrypted: s.encrypted,
            },
            SnapshotOrigin::Import {
                url,
                format,
                bootable,
                ..
            } => SnapshotSource::Import {
                url: url.clone(),
                format: format.clone(),
                encrypted: s.encrypted,
                bootable: *bootable,
            },
        },
        desired: if s.state == SnapshotState::Deleting {
            DesiredSnapshotState::Deleted
        } else {
            DesiredSnapshotState::Present
        },
    }
}

/// `Progress` as EC2 shows it.
pub fn progress(s: &Snapshot) -> &'static str {
    match s.state {
        SnapshotState::Completed => "100%",
        _ => "0%",
    }
}

/// A filter's values for one snapshot.
pub fn snapshot_field(s: &Snapshot, name: &str) -> Vec<String> {
    match name {
        "description" => vec![s.description.clone()],
        "encrypted" => vec![s.encrypted.to_string()],
        "owner-id" => vec![s.account_id.to_string()],
        "progress" => vec![progress(s).to_string()],
        "snapshot-id" => vec![s.id.to_string()],
        "start-time" => vec![ec2_timestamp(s.start_ms)],
        "status" => vec![s.state.as_str().to_string()],
        "storage-tier" => vec!["standard".into()],
        "transfer-type" => vec!["standard".into()],
        "volume-id" => s.volume_id.iter().map(|v| v.to_string()).collect(),
        "volume-size" => vec![s.volume_size_gib.to_string()],
        _ => vec![],
    }
}

fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid_value(format!(
            "The description is longer than {MAX_DESCRIPTION} characters."
        )));
    }
    Ok(())
}

/// The caller's own snapshot (not deleting), or `InvalidSnapshot.NotFound`.
fn load_own(tx: &ReadTx, scope: &Scope, id: &SnapshotId) -> Result<Snapshot> {
    tx.get_doc::<Snapshot>(scope, id.as_str())?
        .filter(|s| s.state != SnapshotState::Deleting)
        .ok_or_else(|| Error::not_found(ResourceKind::Snapshot, id))
}

/// A snapshot of `region` that `account` may create volumes from (its own, shared
/// with it, or public), or `InvalidSnapshot.NotFound`.
pub(crate) fn load_restorable(
    tx: &ReadTx,
    account: &AccountId,
    region: &str,
    id: &SnapshotId,
) -> Result<Snapshot> {
    tx.snapshot_by_id(id.as_str())?
        .filter(|s| s.state != SnapshotState::Deleting && s.region == region)
        .filter(|s| s.restorable_by(account))
        .ok_or_else(|| Error::not_found(ResourceKind::Snapshot, id))
}

/// A new `pending` snapshot of the caller's, unshared.
pub(crate) fn pending(
    caller: &Caller,
    origin: SnapshotOrigin,
    volume: (Option<VolumeId>, u32),
    description: &str,
    key: (bool, Option<String>),
) -> Snapshot {
    Snapshot {
        id: SnapshotId::generate(),
        account_id: caller.account.clone(),
        region: caller.region.clone(),
        volume_id: volume.0,
        volume_size_gib: volume.1,
        origin,
        state: SnapshotState::Pending,
        description: description.to_string(),
        encrypted: key.0,
        kms_key_id: key.1,
        start_ms: now_ms(),
        completion_ms: None,
        stored_bytes: None,
        shared_with: vec![],
        public: false,
        state_message: None,
        rev: Default::default(),
    }
}

/// A new `pending` snapshot of a volume.
fn of_volume(caller: &Caller, v: &Volume, description: &str) -> Snapshot {
    pending(
        caller,
        SnapshotOrigin::Volume,
        (Some(v.id.clone()), v.size_gib),
        description,
        (v.encrypted, v.kms_key_id.clone()),
    )
}

/// Whether a volume's disk exists on its host, so a snapshot can be taken of it.
fn snapshottable(v: &Volume) -> Result<()> {
    match v.state {
        VolumeState::Available | VolumeState::InUse => Ok(()),
        other => Err(Error::IncorrectState(format!(
            "The volume '{}' is '{}': a snapshot needs an 'available' or 'in-use' volume.",
            v.id,
            other.as_str()
        ))),
    }
}

impl ControlPlane {
    /// CreateSnapshot: commits a `pending` snapshot of the caller's volume and has the
    /// host take it before answering, so the snapshot holds what the volume held at
    /// that moment.
    pub fn create_snapshot(
        &self,
        caller: &Caller,
        volume_id: &VolumeId,
        description: Option<&str>,
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<(Snapshot, Tags)> {
        let description = description.unwrap_or("");
        check_description(description)?;
        let tags = tags_for(tag_specs, SNAPSHOT_RESOURCE_TYPE)?;
        let scope = caller.scope();
        let s = self.db.write(|tx| {
            let v = load_volume(tx, &scope, volume_id)?;
            snapshottable(&v)?;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let s = of_volume(caller, &v, description);
            tx.put_snapshot(&s)?;
            put_tags(tx, &scope, s.id.as_str(), SNAPSHOT_RESOURCE_TYPE, &tags)?;
            Ok(s)
        })?;
        strato_common::crash::point("snapshot-create-committed");
        self.agent.apply_snapshots(vec![snapshot_spec(&s)], None);
        Ok((s, tags))
    }

    /// CreateSnapshots: one snapshot of each volume attached to the caller's instance
    /// (less those excluded), taken together while the instance's VM is paused, so they
    /// are crash-consistent with one another. `copy_tags` copies each volume's tags to
    /// its snapshot (after `tag_specs`' own).
    #[allow(clippy::too_many_arguments)]
    pub fn create_snapshots(
        &self,
        caller: &Caller,
        instance_id: &InstanceId,
        exclude: &[VolumeId],
        exclude_boot: bool,
        description: Option<&str>,
        copy_tags: bool,
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<Vec<(Snapshot, Tags)>> {
        let description = description.unwrap_or("");
        check_description(description)?;
        let tags = tags_for(tag_specs, SNAPSHOT_RESOURCE_TYPE)?;
        let scope = caller.scope();
        let made = self.db.write(|tx| {
            let inst = tx
                .instance(&scope, instance_id.as_str())?
                .filter(|i| i.state != InstanceState::Terminated)
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, instance_id))?;
            let attached = tx.volumes_of_instance(&scope, inst.id.as_str())?;
            let is_root = |v: &Volume| inst.root_volume && super::attach::is_root_of(v, &inst);
            for x in exclude {
                match attached.iter().find(|v| &v.id == x) {
                    None => {
                        return Err(Error::invalid_value(format!(
                            "The volume {x} excluded from CreateSnapshots is not attached to {instance_id}."
                        )))
                    }
                    Some(v) if is_root(v) => {
                        return Err(Error::invalid_value(format!(
                            "The volume {x} is the root volume of {instance_id}, not a data volume: use ExcludeBootVolume to leave it out."
                        )))
                    }
                    Some(_) => {}
                }
            }
            let chosen: Vec<&Volume> = attached
                .iter()
                .filter(|v| !(exclude.contains(&v.id) || (exclude_boot && is_root(v))))
                .collect();
            for v in &chosen {
                snapshottable(v)?;
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let mut out = vec![];
            for v in chosen {
                let s = of_volume(caller, v, description);
                let mut own = tags.clone();
                if copy_tags {
                    for (k, val) in tx.tags_of(&scope, v.id.as_str())? {
                        if !own.iter().any(|(ok, _)| *ok == k) {
                            own.push((k, val));
                        }
                    }
                }
                tx.put_snapshot(&s)?;
                put_tags(tx, &scope, s.id.as_str(), SNAPSHOT_RESOURCE_TYPE, &own)?;
                out.push((s, own));
            }
            Ok(out)
        })?;
        strato_common::crash::point("snapshot-create-committed");
        if !made.is_empty() {
            let specs = made.iter().map(|(s, _)| snapshot_spec(s)).collect();
            self.agent
                .apply_snapshots(specs, Some((instance_id, Quiesce::Pause)));
        }
        Ok(made)
    }

    /// CopySnapshot, called in the destination region: a new `pending` snapshot of the
    /// caller's holding the data of a snapshot the caller may create volumes from (in
    /// `SourceRegion`). With `Encrypted` the copy is encrypted even if the source is not.
    pub fn copy_snapshot(
        &self,
        caller: &Caller,
        input: &CopySnapshotInput,
        dry_run: bool,
    ) -> Result<Snapshot> {
        if !self.cfg.serves(&input.source_region) {
            return Err(Error::invalid_value(format!(
                "The source region {} is not served here.",
                input.source_region
            )));
        }
        let description = input.description.as_deref().unwrap_or("");
        check_description(description)?;
        let scope = caller.scope();
        let tags = tags_for(&input.tag_specs, SNAPSHOT_RESOURCE_TYPE)?;
        let s = self.db.write(|tx| {
            let src = load_restorable(tx, &caller.account, &input.source_region, &input.source)?;
            if src.state != SnapshotState::Completed {
                return Err(Error::IncorrectState(format!(
                    "Snapshot '{}' is '{}': only a completed snapshot can be copied.",
                    src.id,
                    src.state.as_str()
                )));
            }
            let encrypted = src.encrypted || input.encrypted;
            let kms_key_id = resolve_kms_key(&scope, encrypted, input.kms_key_id.as_deref())?;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let s = pending(
                caller,
                SnapshotOrigin::Copy {
                    source: src.id.clone(),
                    source_region: src.region.clone(),
                },
                (src.volume_id.clone(), src.volume_size_gib),
                description,
                (encrypted, kms_key_id),
            );
            tx.put_snapshot(&s)?;
            put_tags(tx, &scope, s.id.as_str(), SNAPSHOT_RESOURCE_TYPE, &tags)?;
            Ok(s)
        })?;
        strato_common::crash::point("snapshot-copy-committed");
        self.agent.apply_snapshots(vec![snapshot_spec(&s)], None);
        Ok(s)
    }

    /// DeleteSnapshot: the caller's own snapshot goes at once from every listing; the
    /// host releases its data (keeping what volumes made from it still need).
    pub fn delete_snapshot(&self, caller: &Caller, id: &SnapshotId, dry_run: bool) -> Result<()> {
        let scope = caller.scope();
        let s = self.db.write(|tx| {
            let mut s = load_own(tx, &scope, id)?;
            if let Some(image) = crate::images::attributes::image_using(tx, &scope, id)? {
                return Err(Error::SnapshotInUse(format!(
                    "The snapshot {id} is currently in use by {image}"
                )));
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            s.state = SnapshotState::Deleting;
            tx.put_snapshot(&s)?;
            Ok(s)
        })?;
        strato_common::crash::point("snapshot-delete-committed");
        self.agent.apply_snapshots(vec![snapshot_spec(&s)], None);
        Ok(())
    }

    /// DescribeSnapshots: with neither `OwnerIds` nor `RestorableByUserIds`, every
    /// snapshot the caller may create volumes from (its own, shared with it, public);
    /// otherwise those the options select. Named ids must all be visible.
    pub fn describe_snapshots(
        &self,
        caller: &Caller,
        q: &SnapshotQuery,
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<SnapshotPage> {
        if !q.ids.is_empty() && page.max_results.is_some() {
            return Err(Error::InvalidParameterCombination(
                "The parameter SnapshotIds cannot be used with the parameter MaxResults".into(),
            ));
        }
        let scope = caller.scope();
        let me = caller.account.as_str();
        let (own, shared, mut tags) = self.db.read(|tx| {
            // An import's snapshot shows once the import completed (as on EC2: the
            // task is what shows it before).
            let own: Vec<Snapshot> = tx
                .list_docs::<Snapshot>(&scope)?
                .into_iter()
                .filter(|s| s.state != SnapshotState::Deleting)
                .filter(|s| {
                    !(s.state == SnapshotState::Pending
                        && matches!(s.origin, SnapshotOrigin::Import { .. }))
                })
                .collect();
            let shared: Vec<Snapshot> = tx
                .snapshots_shared_with(&caller.region, me)?
                .into_iter()
                .filter(|s| s.state != SnapshotState::Deleting && s.account_id != caller.account)
                .collect();
            let tags = crate::tags::tags_of_ids(tx, &scope, own.iter().map(|s| s.id.as_str()))?;
            Ok((own, shared, tags))
        })?;
        let owner_ok = |s: &Snapshot| {
            q.owners.is_empty()
                || q.owners.iter().any(|o| match o.as_str() {
                    "self" => s.account_id == caller.account,
                    other => s.account_id.as_str() == other,
                })
        };
        let restorable_ok = |s: &Snapshot| {
            q.restorable_by.is_empty()
                || q.restorable_by.iter().any(|r| match r.as_str() {
                    "self" => {
                        s.account_id == caller.account || s.shared_with.contains(&caller.account)
                    }
                    "all" => s.public,
                    other => {
                        s.account_id.as_str() == other
                            || s.shared_with.iter().any(|a| a.as_str() == other)
                    }
                })
        };
        let mut all: Vec<(Snapshot, Tags)> = own
            .into_iter()
            .map(|s| {
                let t = tags.remove(s.id.as_str()).unwrap_or_default();
                (s, t)
            })
            .chain(shared.into_iter().map(|s| (s, Tags::default())))
            .collect();
        all.sort_by(|a, b| a.0.id.as_str().cmp(b.0.id.as_str()));
        let missing: Vec<String> = q
            .ids
            .iter()
            .filter(|id| !all.iter().any(|(s, _)| &s.id == *id))
            .map(|id| id.to_string())
            .collect();
        if missing.len() == 1 {
            return Err(Error::NotFoundWithMessage {
                kind: ResourceKind::Snapshot,
                message: format!("The snapshot '{}' does not exist.", missing[0]),
            });
        } else if !missing.is_empty() {
            return Err(Error::NotFoundWithMessage {
                kind: ResourceKind::Snapshot,
                message: format!("The snapshots '{}' do not exist.", missing.join(", ")),
            });
        }
        let selected: Vec<(Snapshot, Tags)> = all
            .into_iter()
            .filter(|(s, _)| q.ids.is_empty() || q.ids.contains(&s.id))
            .filter(|(s, _)| owner_ok(s) && restorable_ok(s))
            .filter(|(s, t)| filters.matches(t, |n| snapshot_field(s, n)))
            .collect();
        Ok(paginate(selected, page, |(s, _)| s.id.to_string()))
    }

    /// DescribeSnapshotAttribute `createVolumePermission` of the caller's own snapshot:
    /// the accounts it is shared with, and whether it is public.
    pub fn snapshot_permissions(
        &self,
        caller: &Caller,
        id: &SnapshotId,
        dry_run: bool,
    ) -> Result<(Vec<AccountId>, bool)> {
        let scope = caller.scope();
        let s = self.db.read(|tx| load_own(tx, &scope, id))?;
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        Ok((s.shared_with, s.public))
    }

    /// ModifySnapshotAttribute `createVolumePermission` (and, with `reset`,
    /// ResetSnapshotAttribute): shares the caller's own snapshot with accounts or with
    /// everyone, or stops sharing it. Snapshots encrypted with the default EBS key
    /// cannot be shared (as in EC2: other accounts cannot use that key).
    pub fn change_snapshot_permissions(
        &self,
        caller: &Caller,
        id: &SnapshotId,
        change: &PermissionChange,
        reset: bool,
        dry_run: bool,
    ) -> Result<()> {
        let scope = caller.scope();
        self.db.write(|tx| {
            let mut s = load_own(tx, &scope, id)?;
            let adds = !change.add_accounts.is_empty() || change.add_public;
            if adds && s.encrypted {
                return Err(Error::invalid_value(format!(
                    "Snapshot {} is encrypted with the default EBS key ({DEFAULT_KMS_ALIAS}), which other accounts cannot use: only unencrypted snapshots can be shared.",
                    s.id
                )));
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            if reset {
                s.shared_with.clear();
                s.public = false;
            } else {
                for a in &change.add_accounts {
                    if *a != s.account_id && !s.shared_with.contains(a) {
                        s.shared_with.push(a.clone());
                    }
                }
                s.shared_with.retain(|a| !change.remove_accounts.contains(a));
                s.public = (s.public || change.add_public) && !change.remove_public;
            }
            s.shared_with.sort();
            tx.put_snapshot(&s)
        })
    }

    /// The snapshot a CreateVolume names: one the caller may create volumes from, in
    /// the caller's region, `completed`.
    pub(crate) fn snapshot_for_volume(
        &self,
        tx: &ReadTx,
        caller: &Caller,
        id: &SnapshotId,
    ) -> Result<Snapshot> {
        let s = load_restorable(tx, &caller.account, &caller.region, id)?;
        if s.state != SnapshotState::Completed {
            return Err(Error::IncorrectState(format!(
                "Snapshot '{}' is '{}': a volume can only be made of a completed snapshot.",
                s.id,
                s.state.as_str()
            )));
        }
        Ok(s)
    }

    /// Applies a host's report about a snapshot: its data held (`pending` →
    /// `completed`), failed (`error`), or released (the record goes).
    pub fn handle_snapshot_report(&self, report: &SnapshotReport) -> Result<()> {
        if let Some(detail) = &report.detail {
            tracing::warn!(snapshot = %report.snapshot_id, %detail, "host agent reported a snapshot problem");
        }
        let mut orphan = false;
        let changed = self.db.write(|tx| {
            let Some(mut s) = tx.snapshot_by_id(report.snapshot_id.as_str())? else {
                // Made after its record went (an import cancelled while it ran): the
                // host releases it.
                orphan = matches!(report.observed, ObservedSnapshotState::Completed { .. });
                return Ok(None);
            };
            if crate::images::import::on_import_report(tx, &s, report)? {
                return Ok(None);
            }
            let before = s.state;
            match (&report.observed, s.state) {
                (
                    ObservedSnapshotState::Completed {
                        stored_bytes,
                        size_bytes,
                        ..
                    },
                    SnapshotState::Pending,
                ) => {
                    if s.volume_size_gib == 0 {
                        // An imported disk: its size is known now (whole GiB, as EC2).
                        s.volume_size_gib =
                            u32::try_from(size_bytes.div_ceil(1 << 30).max(1)).unwrap_or(u32::MAX);
                    }
                    s.state = SnapshotState::Completed;
                    s.completion_ms = Some(now_ms());
                    s.stored_bytes = Some(*stored_bytes);
                }
                (ObservedSnapshotState::Failed, SnapshotState::Pending) => {
                    s.state = SnapshotState::Error;
                    s.state_message = report.detail.clone();
                }
                (ObservedSnapshotState::Deleted, SnapshotState::Deleting) => {
                    tx.delete_snapshot(
                        &Scope::new(s.account_id.clone(), s.region.clone()),
                        s.id.as_str(),
                    )?;
                    return Ok(Some((before, "deleted", s.id)));
                }
                _ => return Ok(None),
            }
            tx.put_snapshot(&s)?;
            crate::images::attributes::settle_images(tx, &s)?;
            Ok(Some((before, s.state.as_str(), s.id)))
        })?;
        if let Some((from, to, id)) = changed {
            tracing::info!(snapshot = %id, from = from.as_str(), to, "snapshot state changed");
        }
        if orphan {
            self.agent.apply_snapshots(
                vec![SnapshotSpec {
                    snapshot_id: report.snapshot_id.clone(),
                    source: SnapshotSource::Copy {
                        from: report.snapshot_id.clone(),
                        encrypted: false,
                    },
                    desired: DesiredSnapshotState::Deleted,
                }],
                None,
            );
        }
        Ok(())
    }

    /// Sends every snapshot to the host (startup reconciliation), after the volumes.
    /// Snapshots in `error` are not sent: the host releases whatever it holds of them.
    pub fn sync_snapshots(&self) -> Result<usize> {
        let all = self.db.read(|tx| tx.all_snapshots())?;
        let specs: Vec<SnapshotSpec> = all
            .iter()
            .filter(|s| s.state != SnapshotState::Error)
            .map(snapshot_spec)
            .collect();
        let n = specs.len();
        self.agent.sync_snapshots(specs);
        Ok(n)
    }
}
