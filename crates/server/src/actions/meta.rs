//! Catalog actions: instance types and offerings, regions, zones, account
//! attributes. Typed requests in, the model's output types out.

use super::{page, Ctx};
use strato_common::{Error, Result};
use strato_control::catalog::{
    self, DescribeRegionsInput, DescribeZonesInput, InstanceType, LocationKind, RegionRecord,
    ZoneRecord, INSTANCE_TYPE_FILTERS, OFFERING_FILTERS, REGION_FILTERS, ZONE_FILTERS,
};
use strato_control::ControlPlane;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, LocationType};

/// A small catalog number as the model's `i32` (every catalog value fits).
fn int(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Small catalog numbers as the model's `i32`s.
fn ints(v: Vec<u32>) -> Vec<i32> {
    v.into_iter().map(int).collect()
}

/// The type's clock speed as the model's double, written as the catalog's `f32`
/// prints: widening the `f32` itself would print `3.0999999046325684` for 3.1.
fn clock_ghz(t: &InstanceType) -> f64 {
    t.clock_ghz
        .to_string()
        .parse()
        .unwrap_or(f64::from(t.clock_ghz))
}

/// An instance type as EC2 describes it. Every type is an x86_64, EBS-only, HVM,
/// on-demand, current-generation type with the same EBS, network-interface and
/// placement limits, so only the catalog's own numbers vary. The control plane's
/// `instance_type_values` filters on exactly these values (tests below hold the two
/// together).
fn instance_type_item(t: &InstanceType) -> wire::InstanceTypeInfo {
    let valid_cores = t.valid_cores();
    let valid_threads = t.valid_threads_per_core();
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
            default_cores: Some(int(t.default_cores())),
            default_threads_per_core: Some(int(t.default_threads_per_core())),
            // Left out, as EC2 does, for types that take no CPU options (t2).
            valid_cores: (!valid_cores.is_empty()).then(|| ints(valid_cores)),
            valid_threads_per_core: (!valid_threads.is_empty()).then(|| ints(valid_threads)),
        }),
        memory_info: Some(wire::MemoryInfo {
            size_in_mi_b: Some(i64::from(t.memory_mib)),
        }),
        instance_storage_supported: Some(t.instance_store.is_some()),
        instance_storage_info: t.instance_store.map(|s| wire::InstanceStorageInfo {
            total_size_in_gb: Some(s.total_gb() as i64),
            disks: Some(vec![wire::DiskInfo {
                size_in_gb: Some(s.size_gb as i64),
                count: Some(int(s.count)),
                r#type: wire::DiskType::from_wire(s.kind),
            }]),
            nvme_support: Some(wire::EphemeralNvmeSupport::Required),
            encryption_support: Some(wire::InstanceStorageEncryptionSupport::Required),
        }),
        ebs_info: Some(wire::EbsInfo {
            ebs_optimized_support: Some(wire::EbsOptimizedSupport::Default),
            encryption_support: Some(wire::EbsEncryptionSupport::Supported),
            nvme_support: Some(wire::EbsNvmeSupport::Required),
            ..Default::default()
        }),
        network_info: Some(wire::NetworkInfo {
            network_performance: Some(t.network.to_string()),
            maximum_network_interfaces: Some(int(catalog::MAX_NETWORK_INTERFACES)),
            maximum_network_cards: Some(int(catalog::NETWORK_CARDS)),
            ipv4_addresses_per_interface: Some(int(catalog::IPV4_ADDRESSES_PER_INTERFACE)),
            // VPCs carry no IPv6 (the dataplane drops it), so no type supports it here.
            ipv6_supported: Some(false),
            ena_support: Some(wire::EnaSupport::Required),
            efa_supported: Some(false),
            encryption_in_transit_supported: Some(false),
            flexible_ena_queues_support: Some(wire::FlexibleEnaQueuesSupport::Unsupported),
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
        supported_boot_modes: Some(vec![
            wire::BootModeType::LegacyBios,
            wire::BootModeType::Uefi,
        ]),
        nitro_enclaves_support: Some(wire::NitroEnclavesSupport::Unsupported),
        nitro_tpm_support: Some(wire::NitroTpmSupport::Unsupported),
        reboot_migration_support: Some(wire::RebootMigrationSupport::Unsupported),
        ..Default::default()
    }
}

