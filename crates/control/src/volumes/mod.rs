//! EBS volumes: CreateVolume, DescribeVolumes, DeleteVolume, and how host reports move
//! a volume through its states.
//!
//! A volume is a record first: CreateVolume commits it as `creating` with a spec
//! generation, then sends the spec to the host agent, whose volume store makes the
//! disk and reports it; only that report makes the volume `available`. DeleteVolume
//! commits `deleting` and the host's report of the disk's removal removes the record.
//! After a crash at any step, [`ControlPlane::sync_volumes`] re-sends every spec, so
//! the host converges to what was committed: a disk made for a volume whose record
//! never committed is removed as an orphan, and a committed one is made (again).

pub mod attach;
pub mod launch;
pub mod modify;
pub mod rules;
pub mod snapshots;

use crate::page::{paginate, PageRequest};
use crate::tags::{put_tags, tags_for, TagSpec};
use crate::{Caller, ControlPlane, Tags};
use serde::Serialize;
use sha2::{Digest, Sha256};
use strato_agent_api::{
    DesiredVolumeState, ObservedVolumeState, StorageReport, VolumeReport, VolumeSpec,
};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::{ec2_timestamp, now_ms};
use strato_common::{Error, ResourceId, ResourceKind, Result, SnapshotId, VolumeId};
use strato_domain::Scope;
use strato_store::{ModificationState, ReadTx, RegionSettings, Volume, VolumeState, VolumeType};

/// Filter names DescribeVolumes accepts.
pub const VOLUME_FILTERS: &[&str] = &[
    "attachment.attach-time",
    "attachment.delete-on-termination",
    "attachment.device",
    "attachment.instance-id",
    "attachment.status",
    "availability-zone",
    "availability-zone-id",
    "create-time",
    "encrypted",
    "fast-restored",
    "multi-attach-enabled",
    "operator.managed",
    "operator.principal",
    "size",
    "snapshot-id",
    "status",
    "volume-id",
    "volume-type",
];

/// The tag resource type of volumes.
pub const VOLUME_RESOURCE_TYPE: &str = "volume";

/// DescribeVolumes answers at most this many volumes a page, whatever `MaxResults`
/// asks above it (EC2's documented behaviour).
pub const MAX_PAGE: i64 = 500;

/// The KMS key alias EC2 uses for EBS when none is named.
pub const DEFAULT_KMS_ALIAS: &str = "alias/aws/ebs";

/// A page of DescribeVolumes: the volumes with their tags, and the next page's token.
pub type VolumePage = (Vec<(Volume, Tags)>, Option<String>);

/// A CreateVolume request, as the front door decoded it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CreateVolumeInput {
    pub availability_zone: Option<String>,
    pub availability_zone_id: Option<String>,
    pub size: Option<i64>,
    pub snapshot_id: Option<SnapshotId>,
    pub volume_type: Option<VolumeType>,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    pub multi_attach: Option<bool>,
    pub tag_specs: Vec<TagSpec>,
    pub client_token: Option<String>,
}

