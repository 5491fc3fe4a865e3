//! Instance actions: typed requests to the control plane, its instance records to the
//! model's output types.

use super::{id, ids, non_empty, page, tag_set, tag_specs, Ctx};
use std::sync::{Arc, Mutex, OnceLock};
use strato_common::base64::{decode_base64, encode_base64};
use strato_common::bounded::BoundedMap;
use strato_common::hashing::DigestHasher;
use strato_common::{Error, Result};
use strato_control::instances::private_dns_name;
use strato_control::instances::{
    reachability_of, status_of, AttributeChange, InstanceInterfaces, MetadataOptionsChange,
    RunInstancesInput, StateChange, INSTANCE_FILTERS, INSTANCE_STATUS_FILTERS,
};
use strato_control::volumes::attach::MappedVolume;
use strato_control::volumes::launch::{LaunchEbs, LaunchMapping};
use strato_control::volumes::VolumeParams;
use strato_control::ControlPlane;
use strato_domain::{GroupRef, Instance, InstanceState, NetworkInterface, ShutdownBehavior};
use strato_ec2_wire::codec::DateTime;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{
    self as wire, AttributeBooleanValue, AttributeValue, InstanceAttributeName,
};

/// An instance state as EC2 shows it (`instanceState`, `currentState`, …).
fn state_item(s: InstanceState) -> wire::InstanceState {
    wire::InstanceState {
        code: Some(i32::from(s.code())),
        name: wire::InstanceStateName::from_wire(s.name()),
    }
}

/// Security groups as EC2 lists them (`groupSet`, always present, possibly empty).
fn group_items(groups: &[GroupRef]) -> Option<Vec<wire::GroupIdentifier>> {
    Some(
        groups
            .iter()
            .map(|g| wire::GroupIdentifier {
                group_id: Some(g.id.as_str().to_string()),
                group_name: Some(g.name.clone()),
            })
            .collect(),
    )
}

/// One `networkInterfaceSet` item of an instance. `private_dns` is the interface's
/// private DNS name (the caller has it already for the primary interface); `public`
/// is the instance's public address, shown on its primary interface only.
fn instance_interface_item(
    n: &NetworkInterface,
    private_dns: String,
    public: Option<&wire::InstanceNetworkInterfaceAssociation>,
) -> wire::InstanceNetworkInterface {
    wire::InstanceNetworkInterface {
        network_interface_id: Some(n.id.as_str().to_string()),
        subnet_id: Some(n.subnet_id.as_str().to_string()),
        vpc_id: Some(n.vpc_id.as_str().to_string()),
        description: Some(n.description.clone()),
        owner_id: Some(n.account_id.as_str().to_string()),
        status: wire::NetworkInterfaceStatus::from_wire(
            strato_control::net::interfaces::status_of(n),
        ),
        mac_address: Some(n.mac_address.clone()),
        private_ip_address: Some(n.private_ip.clone()),
        source_dest_check: Some(true),
        groups: group_items(&n.groups),
        attachment: n
            .attachment
            .as_ref()
            .map(|a| wire::InstanceNetworkInterfaceAttachment {
                attachment_id: Some(a.id.as_str().to_string()),
                device_index: Some(i32::try_from(a.device_index).unwrap_or(i32::MAX)),
                status: Some(wire::AttachmentStatus::Attached),
                attach_time: Some(DateTime(a.attach_time_ms)),
                delete_on_termination: Some(a.delete_on_termination),
                network_card_index: Some(0),
                ..Default::default()
            }),
        association: public.cloned(),
        private_ip_addresses: Some(vec![wire::InstancePrivateIpAddress {
            private_ip_address: Some(n.private_ip.clone()),
            private_dns_name: Some(private_dns.clone()),
            primary: Some(true),
            association: public.cloned(),
        }]),
        private_dns_name: Some(private_dns),
        ipv6_addresses: Some(vec![]),
        interface_type: Some("interface".to_string()),
        ..Default::default()
    }
}

/// The metadata service settings of an instance (`metadataOptions`, and
/// `instanceMetadataOptions` in ModifyInstanceMetadataOptions answers).
fn metadata_options_item(
    m: &strato_domain::MetadataOptions,
) -> wire::InstanceMetadataOptionsResponse {
    wire::InstanceMetadataOptionsResponse {
        state: Some(wire::InstanceMetadataOptionsState::Applied),
        http_tokens: wire::HttpTokensState::from_wire(&m.http_tokens),
        http_put_response_hop_limit: Some(i32::try_from(m.hop_limit).unwrap_or(i32::MAX)),
        http_endpoint: wire::InstanceMetadataEndpointState::from_wire(&m.http_endpoint),
        http_protocol_ipv6: wire::InstanceMetadataProtocolState::from_wire(&m.http_protocol_ipv6),
        instance_metadata_tags: wire::InstanceMetadataTagsState::from_wire(
            &m.instance_metadata_tags,
        ),
    }
}

