//! Machine images: the built-in catalog, DescribeImages, and (in the modules below)
//! the images accounts make of their instances and snapshots.

pub mod attributes;
pub mod import;
pub mod make;

use crate::net::flag;
use crate::page::{paginate, PageRequest};
use crate::{Caller, ControlPlane};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{AccountId, Error, ImageId, ResourceId, ResourceKind, Result};
use strato_store::{Image, ImageBoot, ImageState};

/// The owner alias of the images Strato ships.
pub const BUILTIN_OWNER_ALIAS: &str = "strato";

/// The id of the default image, stable across installations so scripts can name it.
pub const DEFAULT_IMAGE_ID: &str = "ami-05a9d2c7e4b1f3801";

/// The kernel id shown for the built-in image's direct-boot kernel.
pub const BUILTIN_KERNEL_ID: &str = "aki-05a9d2c7e4b1f3801";
/// The ramdisk id shown for the built-in image's initramfs.
pub const BUILTIN_RAMDISK_ID: &str = "ari-05a9d2c7e4b1f3801";

/// The images every account can launch.
pub fn builtin_images() -> Vec<Image> {
    vec![Image {
        id: ImageId::parse(DEFAULT_IMAGE_ID).expect("valid built-in id"),
        owner: None,
        owner_alias: Some(BUILTIN_OWNER_ALIAS.to_string()),
        name: "strato-minimal-x86_64".to_string(),
        description: "Strato minimal Linux: Debian cloud kernel, busybox userland".to_string(),
        architecture: "x86_64".to_string(),
        root_device_name: "/dev/xvda".to_string(),
        root_device_type: "ebs".to_string(),
        virtualization_type: "hvm".to_string(),
        hypervisor: "xen".to_string(),
        // The image boots its kernel directly; EC2 names such kernels and ramdisks
        // with aki-/ari- ids.
        kernel_id: Some(BUILTIN_KERNEL_ID.to_string()),
        ramdisk_id: Some(BUILTIN_RAMDISK_ID.to_string()),
        public: true,
        creation_ms: 1_764_115_200_000,
        platform_details: "Linux/UNIX".to_string(),
        ena_support: true,
        boot_mode: "legacy-bios".to_string(),
        root_size_gib: 8,
        boot: builtin_boot(),
        region: None,
        state: ImageState::Available,
        state_reason: None,
        block_devices: vec![],
        shared_with: vec![],
        imds_support: None,
        deprecation_ms: None,
        source_instance_id: None,
        source_image_id: None,
        source_region: None,
        client_token: None,
    }]
}

/// How the built-in image boots: its kernel and initrd, directly, with the root file
/// system on the first disk. Images registered with the built-in kernel
/// ([`BUILTIN_KERNEL_ID`]) boot the same way from their own root volume.
pub fn builtin_boot() -> ImageBoot {
    ImageBoot {
        dir: "strato-minimal".to_string(),
        kernel: Some("vmlinuz".to_string()),
        initrd: Some("initrd.img".to_string()),
        cmdline: Some("console=ttyS0 root=/dev/vda rootfstype=ext4 rw".to_string()),
        root_disk: "root.qcow2".to_string(),
    }
}

/// Filter names DescribeImages accepts: every name EC2 documents (values in
/// `image_field`), and `boot-mode` and `platform-details`, which EC2 accepts too.
pub const IMAGE_FILTERS: &[&str] = &[
    "architecture",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.encrypted",
    "block-device-mapping.snapshot-id",
    "block-device-mapping.volume-size",
    "block-device-mapping.volume-type",
    // Not documented, but EC2 accepts it.
    "boot-mode",
    "creation-date",
    "critical",
    "description",
    "ena-support",
    "free-tier-eligible",
    "high",
    "hypervisor",
    "image-allowed",
    "image-id",
    "image-type",
    "image-watermark.source-image-creation-time",
    "image-watermark.source-image-id",
    "image-watermark.source-image-region",
    "image-watermark.watermark-creation-time",
    "image-watermark.watermark-key",
    "informational",
    "is-public",
    "kernel-id",
    "low",
    "manifest-location",
    "medium",
    "name",
    "owner-alias",
    "owner-id",
    "platform",
    // Not documented, but EC2 accepts it.
    "platform-details",
    "product-code",
    "product-code.type",
    "public-ssm-parameter-name",
    "ramdisk-id",
    "root-device-name",
    "root-device-type",
    "scan-result.critical-fix-available-since",
    "scan-result.finding-scan-date",
    "scan-result.high-fix-available-since",
    "scan-result.highest-finding-severity-label",
    "scan-result.informational-fix-available-since",
    "scan-result.low-fix-available-since",
    "scan-result.medium-fix-available-since",
    "source-image-id",
    "source-image-region",
    "source-instance-id",
    "sriov-net-support",
    "state",
    "state-reason-code",
    "state-reason-message",
    "virtualization-type",
];

