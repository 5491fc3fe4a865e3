//! Instances: RunInstances, Describe*, Start/Stop/Reboot/Terminate, attributes,
//! console output, and the handling of host agent reports.

use crate::catalog::{self, DEFAULT_INSTANCE_TYPE};
use crate::lifecycle::{self, reason};
use crate::net::addresses::{associated_by_public_ip, public_dns_name, PublicAssociation};
use crate::net::flag;
use crate::net::interfaces::{insert_interface, primary_attachment, INTERFACE_RESOURCE_TYPE};
use crate::net::security_groups::{default_vpc_tx, resolve_instance_groups};
use crate::net::subnets::SubnetAddresses;
use crate::page::{encode_token, PageRequest};
use crate::tags::{validate_tags, TagSpec};
use crate::{Caller, ControlPlane, Tags};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use strato_agent_api::{
    BootSpec, CpuTopology, DesiredVmState, EphemeralDiskSpec, NicSpec, VmReport, VmSpec,
};
use strato_common::base64::decode_base64;
use strato_common::filter::FilterSet;
use strato_common::hashing::FastMap;
use strato_common::time_fmt::{ec2_reason_time, ec2_timestamp, now_ms};
use strato_common::{Error, InstanceId, ReservationId, ResourceId, ResourceKind, Result};
use strato_common::{NetworkInterfaceId, SecurityGroupId, SubnetId};
use strato_domain::Scope;
use strato_store::{
    ClientTokenRecord, CpuOptions, Desired, ElasticIp, GroupRef, Image, Instance, InstanceState,
    MetadataOptions, NetworkInterface, ReadTx, ShutdownBehavior, Subnet, WriteTx,
};

/// Largest user data EC2 accepts, after base64 decoding.
pub const MAX_USER_DATA: usize = 16 * 1024;

/// An instance with its tags, as Describe calls return it.
pub type TaggedInstance = (Arc<Instance>, Vec<(String, String)>);

/// A reservation: what RunInstances returns and DescribeInstances groups by.
pub struct Reservation {
    pub reservation_id: ReservationId,
    pub owner_id: String,
    pub instances: Vec<TaggedInstance>,
    /// The instances' network interfaces.
    pub interfaces: InstanceInterfaces,
}

/// The network interfaces attached to a set of instances (each instance's by device
/// index, the primary first), and which public addresses are the account's Elastic
/// IPs: what DescribeInstances shows in `networkInterfaceSet` beside each instance.
/// Instances launched before primary interfaces were stored have none.
#[derive(Clone, Debug, Default)]
pub struct InstanceInterfaces {
    by_instance: FastMap<String, Vec<Arc<NetworkInterface>>>,
    /// The account's associated Elastic IPs, by public address.
    elastic_ips: FastMap<String, ElasticIp>,
    /// The EBS volumes attached to the instances (their `blockDeviceMapping`), read in
    /// the same transaction as the interfaces.
    volumes: crate::volumes::attach::MappedVolumes,
}

impl InstanceInterfaces {
    /// Groups interfaces by the instance they are attached to, by device index.
    pub fn new(interfaces: Vec<Arc<NetworkInterface>>, elastic_ips: &[ElasticIp]) -> Self {
        let mut by_instance: FastMap<String, Vec<Arc<NetworkInterface>>> =
            FastMap::with_capacity_and_hasher(interfaces.len(), Default::default());
        for n in interfaces {
            if let Some(a) = &n.attachment {
                by_instance
                    .entry(a.instance_id.as_str().to_owned())
                    .or_insert_with(|| Vec::with_capacity(1))
                    .push(n);
            }
        }
        for list in by_instance.values_mut() {
            list.sort_by_key(|n| device_index(n));
        }
        InstanceInterfaces {
            by_instance,
            elastic_ips: associated_by_public_ip(elastic_ips.iter().cloned()),
            volumes: Default::default(),
        }
    }

    /// The EBS volumes attached to an instance, by device name.
    pub fn volumes_of(&self, instance: &str) -> &[crate::volumes::attach::MappedVolume] {
        self.volumes.get(instance).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The interfaces attached to an instance, primary first.
    pub fn of(&self, instance: &str) -> &[Arc<NetworkInterface>] {
        self.by_instance
            .get(instance)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// True when `public_ip` is one of the account's Elastic IPs (its owner is the
    /// account rather than `amazon`).
    pub fn is_elastic(&self, public_ip: &str) -> bool {
        self.elastic_ips.contains_key(public_ip)
    }

    /// The public address of instance `i` as its primary interface shows it (the
    /// same values DescribeNetworkInterfaces shows for that interface), if it has one.
    pub fn public_association(&self, region: &str, i: &Instance) -> Option<PublicAssociation> {
        let ip = i.public_ip.as_deref()?;
        Some(PublicAssociation::new(
            region,
            &i.account_id,
            ip,
            self.elastic_ips.get(ip),
        ))
    }

    /// Keeps only the interfaces of `instances`.
    fn retain_instances<'a>(&mut self, instances: impl Iterator<Item = &'a str>) {
        let keep: strato_common::hashing::FastSet<&str> = instances.collect();
        self.by_instance.retain(|k, _| keep.contains(k.as_str()));
    }
}

fn device_index(n: &NetworkInterface) -> u32 {
    n.attachment
        .as_ref()
        .map(|a| a.device_index)
        .unwrap_or(u32::MAX)
}

/// A validated-on-use RunInstances request. Serialised to detect ClientToken reuse
/// with different parameters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunInstancesInput {
    pub image_id: Option<String>,
    pub instance_type: Option<String>,
    pub min_count: Option<i64>,
    pub max_count: Option<i64>,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub tag_specs: Vec<TagSpec>,
    pub disable_api_termination: Option<bool>,
    pub disable_api_stop: Option<bool>,
    pub shutdown_behavior: Option<String>,
    pub availability_zone: Option<String>,
    /// The subnet to launch into; by default the default subnet of the zone (the
    /// first zone when none is given) in the default VPC.
    #[serde(default)]
    pub subnet_id: Option<SubnetId>,
    /// Security groups by id (`SecurityGroupId.N`), which must be in the subnet's VPC.
    #[serde(default)]
    pub security_group_ids: Vec<SecurityGroupId>,
    /// Security groups by name (`SecurityGroup.N`), looked up in the subnet's VPC.
    #[serde(default)]
    pub security_group_names: Vec<String>,
    /// The primary private address to use (one instance only), from the subnet.
    #[serde(default)]
    pub private_ip_address: Option<String>,
    /// An available network interface to launch with as the primary interface
    /// (`NetworkInterface.1.NetworkInterfaceId`; one instance only). Its subnet, zone,
    /// groups and address are the instance's; `subnet_id`, the security groups and
    /// `private_ip_address` must then be absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_interface_id: Option<NetworkInterfaceId>,
    /// `NetworkInterface.1.DeleteOnTermination`: whether the primary interface goes
    /// with the instance. Default true for the interface the launch makes, false for
    /// one named by `network_interface_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_on_termination: Option<bool>,
    /// `NetworkInterface.1.Description` of the interface the launch makes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface_description: Option<String>,
    /// `NetworkInterface.1.AssociatePublicIpAddress`; by default the subnet's
    /// `MapPublicIpOnLaunch` decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub associate_public_ip: Option<bool>,
    /// `MetadataOptions.*` as given.
    #[serde(default)]
    pub metadata_options: MetadataOptionsChange,
    /// `CreditSpecification.CpuCredits` (`standard` | `unlimited`; burstable types only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_credits: Option<String>,
    /// `Monitoring.Enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<bool>,
    /// `EbsOptimized`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ebs_optimized: Option<bool>,
    /// `CpuOptions.CoreCount` and `CpuOptions.ThreadsPerCore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub core_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_per_core: Option<i64>,
    /// `MaintenanceOptions.AutoRecovery` (`default` | `disabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_recovery: Option<String>,
    /// `BlockDeviceMapping.N`: data volumes made and attached with each instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_devices: Vec<crate::volumes::launch::LaunchMapping>,
    #[serde(skip)]
    pub client_token: Option<String>,
}

/// The CPU credit option `i` runs with: its own, or (for records from before credits)
/// its family's EC2 default; `None` for a type that does not earn credits.
pub fn cpu_credits_of(i: &Instance) -> Option<String> {
    let t = catalog::instance_type(&i.instance_type).ok()?;
    let default = t.default_cpu_credits()?;
    Some(i.cpu_credits.clone().unwrap_or_else(|| default.to_string()))
}

/// The CPU topology `i` runs with: its `CpuOptions`, else its type's default.
pub fn cpu_options_of(i: &Instance) -> Option<CpuOptions> {
    if let Some(o) = i.cpu_options {
        return Some(o);
    }
    let t = catalog::instance_type(&i.instance_type).ok()?;
    Some(CpuOptions {
        core_count: t.default_cores(),
        threads_per_core: t.default_threads_per_core(),
    })
}

/// Checks `CpuOptions` against the type: cores from 1 to the type's default, one
/// thread per core or the type's default; t2 takes none (as EC2).
fn valid_cpu_options(
    t: &catalog::InstanceType,
    cores: Option<i64>,
    threads: Option<i64>,
) -> Result<Option<CpuOptions>> {
    if cores.is_none() && threads.is_none() {
        return Ok(None);
    }
    if t.family() == "t2" {
        return Err(Error::InvalidParameterCombination(format!(
            "CPU options are not supported for instance type {}.",
            t.name
        )));
    }
    let core_count = cores.unwrap_or(t.default_cores() as i64);
    let threads_per_core = threads.unwrap_or(t.default_threads_per_core() as i64);
    if core_count < 1 || core_count > t.default_cores() as i64 {
        return Err(Error::invalid_value(format!(
            "Invalid value '{core_count}' for CpuOptions.CoreCount: instance type {} takes 1 to {} cores.",
            t.name,
            t.default_cores()
        )));
    }
    if threads_per_core != 1 && threads_per_core != t.default_threads_per_core() as i64 {
        return Err(Error::invalid_value(format!(
            "Invalid value '{threads_per_core}' for CpuOptions.ThreadsPerCore: instance type {} takes 1{}.",
            t.name,
            if t.default_threads_per_core() == 2 { " or 2" } else { "" }
        )));
    }
    Ok(Some(CpuOptions {
        core_count: core_count as u32,
        threads_per_core: threads_per_core as u32,
    }))
}

