//! EBS snapshot actions: typed requests to the control plane, its records to the
//! model's output types.

use super::{id, ids, non_empty, page, tag_set, tag_specs, Ctx};
use strato_common::{AccountId, Error, Result, SnapshotId};
use strato_control::volumes::snapshots::{
    progress, CopySnapshotInput, PermissionChange, SnapshotQuery, MAX_PAGE, SNAPSHOT_FILTERS,
};
use strato_control::ControlPlane;
use strato_domain::Snapshot;
use strato_ec2_wire::codec::DateTime;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire};

/// A snapshot as DescribeSnapshots (and CreateSnapshot) shows it.
pub fn snapshot_item(s: &Snapshot, tags: &[(String, String)]) -> wire::Snapshot {
    wire::Snapshot {
        snapshot_id: Some(s.id.to_string()),
        volume_id: s.volume_id.as_ref().map(|v| v.to_string()),
        state: wire::SnapshotState::from_wire(s.state.as_str()),
        state_message: s.state_message.clone(),
        start_time: Some(DateTime(s.start_ms)),
        completion_time: s.completion_ms.map(DateTime),
        progress: Some(progress(s).to_string()),
        owner_id: Some(s.account_id.to_string()),
        description: Some(s.description.clone()),
        volume_size: Some(i32::try_from(s.volume_size_gib).unwrap_or(i32::MAX)),
        encrypted: Some(s.encrypted),
        kms_key_id: s.kms_key_id.clone(),
        storage_tier: wire::StorageTier::from_wire("standard"),
        tags: tag_set(tags),
        ..Default::default()
    }
}

fn info_item(s: &Snapshot, tags: &[(String, String)]) -> wire::SnapshotInfo {
    wire::SnapshotInfo {
        snapshot_id: Some(s.id.to_string()),
        volume_id: s.volume_id.as_ref().map(|v| v.to_string()),
        state: wire::SnapshotState::from_wire(s.state.as_str()),
        start_time: Some(DateTime(s.start_ms)),
        progress: Some(progress(s).to_string()),
        owner_id: Some(s.account_id.to_string()),
        description: Some(s.description.clone()),
        volume_size: Some(i32::try_from(s.volume_size_gib).unwrap_or(i32::MAX)),
        encrypted: Some(s.encrypted),
        tags: tag_set(tags),
        ..Default::default()
    }
}

/// CreateSnapshot.
pub fn create(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateSnapshotRequest,
) -> Result<wire::Snapshot> {
    let specs = tag_specs(&req.tag_specifications)?;
    let volume = id(&req.volume_id)?;
    let (s, tags) = cp.create_snapshot(
        cx.caller,
        &volume,
        req.description.as_deref(),
        &specs,
        cx.dry_run,
    )?;
    Ok(snapshot_item(&s, &tags))
}

/// CreateSnapshots: every volume of the instance, its root volume unless
/// `ExcludeBootVolume`, less `ExcludeDataVolumeId`s.
pub fn create_many(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateSnapshotsRequest,
) -> Result<wire::CreateSnapshotsResult> {
    let specs = tag_specs(&req.tag_specifications)?;
    let spec = &req.instance_specification;
    let instance = id(&spec.instance_id)?;
    let exclude = ids(&spec.exclude_data_volume_ids)?;
    let made = cp.create_snapshots(
        cx.caller,
        &instance,
        &exclude,
        spec.exclude_boot_volume.unwrap_or(false),
        req.description.as_deref(),
        req.copy_tags_from_source.is_some(),
        &specs,
        cx.dry_run,
    )?;
    Ok(wire::CreateSnapshotsResult {
        snapshots: Some(made.iter().map(|(s, t)| info_item(s, t)).collect()),
    })
}

/// CopySnapshot. `PresignedUrl` (which the SDKs add by themselves) is accepted and not
/// needed: both regions are served by this installation, which authorizes the copy by
/// the caller's own signature. `DestinationRegion` must be the region called.
pub fn copy(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CopySnapshotRequest,
) -> Result<wire::CopySnapshotResult> {
    if let Some(dest) = non_empty(req.destination_region.clone()) {
        if dest != cx.caller.region {
            return Err(Error::invalid_value(format!(
                "The destination region {dest} is not the region called ({}): call CopySnapshot in the destination region.",
                cx.caller.region
            )));
        }
    }
    let specs = tag_specs(&req.tag_specifications)?;
    let input = CopySnapshotInput {
        source: id(&req.source_snapshot_id)?,
        source_region: req.source_region.clone(),
        description: req.description.clone(),
        encrypted: req.encrypted.unwrap_or(false),
        kms_key_id: non_empty(req.kms_key_id.clone()),
        tag_specs: specs,
    };
    let s = cp.copy_snapshot(cx.caller, &input, cx.dry_run)?;
    let tags: Vec<(String, String)> = input
        .tag_specs
        .iter()
        .flat_map(|t| t.tags.clone())
        .collect();
    Ok(wire::CopySnapshotResult {
        snapshot_id: Some(s.id.to_string()),
        tags: tag_set(&tags),
    })
}

/// DeleteSnapshot.
pub fn delete(cp: &ControlPlane, cx: &Ctx, req: wire::DeleteSnapshotRequest) -> Result<()> {
    cp.delete_snapshot(cx.caller, &id(&req.snapshot_id)?, cx.dry_run)
}

