//! ImportSnapshot and ImportImage: a disk image from outside (a file of the host or
//! an http(s) URL) becomes a snapshot, and for ImportImage an image booting it
//! through firmware. See `strato_domain::import` for the task's life.
//!
//! The request commits the task and its `pending` snapshot (origin `Import`) in one
//! transaction and hands the snapshot to the host, which fetches the disk, checks that
//! it is a disk image of the declared format, converts it into the volume store and
//! reports its progress. The reports drive the task ([`on_import_report`]): progress,
//! then completion (ImportImage's image made in the same transaction) or failure (the
//! snapshot record removed, the task `deleted` with the host's reason). After a crash
//! startup sends the snapshot again and the import starts over.

use super::make::IMAGE_RESOURCE_TYPE;
use crate::page::{paginate, PageRequest};
use crate::tags::{put_tags, tags_for, tags_of_ids, TagSpec};
use crate::volumes::snapshots::{pending, snapshot_spec};
use crate::{Caller, ControlPlane, Tags};
use strato_agent_api::{DesiredSnapshotState, ObservedSnapshotState, SnapshotReport};
use strato_common::time_fmt::now_ms;
use strato_common::{Error, ImageId, ResourceId, Result};
use strato_domain::Scope;
use strato_store::{
    Image, ImageEbs, ImageMapping, ImageState, ImportStatus, ImportTask, ImportedImage, Snapshot,
    SnapshotOrigin, SnapshotState, VolumeType, WriteTx,
};

/// The formats a disk container may have (EC2's names).
pub const IMPORT_FORMATS: &[&str] = &["RAW", "VMDK", "VHD", "VHDX", "QCOW2"];

/// The tag resource types of the tasks.
pub const SNAPSHOT_TASK_RESOURCE_TYPE: &str = "import-snapshot-task";
pub const IMAGE_TASK_RESOURCE_TYPE: &str = "import-image-task";

const GIB: u64 = 1 << 30;

/// A page of import tasks with their tags, and the next page's token.
pub type TaskPage = (Vec<(ImportTask, Tags)>, Option<String>);

/// An import request, as the front door decoded it.
#[derive(Clone, Debug, Default)]
pub struct ImportInput {
    pub format: Option<String>,
    pub url: Option<String>,
    pub disk_description: Option<String>,
    pub description: Option<String>,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub client_token: Option<String>,
    pub tag_specs: Vec<TagSpec>,
    /// For ImportImage: what the image will be (`image_id` unset).
    pub image: Option<ImportedImage>,
    /// For ImportImage: its root device (`DiskContainer.DeviceName`; `/dev/xvda`).
    pub root_device: Option<String>,
}

/// A fresh task id: `import-snap-` or `import-ami-` and 17 hex digits.
fn new_task_id(image: bool) -> String {
    let hex = strato_common::SnapshotId::generate().to_string();
    let digits = hex.trim_start_matches("snap-");
    format!(
        "{}{digits}",
        if image { "import-ami-" } else { "import-snap-" }
    )
}

/// Checks a disk container's format and URL (the host checks what is behind them).
fn check_disk(input: &ImportInput) -> Result<(String, String)> {
    let format = input
        .format
        .clone()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| Error::MissingParameter("DiskContainer.Format".into()))?
        .to_ascii_uppercase();
    if !IMPORT_FORMATS.contains(&format.as_str()) {
        return Err(Error::invalid_value(format!(
            "The disk format {format} is not supported. Valid formats: {}.",
            IMPORT_FORMATS.join(", ")
        )));
    }
    let url = input
        .url
        .clone()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Error::MissingParameter("DiskContainer.Url".into()))?;
    let file = url
        .strip_prefix("file://")
        .or(Some(url.as_str()).filter(|u| u.starts_with('/')));
    let ok = match file {
        Some(p) => p.starts_with('/'),
        None => url.starts_with("http://") || url.starts_with("https://"),
    };
    if !ok {
        return Err(Error::invalid_value(format!(
            "The Url {url} is not valid: give a file of the host (/path or file:///path) or an http(s):// URL (S3 buckets are not served)."
        )));
    }
    Ok((format, url))
}