/// One entry of a Start/Stop/Terminate answer.
pub struct StateChange {
    pub instance_id: InstanceId,
    pub previous: InstanceState,
    pub current: InstanceState,
}

/// Filter names DescribeInstances accepts: every name EC2 documents (values in
/// `instance_field`), and `placement-availability-zone`, which EC2 accepts too.
pub const INSTANCE_FILTERS: &[&str] = &[
    "affinity",
    "architecture",
    "availability-zone",
    "availability-zone-id",
    "block-device-mapping.attach-time",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.status",
    "block-device-mapping.volume-id",
    "boot-mode",
    "capacity-reservation-id",
    "capacity-reservation-specification.capacity-reservation-preference",
    "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id",
    "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-resource-group-arn",
    "client-token",
    "current-instance-boot-mode",
    "dns-name",
    "ebs-optimized",
    "ena-support",
    "enclave-options.enabled",
    "hibernation-options.configured",
    "host-id",
    "hypervisor",
    "iam-instance-profile.arn",
    "iam-instance-profile.id",
    "image-id",
    "instance-id",
    "instance-lifecycle",
    "instance-state-code",
    "instance-state-name",
    "instance-type",
    "instance.group-id",
    "instance.group-name",
    "ip-address",
    "ipv6-address",
    "kernel-id",
    "key-name",
    "launch-index",
    "launch-time",
    "maintenance-options.auto-recovery",
    "metadata-options.http-endpoint",
    "metadata-options.http-protocol-ipv4",
    "metadata-options.http-protocol-ipv6",
    "metadata-options.http-put-response-hop-limit",
    "metadata-options.http-tokens",
    "metadata-options.instance-metadata-tags",
    "metadata-options.state",
    "monitoring-state",
    "network-interface.addresses.association.allocation-id",
    "network-interface.addresses.association.association-id",
    "network-interface.addresses.association.carrier-ip",
    "network-interface.addresses.association.customer-owned-ip",
    "network-interface.addresses.association.ip-owner-id",
    "network-interface.addresses.association.public-dns-name",
    "network-interface.addresses.association.public-ip",
    "network-interface.addresses.primary",
    "network-interface.addresses.private-dns-name",
    "network-interface.addresses.private-ip-address",
    "network-interface.association.allocation-id",
    "network-interface.association.association-id",
    "network-interface.association.carrier-ip",
    "network-interface.association.customer-owned-ip",
    "network-interface.association.ip-owner-id",
    "network-interface.association.public-dns-name",
    "network-interface.association.public-ip",
    "network-interface.attachment.attach-time",
    "network-interface.attachment.attachment-id",
    "network-interface.attachment.delete-on-termination",
    "network-interface.attachment.device-index",
    "network-interface.attachment.instance-id",
    "network-interface.attachment.instance-owner-id",
    "network-interface.attachment.network-card-index",
    "network-interface.attachment.status",
    "network-interface.availability-zone",
    "network-interface.deny-all-igw-traffic",
    "network-interface.description",
    "network-interface.group-id",
    "network-interface.group-name",
    "network-interface.ipv4-prefixes.ipv4-prefix",
    "network-interface.ipv6-address",
    "network-interface.ipv6-addresses.ipv6-address",
    "network-interface.ipv6-addresses.is-primary-ipv6",
    "network-interface.ipv6-native",
    "network-interface.ipv6-prefixes.ipv6-prefix",
    "network-interface.mac-address",
    "network-interface.network-interface-id",
    "network-interface.operator.managed",
    "network-interface.operator.principal",
    "network-interface.outpost-arn",
    "network-interface.owner-id",
    "network-interface.private-dns-name",
    "network-interface.private-ip-address",
    "network-interface.public-dns-name",
    "network-interface.requester-id",
    "network-interface.requester-managed",
    "network-interface.source-dest-check",
    "network-interface.status",
    "network-interface.subnet-id",
    "network-interface.tag-key",
    "network-interface.tag-value",
    "network-interface.vpc-id",
    "network-performance-options.bandwidth-weighting",
    "operator.managed",
    "operator.principal",
    "outpost-arn",
    "owner-id",
    // Not documented, but EC2 accepts it (a synonym of `availability-zone`).
    "placement-availability-zone",
    "placement-group-name",
    "placement-partition-number",
    "platform",
    "platform-details",
    "private-dns-name",
    "private-dns-name-options.enable-resource-name-dns-a-record",
    "private-dns-name-options.enable-resource-name-dns-aaaa-record",
    "private-dns-name-options.hostname-type",
    "private-ip-address",
    "product-code",
    "product-code.type",
    "ramdisk-id",
    "reason",
    "requester-id",
    "reservation-id",
    "root-device-name",
    "root-device-type",
    "source-dest-check",
    "spot-instance-request-id",
    "state-reason-code",
    "state-reason-message",
    "subnet-id",
    "tenancy",
    "tpm-support",
    "usage-operation",
    "usage-operation-update-time",
    "virtualization-type",
    "vpc-id",
];

/// Filter names DescribeInstanceStatus accepts (every name EC2 documents).
pub const INSTANCE_STATUS_FILTERS: &[&str] = &[
    "application-status.status",
    "attached-ebs-status.status",
    "availability-zone",
    "availability-zone-id",
    "event.code",
    "event.description",
    "event.instance-event-id",
    "event.not-after",
    "event.not-before",
    "event.not-before-deadline",
    "instance-state-code",
    "instance-state-name",
    "instance-status.reachability",
    "instance-status.status",
    "operator.managed",
    "operator.principal",
    "system-status.reachability",
    "system-status.status",
];

/// The private DNS name EC2 gives an address: `ip-172-31-0-4.ec2.internal` in
/// us-east-1, `ip-172-31-0-4.<region>.compute.internal` elsewhere.
pub fn private_dns_name(region: &str, ip: &str) -> String {
    format!(
        "{}.{}",
        crate::net::dataplane::hostname_of(ip),
        crate::net::dataplane::private_domain(region)
    )
}

/// What an instance's filters read besides the instance and its tags.
struct Related<'a> {
    /// Its network interfaces, primary first.
    nics: &'a [Arc<NetworkInterface>],
    /// The account's associated Elastic IPs, by public address.
    elastic_ips: &'a FastMap<String, ElasticIp>,
    /// The interfaces' tags by interface id: read only when a `network-interface.tag-*`
    /// filter asks for them, else empty.
    nic_tags: &'a FastMap<String, Tags>,
}

/// The values of an instance for a DescribeInstances or DescribeInstanceStatus filter:
/// what the answer shows for it. Names of features Strato does not have (capacity
/// reservations, dedicated hosts, Outposts, Spot, IAM instance profiles, IPv6, product
/// codes, placement groups, NitroTPM, bandwidth weighting, operator-managed instances,
/// block device mappings, scheduled events, EBS and application status checks) have
/// no value, so those filters match nothing, as on EC2 for instances without them.
/// So does `metadata-options.http-protocol-ipv4`, which no answer shows.
fn instance_field(region: &str, i: &Instance, r: &Related, name: &str) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    if let Some(field) = name.strip_prefix("network-interface.") {
        return r
            .nics
            .iter()
            .flat_map(|n| interface_field(region, i, r, n, field))
            .collect();
    }
    match name {
        "architecture" => one(&i.architecture),
        "availability-zone" | "placement-availability-zone" => one(&i.availability_zone),
        "availability-zone-id" => vec![catalog::zone_id(region, &i.availability_zone)],
        "client-token" => i.client_token.iter().cloned().collect(),
        // EC2 reports "xen" here for Nitro instances too.
        "hypervisor" => one("xen"),
        "image-id" => one(i.image_id.as_str()),
        "instance-id" => one(i.id.as_str()),
        "instance-state-code" => vec![i.state.code().to_string()],
        "instance-state-name" => one(i.state.name()),
        "instance-type" => one(&i.instance_type),
        "kernel-id" => i.kernel_id.iter().cloned().collect(),
        "key-name" => i.key_name.iter().cloned().collect(),
        "launch-index" => vec![i.launch_index.to_string()],
        "launch-time" => vec![ec2_timestamp(i.launch_time_ms)],
        "owner-id" => one(i.account_id.as_str()),
        "platform-details" => one("Linux/UNIX"),
        "ramdisk-id" => i.ramdisk_id.iter().cloned().collect(),
        "reservation-id" => one(i.reservation_id.as_str()),
        "root-device-name" => one(&i.root_device_name),
        "root-device-type" => one("ebs"),
        "state-reason-code" => i.state_reason.iter().map(|r| r.code.clone()).collect(),
        "state-reason-message" => i.state_reason.iter().map(|r| r.message.clone()).collect(),
        // `reason` is empty until the instance first changes state.
        "reason" => Some(&i.state_transition_reason)
            .filter(|s| !s.is_empty())
            .cloned()
            .into_iter()
            .collect(),
        "tenancy" => one("default"),
        "virtualization-type" => one("hvm"),
        "vpc-id" => i.vpc_id.iter().map(|v| v.to_string()).collect(),
        "subnet-id" => i.subnet_id.iter().map(|v| v.to_string()).collect(),
        // Shown for instances in a VPC only (EC2-Classic had no check).
        "source-dest-check" => i.vpc_id.iter().map(|_| "true".to_string()).collect(),
        "instance.group-id" => i.security_groups.iter().map(|g| g.id.to_string()).collect(),
        "instance.group-name" => i.security_groups.iter().map(|g| g.name.clone()).collect(),
        "private-ip-address" => i.private_ip.iter().cloned().collect(),
        "ip-address" => i.public_ip.iter().cloned().collect(),
        "dns-name" => i
            .public_ip
            .iter()
            .map(|ip| public_dns_name(region, ip))
            .collect(),
        "private-dns-name" => i
            .private_ip
            .iter()
            .map(|ip| private_dns_name(region, ip))
            .collect(),
        "monitoring-state" => one(if i.monitoring { "enabled" } else { "disabled" }),
        "ebs-optimized" => flag(i.ebs_optimized),
        "ena-support" => one("true"),
        "enclave-options.enabled" | "hibernation-options.configured" => one("false"),
        "boot-mode" | "current-instance-boot-mode" => one("legacy-bios"),
        "capacity-reservation-specification.capacity-reservation-preference" => one("open"),
        "maintenance-options.auto-recovery" => one(&i.auto_recovery),
        "private-dns-name-options.hostname-type" => one("ip-name"),
        "private-dns-name-options.enable-resource-name-dns-a-record"
        | "private-dns-name-options.enable-resource-name-dns-aaaa-record" => one("false"),
        "usage-operation" => one("RunInstances"),
        "usage-operation-update-time" => vec![ec2_timestamp(i.launch_time_ms)],
        "metadata-options.state" => one("applied"),
        "metadata-options.http-tokens" => one(&i.metadata_options.http_tokens),
        "metadata-options.http-put-response-hop-limit" => {
            vec![i.metadata_options.hop_limit.to_string()]
        }
        "metadata-options.http-endpoint" => one(&i.metadata_options.http_endpoint),
        "metadata-options.http-protocol-ipv6" => one(&i.metadata_options.http_protocol_ipv6),
        "metadata-options.instance-metadata-tags" => {
            one(&i.metadata_options.instance_metadata_tags)
        }
        "instance-status.status" | "system-status.status" => one(status_of(i.state)),
        "instance-status.reachability" | "system-status.reachability" => {
            one(reachability_of(i.state))
        }
        _ => vec![],
    }
}

