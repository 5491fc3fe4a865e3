//! AttachVolume and DetachVolume, the disks of an instance's spec, and how VM reports
//! and instance ends move attachments.
//!
//! An attachment to a running instance is `attaching` until the host reports the disk
//! plugged into the VM, and `detaching` until it reports it gone; to a stopped
//! instance it is `attached` (or gone) at once, the disk being plugged at the next
//! start. The instance's spec names the disks of its `attaching` and `attached`
//! attachments, so a restart of either side replays exactly what was committed.

use super::{load_volume, rules, volume_spec};
use crate::{Caller, ControlPlane};
use strato_agent_api::{disk_serial, DiskSpec, ObservedVmState, VmReport, VmSpec};
use strato_common::time_fmt::now_ms;
use strato_common::{Error, InstanceId, ResourceKind, Result, VolumeId};
use strato_domain::Scope;
use strato_store::{
    AttachmentState, Instance, InstanceState, ReadTx, Volume, VolumeAttachment, VolumeState,
    VolumeType, WriteTx,
};

/// The most volumes one instance takes (a Nitro instance's EBS attachment limit,
/// less its root volume and network interface).
pub const MAX_VOLUMES_PER_INSTANCE: usize = 26;

/// Whether `device` is a name EC2 takes for an EBS attachment on Linux: `/dev/sd[a-z]`
/// (optionally with a partition digit, `/dev/sda1`), `/dev/xvd[a-z]` or `/dev/xvd[a-z][a-z]`.
pub fn valid_device(device: &str) -> bool {
    let letters = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
    };
    if let Some(rest) = device.strip_prefix("/dev/xvd") {
        return letters(rest, 1..=2);
    }
    if let Some(rest) = device.strip_prefix("/dev/sd") {
        let (l, digits) = rest.split_at(rest.len().min(1));
        return letters(l, 1..=1)
            && (digits.is_empty()
                || (digits.len() <= 2
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0')
                    && digits.parse::<u32>().is_ok_and(|n| n <= 15)));
    }
    false
}

/// Whether `v` is attached at `inst`'s root device (its root volume, for an instance
/// launched with one).
pub(crate) fn is_root_of(v: &Volume, inst: &Instance) -> bool {
    v.attachments
        .iter()
        .any(|a| a.instance_id == inst.id && a.device == inst.root_device_name)
}

/// The disks a VM of `inst` should have plugged, from the volumes attached to it: the
/// one at `root_device` (the instance's root volume) first and marked `boot`, then the
/// others in attachment order. Also the volumes being force-detached.
pub fn disks_for(
    inst: &InstanceId,
    root_device: Option<&str>,
    volumes: &[Volume],
) -> (Vec<DiskSpec>, Vec<VolumeId>) {
    let mut disks = vec![];
    let mut force = vec![];
    for v in volumes {
        for a in v.attachments.iter().filter(|a| &a.instance_id == inst) {
            match a.state {
                AttachmentState::Attaching | AttachmentState::Attached => {
                    let perf = rules::Performance {
                        iops: v.iops,
                        throughput: v.throughput,
                    };
                    disks.push((
                        a.attach_time_ms,
                        DiskSpec {
                            volume_id: v.id.clone(),
                            device: a.device.clone(),
                            serial: disk_serial(&v.id),
                            limits: rules::limits(v.volume_type, v.size_gib, perf),
                            size_gib: v.size_gib,
                            boot: root_device == Some(a.device.as_str()),
                        },
                    ));
                }
                AttachmentState::Detaching if a.force => force.push(v.id.clone()),
                _ => {}
            }
        }
    }
    // Attachment order: the guest enumerates disks in the order they were plugged.
    disks.sort_by(|a, b| (!a.1.boot, a.0, &a.1.device).cmp(&(!b.1.boot, b.0, &b.1.device)));
    (disks.into_iter().map(|(_, d)| d).collect(), force)
}

/// Puts the disks of `volumes` into the specs of the instances they belong to.
pub(crate) fn fill_disks(specs: &mut [VmSpec], volumes: &[Volume]) {
    if volumes.is_empty() {
        return;
    }
    for spec in specs {
        let (disks, force) = disks_for(&spec.instance_id, spec.root_device.as_deref(), volumes);
        spec.disks = disks;
        spec.force_detach = force;
    }
}

