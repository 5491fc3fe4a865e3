//! CreateImage, RegisterImage and CopyImage: images whose disks are EBS snapshots.
//!
//! Each commits, in one transaction, the image (`pending`), the snapshots it is made of
//! (`pending`, except RegisterImage's, which exist already) and their tags; the host
//! then takes or copies the snapshots, and the last snapshot's report makes the image
//! `available` (or `failed`, see [`super::attributes::settle_images`]). A crash after
//! the commit loses nothing: startup sends every snapshot to the host again.
//!
//! CreateImage of a running instance takes its volumes' snapshots together, as
//! CreateSnapshots does. Without `NoReboot` the guest is first shut down cleanly and
//! held off while they are taken, then started again: file systems are unmounted when
//! the snapshots are taken, as on EC2.

use super::{builtin_boot, BUILTIN_KERNEL_ID, BUILTIN_RAMDISK_ID};
use crate::tags::{put_tags, tags_for, TagSpec};
use crate::volumes::launch::LaunchMapping;
use crate::volumes::rules::carried_performance;
use crate::volumes::snapshots::{load_restorable, pending, snapshot_spec, SNAPSHOT_RESOURCE_TYPE};
use crate::volumes::VolumeParams;
use crate::{Caller, ControlPlane, Tags};
use strato_agent_api::Quiesce;
use strato_common::time_fmt::now_ms;
use strato_common::{Error, ImageId, InstanceId, ResourceId, ResourceKind, Result, SnapshotId};
use strato_domain::{InstanceState, Scope};
use strato_store::{
    Image, ImageBoot, ImageEbs, ImageMapping, ImageState, Snapshot, SnapshotOrigin, SnapshotState,
    VolumeType, WriteTx,
};

/// The tag resource type of images.
pub const IMAGE_RESOURCE_TYPE: &str = "image";

/// The longest image description EC2 takes.
const MAX_DESCRIPTION: usize = 255;

/// A CreateImage request, as the front door decoded it.
#[derive(Clone, Debug, Default)]
pub struct CreateImageInput {
    pub instance_id: Option<InstanceId>,
    pub name: String,
    pub description: Option<String>,
    pub no_reboot: bool,
    pub mappings: Vec<LaunchMapping>,
    pub tag_specs: Vec<TagSpec>,
}

/// A RegisterImage request, as the front door decoded it.
#[derive(Clone, Debug, Default)]
pub struct RegisterImageInput {
    pub name: String,
    pub description: Option<String>,
    pub architecture: Option<String>,
    pub root_device_name: Option<String>,
    pub mappings: Vec<LaunchMapping>,
    pub boot_mode: Option<String>,
    pub ena_support: Option<bool>,
    pub imds_support: Option<String>,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    pub virtualization_type: Option<String>,
    pub tag_specs: Vec<TagSpec>,
}

/// A CopyImage request, as the front door decoded it (called in the destination).
#[derive(Clone, Debug, Default)]
pub struct CopyImageInput {
    pub source_image_id: Option<ImageId>,
    pub source_region: String,
    pub name: String,
    pub description: Option<String>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub copy_tags: bool,
    pub client_token: Option<String>,
    pub tag_specs: Vec<TagSpec>,
}

/// EC2's rule for image names: 3 to 128 of letters, digits and `()[] ./-'@_`.
pub fn check_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
    if name.is_empty() {
        return Err(Error::MissingParameter("Name".into()));
    }
    if !(3..=128).contains(&name.chars().count()) || !name.chars().all(ok_char) {
        return Err(Error::InvalidAmiNameMalformed(format!(
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_' (not '{name}')."
        )));
    }
    Ok(())
}

/// An image description: at most 255 characters.
pub fn check_description(d: &str) -> Result<()> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid_value(format!(
            "The description is longer than {MAX_DESCRIPTION} characters."
        )));
    }
    Ok(())
}

/// `InvalidAMIName.Duplicate` when the caller has another live image of that name in
/// the region.
fn name_free(tx: &WriteTx, caller: &Caller, name: &str) -> Result<()> {
    if let Some(other) = tx
        .owned_images(&caller.account, &caller.region)?
        .into_iter()
        .find(|i| i.name == name && i.state != ImageState::Deregistered)
    {
        return Err(Error::InvalidAmiNameDuplicate(format!(
            "AMI name {name} is already in use by AMI {}",
            other.id
        )));
    }
    Ok(())
}

