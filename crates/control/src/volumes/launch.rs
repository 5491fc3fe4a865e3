//! RunInstances `BlockDeviceMapping`: the root volume and the data volumes made with
//! each instance and attached at its boot.
//!
//! Every instance gets a root volume at its image's root device: a copy of the
//! image's root disk (copy-on-write on the host), of the image's size and type (gp3)
//! unless the root device's mapping says otherwise; a larger size is for the guest to
//! grow into (the built-in image grows its file system at boot). Each mapping of
//! another device is a new data volume. Both are checked by the same rules as
//! CreateVolume, committed `creating` in the launch's own transaction with an
//! `attaching` attachment (so the instance's first spec names them); the host makes
//! the disks before it starts the VM, and the VM's first report settles the
//! attachments. `DeleteOnTermination` is true unless the mapping says otherwise (EC2's
//! default for launch mappings). A `VirtualName` mapping names an instance-store disk
//! of the type (`ephemeralN`), which every instance of the type has anyway.

use super::attach::{valid_device, MAX_VOLUMES_PER_INSTANCE};
use super::{NewVolume, VolumeParams, VOLUME_RESOURCE_TYPE};
use crate::catalog::InstanceType;
use crate::tags::put_tags;
use crate::{Caller, ControlPlane};
use serde::Serialize;
use strato_common::{Error, ResourceId, Result, SnapshotId, VolumeId};
use strato_domain::Scope;
use strato_store::{
    AttachmentState, Image, ImageEbs, ImageState, Instance, SnapshotState, Volume,
    VolumeAttachment, VolumeImage, VolumeState, VolumeType, WriteTx,
};

/// One `BlockDeviceMapping.N` of RunInstances, as the front door decoded it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LaunchMapping {
    pub device: String,
    /// `NoDevice`: the image's mapping of this device is suppressed.
    pub no_device: bool,
    /// `VirtualName`: an instance-store disk of the type (`ephemeral0`…) at this device.
    pub virtual_name: Option<String>,
    pub ebs: Option<LaunchEbs>,
}

/// The `Ebs` part of a launch mapping: the volume, as CreateVolume would take it
/// (Multi-Attach aside), and whether it goes with its instance.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LaunchEbs {
    pub volume: VolumeParams,
    pub delete_on_termination: Option<bool>,
}

/// A volume each launched instance gets.
#[derive(Clone, Debug)]
pub(crate) struct LaunchVolume {
    device: String,
    new: NewVolume,
    snapshot_id: Option<SnapshotId>,
    /// The root volume's image.
    image: Option<VolumeImage>,
    delete_on_termination: bool,
}

