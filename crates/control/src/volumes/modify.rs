//! ModifyVolume and what follows it, DescribeVolumesModifications, DescribeVolumeStatus
//! and the volume attributes.
//!
//! A modification is committed `modifying` with the volume's new spec generation: the
//! host's volume store grows the disk (online when attached) and applies the new
//! limits, and its report moves the modification on. A detached volume is then
//! `completed`; an attached one is `optimizing` until every VM it is attached to has
//! reported running with the new spec (the hypervisor has shown the guest the new size
//! and enforces the new limits), and `completed` after. The volume shows its new
//! configuration from `optimizing` on, as EC2 does. A crash at any step is finished by
//! the startup sync, which sends the committed specs again.

use super::{load_volume, rules, volume_spec, MAX_PAGE as VOLUME_MAX_PAGE};
use crate::page::{paginate, PageRequest};
use crate::{Caller, ControlPlane};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::{ec2_timestamp, now_ms};
use strato_common::{Error, InstanceId, Result, VolumeId};
use strato_domain::Scope;
use strato_store::{
    InstanceState, ModificationState, Volume, VolumeConfig, VolumeModification, VolumeState,
    VolumeType, WriteTx,
};

/// Filter names DescribeVolumesModifications accepts.
pub const MODIFICATION_FILTERS: &[&str] = &[
    "modification-state",
    "original-iops",
    "original-multi-attach-enabled",
    "original-size",
    "original-throughput",
    "original-volume-type",
    "start-time",
    "target-iops",
    "target-multi-attach-enabled",
    "target-size",
    "target-throughput",
    "target-volume-type",
    "volume-id",
];

/// Filter names DescribeVolumeStatus accepts.
pub const STATUS_FILTERS: &[&str] = &[
    "action.code",
    "action.description",
    "action.event-id",
    "availability-zone",
    "event.description",
    "event.event-id",
    "event.event-type",
    "event.not-after",
    "event.not-before",
    "volume-status.details-name",
    "volume-status.details-status",
    "volume-status.status",
];

/// Page bounds of DescribeVolumesModifications and DescribeVolumeStatus.
pub const MAX_PAGE: i64 = VOLUME_MAX_PAGE;

/// A ModifyVolume request, as the front door decoded it.
#[derive(Clone, Debug, Default)]
pub struct ModifyVolumeInput {
    pub size: Option<i64>,
    pub volume_type: Option<VolumeType>,
    pub iops: Option<i64>,
    pub throughput: Option<i64>,
    pub multi_attach: Option<bool>,
}

/// A volume's status as DescribeVolumeStatus shows it: `ok` once its disk exists,
/// `insufficient-data` while it is being made, `impaired` when making it failed (then
/// its I/O is not enabled).
pub fn volume_status(v: &Volume) -> (&'static str, &'static str) {
    match v.state {
        VolumeState::Creating => ("insufficient-data", "insufficient-data"),
        VolumeState::Error => ("impaired", "failed"),
        _ => ("ok", "passed"),
    }
}

/// A filter's values for a volume's status.
pub fn status_field(v: &Volume, name: &str) -> Vec<String> {
    let (status, io) = volume_status(v);
    match name {
        "availability-zone" => vec![v.availability_zone.clone()],
        "volume-status.status" => vec![status.into()],
        "volume-status.details-name" => vec!["io-enabled".into(), "io-performance".into()],
        "volume-status.details-status" => vec![io.into(), "not-applicable".into()],
        // No scheduled events or actions: Strato's hosts do not retire volumes.
        _ => vec![],
    }
}

/// A filter's values for a volume's modification.
pub fn modification_field(v: &Volume, m: &VolumeModification, name: &str) -> Vec<String> {
    let opt = |n: Option<u32>| n.map(|n| n.to_string()).into_iter().collect();
    match name {
        "modification-state" => vec![m.state.as_str().into()],
        "original-iops" => opt(m.original.iops),
        "original-multi-attach-enabled" => vec![m.original.multi_attach.to_string()],
        "original-size" => vec![m.original.size_gib.to_string()],
        "original-throughput" => opt(m.original.throughput),
        "original-volume-type" => vec![m.original.volume_type.as_str().into()],
        "start-time" => vec![ec2_timestamp(m.start_ms)],
        "target-iops" => opt(m.target.iops),
        "target-multi-attach-enabled" => vec![m.target.multi_attach.to_string()],
        "target-size" => vec![m.target.size_gib.to_string()],
        "target-throughput" => opt(m.target.throughput),
        "target-volume-type" => vec![m.target.volume_type.as_str().into()],
        "volume-id" => vec![v.id.to_string()],
        _ => vec![],
    }
}

