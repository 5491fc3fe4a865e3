//! EBS volume actions: typed requests to the control plane, its records to the model's
//! output types.

use super::{id, ids, non_empty, page, tag_set, tag_specs, Ctx};
use strato_common::{Error, Result};
use strato_control::volumes::modify::{
    volume_status, ModifyVolumeInput, MAX_PAGE as MODIFY_MAX_PAGE, MODIFICATION_FILTERS,
    STATUS_FILTERS,
};
use strato_control::volumes::{CreateVolumeInput, MAX_PAGE, VOLUME_FILTERS};
use strato_control::ControlPlane;
use strato_domain::{ModificationState, Volume, VolumeType};
use strato_ec2_wire::codec::DateTime;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire};

/// A volume as EC2 describes it (the items of `volumeSet`, and CreateVolume's answer).
pub fn volume_item(v: &Volume, tags: &[(String, String)]) -> wire::Volume {
    wire::Volume {
        volume_id: Some(v.id.to_string()),
        size: Some(i32::try_from(v.size_gib).unwrap_or(i32::MAX)),
        snapshot_id: Some(
            v.snapshot_id
                .as_ref()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        ),
        availability_zone: Some(v.availability_zone.clone()),
        availability_zone_id: Some(strato_control::catalog::zone_id(
            &v.region,
            &v.availability_zone,
        )),
        state: wire::VolumeState::from_wire(v.state.as_str()),
        create_time: Some(DateTime(v.created_ms)),
        attachments: Some(
            v.attachments
                .iter()
                .map(|a| attachment_item(v, a))
                .collect(),
        ),
        volume_type: wire::VolumeType::from_wire(v.volume_type.as_str()),
        iops: v.iops.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        throughput: v.throughput.map(|n| i32::try_from(n).unwrap_or(i32::MAX)),
        encrypted: Some(v.encrypted),
        kms_key_id: v.kms_key_id.clone(),
        multi_attach_enabled: Some(v.multi_attach),
        fast_restored: None,
        tags: tag_set(tags),
        ..Default::default()
    }
}

/// The domain's volume type for the model's, named `param` in the error (the model
/// knows types Strato does not serve).
pub fn volume_type(t: wire::VolumeType, param: &str) -> Result<VolumeType> {
    VolumeType::parse(t.as_str()).ok_or_else(|| {
        Error::invalid_value(format!(
            "Value ({}) for parameter {param} is invalid.",
            t.as_str()
        ))
    })
}

/// CreateVolume.
pub fn create(cp: &ControlPlane, cx: &Ctx, req: wire::CreateVolumeRequest) -> Result<wire::Volume> {
    let specs = tag_specs(&req.tag_specifications)?;
    let input = CreateVolumeInput {
        availability_zone: non_empty(req.availability_zone),
        availability_zone_id: non_empty(req.availability_zone_id),
        size: req.size.map(i64::from),
        snapshot_id: non_empty(req.snapshot_id).map(|s| id(&s)).transpose()?,
        volume_type: req
            .volume_type
            .map(|t| volume_type(t, "volumeType"))
            .transpose()?,
        iops: req.iops.map(i64::from),
        throughput: req.throughput.map(i64::from),
        encrypted: req.encrypted,
        kms_key_id: non_empty(req.kms_key_id),
        multi_attach: req.multi_attach_enabled,
        tag_specs: specs,
        client_token: req.client_token,
    };
    let (v, tags) = cp.create_volume(cx.caller, &input, cx.dry_run)?;
    Ok(volume_item(&v, &tags))
}

/// DescribeVolumes. `MaxResults` above 500 answers pages of 500, as EC2 documents.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeVolumesRequest,
) -> Result<wire::DescribeVolumesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, VOLUME_FILTERS, true)?;
    let max = req.max_results.map(|n| n.min(MAX_PAGE as i32));
    let pg = page(max, req.next_token.as_deref(), 5, MAX_PAGE)?;
    let (list, next) = cp.describe_volumes(cx.caller, &ids(&req.volume_ids)?, &filters, &pg)?;
    Ok(wire::DescribeVolumesResult {
        volumes: Some(list.iter().map(|(v, t)| volume_item(v, t)).collect()),
        next_token: next,
    })
}