/// The public address an instance's interface holds: the instance's, on its primary
/// interface (what DescribeInstances shows in that interface's `association`).
fn public_ip_of<'a>(i: &'a Instance, n: &NetworkInterface) -> Option<&'a str> {
    let primary = n.attachment.as_ref().is_some_and(|a| a.device_index == 0);
    i.public_ip.as_deref().filter(|_| primary)
}

/// The values of an instance's interface for a `network-interface.*` filter. IPv4
/// prefixes, IPv6, Outposts, requesters, operators and `deny-all-igw-traffic` have
/// no value here.
fn interface_field(
    region: &str,
    i: &Instance,
    r: &Related,
    n: &NetworkInterface,
    name: &str,
) -> Vec<String> {
    // An interface's one private address carries its public address too.
    if let Some(field) = name
        .strip_prefix("association.")
        .or_else(|| name.strip_prefix("addresses.association."))
    {
        return match public_ip_of(i, n) {
            Some(ip) => PublicAssociation::new(region, &n.account_id, ip, r.elastic_ips.get(ip))
                .field(field),
            None => vec![],
        };
    }
    let att = n.attachment.as_ref();
    let one = |s: &str| vec![s.to_string()];
    match name {
        "network-interface-id" => one(n.id.as_str()),
        "mac-address" => one(&n.mac_address),
        "private-dns-name" | "addresses.private-dns-name" => {
            vec![private_dns_name(region, &n.private_ip)]
        }
        "private-ip-address" | "addresses.private-ip-address" => one(&n.private_ip),
        "addresses.primary" => one("true"),
        "public-dns-name" => public_ip_of(i, n)
            .map(|ip| public_dns_name(region, ip))
            .into_iter()
            .collect(),
        "subnet-id" => one(n.subnet_id.as_str()),
        "vpc-id" => one(n.vpc_id.as_str()),
        "availability-zone" => one(&n.availability_zone),
        "description" => one(&n.description),
        "owner-id" => one(n.account_id.as_str()),
        "requester-managed" => one("false"),
        "status" => one(crate::net::interfaces::status_of(n)),
        "group-id" => n.groups.iter().map(|g| g.id.to_string()).collect(),
        "group-name" => n.groups.iter().map(|g| g.name.clone()).collect(),
        "attachment.attachment-id" => att.map(|a| a.id.to_string()).into_iter().collect(),
        "attachment.instance-id" => att.map(|a| a.instance_id.to_string()).into_iter().collect(),
        "attachment.instance-owner-id" => {
            att.map(|_| n.account_id.to_string()).into_iter().collect()
        }
        "attachment.device-index" => att
            .map(|a| a.device_index.to_string())
            .into_iter()
            .collect(),
        "attachment.network-card-index" => att.map(|_| "0".to_string()).into_iter().collect(),
        "attachment.status" => att.map(|_| "attached".to_string()).into_iter().collect(),
        "attachment.attach-time" => att
            .map(|a| ec2_timestamp(a.attach_time_ms))
            .into_iter()
            .collect(),
        "attachment.delete-on-termination" => att
            .map(|a| a.delete_on_termination.to_string())
            .into_iter()
            .collect(),
        "source-dest-check" => one("true"),
        "tag-key" => r
            .nic_tags
            .get(n.id.as_str())
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect(),
        "tag-value" => r
            .nic_tags
            .get(n.id.as_str())
            .into_iter()
            .flatten()
            .map(|(_, v)| v.clone())
            .collect(),
        _ => vec![],
    }
}

/// The `status` DescribeInstanceStatus shows for an instance in `state`.
pub fn status_of(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Running => "ok",
        InstanceState::Pending => "initializing",
        _ => "not-applicable",
    }
}

/// The reachability check result for an instance in `state`.
pub fn reachability_of(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Running => "passed",
        InstanceState::Pending => "initializing",
        _ => "not-applicable",
    }
}

fn digest_of(input: &RunInstancesInput) -> Result<String> {
    let json = serde_json::to_vec(input).map_err(Error::internal)?;
    Ok(hex::encode(Sha256::digest(json)))
}

fn not_found_ids(missing: &[String]) -> Error {
    if missing.len() == 1 {
        Error::not_found(ResourceKind::Instance, &missing[0])
    } else {
        Error::NotFound {
            kind: ResourceKind::Instance,
            id: missing.join(", "),
        }
    }
}

impl ControlPlane {
    /// The spec the host agent should converge an instance to, as committed.
    pub fn spec_of(&self, i: &Instance) -> VmSpec {
        match self.db.read(|tx| self.spec_in(tx, i)) {
            Ok(spec) => spec,
            Err(e) => {
                tracing::error!(instance = %i.id, error = %e, "could not read an instance's spec");
                spec_with(i, None, vec![])
            }
        }
    }

    /// The spec of an instance as transaction `tx` sees it (its image and its
    /// attached interfaces).
    pub(crate) fn spec_in(&self, tx: &ReadTx, i: &Instance) -> Result<VmSpec> {
        let image = tx.image(i.image_id.as_str())?;
        let nics = tx.interfaces_of_instance(&Scope::of_instance(i), i.id.as_str())?;
        let mut spec = spec_with(i, image.as_ref(), nic_specs(nics));
        let volumes = tx.volumes_of_instance(&Scope::of_instance(i), i.id.as_str())?;
        crate::volumes::attach::fill_disks(std::slice::from_mut(&mut spec), &volumes);
        Ok(spec)
    }

    /// A new spec generation of an instance whose devices (interfaces, disks) changed,
    /// written in `tx`; none for an instance that is gone.
    pub(crate) fn bump_spec(&self, tx: &WriteTx, mut inst: Instance) -> Result<Option<VmSpec>> {
        if inst.state == InstanceState::Terminated {
            return Ok(None);
        }
        inst.generation += 1;
        tx.update_instance(&inst)?;
        self.spec_in(tx, &inst).map(Some)
    }

    /// The specs of instances of one account as `tx` sees them: each image read
    /// once, the interfaces of all of them in one query.
    fn specs_in(&self, tx: &WriteTx, account: &Scope, list: &[&Instance]) -> Result<Vec<VmSpec>> {
        let mut images: HashMap<&str, Option<Image>> = HashMap::new();
        for i in list {
            if !images.contains_key(i.image_id.as_str()) {
                images.insert(i.image_id.as_str(), tx.image(i.image_id.as_str())?);
            }
        }
        let ids: Vec<&str> = list.iter().map(|i| i.id.as_str()).collect();
        let mut nics_of = group_nics(tx.nics_of_instances(account, &ids)?);
        let mut specs: Vec<VmSpec> = list
            .iter()
            .map(|i| {
                spec_with(
                    i,
                    images.get(i.image_id.as_str()).and_then(Option::as_ref),
                    nic_specs(nics_of.remove(i.id.as_str()).unwrap_or_default()),
                )
            })
            .collect();
        let volumes = tx.volumes_of_instances(account, &ids)?;
        crate::volumes::attach::fill_disks(&mut specs, &volumes);
        Ok(specs)
    }

    /// Re-sends every instance of this host to its agent (startup reconciliation).
    /// Each image is read once, however many instances use it, and the interfaces of
    /// all of them come from one query.
    pub fn sync_agent(&self) -> Result<usize> {
        let host = self.agent.host().to_string();
        let (instances, images, nics, volumes) = self.db.read(|tx| {
            let instances = tx.instances_on_host(&host)?;
            let mut images: HashMap<String, Option<Image>> = HashMap::new();
            for i in &instances {
                if !images.contains_key(i.image_id.as_str()) {
                    images.insert(i.image_id.to_string(), tx.image(i.image_id.as_str())?);
                }
            }
            Ok((
                instances,
                images,
                tx.interfaces_on_host(&host)?,
                tx.attached_volumes()?,
            ))
        })?;
        let mut nics_of = group_nics(nics);
        let mut specs: Vec<VmSpec> = instances
            .iter()
            .map(|i| {
                spec_with(
                    i,
                    images.get(i.image_id.as_str()).and_then(Option::as_ref),
                    nic_specs(nics_of.remove(i.id.as_str()).unwrap_or_default()),
                )
            })
            .collect();
        crate::volumes::attach::fill_disks(&mut specs, &volumes);
        let n = specs.len();
        // The dataplane first: a VM that starts finds its VPC's rules in place.
        self.network_changed();
        self.agent.sync(specs);
        Ok(n)
    }

