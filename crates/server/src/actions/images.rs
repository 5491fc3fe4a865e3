//! Image actions: DescribeImages, CreateImage, RegisterImage, CopyImage,
//! DeregisterImage, the image attributes and deprecation. Typed requests to the control
//! plane, its records to the model's output types.

use super::instances::launch_mappings;
use super::{id, non_empty, page, tag_set, tag_specs, Ctx};
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{Error, ImageId, ResourceId, Result};
use strato_control::images::attributes::{ImageAttribute as Attr, ImageChange};
use strato_control::images::make::{CopyImageInput, CreateImageInput, RegisterImageInput};
use strato_control::images::{
    image_location, owner_id, DescribeImagesInput, ImageOwner, TaggedImage, IMAGE_FILTERS,
};
use strato_control::ControlPlane;
use strato_domain::{Image, ImageMapping};
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire};

fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// An image's block devices as EC2 shows them.
fn mappings_item(maps: &[ImageMapping]) -> Vec<wire::BlockDeviceMapping> {
    maps.iter()
        .map(|m| wire::BlockDeviceMapping {
            device_name: Some(m.device_name.clone()),
            virtual_name: m.virtual_name.clone(),
            ebs: m.ebs.as_ref().map(|e| wire::EbsBlockDevice {
                snapshot_id: e.snapshot_id.as_ref().map(|s| s.to_string()),
                volume_size: Some(int(e.volume_size_gib)),
                delete_on_termination: Some(e.delete_on_termination),
                volume_type: wire::VolumeType::from_wire(e.volume_type.as_str()),
                iops: e.iops.map(int),
                throughput: e.throughput.map(int),
                encrypted: Some(e.encrypted),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

/// An image as EC2 describes it.
fn image_item((img, tags): &TaggedImage) -> wire::Image {
    wire::Image {
        image_id: Some(img.id.to_string()),
        image_location: Some(image_location(img)),
        state: wire::ImageState::from_wire(img.state.as_str()),
        state_reason: img.state_reason.as_ref().map(|m| wire::StateReason {
            code: Some("Client.UserInitiated".to_string()),
            message: Some(m.clone()),
        }),
        owner_id: Some(owner_id(img)),
        creation_date: Some(ec2_timestamp(img.creation_ms)),
        deprecation_time: img.deprecation_ms.map(ec2_timestamp),
        public: Some(img.public),
        architecture: wire::ArchitectureValues::from_wire(&img.architecture),
        image_type: Some(wire::ImageTypeValues::Machine),
        kernel_id: img.kernel_id.clone(),
        ramdisk_id: img.ramdisk_id.clone(),
        image_owner_alias: img.owner_alias.clone(),
        name: Some(img.name.clone()),
        description: Some(img.description.clone()),
        root_device_type: wire::DeviceType::from_wire(&img.root_device_type),
        root_device_name: Some(img.root_device_name.clone()),
        block_device_mappings: Some(mappings_item(&img.mappings())),
        virtualization_type: wire::VirtualizationType::from_wire(&img.virtualization_type),
        tags: tag_set(tags),
        hypervisor: wire::HypervisorType::from_wire(&img.hypervisor),
        ena_support: Some(img.ena_support),
        platform_details: Some(img.platform_details.clone()),
        usage_operation: Some("RunInstances".to_string()),
        boot_mode: wire::BootModeValues::from_wire(&img.boot_mode),
        imds_support: img
            .imds_support
            .as_deref()
            .and_then(wire::ImdsSupportValues::from_wire),
        source_instance_id: img.source_instance_id.as_ref().map(|i| i.to_string()),
        source_image_id: img.source_image_id.as_ref().map(|i| i.to_string()),
        source_image_region: img.source_region.clone(),
        deregistration_protection: Some("disabled".to_string()),
        ..Default::default()
    }
}

/// DescribeImages. Pages only when `MaxResults` or `NextToken` is given (EC2 answers
/// everything in one page otherwise), and never together with `ImageId`s.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeImagesRequest,
) -> Result<wire::DescribeImagesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, IMAGE_FILTERS, true)?;
    let pg = if req.max_results.is_some() || req.next_token.is_some() {
        Some(page(req.max_results, req.next_token.as_deref(), 5, 1000)?)
    } else {
        None
    };
    if !req.image_ids.is_empty() && pg.is_some() {
        return Err(Error::InvalidParameterCombination(
            "The parameter imagesSet cannot be used with the parameter maxResults".into(),
        ));
    }
    let input = DescribeImagesInput {
        image_ids: req
            .image_ids
            .iter()
            .map(|id| <ImageId as ResourceId>::parse(id))
            .collect::<Result<_>>()?,
        owners: req
            .owners
            .iter()
            .map(|o| ImageOwner::parse(o))
            .collect::<Result<_>>()?,
        executable_by: req.executable_users,
        include_deprecated: req.include_deprecated.unwrap_or(false),
        filters,
        page: pg,
    };
    let (list, next) = cp.describe_images(cx.caller, &input)?;
    Ok(wire::DescribeImagesResult {
        images: Some(list.iter().map(image_item).collect()),
        next_token: next,
    })
}

/// The image id of a request (`MissingParameter` when empty).
fn image_id(s: &str) -> Result<ImageId> {
    if s.is_empty() {
        return Err(Error::MissingParameter("ImageId".into()));
    }
    id(s)
}

/// CreateImage.
pub fn create(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateImageRequest,
) -> Result<wire::CreateImageResult> {
    let input = CreateImageInput {
        instance_id: non_empty(Some(req.instance_id.clone()))
            .map(|s| id(&s))
            .transpose()?,
        name: req.name.clone(),
        description: req.description.clone(),
        no_reboot: req.no_reboot.unwrap_or(false),
        mappings: launch_mappings(&req.block_device_mappings)?,
        tag_specs: tag_specs(&req.tag_specifications)?,
    };
    let (img, _) = cp.create_image(cx.caller, &input, cx.dry_run)?;
    Ok(wire::CreateImageResult {
        image_id: Some(img.id.to_string()),
    })
}

/// RegisterImage.
pub fn register(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::RegisterImageRequest,
) -> Result<wire::RegisterImageResult> {
    let input = RegisterImageInput {
        name: req.name.clone(),
        description: req.description.clone(),
        architecture: req.architecture.map(|a| a.as_str().to_string()),
        root_device_name: req.root_device_name.clone(),
        mappings: launch_mappings(&req.block_device_mappings)?,
        boot_mode: req.boot_mode.map(|b| b.as_str().to_string()),
        ena_support: req.ena_support,
        imds_support: req.imds_support.map(|v| v.as_str().to_string()),
        kernel_id: non_empty(req.kernel_id.clone()),
        ramdisk_id: non_empty(req.ramdisk_id.clone()),
        virtualization_type: non_empty(req.virtualization_type.clone()),
        tag_specs: tag_specs(&req.tag_specifications)?,
    };
    let (img, _) = cp.register_image(cx.caller, &input, cx.dry_run)?;
    Ok(wire::RegisterImageResult {
        image_id: Some(img.id.to_string()),
    })
}

/// DeregisterImage.
pub fn deregister(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DeregisterImageRequest,
) -> Result<wire::DeregisterImageResult> {
    let id = image_id(&req.image_id)?;
    let delete = req.delete_associated_snapshots.unwrap_or(false);
    let results = cp.deregister_image(cx.caller, &id, delete, cx.dry_run)?;
    Ok(wire::DeregisterImageResult {
        r#return: Some(true),
        delete_snapshot_results: delete.then(|| {
            results
                .iter()
                .map(|r| wire::DeleteSnapshotReturnCode {
                    snapshot_id: Some(r.snapshot_id.to_string()),
                    return_code: wire::SnapshotReturnCodes::from_wire(r.return_code),
                })
                .collect()
        }),
    })
}

/// CopyImage, called in the destination region.
pub fn copy(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CopyImageRequest,
) -> Result<wire::CopyImageResult> {
    let input = CopyImageInput {
        source_image_id: non_empty(Some(req.source_image_id.clone()))
            .map(|s| id(&s))
            .transpose()?,
        source_region: req.source_region.clone(),
        name: req.name.clone(),
        description: req.description.clone(),
        encrypted: req.encrypted.unwrap_or(false),
        kms_key_id: non_empty(req.kms_key_id.clone()),
        copy_tags: req.copy_image_tags.unwrap_or(false),
        client_token: req.client_token.clone(),
        tag_specs: tag_specs(&req.tag_specifications)?,
    };
    let img = cp.copy_image(cx.caller, &input, cx.dry_run)?;
    Ok(wire::CopyImageResult {
        image_id: Some(img.id.to_string()),
    })
}

/// DescribeImageAttribute: the one attribute asked for, the others absent.
pub fn describe_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeImageAttributeRequest,
) -> Result<wire::ImageAttribute> {
    let id = image_id(&req.image_id)?;
    let attr = cp.image_attribute(cx.caller, &id, req.attribute.as_str())?;
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let value = |v: Option<String>| Some(wire::AttributeValue { value: v });
    let mut out = wire::ImageAttribute {
        image_id: Some(id.to_string()),
        ..Default::default()
    };
    match attr {
        Attr::Description(d) => out.description = value(Some(d)),
        Attr::Kernel(k) => out.kernel_id = value(k),
        Attr::Ramdisk(r) => out.ramdisk_id = value(r),
        Attr::LaunchPermission(accounts, public) => {
            let mut perms: Vec<wire::LaunchPermission> = accounts
                .iter()
                .map(|a| wire::LaunchPermission {
                    user_id: Some(a.to_string()),
                    ..Default::default()
                })
                .collect();
            if public {
                perms.push(wire::LaunchPermission {
                    group: Some(wire::PermissionGroup::All),
                    ..Default::default()
                });
            }
            out.launch_permissions = Some(perms);
        }
        Attr::ProductCodes => out.product_codes = Some(vec![]),
        Attr::BlockDeviceMapping(img) => {
            out.block_device_mappings = Some(mappings_item(&Image::mappings(&img)))
        }
        Attr::SriovNetSupport => out.sriov_net_support = value(None),
        Attr::BootMode(m) => out.boot_mode = value(Some(m)),
        Attr::TpmSupport => out.tpm_support = value(None),
        Attr::UefiData => out.uefi_data = value(None),
        Attr::LastLaunchedTime => out.last_launched_time = value(None),
        Attr::ImdsSupport(v) => out.imds_support = value(v),
        Attr::DeregistrationProtection => {
            out.deregistration_protection = value(Some("disabled".to_string()))
        }
    }
    Ok(out)
}

/// ModifyImageAttribute, in each of its forms: `LaunchPermission.Add/Remove`,
/// `Attribute=launchPermission` with `OperationType` and `UserId.N` / `UserGroup.N`,
/// `Description.Value` or `Attribute=description` with `Value`, `ImdsSupport.Value`.
/// One attribute per call, as EC2.
pub fn modify_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyImageAttributeRequest,
) -> Result<()> {
    let id = image_id(&req.image_id)?;
    let mut changes: Vec<ImageChange> = vec![];
    if let Some(lp) = &req.launch_permission {
        let names = |list: &[wire::LaunchPermission]| -> Vec<String> {
            list.iter()
                .flat_map(|p| {
                    p.user_id
                        .clone()
                        .into_iter()
                        .chain(p.group.map(|g| g.as_str().to_string()))
                })
                .collect()
        };
        if lp
            .add
            .iter()
            .chain(&lp.remove)
            .any(|p| p.organization_arn.is_some() || p.organizational_unit_arn.is_some())
        {
            return Err(Error::Unsupported(
                "LaunchPermission.OrganizationArn and OrganizationalUnitArn are not supported: Strato has no AWS Organizations.".into(),
            ));
        }
        changes.push(ImageChange::LaunchPermission {
            add: names(&lp.add),
            remove: names(&lp.remove),
        });
    }
    if let Some(d) = &req.description {
        changes.push(ImageChange::Description(
            d.value.clone().unwrap_or_default(),
        ));
    }
    if let Some(v) = &req.imds_support {
        changes.push(ImageChange::ImdsSupport(
            v.value.clone().unwrap_or_default(),
        ));
    }
    match req.attribute.as_deref() {
        None | Some("") => {}
        Some("description") => changes.push(ImageChange::Description(
            req.value.clone().unwrap_or_default(),
        )),
        Some("imdsSupport") => changes.push(ImageChange::ImdsSupport(
            req.value.clone().unwrap_or_default(),
        )),
        Some("launchPermission") => {
            let grants: Vec<String> = req
                .user_ids
                .iter()
                .chain(&req.user_groups)
                .cloned()
                .collect();
            if grants.is_empty() {
                return Err(Error::MissingParameter("UserId or UserGroup".into()));
            }
            changes.push(match req.operation_type {
                Some(wire::OperationType::Add) => ImageChange::LaunchPermission {
                    add: grants,
                    remove: vec![],
                },
                Some(wire::OperationType::Remove) => ImageChange::LaunchPermission {
                    add: vec![],
                    remove: grants,
                },
                None => return Err(Error::MissingParameter("OperationType".into())),
            });
        }
        Some(other) => {
            return Err(Error::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Strato modifies description, imdsSupport and launchPermission."
            )))
        }
    }
    for g in &req.user_groups {
        if g != "all" {
            return Err(Error::invalid_value(format!(
                "Invalid group '{g}': the only launch permission group is 'all'."
            )));
        }
    }
    match changes.len() {
        0 => Err(Error::MissingParameter(
            "LaunchPermission, Description, ImdsSupport or Attribute".into(),
        )),
        1 => cp.modify_image_attribute(cx.caller, &id, &changes[0], cx.dry_run),
        _ => Err(Error::InvalidParameterCombination(
            "Only one attribute can be modified at a time.".into(),
        )),
    }
}

/// ResetImageAttribute (`launchPermission` only).
pub fn reset_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ResetImageAttributeRequest,
) -> Result<()> {
    let id = image_id(&req.image_id)?;
    cp.reset_image_attribute(cx.caller, &id, req.attribute.as_str(), cx.dry_run)
}

/// EnableImageDeprecation.
pub fn enable_deprecation(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::EnableImageDeprecationRequest,
) -> Result<wire::EnableImageDeprecationResult> {
    let id = image_id(&req.image_id)?;
    cp.set_image_deprecation(cx.caller, &id, Some(req.deprecate_at.0), cx.dry_run)?;
    Ok(wire::EnableImageDeprecationResult {
        r#return: Some(true),
    })
}

/// DisableImageDeprecation.
pub fn disable_deprecation(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DisableImageDeprecationRequest,
) -> Result<wire::DisableImageDeprecationResult> {
    let id = image_id(&req.image_id)?;
    cp.set_image_deprecation(cx.caller, &id, None, cx.dry_run)?;
    Ok(wire::DisableImageDeprecationResult {
        r#return: Some(true),
    })
}