/// DeleteVolume.
pub fn delete(cp: &ControlPlane, cx: &Ctx, req: wire::DeleteVolumeRequest) -> Result<()> {
    cp.delete_volume(cx.caller, &id(&req.volume_id)?, cx.dry_run)
}

/// An attachment as EC2 shows it (in `attachmentSet`, and as AttachVolume and
/// DetachVolume answer).
fn attachment_item(v: &Volume, a: &strato_domain::VolumeAttachment) -> wire::VolumeAttachment {
    wire::VolumeAttachment {
        volume_id: Some(v.id.to_string()),
        instance_id: Some(a.instance_id.to_string()),
        device: Some(a.device.clone()),
        state: wire::VolumeAttachmentState::from_wire(a.state.as_str()),
        attach_time: Some(DateTime(a.attach_time_ms)),
        delete_on_termination: Some(a.delete_on_termination),
        ..Default::default()
    }
}

/// AttachVolume. `EbsCardIndex` is refused by the schema: instances here have one
/// EBS card.
pub fn attach(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AttachVolumeRequest,
) -> Result<wire::VolumeAttachment> {
    let volume = id(&req.volume_id)?;
    let instance = id(&req.instance_id)?;
    let (v, a) = cp.attach_volume(cx.caller, &volume, &instance, &req.device, cx.dry_run)?;
    Ok(attachment_item(&v, &a))
}

/// DetachVolume.
pub fn detach(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DetachVolumeRequest,
) -> Result<wire::VolumeAttachment> {
    let volume = id(&req.volume_id)?;
    let instance = non_empty(req.instance_id).map(|s| id(&s)).transpose()?;
    let device = non_empty(req.device);
    let (v, a) = cp.detach_volume(
        cx.caller,
        &volume,
        instance.as_ref(),
        device.as_deref(),
        req.force.unwrap_or(false),
        cx.dry_run,
    )?;
    Ok(attachment_item(&v, &a))
}

/// Enable- and DisableEbsEncryptionByDefault: the caller's setting in its region.
pub fn set_encryption_by_default(cp: &ControlPlane, cx: &Ctx, on: bool) -> Result<bool> {
    cp.set_ebs_encryption_by_default(cx.caller, on, cx.dry_run)
}

/// GetEbsEncryptionByDefault.
pub fn get_encryption_by_default(
    cp: &ControlPlane,
    cx: &Ctx,
) -> Result<wire::GetEbsEncryptionByDefaultResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    Ok(wire::GetEbsEncryptionByDefaultResult {
        ebs_encryption_by_default: Some(cp.ebs_encryption_by_default(cx.caller)?),
        sse_type: None,
    })
}

/// A volume's most recent modification as EC2 shows it.
fn modification_item(v: &Volume) -> Option<wire::VolumeModification> {
    let m = v.modification.as_ref()?;
    let n = |x: u32| i32::try_from(x).unwrap_or(i32::MAX);
    Some(wire::VolumeModification {
        volume_id: Some(v.id.to_string()),
        modification_state: wire::VolumeModificationState::from_wire(m.state.as_str()),
        status_message: m.status_message.clone(),
        target_size: Some(n(m.target.size_gib)),
        target_iops: m.target.iops.map(n),
        target_volume_type: wire::VolumeType::from_wire(m.target.volume_type.as_str()),
        target_throughput: m.target.throughput.map(n),
        target_multi_attach_enabled: Some(m.target.multi_attach),
        original_size: Some(n(m.original.size_gib)),
        original_iops: m.original.iops.map(n),
        original_volume_type: wire::VolumeType::from_wire(m.original.volume_type.as_str()),
        original_throughput: m.original.throughput.map(n),
        original_multi_attach_enabled: Some(m.original.multi_attach),
        progress: Some(match m.state {
            ModificationState::Modifying => 0,
            ModificationState::Optimizing => 50,
            ModificationState::Completed => 100,
            ModificationState::Failed => 0,
        }),
        start_time: Some(DateTime(m.start_ms)),
        end_time: m.end_ms.map(DateTime),
        ..Default::default()
    })
}