/// The image tags and the snapshot tags of a request (`snapshots`: whether the action
/// makes snapshots that may be tagged).
fn split_tags(specs: &[TagSpec], snapshots: bool) -> Result<(Tags, Tags)> {
    let (img, snap): (Vec<TagSpec>, Vec<TagSpec>) = specs
        .iter()
        .cloned()
        .partition(|s| s.resource_type == IMAGE_RESOURCE_TYPE);
    if !snapshots && !snap.is_empty() {
        return Err(Error::invalid_value(format!(
            "'{}' is not a valid taggable resource type for this operation: only 'image' is.",
            snap[0].resource_type
        )));
    }
    Ok((
        tags_for(&img, IMAGE_RESOURCE_TYPE)?,
        tags_for(&snap, SNAPSHOT_RESOURCE_TYPE)?,
    ))
}

/// A new `pending` image of the caller's in its region.
fn new_image(caller: &Caller, name: &str, description: &str) -> Image {
    Image {
        id: ImageId::generate(),
        owner: Some(caller.account.clone()),
        owner_alias: None,
        name: name.to_string(),
        description: description.to_string(),
        architecture: "x86_64".to_string(),
        root_device_name: "/dev/xvda".to_string(),
        root_device_type: "ebs".to_string(),
        virtualization_type: "hvm".to_string(),
        hypervisor: "xen".to_string(),
        kernel_id: None,
        ramdisk_id: None,
        public: false,
        creation_ms: now_ms(),
        platform_details: "Linux/UNIX".to_string(),
        ena_support: true,
        boot_mode: "legacy-bios".to_string(),
        root_size_gib: 8,
        boot: ImageBoot::default(),
        region: Some(caller.region.clone()),
        state: ImageState::Pending,
        state_reason: None,
        block_devices: vec![],
        shared_with: vec![],
        imds_support: None,
        deprecation_ms: None,
        source_instance_id: None,
        source_image_id: None,
        source_region: None,
        client_token: None,
    }
}

/// One image mapping of a request that adds a device (not one of the instance's
/// volumes): an instance-store disk, or an EBS volume, empty or of a snapshot the
/// caller may use. `at` names the request's `BlockDeviceMapping.N`.
fn added_mapping(
    cp: &ControlPlane,
    tx: &WriteTx,
    caller: &Caller,
    m: &LaunchMapping,
    at: &dyn Fn(&str) -> String,
) -> Result<Option<ImageMapping>> {
    if let Some(name) = &m.virtual_name {
        if m.ebs.is_some() || m.no_device {
            return Err(Error::InvalidParameterCombination(format!(
                "{} cannot be given with {} or {}.",
                at("VirtualName"),
                at("Ebs"),
                at("NoDevice")
            )));
        }
        let digits = name.strip_prefix("ephemeral").unwrap_or("");
        if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid_value(format!(
                "Value ({name}) for {} is invalid: instance-store disks are named ephemeral0, ephemeral1, …",
                at("VirtualName")
            )));
        }
        return Ok(Some(ImageMapping {
            device_name: m.device.clone(),
            virtual_name: Some(name.clone()),
            ebs: None,
        }));
    }
    let ebs = match (&m.ebs, m.no_device) {
        (Some(_), true) => {
            return Err(Error::InvalidParameterCombination(format!(
                "{} and {} cannot both be given.",
                at("NoDevice"),
                at("Ebs")
            )))
        }
        (None, true) => return Ok(None),
        (None, false) => return Err(Error::MissingParameter(at("Ebs"))),
        (Some(e), false) => e,
    };
    let source = match &ebs.volume.snapshot_id {
        Some(id) => Some(completed_snapshot(tx, caller, id)?),
        None => None,
    };
    let new = cp.new_volume_of(
        caller,
        &VolumeParams {
            multi_attach: None,
            ..ebs.volume.clone()
        },
        source.as_ref(),
    )?;
    Ok(Some(ImageMapping {
        device_name: m.device.clone(),
        virtual_name: None,
        ebs: Some(ImageEbs {
            snapshot_id: source.map(|s| s.id),
            volume_size_gib: new.config.size_gib,
            volume_type: new.config.volume_type,
            iops: new.config.iops,
            throughput: new.config.throughput,
            delete_on_termination: ebs.delete_on_termination.unwrap_or(true),
            encrypted: new.encrypted,
        }),
    }))
}

