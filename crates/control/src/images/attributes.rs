//! What happens to an image after it is made: its state following its snapshots,
//! DeregisterImage, its attributes (Describe/Modify/ResetImageAttribute) and its
//! deprecation.
//!
//! Only an image's owner changes it. Other accounts it is shared with (or every
//! account, for a public image) see and launch it; they are told `AuthFailure` when
//! they try to change it, as EC2 does.

use super::make::check_description;
use crate::volumes::snapshots::snapshot_spec;
use crate::{Caller, ControlPlane};
use strato_common::time_fmt::now_ms;
use strato_common::{AccountId, Error, ImageId, ResourceKind, Result, SnapshotId};
use strato_domain::Scope;
use strato_store::{Image, ImageState, ReadTx, Snapshot, SnapshotState, WriteTx};

/// DescribeImageAttribute's answer: the one attribute asked for.
#[derive(Clone, Debug, PartialEq)]
pub enum ImageAttribute {
    Description(String),
    Kernel(Option<String>),
    Ramdisk(Option<String>),
    /// Accounts it is shared with, and whether it is public.
    LaunchPermission(Vec<AccountId>, bool),
    ProductCodes,
    BlockDeviceMapping(Box<Image>),
    SriovNetSupport,
    BootMode(String),
    TpmSupport,
    UefiData,
    LastLaunchedTime,
    ImdsSupport(Option<String>),
    DeregistrationProtection,
}

/// A ModifyImageAttribute request, as the front door decoded it: exactly one change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageChange {
    Description(String),
    /// `v2.0`, which cannot be undone.
    ImdsSupport(String),
    /// Accounts (`UserId`) and `all` (`Group`) added and removed.
    LaunchPermission {
        add: Vec<String>,
        remove: Vec<String>,
    },
}

/// The result of deleting one of an image's snapshots with it (`DeleteSnapshotResults`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotDeletion {
    pub snapshot_id: SnapshotId,
    /// `success`, or why it was kept: `skipped` (another image uses it).
    pub return_code: &'static str,
}

/// Settles the pending images made of `snap` now that it completed or failed: an image
/// is `available` once all its snapshots are completed, `failed` as soon as one failed.
/// Runs in the transaction that records the snapshot's new state.
pub(crate) fn settle_images(tx: &WriteTx, snap: &Snapshot) -> Result<()> {
    for mut img in tx.owned_images(&snap.account_id, &snap.region)? {
        if img.state != ImageState::Pending || !img.snapshot_ids().contains(&snap.id) {
            continue;
        }
        let mut states = vec![];
        for id in img.snapshot_ids() {
            let s = if id == snap.id {
                Some(snap.clone())
            } else {
                tx.snapshot_by_id(id.as_str())?
            };
            states.push((id, s.map(|s| s.state)));
        }
        if let Some((id, _)) = states.iter().find(|(_, s)| {
            matches!(
                s,
                None | Some(SnapshotState::Error | SnapshotState::Deleting)
            )
        }) {
            img.state = ImageState::Failed;
            img.state_reason = Some(format!("Snapshot {id} of the image failed."));
        } else if states
            .iter()
            .all(|(_, s)| *s == Some(SnapshotState::Completed))
        {
            img.state = ImageState::Available;
        } else {
            continue;
        }
        tracing::info!(image = %img.id, state = img.state.as_str(), "image state changed");
        tx.put_image(&img)?;
    }
    Ok(())
}

/// The caller's own image in its region (deregistered ones are gone), or
/// `InvalidAMIID.NotFound`; an image the caller can only see answers `AuthFailure`.
fn load_own(tx: &ReadTx, caller: &Caller, id: &ImageId) -> Result<Image> {
    let img = tx
        .visible_image(&caller.account, &caller.region, id.as_str())?
        .ok_or_else(|| Error::not_found(ResourceKind::Image, id))?;
    if img.owner.as_ref() != Some(&caller.account) {
        return Err(Error::AuthFailure(format!("Not authorized for image:{id}")));
    }
    Ok(img)
}

