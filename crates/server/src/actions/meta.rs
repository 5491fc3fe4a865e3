//! Catalog actions: instance types and offerings, images, regions, zones, account
//! attributes. Typed requests in, the model's output types out.

use super::{page, tag_set, Ctx};
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{Error, Result};
use strato_control::catalog::{self, zone_id, InstanceType, INSTANCE_TYPES};
use strato_control::images::{owner_id, DescribeImagesInput, TaggedImage, IMAGE_FILTERS};
use strato_control::page::paginate;
use strato_control::ControlPlane;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, LocationType};

/// Filter names DescribeInstanceTypes accepts.
const TYPE_FILTERS: &[&str] = &[
    "instance-type",
    "current-generation",
    "free-tier-eligible",
    "hypervisor",
    "bare-metal",
    "burstable-performance-supported",
    "memory-info.size-in-mib",
    "vcpu-info.default-vcpus",
    "vcpu-info.default-cores",
    "vcpu-info.default-threads-per-core",
    "processor-info.supported-architecture",
    "processor-info.sustained-clock-speed-in-ghz",
    "supported-usage-class",
    "supported-root-device-type",
    "supported-virtualization-type",
    "network-info.network-performance",
    "instance-storage-supported",
    "hibernation-supported",
];

/// The type's default core count.
fn cores(t: &InstanceType) -> u32 {
    t.default_cores()
}

/// The type's default threads per core.
fn threads(t: &InstanceType) -> u32 {
    t.default_threads_per_core()
}

/// A small catalog number as the model's `i32` (every catalog value fits).
fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// The type's clock speed as the model's double, written as the catalog's `f32`
/// prints: widening the `f32` itself would print `3.0999999046325684` for 3.1.
fn clock_ghz(t: &InstanceType) -> f64 {
    t.clock_ghz
        .to_string()
        .parse()
        .unwrap_or(f64::from(t.clock_ghz))
}

/// The values of filter `name` for instance type `t`.
fn type_field(t: &InstanceType, name: &str) -> Vec<String> {
    let b = |v: bool| vec![if v { "true" } else { "false" }.to_string()];
    match name {
        "instance-type" => vec![t.name.to_string()],
        "current-generation" => b(true),
        "free-tier-eligible" => b(t.free_tier),
        "hypervisor" => vec![t.hypervisor.to_string()],
        "bare-metal" => b(false),
        "burstable-performance-supported" => b(t.burstable),
        "memory-info.size-in-mib" => vec![t.memory_mib.to_string()],
        "vcpu-info.default-vcpus" => vec![t.vcpus.to_string()],
        "vcpu-info.default-cores" => vec![cores(t).to_string()],
        "vcpu-info.default-threads-per-core" => vec![threads(t).to_string()],
        "processor-info.supported-architecture" => vec!["x86_64".into()],
        "processor-info.sustained-clock-speed-in-ghz" => vec![format!("{}", t.clock_ghz)],
        "supported-usage-class" => vec!["on-demand".into()],
        "supported-root-device-type" => vec!["ebs".into()],
        "supported-virtualization-type" => vec!["hvm".into()],
        "network-info.network-performance" => vec![t.network.to_string()],
        "instance-storage-supported" => b(false),
        "hibernation-supported" => b(false),
        _ => vec![],
    }
}