    /// Applies one host agent report. State changes land in one transaction; a new
    /// spec generation that results is sent to the agent after the commit.
    pub fn handle_report(&self, report: &VmReport) -> Result<()> {
        if let Some(detail) = &report.detail {
            tracing::warn!(instance = %report.instance_id, %detail, "host agent reported a problem");
        }
        // Most reports (booting, still running) change nothing: decide on a reader
        // first so they never queue behind writers.
        let relevant = self.db.read(|tx| {
            let Some(inst) = tx.instance_any_account(report.instance_id.as_str())? else {
                return Ok(false);
            };
            if lifecycle::apply_report(&inst, report, now_ms()).is_some() {
                return Ok(true);
            }
            // Attachments move on what the VM has plugged, whatever its state.
            let volumes = tx.volumes_of_instance(&Scope::of_instance(&inst), inst.id.as_str())?;
            Ok(report.generation == inst.generation
                && !crate::volumes::attach::settle_from_report(volumes, &inst.id, report)
                    .is_empty())
        })?;
        if !relevant {
            return Ok(());
        }
        let mut deleting_volumes = vec![];
        let changed = self.db.write(|tx| {
            let Some(inst) = tx.instance_any_account(report.instance_id.as_str())? else {
                return Ok(None);
            };
            if report.generation == inst.generation {
                self.settle_attachments(tx, &inst, report)?;
            }
            match lifecycle::apply_report(&inst, report, now_ms()) {
                Some(mut next) => {
                    // A terminated instance gives its private address back, and its
                    // Elastic IP is disassociated (the allocation stays).
                    let terminated = next.state == InstanceState::Terminated
                        && inst.state != InstanceState::Terminated;
                    crate::net::addresses::settle_public_ip(tx, &self.cfg, &mut next)?;
                    if terminated {
                        next.public_ip = None;
                    }
                    tx.update_instance(&next)?;
                    if terminated {
                        // Only instances launched before primary interfaces were
                        // stored hold an address under their own id; the others'
                        // addresses belong to their interfaces.
                        tx.release_instance_addresses(
                            &Scope::of_instance(&next),
                            next.id.as_str(),
                        )?;
                        crate::net::addresses::disassociate_instance(
                            tx,
                            &Scope::of_instance(&next),
                            next.id.as_str(),
                        )?;
                        crate::net::interfaces::release_instance(
                            tx,
                            &Scope::of_instance(&next),
                            next.id.as_str(),
                        )?;
                        deleting_volumes = self.release_volumes(tx, &next)?;
                    }
                    Ok(Some((inst, next)))
                }
                None => Ok(None),
            }
        })?;
        for spec in deleting_volumes {
            self.agent.apply_volume(spec);
        }
        if let Some((before, after)) = changed {
            tracing::info!(
                instance = %after.id,
                from = before.state.name(),
                to = after.state.name(),
                "instance state changed"
            );
            // Ports go away with terminated instances, public addresses with stops.
            self.network_changed();
            if after.generation != before.generation {
                self.agent.apply(self.spec_of(&after));
            }
        }
        Ok(())
    }

