//! Import actions: ImportSnapshot, ImportImage, their Describe…Tasks and
//! CancelImportTask. Typed requests to the control plane, its tasks to the model's
//! output types.

use super::{page, tag_set, tag_specs, Ctx};
use strato_common::{Error, Result};
use strato_control::images::import::ImportInput;
use strato_control::ControlPlane;
use strato_domain::{ImportTask, ImportedImage};
use strato_ec2_wire::types::{self as wire};

/// A task's progress as EC2 shows it: a percentage while active, none after.
fn progress(t: &ImportTask) -> Option<String> {
    (t.status == strato_domain::ImportStatus::Active).then(|| t.progress.to_string())
}

fn snapshot_detail(t: &ImportTask) -> wire::SnapshotTaskDetail {
    wire::SnapshotTaskDetail {
        description: Some(t.disk_description.clone()),
        disk_image_size: t.size_bytes.map(|b| b as f64),
        encrypted: Some(t.encrypted),
        format: Some(t.format.clone()),
        kms_key_id: t.kms_key_id.clone(),
        progress: progress(t),
        snapshot_id: (t.status == strato_domain::ImportStatus::Completed)
            .then(|| t.snapshot_id.to_string()),
        status: Some(t.status.as_str().to_string()),
        status_message: Some(t.status_message.clone()),
        url: Some(t.url.clone()),
        user_bucket: None,
    }
}

fn snapshot_task(t: &ImportTask, tags: &[(String, String)]) -> wire::ImportSnapshotTask {
    wire::ImportSnapshotTask {
        description: Some(t.description.clone()),
        import_task_id: Some(t.id.clone()),
        snapshot_task_detail: Some(snapshot_detail(t)),
        tags: tag_set(tags),
    }
}

fn image_task(t: &ImportTask, tags: &[(String, String)]) -> wire::ImportImageTask {
    let img = t.image.as_ref();
    wire::ImportImageTask {
        architecture: img.map(|i| i.architecture.clone()),
        boot_mode: img.and_then(|i| {
            i.boot_mode
                .as_deref()
                .and_then(wire::BootModeValues::from_wire)
        }),
        description: Some(t.description.clone()),
        encrypted: Some(t.encrypted),
        image_id: img.and_then(|i| i.image_id.as_ref().map(|id| id.to_string())),
        import_task_id: Some(t.id.clone()),
        kms_key_id: t.kms_key_id.clone(),
        platform: Some("Linux".into()),
        progress: progress(t),
        snapshot_details: Some(vec![wire::SnapshotDetail {
            description: Some(t.disk_description.clone()),
            device_name: img.and_then(|i| i.root_device.clone()),
            disk_image_size: t.size_bytes.map(|b| b as f64),
            format: Some(t.format.clone()),
            progress: progress(t),
            snapshot_id: (t.status == strato_domain::ImportStatus::Completed)
                .then(|| t.snapshot_id.to_string()),
            status: Some(t.status.as_str().to_string()),
            status_message: Some(t.status_message.clone()),
            url: Some(t.url.clone()),
            user_bucket: None,
        }]),
        status: Some(t.status.as_str().to_string()),
        status_message: Some(t.status_message.clone()),
        tags: tag_set(tags),
        ..Default::default()
    }
}

/// `UserBucket` names an S3 object: there is no S3 here.
fn no_bucket(bucket: &Option<wire::UserBucket>) -> Result<()> {
    if bucket.is_some() {
        return Err(Error::Unsupported(
            "DiskContainer.UserBucket is not supported: Strato has no S3; give a Url (a file of the host or an http(s) URL).".into(),
        ));
    }
    Ok(())
}

/// ImportSnapshot.
pub fn import_snapshot(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ImportSnapshotRequest,
) -> Result<wire::ImportSnapshotResult> {
    let disk = req
        .disk_container
        .clone()
        .ok_or_else(|| Error::MissingParameter("DiskContainer".into()))?;
    no_bucket(&disk.user_bucket)?;
    let input = ImportInput {
        format: disk.format,
        url: disk.url,
        disk_description: disk.description,
        description: req.description.clone(),
        encrypted: req.encrypted.unwrap_or(false),
        kms_key_id: req.kms_key_id.clone(),
        client_token: req.client_token.clone(),
        tag_specs: tag_specs(&req.tag_specifications)?,
        image: None,
        root_device: None,
    };
    let (t, tags) = cp.import_disk(cx.caller, &input, cx.dry_run)?;
    Ok(wire::ImportSnapshotResult {
        description: Some(t.description.clone()),
        import_task_id: Some(t.id.clone()),
        snapshot_task_detail: Some(snapshot_detail(&t)),
        tags: tag_set(&tags),
    })
}