/// Whether another live image of the account uses a snapshot.
fn used_elsewhere(tx: &WriteTx, scope: &Scope, image: &ImageId, snap: &SnapshotId) -> Result<bool> {
    Ok(tx
        .owned_images(&scope.account, &scope.region)?
        .iter()
        .any(|i| {
            i.id != *image && i.state != ImageState::Deregistered && i.snapshot_ids().contains(snap)
        }))
}

/// The live image of the account in its region that uses a snapshot, if any.
pub(crate) fn image_using(
    tx: &WriteTx,
    scope: &Scope,
    snap: &SnapshotId,
) -> Result<Option<ImageId>> {
    Ok(tx
        .owned_images(&scope.account, &scope.region)?
        .into_iter()
        .find(|i| i.state != ImageState::Deregistered && i.snapshot_ids().contains(snap))
        .map(|i| i.id))
}

impl ControlPlane {
    /// DeregisterImage: the caller's image is gone from every listing and launch at
    /// once (instances launched from it are unaffected). With
    /// `DeleteAssociatedSnapshots`, its snapshots are deleted too, except those another
    /// of the caller's images uses.
    pub fn deregister_image(
        &self,
        caller: &Caller,
        id: &ImageId,
        delete_snapshots: bool,
        dry_run: bool,
    ) -> Result<Vec<SnapshotDeletion>> {
        let scope = caller.scope();
        let (results, deleting) = self.db.write(|tx| {
            let mut img = load_own(tx, caller, id)?;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            img.state = ImageState::Deregistered;
            img.public = false;
            img.shared_with.clear();
            tx.put_image(&img)?;
            let mut results = vec![];
            let mut deleting = vec![];
            if delete_snapshots {
                for sid in img.snapshot_ids() {
                    let Some(mut s) = tx
                        .snapshot_by_id(sid.as_str())?
                        .filter(|s| s.account_id == caller.account && s.region == caller.region)
                        .filter(|s| s.state != SnapshotState::Deleting)
                    else {
                        continue;
                    };
                    if used_elsewhere(tx, &scope, &img.id, &sid)? {
                        results.push(SnapshotDeletion {
                            snapshot_id: sid,
                            return_code: "skipped",
                        });
                        continue;
                    }
                    s.state = SnapshotState::Deleting;
                    tx.put_snapshot(&s)?;
                    deleting.push(s);
                    results.push(SnapshotDeletion {
                        snapshot_id: sid,
                        return_code: "success",
                    });
                }
            }
            Ok((results, deleting))
        })?;
        strato_common::crash::point("image-deregister-committed");
        if !deleting.is_empty() {
            self.agent
                .apply_snapshots(deleting.iter().map(snapshot_spec).collect(), None);
        }
        Ok(results)
    }

    /// DescribeImageAttribute: one attribute of an image the caller may see; its launch
    /// permissions only to its owner.
    pub fn image_attribute(
        &self,
        caller: &Caller,
        id: &ImageId,
        attribute: &str,
    ) -> Result<ImageAttribute> {
        let img = self
            .db
            .read(|tx| tx.visible_image(&caller.account, &caller.region, id.as_str()))?
            .ok_or_else(|| Error::not_found(ResourceKind::Image, id))?;
        let owner = img.owner.as_ref() == Some(&caller.account);
        Ok(match attribute {
            "description" => ImageAttribute::Description(img.description),
            "kernel" => ImageAttribute::Kernel(img.kernel_id),
            "ramdisk" => ImageAttribute::Ramdisk(img.ramdisk_id),
            "launchPermission" => {
                if !owner {
                    return Err(Error::AuthFailure(format!("Not authorized for image:{id}")));
                }
                ImageAttribute::LaunchPermission(img.shared_with, img.public)
            }
            "productCodes" => ImageAttribute::ProductCodes,
            "blockDeviceMapping" => ImageAttribute::BlockDeviceMapping(Box::new(img)),
            "sriovNetSupport" => ImageAttribute::SriovNetSupport,
            "bootMode" => ImageAttribute::BootMode(img.boot_mode),
            "tpmSupport" => ImageAttribute::TpmSupport,
            "uefiData" => ImageAttribute::UefiData,
            "lastLaunchedTime" => ImageAttribute::LastLaunchedTime,
            "imdsSupport" => ImageAttribute::ImdsSupport(img.imds_support),
            "deregistrationProtection" => ImageAttribute::DeregistrationProtection,
            other => {
                return Err(Error::invalid_value(format!(
                    "Value ({other}) for parameter attribute is invalid. Unknown attribute."
                )))
            }
        })
    }