/// The configuration a ModifyVolume asks for, checked with the same rules as
/// CreateVolume. What it does not name stays: the size, the type, and a type's
/// provisioned IOPS and throughput when the type stays.
fn target_of(current: VolumeConfig, input: &ModifyVolumeInput) -> Result<VolumeConfig> {
    let volume_type = input.volume_type.unwrap_or(current.volume_type);
    let size_gib = match input.size {
        Some(n) => rules::check_size(volume_type, n)?,
        None => rules::check_size(volume_type, i64::from(current.size_gib))?,
    };
    if size_gib < current.size_gib {
        return Err(Error::invalid_value(format!(
            "New size cannot be smaller than existing size: the volume is {} GiB, {size_gib} GiB was asked for.",
            current.size_gib
        )));
    }
    let same_type = volume_type == current.volume_type;
    let provisioned = matches!(
        volume_type,
        VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2
    );
    let iops = input.iops.or_else(|| {
        (same_type && provisioned)
            .then_some(current.iops)
            .flatten()
            .map(i64::from)
    });
    let throughput = input.throughput.or_else(|| {
        (same_type && volume_type == VolumeType::Gp3)
            .then_some(current.throughput)
            .flatten()
            .map(i64::from)
    });
    let perf = rules::performance(volume_type, size_gib, iops, throughput)?;
    let multi_attach = input.multi_attach.unwrap_or(current.multi_attach);
    rules::check_multi_attach(volume_type, multi_attach)?;
    Ok(VolumeConfig {
        size_gib,
        volume_type,
        iops: perf.iops,
        throughput: perf.throughput,
        multi_attach,
    })
}

impl ControlPlane {
    /// ModifyVolume: checks the new configuration, commits the modification
    /// `modifying`, and sends the volume's new spec to its host.
    pub fn modify_volume(
        &self,
        caller: &Caller,
        id: &VolumeId,
        input: &ModifyVolumeInput,
        dry_run: bool,
    ) -> Result<Volume> {
        if input.size.is_none()
            && input.volume_type.is_none()
            && input.iops.is_none()
            && input.throughput.is_none()
            && input.multi_attach.is_none()
        {
            return Err(Error::MissingParameter(
                "Size, VolumeType, Iops, Throughput or MultiAttachEnabled".into(),
            ));
        }
        let scope = caller.scope();
        let v = self.db.write(|tx| {
            let mut v = load_volume(tx, &scope, id)?;
            if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
                return Err(Error::IncorrectState(format!(
                    "The volume '{}' is '{}': only an 'available' or 'in-use' volume can be modified.",
                    v.id,
                    v.state.as_str()
                )));
            }
            if let Some(m) = &v.modification {
                if m.state.in_progress() {
                    return Err(Error::IncorrectModificationState(format!(
                        "Volume {} is already being modified ({}).",
                        v.id,
                        m.state.as_str()
                    )));
                }
            }
            let current = v.config();
            let target = target_of(current, input)?;
            if target == current {
                return Err(Error::invalid_value(format!(
                    "The modification would not change volume {}: it already has that configuration.",
                    v.id
                )));
            }
            if current.multi_attach && !target.multi_attach && v.attachments.len() > 1 {
                return Err(Error::IncorrectState(format!(
                    "Volume {} is attached to {} instances: Multi-Attach cannot be turned off.",
                    v.id,
                    v.attachments.len()
                )));
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            v.modification = Some(VolumeModification {
                state: ModificationState::Modifying,
                original: current,
                target,
                start_ms: now_ms(),
                end_ms: None,
                status_message: None,
                awaiting: vec![],
            });
            v.generation += 1;
            tx.put_volume(&v)?;
            Ok(v)
        })?;
        strato_common::crash::point("volume-modify-committed");
        self.agent.apply_volume(volume_spec(&v));
        Ok(v)
    }

    /// Moves a `modifying` volume on once its host reports the disk as the target
    /// asks (called from the report handler inside its transaction): the volume takes
    /// its new configuration, and attached running VMs get a new spec.
    pub(crate) fn modification_reached_host(
        &self,
        tx: &WriteTx,
        v: &mut Volume,
        size_bytes: u64,
    ) -> Result<Vec<strato_agent_api::VmSpec>> {
        let Some(m) = v.modification.as_mut() else {
            return Ok(vec![]);
        };
        if m.state != ModificationState::Modifying
            || size_bytes < u64::from(m.target.size_gib) << 30
        {
            return Ok(vec![]);
        }
        let target = m.target;
        v.set_config(target);
        let scope = Scope::new(v.account_id.clone(), v.region.clone());
        let mut specs = vec![];
        let mut awaiting = vec![];
        let instances: Vec<InstanceId> = v
            .attachments
            .iter()
            .map(|a| a.instance_id.clone())
            .collect();
        // The volume is written first: the specs below read its new size and limits.
        let mut staged = v.clone();
        if let Some(m) = staged.modification.as_mut() {
            m.state = ModificationState::Optimizing;
        }
        tx.put_volume(&staged)?;
        for inst_id in instances {
            let Some(inst) = tx.instance(&scope, inst_id.as_str())? else {
                continue;
            };
            if inst.state == InstanceState::Terminated {
                continue;
            }
            if let Some(spec) = self.bump_spec(tx, inst)? {
                awaiting.push((inst_id, spec.generation));
                specs.push(spec);
            }
        }
        let m = v.modification.as_mut().expect("checked above");
        if awaiting.is_empty() {
            m.state = ModificationState::Completed;
            m.end_ms = Some(now_ms());
        } else {
            m.state = ModificationState::Optimizing;
            m.awaiting = awaiting;
        }
        Ok(specs)
    }

