//! Every filter EC2 documents for the Describe actions the control plane filters
//! (DescribeInstances, DescribeInstanceStatus, DescribeImages,
//! DescribeNetworkInterfaces, DescribeRouteTables, DescribeSubnets): each name is one
//! the action accepts and evaluates without error, and the names' values are the
//! records' own, as the answers show them, so a value read back selects its record.
//! Features Strato lacks have no value: their filters are accepted and match nothing,
//! as on EC2 for resources without the feature.
//!
//! The documented names are botocore's, from each action's `Filters` documentation
//! (without `tag`, the documentation's `tag:<key>`, which the generic tag filter
//! serves).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;
use strato_agent::Agent;
use strato_agent_api::{AgentClient, VmReport};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{InstanceId, NetworkInterfaceId};
use strato_control::catalog::zone_id;
use strato_control::images::{owner_id, DescribeImagesInput, DEFAULT_IMAGE_ID, IMAGE_FILTERS};
use strato_control::instances::{
    private_dns_name, InstanceInterfaces, MetadataOptionsChange, RunInstancesInput, TaggedInstance,
    INSTANCE_FILTERS, INSTANCE_STATUS_FILTERS,
};
use strato_control::net::addresses::{
    public_dns_name, AddressRef, AssociationRef, PublicAssociation,
};
use strato_control::net::interfaces::{CreateInterface, InterfaceInfo, INTERFACE_FILTERS};
use strato_control::net::route_tables::ROUTE_TABLE_FILTERS;
use strato_control::net::subnets::SUBNET_FILTERS;
use strato_control::page::PageRequest;
use strato_control::tags::TagSpec;
use strato_control::{accounts, Caller, ControlConfig, ControlPlane};
use strato_drivers::sim::{SimConfig, SimDriver};
use strato_drivers::Hypervisor;
use strato_store::{Db, Instance, InstanceState, NetworkInterface};
use tokio::sync::mpsc::UnboundedReceiver;

const REGION: &str = "us-east-1";