/// Moves the attachments of `inst` by what a report of its VM says is plugged: an
/// `attaching` disk that is plugged becomes `attached`, a `detaching` one that is not
/// goes. A VM that is off has nothing plugged, so a stopped instance's detaching
/// disks go too. Returns the volumes changed.
pub(crate) fn settle_from_report(
    volumes: Vec<Volume>,
    inst: &InstanceId,
    report: &VmReport,
) -> Vec<Volume> {
    let off = matches!(
        report.observed,
        ObservedVmState::Stopped { .. } | ObservedVmState::Deleted
    );
    let mut changed = vec![];
    for mut v in volumes {
        let before = v.clone();
        v.attachments.retain_mut(|a| {
            if &a.instance_id != inst {
                return true;
            }
            let plugged = report.disks.contains(&v.id);
            match a.state {
                // A VM that is off plugs the disk at its next start.
                AttachmentState::Attaching if plugged || off => {
                    a.state = AttachmentState::Attached;
                    true
                }
                AttachmentState::Detaching if !plugged || off => false,
                _ => true,
            }
        });
        if v.state == VolumeState::InUse || v.state == VolumeState::Available {
            v.state = v.settled_state();
        }
        super::modify::settle_modification(&mut v, inst, report.generation);
        if v != before {
            changed.push(v);
        }
    }
    changed
}

/// What an instance's end does to its volumes: those marked `DeleteOnTermination`
/// start deleting, the others are detached and kept. Returns them to write (and the
/// deleting ones to send to the host).
pub(crate) fn release_on_termination(volumes: Vec<Volume>, inst: &InstanceId) -> Vec<Volume> {
    volumes
        .into_iter()
        .map(|mut v| {
            let delete = v
                .attachments
                .iter()
                .any(|a| &a.instance_id == inst && a.delete_on_termination);
            v.attachments.retain(|a| &a.instance_id != inst);
            super::modify::forget_instance(&mut v, inst);
            if delete && v.attachments.is_empty() {
                v.state = VolumeState::Deleting;
                v.generation += 1;
            } else if matches!(v.state, VolumeState::InUse | VolumeState::Available) {
                v.state = v.settled_state();
            }
            v
        })
        .collect()
}

/// A volume attached to an instance, as the instance's `blockDeviceMapping` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MappedVolume {
    pub device: String,
    pub volume_id: VolumeId,
    pub state: AttachmentState,
    pub attach_time_ms: i64,
    pub delete_on_termination: bool,
}

/// The volumes attached to each instance, by instance id, in device order.
pub type MappedVolumes = strato_common::hashing::FastMap<String, Vec<MappedVolume>>;

/// The volumes attached to the instances `ids` of `scope`, as `tx` sees them (for
/// `blockDeviceMapping`). Costs one index probe when the account has no attached
/// volume at all.
pub(crate) fn mapped_volumes_in(tx: &ReadTx, scope: &Scope, ids: &[&str]) -> Result<MappedVolumes> {
    if ids.is_empty() || !tx.any_volume_attached(scope)? {
        return Ok(MappedVolumes::default());
    }
    let vols = tx.volumes_of_instances(scope, ids)?;
    let mut out = MappedVolumes::default();
    for v in vols {
        for a in &v.attachments {
            out.entry(a.instance_id.to_string())
                .or_default()
                .push(MappedVolume {
                    device: a.device.clone(),
                    volume_id: v.id.clone(),
                    state: a.state,
                    attach_time_ms: a.attach_time_ms,
                    delete_on_termination: a.delete_on_termination,
                });
        }
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.device.cmp(&b.device));
    }
    Ok(out)
}

impl ControlPlane {
    /// The volumes attached to the caller's instances `ids` (for `blockDeviceMapping`).
    pub fn mapped_volumes(&self, caller: &Caller, ids: &[&str]) -> Result<MappedVolumes> {
        let scope = caller.scope();
        self.db.read(|tx| mapped_volumes_in(tx, &scope, ids))
    }