/// The ARN of the region's default EBS key of an account, as DescribeVolumes shows it
/// for encrypted volumes. Strato holds each volume's data key itself (in the host's
/// volume store); this names that arrangement the way EC2 names its AWS-managed key.
pub fn default_kms_key_arn(scope: &Scope) -> String {
    let h = Sha256::digest(format!("strato-ebs-default-key/{}", scope.key()));
    let x = hex::encode(&h[..16]);
    format!(
        "arn:aws:kms:{}:{}:key/{}-{}-{}-{}-{}",
        scope.region,
        scope.account,
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The spec the host should converge a volume to.
pub fn volume_spec(v: &Volume) -> VolumeSpec {
    let c = v.desired_config();
    let perf = rules::Performance {
        iops: c.iops,
        throughput: c.throughput,
    };
    VolumeSpec {
        volume_id: v.id.clone(),
        generation: v.generation,
        desired: match v.state {
            VolumeState::Deleting | VolumeState::Deleted => DesiredVolumeState::Deleted,
            _ => DesiredVolumeState::Present,
        },
        size_gib: c.size_gib,
        encrypted: v.encrypted,
        limits: rules::limits(c.volume_type, c.size_gib, perf),
        source_snapshot: v.snapshot_id.clone(),
        source_image: v
            .source_image
            .as_ref()
            .map(|i| strato_agent_api::ImageDisk {
                dir: i.dir.clone(),
                root_disk: i.root_disk.clone(),
            }),
    }
}

/// A filter's values for one volume.
pub fn volume_field(v: &Volume, name: &str) -> Vec<String> {
    let each = |f: &dyn Fn(&strato_store::VolumeAttachment) -> String| -> Vec<String> {
        v.attachments.iter().map(f).collect()
    };
    match name {
        "attachment.attach-time" => each(&|a| ec2_timestamp(a.attach_time_ms)),
        "attachment.delete-on-termination" => each(&|a| a.delete_on_termination.to_string()),
        "attachment.device" => each(&|a| a.device.clone()),
        "attachment.instance-id" => each(&|a| a.instance_id.to_string()),
        "attachment.status" => each(&|a| a.state.as_str().to_string()),
        "availability-zone" => vec![v.availability_zone.clone()],
        "availability-zone-id" => vec![crate::catalog::zone_id(&v.region, &v.availability_zone)],
        "create-time" => vec![ec2_timestamp(v.created_ms)],
        "encrypted" => vec![v.encrypted.to_string()],
        "fast-restored" => vec!["false".into()],
        "multi-attach-enabled" => vec![v.multi_attach.to_string()],
        "operator.managed" => vec!["false".into()],
        "size" => vec![v.size_gib.to_string()],
        "snapshot-id" => v.snapshot_id.iter().map(|s| s.to_string()).collect(),
        "status" => vec![v.state.as_str().to_string()],
        "volume-id" => vec![v.id.to_string()],
        "volume-type" => vec![v.volume_type.as_str().to_string()],
        _ => vec![],
    }
}

fn digest_of(input: &CreateVolumeInput) -> Result<String> {
    let json = serde_json::to_vec(input).map_err(Error::internal)?;
    Ok(hex::encode(Sha256::digest(json)))
}

/// Each volume with its tags, taken from `tags` (read for those volumes at once).
fn with_tags<'a>(
    list: Vec<Volume>,
    tags: &'a mut strato_common::hashing::FastMap<String, Tags>,
) -> impl Iterator<Item = (Volume, Tags)> + 'a {
    list.into_iter().map(|v| {
        let t = tags.remove(v.id.as_str()).unwrap_or_default();
        (v, t)
    })
}

/// The volume named by `id` in the caller's scope, or `InvalidVolume.NotFound`.
pub(crate) fn load_volume(tx: &ReadTx, scope: &Scope, id: &VolumeId) -> Result<Volume> {
    tx.get_doc::<Volume>(scope, id.as_str())?
        .filter(|v| v.state != VolumeState::Deleted)
        .ok_or_else(|| Error::not_found(ResourceKind::Volume, id))
}

/// EC2's message for volumes missing from a Describe by id.
fn not_found(missing: &[&VolumeId]) -> Error {
    if missing.len() == 1 {
        Error::not_found(ResourceKind::Volume, missing[0])
    } else {
        let ids: Vec<String> = missing.iter().map(|i| i.to_string()).collect();
        Error::NotFoundWithMessage {
            kind: ResourceKind::Volume,
            message: format!("The volumes '{}' do not exist.", ids.join(", ")),
        }
    }
}

/// What a new volume is to be, from CreateVolume's parameters (or a RunInstances
/// block device mapping's), before it has an id and a zone.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VolumeParams {
    pub size: Option<i64>,
    pub snapshot_id: Option<SnapshotId>,
    pub volume_type: Option<VolumeType>,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
    pub encrypted: Option<bool>,
    pub kms_key_id: Option<String>,
    pub multi_attach: Option<bool>,
}

/// A new volume's checked configuration.
#[derive(Clone, Debug)]
pub(crate) struct NewVolume {
    pub config: strato_store::VolumeConfig,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
}