    /// ModifyImageAttribute: one change to the caller's image.
    pub fn modify_image_attribute(
        &self,
        caller: &Caller,
        id: &ImageId,
        change: &ImageChange,
        dry_run: bool,
    ) -> Result<()> {
        match change {
            ImageChange::Description(d) => check_description(d)?,
            ImageChange::ImdsSupport(v) if v != "v2.0" => {
                return Err(Error::invalid_value(format!(
                    "The value '{v}' is not valid for ImdsSupport. Valid values: v2.0 (which cannot be undone)."
                )))
            }
            _ => {}
        }
        let mut grants = vec![];
        if let ImageChange::LaunchPermission { add, remove } = change {
            for g in add.iter().chain(remove) {
                if g == "all" {
                    continue;
                }
                let a = AccountId::parse(g).ok_or_else(|| {
                    Error::invalid_value(format!(
                        "Invalid user id '{g}': a launch permission names a 12-digit account id or the group 'all'."
                    ))
                })?;
                grants.push(a);
            }
        }
        self.db.write(|tx| {
            let mut img = load_own(tx, caller, id)?;
            if img.state != ImageState::Available
                && matches!(change, ImageChange::LaunchPermission { .. })
            {
                return Err(Error::InvalidAmiUnavailable(format!(
                    "Image {id} is '{}': only an available image can be shared.",
                    img.state.as_str()
                )));
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            match change {
                ImageChange::Description(d) => img.description = d.clone(),
                ImageChange::ImdsSupport(v) => img.imds_support = Some(v.clone()),
                ImageChange::LaunchPermission { add, remove } => {
                    for g in add {
                        if g == "all" {
                            img.public = true;
                        } else if let Some(a) = AccountId::parse(g) {
                            if a != caller.account && !img.shared_with.contains(&a) {
                                img.shared_with.push(a);
                            }
                        }
                    }
                    for g in remove {
                        if g == "all" {
                            img.public = false;
                        } else {
                            img.shared_with.retain(|a| a.as_str() != g);
                        }
                    }
                }
            }
            tx.put_image(&img)
        })
    }

    /// ResetImageAttribute: only `launchPermission`, which makes the image private.
    pub fn reset_image_attribute(
        &self,
        caller: &Caller,
        id: &ImageId,
        attribute: &str,
        dry_run: bool,
    ) -> Result<()> {
        if attribute != "launchPermission" {
            return Err(Error::invalid_value(format!(
                "Value ({attribute}) for parameter attribute is invalid. Only launchPermission can be reset."
            )));
        }
        self.db.write(|tx| {
            let mut img = load_own(tx, caller, id)?;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            img.public = false;
            img.shared_with.clear();
            tx.put_image(&img)
        })
    }

    /// Enable/DisableImageDeprecation: the caller's image is deprecated from `at`
    /// (rounded down to the minute, at most ten years ahead) or not at all.
    pub fn set_image_deprecation(
        &self,
        caller: &Caller,
        id: &ImageId,
        at: Option<i64>,
        dry_run: bool,
    ) -> Result<()> {
        const TEN_YEARS_MS: i64 = 10 * 366 * 24 * 3600 * 1000;
        let at = at.map(|t| t - t.rem_euclid(60_000));
        if let Some(t) = at {
            if t > now_ms() + TEN_YEARS_MS {
                return Err(Error::invalid_value(
                    "The deprecation date must be at most 10 years from now.",
                ));
            }
        }
        self.db.write(|tx| {
            let mut img = load_own(tx, caller, id)?;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            img.deprecation_ms = at;
            tx.put_image(&img)
        })
    }
}