    /// ModifyInstanceAttribute `BlockDeviceMapping`: sets `DeleteOnTermination` of the
    /// volumes attached at the given devices of the caller's instance (a `VolumeId`,
    /// when given, must be the one there).
    pub fn set_delete_on_termination(
        &self,
        caller: &Caller,
        instance_id: &InstanceId,
        changes: &[(String, Option<VolumeId>, bool)],
        dry_run: bool,
    ) -> Result<()> {
        let scope = caller.scope();
        self.db.write(|tx| {
            let inst = tx
                .instance(&scope, instance_id.as_str())?
                .filter(|i| i.state != InstanceState::Terminated)
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, instance_id))?;
            let attached = tx.volumes_of_instance(&scope, inst.id.as_str())?;
            let mut changed: Vec<Volume> = vec![];
            for (device, volume, dot) in changes {
                let found = attached.iter().find(|v| {
                    v.attachments
                        .iter()
                        .any(|a| a.instance_id == inst.id && &a.device == device)
                });
                let Some(v) = found else {
                    return Err(Error::invalid_value(format!(
                        "No volume is attached to {instance_id} at {device}."
                    )));
                };
                if volume.as_ref().is_some_and(|want| *want != v.id) {
                    return Err(Error::invalid_value(format!(
                        "The volume at {device} of {instance_id} is {}, not {}.",
                        v.id,
                        volume.as_ref().map(|x| x.to_string()).unwrap_or_default()
                    )));
                }
                let mut v = changed
                    .iter()
                    .position(|c| c.id == v.id)
                    .map(|i| changed.remove(i))
                    .unwrap_or_else(|| v.clone());
                for a in v.attachments.iter_mut() {
                    if a.instance_id == inst.id && &a.device == device {
                        a.delete_on_termination = *dot;
                    }
                }
                changed.push(v);
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            for v in &changed {
                tx.put_volume(v)?;
            }
            Ok(())
        })
    }

    /// AttachVolume: an `available` volume (or a Multi-Attach one in use) of the
    /// instance's zone, to a running or stopped instance, at a device name not in use
    /// there.
    pub fn attach_volume(
        &self,
        caller: &Caller,
        volume_id: &VolumeId,
        instance_id: &InstanceId,
        device: &str,
        dry_run: bool,
    ) -> Result<(Volume, VolumeAttachment)> {
        if !valid_device(device) {
            return Err(Error::invalid_value(format!(
                "Value ({device}) for parameter device is invalid. {device} is not a valid EBS device name."
            )));
        }
        let scope = caller.scope();
        let (v, att, spec) = self.db.write(|tx| {
            let mut v = load_volume(tx, &scope, volume_id)?;
            let inst = tx
                .instance(&scope, instance_id.as_str())?
                .filter(|i| i.state != InstanceState::Terminated)
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, instance_id))?;
            if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped) {
                return Err(Error::IncorrectState(format!(
                    "Instance '{}' is not 'running' or 'stopped'.",
                    inst.id
                )));
            }
            match v.state {
                VolumeState::Available => {}
                VolumeState::InUse if v.multi_attach => {
                    if v.attachments.iter().any(|a| a.instance_id == inst.id) {
                        return Err(Error::VolumeInUse(format!(
                            "{} is already attached to {}",
                            v.id, inst.id
                        )));
                    }
                }
                VolumeState::InUse => {
                    return Err(Error::VolumeInUse(format!(
                        "{} is already attached to an instance",
                        v.id
                    )))
                }
                other => {
                    return Err(Error::IncorrectState(format!(
                        "The volume '{}' is not 'available'. It is '{}'.",
                        v.id,
                        other.as_str()
                    )))
                }
            }
            if v.availability_zone != inst.availability_zone {
                return Err(Error::VolumeZoneMismatch(format!(
                    "The volume '{}' is not in the same availability zone as instance '{}'",
                    v.id, inst.id
                )));
            }
            let others = tx.volumes_of_instance(&scope, inst.id.as_str())?;
            let in_use = |d: &str| {
                others.iter().any(|o| {
                    o.attachments
                        .iter()
                        .any(|a| a.instance_id == inst.id && a.device == d)
                })
            };
            // The root device of an instance whose root volume was detached takes a
            // new root volume while the instance is stopped (its next start boots it).
            let root = device == inst.root_device_name;
            if in_use(device) || (root && !inst.root_volume) {
                return Err(Error::invalid_value(format!(
                    "Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
                )));
            }
            if root && inst.state != InstanceState::Stopped {
                return Err(Error::IncorrectState(format!(
                    "Instance '{}' is not 'stopped': a volume is attached at its root device {device} only while it is stopped.",
                    inst.id
                )));
            }
            if root && matches!(v.volume_type, VolumeType::St1 | VolumeType::Sc1) {
                return Err(Error::invalid_value(format!(
                    "Volume '{}' is of type {}, which cannot be a root volume.",
                    v.id,
                    v.volume_type.as_str()
                )));
            }
            let data_volumes = others
                .iter()
                .filter(|o| !(inst.root_volume && is_root_of(o, &inst)))
                .count();
            if !root && data_volumes >= MAX_VOLUMES_PER_INSTANCE {
                return Err(Error::AttachmentLimitExceeded(format!(
                    "Instance '{}' already has the most volumes it can take ({MAX_VOLUMES_PER_INSTANCE}).",
                    inst.id
                )));
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let running = inst.state == InstanceState::Running;
            let att = VolumeAttachment {
                instance_id: inst.id.clone(),
                device: device.to_string(),
                state: if running {
                    AttachmentState::Attaching
                } else {
                    AttachmentState::Attached
                },
                attach_time_ms: now_ms(),
                delete_on_termination: false,
                force: false,
            };
            v.attachments.push(att.clone());
            v.state = VolumeState::InUse;
            tx.put_volume(&v)?;
            let spec = self.bump_spec(tx, inst)?;
            Ok((v, att, spec))
        })?;
        strato_common::crash::point("volume-attach-committed");
        if let Some(spec) = spec {
            self.agent.apply(spec);
        }
        Ok((v, att))
    }

    /// DetachVolume: the attachment (to `instance_id`, when given; `device` must
    /// match when given) starts detaching; `force` unplugs without waiting for the
    /// guest. A volume attached nowhere is `IncorrectState`.
    pub fn detach_volume(
        &self,
        caller: &Caller,
        volume_id: &VolumeId,
        instance_id: Option<&InstanceId>,
        device: Option<&str>,
        force: bool,
        dry_run: bool,
    ) -> Result<(Volume, VolumeAttachment)> {
        let scope = caller.scope();
        let (v, att, spec) = self.db.write(|tx| {
            let mut v = load_volume(tx, &scope, volume_id)?;
            if v.attachments.is_empty() {
                return Err(Error::IncorrectState(format!(
                    "Volume '{}' is in the '{}' state.",
                    v.id,
                    v.state.as_str()
                )));
            }
            let pick = |a: &VolumeAttachment| {
                instance_id.is_none_or(|i| &a.instance_id == i)
                    && device.is_none_or(|d| a.device == d)
            };
            let matching: Vec<usize> = (0..v.attachments.len())
                .filter(|&i| pick(&v.attachments[i]))
                .collect();
            let idx = match matching.as_slice() {
                [i] => *i,
                [] => {
                    return Err(Error::IncorrectState(format!(
                        "Volume '{}' is not attached{}{}.",
                        v.id,
                        instance_id
                            .map(|i| format!(" to instance '{i}'"))
                            .unwrap_or_default(),
                        device.map(|d| format!(" at '{d}'")).unwrap_or_default()
                    )))
                }
                _ => {
                    return Err(Error::MissingParameter("InstanceId".into()));
                }
            };
            let current = v.attachments[idx].clone();
            if current.state == AttachmentState::Detaching && !force {
                if dry_run {
                    return Err(Error::DryRunOperation);
                }
                return Ok((v, current, None));
            }
            let inst = tx
                .instance(&scope, current.instance_id.as_str())?
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, &current.instance_id))?;
            if inst.root_volume
                && current.device == inst.root_device_name
                && !matches!(inst.state, InstanceState::Stopped | InstanceState::Terminated)
            {
                return Err(Error::IncorrectState(format!(
                    "Unable to detach root volume '{}' from instance '{}': a root volume is detached only while its instance is stopped.",
                    v.id, inst.id
                )));
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let running = matches!(
                inst.state,
                InstanceState::Pending | InstanceState::Running | InstanceState::Stopping
            );
            let mut att = current.clone();
            if running {
                att.state = AttachmentState::Detaching;
                att.force = force;
                v.attachments[idx] = att.clone();
            } else {
                att.state = AttachmentState::Detached;
                v.attachments.remove(idx);
            }
            v.state = v.settled_state();
            tx.put_volume(&v)?;
            let spec = self.bump_spec(tx, inst)?;
            Ok((v, att, spec))
        })?;
        strato_common::crash::point("volume-detach-committed");
        if let Some(spec) = spec {
            self.agent.apply(spec);
        }
        Ok((v, att))
    }

    /// Moves the attachments of a reported VM's instance (inside the report's
    /// transaction); the volumes that changed are written.
    pub(crate) fn settle_attachments(
        &self,
        tx: &WriteTx,
        inst: &Instance,
        report: &VmReport,
    ) -> Result<bool> {
        let scope = Scope::of_instance(inst);
        let volumes = tx.volumes_of_instance(&scope, inst.id.as_str())?;
        let changed = settle_from_report(volumes, &inst.id, report);
        for v in &changed {
            tx.put_volume(v)?;
        }
        Ok(!changed.is_empty())
    }

    /// What an instance's termination does to its volumes (inside the report's
    /// transaction); returns the specs of volumes to delete.
    pub(crate) fn release_volumes(
        &self,
        tx: &WriteTx,
        inst: &Instance,
    ) -> Result<Vec<strato_agent_api::VolumeSpec>> {
        let scope = Scope::of_instance(inst);
        let volumes = tx.volumes_of_instance(&scope, inst.id.as_str())?;
        let mut deleting = vec![];
        for v in release_on_termination(volumes, &inst.id) {
            tx.put_volume(&v)?;
            if v.state == VolumeState::Deleting {
                deleting.push(volume_spec(&v));
            }
        }
        Ok(deleting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::{AccountId, ResourceId};
    use strato_store::VolumeType;

    fn vol(attachments: Vec<VolumeAttachment>) -> Volume {
        Volume {
            id: VolumeId::generate(),
            account_id: AccountId::generate(),
            region: "us-east-1".into(),
            availability_zone: "us-east-1a".into(),
            size_gib: 1,
            volume_type: VolumeType::Gp3,
            iops: Some(3000),
            throughput: Some(125),
            encrypted: false,
            kms_key_id: None,
            multi_attach: false,
            snapshot_id: None,
            state: if attachments.is_empty() {
                VolumeState::Available
            } else {
                VolumeState::InUse
            },
            attachments,
            created_ms: 0,
            generation: 1,
            error_reason: None,
            client_token: None,
            client_token_digest: None,
            modification: None,
            auto_enable_io: false,
            source_image: None,
            rev: Default::default(),
        }
    }

    fn att(i: &InstanceId, state: AttachmentState, dot: bool) -> VolumeAttachment {
        VolumeAttachment {
            instance_id: i.clone(),
            device: "/dev/sdf".into(),
            state,
            attach_time_ms: 1,
            delete_on_termination: dot,
            force: false,
        }
    }

    fn report(i: &InstanceId, observed: ObservedVmState, disks: Vec<VolumeId>) -> VmReport {
        VmReport {
            instance_id: i.clone(),
            generation: 1,
            observed,
            detail: None,
            disks,
        }
    }

    #[test]
    fn reports_move_attachments() {
        let i = InstanceId::generate();
        let v = vol(vec![att(&i, AttachmentState::Attaching, false)]);
        // Not plugged yet: nothing changes.
        let r = report(&i, ObservedVmState::Running, vec![]);
        assert!(settle_from_report(vec![v.clone()], &i, &r).is_empty());
        // Plugged: attached.
        let r = report(&i, ObservedVmState::Running, vec![v.id.clone()]);
        let changed = settle_from_report(vec![v.clone()], &i, &r);
        assert_eq!(changed[0].attachments[0].state, AttachmentState::Attached);
        // Detaching and gone from the VM: the attachment ends, the volume is available.
        let d = vol(vec![att(&i, AttachmentState::Detaching, false)]);
        let r = report(&i, ObservedVmState::Running, vec![]);
        let changed = settle_from_report(vec![d.clone()], &i, &r);
        assert!(changed[0].attachments.is_empty());
        assert_eq!(changed[0].state, VolumeState::Available);
        // Still plugged: still detaching.
        let r = report(&i, ObservedVmState::Running, vec![d.id.clone()]);
        assert!(settle_from_report(vec![d], &i, &r).is_empty());
        // Another instance's report touches nothing.
        let other = InstanceId::generate();
        let r = report(&other, ObservedVmState::Running, vec![v.id.clone()]);
        assert!(settle_from_report(vec![v], &other, &r).is_empty());
    }

    #[test]
    fn termination_deletes_only_what_is_marked() {
        let i = InstanceId::generate();
        let keep = vol(vec![att(&i, AttachmentState::Attached, false)]);
        let drop = vol(vec![att(&i, AttachmentState::Attached, true)]);
        let out = release_on_termination(vec![keep, drop], &i);
        assert_eq!(out[0].state, VolumeState::Available);
        assert!(out[0].attachments.is_empty());
        assert_eq!(out[1].state, VolumeState::Deleting);
        assert_eq!(out[1].generation, 2);
        let (disks, force) = disks_for(&i, None, &out);
        assert!(disks.is_empty() && force.is_empty());
    }

    #[test]
    fn specs_name_attached_and_attaching_disks() {
        let i = InstanceId::generate();
        let a = vol(vec![att(&i, AttachmentState::Attached, false)]);
        let mut b = vol(vec![att(&i, AttachmentState::Detaching, false)]);
        b.attachments[0].force = true;
        let (disks, force) = disks_for(&i, None, &[a.clone(), b.clone()]);
        assert_eq!(disks.len(), 1);
        assert_eq!(disks[0].volume_id, a.id);
        assert_eq!(disks[0].serial, disk_serial(&a.id));
        assert_eq!(disks[0].limits.iops, 3000);
        assert_eq!(force, vec![b.id]);
    }

    #[test]
    fn the_root_volume_is_the_first_disk_and_boots() {
        let i = InstanceId::generate();
        let data = vol(vec![att(&i, AttachmentState::Attached, false)]);
        let mut root = vol(vec![att(&i, AttachmentState::Attached, true)]);
        root.attachments[0].device = "/dev/xvda".into();
        // Attached after the data volume (it was swapped in while stopped): still first.
        root.attachments[0].attach_time_ms = 5;
        let (disks, _) = disks_for(&i, Some("/dev/xvda"), &[data.clone(), root.clone()]);
        assert_eq!(disks.len(), 2);
        assert_eq!((&disks[0].volume_id, disks[0].boot), (&root.id, true));
        assert_eq!((&disks[1].volume_id, disks[1].boot), (&data.id, false));
        // An instance without a root device (launched before root volumes) boots none.
        let (disks, _) = disks_for(&i, None, &[data, root]);
        assert!(disks.iter().all(|d| !d.boot));
    }

    #[test]
    fn device_names() {
        for ok in [
            "/dev/sdf",
            "/dev/sdp",
            "/dev/xvdf",
            "/dev/xvdba",
            "/dev/sda1",
            "/dev/sdb15",
        ] {
            assert!(valid_device(ok), "{ok}");
        }
        for bad in [
            "",
            "/dev/foo",
            "sdf",
            "/dev/sd",
            "/dev/sdF",
            "/dev/xvd",
            "/dev/xvdabc",
            "/dev/sdb16",
            "/dev/sdb0",
            "/dev/nvme1n1",
        ] {
            assert!(!valid_device(bad), "{bad}");
        }
    }
}