    /// Validates a RunInstances request; returns the resolved pieces.
    fn validate_run(&self, caller: &Caller, input: &RunInstancesInput) -> Result<ValidRun> {
        let image_id = input
            .image_id
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::MissingParameter("ImageId".into()))?;
        let image = self.visible_image(caller, image_id)?;
        let itype = input
            .instance_type
            .clone()
            .unwrap_or_else(|| DEFAULT_INSTANCE_TYPE.to_string());
        let shape = catalog::instance_type(&itype)?;
        let cpu_options = valid_cpu_options(shape, input.core_count, input.threads_per_core)?;
        let cpu_credits = match (&input.cpu_credits, shape.default_cpu_credits()) {
            (Some(c), Some(_)) => {
                let c = c.to_ascii_lowercase();
                if c != "standard" && c != "unlimited" {
                    return Err(Error::invalid_value(format!(
                        "Invalid value '{c}' for CreditSpecification.CpuCredits. Expected 'standard' or 'unlimited'."
                    )));
                }
                Some(c)
            }
            (Some(_), None) => {
                return Err(Error::InvalidParameterCombination(format!(
                    "The instance type {itype} does not support CPU credits (CreditSpecification); only burstable performance types (T2, T3, T3a, T4g) do."
                )))
            }
            (None, Some(default)) => Some(
                self.default_credit_option(&caller.scope(), shape.family())?
                    .unwrap_or_else(|| default.to_string()),
            ),
            (None, None) => None,
        };
        let auto_recovery = match input.auto_recovery.as_deref() {
            None | Some("default") => "default".to_string(),
            Some("disabled") => "disabled".to_string(),
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "Invalid value '{other}' for MaintenanceOptions.AutoRecovery. Expected 'default' or 'disabled'."
                )))
            }
        };
        let min = input
            .min_count
            .ok_or_else(|| Error::MissingParameter("MinCount".into()))?;
        let max = input
            .max_count
            .ok_or_else(|| Error::MissingParameter("MaxCount".into()))?;
        if min < 1 {
            return Err(Error::invalid_value(format!(
                "Value ({min}) for parameter minCount is invalid. Expected a positive integer."
            )));
        }
        if max < 1 {
            return Err(Error::invalid_value(format!(
                "Value ({max}) for parameter maxCount is invalid. Expected a positive integer."
            )));
        }
        if min > max {
            return Err(Error::invalid_value(
                "Value for parameter minCount must be less than or equal to maxCount.",
            ));
        }
        if let Some(name) = &input.key_name {
            let found = self
                .db
                .read(|tx| tx.key_pair_by_name(&caller.scope(), name))?;
            if found.is_none() {
                return Err(Error::not_found(ResourceKind::KeyPair, name));
            }
        }
        if let Some(ud) = &input.user_data {
            let bytes = decode_base64(ud)
                .ok_or_else(|| Error::invalid_value("Invalid BASE64 encoding of user data."))?;
            if bytes.len() > MAX_USER_DATA {
                return Err(Error::invalid_value(format!(
                    "User data is limited to {MAX_USER_DATA} bytes."
                )));
            }
        }
        let shutdown = match input.shutdown_behavior.as_deref() {
            None | Some("stop") => ShutdownBehavior::Stop,
            Some("terminate") => ShutdownBehavior::Terminate,
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "Value ({other}) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'."
                )))
            }
        };
        if let Some(z) = &input.availability_zone {
            self.check_zone(&caller.region, z)?;
        }
        if input.network_interface_id.is_some() && max > 1 {
            return Err(Error::InvalidParameterCombination(
                "A network interface ID can only be specified when launching one instance (MaxCount 1).".into(),
            ));
        }
        if let Some(d) = &input.interface_description {
            if d.len() > 255 {
                return Err(Error::invalid_value(
                    "Description must be at most 255 characters.",
                ));
            }
        }
        self.ensure_network_defaults(&caller.scope())?;
        // The launch transaction resolves the network again; this early pass makes a
        // DryRun answer for a bad subnet or group as the real call would.
        self.db
            .read(|tx| self.launch_network(tx, caller, input).map(|_| ()))?;
        let mut instance_tags = vec![];
        let mut interface_tags = vec![];
        let mut volume_tags = vec![];
        for spec in &input.tag_specs {
            match spec.resource_type.as_str() {
                "instance" => instance_tags.extend(spec.tags.iter().cloned()),
                INTERFACE_RESOURCE_TYPE => interface_tags.extend(spec.tags.iter().cloned()),
                // Kept on the instance for its root volume.
                "volume" => volume_tags.extend(spec.tags.iter().cloned()),
                other => {
                    return Err(Error::invalid_value(format!(
                        "'{other}' is not a valid taggable resource type for this operation."
                    )))
                }
            }
        }
        validate_tags(&instance_tags)?;
        validate_tags(&interface_tags)?;
        validate_tags(&volume_tags)?;
        if let Some(t) = &input.client_token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(Error::invalid_value(
                    "The client token must be at most 64 ASCII characters.",
                ));
            }
        }
        let mut metadata = MetadataOptions::default();
        // An image registered with `ImdsSupport=v2.0` makes its instances require
        // tokens unless the launch says otherwise.
        if image.imds_support.as_deref() == Some("v2.0") {
            metadata.http_tokens = "required".to_string();
        }
        input.metadata_options.apply(&mut metadata)?;
        let launch_volumes =
            self.plan_launch_volumes(caller, &image, shape, &input.block_devices)?;
        Ok(ValidRun {
            launch_volumes,
            metadata,
            image,
            itype,
            min: min as usize,
            max: max as usize,
            shutdown,
            instance_tags,
            interface_tags,
            volume_tags,
            cpu_credits,
            cpu_options,
            auto_recovery,
        })
    }

    /// Where a launch goes: the subnet (given, or the default subnet of the zone in
    /// the default VPC) and the security groups (given by id or name, or the VPC's
    /// default group); or everything from an available interface named as the
    /// primary one. Called when validating and again inside the launch transaction,
    /// so a subnet or group deleted (or an interface taken) in between is noticed.
    fn launch_network(
        &self,
        tx: &ReadTx,
        caller: &Caller,
        input: &RunInstancesInput,
    ) -> Result<LaunchNetwork> {
        let scope = caller.scope();
        let account = &scope;
        if let Some(id) = &input.network_interface_id {
            return self.launch_with_interface(tx, account, input, id);
        }
        let subnet: Subnet = match &input.subnet_id {
            Some(id) => {
                let s: Subnet = tx
                    .get_doc(account, id.as_str())?
                    .ok_or_else(|| Error::not_found(ResourceKind::Subnet, id))?;
                if let Some(z) = &input.availability_zone {
                    if *z != s.availability_zone {
                        return Err(Error::invalid_value(format!(
                            "The subnet '{}' is in availability zone '{}', not '{z}'.",
                            s.id, s.availability_zone
                        )));
                    }
                }
                s
            }
            None => {
                let vpc = default_vpc_tx(tx, account)?.ok_or_else(|| {
                    Error::VpcIdNotSpecified("No default VPC for this user".into())
                })?;
                let zone = input
                    .availability_zone
                    .clone()
                    .or_else(|| self.cfg.zones(&caller.region).into_iter().next())
                    .ok_or_else(|| Error::internal("the region has no zones"))?;
                let subnets: Vec<Subnet> = tx.list_docs_by(account, "vpc_id", vpc.id.as_str())?;
                subnets
                    .into_iter()
                    .find(|s| s.default_for_az && s.availability_zone == zone)
                    .ok_or_else(|| {
                        Error::invalid_value(format!(
                            "No default subnet for availability zone '{zone}' in the default VPC '{}'. Please specify a subnet.",
                            vpc.id
                        ))
                    })?
            }
        };
        let groups = resolve_instance_groups(
            tx,
            account,
            &subnet.vpc_id,
            subnet.id.as_str(),
            &input.security_group_ids,
            &input.security_group_names,
        )?;
        Ok(LaunchNetwork {
            subnet,
            groups,
            interface: None,
        })
    }

    /// [`Self::launch_network`] for a launch with an existing interface: it must be
    /// the caller's and available; its zone is where the instance goes.
    fn launch_with_interface(
        &self,
        tx: &ReadTx,
        account: &Scope,
        input: &RunInstancesInput,
        id: &NetworkInterfaceId,
    ) -> Result<LaunchNetwork> {
        let combination = |what: &str| {
            Err(Error::InvalidParameterCombination(format!(
                "A network interface ID and {what} may not both be specified for the primary network interface."
            )))
        };
        if input.subnet_id.is_some() {
            return combination("a subnet ID");
        }
        if !input.security_group_ids.is_empty() || !input.security_group_names.is_empty() {
            return combination("security groups");
        }
        if input.private_ip_address.is_some() {
            return combination("a private IP address");
        }
        if input.interface_description.is_some() {
            return combination("a description");
        }
        let n: NetworkInterface = tx
            .get_doc(account, id.as_str())?
            .ok_or_else(|| Error::not_found(ResourceKind::NetworkInterface, id))?;
        if let Some(a) = &n.attachment {
            return Err(Error::NetworkInterfaceInUse(format!(
                "Interface: [{}] in use (attached to {}).",
                n.id, a.instance_id
            )));
        }
        if let Some(z) = &input.availability_zone {
            if *z != n.availability_zone {
                return Err(Error::invalid_value(format!(
                    "The network interface '{}' is in availability zone '{}', not '{z}'.",
                    n.id, n.availability_zone
                )));
            }
        }
        let subnet: Subnet = tx
            .get_doc(account, n.subnet_id.as_str())?
            .ok_or_else(|| Error::internal(format!("{} has no subnet {}", n.id, n.subnet_id)))?;
        Ok(LaunchNetwork {
            subnet,
            groups: n.groups.clone(),
            interface: Some(n),
        })
    }

    /// RunInstances. With a ClientToken already used for the same parameters, returns
    /// the original reservation and launches nothing.
    pub fn run_instances(
        &self,
        caller: &Caller,
        input: &RunInstancesInput,
        dry_run: bool,
    ) -> Result<Reservation> {
        let v = self.validate_run(caller, input)?;
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        let digest = digest_of(input)?;
        let now = now_ms();
        let host = self.agent.host().to_string();
        let cap = self.cfg.max_instances_per_account;
        let (reservation_id, launched, volume_specs) = self.db.write(|tx| {
            if let Some(token) = &input.client_token {
                if let Some(rec) = tx.client_token(&caller.scope(), token)? {
                    if rec.params_digest != digest {
                        return Err(Error::IdempotentParameterMismatch(format!(
                            "The client token '{token}' has already been used with different parameters."
                        )));
                    }
                    return Ok((rec.reservation_id, vec![], vec![]));
                }
            }
            let live = tx.count_live_instances(&caller.scope())?;
            let room = (cap - live).max(0) as usize;
            if room < v.min {
                return Err(Error::InstanceLimitExceeded(format!(
                    "You have requested more instances ({}) than your current instance limit of {cap} allows for the specified instance type.",
                    v.min
                )));
            }
            let mut network = self.launch_network(tx, caller, input)?;
            let requested_ip = match input.private_ip_address.as_deref() {
                None => None,
                Some(_) if v.max > 1 => {
                    return Err(Error::InvalidParameterCombination(
                        "A private IP address can only be specified when launching one instance (MaxCount 1).".into(),
                    ))
                }
                Some(ip) => Some(ip.parse::<std::net::Ipv4Addr>().map_err(|_| {
                    Error::invalid_value(format!("Invalid value '{ip}' for PrivateIpAddress: not an IPv4 address."))
                })?),
            };
            let reservation_id = ReservationId::generate();
            // Each instance's primary interface holds its address: a new interface
            // per instance (its address taken under the interface's id), or the one
            // interface named by the launch.
            let (ids, interface_ids, addresses) = match &network.interface {
                Some(n) => {
                    let ip = n.private_ip.parse::<std::net::Ipv4Addr>().map_err(Error::internal)?;
                    (vec![InstanceId::generate()], vec![n.id.clone()], vec![ip])
                }
                None => {
                    let addresses = SubnetAddresses::load(tx, &caller.scope(), &network.subnet)?;
                    let free = addresses.free() as usize;
                    if free < v.min {
                        return Err(Error::InsufficientFreeAddressesInSubnet(format!(
                            "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                            network.subnet.id
                        )));
                    }
                    let count = v.max.min(room).min(free);
                    let ids: Vec<InstanceId> = (0..count).map(|_| InstanceId::generate()).collect();
                    let interface_ids: Vec<NetworkInterfaceId> =
                        (0..count).map(|_| NetworkInterfaceId::generate()).collect();
                    let holders: Vec<&str> = interface_ids.iter().map(|i| i.as_str()).collect();
                    let ips = match &requested_ip {
                        Some(ip) => vec![addresses.allocate_exact(tx, &caller.scope(), *ip, holders[0])?],
                        None => addresses.allocate(tx, &caller.scope(), &holders)?,
                    };
                    (ids, interface_ids, ips)
                }
            };
            let count = ids.len();
            let group_ids: Vec<&str> = network.groups.iter().map(|g| g.id.as_str()).collect();
            // A launch with an existing interface gets no address from the pool.
            let auto_public_ip = network.interface.is_none()
                && input
                    .associate_public_ip
                    .unwrap_or(network.subnet.map_public_ip_on_launch);
            let mut launched = Vec::with_capacity(count);
            let mut volume_specs = vec![];
            for (idx, ((id, address), interface_id)) in
                ids.into_iter().zip(addresses).zip(interface_ids).enumerate()
            {
                let inst = Instance {
                    id,
                    account_id: caller.account.clone(),
                    reservation_id: reservation_id.clone(),
                    image_id: v.image.id.clone(),
                    instance_type: v.itype.clone(),
                    key_name: input.key_name.clone(),
                    launch_index: idx as u32,
                    state: InstanceState::Pending,
                    state_reason: Some(strato_store::StateReason {
                        code: "pending".into(),
                        message: "pending".into(),
                    }),
                    state_transition_reason: String::new(),
                    launch_time_ms: now,
                    availability_zone: network.subnet.availability_zone.clone(),
                    user_data: input.user_data.clone(),
                    disable_api_termination: input.disable_api_termination.unwrap_or(false),
                    disable_api_stop: input.disable_api_stop.unwrap_or(false),
                    shutdown_behavior: v.shutdown,
                    client_token: input.client_token.clone(),
                    architecture: v.image.architecture.clone(),
                    root_device_name: v.image.root_device_name.clone(),
                    kernel_id: v.image.kernel_id.clone(),
                    ramdisk_id: v.image.ramdisk_id.clone(),
                    host: host.clone(),
                    desired: Desired::Running,
                    generation: 1,
                    reboot_seq: 0,
                    force_stop: false,
                    metadata_options: v.metadata.clone(),
                    terminated_ms: None,
                    vpc_id: Some(network.subnet.vpc_id.clone()),
                    subnet_id: Some(network.subnet.id.clone()),
                    security_groups: network.groups.clone(),
                    private_ip: Some(address.to_string()),
                    public_ip: None,
                    auto_public_ip,
                    cpu_credits: v.cpu_credits.clone(),
                    monitoring: input.monitoring.unwrap_or(false),
                    ebs_optimized: input.ebs_optimized.unwrap_or(false),
                    cpu_options: v.cpu_options,
                    auto_recovery: v.auto_recovery.clone(),
                    volume_tags: v.volume_tags.clone(),
                    root_volume: true,
                    rev: Default::default(),
                };
                let mut inst = inst;
                crate::net::addresses::settle_public_ip(tx, &self.cfg, &mut inst)?;
                tx.insert_instance(&inst)?;
                tx.set_instance_groups(&caller.scope(), inst.id.as_str(), &group_ids)?;
                let nic = match network.interface.take() {
                    Some(mut n) => {
                        n.attachment = Some(primary_attachment(
                            &inst,
                            input.delete_on_termination.unwrap_or(false),
                            now,
                        ));
                        tx.update_doc(&n)?;
                        n
                    }
                    None => {
                        let n = insert_interface(
                            tx,
                            &caller.scope(),
                            interface_id,
                            &network.subnet,
                            address,
                            network.groups.clone(),
                            input.interface_description.clone().unwrap_or_default(),
                            Some(primary_attachment(
                                &inst,
                                input.delete_on_termination.unwrap_or(true),
                                now,
                            )),
                            now,
                        )?;
                        crate::tags::put_tags(
                            tx,
                            &caller.scope(),
                            n.id.as_str(),
                            INTERFACE_RESOURCE_TYPE,
                            &v.interface_tags,
                        )?;
                        n
                    }
                };
                for (k, val) in &v.instance_tags {
                    tx.put_tag(
                        &caller.scope(),
                        &strato_store::Tag {
                            resource_id: inst.id.to_string(),
                            resource_type: "instance".into(),
                            key: k.clone(),
                            value: val.clone(),
                        },
                    )?;
                }
                let volumes = crate::volumes::launch::make_launch_volumes(
                    tx,
                    &inst,
                    &v.launch_volumes,
                    &v.volume_tags,
                    now,
                )?;
                // Every instance of the launch shares the image validated above.
                let mut spec = spec_with(&inst, Some(&v.image), vec![nic_spec(&nic, &network.subnet)]);
                crate::volumes::attach::fill_disks(std::slice::from_mut(&mut spec), &volumes);
                volume_specs.extend(volumes.iter().map(crate::volumes::volume_spec));
                launched.push(spec);
            }
            if let Some(token) = &input.client_token {
                tx.insert_client_token(
                    &caller.scope(),
                    &ClientTokenRecord {
                        token: token.clone(),
                        reservation_id: reservation_id.clone(),
                        params_digest: digest.clone(),
                    },
                    now,
                )?;
            }
            Ok((reservation_id, launched, volume_specs))
        })?;
        // Volumes first: the host makes their disks before it starts the VMs.
        for spec in volume_specs {
            self.agent.apply_volume(spec);
        }
        for spec in launched {
            self.agent.apply(spec);
        }
        let (instances, interfaces) = self.db.read(|tx| {
            let list = tx.instances_in_reservation(&caller.scope(), reservation_id.as_str())?;
            let list = with_tags(tx, caller, list.into_iter().map(Arc::new).collect())?;
            let interfaces = instance_interfaces(tx, &caller.scope(), &list)?;
            Ok((list, interfaces))
        })?;
        tracing::info!(reservation = %reservation_id, count = instances.len(), "instances launched");
        Ok(Reservation {
            reservation_id,
            owner_id: caller.account.to_string(),
            instances,
            interfaces,
        })
    }

    /// Loads instances by id (scoped to the caller); any missing id is NotFound.
    fn load_instances(
        &self,
        tx: &ReadTx,
        caller: &Caller,
        ids: &[InstanceId],
    ) -> Result<Vec<Instance>> {
        let visible = self.visible_since();
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = vec![];
        for id in ids {
            match tx.instance(&caller.scope(), id.as_str())? {
                Some(i) if i.terminated_ms.is_none_or(|t| t >= visible) => found.push(i),
                _ => missing.push(id.to_string()),
            }
        }
        if !missing.is_empty() {
            return Err(not_found_ids(&missing));
        }
        Ok(found)
    }

    /// DescribeInstances: instances by id or all, filtered and paged, with tags.
    pub fn describe_instances(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<TaggedInstance>, Option<String>)> {
        self.describe_instances_with_interfaces(caller, ids, filters, page)
            .map(|(list, _, next)| (list, next))
    }

    /// DescribeInstances with the instances' network interfaces (loaded with each
    /// chunk of instances by one range query, never per instance).
    pub fn describe_instances_with_interfaces(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<TaggedInstance>, InstanceInterfaces, Option<String>)> {
        let region = &caller.region;
        // Interface tags are read only for the filters that look at them.
        let nic_tags = filters.filters.iter().any(|f| {
            matches!(
                f.name.as_str(),
                "network-interface.tag-key" | "network-interface.tag-value"
            )
        });
        if !ids.is_empty() {
            if page.max_results.is_some() {
                return Err(Error::InvalidParameterCombination(
                    "The parameter instancesSet cannot be used with the parameter maxResults"
                        .into(),
                ));
            }
            let (list, mut interfaces, tags_of_nics) = self.db.read(|tx| {
                let found = self.load_instances(tx, caller, ids)?;
                let list = with_tags(tx, caller, found.into_iter().map(Arc::new).collect())?;
                let interfaces = instance_interfaces(tx, &caller.scope(), &list)?;
                let tags_of_nics = if nic_tags {
                    interface_tags(tx, &caller.scope(), &interfaces)?
                } else {
                    FastMap::default()
                };
                Ok((list, interfaces, tags_of_nics))
            })?;
            let out: Vec<TaggedInstance> = list
                .into_iter()
                .filter(|(i, t)| {
                    let r = Related {
                        nics: interfaces.of(i.id.as_str()),
                        elastic_ips: &interfaces.elastic_ips,
                        nic_tags: &tags_of_nics,
                    };
                    filters.matches(t, |n| instance_field(region, i, &r, n))
                })
                .collect();
            interfaces.retain_instances(out.iter().map(|(i, _)| i.id.as_str()));
            return Ok((out, interfaces, None));
        }
        let nics = if filters
            .filters
            .iter()
            .any(|f| f.name.starts_with("network-interface."))
        {
            ScanInterfaces::ForFilters { tags: nic_tags }
        } else {
            ScanInterfaces::ForPage
        };
        self.scan_instances(caller, page, nics, |i, t, r| {
            filters.matches(t, |n| instance_field(region, i, r, n))
        })
    }

    /// Walks the caller's instances in id order in chunks, keeping those `keep` accepts,
    /// until a page is full. One query per chunk, tags loaded per chunk by range; the
    /// first chunk asks for just one more instance than the page needs (which tells
    /// whether a next page exists), later ones for a full chunk. Interfaces are loaded
    /// per chunk only when `keep` looks at them, else once for the page (or not at all).
    fn scan_instances(
        &self,
        caller: &Caller,
        page: &PageRequest,
        nics: ScanInterfaces,
        keep: impl Fn(&Instance, &[(String, String)], &Related) -> bool,
    ) -> Result<(Vec<TaggedInstance>, InstanceInterfaces, Option<String>)> {
        const CHUNK: usize = 1000;
        let visible = self.visible_since();
        let want = page.max_results.unwrap_or(usize::MAX);
        let scope = caller.scope();
        let account = &scope;
        // Sized for the page up front: growing a vector of records by doubling copies
        // megabytes on a page of 1,000.
        let mut out: Vec<TaggedInstance> = Vec::with_capacity(want.min(CHUNK));
        let mut kept: Vec<Arc<NetworkInterface>> = Vec::new();
        let mut cursor = page.after.clone();
        let mut limit = want.saturating_add(1).min(CHUNK);
        let (per_chunk, nic_tags) = match nics {
            ScanInterfaces::ForFilters { tags } => (true, tags),
            _ => (false, false),
        };
        let next = 'scan: loop {
            let (chunk, interfaces, tags_of_nics) = self.db.read(|tx| {
                let list = tx.instances_page(account, cursor.as_deref(), limit, visible)?;
                let list = with_tags(tx, caller, list)?;
                let interfaces = if per_chunk {
                    instance_interfaces(tx, account, &list)?
                } else {
                    InstanceInterfaces::default()
                };
                let tags_of_nics = if nic_tags {
                    interface_tags(tx, account, &interfaces)?
                } else {
                    FastMap::default()
                };
                Ok((list, interfaces, tags_of_nics))
            })?;
            let exhausted = chunk.len() < limit;
            limit = CHUNK;
            let mut interfaces = interfaces;
            for (i, t) in chunk {
                cursor = Some(i.id.to_string());
                let r = Related {
                    nics: interfaces.of(i.id.as_str()),
                    elastic_ips: &interfaces.elastic_ips,
                    nic_tags: &tags_of_nics,
                };
                if keep(&i, &t, &r) {
                    if out.len() == want {
                        // One more match exists: the page is full and there is a next one.
                        break 'scan out.last().map(|(i, _)| encode_token(i.id.as_str()));
                    }
                    let nics = interfaces
                        .by_instance
                        .remove(i.id.as_str())
                        .unwrap_or_default();
                    out.push((i, t));
                    kept.extend(nics);
                }
            }
            if exhausted {
                break None;
            }
        };
        let interfaces = match nics {
            ScanInterfaces::No => InstanceInterfaces::default(),
            ScanInterfaces::ForFilters { .. } => {
                let ids: Vec<&str> = out.iter().map(|(i, _)| i.id.as_str()).collect();
                self.db.read(|tx| {
                    let mut found =
                        InstanceInterfaces::new(kept, &tx.list_docs::<ElasticIp>(account)?);
                    found.volumes = crate::volumes::attach::mapped_volumes_in(tx, account, &ids)?;
                    Ok(found)
                })?
            }
            ScanInterfaces::ForPage => self.db.read(|tx| instance_interfaces(tx, account, &out))?,
        };
        Ok((out, interfaces, next))
    }

    /// DescribeInstanceStatus: running instances unless `include_all`.
    pub fn describe_instance_status(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        filters: &FilterSet,
        include_all: bool,
        page: &PageRequest,
    ) -> Result<(Vec<Instance>, Option<String>)> {
        // No status filter reads interfaces.
        let (no_eips, no_tags) = (FastMap::default(), FastMap::default());
        let none = Related {
            nics: &[],
            elastic_ips: &no_eips,
            nic_tags: &no_tags,
        };
        let keep = |i: &Instance| {
            (include_all || i.state == InstanceState::Running)
                && filters.matches(&[], |n| instance_field(&caller.region, i, &none, n))
        };
        if !ids.is_empty() {
            if page.max_results.is_some() {
                return Err(Error::InvalidParameterCombination(
                    "The parameter instancesSet cannot be used with the parameter maxResults"
                        .into(),
                ));
            }
            let found = self.db.read(|tx| self.load_instances(tx, caller, ids))?;
            return Ok((found.into_iter().filter(|i| keep(i)).collect(), None));
        }
        let (list, _, next) =
            self.scan_instances(caller, page, ScanInterfaces::No, |i, _, _| keep(i))?;
        Ok((
            list.into_iter()
                .map(|(i, _)| Arc::unwrap_or_clone(i))
                .collect(),
            next,
        ))
    }

    /// Changes a set of instances in one transaction: `change` is called for each and
    /// either edits it or refuses the whole call. It returns true when what the host
    /// must do changed: only then is the generation bumped and a spec sent; other
    /// edits (protection flags) are just stored.
    fn change_instances(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        dry_run: bool,
        mut change: impl FnMut(&WriteTx, &mut Instance) -> Result<bool>,
    ) -> Result<Vec<StateChange>> {
        if ids.is_empty() {
            return Err(Error::MissingParameter("InstanceId".into()));
        }
        let (changes, specs) = self.db.write(|tx| {
            let list = self.load_instances(tx, caller, ids)?;
            let mut changes = Vec::with_capacity(list.len());
            let mut specs = vec![];
            let mut edited = vec![];
            for mut inst in list {
                let before = inst.clone();
                let spec_changed = change(tx, &mut inst)?;
                changes.push(StateChange {
                    instance_id: inst.id.clone(),
                    previous: before.state,
                    current: inst.state,
                });
                if spec_changed {
                    inst.generation += 1;
                }
                if inst != before {
                    edited.push((inst, spec_changed));
                }
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            for (inst, _) in &mut edited {
                // Starting takes an auto-assigned public address, stopping gives it back.
                crate::net::addresses::settle_public_ip(tx, &self.cfg, inst)?;
                tx.update_instance(inst)?;
            }
            let changed: Vec<&Instance> = edited
                .iter()
                .filter(|(_, spec_changed)| *spec_changed)
                .map(|(i, _)| i)
                .collect();
            specs.extend(self.specs_in(tx, &caller.scope(), &changed)?);
            Ok((changes, specs))
        })?;
        for spec in specs {
            self.agent.apply(spec);
        }
        Ok(changes)
    }

    pub fn start_instances(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        dry_run: bool,
    ) -> Result<Vec<StateChange>> {
        self.change_instances(caller, ids, dry_run, |tx, i| match i.state {
            InstanceState::Stopped => {
                if i.root_volume && !has_root_volume(tx, i)? {
                    return Err(Error::IncorrectInstanceState(format!(
                        "Instance '{}' does not have a volume attached at root ({}).",
                        i.id, i.root_device_name
                    )));
                }
                i.state = InstanceState::Pending;
                i.desired = Desired::Running;
                i.force_stop = false;
                i.state_reason = None;
                i.state_transition_reason = String::new();
                i.launch_time_ms = now_ms();
                Ok(true)
            }
            InstanceState::Pending | InstanceState::Running => Ok(false),
            _ => Err(Error::IncorrectInstanceState(format!(
                "The instance '{}' is not in a state from which it can be started.",
                i.id
            ))),
        })
    }

    pub fn stop_instances(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        force: bool,
        dry_run: bool,
    ) -> Result<Vec<StateChange>> {
        self.change_instances(caller, ids, dry_run, |_, i| {
            if i.disable_api_stop && matches!(i.state, InstanceState::Running) {
                return Err(Error::OperationNotPermitted(format!(
                    "The instance '{}' may not be stopped. Modify its 'disableApiStop' instance attribute and try again.",
                    i.id
                )));
            }
            match i.state {
                InstanceState::Running => {
                    i.state = InstanceState::Stopping;
                    i.desired = Desired::Stopped;
                    i.state_reason = Some(reason(
                        "Client.UserInitiatedShutdown",
                        "User initiated shutdown",
                    ));
                    i.state_transition_reason =
                        format!("User initiated ({})", ec2_reason_time(now_ms()));
                    i.force_stop = force;
                    Ok(true)
                }
                InstanceState::Stopping if force && !i.force_stop => {
                    i.force_stop = true;
                    Ok(true)
                }
                InstanceState::Stopped | InstanceState::Stopping => Ok(false),
                _ => Err(Error::IncorrectInstanceState(format!(
                    "This instance '{}' is not in a state from which it can be stopped.",
                    i.id
                ))),
            }
        })
    }

    pub fn terminate_instances(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        dry_run: bool,
    ) -> Result<Vec<StateChange>> {
        self.change_instances(caller, ids, dry_run, |_, i| {
            if i.disable_api_termination && i.state != InstanceState::Terminated {
                return Err(Error::OperationNotPermitted(format!(
                    "The instance '{}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again.",
                    i.id
                )));
            }
            match i.state {
                InstanceState::Terminated | InstanceState::ShuttingDown => Ok(false),
                _ => {
                    i.state = InstanceState::ShuttingDown;
                    i.desired = Desired::Deleted;
                    i.state_reason = Some(reason(
                        "Client.UserInitiatedShutdown",
                        "User initiated shutdown",
                    ));
                    i.state_transition_reason =
                        format!("User initiated ({})", ec2_reason_time(now_ms()));
                    Ok(true)
                }
            }
        })
    }

    pub fn reboot_instances(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        dry_run: bool,
    ) -> Result<()> {
        self.change_instances(caller, ids, dry_run, |_, i| match i.state {
            InstanceState::Running => {
                i.reboot_seq += 1;
                Ok(true)
            }
            _ => Err(Error::IncorrectInstanceState(format!(
                "The instance '{}' is not in a state from which it can be rebooted.",
                i.id
            ))),
        })
        .map(|_| ())
    }

    /// One instance by id (scoped), or NotFound.
    pub fn instance(&self, caller: &Caller, id: &InstanceId) -> Result<Instance> {
        self.db
            .read(|tx| self.load_instances(tx, caller, std::slice::from_ref(id)))?
            .pop()
            .ok_or_else(|| Error::not_found(ResourceKind::Instance, id))
    }

    /// ModifyInstanceMetadataOptions: changes the metadata-service settings of a
    /// running or stopped instance and returns the instance as changed.
    pub fn modify_instance_metadata_options(
        &self,
        caller: &Caller,
        id: &InstanceId,
        change: &MetadataOptionsChange,
        dry_run: bool,
    ) -> Result<Instance> {
        change.require_some()?;
        self.change_instances(caller, std::slice::from_ref(id), dry_run, |_, i| {
            if matches!(i.state, InstanceState::Terminated | InstanceState::ShuttingDown) {
                return Err(Error::IncorrectInstanceState(format!(
                    "The instance '{}' is not in a state from which its metadata options can be modified.",
                    i.id
                )));
            }
            change.apply(&mut i.metadata_options)?;
            Ok(false)
        })?;
        self.instance(caller, id)
    }

    /// ModifyInstanceAttribute for one attribute.
    pub fn modify_instance_attribute(
        &self,
        caller: &Caller,
        id: &InstanceId,
        change: AttributeChange,
        dry_run: bool,
    ) -> Result<()> {
        self.change_instances(caller, std::slice::from_ref(id), dry_run, |_, i| {
            let must_be_stopped = |i: &Instance, what: &str| {
                if i.state == InstanceState::Stopped {
                    Ok(())
                } else {
                    Err(Error::IncorrectInstanceState(format!(
                        "The instance '{}' is not in the 'stopped' state; {what} can only be changed while it is stopped.",
                        i.id
                    )))
                }
            };
            match &change {
                AttributeChange::InstanceType(t) => {
                    catalog::instance_type(t)?;
                    must_be_stopped(i, "the instance type")?;
                    i.instance_type = t.clone();
                    // The new type runs with its own default topology.
                    i.cpu_options = None;
                }
                AttributeChange::UserData(ud) => {
                    if ud.len() > MAX_USER_DATA {
                        return Err(Error::invalid_value(format!(
                            "User data is limited to {MAX_USER_DATA} bytes."
                        )));
                    }
                    must_be_stopped(i, "user data")?;
                    i.user_data = if ud.is_empty() {
                        None
                    } else {
                        Some(strato_common::base64::encode_base64(ud))
                    };
                }
                AttributeChange::DisableApiTermination(b) => i.disable_api_termination = *b,
                AttributeChange::DisableApiStop(b) => i.disable_api_stop = *b,
                AttributeChange::ShutdownBehavior(b) => i.shutdown_behavior = *b,
                AttributeChange::EbsOptimized(b) => {
                    must_be_stopped(i, "EBS optimization")?;
                    i.ebs_optimized = *b;
                }
                AttributeChange::SourceDestCheck => {}
            }
            if i.state == InstanceState::Terminated {
                return Err(Error::IncorrectInstanceState(format!(
                    "The instance '{}' is terminated.",
                    i.id
                )));
            }
            // Only the shape and user data matter to the hypervisor (at the next start).
            Ok(matches!(
                change,
                AttributeChange::InstanceType(_) | AttributeChange::UserData(_)
            ))
        })
        .map(|_| ())
    }

    /// ModifyInstanceAttribute `GroupId.N`: replaces the security groups of an
    /// instance. The groups must be the caller's and in the instance's VPC.
    pub fn modify_instance_groups(
        &self,
        caller: &Caller,
        id: &InstanceId,
        groups: &[SecurityGroupId],
        dry_run: bool,
    ) -> Result<()> {
        if groups.is_empty() {
            return Err(Error::MissingParameter("GroupId".into()));
        }
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let mut inst = self
                .load_instances(tx, caller, std::slice::from_ref(id))?
                .pop()
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, id))?;
            if inst.state == InstanceState::Terminated {
                return Err(Error::IncorrectInstanceState(format!(
                    "The instance '{}' is terminated.",
                    inst.id
                )));
            }
            let (Some(vpc), Some(subnet)) = (&inst.vpc_id, &inst.subnet_id) else {
                return Err(Error::invalid_value(format!(
                    "The instance '{}' is not in a VPC.",
                    inst.id
                )));
            };
            let refs = resolve_instance_groups(tx, account, vpc, subnet.as_str(), groups, &[])?;
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            let ids: Vec<&str> = refs.iter().map(|g| g.id.as_str()).collect();
            tx.set_instance_groups(account, inst.id.as_str(), &ids)?;
            // The instance's groups are its primary interface's.
            for mut n in
                tx.list_docs_by::<NetworkInterface>(account, "instance_id", inst.id.as_str())?
            {
                if n.attachment.as_ref().is_some_and(|a| a.device_index == 0) {
                    n.groups = refs.clone();
                    tx.update_doc(&n)?;
                }
            }
            inst.security_groups = refs;
            tx.update_instance(&inst)
        })
    }

    /// GetConsoleOutput: the console log (the most recent 64 KiB) of an instance.
    pub fn console_output(
        &self,
        caller: &Caller,
        id: &InstanceId,
    ) -> Result<(Instance, Option<Vec<u8>>)> {
        let inst = self.instance(caller, id)?;
        let log = self.agent.console(&inst.id).map(|mut bytes| {
            const LIMIT: usize = 64 * 1024;
            if bytes.len() > LIMIT {
                bytes.drain(..bytes.len() - LIMIT);
            }
            bytes
        });
        Ok((inst, log))
    }

    /// GetConsoleScreenshot: a PNG of a running instance's display. EC2 captures only
    /// running instances; any other state is `IncorrectInstanceState`.
    pub fn console_screenshot(
        &self,
        caller: &Caller,
        id: &InstanceId,
        wake: bool,
        dry_run: bool,
    ) -> Result<(Instance, Vec<u8>)> {
        let inst = self.instance(caller, id)?;
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        let not_running = || {
            Error::IncorrectInstanceState(format!(
                "The instance '{}' is not in a state from which a screenshot can be taken ({}).",
                inst.id,
                inst.state.name()
            ))
        };
        if inst.state != InstanceState::Running {
            return Err(not_running());
        }
        let png = self
            .agent
            .screenshot(&inst.id, wake)?
            .ok_or_else(not_running)?;
        Ok((inst, png))
    }

    /// Drops terminated instances past their visibility window.
    pub fn purge_terminated(&self) -> Result<usize> {
        let before = self.visible_since();
        self.db.write(|tx| tx.purge_terminated(before))
    }
}