/// The task as its host report moves it. Runs in the transaction that records the
/// report; returns whether the report was the task's (and so fully handled here).
pub(crate) fn on_import_report(
    tx: &WriteTx,
    snap: &Snapshot,
    report: &SnapshotReport,
) -> Result<bool> {
    let SnapshotOrigin::Import { task, .. } = &snap.origin else {
        return Ok(false);
    };
    let scope = Scope::new(snap.account_id.clone(), snap.region.clone());
    let Some(mut t) = tx.get_doc::<ImportTask>(&scope, task)? else {
        return Ok(false);
    };
    if t.status != ImportStatus::Active {
        return Ok(false);
    }
    match &report.observed {
        ObservedSnapshotState::Progress { percent } => {
            t.progress = (*percent).min(99);
            t.status_message = "converting".into();
            tx.put_doc(&t)?;
            Ok(true)
        }
        ObservedSnapshotState::Failed => {
            tx.delete_snapshot(&scope, snap.id.as_str())?;
            t.status = ImportStatus::Deleted;
            t.status_message = format!(
                "ClientError: {}",
                report
                    .detail
                    .as_deref()
                    .unwrap_or("the disk image could not be imported")
            );
            tracing::info!(task = %t.id, reason = %t.status_message, "import failed");
            tx.put_doc(&t)?;
            Ok(true)
        }
        ObservedSnapshotState::Completed {
            size_bytes,
            boot_mode,
            ..
        } => {
            t.status = ImportStatus::Completed;
            t.status_message = "completed".into();
            t.progress = 100;
            t.size_bytes = Some(*size_bytes);
            if let Some(spec) = t.image.as_mut() {
                // A request without a boot mode gets what the disk's partitions show,
                // and EC2's default when they show nothing.
                let mode = spec
                    .boot_mode
                    .clone()
                    .or_else(|| boot_mode.clone())
                    .unwrap_or_else(|| "legacy-bios".into());
                spec.boot_mode = Some(mode.clone());
                let img = imported_image(&t.id, &t.description, snap, spec, mode, *size_bytes);
                spec.image_id = Some(img.id.clone());
                tx.put_image(&img)?;
                // The task's tags go to the image too (as EC2 does).
                let tags = tx.tags_of(&scope, &t.id)?;
                put_tags(tx, &scope, img.id.as_str(), IMAGE_RESOURCE_TYPE, &tags)?;
            }
            tracing::info!(task = %t.id, "import completed");
            tx.put_doc(&t)?;
            Ok(false)
        }
        ObservedSnapshotState::Deleted => Ok(false),
    }
}

/// The image an ImportImage task makes of its completed snapshot: one root volume of
/// the snapshot (its size rounded up to GiB), booted through the firmware of
/// `boot_mode`.
fn imported_image(
    task: &str,
    description: &str,
    snap: &Snapshot,
    spec: &ImportedImage,
    boot_mode: String,
    size_bytes: u64,
) -> Image {
    let root = spec
        .root_device
        .clone()
        .unwrap_or_else(|| "/dev/xvda".to_string());
    let size_gib = u32::try_from(size_bytes.div_ceil(GIB).max(1)).unwrap_or(u32::MAX);
    Image {
        id: ImageId::generate(),
        owner: Some(snap.account_id.clone()),
        owner_alias: spec.owner_alias.clone(),
        name: spec.name.clone().unwrap_or_else(|| task.to_string()),
        description: description.to_string(),
        architecture: spec.architecture.clone(),
        root_device_name: root.clone(),
        root_device_type: "ebs".into(),
        virtualization_type: "hvm".into(),
        hypervisor: "xen".into(),
        kernel_id: None,
        ramdisk_id: None,
        public: spec.public,
        creation_ms: now_ms(),
        platform_details: "Linux/UNIX".into(),
        ena_support: true,
        boot_mode,
        root_size_gib: size_gib,
        boot: Default::default(),
        region: Some(snap.region.clone()),
        state: ImageState::Available,
        state_reason: None,
        block_devices: vec![ImageMapping {
            device_name: root,
            virtual_name: None,
            ebs: Some(ImageEbs {
                snapshot_id: Some(snap.id.clone()),
                volume_size_gib: size_gib,
                volume_type: VolumeType::Gp3,
                iops: None,
                throughput: None,
                delete_on_termination: true,
                encrypted: snap.encrypted,
            }),
        }],
        shared_with: vec![],
        imds_support: None,
        deprecation_ms: None,
        source_instance_id: None,
        source_image_id: None,
        source_region: None,
        client_token: None,
    }
}