/// Instances already encoded, by what they were built from ([`render_key`]). A page of
/// DescribeInstances is mostly instances that have not changed since the last page
/// that showed them: their `<item>` is the same text, so it is kept and handed back as
/// the typed item's `prerendered` content instead of building and encoding it again.
/// Bounded: the items of a fleet of 20,000 listed in full stay kept.
static RENDERED: OnceLock<Mutex<Rendered>> = OnceLock::new();

/// Encoded items by [`render_key`], a keyed digest already (so not hashed again).
type Rendered = BoundedMap<u128, bytes::Bytes, std::hash::BuildHasherDefault<DigestHasher>>;

fn rendered() -> std::sync::MutexGuard<'static, Rendered> {
    RENDERED
        .get_or_init(|| Mutex::new(BoundedMap::new(40_000)))
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Forgets every kept item (for benchmarks that measure building and encoding).
pub fn forget_rendered() {
    rendered().clear();
}

/// The key of an instance's item: everything it is built from. The instance record and
/// its interfaces enter by their revisions (which stored text they were read from:
/// equal revisions, equal records), the rest by value — the region (its DNS names),
/// the tags, whether the public address is an Elastic IP, and its attached volumes. The whole is digested
/// to 128 bits by two SipHash digests under independent random keys, so two different
/// keys meet with a chance of about 2^-128 — never, in practice — while any change to
/// an input makes a new key: nothing has to invalidate a kept item. `None` for records
/// not read from the store (revision 0), which are built anew.
fn render_key(
    region: &str,
    i: &Instance,
    tags: &[(String, String)],
    nics: &[Arc<NetworkInterface>],
    elastic: bool,
    volumes: &[MappedVolume],
) -> Option<u128> {
    use std::hash::{BuildHasher, Hash, Hasher};
    static KEYS: OnceLock<[std::collections::hash_map::RandomState; 2]> = OnceLock::new();
    if i.rev.0 == 0 || nics.iter().any(|n| n.rev.0 == 0) {
        return None;
    }
    let keys = KEYS.get_or_init(Default::default);
    let digest = |k: &std::collections::hash_map::RandomState| {
        let mut h = k.build_hasher();
        (region, i.rev.0, tags, elastic, volumes).hash(&mut h);
        for n in nics {
            n.rev.0.hash(&mut h);
        }
        h.finish()
    };
    Some((u128::from(digest(&keys[0])) << 64) | u128::from(digest(&keys[1])))
}

/// The attached EBS volumes as an instance's `blockDeviceMapping` lists them. (The
/// root disk is not an EBS volume in Strato yet, so it is not among them.)
pub fn block_devices(volumes: &[MappedVolume]) -> Vec<wire::InstanceBlockDeviceMapping> {
    volumes
        .iter()
        .map(|v| wire::InstanceBlockDeviceMapping {
            device_name: Some(v.device.clone()),
            ebs: Some(wire::EbsInstanceBlockDevice {
                volume_id: Some(v.volume_id.to_string()),
                status: wire::AttachmentStatus::from_wire(v.state.as_str()),
                attach_time: Some(DateTime(v.attach_time_ms)),
                delete_on_termination: Some(v.delete_on_termination),
                ..Default::default()
            }),
        })
        .collect()
}

/// One instance as EC2 describes it (an `instancesSet` item). `region` names the
/// private DNS domain; `nics` are the instance's attached interfaces, primary first.
/// An item built from the same inputs before comes back already encoded.
pub fn instance_item(
    region: &str,
    i: &Instance,
    tags: &[(String, String)],
    nics: &InstanceInterfaces,
    volumes: &[MappedVolume],
) -> wire::Instance {
    let elastic = i.public_ip.as_deref().is_some_and(|ip| nics.is_elastic(ip));
    let Some(key) = render_key(region, i, tags, nics.of(i.id.as_str()), elastic, volumes) else {
        return build_instance_item(region, i, tags, nics, volumes);
    };
    let kept = rendered().get(&key).cloned();
    let prerendered = kept.unwrap_or_else(|| {
        let text =
            strato_ec2_wire::codec::render(&build_instance_item(region, i, tags, nics, volumes));
        rendered().get_or_insert_with(key, || text.clone());
        text
    });
    wire::Instance {
        prerendered: Some(prerendered),
        ..Default::default()
    }
}