/// A completed snapshot of the caller's region that the caller may use.
fn completed_snapshot(tx: &WriteTx, caller: &Caller, id: &SnapshotId) -> Result<Snapshot> {
    let s = load_restorable(tx, &caller.account, &caller.region, id)?;
    if s.state != SnapshotState::Completed {
        return Err(Error::IncorrectState(format!(
            "Snapshot '{}' is '{}': an image can only be made of a completed snapshot.",
            s.id,
            s.state.as_str()
        )));
    }
    Ok(s)
}

/// Checks that device names are unique and well formed; returns the request's mapping
/// of each device.
fn by_device(maps: &[LaunchMapping]) -> Result<Vec<(usize, &LaunchMapping)>> {
    let mut seen: Vec<&str> = vec![];
    for (n, m) in maps.iter().enumerate() {
        if m.device.is_empty() {
            return Err(Error::MissingParameter(format!(
                "BlockDeviceMapping.{}.DeviceName",
                n + 1
            )));
        }
        if seen.contains(&m.device.as_str()) {
            return Err(Error::invalid_value(format!(
                "The device {} is mapped more than once.",
                m.device
            )));
        }
        if !crate::volumes::attach::valid_device(&m.device) {
            return Err(Error::invalid_value(format!(
                "Value ({}) for parameter device is invalid. {} is not a valid device name.",
                m.device, m.device
            )));
        }
        seen.push(&m.device);
    }
    Ok(maps.iter().enumerate().collect())
}