const DOC_INSTANCES: &[&str] = &[
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

const DOC_INSTANCE_STATUS: &[&str] = &[
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

const DOC_IMAGES: &[&str] = &[
    "architecture",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.encrypted",
    "block-device-mapping.snapshot-id",
    "block-device-mapping.volume-size",
    "block-device-mapping.volume-type",
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

const DOC_INTERFACES: &[&str] = &[
    "addresses.association.owner-id",
    "addresses.association.public-ip",
    "addresses.primary",
    "addresses.private-ip-address",
    "association.allocation-id",
    "association.association-id",
    "association.ip-owner-id",
    "association.public-dns-name",
    "association.public-ip",
    "attachment.attach-time",
    "attachment.attachment-id",
    "attachment.delete-on-termination",
    "attachment.device-index",
    "attachment.instance-id",
    "attachment.instance-owner-id",
    "attachment.status",
    "availability-zone",
    "availability-zone-id",
    "description",
    "group-id",
    "interface-type",
    "ipv6-addresses.ipv6-address",
    "mac-address",
    "network-interface-id",
    "operator.managed",
    "operator.principal",
    "owner-id",
    "private-dns-name",
    "private-ip-address",
    "requester-id",
    "requester-managed",
    "source-dest-check",
    "status",
    "subnet-id",
    "vpc-id",
];

const DOC_ROUTE_TABLES: &[&str] = &[
    "association.gateway-id",
    "association.main",
    "association.route-table-association-id",
    "association.route-table-id",
    "association.subnet-id",
    "owner-id",
    "route-table-id",
    "route.destination-cidr-block",
    "route.destination-ipv6-cidr-block",
    "route.destination-prefix-list-id",
    "route.egress-only-internet-gateway-id",
    "route.gateway-id",
    "route.instance-id",
    "route.nat-gateway-id",
    "route.origin",
    "route.state",
    "route.transit-gateway-id",
    "route.vpc-peering-connection-id",
    "vpc-id",
];

const DOC_SUBNETS: &[&str] = &[
    "availability-zone",
    "availability-zone-id",
    "available-ip-address-count",
    "cidr-block",
    "customer-owned-ipv4-pool",
    "default-for-az",
    "enable-dns64",
    "enable-lni-at-device-index",
    "ipv6-cidr-block-association.association-id",
    "ipv6-cidr-block-association.ipv6-cidr-block",
    "ipv6-cidr-block-association.state",
    "ipv6-native",
    "map-customer-owned-ip-on-launch",
    "map-public-ip-on-launch",
    "outpost-arn",
    "owner-id",
    "private-dns-name-options-on-launch.enable-resource-name-dns-a-record",
    "private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record",
    "private-dns-name-options-on-launch.hostname-type",
    "state",
    "subnet-arn",
    "subnet-id",
    "vpc-id",
];

/// Checks an action's filter constant: every documented name is in it, each once, and
/// the only others are the undocumented names EC2 accepts too (`extra`).
fn check_names(action: &str, constant: &[&str], documented: &[&str], extra: &[&str]) {
    for name in documented {
        assert!(
            constant.contains(name),
            "{action}: the documented filter '{name}' is not accepted"
        );
    }
    for name in constant {
        assert!(
            documented.contains(name) || extra.contains(name),
            "{action}: '{name}' is neither documented nor a known extra"
        );
        assert_eq!(
            constant.iter().filter(|n| *n == name).count(),
            1,
            "{action}: '{name}' is listed twice"
        );
    }
    assert_eq!(constant.len(), documented.len() + extra.len(), "{action}");
}

fn filter(name: &str, value: &str) -> FilterSet {
    FilterSet::of(&[(name, value)])
}

struct World {
    _dir: tempfile::TempDir,
    cp: Arc<ControlPlane>,
    agent: Arc<Agent>,
    reports: UnboundedReceiver<VmReport>,
    a: Caller,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("db")).unwrap());
    let driver = Arc::new(
        SimDriver::open(
            &dir.path().join("sim"),
            SimConfig {
                boot_delay: Duration::ZERO,
                stop_delay: Duration::ZERO,
            },
        )
        .unwrap(),
    );
    let (agent, reports) = Agent::new("local", driver as Arc<dyn Hypervisor>);
    let cp = Arc::new(ControlPlane::new(
        db.clone(),
        agent.clone() as Arc<dyn AgentClient>,
        ControlConfig::new(REGION, "http://127.0.0.1:1"),
    ));
    cp.register_builtin_images(None).unwrap();
    let (acct, key) = accounts::create_account(&db, "a", None).unwrap();
    World {
        _dir: dir,
        cp,
        agent,
        reports,
        a: Caller {
            account: acct.id,
            access_key_id: key.access_key_id,
            region: REGION.into(),
        },
    }
}

/// Two running instances and one available interface:
/// - `a`, in the region's first zone, with detailed monitoring, EBS optimisation,
///   auto-recovery disabled, the metadata service on IPv6, an auto-assigned public
///   address and a tagged primary interface;
/// - `b`, in the second zone with every default and an Elastic IP;
/// - `spare`, an interface attached to nothing.
struct Fleet {
    a: Instance,
    b: Instance,
    nic_a: NetworkInterface,
    nic_b: NetworkInterface,
    spare: NetworkInterface,
    allocation_id: String,
    association_id: String,
}

impl World {
    fn settle(&mut self) {
        for _ in 0..10 {
            self.agent.reconcile_all();
            let mut any = false;
            while let Ok(r) = self.reports.try_recv() {
                self.cp.handle_report(&r).unwrap();
                any = true;
            }
            if !any {
                return;
            }
        }
    }

    fn launch(&self, input: RunInstancesInput) -> InstanceId {
        let input = RunInstancesInput {
            image_id: Some(DEFAULT_IMAGE_ID.into()),
            min_count: Some(1),
            max_count: Some(1),
            ..input
        };
        let r = self.cp.run_instances(&self.a, &input, false).unwrap();
        r.instances[0].0.id.clone()
    }

    fn fleet(&mut self) -> Fleet {
        let a = self.launch(RunInstancesInput {
            monitoring: Some(true),
            ebs_optimized: Some(true),
            auto_recovery: Some("disabled".into()),
            metadata_options: MetadataOptionsChange {
                http_protocol_ipv6: Some("enabled".into()),
                ..Default::default()
            },
            tag_specs: vec![TagSpec {
                resource_type: "network-interface".into(),
                tags: vec![("Role".into(), "front".into())],
            }],
            ..Default::default()
        });
        let b = self.launch(RunInstancesInput {
            availability_zone: Some(format!("{REGION}b")),
            ..Default::default()
        });
        self.settle();
        let (eip, _) = self.cp.allocate_address(&self.a, None, &[], false).unwrap();
        let association_id = self
            .cp
            .associate_address(
                &self.a,
                &AddressRef::Allocation(eip.id.clone()),
                &b,
                None,
                false,
                false,
            )
            .unwrap()
            .to_string();
        let subnet = {
            let (list, _) = self
                .cp
                .describe_subnets(
                    &self.a,
                    &[],
                    &filter("availability-zone", &format!("{REGION}a")),
                    &PageRequest::all(),
                )
                .unwrap();
            list[0].subnet.id.clone()
        };
        let spare = self
            .cp
            .create_network_interface(&self.a, &CreateInterface::in_subnet(subnet), &[], false)
            .unwrap()
            .interface;
        let (list, nics) = self.with_interfaces(&[a.clone(), b.clone()]);
        let find = |id: &InstanceId| (*list.iter().find(|(i, _)| i.id == *id).unwrap().0).clone();
        let (a, b) = (find(&a), find(&b));
        assert_eq!(a.state, InstanceState::Running);
        assert_eq!(b.state, InstanceState::Running);
        assert!(
            a.public_ip.is_some(),
            "a has an auto-assigned public address"
        );
        assert_eq!(b.public_ip.as_deref(), Some(eip.public_ip.as_str()));
        let nic_a = (*nics.of(a.id.as_str())[0]).clone();
        let nic_b = (*nics.of(b.id.as_str())[0]).clone();
        Fleet {
            a,
            b,
            nic_a,
            nic_b,
            spare,
            allocation_id: eip.id.to_string(),
            association_id,
        }
    }

    /// The ids DescribeInstances answers for one filter; the scan of all instances
    /// and the lookup of named ones agree.
    fn instances(&self, name: &str, value: &str) -> Vec<String> {
        let f = filter(name, value);
        let (list, _) = self
            .cp
            .describe_instances(&self.a, &[], &f, &PageRequest::all())
            .unwrap();
        let mut scanned: Vec<String> = list.iter().map(|(i, _)| i.id.to_string()).collect();
        let (all, _) = self
            .cp
            .describe_instances(&self.a, &[], &FilterSet::default(), &PageRequest::all())
            .unwrap();
        let ids: Vec<InstanceId> = all.iter().map(|(i, _)| i.id.clone()).collect();
        let (list, _) = self
            .cp
            .describe_instances(&self.a, &ids, &f, &PageRequest::all())
            .unwrap();
        let mut named: Vec<String> = list.iter().map(|(i, _)| i.id.to_string()).collect();
        scanned.sort();
        named.sort();
        assert_eq!(scanned, named, "{name}={value}: scan and lookup by id");
        scanned
    }

    fn instance_status(&self, name: &str, value: &str) -> Vec<String> {
        let (list, _) = self
            .cp
            .describe_instance_status(
                &self.a,
                &[],
                &filter(name, value),
                true,
                &PageRequest::all(),
            )
            .unwrap();
        list.iter().map(|i| i.id.to_string()).collect()
    }

    fn images(&self, name: &str, value: &str) -> Vec<String> {
        let input = DescribeImagesInput {
            filters: filter(name, value),
            ..Default::default()
        };
        let (list, _) = self.cp.describe_images(&self.a, &input).unwrap();
        list.iter().map(|(i, _)| i.id.to_string()).collect()
    }

    fn interfaces(&self, name: &str, value: &str) -> Vec<String> {
        let (list, _) = self
            .cp
            .describe_network_interfaces(&self.a, &[], &filter(name, value), &PageRequest::all())
            .unwrap();
        list.iter().map(|n| n.interface.id.to_string()).collect()
    }

    fn route_tables(&self, name: &str, value: &str) -> Vec<String> {
        let (list, _) = self
            .cp
            .describe_route_tables(&self.a, &[], &filter(name, value), &PageRequest::all())
            .unwrap();
        list.iter().map(|t| t.table.id.to_string()).collect()
    }

    fn subnets(&self, name: &str, value: &str) -> Vec<String> {
        let (list, _) = self
            .cp
            .describe_subnets(&self.a, &[], &filter(name, value), &PageRequest::all())
            .unwrap();
        list.iter().map(|s| s.subnet.id.to_string()).collect()
    }
}

/// `name=own` selects `id` and `name=other` does not.
#[track_caller]
fn selects(
    describe: &dyn Fn(&str, &str) -> Vec<String>,
    name: &str,
    own: &str,
    other: &str,
    id: &str,
) {
    assert!(
        describe(name, own).iter().any(|x| x == id),
        "{name}={own} should select {id}"
    );
    assert!(
        !describe(name, other).iter().any(|x| x == id),
        "{name}={other} should not select {id}"
    );
}

/// `name` matches nothing, whatever the value.
#[track_caller]
fn matches_nothing(describe: &dyn Fn(&str, &str) -> Vec<String>, name: &str) {
    assert_eq!(describe(name, "*"), Vec::<String>::new(), "{name}=*");
}

#[test]
fn every_documented_name_is_accepted() {
    check_names(
        "DescribeInstances",
        INSTANCE_FILTERS,
        DOC_INSTANCES,
        &["placement-availability-zone"],
    );
    check_names(
        "DescribeInstanceStatus",
        INSTANCE_STATUS_FILTERS,
        DOC_INSTANCE_STATUS,
        &[],
    );
    check_names(
        "DescribeImages",
        IMAGE_FILTERS,
        DOC_IMAGES,
        &["boot-mode", "platform-details"],
    );
    check_names(
        "DescribeNetworkInterfaces",
        INTERFACE_FILTERS,
        DOC_INTERFACES,
        &["group-name"],
    );
    check_names(
        "DescribeRouteTables",
        ROUTE_TABLE_FILTERS,
        DOC_ROUTE_TABLES,
        &[],
    );
    check_names(
        "DescribeSubnets",
        SUBNET_FILTERS,
        DOC_SUBNETS,
        &["cidr", "cidrBlock", "defaultForAz"],
    );

    // Each name evaluates against real records without failing.
    let mut w = world();
    let fleet = w.fleet();
    let ids = vec![fleet.a.id.clone(), fleet.b.id.clone()];
    for name in DOC_INSTANCES {
        let f = filter(name, "x");
        w.cp.describe_instances(&w.a, &[], &f, &PageRequest::all())
            .unwrap_or_else(|e| panic!("DescribeInstances {name}: {e:?}"));
        w.cp.describe_instances(&w.a, &ids, &f, &PageRequest::all())
            .unwrap_or_else(|e| panic!("DescribeInstances {name} by id: {e:?}"));
    }
    for name in DOC_INSTANCE_STATUS {
        w.cp.describe_instance_status(&w.a, &[], &filter(name, "x"), true, &PageRequest::all())
            .unwrap_or_else(|e| panic!("DescribeInstanceStatus {name}: {e:?}"));
    }
    for name in DOC_IMAGES {
        w.images(name, "x");
    }
    for name in DOC_INTERFACES {
        w.interfaces(name, "x");
    }
    for name in DOC_ROUTE_TABLES {
        w.route_tables(name, "x");
    }
    for name in DOC_SUBNETS {
        w.subnets(name, "x");
    }
}

#[test]
fn instance_filters_select_by_the_answers_values() {
    let mut w = world();
    let fleet = w.fleet();
    let (a, b) = (fleet.a.id.to_string(), fleet.b.id.to_string());
    let q = |n: &str, v: &str| w.instances(n, v);
    let both = vec![a.clone(), b.clone()];
    let mut sorted_both = both.clone();
    sorted_both.sort();

    let zone_a = zone_id(REGION, &fleet.a.availability_zone);
    let zone_b = zone_id(REGION, &fleet.b.availability_zone);
    assert_ne!(zone_a, zone_b);
    selects(&q, "availability-zone-id", &zone_a, &zone_b, &a);
    selects(&q, "availability-zone-id", &zone_b, &zone_a, &b);
    selects(&q, "monitoring-state", "enabled", "disabled", &a);
    selects(&q, "monitoring-state", "disabled", "enabled", &b);
    selects(&q, "ebs-optimized", "true", "false", &a);
    selects(&q, "ebs-optimized", "false", "true", &b);
    selects(
        &q,
        "maintenance-options.auto-recovery",
        "disabled",
        "default",
        &a,
    );
    selects(
        &q,
        "maintenance-options.auto-recovery",
        "default",
        "disabled",
        &b,
    );
    selects(
        &q,
        "metadata-options.http-protocol-ipv6",
        "enabled",
        "disabled",
        &a,
    );
    selects(
        &q,
        "metadata-options.http-protocol-ipv6",
        "disabled",
        "enabled",
        &b,
    );
    // What every instance shows.
    for (name, own, other) in [
        ("boot-mode", "legacy-bios", "uefi"),
        ("current-instance-boot-mode", "legacy-bios", "uefi"),
        (
            "private-dns-name-options.hostname-type",
            "ip-name",
            "resource-name",
        ),
        (
            "private-dns-name-options.enable-resource-name-dns-a-record",
            "false",
            "true",
        ),
        (
            "private-dns-name-options.enable-resource-name-dns-aaaa-record",
            "false",
            "true",
        ),
        ("source-dest-check", "true", "false"),
        ("ena-support", "true", "false"),
        ("enclave-options.enabled", "false", "true"),
        ("hibernation-options.configured", "false", "true"),
        ("metadata-options.state", "applied", "pending"),
        ("usage-operation", "RunInstances", "RunInstances:0002"),
        (
            "capacity-reservation-specification.capacity-reservation-preference",
            "open",
            "none",
        ),
        ("network-interface.addresses.primary", "true", "false"),
        ("network-interface.requester-managed", "false", "true"),
        ("network-interface.attachment.network-card-index", "0", "1"),
    ] {
        let mut got = q(name, own);
        got.sort();
        assert_eq!(got, sorted_both, "{name}={own}");
        assert!(q(name, other).is_empty(), "{name}={other}");
    }
    selects(
        &q,
        "usage-operation-update-time",
        &ec2_timestamp(fleet.a.launch_time_ms),
        "2001-01-01T00:00:00.000Z",
        &a,
    );

    // The instance's interfaces.
    selects(
        &q,
        "network-interface.private-ip-address",
        &fleet.nic_a.private_ip,
        &fleet.nic_b.private_ip,
        &a,
    );
    selects(
        &q,
        "network-interface.addresses.private-dns-name",
        &private_dns_name(REGION, &fleet.nic_a.private_ip),
        &private_dns_name(REGION, &fleet.nic_b.private_ip),
        &a,
    );
    let attached = ec2_timestamp(fleet.nic_a.attachment.as_ref().unwrap().attach_time_ms);
    selects(
        &q,
        "network-interface.attachment.attach-time",
        &attached,
        "2001-01-01T00:00:00.000Z",
        &a,
    );
    selects(
        &q,
        "network-interface.attachment.attach-time",
        "20*",
        "19*",
        &b,
    );
    let account = w.a.account.to_string();
    selects(
        &q,
        "network-interface.attachment.instance-owner-id",
        &account,
        "111122223333",
        &a,
    );
    selects(&q, "network-interface.tag-key", "Role", "Other", &a);
    selects(&q, "network-interface.tag-value", "front", "back", &a);
    assert!(q("network-interface.tag-key", "*").iter().all(|x| *x == a));

    // Public addresses: a's auto-assigned one is Amazon's, b's Elastic IP the account's.
    let ip_a = fleet.a.public_ip.clone().unwrap();
    let ip_b = fleet.b.public_ip.clone().unwrap();
    for prefix in [
        "network-interface.association.",
        "network-interface.addresses.association.",
    ] {
        let name = |n: &str| format!("{prefix}{n}");
        selects(&q, &name("public-ip"), &ip_a, &ip_b, &a);
        selects(&q, &name("public-ip"), &ip_b, &ip_a, &b);
        selects(
            &q,
            &name("public-dns-name"),
            &public_dns_name(REGION, &ip_a),
            &public_dns_name(REGION, &ip_b),
            &a,
        );
        selects(&q, &name("ip-owner-id"), "amazon", &account, &a);
        selects(&q, &name("ip-owner-id"), &account, "amazon", &b);
        selects(
            &q,
            &name("allocation-id"),
            &fleet.allocation_id,
            "eipalloc-0",
            &b,
        );
        selects(
            &q,
            &name("association-id"),
            &fleet.association_id,
            "eipassoc-0",
            &b,
        );
        assert_eq!(q(&name("allocation-id"), "*"), vec![b.clone()]);
        matches_nothing(&q, &name("carrier-ip"));
        matches_nothing(&q, &name("customer-owned-ip"));
    }
    selects(
        &q,
        "network-interface.public-dns-name",
        &public_dns_name(REGION, &ip_a),
        &public_dns_name(REGION, &ip_b),
        &a,
    );

    // Features Strato does not have.
    for name in [
        "capacity-reservation-id",
        "capacity-reservation-specification.capacity-reservation-target.capacity-reservation-id",
        "affinity",
        "host-id",
        "spot-instance-request-id",
        "ipv6-address",
        "iam-instance-profile.arn",
        "outpost-arn",
        "platform",
        "product-code",
        "tpm-support",
        "operator.managed",
        "placement-group-name",
        "block-device-mapping.device-name",
        "network-interface.ipv6-address",
        "network-interface.operator.managed",
        "metadata-options.http-protocol-ipv4",
    ] {
        matches_nothing(&q, name);
    }

    // `reason` appears once the instance changes state.
    matches_nothing(&q, "reason");
    w.cp.stop_instances(&w.a, std::slice::from_ref(&fleet.b.id), false, false)
        .unwrap();
    w.settle();
    let reason =
        w.cp.instance(&w.a, &fleet.b.id)
            .unwrap()
            .state_transition_reason;
    assert!(!reason.is_empty());
    selects(
        &|n: &str, v: &str| w.instances(n, v),
        "reason",
        &reason,
        "User initiated",
        &b,
    );
    assert_eq!(w.instances("reason", "*"), vec![b.clone()]);
}

#[test]
fn instance_status_filters_select_by_the_answers_values() {
    let mut w = world();
    let fleet = w.fleet();
    let (a, b) = (fleet.a.id.to_string(), fleet.b.id.to_string());
    let q = |n: &str, v: &str| w.instance_status(n, v);
    let zone_a = zone_id(REGION, &fleet.a.availability_zone);
    let zone_b = zone_id(REGION, &fleet.b.availability_zone);
    selects(&q, "availability-zone-id", &zone_a, &zone_b, &a);
    selects(&q, "availability-zone-id", &zone_b, &zone_a, &b);
    for name in [
        "application-status.status",
        "attached-ebs-status.status",
        "event.code",
        "event.description",
        "event.instance-event-id",
        "event.not-after",
        "event.not-before",
        "event.not-before-deadline",
        "operator.managed",
        "operator.principal",
    ] {
        matches_nothing(&q, name);
    }
}

#[test]
fn image_filters_select_by_the_answers_values() {
    let w = world();
    let (list, _) =
        w.cp.describe_images(&w.a, &DescribeImagesInput::default())
            .unwrap();
    let img = list
        .iter()
        .find(|(i, _)| i.id.as_str() == DEFAULT_IMAGE_ID)
        .unwrap()
        .0
        .clone();
    let id = img.id.to_string();
    let q = |n: &str, v: &str| w.images(n, v);
    selects(
        &q,
        "creation-date",
        &ec2_timestamp(img.creation_ms),
        "2001-01-01T00:00:00.000Z",
        &id,
    );
    selects(
        &q,
        "manifest-location",
        &format!("{}/{}", owner_id(&img), img.name),
        "amazon/other",
        &id,
    );
    selects(&q, "ena-support", "true", "false", &id);
    selects(
        &q,
        "block-device-mapping.device-name",
        &img.root_device_name,
        "/dev/sdz",
        &id,
    );
    selects(
        &q,
        "block-device-mapping.volume-size",
        &img.root_size_gib.to_string(),
        "9999",
        &id,
    );
    selects(&q, "block-device-mapping.volume-type", "gp3", "io2", &id);
    selects(
        &q,
        "block-device-mapping.delete-on-termination",
        "true",
        "false",
        &id,
    );
    selects(&q, "block-device-mapping.encrypted", "false", "true", &id);
    for name in [
        "platform",
        "state-reason-code",
        "state-reason-message",
        "product-code",
        "block-device-mapping.snapshot-id",
        "source-image-id",
        "image-watermark.watermark-key",
        "scan-result.highest-finding-severity-label",
        "critical",
        "free-tier-eligible",
        "image-allowed",
        "sriov-net-support",
    ] {
        matches_nothing(&q, name);
    }
    // EC2's documented way to list Windows images finds none.
    assert!(q("platform", "windows").is_empty());
}

#[test]
fn interface_filters_select_by_the_answers_values() {
    let mut w = world();
    let fleet = w.fleet();
    let (a, b, spare) = (
        fleet.nic_a.id.to_string(),
        fleet.nic_b.id.to_string(),
        fleet.spare.id.to_string(),
    );
    let q = |n: &str, v: &str| w.interfaces(n, v);
    let account = w.a.account.to_string();

    selects(
        &q,
        "private-dns-name",
        &private_dns_name(REGION, &fleet.nic_a.private_ip),
        &private_dns_name(REGION, &fleet.nic_b.private_ip),
        &a,
    );
    let attached = ec2_timestamp(fleet.nic_a.attachment.as_ref().unwrap().attach_time_ms);
    selects(
        &q,
        "attachment.attach-time",
        &attached,
        "2001-01-01T00:00:00.000Z",
        &a,
    );
    assert!(!q("attachment.attach-time", "*").contains(&spare));
    selects(&q, "attachment.delete-on-termination", "true", "false", &a);
    selects(
        &q,
        "attachment.instance-owner-id",
        &account,
        "111122223333",
        &a,
    );
    assert!(!q("attachment.instance-owner-id", "*").contains(&spare));
    selects(
        &q,
        "availability-zone-id",
        &zone_id(REGION, &fleet.nic_a.availability_zone),
        &zone_id(REGION, &fleet.nic_b.availability_zone),
        &a,
    );
    selects(
        &q,
        "addresses.private-ip-address",
        &fleet.spare.private_ip,
        &fleet.nic_a.private_ip,
        &spare,
    );
    for (name, own, other) in [
        ("interface-type", "interface", "efa"),
        ("source-dest-check", "true", "false"),
        ("requester-managed", "false", "true"),
        ("addresses.primary", "true", "false"),
    ] {
        let got = q(name, own);
        for id in [&a, &b, &spare] {
            assert!(got.contains(id), "{name}={own} selects {id}");
        }
        assert!(q(name, other).is_empty(), "{name}={other}");
    }

    // Public addresses are the primary interfaces' (a: auto-assigned, b: Elastic IP).
    let ip_a = fleet.a.public_ip.clone().unwrap();
    let ip_b = fleet.b.public_ip.clone().unwrap();
    selects(&q, "association.public-ip", &ip_a, &ip_b, &a);
    selects(&q, "association.public-ip", &ip_b, &ip_a, &b);
    selects(&q, "addresses.association.public-ip", &ip_a, &ip_b, &a);
    selects(
        &q,
        "association.public-dns-name",
        &public_dns_name(REGION, &ip_a),
        &public_dns_name(REGION, &ip_b),
        &a,
    );
    selects(&q, "association.ip-owner-id", "amazon", &account, &a);
    selects(&q, "association.ip-owner-id", &account, "amazon", &b);
    selects(&q, "addresses.association.owner-id", &account, "amazon", &b);
    selects(
        &q,
        "association.allocation-id",
        &fleet.allocation_id,
        "eipalloc-0",
        &b,
    );
    selects(
        &q,
        "association.association-id",
        &fleet.association_id,
        "eipassoc-0",
        &b,
    );
    assert!(!q("association.public-ip", "*").contains(&spare));

    for name in [
        "ipv6-addresses.ipv6-address",
        "operator.managed",
        "operator.principal",
        "requester-id",
    ] {
        matches_nothing(&q, name);
    }
}

impl World {
    /// What DescribeNetworkInterfaces answers for `ids` (all when empty) and `filters`.
    fn interface_infos(
        &self,
        ids: &[NetworkInterfaceId],
        filters: &FilterSet,
    ) -> Vec<InterfaceInfo> {
        self.cp
            .describe_network_interfaces(&self.a, ids, filters, &PageRequest::all())
            .unwrap()
            .0
    }

    /// The public address DescribeNetworkInterfaces shows for interface `id`, listed
    /// with all others (read for the page) and named by id, which agree.
    fn association_of(&self, id: &NetworkInterfaceId) -> Option<PublicAssociation> {
        let all = self.interface_infos(&[], &FilterSet::default());
        let listed = all.iter().find(|n| n.interface.id == *id).unwrap();
        let named = self.interface_infos(std::slice::from_ref(id), &FilterSet::default());
        assert_eq!(
            named[0].association, listed.association,
            "{id}: listed and named"
        );
        listed.association.clone()
    }

    /// DescribeInstances of `ids`, with their interfaces.
    fn with_interfaces(&self, ids: &[InstanceId]) -> (Vec<TaggedInstance>, InstanceInterfaces) {
        let (list, nics, _) = self
            .cp
            .describe_instances_with_interfaces(
                &self.a,
                ids,
                &FilterSet::default(),
                &PageRequest::all(),
            )
            .unwrap();
        (list, nics)
    }

    /// The public address DescribeInstances shows on the instance's primary interface
    /// (its `networkInterfaceSet` association, and the instance's own address).
    fn instance_association(&self, id: &InstanceId) -> Option<PublicAssociation> {
        let (list, nics) = self.with_interfaces(std::slice::from_ref(id));
        let i = &list[0].0;
        let shown = nics.public_association(REGION, i);
        assert_eq!(
            shown.as_ref().map(|p| p.public_ip.as_str()),
            i.public_ip.as_deref()
        );
        shown
    }
}

/// How an interface shows an auto-assigned public address: Amazon's, with no
/// allocation or association.
fn auto_assigned(ip: &str) -> PublicAssociation {
    PublicAssociation {
        public_ip: ip.to_string(),
        public_dns_name: public_dns_name(REGION, ip),
        ip_owner_id: "amazon".into(),
        allocation_id: None,
        association_id: None,
    }
}

#[test]
fn interfaces_show_the_public_addresses_the_filters_select() {
    let mut w = world();
    let fleet = w.fleet();
    let account = w.a.account.to_string();

    // a: an auto-assigned address, Amazon's, as DescribeInstances shows it.
    let a = w.association_of(&fleet.nic_a.id).unwrap();
    let ip_a = fleet.a.public_ip.clone().unwrap();
    assert_eq!(a, auto_assigned(&ip_a));
    assert_eq!(Some(&a), w.instance_association(&fleet.a.id).as_ref());

    // b: its Elastic IP, the account's, with the allocation and association
    // DescribeAddresses shows.
    let b = w.association_of(&fleet.nic_b.id).unwrap();
    let ip_b = fleet.b.public_ip.clone().unwrap();
    let addresses =
        w.cp.describe_addresses(
            &w.a,
            std::slice::from_ref(&ip_b),
            &[],
            &FilterSet::default(),
        )
        .unwrap();
    let eip = &addresses[0].0;
    let eip_association = eip.association.as_ref().unwrap();
    assert_eq!(eip_association.instance_id, fleet.b.id);
    assert_eq!(eip.id.to_string(), fleet.allocation_id);
    assert_eq!(eip_association.id.to_string(), fleet.association_id);
    assert_eq!(
        b,
        PublicAssociation {
            public_ip: ip_b.clone(),
            public_dns_name: public_dns_name(REGION, &ip_b),
            ip_owner_id: account.clone(),
            allocation_id: Some(eip.id.clone()),
            association_id: Some(eip_association.id.clone()),
        }
    );
    // DescribeInstances shows the same address, owner and name (its association has
    // no allocation or association id).
    let shown = w.instance_association(&fleet.b.id).unwrap();
    assert_eq!(
        (&shown.public_ip, &shown.public_dns_name, &shown.ip_owner_id),
        (&b.public_ip, &b.public_dns_name, &b.ip_owner_id)
    );

    // An interface attached to nothing holds no public address.
    assert_eq!(w.association_of(&fleet.spare.id), None);

    // A filter on the public address answers exactly that interface, with its
    // association (read for the filter, before the page is cut).
    for (ip, nic, want) in [(&ip_a, &fleet.nic_a, &a), (&ip_b, &fleet.nic_b, &b)] {
        let got = w.interface_infos(&[], &filter("association.public-ip", ip));
        assert_eq!(got.len(), 1, "association.public-ip={ip}");
        assert_eq!(got[0].interface.id, nic.id);
        assert_eq!(got[0].association.as_ref(), Some(want));
    }

    // Disassociated, the Elastic IP leaves b's interface; b takes a new auto-assigned
    // address, which the interface shows as Amazon's.
    w.cp.disassociate_address(&w.a, &AssociationRef::Public(ip_b.clone()), false)
        .unwrap();
    let after = w.association_of(&fleet.nic_b.id).unwrap();
    let ip_new = w.cp.instance(&w.a, &fleet.b.id).unwrap().public_ip.unwrap();
    assert_ne!(ip_new, ip_b);
    assert_eq!(after, auto_assigned(&ip_new));
    assert_eq!(Some(&after), w.instance_association(&fleet.b.id).as_ref());
    assert!(w.interfaces("association.public-ip", &ip_b).is_empty());
    assert!(w
        .interfaces("association.allocation-id", &fleet.allocation_id)
        .is_empty());
    assert_eq!(
        w.interfaces("association.public-ip", &ip_new),
        vec![fleet.nic_b.id.to_string()]
    );
}

#[test]
fn a_retried_create_shows_the_public_address_its_interface_holds_since() {
    let mut w = world();
    let (subnets, _) =
        w.cp.describe_subnets(
            &w.a,
            &[],
            &filter("availability-zone", &format!("{REGION}a")),
            &PageRequest::all(),
        )
        .unwrap();
    let req = CreateInterface {
        client_token: Some("retry-1".into()),
        ..CreateInterface::in_subnet(subnets[0].subnet.id.clone())
    };
    let made =
        w.cp.create_network_interface(&w.a, &req, &[], false)
            .unwrap();
    assert_eq!(made.association, None);
    // Launched with as its primary interface, it takes the instance's Elastic IP.
    let id = w.launch(RunInstancesInput {
        network_interface_id: Some(made.interface.id.clone()),
        ..Default::default()
    });
    w.settle();
    let (eip, _) = w.cp.allocate_address(&w.a, None, &[], false).unwrap();
    w.cp.associate_address(
        &w.a,
        &AddressRef::Allocation(eip.id.clone()),
        &id,
        None,
        false,
        false,
    )
    .unwrap();
    let again =
        w.cp.create_network_interface(&w.a, &req, &[], false)
            .unwrap();
    assert_eq!(again.interface.id, made.interface.id);
    let shown = again.association.unwrap();
    assert_eq!(shown.public_ip, eip.public_ip);
    assert_eq!(shown.allocation_id, Some(eip.id));
    assert_eq!(Some(shown), w.association_of(&made.interface.id));
}

#[test]
fn route_table_filters_for_missing_targets_match_nothing() {
    let w = world();
    let q = |n: &str, v: &str| w.route_tables(n, v);
    // Every table has the local route.
    assert!(!q("route.gateway-id", "local").is_empty());
    for name in [
        "route.instance-id",
        "route.nat-gateway-id",
        "route.transit-gateway-id",
        "route.vpc-peering-connection-id",
        "route.egress-only-internet-gateway-id",
        "route.destination-ipv6-cidr-block",
        "route.destination-prefix-list-id",
    ] {
        matches_nothing(&q, name);
    }
}

#[test]
fn subnet_filters_select_by_the_answers_values() {
    let w = world();
    let q = |n: &str, v: &str| w.subnets(n, v);
    let mut all = q("state", "available");
    all.sort();
    assert!(!all.is_empty());
    for (name, own, other) in [
        ("enable-dns64", "false", "true"),
        (
            "private-dns-name-options-on-launch.hostname-type",
            "ip-name",
            "resource-name",
        ),
        (
            "private-dns-name-options-on-launch.enable-resource-name-dns-a-record",
            "false",
            "true",
        ),
        (
            "private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record",
            "false",
            "true",
        ),
        ("map-customer-owned-ip-on-launch", "false", "true"),
    ] {
        let mut got = q(name, own);
        got.sort();
        assert_eq!(got, all, "{name}={own}");
        assert!(q(name, other).is_empty(), "{name}={other}");
    }
    for name in [
        "customer-owned-ipv4-pool",
        "outpost-arn",
        "enable-lni-at-device-index",
    ] {
        matches_nothing(&q, name);
    }
}