/// [`instance_item`] built field by field. DescribeInstances builds a thousand of these
/// per page when nothing is kept, so each DNS name is built once and shared by the
/// elements that show it.
fn build_instance_item(
    region: &str,
    i: &Instance,
    tags: &[(String, String)],
    nics: &InstanceInterfaces,
    volumes: &[MappedVolume],
) -> wire::Instance {
    let private_dns = i
        .private_ip
        .as_deref()
        .map(|ip| private_dns_name(region, ip))
        .unwrap_or_default();
    // The same values DescribeNetworkInterfaces shows for the primary interface.
    let public_association = nics.public_association(region, i);
    let public_dns = public_association
        .as_ref()
        .map(|p| p.public_dns_name.clone())
        .unwrap_or_default();
    let public = public_association.map(|p| wire::InstanceNetworkInterfaceAssociation {
        public_ip: Some(p.public_ip),
        public_dns_name: Some(p.public_dns_name),
        ip_owner_id: Some(p.ip_owner_id),
        ..Default::default()
    });
    let network_interfaces = nics
        .of(i.id.as_str())
        .iter()
        .map(|n| {
            // The instance's public address is its primary interface's.
            let primary = n.attachment.as_ref().is_some_and(|a| a.device_index == 0);
            let dns = if i.private_ip.as_deref() == Some(n.private_ip.as_str()) {
                private_dns.clone()
            } else {
                private_dns_name(region, &n.private_ip)
            };
            instance_interface_item(n, dns, public.as_ref().filter(|_| primary))
        })
        .collect();
    let launch_time = Some(DateTime(i.launch_time_ms));
    wire::Instance {
        instance_id: Some(i.id.as_str().to_string()),
        image_id: Some(i.image_id.as_str().to_string()),
        state: Some(state_item(i.state)),
        private_dns_name: Some(private_dns),
        public_dns_name: Some(public_dns),
        state_transition_reason: Some(i.state_transition_reason.clone()),
        key_name: i.key_name.clone(),
        ami_launch_index: Some(i32::try_from(i.launch_index).unwrap_or(i32::MAX)),
        product_codes: Some(vec![]),
        instance_type: Some(i.instance_type.clone()),
        launch_time,
        placement: Some(wire::Placement {
            availability_zone: Some(i.availability_zone.clone()),
            group_name: Some(String::new()),
            tenancy: Some(wire::Tenancy::Default),
            ..Default::default()
        }),
        kernel_id: i.kernel_id.clone(),
        ramdisk_id: i.ramdisk_id.clone(),
        monitoring: Some(wire::Monitoring {
            state: Some(if i.monitoring {
                wire::MonitoringState::Enabled
            } else {
                wire::MonitoringState::Disabled
            }),
            ..Default::default()
        }),
        subnet_id: i.subnet_id.as_ref().map(|s| s.as_str().to_string()),
        vpc_id: i.vpc_id.as_ref().map(|v| v.as_str().to_string()),
        private_ip_address: i.private_ip.clone(),
        public_ip_address: i.public_ip.clone(),
        // EC2-Classic instances had no source/destination check to show.
        source_dest_check: i.vpc_id.as_ref().map(|_| true),
        security_groups: group_items(&i.security_groups),
        state_reason: i.state_reason.as_ref().map(|r| wire::StateReason {
            code: Some(r.code.clone()),
            message: Some(r.message.clone()),
        }),
        architecture: wire::ArchitectureValues::from_wire(&i.architecture),
        root_device_type: Some(wire::DeviceType::Ebs),
        root_device_name: Some(i.root_device_name.clone()),
        block_device_mappings: Some(block_devices(volumes)),
        virtualization_type: Some(wire::VirtualizationType::Hvm),
        client_token: i.client_token.clone(),
        tags: tag_set(tags),
        hypervisor: Some(wire::HypervisorType::Xen),
        network_interfaces: Some(network_interfaces),
        ebs_optimized: Some(i.ebs_optimized),
        ena_support: Some(true),
        cpu_options: strato_control::instances::cpu_options_of(i).map(|o| wire::CpuOptions {
            core_count: Some(i32::try_from(o.core_count).unwrap_or(i32::MAX)),
            threads_per_core: Some(i32::try_from(o.threads_per_core).unwrap_or(i32::MAX)),
            ..Default::default()
        }),
        capacity_reservation_specification: Some(wire::CapacityReservationSpecificationResponse {
            capacity_reservation_preference: Some(wire::CapacityReservationPreference::Open),
            capacity_reservation_target: None,
        }),
        hibernation_options: Some(wire::HibernationOptions {
            configured: Some(false),
        }),
        metadata_options: Some(metadata_options_item(&i.metadata_options)),
        enclave_options: Some(wire::EnclaveOptions {
            enabled: Some(false),
        }),
        boot_mode: Some(wire::BootModeValues::LegacyBios),
        platform_details: Some("Linux/UNIX".to_string()),
        usage_operation: Some("RunInstances".to_string()),
        usage_operation_update_time: launch_time,
        maintenance_options: Some(wire::InstanceMaintenanceOptions {
            auto_recovery: wire::InstanceAutoRecoveryState::from_wire(&i.auto_recovery),
            reboot_migration: None,
        }),
        private_dns_name_options: Some(wire::PrivateDnsNameOptionsResponse {
            hostname_type: Some(wire::HostnameType::IpName),
            enable_resource_name_dns_a_record: Some(false),
            enable_resource_name_dns_aaaa_record: Some(false),
        }),
        current_instance_boot_mode: Some(wire::InstanceBootModeValues::LegacyBios),
        ..Default::default()
    }
}