/// DescribeSnapshots.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeSnapshotsRequest,
) -> Result<wire::DescribeSnapshotsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, SNAPSHOT_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, MAX_PAGE)?;
    for o in &req.owner_ids {
        if !matches!(o.as_str(), "self" | "amazon" | "aws-marketplace")
            && AccountId::parse(o).is_none()
        {
            return Err(Error::invalid_value(format!(
                "Invalid owner: {o} (an account id, self, amazon or aws-marketplace)."
            )));
        }
    }
    for r in &req.restorable_by_user_ids {
        if !matches!(r.as_str(), "self" | "all") && AccountId::parse(r).is_none() {
            return Err(Error::invalid_value(format!(
                "Invalid user id: {r} (an account id, self or all)."
            )));
        }
    }
    let q = SnapshotQuery {
        ids: ids(&req.snapshot_ids)?,
        owners: req.owner_ids.clone(),
        restorable_by: req.restorable_by_user_ids.clone(),
    };
    let (list, next) = cp.describe_snapshots(cx.caller, &q, &filters, &pg)?;
    Ok(wire::DescribeSnapshotsResult {
        snapshots: Some(list.iter().map(|(s, t)| snapshot_item(s, t)).collect()),
        next_token: next,
    })
}

/// The only attribute with anything to change (`productCodes` is read-only and empty:
/// no marketplace here).
fn permission_attribute(a: wire::SnapshotAttributeName) -> Result<()> {
    match a {
        wire::SnapshotAttributeName::CreateVolumePermission => Ok(()),
        other => Err(Error::invalid_value(format!(
            "The attribute {} cannot be changed: only createVolumePermission can.",
            other.as_str()
        ))),
    }
}

/// DescribeSnapshotAttribute.
pub fn describe_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeSnapshotAttributeRequest,
) -> Result<wire::DescribeSnapshotAttributeResult> {
    let snap: SnapshotId = id(&req.snapshot_id)?;
    let (accounts, public) = cp.snapshot_permissions(cx.caller, &snap, cx.dry_run)?;
    let mut out = wire::DescribeSnapshotAttributeResult {
        snapshot_id: Some(snap.to_string()),
        ..Default::default()
    };
    match req.attribute {
        wire::SnapshotAttributeName::CreateVolumePermission => {
            let mut perms: Vec<wire::CreateVolumePermission> = accounts
                .iter()
                .map(|a| wire::CreateVolumePermission {
                    user_id: Some(a.to_string()),
                    group: None,
                })
                .collect();
            if public {
                perms.push(wire::CreateVolumePermission {
                    user_id: None,
                    group: Some(wire::PermissionGroup::All),
                });
            }
            out.create_volume_permissions = Some(perms);
        }
        _ => out.product_codes = Some(vec![]),
    }
    Ok(out)
}

fn account(s: &str) -> Result<AccountId> {
    AccountId::parse(s).ok_or_else(|| {
        Error::invalid_value(format!("Invalid user id: {s} (a 12-digit account id)."))
    })
}

/// ModifySnapshotAttribute: either `CreateVolumePermission.Add/Remove`, or
/// `OperationType` with `UserId` / `UserGroup` lists.
pub fn modify_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifySnapshotAttributeRequest,
) -> Result<()> {
    let snap: SnapshotId = id(&req.snapshot_id)?;
    if let Some(a) = req.attribute {
        permission_attribute(a)?;
    }
    let mut change = PermissionChange::default();
    if let Some(m) = &req.create_volume_permission {
        if req.operation_type.is_some() || !req.user_ids.is_empty() || !req.group_names.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "CreateVolumePermission cannot be combined with OperationType, UserId or UserGroup.".into(),
            ));
        }
        for (list, remove) in [(&m.add, false), (&m.remove, true)] {
            for p in list {
                match (&p.user_id, p.group) {
                    (Some(u), None) => {
                        let a = account(u)?;
                        if remove {
                            change.remove_accounts.push(a)
                        } else {
                            change.add_accounts.push(a)
                        }
                    }
                    (None, Some(_)) => {
                        if remove {
                            change.remove_public = true
                        } else {
                            change.add_public = true
                        }
                    }
                    _ => {
                        return Err(Error::invalid_value(
                            "Each createVolumePermission names either a UserId or a Group.",
                        ))
                    }
                }
            }
        }
    } else {
        let op = req.operation_type.ok_or_else(|| {
            Error::MissingParameter("OperationType (or CreateVolumePermission)".into())
        })?;
        let remove = op == wire::OperationType::Remove;
        let accounts = req
            .user_ids
            .iter()
            .map(|u| account(u))
            .collect::<Result<Vec<_>>>()?;
        for g in &req.group_names {
            if g != "all" {
                return Err(Error::invalid_value(format!(
                    "Invalid group: {g} (the only group is all)."
                )));
            }
        }
        let public = !req.group_names.is_empty();
        if accounts.is_empty() && !public {
            return Err(Error::MissingParameter("UserId or UserGroup".into()));
        }
        if remove {
            change.remove_accounts = accounts;
            change.remove_public = public;
        } else {
            change.add_accounts = accounts;
            change.add_public = public;
        }
    }
    cp.change_snapshot_permissions(cx.caller, &snap, &change, false, cx.dry_run)
}

/// ResetSnapshotAttribute: `createVolumePermission` back to private.
pub fn reset_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ResetSnapshotAttributeRequest,
) -> Result<()> {
    let snap: SnapshotId = id(&req.snapshot_id)?;
    permission_attribute(req.attribute)?;
    cp.change_snapshot_permissions(
        cx.caller,
        &snap,
        &PermissionChange::default(),
        true,
        cx.dry_run,
    )
}