/// An instance type as EC2 describes it. Every type is an x86_64, EBS-only, HVM,
/// on-demand, current-generation type with the same EBS, network-interface and
/// placement limits, so only the catalog's own numbers vary.
fn instance_type_item(t: &InstanceType) -> wire::InstanceTypeInfo {
    wire::InstanceTypeInfo {
        instance_type: Some(t.name.to_string()),
        current_generation: Some(true),
        free_tier_eligible: Some(t.free_tier),
        supported_usage_classes: Some(vec![wire::UsageClassType::OnDemand]),
        supported_root_device_types: Some(vec![wire::RootDeviceType::Ebs]),
        supported_virtualization_types: Some(vec![wire::VirtualizationType::Hvm]),
        bare_metal: Some(false),
        hypervisor: wire::InstanceTypeHypervisor::from_wire(t.hypervisor),
        processor_info: Some(wire::ProcessorInfo {
            supported_architectures: Some(vec![wire::ArchitectureType::X8664]),
            sustained_clock_speed_in_ghz: Some(clock_ghz(t)),
            ..Default::default()
        }),
        v_cpu_info: Some(wire::VCpuInfo {
            default_v_cpus: Some(int(t.vcpus)),
            default_cores: Some(int(cores(t))),
            default_threads_per_core: Some(int(threads(t))),
            ..Default::default()
        }),
        memory_info: Some(wire::MemoryInfo {
            size_in_mi_b: Some(i64::from(t.memory_mib)),
        }),
        instance_storage_supported: Some(false),
        ebs_info: Some(wire::EbsInfo {
            ebs_optimized_support: Some(wire::EbsOptimizedSupport::Default),
            encryption_support: Some(wire::EbsEncryptionSupport::Supported),
            nvme_support: Some(wire::EbsNvmeSupport::Required),
            ..Default::default()
        }),
        network_info: Some(wire::NetworkInfo {
            network_performance: Some(t.network.to_string()),
            maximum_network_interfaces: Some(3),
            ipv4_addresses_per_interface: Some(6),
            ipv6_supported: Some(true),
            ena_support: Some(wire::EnaSupport::Required),
            ..Default::default()
        }),
        placement_group_info: Some(wire::PlacementGroupInfo {
            supported_strategies: Some(vec![
                wire::PlacementGroupStrategy::Partition,
                wire::PlacementGroupStrategy::Spread,
            ]),
        }),
        hibernation_supported: Some(false),
        burstable_performance_supported: Some(t.burstable),
        dedicated_hosts_supported: Some(false),
        auto_recovery_supported: Some(true),
        supported_boot_modes: Some(vec![wire::BootModeType::LegacyBios]),
        ..Default::default()
    }
}

/// DescribeInstanceTypes: the catalog's types, the same in every region.
pub fn describe_instance_types(
    _cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInstanceTypesRequest,
) -> Result<wire::DescribeInstanceTypesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, TYPE_FILTERS, false)?;
    let names = &req.instance_types;
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| !INSTANCE_TYPES.iter().any(|t| t.name == n.as_str()))
        .map(|s| s.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(Error::InvalidInstanceType(format!(
            "The following supplied instance types do not exist: [{}]",
            unknown.join(", ")
        )));
    }
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 100)?;
    let mut list: Vec<&InstanceType> = INSTANCE_TYPES
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .filter(|t| filters.matches(&[], |n| type_field(t, n)))
        .collect();
    // Pages resume after the last key, so the list must be in key order.
    list.sort_by_key(|t| t.name);
    let (list, next) = paginate(list, &pg, |t| t.name.to_string());
    Ok(wire::DescribeInstanceTypesResult {
        instance_types: Some(list.into_iter().map(instance_type_item).collect()),
        next_token: next,
    })
}