/// The control plane's metadata settings of a request's members (`None` leaves a
/// setting as it is).
fn metadata_change(
    http_tokens: Option<wire::HttpTokensState>,
    hop_limit: Option<i32>,
    http_endpoint: Option<wire::InstanceMetadataEndpointState>,
    http_protocol_ipv6: Option<wire::InstanceMetadataProtocolState>,
    instance_metadata_tags: Option<wire::InstanceMetadataTagsState>,
) -> MetadataOptionsChange {
    MetadataOptionsChange {
        http_tokens: http_tokens.map(|v| v.as_str().to_string()),
        hop_limit: hop_limit.map(i64::from),
        http_endpoint: http_endpoint.map(|v| v.as_str().to_string()),
        http_protocol_ipv6: http_protocol_ipv6.map(|v| v.as_str().to_string()),
        instance_metadata_tags: instance_metadata_tags.map(|v| v.as_str().to_string()),
    }
}

/// ModifyInstanceMetadataOptions.
pub fn modify_metadata_options(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyInstanceMetadataOptionsRequest,
) -> Result<wire::ModifyInstanceMetadataOptionsResult> {
    let change = metadata_change(
        req.http_tokens,
        req.http_put_response_hop_limit,
        req.http_endpoint,
        req.http_protocol_ipv6,
        req.instance_metadata_tags,
    );
    // EC2 answers a request that changes nothing before it looks at the id.
    change.require_some()?;
    let i = cp.modify_instance_metadata_options(
        cx.caller,
        &id(&req.instance_id)?,
        &change,
        cx.dry_run,
    )?;
    Ok(wire::ModifyInstanceMetadataOptionsResult {
        instance_id: Some(i.id.to_string()),
        instance_metadata_options: Some(metadata_options_item(&i.metadata_options)),
    })
}

fn run_input(req: wire::RunInstancesRequest) -> Result<RunInstancesInput> {
    let net = launch_network(&req)?;
    let tag_specs = tag_specs(&req.tag_specifications)?;
    let metadata_options = match req.metadata_options {
        Some(m) => metadata_change(
            m.http_tokens,
            m.http_put_response_hop_limit,
            m.http_endpoint,
            m.http_protocol_ipv6,
            m.instance_metadata_tags,
        ),
        None => MetadataOptionsChange::default(),
    };
    let cpu = req.cpu_options.as_ref();
    let block_devices = launch_mappings(&req.block_device_mappings)?;
    Ok(RunInstancesInput {
        block_devices,
        image_id: req.image_id,
        instance_type: req.instance_type,
        min_count: Some(i64::from(req.min_count)),
        max_count: Some(i64::from(req.max_count)),
        key_name: non_empty(req.key_name),
        user_data: non_empty(req.user_data),
        tag_specs,
        disable_api_termination: req.disable_api_termination,
        disable_api_stop: req.disable_api_stop,
        shutdown_behavior: req
            .instance_initiated_shutdown_behavior
            .map(|b| b.as_str().to_string()),
        availability_zone: non_empty(req.placement.and_then(|p| p.availability_zone)),
        client_token: non_empty(req.client_token),
        subnet_id: net.subnet_id.as_deref().map(id).transpose()?,
        security_group_ids: ids(&net.security_group_ids)?,
        security_group_names: req.security_groups,
        metadata_options,
        private_ip_address: net.private_ip_address,
        network_interface_id: net.network_interface_id.as_deref().map(id).transpose()?,
        delete_on_termination: net.delete_on_termination,
        interface_description: net.description,
        associate_public_ip: net.associate_public_ip,
        cpu_credits: req.credit_specification.map(|c| c.cpu_credits),
        monitoring: req.monitoring.map(|m| m.enabled),
        ebs_optimized: req.ebs_optimized,
        core_count: cpu.and_then(|c| c.core_count).map(i64::from),
        threads_per_core: cpu.and_then(|c| c.threads_per_core).map(i64::from),
        auto_recovery: req
            .maintenance_options
            .and_then(|m| m.auto_recovery)
            .map(|a| a.as_str().to_string()),
    })
}

/// RunInstances' `BlockDeviceMapping.N` for the control plane. `NoDevice` is present
/// when given at all (EC2 takes any value, the empty string included).
pub(crate) fn launch_mappings(maps: &[wire::BlockDeviceMapping]) -> Result<Vec<LaunchMapping>> {
    maps.iter()
        .enumerate()
        .map(|(n, m)| {
            let ebs = match &m.ebs {
                Some(e) => Some(LaunchEbs {
                    volume: VolumeParams {
                        size: e.volume_size.map(i64::from),
                        snapshot_id: non_empty(e.snapshot_id.clone())
                            .map(|s| id(&s))
                            .transpose()?,
                        volume_type: e
                            .volume_type
                            .map(|t| {
                                super::volumes::volume_type(
                                    t,
                                    &format!("BlockDeviceMapping.{}.Ebs.VolumeType", n + 1),
                                )
                            })
                            .transpose()?,
                        iops: e.iops.map(i64::from),
                        throughput: e.throughput.map(i64::from),
                        encrypted: e.encrypted,
                        kms_key_id: non_empty(e.kms_key_id.clone()),
                        multi_attach: None,
                    },
                    delete_on_termination: e.delete_on_termination,
                }),
                None => None,
            };
            Ok(LaunchMapping {
                device: m.device_name.clone().unwrap_or_default(),
                no_device: m.no_device.is_some(),
                virtual_name: non_empty(m.virtual_name.clone()),
                ebs,
            })
        })
        .collect()
}