impl ControlPlane {
    /// CreateImage: an image of the caller's running or stopped instance, one snapshot
    /// per attached volume (less those the request maps to `NoDevice`), booting the way
    /// the instance's image does.
    pub fn create_image(
        &self,
        caller: &Caller,
        input: &CreateImageInput,
        dry_run: bool,
    ) -> Result<(Image, Tags)> {
        let instance_id = input
            .instance_id
            .clone()
            .ok_or_else(|| Error::MissingParameter("InstanceId".into()))?;
        check_name(&input.name)?;
        let description = input.description.clone().unwrap_or_default();
        check_description(&description)?;
        let (image_tags, snap_tags) = split_tags(&input.tag_specs, true)?;
        let maps = by_device(&input.mappings)?;
        let scope = caller.scope();
        let (img, snaps, running) = self.db.write(|tx| {
            let inst = tx
                .instance(&scope, instance_id.as_str())?
                .filter(|i| i.state != InstanceState::Terminated)
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, &instance_id))?;
            let running = match inst.state {
                InstanceState::Running => true,
                InstanceState::Stopped => false,
                other => {
                    return Err(Error::IncorrectInstanceState(format!(
                        "The instance '{}' is not in a state from which it can be imaged: it is '{}'; it must be 'running' or 'stopped'.",
                        inst.id,
                        other.name()
                    )))
                }
            };
            name_free(tx, caller, &input.name)?;
            let mut vols = tx.volumes_of_instance(&scope, inst.id.as_str())?;
            // The root volume first, then by device name.
            vols.sort_by_key(|v| {
                let dev = v
                    .attachments
                    .iter()
                    .find(|a| a.instance_id == inst.id)
                    .map(|a| a.device.clone())
                    .unwrap_or_default();
                (dev != inst.root_device_name, dev)
            });
            if !inst.root_volume
                || !vols
                    .iter()
                    .any(|v| crate::volumes::attach::is_root_of(v, &inst))
            {
                return Err(Error::IncorrectInstanceState(format!(
                    "The instance '{}' does not have a volume attached at root ({}).",
                    inst.id, inst.root_device_name
                )));
            }
            let mut img = new_image(caller, &input.name, &description);
            img.source_instance_id = Some(inst.id.clone());
            img.root_device_name = inst.root_device_name.clone();
            match tx.image(inst.image_id.as_str())? {
                Some(src) => {
                    img.architecture = src.architecture;
                    img.boot_mode = src.boot_mode;
                    img.ena_support = src.ena_support;
                    img.kernel_id = src.kernel_id;
                    img.ramdisk_id = src.ramdisk_id;
                    img.imds_support = src.imds_support;
                    img.platform_details = src.platform_details;
                    img.boot = ImageBoot {
                        root_disk: String::new(),
                        ..src.boot
                    };
                }
                None => {
                    return Err(Error::IncorrectInstanceState(format!(
                        "The image {} that instance '{}' was launched from is unknown to this installation.",
                        inst.image_id, inst.id
                    )))
                }
            }
            let mut snaps: Vec<(Snapshot, Tags)> = vec![];
            let mut used: Vec<&str> = vec![];
            for v in &vols {
                let Some(att) = v.attachments.iter().find(|a| a.instance_id == inst.id) else {
                    continue;
                };
                let is_root = att.device == inst.root_device_name;
                let asked = maps.iter().find(|(_, m)| m.device == att.device);
                used.push(&att.device);
                let (n, m) = match asked {
                    None => (0, None),
                    Some((n, m)) => (*n, Some(*m)),
                };
                let at = |what: &str| format!("BlockDeviceMapping.{}.{what}", n + 1);
                if let Some(m) = m {
                    if m.no_device {
                        if is_root {
                            return Err(Error::InvalidBlockDeviceMapping(format!(
                                "{}: the root device {} cannot be left out of an image.",
                                at("NoDevice"),
                                att.device
                            )));
                        }
                        continue;
                    }
                    if m.virtual_name.is_some() {
                        return Err(Error::InvalidBlockDeviceMapping(format!(
                            "{}: {} holds volume {}, not an instance-store disk.",
                            at("VirtualName"),
                            att.device,
                            v.id
                        )));
                    }
                }
                let over = m.and_then(|m| m.ebs.clone()).unwrap_or_default();
                if over.volume.snapshot_id.is_some() {
                    return Err(Error::InvalidBlockDeviceMapping(format!(
                        "{}: {} is made of volume {}'s new snapshot, which no other snapshot can replace.",
                        at("Ebs.SnapshotId"),
                        att.device,
                        v.id
                    )));
                }
                if is_root {
                    crate::volumes::launch::check_root_type(
                        over.volume.volume_type,
                        &at("Ebs.VolumeType"),
                    )?;
                }
                let size = match over.volume.size {
                    Some(s) if s < i64::from(v.size_gib) => {
                        return Err(Error::InvalidBlockDeviceMapping(format!(
                            "{}: {s} GiB is smaller than volume {} ({} GiB) at {}.",
                            at("Ebs.VolumeSize"),
                            v.id,
                            v.size_gib,
                            att.device
                        )))
                    }
                    Some(s) => s,
                    None => i64::from(v.size_gib),
                };
                let volume_type = over.volume.volume_type.unwrap_or(v.volume_type);
                let (iops, throughput) = carried_performance(
                    (v.volume_type, v.iops, v.throughput),
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
                        encrypted: Some(v.encrypted),
                        kms_key_id: None,
                        multi_attach: None,
                    },
                    None,
                )?;
                let mut s = pending(
                    caller,
                    SnapshotOrigin::Volume,
                    (Some(v.id.clone()), v.size_gib),
                    &format!("Created by CreateImage({}) for {}", inst.id, img.id),
                    (v.encrypted, v.kms_key_id.clone()),
                );
                s.description.truncate(255);
                img.block_devices.push(ImageMapping {
                    device_name: att.device.clone(),
                    virtual_name: None,
                    ebs: Some(ImageEbs {
                        snapshot_id: Some(s.id.clone()),
                        volume_size_gib: new.config.size_gib,
                        volume_type: new.config.volume_type,
                        iops: new.config.iops,
                        throughput: new.config.throughput,
                        delete_on_termination: over
                            .delete_on_termination
                            .unwrap_or(att.delete_on_termination),
                        encrypted: v.encrypted,
                    }),
                });
                if is_root {
                    img.root_size_gib = new.config.size_gib;
                }
                snaps.push((s, snap_tags.clone()));
            }
            for (n, m) in &maps {
                if used.contains(&m.device.as_str()) {
                    continue;
                }
                let at = |what: &str| format!("BlockDeviceMapping.{}.{what}", n + 1);
                if let Some(added) = added_mapping(self, tx, caller, m, &at)? {
                    img.block_devices.push(added);
                }
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            for (s, tags) in &snaps {
                tx.put_snapshot(s)?;
                put_tags(tx, &scope, s.id.as_str(), SNAPSHOT_RESOURCE_TYPE, tags)?;
            }
            tx.put_image(&img)?;
            put_tags(tx, &scope, img.id.as_str(), IMAGE_RESOURCE_TYPE, &image_tags)?;
            Ok((img, snaps, running))
        })?;
        strato_common::crash::point("image-create-committed");
        let specs: Vec<_> = snaps.iter().map(|(s, _)| snapshot_spec(s)).collect();
        match (running, input.no_reboot) {
            (false, _) => self.agent.apply_snapshots(specs, None),
            (true, true) => self
                .agent
                .apply_snapshots(specs, Some((&instance_id, Quiesce::Pause))),
            // The guest takes its time to shut down: the answer does not wait for it
            // (the image is `pending` meanwhile), as on EC2.
            (true, false) => {
                let agent = self.agent.clone();
                std::thread::spawn(move || {
                    agent.apply_snapshots(specs, Some((&instance_id, Quiesce::Reboot)))
                });
            }
        }
        Ok((img, image_tags))
    }

    /// RegisterImage: an image of snapshots the caller may use, its root device mapped
    /// to one of them. With the built-in kernel (`KernelId`) it boots that kernel
    /// directly; otherwise the firmware boots the root volume's own boot loader
    /// (SeaBIOS for `legacy-bios`, OVMF for `uefi` and `uefi-preferred`).
    pub fn register_image(
        &self,
        caller: &Caller,
        input: &RegisterImageInput,
        dry_run: bool,
    ) -> Result<(Image, Tags)> {
        check_name(&input.name)?;
        let description = input.description.clone().unwrap_or_default();
        check_description(&description)?;
        let (image_tags, _) = split_tags(&input.tag_specs, false)?;
        let mut img = new_image(caller, &input.name, &description);
        match input.architecture.as_deref() {
            None | Some("x86_64") => {}
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "The architecture '{other}' is not supported: this installation's hosts run x86_64 guests only."
                )))
            }
        }
        match input.virtualization_type.as_deref() {
            None | Some("hvm") => {}
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "The virtualization type '{other}' is not supported: only 'hvm' is."
                )))
            }
        }
        if let Some(mode) = &input.boot_mode {
            if !["legacy-bios", "uefi", "uefi-preferred"].contains(&mode.as_str()) {
                return Err(Error::invalid_value(format!(
                    "The boot mode '{mode}' is not valid. Valid values: legacy-bios, uefi, uefi-preferred."
                )));
            }
            img.boot_mode = mode.clone();
        }
        if let Some(v) = &input.imds_support {
            if v != "v2.0" {
                return Err(Error::invalid_value(format!(
                    "The value '{v}' is not valid for ImdsSupport. Valid values: v2.0."
                )));
            }
            img.imds_support = Some(v.clone());
        }
        img.ena_support = input.ena_support.unwrap_or(false);
        img.boot = match (input.kernel_id.as_deref(), input.ramdisk_id.as_deref()) {
            (None, None) => ImageBoot::default(),
            (Some(BUILTIN_KERNEL_ID), None | Some(BUILTIN_RAMDISK_ID)) => {
                if img.boot_mode == "uefi" {
                    return Err(Error::InvalidParameterCombination(
                        "KernelId boots its kernel directly; it cannot be given with BootMode uefi."
                            .into(),
                    ));
                }
                img.kernel_id = Some(BUILTIN_KERNEL_ID.to_string());
                img.ramdisk_id = Some(BUILTIN_RAMDISK_ID.to_string());
                ImageBoot {
                    root_disk: String::new(),
                    ..builtin_boot()
                }
            }
            (None, Some(r)) => {
                return Err(Error::InvalidParameterCombination(format!(
                    "RamdiskId ({r}) needs a KernelId."
                )))
            }
            (Some(k), r) => {
                let bad = if k != BUILTIN_KERNEL_ID {
                    k
                } else {
                    r.unwrap_or(k)
                };
                return Err(Error::invalid_value(format!(
                    "The kernel or ramdisk '{bad}' does not exist: the kernel this installation offers is {BUILTIN_KERNEL_ID} with ramdisk {BUILTIN_RAMDISK_ID}."
                )));
            }
        };
        let root = input
            .root_device_name
            .clone()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| Error::MissingParameter("RootDeviceName".into()))?;
        if !crate::volumes::attach::valid_device(&root) {
            return Err(Error::invalid_value(format!(
                "Value ({root}) for parameter rootDeviceName is invalid."
            )));
        }
        img.root_device_name = root.clone();
        let maps = by_device(&input.mappings)?;
        let scope = caller.scope();
        let img = self.db.write(|tx| {
            name_free(tx, caller, &input.name)?;
            for (n, m) in &maps {
                let at = |what: &str| format!("BlockDeviceMapping.{}.{what}", n + 1);
                if let Some(added) = added_mapping(self, tx, caller, m, &at)? {
                    img.block_devices.push(added);
                }
            }
            let root_map = img
                .block_devices
                .iter()
                .find(|m| m.device_name == root)
                .and_then(|m| m.ebs.as_ref());
            match root_map {
                Some(ImageEbs {
                    snapshot_id: Some(_),
                    volume_size_gib,
                    volume_type,
                    ..
                }) => {
                    if matches!(volume_type, VolumeType::St1 | VolumeType::Sc1) {
                        return Err(Error::InvalidBlockDeviceMapping(format!(
                            "{} volumes cannot be root volumes.",
                            volume_type.as_str()
                        )));
                    }
                    img.root_size_gib = *volume_size_gib;
                }
                _ => {
                    return Err(Error::InvalidBlockDeviceMapping(format!(
                        "The root device {root} must be mapped to an EBS snapshot (BlockDeviceMapping with DeviceName {root} and Ebs.SnapshotId)."
                    )))
                }
            }
            // Root first: it is the disk a host boots.
            img.block_devices
                .sort_by_key(|m| (m.device_name != root, m.device_name.clone()));
            img.state = ImageState::Available;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            tx.put_image(&img)?;
            put_tags(tx, &scope, img.id.as_str(), IMAGE_RESOURCE_TYPE, &image_tags)?;
            Ok(img)
        })?;
        Ok((img, image_tags))
    }

    /// CopyImage, called in the destination region: a new `pending` image of the
    /// caller's with a copy of each of the source's snapshots. The caller must be able
    /// to launch the source. A retry with the same `ClientToken` answers the first
    /// call's image.
    pub fn copy_image(
        &self,
        caller: &Caller,
        input: &CopyImageInput,
        dry_run: bool,
    ) -> Result<Image> {
        let source_id = input
            .source_image_id
            .clone()
            .ok_or_else(|| Error::MissingParameter("SourceImageId".into()))?;
        if input.source_region.is_empty() {
            return Err(Error::MissingParameter("SourceRegion".into()));
        }
        if !self.cfg.serves(&input.source_region) {
            return Err(Error::invalid_value(format!(
                "The source region {} is not served here.",
                input.source_region
            )));
        }
        check_name(&input.name)?;
        let description = input.description.clone().unwrap_or_default();
        check_description(&description)?;
        if let Some(t) = &input.client_token {
            if t.is_empty() || t.len() > 64 || !t.is_ascii() {
                return Err(Error::invalid_value(
                    "The client token must be 1 to 64 ASCII characters.",
                ));
            }
        }
        let (image_tags, snap_tags) = split_tags(&input.tag_specs, true)?;
        let scope = caller.scope();
        let made = self.db.write(|tx| {
            if let Some(token) = &input.client_token {
                if let Some(earlier) = tx
                    .owned_images(&caller.account, &caller.region)?
                    .into_iter()
                    .find(|i| i.client_token.as_deref() == Some(token))
                {
                    return Ok((earlier, vec![]));
                }
            }
            let src = tx
                .visible_image(&caller.account, &input.source_region, source_id.as_str())?
                .ok_or_else(|| Error::not_found(ResourceKind::Image, &source_id))?;
            if src.state != ImageState::Available {
                return Err(Error::InvalidAmiUnavailable(format!(
                    "Image {} is '{}': only an available image can be copied.",
                    src.id,
                    src.state.as_str()
                )));
            }
            if src.block_devices.is_empty() {
                return Err(Error::invalid_value(format!(
                    "Image {} is built in: every region offers it already, so it has nothing to copy.",
                    src.id
                )));
            }
            name_free(tx, caller, &input.name)?;
            let kms = crate::volumes::resolve_kms_key(
                &scope,
                input.encrypted || input.kms_key_id.is_some(),
                input.kms_key_id.as_deref(),
            )?;
            let mut img = new_image(caller, &input.name, &description);
            img.source_image_id = Some(src.id.clone());
            img.source_region = Some(src.region.clone().unwrap_or_default());
            img.client_token = input.client_token.clone();
            img.architecture = src.architecture.clone();
            img.root_device_name = src.root_device_name.clone();
            img.root_size_gib = src.root_size_gib;
            img.kernel_id = src.kernel_id.clone();
            img.ramdisk_id = src.ramdisk_id.clone();
            img.ena_support = src.ena_support;
            img.boot_mode = src.boot_mode.clone();
            img.imds_support = src.imds_support.clone();
            img.platform_details = src.platform_details.clone();
            img.boot = src.boot.clone();
            let mut snaps: Vec<Snapshot> = vec![];
            for m in &src.block_devices {
                let mut m = m.clone();
                if let Some(e) = m.ebs.as_mut() {
                    if let Some(sid) = &e.snapshot_id {
                        let from = tx
                            .snapshot_by_id(sid.as_str())?
                            .filter(|s| s.state == SnapshotState::Completed)
                            .ok_or_else(|| {
                                Error::InvalidAmiUnavailable(format!(
                                    "Snapshot {sid} of image {} is gone or not completed.",
                                    src.id
                                ))
                            })?;
                        let encrypted = from.encrypted || input.encrypted;
                        let key = if encrypted {
                            kms.clone().or(from.kms_key_id.clone())
                        } else {
                            None
                        };
                        let s = pending(
                            caller,
                            SnapshotOrigin::Copy {
                                source: from.id.clone(),
                                source_region: from.region.clone(),
                            },
                            (from.volume_id.clone(), from.volume_size_gib),
                            &format!(
                                "Copied for DestinationAmi {} from SourceAmi {} for SourceSnapshot {}",
                                img.id, src.id, from.id
                            ),
                            (encrypted, key),
                        );
                        e.snapshot_id = Some(s.id.clone());
                        e.encrypted = encrypted;
                        snaps.push(s);
                    }
                }
                img.block_devices.push(m);
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let mut tags = image_tags.clone();
            if input.copy_tags && src.owner.as_ref() == Some(&caller.account) {
                let src_scope = Scope::new(caller.account.clone(), img.source_region.clone().unwrap_or_default());
                for (k, v) in tx.tags_of(&src_scope, src.id.as_str())? {
                    if !tags.iter().any(|(tk, _)| *tk == k) {
                        tags.push((k, v));
                    }
                }
            }
            for s in &snaps {
                tx.put_snapshot(s)?;
                put_tags(tx, &scope, s.id.as_str(), SNAPSHOT_RESOURCE_TYPE, &snap_tags)?;
            }
            tx.put_image(&img)?;
            put_tags(tx, &scope, img.id.as_str(), IMAGE_RESOURCE_TYPE, &tags)?;
            Ok((img, snaps))
        })?;
        strato_common::crash::point("image-copy-committed");
        let (img, snaps) = made;
        if !snaps.is_empty() {
            self.agent
                .apply_snapshots(snaps.iter().map(snapshot_spec).collect(), None);
        }
        Ok(img)
    }
}
