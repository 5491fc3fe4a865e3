//! RunInstances `BlockDeviceMapping`: data volumes made with each instance and
//! attached at its boot.
//!
//! Each mapping of a device other than the image's root device is a new volume per
//! launched instance, checked by the same rules as CreateVolume, committed `creating`
//! in the launch's own transaction with an `attaching` attachment (so the instance's
//! first spec names it); the host makes the disk before it starts the VM, and the VM's
//! first report settles the attachment. `DeleteOnTermination` is true unless the
//! mapping says otherwise (EC2's default for launch mappings). The root device cannot
//! be mapped yet (the root disk is not an EBS volume in Strato), and `VirtualName`
//! (instance store) is refused by the front door.

use super::attach::{valid_device, MAX_VOLUMES_PER_INSTANCE};
use super::{NewVolume, VolumeParams, VOLUME_RESOURCE_TYPE};
use crate::tags::put_tags;
use crate::{Caller, ControlPlane};
use serde::Serialize;
use strato_common::{Error, ResourceId, Result, SnapshotId, VolumeId};
use strato_domain::Scope;
use strato_store::{AttachmentState, Instance, Tx, Volume, VolumeAttachment, VolumeState};

/// One `BlockDeviceMapping.N` of RunInstances, as the front door decoded it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LaunchMapping {
    pub device: String,
    /// `NoDevice`: the image's mapping of this device is suppressed.
    pub no_device: bool,
    pub ebs: Option<LaunchEbs>,
}

/// The `Ebs` part of a launch mapping: the volume, as CreateVolume would take it
/// (Multi-Attach aside), and whether it goes with its instance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LaunchEbs {
    pub volume: VolumeParams,
    pub delete_on_termination: Option<bool>,
}

/// A data volume each launched instance gets.
#[derive(Clone, Debug)]
pub(crate) struct LaunchVolume {
    device: String,
    new: NewVolume,
    snapshot_id: Option<SnapshotId>,
    delete_on_termination: bool,
}

impl ControlPlane {
    /// Checks a launch's mappings; `root_device` is the image's root device name.
    pub(crate) fn plan_launch_volumes(
        &self,
        caller: &Caller,
        root_device: &str,
        maps: &[LaunchMapping],
    ) -> Result<Vec<LaunchVolume>> {
        let mut planned: Vec<LaunchVolume> = vec![];
        let mut seen: Vec<&str> = vec![];
        for (n, m) in maps.iter().enumerate() {
            let at = |what: &str| format!("BlockDeviceMapping.{}.{what}", n + 1);
            if m.device.is_empty() {
                return Err(Error::MissingParameter(at("DeviceName")));
            }
            if seen.contains(&m.device.as_str()) {
                return Err(Error::invalid_value(format!(
                    "The device {} is mapped more than once.",
                    m.device
                )));
            }
            seen.push(&m.device);
            if m.device == root_device {
                return Err(Error::Unsupported(format!(
                    "BlockDeviceMapping of the root device {root_device}: the root disk is not an EBS volume in Strato yet, so its size, type and encryption cannot be set."
                )));
            }
            if !valid_device(&m.device) {
                return Err(Error::invalid_value(format!(
                    "Value ({}) for parameter device is invalid. {} is not a valid EBS device name.",
                    m.device, m.device
                )));
            }
            let ebs = match (&m.ebs, m.no_device) {
                (Some(_), true) => {
                    return Err(Error::InvalidParameterCombination(format!(
                        "{} and {} cannot both be given.",
                        at("NoDevice"),
                        at("Ebs")
                    )))
                }
                // The image maps no device but its root: nothing to suppress.
                (None, true) => continue,
                (None, false) => return Err(Error::MissingParameter(at("Ebs"))),
                (Some(e), false) => e,
            };
            let new = self.new_volume(
                caller,
                &VolumeParams {
                    multi_attach: None,
                    ..ebs.volume.clone()
                },
            )?;
            planned.push(LaunchVolume {
                device: m.device.clone(),
                new,
                snapshot_id: ebs.volume.snapshot_id.clone(),
                delete_on_termination: ebs.delete_on_termination.unwrap_or(true),
            });
        }
        if planned.len() > MAX_VOLUMES_PER_INSTANCE {
            return Err(Error::AttachmentLimitExceeded(format!(
                "An instance takes at most {MAX_VOLUMES_PER_INSTANCE} volumes, not {}.",
                planned.len()
            )));
        }
        Ok(planned)
    }
}

/// Writes the volumes of one launched instance in the launch's transaction:
/// `creating`, attached (`attaching`) at their devices, tagged with the launch's
/// `volume` tags. Returns them (their specs go to the host after the commit).
pub(crate) fn make_launch_volumes(
    tx: &Tx,
    inst: &Instance,
    plan: &[LaunchVolume],
    tags: &[(String, String)],
    now_ms: i64,
) -> Result<Vec<Volume>> {
    let scope = Scope::of_instance(inst);
    let mut made = Vec::with_capacity(plan.len());
    for p in plan {
        let c = p.new.config;
        let v = Volume {
            id: VolumeId::generate(),
            account_id: inst.account_id.clone(),
            region: scope.region.clone(),
            availability_zone: inst.availability_zone.clone(),
            size_gib: c.size_gib,
            volume_type: c.volume_type,
            iops: c.iops,
            throughput: c.throughput,
            encrypted: p.new.encrypted,
            kms_key_id: p.new.kms_key_id.clone(),
            multi_attach: c.multi_attach,
            snapshot_id: p.snapshot_id.clone(),
            state: VolumeState::Creating,
            attachments: vec![VolumeAttachment {
                instance_id: inst.id.clone(),
                device: p.device.clone(),
                state: AttachmentState::Attaching,
                attach_time_ms: now_ms,
                delete_on_termination: p.delete_on_termination,
                force: false,
            }],
            created_ms: now_ms,
            generation: 1,
            error_reason: None,
            client_token: None,
            client_token_digest: None,
            modification: None,
            auto_enable_io: false,
            rev: Default::default(),
        };
        tx.put_volume(&v)?;
        put_tags(tx, &scope, v.id.as_str(), VOLUME_RESOURCE_TYPE, tags)?;
        made.push(v);
    }
    Ok(made)
}