/// The network part of a RunInstances request.
#[derive(Default)]
struct LaunchNetworkParams {
    subnet_id: Option<String>,
    security_group_ids: Vec<String>,
    private_ip_address: Option<String>,
    network_interface_id: Option<String>,
    delete_on_termination: Option<bool>,
    description: Option<String>,
    associate_public_ip: Option<bool>,
}

/// The network of a launch: given directly (`SubnetId`, `SecurityGroupId.N`,
/// `PrivateIpAddress`), or through `NetworkInterface.1` (the primary interface: the aws
/// CLI sends the subnet and groups there with `--associate-public-ip-address`), which
/// may also name an existing interface to launch with (`NetworkInterfaceId`). One
/// interface at launch is all Strato takes; more attach afterwards.
fn launch_network(req: &wire::RunInstancesRequest) -> Result<LaunchNetworkParams> {
    let subnet = non_empty(req.subnet_id.clone());
    let groups = req.security_group_ids.clone();
    let private_ip = non_empty(req.private_ip_address.clone());
    let Some(nic) = req.network_interfaces.first() else {
        return Ok(LaunchNetworkParams {
            subnet_id: subnet,
            security_group_ids: groups,
            private_ip_address: private_ip,
            ..Default::default()
        });
    };
    if req.network_interfaces.len() > 1 {
        return Err(Error::Unsupported(
            "Launching with more than one network interface is not supported by this endpoint."
                .into(),
        ));
    }
    for (key, given) in [
        (
            "PrivateIpAddresses.1.PrivateIpAddress",
            !nic.private_ip_addresses.is_empty(),
        ),
        (
            "SecondaryPrivateIpAddressCount",
            nic.secondary_private_ip_address_count.is_some(),
        ),
        ("Ipv6AddressCount", nic.ipv6_address_count.is_some()),
        (
            "Ipv6Addresses.1.Ipv6Address",
            !nic.ipv6_addresses.is_empty(),
        ),
    ] {
        if given {
            return Err(Error::Unsupported(format!(
                "NetworkInterface.1.{key} is not supported by this endpoint."
            )));
        }
    }
    if nic.device_index.unwrap_or(0) != 0 {
        return Err(Error::invalid_value(
            "The primary network interface must have device index 0.",
        ));
    }
    let public = nic.associate_public_ip_address;
    let delete_on_termination = nic.delete_on_termination;
    let nic_subnet = non_empty(nic.subnet_id.clone());
    let nic_groups = nic.groups.clone();
    let nic_ip = non_empty(nic.private_ip_address.clone());
    let eni = non_empty(nic.network_interface_id.clone());
    let description = nic.description.clone();
    let combination = |m: &str| Err(Error::InvalidParameterCombination(m.into()));
    if eni.is_some() {
        if nic_subnet.is_some() {
            return combination(
                "A network interface may not specify both a network interface ID and a subnet.",
            );
        }
        if !nic_groups.is_empty() {
            return combination("A network interface may not specify both a network interface ID and security groups.");
        }
        if nic_ip.is_some() {
            return combination("A network interface may not specify both a network interface ID and a private IP address.");
        }
        if public.is_some() {
            return combination("The associatePublicIPAddress parameter cannot be specified when launching with an existing network interface.");
        }
        if description.is_some() {
            return combination("A network interface may not specify both a network interface ID and a description.");
        }
    }
    if subnet.is_some() && (nic_subnet.is_some() || eni.is_some()) {
        return combination("Network interfaces and an instance-level subnet ID may not be specified on the same request");
    }
    if !groups.is_empty() && (!nic_groups.is_empty() || eni.is_some()) {
        return combination("Network interfaces and an instance-level security groups may not be specified on the same request");
    }
    if private_ip.is_some() && (nic_ip.is_some() || eni.is_some()) {
        return combination("Network interfaces and an instance-level private IP address should not be specified on the same request");
    }
    Ok(LaunchNetworkParams {
        subnet_id: subnet.or(nic_subnet),
        security_group_ids: if groups.is_empty() {
            nic_groups
        } else {
            groups
        },
        private_ip_address: private_ip.or(nic_ip),
        network_interface_id: eni,
        delete_on_termination,
        description,
        associate_public_ip: public,
    })
}

/// RunInstances.
pub fn run(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::RunInstancesRequest,
) -> Result<wire::Reservation> {
    let res = cp.run_instances(cx.caller, &run_input(req)?, cx.dry_run)?;
    let region = &cx.caller.region;
    Ok(wire::Reservation {
        reservation_id: Some(res.reservation_id.to_string()),
        owner_id: Some(res.owner_id),
        groups: Some(vec![]),
        instances: Some(
            res.instances
                .iter()
                .map(|(i, t)| {
                    instance_item(
                        region,
                        i,
                        t,
                        &res.interfaces,
                        res.interfaces.volumes_of(i.id.as_str()),
                    )
                })
                .collect(),
        ),
        requester_id: None,
    })
}