/// Requested metadata-service settings; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MetadataOptionsChange {
    pub http_tokens: Option<String>,
    pub hop_limit: Option<i64>,
    pub http_endpoint: Option<String>,
    pub http_protocol_ipv6: Option<String>,
    pub instance_metadata_tags: Option<String>,
}

impl MetadataOptionsChange {
    pub fn is_empty(&self) -> bool {
        *self == MetadataOptionsChange::default()
    }

    /// `MissingParameter` unless some setting is given: ModifyInstanceMetadataOptions
    /// must change something. The front door checks this before it parses the instance
    /// id, because EC2 answers it first.
    pub fn require_some(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::MissingParameter(
                "HttpTokens, HttpPutResponseHopLimit, HttpEndpoint, HttpProtocolIpv6 or InstanceMetadataTags".into(),
            ));
        }
        Ok(())
    }

    /// Validates every given value (EC2's messages) and applies them to `opts`.
    pub fn apply(&self, opts: &mut MetadataOptions) -> Result<()> {
        fn one_of(v: &Option<String>, name: &str, allowed: &[&str]) -> Result<Option<String>> {
            match v {
                None => Ok(None),
                Some(x) if allowed.contains(&x.as_str()) => Ok(Some(x.clone())),
                Some(x) => Err(Error::invalid_value(format!(
                    "The value '{x}' is not valid for the '{name}' parameter. Valid values: {}.",
                    allowed.join(", ")
                ))),
            }
        }
        let tokens = one_of(&self.http_tokens, "HttpTokens", &["optional", "required"])?;
        let endpoint = one_of(
            &self.http_endpoint,
            "HttpEndpoint",
            &["enabled", "disabled"],
        )?;
        let ipv6 = one_of(
            &self.http_protocol_ipv6,
            "HttpProtocolIpv6",
            &["enabled", "disabled"],
        )?;
        let tags = one_of(
            &self.instance_metadata_tags,
            "InstanceMetadataTags",
            &["enabled", "disabled"],
        )?;
        let hops = match self.hop_limit {
            None => None,
            Some(n) if (1..=64).contains(&n) => Some(n as u32),
            Some(n) => {
                return Err(Error::invalid_value(format!(
                    "The HttpPutResponseHopLimit '{n}' is not valid. Valid values are 1 through 64."
                )))
            }
        };
        if let Some(v) = tokens {
            opts.http_tokens = v;
        }
        if let Some(v) = endpoint {
            opts.http_endpoint = v;
        }
        if let Some(v) = ipv6 {
            opts.http_protocol_ipv6 = v;
        }
        if let Some(v) = tags {
            opts.instance_metadata_tags = v;
        }
        if let Some(v) = hops {
            opts.hop_limit = v;
        }
        Ok(())
    }
}