impl ControlPlane {
    /// Checks a launch's mappings against its image: the root volume first, then the
    /// data volumes (the image's own, as the request overrides or suppresses them, and
    /// the request's others).
    pub(crate) fn plan_launch_volumes(
        &self,
        caller: &Caller,
        image: &Image,
        itype: &InstanceType,
        maps: &[LaunchMapping],
    ) -> Result<Vec<LaunchVolume>> {
        if image.state != ImageState::Available {
            return Err(Error::InvalidAmiUnavailable(format!(
                "Image {} is '{}': only an available image can be launched.{}",
                image.id,
                image.state.as_str(),
                image
                    .state_reason
                    .as_ref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default()
            )));
        }
        let root_device = image.root_device_name.as_str();
        let image_maps = image.mappings();
        let mut planned: Vec<LaunchVolume> = vec![];
        let mut seen: Vec<&str> = vec![];
        let mut root_map: Option<(usize, &LaunchMapping)> = None;
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
            if let Some(name) = &m.virtual_name {
                check_instance_store(itype, &m.device, name, m, &at)?;
                continue;
            }
            if m.device == root_device {
                root_map = Some((n, m));
                continue;
            }
            if !valid_device(&m.device) {
                return Err(Error::invalid_value(format!(
                    "Value ({}) for parameter device is invalid. {} is not a valid EBS device name.",
                    m.device, m.device
                )));
            }
            let of_image = image_maps
                .iter()
                .find(|im| im.device_name == m.device)
                .and_then(|im| im.ebs.as_ref());
            let ebs = match (&m.ebs, m.no_device) {
                (Some(_), true) => {
                    return Err(Error::InvalidParameterCombination(format!(
                        "{} and {} cannot both be given.",
                        at("NoDevice"),
                        at("Ebs")
                    )))
                }
                // Suppresses the image's mapping of the device, if it has one.
                (None, true) => continue,
                (None, false) => return Err(Error::MissingParameter(at("Ebs"))),
                (Some(e), false) => e,
            };
            if let Some(base) = of_image {
                planned.push(self.image_volume(caller, image, &m.device, base, ebs, Some(n))?);
                continue;
            }
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
                image: None,
                delete_on_termination: ebs.delete_on_termination.unwrap_or(true),
            });
        }
        // The image's data volumes the request did not mention.
        for im in &image_maps {
            if im.device_name == root_device || seen.contains(&im.device_name.as_str()) {
                continue;
            }
            if let Some(base) = &im.ebs {
                planned.push(self.image_volume(
                    caller,
                    image,
                    &im.device_name,
                    base,
                    &LaunchEbs::default(),
                    None,
                )?);
            }
        }
        if planned.len() > MAX_VOLUMES_PER_INSTANCE {
            return Err(Error::AttachmentLimitExceeded(format!(
                "An instance takes at most {MAX_VOLUMES_PER_INSTANCE} volumes besides its root volume, not {}.",
                planned.len()
            )));
        }
        planned.insert(0, self.plan_root_volume(caller, image, root_map)?);
        Ok(planned)
    }

    /// The root volume of a launch: the image's root disk (a file of the host for a
    /// built-in image, else a snapshot), as the root device's mapping (`n`th of the
    /// request), if any, shapes it.
    fn plan_root_volume(
        &self,
        caller: &Caller,
        image: &Image,
        map: Option<(usize, &LaunchMapping)>,
    ) -> Result<LaunchVolume> {
        let device = &image.root_device_name;
        let (ebs, n) = match map {
            None => (LaunchEbs::default(), None),
            Some((n, m)) if m.no_device => {
                return Err(Error::InvalidBlockDeviceMapping(format!(
                    "BlockDeviceMapping.{}.NoDevice: the root device {device} cannot be suppressed; an instance boots from its root volume.",
                    n + 1
                )))
            }
            Some((n, m)) => match &m.ebs {
                Some(e) => (e.clone(), Some(n)),
                None => {
                    return Err(Error::MissingParameter(format!(
                        "BlockDeviceMapping.{}.Ebs",
                        n + 1
                    )))
                }
            },
        };
        let base = image
            .mappings()
            .into_iter()
            .find(|m| m.device_name == *device)
            .and_then(|m| m.ebs)
            .ok_or_else(|| {
                Error::InvalidAmiUnavailable(format!(
                    "Image {} maps no volume at its root device {device}.",
                    image.id
                ))
            })?;
        if base.snapshot_id.is_some() {
            return self.image_volume(caller, image, device, &base, &ebs, n);
        }
        let at = |what: &str| format!("BlockDeviceMapping.{}.{what}", n.unwrap_or(0) + 1);
        if let Some(snap) = &ebs.volume.snapshot_id {
            return Err(Error::InvalidBlockDeviceMapping(format!(
                "{} ({snap}): the root volume of {device} is made from image {}'s root disk, which no snapshot can replace at launch.",
                at("Ebs.SnapshotId"),
                image.id
            )));
        }
        check_root_type(ebs.volume.volume_type, &at("Ebs.VolumeType"))?;
        let size = match ebs.volume.size {
            Some(s) if s < i64::from(image.root_size_gib) => {
                return Err(Error::InvalidBlockDeviceMapping(format!(
                    "Volume of size {s}GB is smaller than the root disk of image {} ({} GiB), expect size >= {}GB",
                    image.id, image.root_size_gib, image.root_size_gib
                )))
            }
            Some(s) => s,
            None => i64::from(image.root_size_gib),
        };
        let new = self.new_volume(
            caller,
            &VolumeParams {
                size: Some(size),
                volume_type: Some(ebs.volume.volume_type.unwrap_or(VolumeType::Gp3)),
                multi_attach: None,
                ..ebs.volume.clone()
            },
        )?;
        Ok(LaunchVolume {
            device: device.clone(),
            new,
            snapshot_id: None,
            image: Some(VolumeImage {
                image_id: image.id.clone(),
                dir: image.boot.dir.clone(),
                root_disk: image.boot.root_disk.clone(),
            }),
            delete_on_termination: ebs.delete_on_termination.unwrap_or(true),
        })
    }

    /// A volume of one of an image's EBS mappings (`base`), as the request's mapping of
    /// its device (the `n`th, if any) overrides it: a larger size, another type and
    /// performance, `DeleteOnTermination`, encryption. Made of the image's snapshot,
    /// which whoever may launch the image may use.
    fn image_volume(
        &self,
        caller: &Caller,
        image: &Image,
        device: &str,
        base: &ImageEbs,
        over: &LaunchEbs,
        n: Option<usize>,
    ) -> Result<LaunchVolume> {
        let at = |what: &str| format!("BlockDeviceMapping.{}.{what}", n.unwrap_or(0) + 1);
        let root = device == image.root_device_name;
        if let Some(snap) = &over.volume.snapshot_id {
            if Some(snap) != base.snapshot_id.as_ref() {
                return Err(Error::InvalidBlockDeviceMapping(format!(
                    "{} ({snap}): image {} makes {device} of {}, which no other snapshot can replace at launch.",
                    at("Ebs.SnapshotId"),
                    image.id,
                    base.snapshot_id
                        .as_ref()
                        .map_or("an empty volume".to_string(), |s| s.to_string())
                )));
            }
        }
        if root {
            check_root_type(over.volume.volume_type, &at("Ebs.VolumeType"))?;
        }
        let size = match over.volume.size {
            Some(s) if s < i64::from(base.volume_size_gib) => {
                return Err(Error::InvalidBlockDeviceMapping(format!(
                    "Volume of size {s}GB is smaller than snapshot '{}' of image {} at {device}, expect size >= {}GB",
                    base.snapshot_id.as_ref().map_or("-".to_string(), |s| s.to_string()),
                    image.id,
                    base.volume_size_gib
                )))
            }
            Some(s) => s,
            None => i64::from(base.volume_size_gib),
        };
        let source = match &base.snapshot_id {
            Some(id) => Some(
                self.db
                    .read(|tx| tx.snapshot_by_id(id.as_str()))?
                    .filter(|s| s.state == SnapshotState::Completed)
                    .ok_or_else(|| {
                        Error::InvalidAmiUnavailable(format!(
                            "Snapshot {id} of image {} is gone: the image cannot be launched.",
                            image.id
                        ))
                    })?,
            ),
            None => None,
        };
        let volume_type = over.volume.volume_type.unwrap_or(base.volume_type);
        let (iops, throughput) = super::rules::carried_performance(
            (base.volume_type, base.iops, base.throughput),
            volume_type,
            u32::try_from(size).unwrap_or(u32::MAX),
        );
        let new = self.new_volume_of(
            caller,
            &VolumeParams {
                size: Some(size),
                snapshot_id: None,
                volume_type: Some(volume_type),
                iops: over.volume.iops.or(iops),
                throughput: over.volume.throughput.or(throughput),
                encrypted: Some(over.volume.encrypted.unwrap_or(false) || base.encrypted),
                kms_key_id: over.volume.kms_key_id.clone(),
                multi_attach: None,
            },
            source.as_ref(),
        )?;
        Ok(LaunchVolume {
            device: device.to_string(),
            new,
            snapshot_id: base.snapshot_id.clone(),
            image: None,
            delete_on_termination: over
                .delete_on_termination
                .unwrap_or(base.delete_on_termination),
        })
    }
}