/// DescribeInstances: the page's instances grouped by reservation, in the order in
/// which reservations first appear.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInstancesRequest,
) -> Result<wire::DescribeInstancesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, INSTANCE_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, nics, next) =
        cp.describe_instances_with_interfaces(cx.caller, &ids(&req.instance_ids)?, &filters, &pg)?;
    let owner = cx.caller.account.to_string();
    let region = &cx.caller.region;
    let mut reservations: Vec<wire::Reservation> = Vec::with_capacity(list.len());
    let mut index: strato_common::hashing::FastMap<&str, usize> =
        strato_common::hashing::FastMap::with_capacity_and_hasher(list.len(), Default::default());
    for (i, t) in &list {
        let item = instance_item(region, i, t, &nics, nics.volumes_of(i.id.as_str()));
        let key = i.reservation_id.as_str();
        let n = *index.entry(key).or_insert_with(|| {
            reservations.push(wire::Reservation {
                reservation_id: Some(key.to_string()),
                owner_id: Some(owner.clone()),
                groups: Some(vec![]),
                instances: Some(vec![]),
                requester_id: None,
            });
            reservations.len() - 1
        });
        if let Some(members) = &mut reservations[n].instances {
            members.push(item);
        }
    }
    Ok(wire::DescribeInstancesResult {
        reservations: Some(reservations),
        next_token: next,
    })
}

/// `systemStatus` / `instanceStatus` of an instance in `state`: one reachability
/// check. The model has no `not-applicable` check result (only a summary status), so
/// a check that does not apply shows its name alone.
fn status_summary(state: InstanceState) -> wire::InstanceStatusSummary {
    wire::InstanceStatusSummary {
        status: wire::SummaryStatus::from_wire(status_of(state)),
        details: Some(vec![wire::InstanceStatusDetails {
            name: Some(wire::StatusName::Reachability),
            status: wire::StatusType::from_wire(reachability_of(state)),
            impaired_since: None,
        }]),
    }
}