/// One interface as a VM spec names it.
fn nic_spec(n: &NetworkInterface, subnet: &Subnet) -> NicSpec {
    NicSpec {
        interface_id: n.id.to_string(),
        device_index: n.attachment.as_ref().map(|a| a.device_index).unwrap_or(0),
        mac: n.mac_address.clone(),
        vpc_id: n.vpc_id.to_string(),
        subnet_cidr: subnet.cidr_block.clone(),
        private_ip: n.private_ip.clone(),
    }
}

/// Interfaces with their subnets, grouped by the instance they are attached to.
fn group_nics(
    nics: Vec<(NetworkInterface, Subnet)>,
) -> HashMap<String, Vec<(NetworkInterface, Subnet)>> {
    let mut out: HashMap<String, Vec<(NetworkInterface, Subnet)>> = HashMap::new();
    for (n, s) in nics {
        if let Some(a) = &n.attachment {
            out.entry(a.instance_id.to_string())
                .or_default()
                .push((n, s));
        }
    }
    out
}

/// An instance's attached interfaces as its VM spec names them, primary first.
fn nic_specs(mut nics: Vec<(NetworkInterface, Subnet)>) -> Vec<NicSpec> {
    nics.sort_by_key(|(n, _)| device_index(n));
    nics.iter().map(|(n, s)| nic_spec(n, s)).collect()
}