/// The owner id shown for an image (built-ins have no account, so a fixed one).
pub fn owner_id(img: &Image) -> String {
    img.owner
        .as_ref()
        .map(|o| o.to_string())
        .unwrap_or_else(|| "000000000000".to_string())
}

/// An image's values for a DescribeImages filter: what the answer shows for it.
/// Features Strato does not have (platforms other than Linux, product codes, image
/// watermarks, Inspector scan results and their severity counts, Allowed AMIs,
/// free-tier marks, public SSM parameters, SR-IOV) have no value, so those filters
/// match nothing, as on EC2 for images without them.
fn image_field(img: &Image, name: &str) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    let ebs = || {
        img.mappings()
            .into_iter()
            .filter_map(|m| m.ebs)
            .collect::<Vec<_>>()
    };
    match name {
        "architecture" => one(&img.architecture),
        "description" => one(&img.description),
        "hypervisor" => one(&img.hypervisor),
        "image-id" => one(img.id.as_str()),
        "image-type" => one("machine"),
        "is-public" => one(if img.public { "true" } else { "false" }),
        "kernel-id" => img.kernel_id.iter().cloned().collect(),
        "ramdisk-id" => img.ramdisk_id.iter().cloned().collect(),
        "name" => one(&img.name),
        "owner-alias" => img.owner_alias.iter().cloned().collect(),
        "owner-id" => vec![owner_id(img)],
        "platform-details" => one(&img.platform_details),
        "root-device-name" => one(&img.root_device_name),
        "root-device-type" => one(&img.root_device_type),
        "state" => one(img.state.as_str()),
        "state-reason-message" => img.state_reason.iter().cloned().collect(),
        "state-reason-code" => img
            .state_reason
            .as_ref()
            .map(|_| "Client.UserInitiated".to_string())
            .into_iter()
            .collect(),
        "virtualization-type" => one(&img.virtualization_type),
        "boot-mode" => one(&img.boot_mode),
        "creation-date" => vec![ec2_timestamp(img.creation_ms)],
        "ena-support" => flag(img.ena_support),
        // What the answer shows as `imageLocation`.
        "manifest-location" => vec![image_location(img)],
        "source-instance-id" => img
            .source_instance_id
            .iter()
            .map(|i| i.to_string())
            .collect(),
        "source-image-id" => img.source_image_id.iter().map(|i| i.to_string()).collect(),
        "source-image-region" => img.source_region.iter().cloned().collect(),
        "block-device-mapping.device-name" => {
            img.mappings().into_iter().map(|m| m.device_name).collect()
        }
        "block-device-mapping.volume-size" => ebs()
            .iter()
            .map(|e| e.volume_size_gib.to_string())
            .collect(),
        "block-device-mapping.volume-type" => ebs()
            .iter()
            .map(|e| e.volume_type.as_str().to_string())
            .collect(),
        "block-device-mapping.delete-on-termination" => ebs()
            .iter()
            .flat_map(|e| flag(e.delete_on_termination))
            .collect(),
        "block-device-mapping.encrypted" => ebs().iter().flat_map(|e| flag(e.encrypted)).collect(),
        "block-device-mapping.snapshot-id" => ebs()
            .iter()
            .filter_map(|e| e.snapshot_id.as_ref().map(|s| s.to_string()))
            .collect(),
        _ => vec![],
    }
}

/// What DescribeImages shows as an image's `imageLocation`.
pub fn image_location(img: &Image) -> String {
    format!("{}/{}", owner_id(img), img.name)
}

/// Whether an image is deprecated at `now_ms`.
pub fn deprecated(img: &Image, now_ms: i64) -> bool {
    img.deprecation_ms.is_some_and(|t| t <= now_ms)
}

/// An image with the caller's tags on it.
pub type TaggedImage = (Image, crate::Tags);

/// One `Owner.N` of DescribeImages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageOwner {
    /// `self`: the caller's own images.
    Caller,
    /// An owner alias (`amazon`, `aws-marketplace`, or Strato's own), which selects
    /// the images showing that `imageOwnerAlias`.
    Alias(String),
    /// An account, which selects the images showing that `imageOwnerId`.
    Account(AccountId),
}

impl ImageOwner {
    /// Parses an `Owner.N` value, answering EC2's error for anything that is neither a
    /// known alias nor an account id.
    pub fn parse(owner: &str) -> Result<ImageOwner> {
        match owner {
            "self" => Ok(ImageOwner::Caller),
            "amazon" | "aws-marketplace" | BUILTIN_OWNER_ALIAS => {
                Ok(ImageOwner::Alias(owner.to_string()))
            }
            _ => AccountId::parse(owner).map(ImageOwner::Account).ok_or_else(|| {
                Error::invalid_value(format!(
                    "Invalid value '{owner}' for owners. Expected an account id or one of self, amazon, {BUILTIN_OWNER_ALIAS}."
                ))
            }),
        }
    }