/// DescribeInstanceStatus.
pub fn describe_status(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInstanceStatusRequest,
) -> Result<wire::DescribeInstanceStatusResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, INSTANCE_STATUS_FILTERS, false)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let all = req.include_all_instances.unwrap_or(false);
    let (list, next) =
        cp.describe_instance_status(cx.caller, &ids(&req.instance_ids)?, &filters, all, &pg)?;
    Ok(wire::DescribeInstanceStatusResult {
        instance_statuses: Some(
            list.iter()
                .map(|i| wire::InstanceStatus {
                    instance_id: Some(i.id.to_string()),
                    availability_zone: Some(i.availability_zone.clone()),
                    instance_state: Some(state_item(i.state)),
                    system_status: Some(status_summary(i.state)),
                    instance_status: Some(status_summary(i.state)),
                    ..Default::default()
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// The `instancesSet` of Start/Stop/TerminateInstances answers.
fn state_changes(changes: &[StateChange]) -> Option<Vec<wire::InstanceStateChange>> {
    Some(
        changes
            .iter()
            .map(|ch| wire::InstanceStateChange {
                instance_id: Some(ch.instance_id.to_string()),
                current_state: Some(state_item(ch.current)),
                previous_state: Some(state_item(ch.previous)),
            })
            .collect(),
    )
}

/// StartInstances.
pub fn start(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::StartInstancesRequest,
) -> Result<wire::StartInstancesResult> {
    let ch = cp.start_instances(cx.caller, &ids(&req.instance_ids)?, cx.dry_run)?;
    Ok(wire::StartInstancesResult {
        starting_instances: state_changes(&ch),
    })
}

/// StopInstances (`Force` cuts power rather than wait for the guest).
pub fn stop(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::StopInstancesRequest,
) -> Result<wire::StopInstancesResult> {
    if req.hibernate.unwrap_or(false) {
        return Err(Error::Unsupported(
            "Hibernation is not supported by this endpoint.".into(),
        ));
    }
    let force = req.force.unwrap_or(false);
    let ch = cp.stop_instances(cx.caller, &ids(&req.instance_ids)?, force, cx.dry_run)?;
    Ok(wire::StopInstancesResult {
        stopping_instances: state_changes(&ch),
    })
}

/// TerminateInstances.
pub fn terminate(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::TerminateInstancesRequest,
) -> Result<wire::TerminateInstancesResult> {
    let ch = cp.terminate_instances(cx.caller, &ids(&req.instance_ids)?, cx.dry_run)?;
    Ok(wire::TerminateInstancesResult {
        terminating_instances: state_changes(&ch),
    })
}

/// RebootInstances.
pub fn reboot(cp: &ControlPlane, cx: &Ctx, req: wire::RebootInstancesRequest) -> Result<()> {
    cp.reboot_instances(cx.caller, &ids(&req.instance_ids)?, cx.dry_run)
}

/// DescribeInstanceAttribute: the one attribute asked for. Every attribute the model
/// names is answered, so none is refused here.
pub fn describe_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInstanceAttributeRequest,
) -> Result<wire::InstanceAttribute> {
    let i = cp.instance(cx.caller, &id(&req.instance_id)?)?;
    let text = |v: Option<&str>| {
        Some(AttributeValue {
            value: v.map(str::to_string),
        })
    };
    let flag = |v: bool| Some(AttributeBooleanValue { value: Some(v) });
    let mut out = wire::InstanceAttribute {
        instance_id: Some(i.id.to_string()),
        ..Default::default()
    };
    match req.attribute {
        InstanceAttributeName::InstanceType => out.instance_type = text(Some(&i.instance_type)),
        InstanceAttributeName::Kernel => out.kernel_id = text(i.kernel_id.as_deref()),
        InstanceAttributeName::Ramdisk => out.ramdisk_id = text(i.ramdisk_id.as_deref()),
        InstanceAttributeName::UserData => out.user_data = text(i.user_data.as_deref()),
        InstanceAttributeName::DisableApiTermination => {
            out.disable_api_termination = flag(i.disable_api_termination)
        }
        InstanceAttributeName::DisableApiStop => out.disable_api_stop = flag(i.disable_api_stop),
        InstanceAttributeName::InstanceInitiatedShutdownBehavior => {
            out.instance_initiated_shutdown_behavior = text(Some(i.shutdown_behavior.as_str()))
        }
        InstanceAttributeName::RootDeviceName => {
            out.root_device_name = text(Some(&i.root_device_name))
        }
        InstanceAttributeName::BlockDeviceMapping => {
            let volumes = cp.mapped_volumes(cx.caller, &[i.id.as_str()])?;
            let mapped = volumes.get(i.id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            out.block_device_mappings = Some(block_devices(mapped))
        }
        InstanceAttributeName::ProductCodes => out.product_codes = Some(vec![]),
        InstanceAttributeName::SourceDestCheck => out.source_dest_check = flag(true),
        InstanceAttributeName::GroupSet => out.groups = group_items(&i.security_groups),
        InstanceAttributeName::EbsOptimized => out.ebs_optimized = flag(i.ebs_optimized),
        InstanceAttributeName::SriovNetSupport => out.sriov_net_support = text(None),
        InstanceAttributeName::EnaSupport => out.ena_support = flag(true),
        InstanceAttributeName::EnclaveOptions => {
            out.enclave_options = Some(wire::EnclaveOptions {
                enabled: Some(false),
            })
        }
    }
    Ok(out)
}

/// A boolean given as the string `Value` of the `Attribute`/`Value` form.
fn parse_bool_value(v: &str, name: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid_value(format!(
            "Value ({v}) for parameter {name} is invalid. Expected a boolean."
        ))),
    }
}

/// A shutdown behaviour given as a string (`InstanceInitiatedShutdownBehavior.Value`,
/// or `Value`), which the model leaves unchecked.
fn parse_behavior(v: &str) -> Result<ShutdownBehavior> {
    match v {
        "stop" => Ok(ShutdownBehavior::Stop),
        "terminate" => Ok(ShutdownBehavior::Terminate),
        _ => Err(Error::invalid_value(format!(
            "Value ({v}) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'."
        ))),
    }
}

/// The one attribute change of a ModifyInstanceAttribute request other than its
/// security groups, given as `Name.Value` or as `Attribute` and `Value`.
fn attribute_change(req: &wire::ModifyInstanceAttributeRequest) -> Result<AttributeChange> {
    fn boolean(a: &Option<AttributeBooleanValue>) -> Option<bool> {
        a.as_ref().and_then(|v| v.value)
    }
    fn text(a: &Option<AttributeValue>) -> Option<&str> {
        a.as_ref().and_then(|v| v.value.as_deref())
    }
    let mut changes = vec![];
    if let Some(v) = text(&req.instance_type) {
        changes.push(AttributeChange::InstanceType(v.to_string()));
    }
    if let Some(v) = req.user_data.as_ref().and_then(|u| u.value.as_ref()) {
        changes.push(AttributeChange::UserData(v.0.clone()));
    }
    if let Some(v) = boolean(&req.disable_api_termination) {
        changes.push(AttributeChange::DisableApiTermination(v));
    }
    if let Some(v) = boolean(&req.disable_api_stop) {
        changes.push(AttributeChange::DisableApiStop(v));
    }
    if let Some(v) = text(&req.instance_initiated_shutdown_behavior) {
        changes.push(AttributeChange::ShutdownBehavior(parse_behavior(v)?));
    }
    if let Some(v) = boolean(&req.ebs_optimized) {
        changes.push(AttributeChange::EbsOptimized(v));
    }
    // Source/destination checking is always on (the dataplane's anti-spoofing); the
    // model lets only `true` through (served.toml).
    if boolean(&req.source_dest_check).is_some() {
        changes.push(AttributeChange::SourceDestCheck);
    }
    if let Some(attr) = req.attribute {
        let v = req.value.as_deref().unwrap_or("");
        let name = attr.as_str();
        changes.push(match attr {
            InstanceAttributeName::InstanceType => AttributeChange::InstanceType(v.to_string()),
            InstanceAttributeName::UserData => AttributeChange::UserData(
                decode_base64(v)
                    .ok_or_else(|| Error::invalid_value("Invalid BASE64 encoding of user data."))?,
            ),
            InstanceAttributeName::DisableApiTermination => {
                AttributeChange::DisableApiTermination(parse_bool_value(v, name)?)
            }
            InstanceAttributeName::DisableApiStop => {
                AttributeChange::DisableApiStop(parse_bool_value(v, name)?)
            }
            InstanceAttributeName::InstanceInitiatedShutdownBehavior => {
                AttributeChange::ShutdownBehavior(parse_behavior(v)?)
            }
            InstanceAttributeName::EbsOptimized => {
                AttributeChange::EbsOptimized(parse_bool_value(v, name)?)
            }
            _ => {
                return Err(Error::Unsupported(format!(
                    "Modifying the attribute '{name}' is not supported by this endpoint."
                )))
            }
        });
    }
    for (unsupported, given) in [
        ("EnaSupport", boolean(&req.ena_support).is_some()),
        ("Kernel", text(&req.kernel).is_some()),
        ("Ramdisk", text(&req.ramdisk).is_some()),
        ("SriovNetSupport", text(&req.sriov_net_support).is_some()),
    ] {
        if given {
            return Err(Error::Unsupported(format!(
                "Modifying '{unsupported}' is not supported by this endpoint."
            )));
        }
    }
    let mut changes = changes.into_iter();
    match (changes.next(), changes.next()) {
        (None, _) => Err(Error::MissingParameter("Attribute".into())),
        (Some(one), None) => Ok(one),
        _ => Err(Error::InvalidParameterCombination(
            "Only one attribute may be modified per request.".into(),
        )),
    }
}

/// ModifyInstanceAttribute (one attribute per call).
pub fn modify_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyInstanceAttributeRequest,
) -> Result<()> {
    if !req.block_device_mappings.is_empty() {
        // `DeleteOnTermination` of attached volumes, alone like every other attribute.
        if !req.groups.is_empty() || attribute_change(&req).is_ok() {
            return Err(Error::InvalidParameterCombination(
                "Only one attribute may be modified per request.".into(),
            ));
        }
        let mut changes = vec![];
        for (n, m) in req.block_device_mappings.iter().enumerate() {
            let device = m.device_name.clone().ok_or_else(|| {
                Error::MissingParameter(format!("BlockDeviceMapping.{}.DeviceName", n + 1))
            })?;
            let ebs = m.ebs.as_ref();
            let dot = ebs.and_then(|e| e.delete_on_termination).ok_or_else(|| {
                Error::MissingParameter(format!(
                    "BlockDeviceMapping.{}.Ebs.DeleteOnTermination",
                    n + 1
                ))
            })?;
            let volume = ebs
                .and_then(|e| non_empty(e.volume_id.clone()))
                .map(|v| id(&v))
                .transpose()?;
            changes.push((device, volume, dot));
        }
        return cp.set_delete_on_termination(
            cx.caller,
            &id(&req.instance_id)?,
            &changes,
            cx.dry_run,
        );
    }
    if req.groups.is_empty() {
        let change = attribute_change(&req)?;
        cp.modify_instance_attribute(cx.caller, &id(&req.instance_id)?, change, cx.dry_run)
    } else {
        // The security groups are the one attribute that is a list; it still comes
        // alone, like every other attribute.
        if attribute_change(&req).is_ok() {
            return Err(Error::InvalidParameterCombination(
                "Only one attribute may be modified per request.".into(),
            ));
        }
        cp.modify_instance_groups(
            cx.caller,
            &id(&req.instance_id)?,
            &ids(&req.groups)?,
            cx.dry_run,
        )
    }
}

/// GetConsoleOutput: the instance's serial console log so far (none until it has run).
pub fn console_output(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::GetConsoleOutputRequest,
) -> Result<wire::GetConsoleOutputResult> {
    let (i, log) = cp.console_output(cx.caller, &id(&req.instance_id)?)?;
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    Ok(wire::GetConsoleOutputResult {
        instance_id: Some(i.id.to_string()),
        timestamp: Some(DateTime(strato_common::time_fmt::now_ms())),
        output: log.as_deref().map(encode_base64),
    })
}

/// GetConsoleScreenshot: a PNG of a running instance's display, base64 as EC2 sends it.
pub fn console_screenshot(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::GetConsoleScreenshotRequest,
) -> Result<wire::GetConsoleScreenshotResult> {
    let wake = req.wake_up.unwrap_or(false);
    let (i, png) = cp.console_screenshot(cx.caller, &id(&req.instance_id)?, wake, cx.dry_run)?;
    Ok(wire::GetConsoleScreenshotResult {
        instance_id: Some(i.id.to_string()),
        image_data: Some(encode_base64(&png)),
    })
}