    /// The caller's volumes: those named (each must exist), or all of them.
    fn named_or_all(&self, caller: &Caller, ids: &[VolumeId]) -> Result<Vec<Volume>> {
        let scope = caller.scope();
        self.db.read(|tx| {
            if ids.is_empty() {
                return tx.list_docs::<Volume>(&scope);
            }
            ids.iter().map(|id| load_volume(tx, &scope, id)).collect()
        })
    }

    /// DescribeVolumesModifications: the most recent modification of each of the
    /// caller's volumes (of those named, which must all have one).
    pub fn describe_volume_modifications(
        &self,
        caller: &Caller,
        ids: &[VolumeId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Volume>, Option<String>)> {
        let all = self.named_or_all(caller, ids)?;
        if let Some(v) = all
            .iter()
            .find(|v| v.modification.is_none() && ids.contains(&v.id))
        {
            return Err(Error::VolumeModificationNotFound(format!(
                "Modification for volume '{}' does not exist.",
                v.id
            )));
        }
        let selected = all
            .into_iter()
            .filter(|v| v.state != VolumeState::Deleted)
            .filter(|v| match &v.modification {
                Some(m) => filters.matches(&[], |n| modification_field(v, m, n)),
                None => false,
            });
        Ok(page_by_id(selected, page))
    }

    /// DescribeVolumeStatus: the caller's volumes (those named, which must exist) with
    /// their status.
    pub fn describe_volume_status(
        &self,
        caller: &Caller,
        ids: &[VolumeId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Volume>, Option<String>)> {
        let selected = self
            .named_or_all(caller, ids)?
            .into_iter()
            .filter(|v| !matches!(v.state, VolumeState::Deleted | VolumeState::Deleting))
            .filter(|v| filters.matches(&[], |n| status_field(v, n)));
        Ok(page_by_id(selected, page))
    }

    /// DescribeVolumeAttribute `autoEnableIO`.
    pub fn volume_auto_enable_io(
        &self,
        caller: &Caller,
        id: &VolumeId,
        dry_run: bool,
    ) -> Result<bool> {
        let scope = caller.scope();
        let v = self.db.read(|tx| load_volume(tx, &scope, id))?;
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        Ok(v.auto_enable_io)
    }

    /// ModifyVolumeAttribute `AutoEnableIO`.
    pub fn set_volume_auto_enable_io(
        &self,
        caller: &Caller,
        id: &VolumeId,
        on: bool,
        dry_run: bool,
    ) -> Result<()> {
        let scope = caller.scope();
        self.db.write(|tx| {
            let mut v = load_volume(tx, &scope, id)?;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            v.auto_enable_io = on;
            tx.put_volume(&v)
        })
    }
}

/// One page of volumes in id order.
fn page_by_id(
    volumes: impl Iterator<Item = Volume>,
    page: &PageRequest,
) -> (Vec<Volume>, Option<String>) {
    let mut all: Vec<Volume> = volumes.collect();
    all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    paginate(all, page, |v| v.id.to_string())
}

/// Settles an `optimizing` modification by a VM's report of `inst` at `generation`:
/// once every VM it waits for has reported its spec, the modification is completed.
/// Returns whether anything changed.
pub(crate) fn settle_modification(v: &mut Volume, inst: &InstanceId, generation: u64) -> bool {
    let Some(m) = v.modification.as_mut() else {
        return false;
    };
    if m.state != ModificationState::Optimizing {
        return false;
    }
    let before = m.awaiting.len();
    m.awaiting.retain(|(i, g)| !(i == inst && generation >= *g));
    if m.awaiting.is_empty() {
        m.state = ModificationState::Completed;
        m.end_ms = Some(now_ms());
        return true;
    }
    m.awaiting.len() != before
}

/// Drops an instance that went away from what a modification waits for.
pub(crate) fn forget_instance(v: &mut Volume, inst: &InstanceId) {
    settle_modification(v, inst, u64::MAX);
}