    /// Whether `img` is one of this owner's, for `caller`.
    fn owns(&self, caller: &Caller, img: &Image) -> bool {
        match self {
            ImageOwner::Caller => img.owner.as_ref() == Some(&caller.account),
            ImageOwner::Alias(alias) => img.owner_alias.as_deref() == Some(alias.as_str()),
            ImageOwner::Account(id) => owner_id(img) == id.as_str(),
        }
    }
}

/// A DescribeImages request, its ids and owners already parsed by the front door.
#[derive(Default)]
pub struct DescribeImagesInput {
    /// `ImageId.N`.
    pub image_ids: Vec<ImageId>,
    /// `Owner.N`.
    pub owners: Vec<ImageOwner>,
    /// `ExecutableBy.N`: `all`, `self` or an account id. Kept as given, because
    /// Strato has never refused a value here: one naming no account still selects the
    /// public images, which every account can launch.
    pub executable_by: Vec<String>,
    /// `IncludeDeprecated`: other accounts' deprecated images too (one's own, and
    /// images asked for by id, are always shown).
    pub include_deprecated: bool,
    pub filters: FilterSet,
    pub page: Option<PageRequest>,
}

impl ControlPlane {
    /// Registers (or refreshes) the built-in images. `missing` says why this host
    /// cannot boot them (their files are not here): they are shown `failed` with it
    /// as their state reason, and launching them is refused with it.
    pub fn register_builtin_images(&self, missing: Option<&str>) -> Result<()> {
        self.db.write(|tx| {
            for mut img in builtin_images() {
                if let Some(why) = missing {
                    img.state = ImageState::Failed;
                    img.state_reason = Some(format!("Unavailable on this host: {why}."));
                }
                tx.put_image(&img)?;
            }
            Ok(())
        })
    }

    /// An image the caller may launch.
    pub fn visible_image(&self, caller: &Caller, id: &str) -> Result<Image> {
        let id = ImageId::parse(id)?;
        self.db
            .read(|tx| tx.visible_image(&caller.account, &caller.region, id.as_str()))?
            .ok_or_else(|| Error::not_found(ResourceKind::Image, id))
    }

    /// DescribeImages: the images the caller may see that match every criterion, one
    /// page (everything when `input.page` is `None`), each with the caller's tags.
    /// Every id asked for must be one of them.
    pub fn describe_images(
        &self,
        caller: &Caller,
        input: &DescribeImagesInput,
    ) -> Result<(Vec<TaggedImage>, Option<String>)> {
        let (images, tags) = self.db.read(|tx| {
            let images = tx.visible_images(&caller.account, &caller.region)?;
            let tags = match (images.first(), images.last()) {
                (Some(a), Some(b)) => {
                    tx.tags_in_range(&caller.scope(), a.id.as_str(), b.id.as_str())?
                }
                _ => Default::default(),
            };
            Ok((images, tags))
        })?;
        let now = strato_common::time_fmt::now_ms();
        let missing: Vec<&str> = input
            .image_ids
            .iter()
            .filter(|id| !images.iter().any(|i| i.id == **id))
            .map(|id| id.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(Error::not_found(
                ResourceKind::Image,
                format!("[{}]", missing.join(", ")),
            ));
        }
        let selected: Vec<(Image, Vec<(String, String)>)> = images
            .into_iter()
            .filter(|img| input.image_ids.is_empty() || input.image_ids.contains(&img.id))
            .filter(|img| {
                input.owners.is_empty() || input.owners.iter().any(|o| o.owns(caller, img))
            })
            .filter(|img| {
                input.executable_by.is_empty()
                    || input.executable_by.iter().any(|e| match e.as_str() {
                        "all" => img.public,
                        "self" => img.launchable_by(&caller.account),
                        id => {
                            img.public
                                || owner_id(img) == id
                                || img.shared_with.iter().any(|a| a.as_str() == id)
                        }
                    })
            })
            .filter(|img| {
                input.include_deprecated
                    || !input.image_ids.is_empty()
                    || img.owner.as_ref() == Some(&caller.account)
                    || !deprecated(img, now)
            })
            .map(|img| {
                let t = tags.get(img.id.as_str()).cloned().unwrap_or_default();
                (img, t)
            })
            .filter(|(img, t)| input.filters.matches(t, |n| image_field(img, n)))
            .collect();
        let page = input.page.clone().unwrap_or_else(PageRequest::all);
        Ok(paginate(selected, &page, |(img, _)| img.id.to_string()))
    }
}