/// ModifyVolume.
pub fn modify(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyVolumeRequest,
) -> Result<wire::ModifyVolumeResult> {
    let volume = id(&req.volume_id)?;
    let input = ModifyVolumeInput {
        size: req.size.map(i64::from),
        volume_type: req
            .volume_type
            .map(|t| volume_type(t, "volumeType"))
            .transpose()?,
        iops: req.iops.map(i64::from),
        throughput: req.throughput.map(i64::from),
        multi_attach: req.multi_attach_enabled,
    };
    let v = cp.modify_volume(cx.caller, &volume, &input, cx.dry_run)?;
    Ok(wire::ModifyVolumeResult {
        volume_modification: modification_item(&v),
    })
}

/// DescribeVolumesModifications.
pub fn describe_modifications(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeVolumesModificationsRequest,
) -> Result<wire::DescribeVolumesModificationsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, MODIFICATION_FILTERS, false)?;
    let pg = page(
        req.max_results,
        req.next_token.as_deref(),
        5,
        MODIFY_MAX_PAGE,
    )?;
    let (list, next) =
        cp.describe_volume_modifications(cx.caller, &ids(&req.volume_ids)?, &filters, &pg)?;
    Ok(wire::DescribeVolumesModificationsResult {
        volumes_modifications: Some(list.iter().filter_map(modification_item).collect()),
        next_token: next,
    })
}

/// DescribeVolumeStatus: no scheduled events or actions (Strato's hosts do not retire
/// volumes), I/O enabled once the disk exists.
pub fn describe_status(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeVolumeStatusRequest,
) -> Result<wire::DescribeVolumeStatusResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, STATUS_FILTERS, false)?;
    let pg = page(
        req.max_results,
        req.next_token.as_deref(),
        5,
        MODIFY_MAX_PAGE,
    )?;
    let (list, next) =
        cp.describe_volume_status(cx.caller, &ids(&req.volume_ids)?, &filters, &pg)?;
    let items = list
        .iter()
        .map(|v| {
            let (status, io) = volume_status(v);
            wire::VolumeStatusItem {
                volume_id: Some(v.id.to_string()),
                availability_zone: Some(v.availability_zone.clone()),
                availability_zone_id: Some(strato_control::catalog::zone_id(
                    &v.region,
                    &v.availability_zone,
                )),
                volume_status: Some(wire::VolumeStatusInfo {
                    status: wire::VolumeStatusInfoStatus::from_wire(status),
                    details: Some(vec![
                        wire::VolumeStatusDetails {
                            name: wire::VolumeStatusName::from_wire("io-enabled"),
                            status: Some(io.into()),
                        },
                        wire::VolumeStatusDetails {
                            name: wire::VolumeStatusName::from_wire("io-performance"),
                            status: Some("not-applicable".into()),
                        },
                    ]),
                }),
                actions: Some(vec![]),
                events: Some(vec![]),
                ..Default::default()
            }
        })
        .collect();
    Ok(wire::DescribeVolumeStatusResult {
        volume_statuses: Some(items),
        next_token: next,
    })
}

/// DescribeVolumeAttribute: `autoEnableIO`, or `productCodes` (none: no marketplace).
pub fn describe_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeVolumeAttributeRequest,
) -> Result<wire::DescribeVolumeAttributeResult> {
    let volume = id(&req.volume_id)?;
    let on = cp.volume_auto_enable_io(cx.caller, &volume, cx.dry_run)?;
    let mut out = wire::DescribeVolumeAttributeResult {
        volume_id: Some(volume.to_string()),
        ..Default::default()
    };
    match req.attribute {
        wire::VolumeAttributeName::AutoEnableIO => {
            out.auto_enable_io = Some(wire::AttributeBooleanValue { value: Some(on) })
        }
        _ => out.product_codes = Some(vec![]),
    }
    Ok(out)
}

/// ModifyVolumeAttribute `AutoEnableIO`.
pub fn modify_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyVolumeAttributeRequest,
) -> Result<()> {
    let volume = id(&req.volume_id)?;
    let on = req
        .auto_enable_io
        .and_then(|a| a.value)
        .ok_or_else(|| Error::MissingParameter("AutoEnableIO".into()))?;
    cp.set_volume_auto_enable_io(cx.caller, &volume, on, cx.dry_run)
}