/// ImportImage: one disk, a Linux x86_64 image.
pub fn import_image(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ImportImageRequest,
) -> Result<wire::ImportImageResult> {
    let disk = match req.disk_containers.as_slice() {
        [] => return Err(Error::MissingParameter("DiskContainer".into())),
        [d] => d.clone(),
        _ => {
            return Err(Error::Unsupported(
                "ImportImage takes one DiskContainer here (the root disk); import other disks with ImportSnapshot.".into(),
            ))
        }
    };
    no_bucket(&disk.user_bucket)?;
    if disk.snapshot_id.is_some() {
        return Err(Error::Unsupported(
            "DiskContainer.SnapshotId is not supported: make an image of a snapshot with RegisterImage.".into(),
        ));
    }
    if let Some(p) = req.platform.as_deref() {
        if !p.eq_ignore_ascii_case("linux") {
            return Err(Error::invalid_value(format!(
                "The platform '{p}' is not supported: only Linux images are imported."
            )));
        }
    }
    let input = ImportInput {
        format: disk.format,
        url: disk.url,
        disk_description: disk.description,
        description: req.description.clone(),
        encrypted: req.encrypted.unwrap_or(false),
        kms_key_id: req.kms_key_id.clone(),
        client_token: req.client_token.clone(),
        tag_specs: tag_specs(&req.tag_specifications)?,
        image: Some(ImportedImage {
            name: None,
            architecture: req.architecture.clone().unwrap_or_else(|| "x86_64".into()),
            boot_mode: req.boot_mode.map(|b| b.as_str().to_string()),
            public: false,
            owner_alias: None,
            root_device: None,
            image_id: None,
        }),
        root_device: disk.device_name.clone(),
    };
    let (t, tags) = cp.import_disk(cx.caller, &input, cx.dry_run)?;
    let task = image_task(&t, &tags);
    Ok(wire::ImportImageResult {
        architecture: task.architecture,
        description: task.description,
        encrypted: task.encrypted,
        image_id: task.image_id,
        import_task_id: task.import_task_id,
        kms_key_id: task.kms_key_id,
        platform: task.platform,
        progress: task.progress,
        snapshot_details: task.snapshot_details,
        status: task.status,
        status_message: task.status_message,
        tags: task.tags,
        ..Default::default()
    })
}

/// DescribeImportSnapshotTasks.
pub fn describe_snapshot_tasks(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeImportSnapshotTasksRequest,
) -> Result<wire::DescribeImportSnapshotTasksResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let pg = page(req.max_results, req.next_token.as_deref(), 1, 500)?;
    let (list, next) = cp.describe_import_tasks(cx.caller, false, &req.import_task_ids, &pg)?;
    Ok(wire::DescribeImportSnapshotTasksResult {
        import_snapshot_tasks: Some(list.iter().map(|(t, g)| snapshot_task(t, g)).collect()),
        next_token: next,
    })
}

/// DescribeImportImageTasks.
pub fn describe_image_tasks(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeImportImageTasksRequest,
) -> Result<wire::DescribeImportImageTasksResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let pg = page(req.max_results, req.next_token.as_deref(), 1, 500)?;
    let (list, next) = cp.describe_import_tasks(cx.caller, true, &req.import_task_ids, &pg)?;
    Ok(wire::DescribeImportImageTasksResult {
        import_image_tasks: Some(list.iter().map(|(t, g)| image_task(t, g)).collect()),
        next_token: next,
    })
}

/// CancelImportTask.
pub fn cancel(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CancelImportTaskRequest,
) -> Result<wire::CancelImportTaskResult> {
    let id = req.import_task_id.clone().unwrap_or_default();
    let before = cp.cancel_import_task(cx.caller, &id, req.cancel_reason.as_deref(), cx.dry_run)?;
    Ok(wire::CancelImportTaskResult {
        import_task_id: Some(id),
        previous_state: Some(before.as_str().to_string()),
        state: Some("deleting".to_string()),
    })
}