/// `InvalidBlockDeviceMapping` for a root volume of a type that cannot boot (st1,
/// sc1); `at` names the request's parameter.
pub(crate) fn check_root_type(t: Option<VolumeType>, at: &str) -> Result<()> {
    if let Some(t @ (VolumeType::St1 | VolumeType::Sc1)) = t {
        return Err(Error::InvalidBlockDeviceMapping(format!(
            "{at}: {} volumes cannot be root volumes.",
            t.as_str()
        )));
    }
    Ok(())
}

/// Checks a mapping of an instance-store disk (`VirtualName`): a device of its own,
/// nothing else in the mapping, and a disk the type has. Every disk of a type's
/// instance store is the instance's whatever the mappings say (as on EC2's NVMe
/// instance stores), so a mapping only names one; it is shown nowhere.
fn check_instance_store(
    itype: &InstanceType,
    device: &str,
    name: &str,
    m: &LaunchMapping,
    at: &dyn Fn(&str) -> String,
) -> Result<()> {
    if m.ebs.is_some() || m.no_device {
        return Err(Error::InvalidParameterCombination(format!(
            "{} cannot be given with {} or {}.",
            at("VirtualName"),
            at("Ebs"),
            at("NoDevice")
        )));
    }
    if !valid_device(device) {
        return Err(Error::invalid_value(format!(
            "Value ({device}) for parameter device is invalid. {device} is not a valid device name."
        )));
    }
    let n: Option<u32> = name
        .strip_prefix("ephemeral")
        .filter(|d| !d.is_empty() && d.len() <= 2 && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse().ok());
    let Some(n) = n else {
        return Err(Error::invalid_value(format!(
            "Value ({name}) for {} is invalid: instance-store disks are named ephemeral0, ephemeral1, …",
            at("VirtualName")
        )));
    };
    let count = itype.instance_store.map_or(0, |s| s.count);
    if n >= count {
        return Err(Error::InvalidBlockDeviceMapping(format!(
            "{}: instance type {} has {count} instance-store disk(s), so {name} does not exist.",
            at("VirtualName"),
            itype.name
        )));
    }
    Ok(())
}

/// Writes the volumes of one launched instance in the launch's transaction:
/// `creating`, attached (`attaching`) at their devices, tagged with the launch's
/// `volume` tags. Returns them (their specs go to the host after the commit).
pub(crate) fn make_launch_volumes(
    tx: &WriteTx,
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
            source_image: p.image.clone(),
            rev: Default::default(),
        };
        tx.put_volume(&v)?;
        put_tags(tx, &scope, v.id.as_str(), VOLUME_RESOURCE_TYPE, tags)?;
        made.push(v);
    }
    Ok(made)
}