/// The KMS key ARN shown for something `encrypted`: the scope's default EBS key, the
/// only one Strato names. `KmsKeyId` without encryption, or naming another key, is
/// refused as EC2 would (other keys: `UnsupportedOperation`).
pub(crate) fn resolve_kms_key(
    scope: &Scope,
    encrypted: bool,
    asked: Option<&str>,
) -> Result<Option<String>> {
    match (asked, encrypted) {
        (Some(_), false) => Err(Error::InvalidParameterDependency(
            "The parameter KmsKeyId requires the parameter Encrypted to be set.".into(),
        )),
        (Some(k), true) if k != DEFAULT_KMS_ALIAS && k != default_kms_key_arn(scope) => {
            Err(Error::Unsupported(format!(
                "The KmsKeyId {k} is not supported: Strato encrypts with keys of its own, named by the default key ({DEFAULT_KMS_ALIAS})."
            )))
        }
        (_, true) => Ok(Some(default_kms_key_arn(scope))),
        (None, false) => Ok(None),
    }
}

impl ControlPlane {
    /// Checks a new volume's parameters by its type's rules (sizes, IOPS, throughput,
    /// Multi-Attach), its snapshot (one the caller may restore, completed, no larger
    /// than the volume) and its encryption (asked, inherited from an encrypted snapshot,
    /// or the account's default).
    pub(crate) fn new_volume(&self, caller: &Caller, p: &VolumeParams) -> Result<NewVolume> {
        let source = match &p.snapshot_id {
            Some(snap) => Some(
                self.db
                    .read(|tx| self.snapshot_for_volume(tx, caller, snap))?,
            ),
            None => None,
        };
        self.new_volume_of(caller, p, source.as_ref())
    }

    /// [`ControlPlane::new_volume`] of a snapshot already found (`p.snapshot_id` is
    /// not looked at): an image's snapshot, which whoever may launch the image may make
    /// volumes of.
    pub(crate) fn new_volume_of(
        &self,
        caller: &Caller,
        p: &VolumeParams,
        source: Option<&strato_store::Snapshot>,
    ) -> Result<NewVolume> {
        let volume_type = p.volume_type.unwrap_or(VolumeType::Gp2);
        let size = match (p.size, source) {
            (Some(n), _) => rules::check_size(volume_type, n)?,
            (None, Some(s)) => rules::check_size(volume_type, i64::from(s.volume_size_gib))?,
            (None, None) => return Err(Error::MissingParameter("size or snapshotId".into())),
        };
        if let Some(s) = source {
            if size < s.volume_size_gib {
                return Err(Error::invalid_value(format!(
                    "The volume size ({size} GiB) is smaller than snapshot {} ({} GiB): a volume made from a snapshot must be at least as large.",
                    s.id, s.volume_size_gib
                )));
            }
        }
        let perf = rules::performance(volume_type, size, p.iops, p.throughput)?;
        let multi_attach = p.multi_attach.unwrap_or(false);
        rules::check_multi_attach(volume_type, multi_attach)?;
        // With encryption by default on, every new volume is encrypted, whatever
        // `Encrypted` says (as EC2); a volume made from an encrypted snapshot is too.
        let encrypted = p.encrypted.unwrap_or(false)
            || source.is_some_and(|s| s.encrypted)
            || self.ebs_encryption_by_default(caller)?;
        let kms_key_id = resolve_kms_key(&caller.scope(), encrypted, p.kms_key_id.as_deref())?;
        Ok(NewVolume {
            config: strato_store::VolumeConfig {
                size_gib: size,
                volume_type,
                iops: perf.iops,
                throughput: perf.throughput,
                multi_attach,
            },
            encrypted,
            kms_key_id,
        })
    }