/// DescribeInstanceTypes: the catalog's types, the same in every region.
pub fn describe_instance_types(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInstanceTypesRequest,
) -> Result<wire::DescribeInstanceTypesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, INSTANCE_TYPE_FILTERS, false)?;
    let wanted = catalog::instance_types_named(&req.instance_types)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 100)?;
    let (list, next) = cp.describe_instance_types(&wanted, &filters, &pg);
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
    let location_type = req.location_type.unwrap_or(LocationType::Region);
    let kind = match location_type {
        LocationType::Region => LocationKind::Region,
        LocationType::AvailabilityZone => LocationKind::AvailabilityZone,
        LocationType::AvailabilityZoneId => LocationKind::AvailabilityZoneId,
        other => {
            return Err(Error::invalid_value(format!(
                "Value ({other}) for parameter locationType is invalid. Valid values: region, availability-zone, availability-zone-id."
            )))
        }
    };
    let filters = filter_set(&req.filters, OFFERING_FILTERS, false)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) = cp.describe_instance_type_offerings(cx.caller, kind, &filters, &pg);
    Ok(wire::DescribeInstanceTypeOfferingsResult {
        instance_type_offerings: Some(
            list.into_iter()
                .map(|o| wire::InstanceTypeOffering {
                    instance_type: Some(o.instance_type.to_string()),
                    location_type: Some(location_type),
                    location: Some(o.location),
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// A region as EC2 describes it.
fn region_item(r: RegionRecord) -> wire::Region {
    wire::Region {
        region_name: Some(r.name),
        endpoint: Some(r.endpoint),
        opt_in_status: Some(r.opt_in_status.to_string()),
        geography: None,
    }
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
    let input = DescribeRegionsInput {
        filters: filter_set(&req.filters, REGION_FILTERS, false)?,
        region_names: req.region_names,
        all_regions: req.all_regions.unwrap_or(false),
    };
    let regions = cp.describe_regions(&input)?;
    Ok(wire::DescribeRegionsResult {
        regions: Some(regions.into_iter().map(region_item).collect()),
    })
}

/// An availability zone as EC2 describes it: a plain zone (no Local or Wavelength
/// Zones), always available, its region its only group. The control plane's
/// `zone_values` filters on exactly these values (tests below hold the two together).
fn zone_item(z: ZoneRecord) -> wire::AvailabilityZone {
    wire::AvailabilityZone {
        state: wire::AvailabilityZoneState::from_wire(ZoneRecord::STATE),
        opt_in_status: wire::AvailabilityZoneOptInStatus::from_wire(ZoneRecord::OPT_IN_STATUS),
        zone_type: Some(ZoneRecord::ZONE_TYPE.to_string()),
        group_name: Some(z.group_name().to_string()),
        network_border_group: Some(z.group_name().to_string()),
        messages: Some(vec![]),
        zone_name: Some(z.name),
        zone_id: Some(z.id),
        region_name: Some(z.region),
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
    let input = DescribeZonesInput {
        filters: filter_set(&req.filters, ZONE_FILTERS, false)?,
        zone_names: req.zone_names,
        zone_ids: req.zone_ids,
    };
    let zones = cp.describe_availability_zones(cx.caller, &input)?;
    Ok(wire::DescribeAvailabilityZonesResult {
        availability_zones: Some(zones.into_iter().map(zone_item).collect()),
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

#[cfg(test)]
mod tests {
    //! The control plane filters catalog records on its own copy of what the answers
    //! show; these tests read each filter's documented member back from the answer
    //! built here, so the two cannot drift apart.

    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report

    use super::*;
    use strato_control::catalog::{
        instance_type_values, region_values, zone_values, INSTANCE_TYPES,
    };

    fn one<T: ToString>(v: &Option<T>) -> Vec<String> {
        v.iter().map(T::to_string).collect()
    }

    fn all<T: ToString>(v: &Option<Vec<T>>) -> Vec<String> {
        v.iter().flatten().map(T::to_string).collect()
    }

    /// The values the answer shows in the member filter `name` documents.
    fn type_shown(i: &wire::InstanceTypeInfo, name: &str) -> Vec<String> {
        let ebs = i.ebs_info.clone().unwrap_or_default();
        let opt = ebs.ebs_optimized_info.clone().unwrap_or_default();
        let storage = i.instance_storage_info.clone().unwrap_or_default();
        let disks = storage.disks.clone().unwrap_or_default();
        let net = i.network_info.clone().unwrap_or_default();
        let efa = net.efa_info.clone().unwrap_or_default();
        let tpm = i.nitro_tpm_info.clone().unwrap_or_default();
        let cpu = i.processor_info.clone().unwrap_or_default();
        let vcpu = i.v_cpu_info.clone().unwrap_or_default();
        match name {
            "auto-recovery-supported" => one(&i.auto_recovery_supported),
            "bare-metal" => one(&i.bare_metal),
            "burstable-performance-supported" => one(&i.burstable_performance_supported),
            "current-generation" => one(&i.current_generation),
            "dedicated-hosts-supported" => one(&i.dedicated_hosts_supported),
            "ebs-info.attachment-limit-type" => one(&ebs.attachment_limit_type),
            "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps" => {
                one(&opt.baseline_bandwidth_in_mbps)
            }
            "ebs-info.ebs-optimized-info.baseline-iops" => one(&opt.baseline_iops),
            "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps" => {
                one(&opt.baseline_throughput_in_m_bps)
            }
            "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps" => {
                one(&opt.maximum_bandwidth_in_mbps)
            }
            "ebs-info.ebs-optimized-info.maximum-iops" => one(&opt.maximum_iops),
            "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps" => {
                one(&opt.maximum_throughput_in_m_bps)
            }
            "ebs-info.ebs-optimized-support" => one(&ebs.ebs_optimized_support),
            "ebs-info.encryption-support" => one(&ebs.encryption_support),
            "ebs-info.maximum-ebs-attachments" => one(&ebs.maximum_ebs_attachments),
            "ebs-info.nvme-support" => one(&ebs.nvme_support),
            "free-tier-eligible" => one(&i.free_tier_eligible),
            "hibernation-supported" => one(&i.hibernation_supported),
            "hypervisor" => one(&i.hypervisor),
            "instance-storage-info.disk.count" => {
                disks.iter().flat_map(|d| one(&d.count)).collect()
            }
            "instance-storage-info.disk.size-in-gb" => {
                disks.iter().flat_map(|d| one(&d.size_in_gb)).collect()
            }
            "instance-storage-info.disk.type" => {
                disks.iter().flat_map(|d| one(&d.r#type)).collect()
            }
            "instance-storage-info.encryption-support" => one(&storage.encryption_support),
            "instance-storage-info.nvme-support" => one(&storage.nvme_support),
            "instance-storage-info.total-size-in-gb" => one(&storage.total_size_in_gb),
            "instance-storage-supported" => one(&i.instance_storage_supported),
            "instance-type" => one(&i.instance_type),
            "memory-info.size-in-mib" => one(&i.memory_info.as_ref().and_then(|m| m.size_in_mi_b)),
            "network-info.bandwidth-weightings" => all(&net.bandwidth_weightings),
            "network-info.efa-info.maximum-efa-interfaces" => one(&efa.maximum_efa_interfaces),
            "network-info.efa-supported" => one(&net.efa_supported),
            "network-info.ena-support" => one(&net.ena_support),
            "network-info.encryption-in-transit-supported" => {
                one(&net.encryption_in_transit_supported)
            }
            "network-info.flexible-ena-queues-support" => one(&net.flexible_ena_queues_support),
            "network-info.ipv4-addresses-per-interface" => one(&net.ipv4_addresses_per_interface),
            "network-info.ipv6-addresses-per-interface" => one(&net.ipv6_addresses_per_interface),
            "network-info.ipv6-supported" => one(&net.ipv6_supported),
            "network-info.maximum-network-cards" => one(&net.maximum_network_cards),
            "network-info.maximum-network-interfaces" => one(&net.maximum_network_interfaces),
            "network-info.network-performance" => one(&net.network_performance),
            "nitro-enclaves-support" => one(&i.nitro_enclaves_support),
            "nitro-tpm-info.supported-versions" => all(&tpm.supported_versions),
            "nitro-tpm-support" => one(&i.nitro_tpm_support),
            "processor-info.supported-architecture" => all(&cpu.supported_architectures),
            "processor-info.supported-features" => all(&cpu.supported_features),
            "processor-info.sustained-clock-speed-in-ghz" => one(&cpu.sustained_clock_speed_in_ghz),
            "reboot-migration-support" => one(&i.reboot_migration_support),
            "supported-boot-mode" => all(&i.supported_boot_modes),
            "supported-root-device-type" => all(&i.supported_root_device_types),
            "supported-usage-class" => all(&i.supported_usage_classes),
            "supported-virtualization-type" => all(&i.supported_virtualization_types),
            "vcpu-info.default-cores" => one(&vcpu.default_cores),
            "vcpu-info.default-threads-per-core" => one(&vcpu.default_threads_per_core),
            "vcpu-info.default-vcpus" => one(&vcpu.default_v_cpus),
            "vcpu-info.valid-cores" => all(&vcpu.valid_cores),
            "vcpu-info.valid-threads-per-core" => all(&vcpu.valid_threads_per_core),
            other => panic!("no member read back for filter {other}"),
        }
    }

    #[test]
    fn instance_type_filters_are_the_answers_values() {
        for t in INSTANCE_TYPES {
            let item = instance_type_item(t);
            for name in INSTANCE_TYPE_FILTERS {
                assert_eq!(
                    type_shown(&item, name),
                    instance_type_values(t, name),
                    "{} {name}",
                    t.name
                );
            }
        }
    }

    #[test]
    fn zone_filters_are_the_answers_values() {
        let z = ZoneRecord {
            region: "eu-west-2".into(),
            name: "eu-west-2b".into(),
            id: "euw2-az2".into(),
        };
        let item = zone_item(z.clone());
        for name in ZONE_FILTERS {
            let shown = match *name {
                "group-long-name" => one(&item.group_long_name),
                "group-name" => one(&item.group_name),
                "message" => item
                    .messages
                    .iter()
                    .flatten()
                    .flat_map(|m| one(&m.message))
                    .collect(),
                "network-border-group" => one(&item.network_border_group),
                "opt-in-status" => one(&item.opt_in_status),
                "parent-zone-id" => one(&item.parent_zone_id),
                "parent-zone-name" => one(&item.parent_zone_name),
                "region-name" => one(&item.region_name),
                "state" => one(&item.state),
                "zone-id" => one(&item.zone_id),
                "zone-name" => one(&item.zone_name),
                "zone-type" => one(&item.zone_type),
                other => panic!("no member read back for filter {other}"),
            };
            assert_eq!(shown, zone_values(&z, name), "{name}");
        }
    }

    #[test]
    fn region_filters_are_the_answers_values() {
        let r = RegionRecord {
            name: "af-south-1".into(),
            endpoint: "127.0.0.1:4566".into(),
            opt_in_status: "opted-in",
        };
        let item = region_item(r.clone());
        for name in REGION_FILTERS {
            let shown = match *name {
                "endpoint" => one(&item.endpoint),
                "opt-in-status" => one(&item.opt_in_status),
                "region-name" => one(&item.region_name),
                other => panic!("no member read back for filter {other}"),
            };
            assert_eq!(shown, region_values(&r, name), "{name}");
        }
    }
}