/// The spec the host agent should converge an instance to, given its image and its
/// interfaces (primary first).
fn spec_with(i: &Instance, image: Option<&Image>, nics: Vec<NicSpec>) -> VmSpec {
    let shape = catalog::instance_type(&i.instance_type).ok();
    let boot = image
        .map(|img| BootSpec {
            image_dir: img.boot.dir.clone(),
            kernel: img.boot.kernel.clone(),
            initrd: img.boot.initrd.clone(),
            cmdline: img.boot.cmdline.clone(),
            root_disk: img.boot.root_disk.clone(),
            root_size_gib: img.root_size_gib,
            uefi: img.boot.kernel.is_none() && img.firmware() == strato_store::Firmware::Uefi,
        })
        .unwrap_or_default();
    VmSpec {
        instance_id: i.id.clone(),
        generation: i.generation,
        desired: match i.desired {
            Desired::Running => DesiredVmState::Running,
            Desired::Stopped => DesiredVmState::Stopped,
            Desired::Deleted => DesiredVmState::Deleted,
        },
        force_stop: i.force_stop,
        reboot_seq: i.reboot_seq,
        vcpus: cpu_options_of(i)
            .map(|o| o.core_count * o.threads_per_core)
            .or(shape.map(|s| s.vcpus))
            .unwrap_or(1),
        cpu_topology: cpu_options_of(i).map(|o| CpuTopology {
            cores: o.core_count,
            threads_per_core: o.threads_per_core,
        }),
        memory_mib: shape.map(|s| s.memory_mib).unwrap_or(512),
        image_id: i.image_id.to_string(),
        boot,
        user_data: i
            .user_data
            .as_deref()
            .and_then(decode_base64)
            .unwrap_or_default(),
        nics,
        root_device: i.root_volume.then(|| i.root_device_name.clone()),
        instance_store: shape
            .and_then(|s| s.instance_store)
            .map(|st| instance_store_disks(&i.id, st))
            .unwrap_or_default(),
        // Filled by the callers that know the instance's volumes (see `volumes`).
        disks: vec![],
        force_detach: vec![],
    }
}

/// The instance-store disks of an instance of a type with an instance store. Each
/// disk's serial is derived from the instance id, so it is the same at every start.
fn instance_store_disks(id: &InstanceId, st: catalog::InstanceStore) -> Vec<EphemeralDiskSpec> {
    use sha2::{Digest, Sha256};
    (0..st.count)
        .map(|n| {
            let digest = Sha256::digest(format!("{id}/ephemeral{n}").as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02X}")).collect();
            EphemeralDiskSpec {
                name: format!("ephemeral{n}"),
                size_bytes: st.disk_bytes(),
                serial: format!("AWS{}", &hex[..17]),
            }
        })
        .collect()
}

/// Whether a volume is attached at the instance's root device.
fn has_root_volume(tx: &WriteTx, i: &Instance) -> Result<bool> {
    let vols = tx.volumes_of_instance(&Scope::of_instance(i), i.id.as_str())?;
    Ok(vols
        .iter()
        .any(|v| crate::volumes::attach::is_root_of(v, i)))
}

/// One ModifyInstanceAttribute change.
#[derive(Clone, Debug)]
pub enum AttributeChange {
    InstanceType(String),
    /// Decoded user data; empty clears it.
    UserData(Vec<u8>),
    DisableApiTermination(bool),
    DisableApiStop(bool),
    ShutdownBehavior(ShutdownBehavior),
    EbsOptimized(bool),
    /// `SourceDestCheck` set to true: what every instance has (checked, not changed).
    SourceDestCheck,
}

/// Which interfaces a scan of instances loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ScanInterfaces {
    /// None (DescribeInstanceStatus).
    No,
    /// Those of the page's instances, once the page is known.
    ForPage,
    /// Those of every instance looked at (its filters read them), per chunk; with
    /// their tags too when `tags` (a `network-interface.tag-*` filter reads them).
    ForFilters { tags: bool },
}

/// The subnet and security groups of a launch, and the existing interface it
/// launches with, if one was named.
struct LaunchNetwork {
    subnet: Subnet,
    groups: Vec<GroupRef>,
    interface: Option<NetworkInterface>,
}

struct ValidRun {
    metadata: MetadataOptions,
    image: strato_store::Image,
    itype: String,
    min: usize,
    max: usize,
    shutdown: ShutdownBehavior,
    instance_tags: Vec<(String, String)>,
    interface_tags: Vec<(String, String)>,
    volume_tags: Vec<(String, String)>,
    cpu_credits: Option<String>,
    cpu_options: Option<CpuOptions>,
    auto_recovery: String,
    /// The data volumes each instance gets (`BlockDeviceMapping`).
    launch_volumes: Vec<crate::volumes::launch::LaunchVolume>,
}

/// Attaches tags to a list of instances with one range query.
fn with_tags(
    tx: &ReadTx,
    caller: &Caller,
    list: Vec<Arc<Instance>>,
) -> Result<Vec<TaggedInstance>> {
    let (Some(first), Some(last)) = (
        list.iter().map(|i| i.id.as_str()).min(),
        list.iter().map(|i| i.id.as_str()).max(),
    ) else {
        return Ok(vec![]);
    };
    let mut tags: strato_common::hashing::FastMap<String, Vec<(String, String)>> =
        tx.tags_in_range(&caller.scope(), first, last)?;
    Ok(list
        .into_iter()
        .map(|i| {
            let t = tags.remove(i.id.as_str()).unwrap_or_default();
            (i, t)
        })
        .collect())
}

/// The tags of the interfaces in `interfaces` (one range query), by interface id.
fn interface_tags(
    tx: &ReadTx,
    account: &Scope,
    interfaces: &InstanceInterfaces,
) -> Result<FastMap<String, Tags>> {
    crate::tags::tags_of_ids(
        tx,
        account,
        interfaces
            .by_instance
            .values()
            .flatten()
            .map(|n| n.id.as_str()),
    )
}

/// From how many instances their interfaces are read by one range scan rather than
/// looked up by id.
const RANGE_SCAN_FROM: usize = 32;

/// The interfaces attached to a list of instances (one range scan, or one query per
/// 500 ids for a few) and the account's Elastic IPs (a handful).
fn instance_interfaces(
    tx: &ReadTx,
    account: &Scope,
    list: &[TaggedInstance],
) -> Result<InstanceInterfaces> {
    if list.is_empty() {
        return Ok(InstanceInterfaces::default());
    }
    let ids: Vec<&str> = list.iter().map(|(i, _)| i.id.as_str()).collect();
    // A page (many ids, read in id order) is cheaper as one range scan; a few ids
    // named by the caller may lie far apart, so they are looked up one by one.
    let interfaces = match (ids.iter().min(), ids.iter().max()) {
        (Some(first), Some(last)) if ids.len() > RANGE_SCAN_FROM => {
            let wanted: strato_common::hashing::FastSet<&str> = ids.iter().copied().collect();
            let mut found = tx.interfaces_in_instance_range(account, first, last)?;
            found.retain(|n| {
                n.attachment
                    .as_ref()
                    .is_some_and(|a| wanted.contains(a.instance_id.as_str()))
            });
            found
        }
        _ => tx.interfaces_of_instances(account, &ids)?,
    };
    let mut out = InstanceInterfaces::new(interfaces, &tx.list_docs::<ElasticIp>(account)?);
    out.volumes = crate::volumes::attach::mapped_volumes_in(tx, account, &ids)?;
    Ok(out)
}