    /// Resolves the zone of a CreateVolume: `AvailabilityZone` or `AvailabilityZoneId`
    /// (exactly one), a zone of the caller's region.
    fn volume_zone(&self, caller: &Caller, input: &CreateVolumeInput) -> Result<String> {
        match (&input.availability_zone, &input.availability_zone_id) {
            (Some(_), Some(_)) => Err(Error::InvalidParameterCombination(
                "Only one of AvailabilityZone or AvailabilityZoneId may be specified.".into(),
            )),
            (None, None) => Err(Error::MissingParameter(
                "AvailabilityZone or AvailabilityZoneId".into(),
            )),
            (Some(z), None) => {
                self.check_zone(&caller.region, z)?;
                Ok(z.clone())
            }
            (None, Some(id)) => self
                .cfg
                .zones(&caller.region)
                .into_iter()
                .find(|z| crate::catalog::zone_id(&caller.region, z) == *id)
                .ok_or_else(|| {
                    Error::invalid_value(format!("Invalid availability zone id: [{id}]"))
                }),
        }
    }

    /// CreateVolume: validates everything, commits the volume as `creating` and asks
    /// the host for its disk. A retry with the same `ClientToken` and parameters
    /// answers the volume the first call made.
    pub fn create_volume(
        &self,
        caller: &Caller,
        input: &CreateVolumeInput,
        dry_run: bool,
    ) -> Result<(Volume, Tags)> {
        let scope = caller.scope();
        if let Some(token) = &input.client_token {
            if token.is_empty() || token.len() > 64 || !token.is_ascii() {
                return Err(Error::invalid_value(
                    "The client token must be 1 to 64 ASCII characters.",
                ));
            }
        }
        let zone = self.volume_zone(caller, input)?;
        let NewVolume {
            config,
            encrypted,
            kms_key_id,
        } = self.new_volume(
            caller,
            &VolumeParams {
                size: input.size,
                snapshot_id: input.snapshot_id.clone(),
                volume_type: input.volume_type,
                iops: input.iops,
                throughput: input.throughput,
                encrypted: input.encrypted,
                kms_key_id: input.kms_key_id.clone(),
                multi_attach: input.multi_attach,
            },
        )?;
        let tags = tags_for(&input.tag_specs, VOLUME_RESOURCE_TYPE)?;
        let digest = digest_of(input)?;
        let made = self.db.write(|tx| {
            if let Some(token) = &input.client_token {
                if let Some(v) = tx
                    .list_docs_by::<Volume>(&scope, "client_token", token)?
                    .into_iter()
                    .next()
                {
                    if v.client_token_digest.as_deref() != Some(digest.as_str()) {
                        return Err(Error::IdempotentParameterMismatch(format!(
                            "The client token '{token}' has already been used with different parameters."
                        )));
                    }
                    if dry_run {
                        return Err(Error::DryRunOperation);
                    }
                    let tags = tx.tags_of(&scope, v.id.as_str())?;
                    return Ok((v, tags, false));
                }
            }
            // The snapshot may have gone (or stopped being shared) since it was read.
            if let Some(snap) = &input.snapshot_id {
                self.snapshot_for_volume(tx, caller, snap)?;
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let v = Volume {
                id: VolumeId::generate(),
                account_id: caller.account.clone(),
                region: caller.region.clone(),
                availability_zone: zone.clone(),
                size_gib: config.size_gib,
                volume_type: config.volume_type,
                iops: config.iops,
                throughput: config.throughput,
                encrypted,
                kms_key_id: kms_key_id.clone(),
                multi_attach: config.multi_attach,
                snapshot_id: input.snapshot_id.clone(),
                state: VolumeState::Creating,
                attachments: vec![],
                created_ms: now_ms(),
                generation: 1,
                error_reason: None,
                client_token: input.client_token.clone(),
                client_token_digest: input.client_token.as_ref().map(|_| digest.clone()),
                modification: None,
                auto_enable_io: false,
                source_image: None,
                rev: Default::default(),
            };
            tx.put_volume(&v)?;
            put_tags(tx, &scope, v.id.as_str(), VOLUME_RESOURCE_TYPE, &tags)?;
            Ok((v, tags.clone(), true))
        })?;
        let (v, tags, new) = made;
        strato_common::crash::point("volume-create-committed");
        if new || v.state == VolumeState::Creating {
            self.agent.apply_volume(volume_spec(&v));
        }
        Ok((v, tags))
    }

    /// DescribeVolumes: the caller's volumes in id order, those named (all must exist),
    /// filtered, a page at a time.
    pub fn describe_volumes(
        &self,
        caller: &Caller,
        ids: &[VolumeId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<VolumePage> {
        let scope = caller.scope();
        if !ids.is_empty() && page.max_results.is_some() {
            return Err(Error::InvalidParameterCombination(
                "The parameter volumeSet cannot be used with the parameter maxResults".into(),
            ));
        }
        // A plain page (no ids, no filters) reads just that page: a listing of many
        // volumes then costs a page per call, not the whole account.
        if ids.is_empty() && filters.is_empty() {
            if let Some(n) = page.max_results {
                let (mut list, mut tags) = self.db.read(|tx| {
                    let list: Vec<Volume> =
                        tx.list_docs_after(&scope, page.after.as_deref(), n + 1)?;
                    let tags = crate::tags::tags_of_ids(
                        tx,
                        &scope,
                        list.iter().take(n).map(|v| v.id.as_str()),
                    )?;
                    Ok((list, tags))
                })?;
                let next = (list.len() > n).then(|| {
                    list.truncate(n);
                    crate::page::encode_token(list[n - 1].id.as_str())
                });
                let out = with_tags(list, &mut tags)
                    .filter(|(v, _)| v.state != VolumeState::Deleted)
                    .collect();
                return Ok((out, next));
            }
        }
        let (all, mut tags) = self.db.read(|tx| {
            let all: Vec<Volume> = tx
                .list_docs::<Volume>(&scope)?
                .into_iter()
                .filter(|v| v.state != VolumeState::Deleted)
                .collect();
            let tags = crate::tags::tags_of_ids(tx, &scope, all.iter().map(|v| v.id.as_str()))?;
            Ok((all, tags))
        })?;
        let missing: Vec<&VolumeId> = ids
            .iter()
            .filter(|id| !all.iter().any(|v| &v.id == *id))
            .collect();
        if !missing.is_empty() {
            return Err(not_found(&missing));
        }
        let selected: Vec<(Volume, Tags)> = with_tags(all, &mut tags)
            .filter(|(v, _)| ids.is_empty() || ids.contains(&v.id))
            .filter(|(v, t)| filters.matches(t, |n| volume_field(v, n)))
            .collect();
        Ok(paginate(selected, page, |(v, _)| v.id.to_string()))
    }

    /// DeleteVolume: an `available` (or failed) volume becomes `deleting`; the host's
    /// report of its disk's removal removes it. A volume attached anywhere is
    /// `VolumeInUse`.
    pub fn delete_volume(&self, caller: &Caller, id: &VolumeId, dry_run: bool) -> Result<()> {
        let scope = caller.scope();
        let changed = self.db.write(|tx| {
            let mut v = load_volume(tx, &scope, id)?;
            if let Some(a) = v.attachments.first() {
                return Err(Error::VolumeInUse(format!(
                    "Volume {} is currently attached to {}",
                    v.id, a.instance_id
                )));
            }
            match v.state {
                VolumeState::Available | VolumeState::Error => {}
                VolumeState::Deleting => {
                    if dry_run {
                        return Err(Error::DryRunOperation);
                    }
                    return Ok(None);
                }
                other => {
                    return Err(Error::IncorrectState(format!(
                        "The volume '{}' is '{}' and cannot be deleted.",
                        v.id,
                        other.as_str()
                    )))
                }
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            v.state = VolumeState::Deleting;
            v.generation += 1;
            tx.put_volume(&v)?;
            Ok(Some(v))
        })?;
        strato_common::crash::point("volume-delete-committed");
        if let Some(v) = changed {
            self.agent.apply_volume(volume_spec(&v));
        }
        Ok(())
    }

    /// Applies a host's report about a volume: the disk made (`creating` →
    /// `available`), failed (`error`), or removed (the record goes). Reports for an
    /// older generation change nothing.
    pub fn handle_volume_report(&self, report: &VolumeReport) -> Result<()> {
        if let Some(detail) = &report.detail {
            tracing::warn!(volume = %report.volume_id, %detail, "host agent reported a volume problem");
        }
        let changed = self.db.write(|tx| {
            let Some(mut v) = tx.volume_by_id(report.volume_id.as_str())? else {
                return Ok(None);
            };
            if report.generation != v.generation {
                return Ok(None);
            }
            let before = v.state;
            let mut specs = vec![];
            let modifying = v
                .modification
                .as_ref()
                .is_some_and(|m| m.state == ModificationState::Modifying);
            match (&report.observed, v.state) {
                (ObservedVolumeState::Available { .. }, VolumeState::Creating) => {
                    v.state = v.settled_state();
                }
                (ObservedVolumeState::Failed, VolumeState::Creating) => {
                    v.state = VolumeState::Error;
                    v.error_reason = report.detail.clone();
                }
                (
                    ObservedVolumeState::Available { size_bytes, .. },
                    VolumeState::Available | VolumeState::InUse,
                ) if modifying => {
                    specs = self.modification_reached_host(tx, &mut v, *size_bytes)?;
                }
                (ObservedVolumeState::Failed, VolumeState::Available | VolumeState::InUse)
                    if modifying =>
                {
                    if let Some(m) = v.modification.as_mut() {
                        m.state = ModificationState::Failed;
                        m.status_message = report.detail.clone();
                        m.end_ms = Some(now_ms());
                    }
                }
                (ObservedVolumeState::Deleted, VolumeState::Deleting) => {
                    tx.delete_volume(
                        &Scope::new(v.account_id.clone(), v.region.clone()),
                        v.id.as_str(),
                    )?;
                    return Ok(Some((before, VolumeState::Deleted, v.id, vec![])));
                }
                _ => return Ok(None),
            }
            tx.put_volume(&v)?;
            Ok(Some((before, v.state, v.id, specs)))
        })?;
        if let Some((from, to, id, specs)) = changed {
            tracing::info!(volume = %id, from = from.as_str(), to = to.as_str(), "volume state changed");
            for spec in specs {
                self.agent.apply(spec);
            }
        }
        Ok(())
    }

    /// Applies a host's report about its block storage (a volume or a snapshot).
    pub fn handle_storage_report(&self, report: &StorageReport) -> Result<()> {
        match report {
            StorageReport::Volume(r) => self.handle_volume_report(r),
            StorageReport::Snapshot(r) => self.handle_snapshot_report(r),
        }
    }

    /// GetEbsEncryptionByDefault.
    pub fn ebs_encryption_by_default(&self, caller: &Caller) -> Result<bool> {
        let scope = caller.scope();
        Ok(self
            .db
            .read(|tx| tx.get_doc::<RegionSettings>(&scope, RegionSettings::ID))?
            .is_some_and(|s| s.ebs_encryption_by_default))
    }

    /// Enable/DisableEbsEncryptionByDefault: the setting for the caller's account in
    /// the caller's region; answers the new value.
    pub fn set_ebs_encryption_by_default(
        &self,
        caller: &Caller,
        on: bool,
        dry_run: bool,
    ) -> Result<bool> {
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        let scope = caller.scope();
        self.db.write(|tx| {
            match tx.get_doc::<RegionSettings>(&scope, RegionSettings::ID)? {
                Some(mut s) => {
                    s.ebs_encryption_by_default = on;
                    tx.update_doc(&s)?;
                }
                None => tx.insert_doc(&RegionSettings {
                    account_id: caller.account.clone(),
                    region: caller.region.clone(),
                    ebs_encryption_by_default: on,
                })?,
            }
            Ok(on)
        })
    }

    /// Re-sends every volume to the host agent (startup reconciliation), before the
    /// VMs that use them. Returns how many.
    pub fn sync_volumes(&self) -> Result<usize> {
        let volumes = self.db.read(|tx| tx.live_volumes())?;
        let specs: Vec<VolumeSpec> = volumes.iter().map(volume_spec).collect();
        let n = specs.len();
        self.agent.sync_volumes(specs);
        Ok(n)
    }
}