impl ControlPlane {
    /// ImportSnapshot (`input.image` unset) or ImportImage: commits the task and its
    /// `pending` snapshot, and has the host import the disk in the background. A retry
    /// with the same `ClientToken` answers the first call's task.
    pub fn import_disk(
        &self,
        caller: &Caller,
        input: &ImportInput,
        dry_run: bool,
    ) -> Result<(ImportTask, Tags)> {
        let is_image = input.image.is_some();
        let (format, url) = check_disk(input)?;
        let description = input.description.clone().unwrap_or_default();
        super::make::check_description(&description)?;
        let kind = if is_image {
            IMAGE_TASK_RESOURCE_TYPE
        } else {
            SNAPSHOT_TASK_RESOURCE_TYPE
        };
        let tags = tags_for(&input.tag_specs, kind)?;
        if let Some(t) = &input.client_token {
            if t.is_empty() || t.len() > 64 || !t.is_ascii() {
                return Err(Error::invalid_value(
                    "The client token must be 1 to 64 ASCII characters.",
                ));
            }
        }
        let mut image = input.image.clone();
        if let Some(img) = image.as_mut() {
            if img.architecture != "x86_64" {
                return Err(Error::invalid_value(format!(
                    "The architecture '{}' is not supported: this installation's hosts run x86_64 guests only.",
                    img.architecture
                )));
            }
            if let Some(mode) = &img.boot_mode {
                if !["legacy-bios", "uefi", "uefi-preferred"].contains(&mode.as_str()) {
                    return Err(Error::invalid_value(format!(
                        "The boot mode '{mode}' is not valid. Valid values: legacy-bios, uefi, uefi-preferred."
                    )));
                }
            }
            img.root_device = Some(input.root_device.clone().unwrap_or("/dev/xvda".into()));
            if !crate::volumes::attach::valid_device(img.root_device.as_deref().unwrap_or("")) {
                return Err(Error::invalid_value(format!(
                    "Value ({}) for parameter DiskContainer.DeviceName is invalid.",
                    img.root_device.as_deref().unwrap_or("")
                )));
            }
        }
        let scope = caller.scope();
        let kms = crate::volumes::resolve_kms_key(
            &scope,
            input.encrypted || input.kms_key_id.is_some(),
            input.kms_key_id.as_deref(),
        )?;
        let encrypted = kms.is_some();
        let made = self.db.write(|tx| {
            if let Some(token) = &input.client_token {
                if let Some(t) = tx
                    .list_docs::<ImportTask>(&scope)?
                    .into_iter()
                    .find(|t| t.client_token.as_deref() == Some(token))
                {
                    let tags = tx.tags_of(&scope, &t.id)?;
                    return Ok((t, tags, None));
                }
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let id = new_task_id(is_image);
            let snap = pending(
                caller,
                SnapshotOrigin::Import {
                    task: id.clone(),
                    url: url.clone(),
                    format: format.clone(),
                    bootable: is_image,
                },
                (None, 0),
                &format!("Created by AWS-VMImport service for {id}"),
                (encrypted, kms.clone()),
            );
            let task = ImportTask {
                id,
                account_id: caller.account.clone(),
                region: caller.region.clone(),
                description: description.clone(),
                format: format.clone(),
                url: url.clone(),
                disk_description: input.disk_description.clone().unwrap_or_default(),
                snapshot_id: snap.id.clone(),
                image: image.clone(),
                status: ImportStatus::Active,
                status_message: "pending".into(),
                progress: 0,
                encrypted,
                kms_key_id: kms.clone(),
                size_bytes: None,
                client_token: input.client_token.clone(),
                created_ms: now_ms(),
                rev: Default::default(),
            };
            tx.put_snapshot(&snap)?;
            tx.put_doc(&task)?;
            put_tags(tx, &scope, &task.id, kind, &tags)?;
            Ok((task, tags.clone(), Some(snap)))
        })?;
        strato_common::crash::point("import-committed");
        let (task, tags, snap) = made;
        if let Some(snap) = snap {
            self.agent.apply_snapshots(vec![snapshot_spec(&snap)], None);
        }
        Ok((task, tags))
    }

    /// DescribeImportSnapshotTasks (`images` false) and DescribeImportImageTasks: the
    /// caller's tasks of that kind in the region, each id asked for among them, one
    /// page.
    pub fn describe_import_tasks(
        &self,
        caller: &Caller,
        images: bool,
        ids: &[String],
        page: &PageRequest,
    ) -> Result<TaskPage> {
        for id in ids {
            if !ImportTask::valid_id(id) {
                return Err(Error::invalid_value(format!(
                    "The import task id '{id}' is malformed."
                )));
            }
        }
        let scope = caller.scope();
        let (tasks, tags) = self.db.read(|tx| {
            let tasks: Vec<ImportTask> = tx
                .list_docs::<ImportTask>(&scope)?
                .into_iter()
                .filter(|t| t.image.is_some() == images)
                .collect();
            let tags = tags_of_ids(tx, &scope, tasks.iter().map(|t| t.id.as_str()))?;
            Ok((tasks, tags))
        })?;
        if let Some(missing) = ids.iter().find(|id| !tasks.iter().any(|t| &t.id == *id)) {
            return Err(Error::invalid_value(format!(
                "The import task '{missing}' does not exist (InvalidConversionTaskId)."
            )));
        }
        let selected: Vec<(ImportTask, Tags)> = tasks
            .into_iter()
            .filter(|t| ids.is_empty() || ids.contains(&t.id))
            .map(|t| {
                let tg = tags.get(t.id.as_str()).cloned().unwrap_or_default();
                (t, tg)
            })
            .collect();
        Ok(paginate(selected, page, |(t, _)| t.id.clone()))
    }

    /// CancelImportTask: an active task of the caller's ends `deleted`, its snapshot
    /// (and whatever the host made of it) released. Returns the task's status before.
    pub fn cancel_import_task(
        &self,
        caller: &Caller,
        id: &str,
        reason: Option<&str>,
        dry_run: bool,
    ) -> Result<ImportStatus> {
        if id.is_empty() {
            return Err(Error::MissingParameter("ImportTaskId".into()));
        }
        if !ImportTask::valid_id(id) {
            return Err(Error::invalid_value(format!(
                "The import task id '{id}' is malformed."
            )));
        }
        let scope = caller.scope();
        let released = self.db.write(|tx| {
            let mut t = tx.get_doc::<ImportTask>(&scope, id)?.ok_or_else(|| {
                Error::invalid_value(format!("The import task '{id}' does not exist."))
            })?;
            if t.status != ImportStatus::Active {
                return Err(Error::IncorrectState(format!(
                    "The import task '{id}' is {}: only an active task can be cancelled.",
                    t.status.as_str()
                )));
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            t.status = ImportStatus::Deleted;
            t.status_message = format!("Cancelled: {}", reason.unwrap_or("by the user"));
            tx.put_doc(&t)?;
            let snap = tx.snapshot_by_id(t.snapshot_id.as_str())?.map(|mut s| {
                s.state = SnapshotState::Deleting;
                s
            });
            if let Some(s) = &snap {
                tx.put_snapshot(s)?;
            }
            Ok(snap)
        })?;
        if let Some(s) = released {
            let mut spec = snapshot_spec(&s);
            spec.desired = DesiredSnapshotState::Deleted;
            self.agent.apply_snapshots(vec![spec], None);
        }
        Ok(ImportStatus::Active)
    }
}