/// DescribeInstanceTypeOfferings: every type is offered in every location of the
/// caller's region.
pub fn describe_instance_type_offerings(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInstanceTypeOfferingsRequest,
) -> Result<wire::DescribeInstanceTypeOfferingsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let region = &cx.caller.region;
    let location_type = req.location_type.unwrap_or(LocationType::Region);
    let locations: Vec<String> = match location_type {
        LocationType::Region => vec![region.clone()],
        LocationType::AvailabilityZone => cp.cfg.zones(region),
        LocationType::AvailabilityZoneId => cp
            .cfg
            .zones(region)
            .iter()
            .map(|z| zone_id(region, z))
            .collect(),
        other => {
            return Err(Error::invalid_value(format!(
                "Value ({other}) for parameter locationType is invalid. Valid values: region, availability-zone, availability-zone-id."
            )))
        }
    };
    let filters = filter_set(&req.filters, &["instance-type", "location"], false)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let mut list = vec![];
    for loc in &locations {
        for t in INSTANCE_TYPES {
            if filters.matches(&[], |n| match n {
                "instance-type" => vec![t.name.to_string()],
                "location" => vec![loc.clone()],
                _ => vec![],
            }) {
                list.push((t.name, loc.clone()));
            }
        }
    }
    list.sort_by_key(|(t, l)| format!("{l}\u{1}{t}"));
    let (list, next) = paginate(list, &pg, |(t, l)| format!("{l}\u{1}{t}"));
    Ok(wire::DescribeInstanceTypeOfferingsResult {
        instance_type_offerings: Some(
            list.into_iter()
                .map(|(t, l)| wire::InstanceTypeOffering {
                    instance_type: Some(t.to_string()),
                    location_type: Some(location_type),
                    location: Some(l),
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// An image as EC2 describes it: one EBS root volume, no other block devices.
fn image_item((img, tags): &TaggedImage) -> wire::Image {
    let owner = owner_id(img);
    wire::Image {
        image_id: Some(img.id.to_string()),
        image_location: Some(format!("{owner}/{}", img.name)),
        state: Some(wire::ImageState::Available),
        owner_id: Some(owner),
        creation_date: Some(ec2_timestamp(img.creation_ms)),
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
        block_device_mappings: Some(vec![wire::BlockDeviceMapping {
            device_name: Some(img.root_device_name.clone()),
            ebs: Some(wire::EbsBlockDevice {
                volume_size: Some(int(img.root_size_gib)),
                delete_on_termination: Some(true),
                volume_type: Some(wire::VolumeType::Gp3),
                encrypted: Some(false),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        virtualization_type: wire::VirtualizationType::from_wire(&img.virtualization_type),
        tags: tag_set(tags),
        hypervisor: wire::HypervisorType::from_wire(&img.hypervisor),
        ena_support: Some(img.ena_support),
        platform_details: Some(img.platform_details.clone()),
        usage_operation: Some("RunInstances".to_string()),
        boot_mode: wire::BootModeValues::from_wire(&img.boot_mode),
        ..Default::default()
    }
}

/// DescribeImages. Pages only when `MaxResults` or `NextToken` is given (EC2 answers
/// everything in one page otherwise), and never together with `ImageId`s.
pub fn describe_images(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeImagesRequest,
) -> Result<wire::DescribeImagesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let input = DescribeImagesInput {
        image_ids: req.image_ids,
        owners: req.owners,
        executable_by: req.executable_users,
        filters: filter_set(&req.filters, IMAGE_FILTERS, true)?,
        page: if req.max_results.is_some() || req.next_token.is_some() {
            Some(page(req.max_results, req.next_token.as_deref(), 5, 1000)?)
        } else {
            None
        },
    };
    if !input.image_ids.is_empty() && input.page.is_some() {
        return Err(Error::InvalidParameterCombination(
            "The parameter imagesSet cannot be used with the parameter maxResults".into(),
        ));
    }
    let (list, next) = cp.describe_images(cx.caller, &input)?;
    Ok(wire::DescribeImagesResult {
        images: Some(list.iter().map(image_item).collect()),
        next_token: next,
    })
}

/// DescribeRegions: the regions this installation serves (every one of them on this
/// endpoint); with `AllRegions`, AWS's other commercial regions too, as not opted in.
pub fn describe_regions(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeRegionsRequest,
) -> Result<wire::DescribeRegionsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(
        &req.filters,
        &["endpoint", "region-name", "opt-in-status"],
        false,
    )?;
    let names = &req.region_names;
    for n in names {
        if catalog::region_info(n).is_none() && !cp.cfg.serves(n) {
            return Err(Error::invalid_value(format!("Invalid region: {n}")));
        }
    }
    let all = req.all_regions.unwrap_or(false);
    let host = cp
        .cfg
        .endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .to_string();
    let mut regions: Vec<(String, &'static str)> = catalog::REGIONS
        .iter()
        .map(|r| (r.name.to_string(), r.opt_in_status(cp.cfg.serves(r.name))))
        .collect();
    // A region served by name that AWS does not have (a private one) opts in nothing.
    for r in &cp.cfg.regions {
        if catalog::region_info(r).is_none() {
            regions.push((r.clone(), "opt-in-not-required"));
        }
    }
    regions.sort();
    let regions: Vec<wire::Region> = regions
        .into_iter()
        .filter(|(r, _)| all || !names.is_empty() || cp.cfg.serves(r))
        .filter(|(r, _)| names.is_empty() || names.contains(r))
        .filter(|(r, status)| {
            filters.matches(&[], |n| match n {
                "endpoint" => vec![host.clone()],
                "region-name" => vec![r.clone()],
                "opt-in-status" => vec![status.to_string()],
                _ => vec![],
            })
        })
        .map(|(r, status)| wire::Region {
            region_name: Some(r),
            endpoint: Some(host.clone()),
            opt_in_status: Some(status.to_string()),
            geography: None,
        })
        .collect();
    Ok(wire::DescribeRegionsResult {
        regions: Some(regions),
    })
}

/// An availability zone of `region` as EC2 describes it: a plain zone (no Local or
/// Wavelength Zones), always available, its region its only group.
fn zone_item(region: &str, zone: String, id: String) -> wire::AvailabilityZone {
    wire::AvailabilityZone {
        zone_name: Some(zone),
        state: Some(wire::AvailabilityZoneState::Available),
        region_name: Some(region.to_string()),
        zone_id: Some(id),
        group_name: Some(region.to_string()),
        network_border_group: Some(region.to_string()),
        opt_in_status: Some(wire::AvailabilityZoneOptInStatus::OptInNotRequired),
        zone_type: Some("availability-zone".to_string()),
        messages: Some(vec![]),
        ..Default::default()
    }
}

/// DescribeAvailabilityZones: the zones of the caller's region, with their zone ids.
/// `AllAvailabilityZones` changes nothing: Local and Wavelength Zones are not offered,
/// so all zones are the usual ones.
pub fn describe_availability_zones(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeAvailabilityZonesRequest,
) -> Result<wire::DescribeAvailabilityZonesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(
        &req.filters,
        &[
            "zone-name",
            "zone-id",
            "state",
            "region-name",
            "zone-type",
            "group-name",
            "opt-in-status",
            "message",
            "network-border-group",
        ],
        false,
    )?;
    let names = &req.zone_names;
    let ids = &req.zone_ids;
    let region = &cx.caller.region;
    let zones_of_region = cp.cfg.zones(region);
    for n in names {
        cp.check_zone(region, n)?;
    }
    for id in ids {
        if !zones_of_region.iter().any(|z| zone_id(region, z) == *id) {
            return Err(Error::invalid_value(format!(
                "Invalid availability zone id: [{id}]"
            )));
        }
    }
    let zones: Vec<wire::AvailabilityZone> = zones_of_region
        .iter()
        .map(|z| (z.clone(), zone_id(region, z)))
        .filter(|(z, id)| {
            (names.is_empty() || names.contains(z)) && (ids.is_empty() || ids.contains(id))
        })
        .filter(|(z, id)| {
            filters.matches(&[], |n| match n {
                "zone-name" => vec![z.clone()],
                "zone-id" => vec![id.clone()],
                "state" => vec!["available".into()],
                "region-name" => vec![region.clone()],
                "zone-type" => vec!["availability-zone".into()],
                "group-name" | "network-border-group" => vec![region.clone()],
                "opt-in-status" => vec!["opt-in-not-required".into()],
                _ => vec![],
            })
        })
        .map(|(z, id)| zone_item(region, z, id))
        .collect();
    Ok(wire::DescribeAvailabilityZonesResult {
        availability_zones: Some(zones),
    })
}

/// DescribeAccountAttributes. `AttributeName` is checked here, not by the model (whose
/// enum lacks `vpc-max-elastic-ips` and the other limits EC2 answers).
pub fn describe_account_attributes(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeAccountAttributesRequest,
) -> Result<wire::DescribeAccountAttributesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let max = cp.cfg.max_instances_per_account.to_string();
    let default_vpc = cp
        .default_vpc(cx.caller)?
        .map_or_else(|| "none".to_string(), |v| v.id.to_string());
    let all: Vec<(&str, Vec<String>)> = vec![
        ("supported-platforms", vec!["VPC".into()]),
        ("default-vpc", vec![default_vpc]),
        ("max-instances", vec![max]),
        ("vpc-max-security-groups-per-interface", vec!["5".into()]),
        ("max-elastic-ips", vec!["5".into()]),
        ("vpc-max-elastic-ips", vec!["5".into()]),
    ];
    let wanted = &req.attribute_names;
    for w in wanted {
        if !all.iter().any(|(n, _)| n == w) {
            return Err(Error::invalid_value(format!(
                "Value ({w}) for parameter attributeName is invalid. Unknown attribute."
            )));
        }
    }
    let list: Vec<wire::AccountAttribute> = all
        .into_iter()
        .filter(|(n, _)| wanted.is_empty() || wanted.iter().any(|w| w == n))
        .map(|(name, values)| wire::AccountAttribute {
            attribute_name: Some(name.to_string()),
            attribute_values: Some(
                values
                    .into_iter()
                    .map(|v| wire::AccountAttributeValue {
                        attribute_value: Some(v),
                    })
                    .collect(),
            ),
        })
        .collect();
    Ok(wire::DescribeAccountAttributesResult {
        account_attributes: Some(list),
    })
}
