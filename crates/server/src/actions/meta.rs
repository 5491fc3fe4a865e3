//! Catalog actions: instance types and offerings, images, regions, zones, account
//! attributes.

use super::page;
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{Error, Result};
use strato_control::catalog::{self, zone_id, InstanceType, INSTANCE_TYPES};
use strato_control::images::{owner_id, DescribeImagesInput, IMAGE_FILTERS};
use strato_control::page::paginate;
use strato_control::{Caller, ControlPlane};
use strato_ec2_wire::{decode_filters, xml, Params};

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

fn cores(t: &InstanceType) -> u32 {
    t.default_cores()
}

fn threads(t: &InstanceType) -> u32 {
    t.default_threads_per_core()
}

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

pub fn describe_instance_types(
    cp: &ControlPlane,
    _c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let _ = cp;
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", TYPE_FILTERS, false)?;
    let names = p.list("InstanceType");
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
    let pg = page(p, 5, 100)?;
    let mut list: Vec<&InstanceType> = INSTANCE_TYPES
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .filter(|t| filters.matches(&[], |n| type_field(t, n)))
        .collect();
    // Pages resume after the last key, so the list must be in key order.
    list.sort_by_key(|t| t.name);
    let (list, next) = paginate(list, &pg, |t| t.name.to_string());
    Ok(xml::success("DescribeInstanceTypes", rid, |w| {
        w.list("instanceTypeSet", &list, |w, t| {
            w.text("instanceType", t.name)
                .bool("currentGeneration", true)
                .bool("freeTierEligible", t.free_tier);
            w.list("supportedUsageClasses", ["on-demand"], |w, s| {
                w.buf_text(s);
            });
            w.list("supportedRootDeviceTypes", ["ebs"], |w, s| {
                w.buf_text(s);
            });
            w.list("supportedVirtualizationTypes", ["hvm"], |w, s| {
                w.buf_text(s);
            });
            w.bool("bareMetal", false)
                .text("hypervisor", t.hypervisor)
                .open("processorInfo");
            w.list("supportedArchitectures", ["x86_64"], |w, s| {
                w.buf_text(s);
            });
            w.num("sustainedClockSpeedInGhz", t.clock_ghz)
                .close("processorInfo")
                .open("vCpuInfo")
                .num("defaultVCpus", t.vcpus)
                .num("defaultCores", cores(t))
                .num("defaultThreadsPerCore", threads(t))
                .close("vCpuInfo")
                .open("memoryInfo")
                .num("sizeInMiB", t.memory_mib)
                .close("memoryInfo")
                .bool("instanceStorageSupported", false)
                .open("ebsInfo")
                .text("ebsOptimizedSupport", "default")
                .text("encryptionSupport", "supported")
                .text("nvmeSupport", "required")
                .close("ebsInfo")
                .open("networkInfo")
                .text("networkPerformance", t.network)
                .num("maximumNetworkInterfaces", 3)
                .num("ipv4AddressesPerInterface", 6)
                .bool("ipv6Supported", true)
                .text("enaSupport", "required")
                .close("networkInfo")
                .open("placementGroupInfo");
            w.list("supportedStrategies", ["partition", "spread"], |w, s| {
                w.buf_text(s);
            });
            w.close("placementGroupInfo")
                .bool("hibernationSupported", false)
                .bool("burstablePerformanceSupported", t.burstable)
                .bool("dedicatedHostsSupported", false)
                .bool("autoRecoverySupported", true);
            w.list("supportedBootModes", ["legacy-bios"], |w, s| {
                w.buf_text(s);
            });
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

pub fn describe_instance_type_offerings(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let location_type = p.get("LocationType").unwrap_or("region");
    let locations: Vec<String> = match location_type {
        "region" => vec![c.region.clone()],
        "availability-zone" => cp.cfg.zones(&c.region),
        "availability-zone-id" => cp
            .cfg
            .zones(&c.region)
            .iter()
            .map(|z| zone_id(&c.region, z))
            .collect(),
        other => {
            return Err(Error::invalid_value(format!(
                "Value ({other}) for parameter locationType is invalid. Valid values: region, availability-zone, availability-zone-id."
            )))
        }
    };
    let filters = decode_filters(p, "Filter", &["instance-type", "location"], false)?;
    let pg = page(p, 5, 1000)?;
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
    Ok(xml::success("DescribeInstanceTypeOfferings", rid, |w| {
        w.list("instanceTypeOfferingSet", &list, |w, (t, l)| {
            w.text("instanceType", t)
                .text("locationType", location_type)
                .text("location", l);
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

pub fn describe_images(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let input = DescribeImagesInput {
        image_ids: p.list("ImageId"),
        owners: p.list("Owner"),
        executable_by: p.list("ExecutableBy"),
        filters: decode_filters(p, "Filter", IMAGE_FILTERS, true)?,
        page: if p.get("MaxResults").is_some() || p.get("NextToken").is_some() {
            Some(page(p, 5, 1000)?)
        } else {
            None
        },
    };
    if !input.image_ids.is_empty() && input.page.is_some() {
        return Err(Error::InvalidParameterCombination(
            "The parameter imagesSet cannot be used with the parameter maxResults".into(),
        ));
    }
    let (list, next) = cp.describe_images(c, &input)?;
    Ok(xml::success("DescribeImages", rid, |w| {
        w.list("imagesSet", &list, |w, (img, tags)| {
            w.text("imageId", img.id.as_str())
                .text("imageLocation", &format!("{}/{}", owner_id(img), img.name))
                .text("imageState", "available")
                .text("imageOwnerId", &owner_id(img))
                .text("creationDate", &ec2_timestamp(img.creation_ms))
                .bool("isPublic", img.public)
                .text("architecture", &img.architecture)
                .text("imageType", "machine")
                .opt_text("kernelId", img.kernel_id.as_deref())
                .opt_text("ramdiskId", img.ramdisk_id.as_deref())
                .opt_text("imageOwnerAlias", img.owner_alias.as_deref())
                .text("name", &img.name)
                .text("description", &img.description)
                .text("rootDeviceType", &img.root_device_type)
                .text("rootDeviceName", &img.root_device_name);
            w.list("blockDeviceMapping", [()], |w, _| {
                w.text("deviceName", &img.root_device_name)
                    .open("ebs")
                    .num("volumeSize", img.root_size_gib)
                    .bool("deleteOnTermination", true)
                    .text("volumeType", "gp3")
                    .bool("encrypted", false)
                    .close("ebs");
            });
            w.text("virtualizationType", &img.virtualization_type)
                .tag_set(tags)
                .text("hypervisor", &img.hypervisor)
                .bool("enaSupport", img.ena_support)
                .text("platformDetails", &img.platform_details)
                .text("usageOperation", "RunInstances")
                .text("bootMode", &img.boot_mode);
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

/// DescribeRegions: the regions this installation serves (every one of them on this
/// endpoint); with `AllRegions`, AWS's other commercial regions too, as not opted in.
pub fn describe_regions(cp: &ControlPlane, _c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(
        p,
        "Filter",
        &["endpoint", "region-name", "opt-in-status"],
        false,
    )?;
    let names = p.list("RegionName");
    for n in &names {
        if catalog::region_info(n).is_none() && !cp.cfg.serves(n) {
            return Err(Error::invalid_value(format!("Invalid region: {n}")));
        }
    }
    let all = p.bool("AllRegions")?.unwrap_or(false);
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
    let regions: Vec<(String, &str)> = regions
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
        .collect();
    Ok(xml::success("DescribeRegions", rid, |w| {
        w.list("regionInfo", &regions, |w, (r, status)| {
            w.text("regionName", r)
                .text("regionEndpoint", &host)
                .text("optInStatus", status);
        });
    }))
}

/// DescribeAvailabilityZones: the zones of the caller's region, with their zone ids.
pub fn describe_availability_zones(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(
        p,
        "Filter",
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
    // Local and Wavelength Zones are not offered, so all zones are the usual ones.
    p.bool("AllAvailabilityZones")?;
    let names = p.list("ZoneName");
    let ids = p.list("ZoneId");
    let region = &c.region;
    let zones_of_region = cp.cfg.zones(region);
    for n in &names {
        cp.check_zone(region, n)?;
    }
    for id in &ids {
        if !zones_of_region.iter().any(|z| zone_id(region, z) == *id) {
            return Err(Error::invalid_value(format!(
                "Invalid availability zone id: [{id}]"
            )));
        }
    }
    let zones: Vec<(String, String)> = zones_of_region
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
        .collect();
    Ok(xml::success("DescribeAvailabilityZones", rid, |w| {
        w.list("availabilityZoneInfo", &zones, |w, (z, id)| {
            w.text("zoneName", z)
                .text("zoneState", "available")
                .text("regionName", region)
                .text("zoneId", id)
                .text("groupName", region)
                .text("networkBorderGroup", region)
                .text("optInStatus", "opt-in-not-required")
                .text("zoneType", "availability-zone")
                .open("messageSet")
                .close("messageSet");
        });
    }))
}

pub fn describe_account_attributes(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let max = cp.cfg.max_instances_per_account.to_string();
    let default_vpc = cp
        .default_vpc(c)?
        .map_or_else(|| "none".to_string(), |v| v.id.to_string());
    let all: Vec<(&str, Vec<String>)> = vec![
        ("supported-platforms", vec!["VPC".into()]),
        ("default-vpc", vec![default_vpc]),
        ("max-instances", vec![max]),
        ("vpc-max-security-groups-per-interface", vec!["5".into()]),
        ("max-elastic-ips", vec!["5".into()]),
        ("vpc-max-elastic-ips", vec!["5".into()]),
    ];
    let wanted = p.list("AttributeName");
    for w in &wanted {
        if !all.iter().any(|(n, _)| n == w) {
            return Err(Error::invalid_value(format!(
                "Value ({w}) for parameter attributeName is invalid. Unknown attribute."
            )));
        }
    }
    let list: Vec<&(&str, Vec<String>)> = all
        .iter()
        .filter(|(n, _)| wanted.is_empty() || wanted.iter().any(|w| w == n))
        .collect();
    Ok(xml::success("DescribeAccountAttributes", rid, |w| {
        w.list("accountAttributeSet", &list, |w, (name, values)| {
            w.text("attributeName", name);
            w.list("attributeValueSet", values, |w, v| {
                w.text("attributeValue", v);
            });
        });
    }))
}
