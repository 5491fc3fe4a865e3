//! The network control plane on a real store with the simulated host agent: default
//! resources, validation and error variants, dependency rules, address allocation,
//! DryRun and tenancy.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;
use strato_agent::Agent;
use strato_agent_api::{AgentClient, VmReport};
use strato_common::filter::FilterSet;
use strato_common::{
    Error, InstanceId, ResourceId, ResourceKind, SecurityGroupId, SubnetId, VpcId,
};
use strato_control::instances::RunInstancesInput;
use strato_control::net::rules::{GroupPairInput, IpPermissionInput, RangeInput};
use strato_control::net::security_groups::{CreateSecurityGroupInput, GroupSelector, RuleUpdate};
use strato_control::net::subnets::CreateSubnetInput;
use strato_control::net::vpcs::{CreateVpcInput, VpcAttribute};
use strato_control::page::PageRequest;
use strato_control::tags::TagSpec;
use strato_control::{accounts, Caller, ControlConfig, ControlPlane};
use strato_drivers::sim::{SimConfig, SimDriver};
use strato_drivers::Hypervisor;
use strato_store::{Db, InstanceState, RouteTarget, RulePeer};
use tokio::sync::mpsc::UnboundedReceiver;

const IMAGE: &str = strato_control::images::DEFAULT_IMAGE_ID;

struct World {
    _dir: tempfile::TempDir,
    cp: Arc<ControlPlane>,
    agent: Arc<Agent>,
    reports: UnboundedReceiver<VmReport>,
    a: Caller,
    b: Caller,
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
        ControlConfig::new("us-east-1", "http://127.0.0.1:1"),
    ));
    cp.register_builtin_images(None).unwrap();
    let caller = |name: &str| {
        let (acct, key) = accounts::create_account(&db, name, None).unwrap();
        Caller {
            account: acct.id,
            access_key_id: key.access_key_id,
            region: "us-east-1".into(),
        }
    };
    let a = caller("a");
    let b = caller("b");
    World {
        _dir: dir,
        cp,
        agent,
        reports,
        a,
        b,
    }
}

fn all() -> PageRequest {
    PageRequest::all()
}

fn none() -> FilterSet {
    FilterSet::default()
}

fn filters(pairs: &[(&str, &str)]) -> FilterSet {
    FilterSet::of(pairs)
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

    fn vpc(&self, c: &Caller, cidr: &str) -> VpcId {
        let input = CreateVpcInput {
            cidr_block: Some(cidr.into()),
            ..Default::default()
        };
        self.cp.create_vpc(c, &input, false).unwrap().0.id
    }

    fn subnet(&self, c: &Caller, vpc: &VpcId, cidr: &str) -> Result<SubnetId, Error> {
        let input = CreateSubnetInput {
            vpc_id: Some(vpc.clone()),
            cidr_block: Some(cidr.into()),
            ..Default::default()
        };
        self.cp.create_subnet(c, &input, false).map(|s| s.subnet.id)
    }

    fn group(&self, c: &Caller, vpc: Option<&VpcId>, name: &str) -> Result<SecurityGroupId, Error> {
        let input = CreateSecurityGroupInput {
            name: Some(name.into()),
            description: Some(format!("{name} group")),
            vpc_id: vpc.cloned(),
            tag_specs: vec![],
        };
        self.cp
            .create_security_group(c, &input, false)
            .map(|(g, _)| g.id)
    }

    fn run(
        &self,
        c: &Caller,
        n: i64,
        subnet: Option<&SubnetId>,
        groups: &[&SecurityGroupId],
    ) -> Result<Vec<InstanceId>, Error> {
        let input = RunInstancesInput {
            image_id: Some(IMAGE.into()),
            min_count: Some(n),
            max_count: Some(n),
            subnet_id: subnet.cloned(),
            security_group_ids: groups.iter().map(|&g| g.clone()).collect(),
            ..Default::default()
        };
        Ok(self
            .cp
            .run_instances(c, &input, false)?
            .instances
            .into_iter()
            .map(|(i, _)| i.id.clone())
            .collect())
    }
}

/// An id the test writes out, which the front door would have parsed.
fn parsed<T: ResourceId>(s: &str) -> T {
    T::parse(s).unwrap()
}

fn tcp(port: i64, cidr: &str) -> IpPermissionInput {
    IpPermissionInput {
        protocol: Some("tcp".into()),
        from_port: Some(port),
        to_port: Some(port),
        ipv4_ranges: vec![RangeInput {
            cidr: Some(cidr.into()),
            description: None,
        }],
        ..Default::default()
    }
}

fn from_group(group: &SecurityGroupId) -> IpPermissionInput {
    IpPermissionInput {
        protocol: Some("-1".into()),
        groups: vec![GroupPairInput {
            group_id: Some(group.clone()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn every_account_gets_the_default_network_once() {
    let w = world();
    let a = &w.a;
    let vpc = w.cp.default_vpc(a).unwrap().expect("a default VPC");
    assert_eq!(vpc.cidr_block, "172.31.0.0/16");
    assert!(vpc.is_default && vpc.enable_dns_hostnames && vpc.enable_dns_support);
    // Idempotent: more calls (and more threads) make nothing more.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let cp = w.cp.clone();
            let a = a.clone();
            std::thread::spawn(move || cp.ensure_network_defaults(&a.scope()).unwrap())
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let (vpcs, _) = w.cp.describe_vpcs(a, &[], &none(), &all()).unwrap();
    assert_eq!(vpcs.len(), 1);

    let (subnets, _) = w.cp.describe_subnets(a, &[], &none(), &all()).unwrap();
    let mut blocks: Vec<(String, String)> = subnets
        .iter()
        .map(|s| {
            (
                s.subnet.availability_zone.clone(),
                s.subnet.cidr_block.clone(),
            )
        })
        .collect();
    blocks.sort();
    assert_eq!(
        blocks,
        vec![
            ("us-east-1a".to_string(), "172.31.0.0/20".to_string()),
            ("us-east-1b".to_string(), "172.31.16.0/20".to_string()),
            ("us-east-1c".to_string(), "172.31.32.0/20".to_string()),
            ("us-east-1d".to_string(), "172.31.48.0/20".to_string()),
            ("us-east-1e".to_string(), "172.31.64.0/20".to_string()),
            ("us-east-1f".to_string(), "172.31.80.0/20".to_string()),
        ]
    );
    for s in &subnets {
        assert!(s.subnet.default_for_az && s.subnet.map_public_ip_on_launch);
        assert_eq!(s.available_ips, 4096 - 5);
    }

    let (groups, _) =
        w.cp.describe_security_groups(a, &[], &[], &none(), &all())
            .unwrap();
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.group.name, "default");
    assert_eq!(g.ingress.len(), 1);
    assert_eq!(g.ingress[0].protocol, "-1");
    assert_eq!(g.ingress[0].groups[0].0, g.group.id, "ingress from itself");
    assert_eq!(g.egress[0].ipv4_ranges[0].0, "0.0.0.0/0");

    let (tables, _) = w.cp.describe_route_tables(a, &[], &none(), &all()).unwrap();
    assert_eq!(tables.len(), 1);
    let t = &tables[0];
    assert!(t.table.is_main());
    assert_eq!(t.table.routes[0].target, RouteTarget::Local);
    assert_eq!(t.table.routes[1].destination, "0.0.0.0/0");
    assert_eq!(t.route_states, vec!["active", "active"]);

    let (igws, _) =
        w.cp.describe_internet_gateways(a, &[], &none(), &all())
            .unwrap();
    assert_eq!(igws[0].0.vpc_id.as_ref(), Some(&vpc.id));
    let (dopts, _) = w.cp.describe_dhcp_options(a, &[], &none(), &all()).unwrap();
    assert_eq!(dopts.len(), 1);
    assert_eq!(
        dopts[0].0.options[0],
        ("domain-name".to_string(), vec!["ec2.internal".to_string()])
    );
    assert_eq!(vpc.dhcp_options_id.as_ref(), Some(&dopts[0].0.id));
}

#[test]
fn a_deleted_default_vpc_stays_deleted_until_create_default_vpc() {
    let w = world();
    let a = &w.a;
    let vpc = w.cp.default_vpc(a).unwrap().unwrap();
    assert!(matches!(
        w.cp.create_default_vpc(a, false),
        Err(Error::DefaultVpcAlreadyExists(_))
    ));
    assert!(matches!(
        w.cp.delete_vpc(a, &vpc.id, false),
        Err(Error::DependencyViolation(_))
    ));
    // Take it apart the way a user would: subnets, then the gateway.
    let (subnets, _) = w.cp.describe_subnets(a, &[], &none(), &all()).unwrap();
    for s in subnets {
        w.cp.delete_subnet(a, &s.subnet.id, false).unwrap();
    }
    let (igws, _) =
        w.cp.describe_internet_gateways(a, &[], &none(), &all())
            .unwrap();
    let igw = igws[0].0.id.clone();
    assert!(matches!(
        w.cp.delete_internet_gateway(a, &igw, false),
        Err(Error::DependencyViolation(_))
    ));
    w.cp.detach_internet_gateway(a, &igw, &vpc.id, false)
        .unwrap();
    w.cp.delete_internet_gateway(a, &igw, false).unwrap();
    w.cp.delete_vpc(a, &vpc.id, false).unwrap();
    assert!(w.cp.default_vpc(a).unwrap().is_none());
    // Its default group and main table went with it.
    let (groups, _) =
        w.cp.describe_security_groups(a, &[], &[], &none(), &all())
            .unwrap();
    assert!(groups.is_empty());
    assert!(w
        .cp
        .describe_route_tables(a, &[], &none(), &all())
        .unwrap()
        .0
        .is_empty());
    // No default VPC: launching without a subnet and creating a group without a VPC say so.
    assert!(matches!(
        w.run(a, 1, None, &[]),
        Err(Error::VpcIdNotSpecified(_))
    ));
    assert!(matches!(
        w.group(a, None, "web"),
        Err(Error::VpcIdNotSpecified(_))
    ));
    // A new control plane over the same store (a restart) does not bring it back.
    let again = ControlPlane::new(
        w.cp.db.clone(),
        w.cp.agent.clone(),
        ControlConfig::new("us-east-1", "http://127.0.0.1:1"),
    );
    assert!(again.default_vpc(a).unwrap().is_none());
    // CreateDefaultVpc does, with fresh subnets, gateway and route.
    assert!(matches!(
        w.cp.create_default_vpc(a, true),
        Err(Error::DryRunOperation)
    ));
    assert!(w.cp.default_vpc(a).unwrap().is_none());
    let (fresh, _) = w.cp.create_default_vpc(a, false).unwrap();
    assert!(fresh.is_default);
    assert_eq!(w.cp.default_vpc(a).unwrap().unwrap().id, fresh.id);
    assert_eq!(
        w.cp.describe_subnets(a, &[], &filters(&[("vpc-id", fresh.id.as_str())]), &all())
            .unwrap()
            .0
            .len(),
        6
    );
    w.run(a, 1, None, &[]).unwrap();
}

#[test]
fn vpc_validation_and_dependencies() {
    let w = world();
    let a = &w.a;
    let create = |cidr: &str| {
        w.cp.create_vpc(
            a,
            &CreateVpcInput {
                cidr_block: Some(cidr.into()),
                ..Default::default()
            },
            false,
        )
    };
    assert!(matches!(
        create("10.0.0.0/15"),
        Err(Error::InvalidVpcRange(_))
    ));
    assert!(matches!(
        create("10.0.0.0/29"),
        Err(Error::InvalidVpcRange(_))
    ));
    assert!(matches!(
        create("10.0.0.1/16"),
        Err(Error::InvalidParameterValue(_))
    ));
    assert!(matches!(
        create("banana"),
        Err(Error::InvalidParameterValue(_))
    ));
    assert!(matches!(
        w.cp.create_vpc(a, &CreateVpcInput::default(), false),
        Err(Error::MissingParameter(_))
    ));
    // Overlapping VPCs are allowed.
    let v1 = w.vpc(a, "10.0.0.0/16");
    let v2 = w.vpc(a, "10.0.0.0/16");
    assert_ne!(v1, v2);
    // DryRun validates and creates nothing.
    let dry = w.cp.create_vpc(
        a,
        &CreateVpcInput {
            cidr_block: Some("10.9.0.0/16".into()),
            ..Default::default()
        },
        true,
    );
    assert!(matches!(dry, Err(Error::DryRunOperation)));
    assert_eq!(
        w.cp.describe_vpcs(a, &[], &none(), &all()).unwrap().0.len(),
        3
    );
    // A new VPC has a default group and a main table of its own.
    let own = filters(&[("vpc-id", v1.as_str())]);
    let (groups, _) =
        w.cp.describe_security_groups(a, &[], &[], &own, &all())
            .unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].group.name, "default");
    assert!(matches!(
        w.cp.delete_security_group(a, &GroupSelector::Id(groups[0].group.id.clone()), false),
        Err(Error::CannotDelete(_))
    ));
    // Each dependency blocks DeleteVpc until it is gone.
    let subnet = w.subnet(a, &v1, "10.0.1.0/24").unwrap();
    assert!(matches!(
        w.cp.delete_vpc(a, &v1, false),
        Err(Error::DependencyViolation(_))
    ));
    w.cp.delete_subnet(a, &subnet, false).unwrap();
    let sg = w.group(a, Some(&v1), "web").unwrap();
    assert!(matches!(
        w.cp.delete_vpc(a, &v1, false),
        Err(Error::DependencyViolation(_))
    ));
    w.cp.delete_security_group(a, &GroupSelector::Id(sg), false)
        .unwrap();
    let rtb = w.cp.create_route_table(a, &v1, None, &[], false).unwrap();
    assert!(matches!(
        w.cp.delete_vpc(a, &v1, false),
        Err(Error::DependencyViolation(_))
    ));
    w.cp.delete_route_table(a, &rtb.table.id, false).unwrap();
    let (igw, _) = w.cp.create_internet_gateway(a, &[], false).unwrap();
    w.cp.attach_internet_gateway(a, &igw.id, &v1, false)
        .unwrap();
    assert!(matches!(
        w.cp.delete_vpc(a, &v1, false),
        Err(Error::DependencyViolation(_))
    ));
    w.cp.detach_internet_gateway(a, &igw.id, &v1, false)
        .unwrap();
    assert!(matches!(
        w.cp.delete_vpc(a, &v1, true),
        Err(Error::DryRunOperation)
    ));
    w.cp.delete_vpc(a, &v1, false).unwrap();
    assert!(matches!(
        w.cp.delete_vpc(a, &v1, false),
        Err(Error::NotFound {
            kind: ResourceKind::Vpc,
            ..
        })
    ));
    // Attributes.
    w.cp.modify_vpc_attribute(a, &v2, VpcAttribute::EnableDnsHostnames, true, false)
        .unwrap();
    assert!(w.cp.vpc(a, &v2).unwrap().enable_dns_hostnames);
    w.cp.modify_vpc_attribute(a, &v2, VpcAttribute::EnableDnsSupport, false, true)
        .unwrap_err();
    assert!(w.cp.vpc(a, &v2).unwrap().enable_dns_support);
}

#[test]
fn subnet_ranges_conflicts_and_filters() {
    let w = world();
    let a = &w.a;
    let vpc = w.vpc(a, "10.1.0.0/16");
    for (cidr, is_range) in [
        ("10.2.0.0/24", true),
        ("10.1.0.0/29", true),
        ("10.0.0.0/8", true),
        ("10.1.0.7/24", false),
    ] {
        let e = w.subnet(a, &vpc, cidr).unwrap_err();
        if is_range {
            assert!(matches!(e, Error::InvalidSubnetRange(_)), "{cidr}: {e:?}");
        } else {
            assert!(
                matches!(e, Error::InvalidParameterValue(_)),
                "{cidr}: {e:?}"
            );
        }
    }
    let whole = w.subnet(a, &vpc, "10.1.0.0/16").unwrap();
    assert!(matches!(
        w.subnet(a, &vpc, "10.1.5.0/24"),
        Err(Error::InvalidSubnetConflict(_))
    ));
    w.cp.delete_subnet(a, &whole, false).unwrap();
    let s1 = w.subnet(a, &vpc, "10.1.1.0/24").unwrap();
    let zone_b =
        w.cp.create_subnet(
            a,
            &CreateSubnetInput {
                vpc_id: Some(vpc.clone()),
                cidr_block: Some("10.1.2.0/28".into()),
                availability_zone: Some("us-east-1b".into()),
                tag_specs: vec![TagSpec {
                    resource_type: "subnet".into(),
                    tags: vec![("Name".into(), "small".into())],
                }],
                ..Default::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(zone_b.available_ips, 11);
    assert!(matches!(
        w.cp.create_subnet(
            a,
            &CreateSubnetInput {
                vpc_id: Some(vpc.clone()),
                cidr_block: Some("10.1.3.0/24".into()),
                availability_zone: Some("mars-1a".into()),
                ..Default::default()
            },
            false,
        ),
        Err(Error::InvalidParameterValue(_))
    ));
    let by = |pairs: &[(&str, &str)]| {
        w.cp.describe_subnets(a, &[], &filters(pairs), &all())
            .unwrap()
            .0
            .into_iter()
            .map(|s| s.subnet.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(by(&[("vpc-id", vpc.as_str())]).len(), 2);
    assert_eq!(
        by(&[
            ("vpc-id", vpc.as_str()),
            ("availability-zone", "us-east-1a")
        ]),
        vec![s1.clone()]
    );
    assert_eq!(by(&[("tag:Name", "small")]), vec![zone_b.subnet.id.clone()]);
    assert_eq!(by(&[("cidr-block", "10.1.1.0/24")]), vec![s1.clone()]);
    // us-east-1 has six zones, each with its default subnet.
    assert_eq!(by(&[("default-for-az", "true")]).len(), 6);
    assert_eq!(by(&[("available-ip-address-count", "11")]).len(), 1);
    assert!(matches!(
        w.cp.describe_subnets(a, &[parsed("subnet-0123456789abcdef0")], &none(), &all()),
        Err(Error::NotFound {
            kind: ResourceKind::Subnet,
            ..
        })
    ));
    w.cp.modify_subnet_map_public_ip(a, &s1, true, false)
        .unwrap();
    let (got, _) =
        w.cp.describe_subnets(a, std::slice::from_ref(&s1), &none(), &all())
            .unwrap();
    assert!(got[0].subnet.map_public_ip_on_launch);
}

#[test]
fn instances_take_addresses_and_block_their_subnet() {
    let mut w = world();
    let a = w.a.clone();
    let vpc = w.vpc(&a, "10.5.0.0/16");
    let small = w.subnet(&a, &vpc, "10.5.0.0/28").unwrap();
    let sg = w.group(&a, Some(&vpc), "app").unwrap();
    let ids = w.run(&a, 3, Some(&small), &[&sg]).unwrap();
    // Addresses go out lowest first, in launch index order.
    let mut launched: Vec<_> = ids.iter().map(|i| w.cp.instance(&a, i).unwrap()).collect();
    launched.sort_by_key(|i| i.launch_index);
    let ids: Vec<InstanceId> = launched.iter().map(|i| i.id.clone()).collect();
    let addrs: Vec<String> = launched
        .into_iter()
        .map(|i| i.private_ip.unwrap())
        .collect();
    assert_eq!(addrs, vec!["10.5.0.4", "10.5.0.5", "10.5.0.6"]);
    let inst = w.cp.instance(&a, &ids[0]).unwrap();
    assert_eq!(inst.vpc_id.unwrap(), vpc);
    assert_eq!(inst.security_groups[0].name, "app");
    let avail = |w: &World| {
        w.cp.describe_subnets(&a, std::slice::from_ref(&small), &none(), &all())
            .unwrap()
            .0[0]
            .available_ips
    };
    assert_eq!(avail(&w), 11 - 3);
    // Eleven usable addresses: asking for nine more than remain fails as a whole.
    assert!(matches!(
        w.run(&a, 9, Some(&small), &[]),
        Err(Error::InsufficientFreeAddressesInSubnet(_))
    ));
    assert_eq!(avail(&w), 8);
    // The subnet and the group are in use.
    assert!(matches!(
        w.cp.delete_subnet(&a, &small, false),
        Err(Error::DependencyViolation(_))
    ));
    assert!(matches!(
        w.cp.delete_security_group(&a, &GroupSelector::Id(sg.clone()), false),
        Err(Error::DependencyViolation(_))
    ));
    // Terminated instances give their addresses back, and the next launch reuses the lowest.
    w.settle();
    w.cp.terminate_instances(&a, &ids[..1], false).unwrap();
    w.settle();
    assert_eq!(
        w.cp.instance(&a, &ids[0]).unwrap().state,
        InstanceState::Terminated
    );
    assert_eq!(avail(&w), 9);
    let again = w.run(&a, 1, Some(&small), &[]).unwrap();
    let reused = w.cp.instance(&a, &again[0]).unwrap();
    assert_eq!(reused.private_ip.as_deref(), Some("10.5.0.4"));
    assert_eq!(reused.security_groups[0].name, "default");
    w.cp.terminate_instances(
        &a,
        &[ids[1].clone(), ids[2].clone(), again[0].clone()],
        false,
    )
    .unwrap();
    w.settle();
    w.cp.delete_security_group(&a, &GroupSelector::Id(sg), false)
        .unwrap();
    w.cp.delete_subnet(&a, &small, false).unwrap();
}

#[test]
fn launch_network_validation() {
    let w = world();
    let a = &w.a;
    let vpc = w.vpc(a, "10.6.0.0/16");
    let subnet = w.subnet(a, &vpc, "10.6.1.0/24").unwrap();
    let other_vpc_group = w.group(a, None, "in-default").unwrap();
    assert!(matches!(
        w.run(a, 1, Some(&subnet), &[&other_vpc_group]),
        Err(Error::InvalidParameter(_))
    ));
    assert!(matches!(
        w.run(a, 1, Some(&parsed("subnet-0123456789abcdef0")), &[]),
        Err(Error::NotFound {
            kind: ResourceKind::Subnet,
            ..
        })
    ));
    assert!(matches!(
        w.run(a, 1, None, &[&parsed("sg-0123456789abcdef0")]),
        Err(Error::NotFound {
            kind: ResourceKind::SecurityGroup,
            ..
        })
    ));
    // By name, in the subnet's VPC.
    let input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(1),
        max_count: Some(1),
        subnet_id: Some(subnet.clone()),
        security_group_names: vec!["in-default".into()],
        ..Default::default()
    };
    assert!(matches!(
        w.cp.run_instances(a, &input, false),
        Err(Error::NotFoundWithMessage {
            kind: ResourceKind::SecurityGroup,
            ..
        })
    ));
    // The default subnet of the chosen zone.
    let input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(1),
        max_count: Some(1),
        availability_zone: Some("us-east-1c".into()),
        ..Default::default()
    };
    let r = w.cp.run_instances(a, &input, false).unwrap();
    let i = &r.instances[0].0;
    assert_eq!(i.private_ip.as_deref(), Some("172.31.32.4"));
    assert_eq!(i.availability_zone, "us-east-1c");
}

#[test]
fn security_group_rules() {
    let w = world();
    let a = &w.a;
    assert!(matches!(
        w.group(a, None, "default"),
        Err(Error::InvalidGroupReserved(_))
    ));
    assert!(matches!(
        w.group(a, None, "sg-web"),
        Err(Error::InvalidParameterValue(_))
    ));
    assert!(matches!(
        w.group(a, None, "naïve"),
        Err(Error::InvalidParameterValue(_))
    ));
    let web = w.group(a, None, "web").unwrap();
    assert!(matches!(
        w.group(a, None, "web"),
        Err(Error::InvalidGroupDuplicate(_))
    ));
    // The same name in another VPC is fine.
    let vpc = w.vpc(a, "10.7.0.0/16");
    let web2 = w.group(a, Some(&vpc), "web").unwrap();
    let id = |g: &SecurityGroupId| GroupSelector::Id(g.clone());
    let added =
        w.cp.authorize_security_group(
            a,
            &id(&web),
            false,
            &[tcp(22, "10.0.0.0/8"), tcp(443, "0.0.0.0/0")],
            &[],
            false,
        )
        .unwrap();
    assert_eq!(added.len(), 2);
    assert!(matches!(
        w.cp.authorize_security_group(a, &id(&web), false, &[tcp(22, "10.0.0.0/8")], &[], false),
        Err(Error::InvalidPermissionDuplicate(_))
    ));
    // A duplicate inside one request, and a bad value, add nothing at all.
    assert!(matches!(
        w.cp.authorize_security_group(
            a,
            &id(&web),
            false,
            &[tcp(80, "0.0.0.0/0"), tcp(80, "0.0.0.0/0")],
            &[],
            false
        ),
        Err(Error::InvalidPermissionDuplicate(_))
    ));
    assert!(matches!(
        w.cp.authorize_security_group(
            a,
            &id(&web),
            false,
            &[tcp(81, "0.0.0.0/0"), tcp(82, "300.0.0.0/0")],
            &[],
            false
        ),
        Err(Error::InvalidParameterValue(_))
    ));
    let count = |g: &SecurityGroupId| {
        w.cp.describe_security_group_rules(a, &[], &filters(&[("group-id", g.as_str())]), &all())
            .unwrap()
            .0
            .len()
    };
    assert_eq!(count(&web), 3, "two ingress rules and the default egress");
    // Group references: same VPC only.
    assert!(matches!(
        w.cp.authorize_security_group(a, &id(&web), false, &[from_group(&web2)], &[], false),
        Err(Error::NotFoundWithMessage {
            kind: ResourceKind::SecurityGroup,
            ..
        })
    ));
    let db = w.group(a, None, "db").unwrap();
    w.cp.authorize_security_group(a, &id(&db), false, &[from_group(&web)], &[], false)
        .unwrap();
    assert!(matches!(
        w.cp.delete_security_group(a, &id(&web), false),
        Err(Error::DependencyViolation(_))
    ));
    // Revoke by permission: missing ones refuse the whole call.
    assert!(matches!(
        w.cp.revoke_security_group(
            a,
            &id(&web),
            false,
            &[tcp(22, "10.0.0.0/8"), tcp(23, "10.0.0.0/8")],
            &[],
            false
        ),
        Err(Error::InvalidPermissionNotFound(_))
    ));
    assert_eq!(count(&web), 3);
    let gone =
        w.cp.revoke_security_group(a, &id(&web), false, &[tcp(22, "10.0.0.0/8")], &[], false)
            .unwrap();
    assert_eq!(gone.len(), 1);
    // Revoke by id: the rule must be in that group and direction.
    let https = added[1].0.id.clone();
    assert!(matches!(
        w.cp.revoke_security_group(a, &id(&web), true, &[], std::slice::from_ref(&https), false),
        Err(Error::NotFound {
            kind: ResourceKind::SecurityGroupRule,
            ..
        })
    ));
    // Modify: the rule keeps its id and takes the new definition.
    w.cp.modify_security_group_rules(
        a,
        &web,
        &[RuleUpdate {
            protocol: Some("tcp".into()),
            from_port: Some(8443),
            to_port: Some(8443),
            cidr_ipv4: Some("192.168.0.0/16".into()),
            description: Some("alt https".into()),
            ..RuleUpdate::of(https.clone())
        }],
        false,
    )
    .unwrap();
    let (rules, _) =
        w.cp.describe_security_group_rules(a, std::slice::from_ref(&https), &none(), &all())
            .unwrap();
    assert_eq!(rules[0].0.from_port, Some(8443));
    assert_eq!(
        rules[0].0.peer,
        RulePeer::Ipv4 {
            cidr: "192.168.0.0/16".into()
        }
    );
    w.cp.revoke_security_group(a, &id(&web), false, &[], &[https], false)
        .unwrap();
    // The db group's rule referencing web goes; then web can go.
    w.cp.revoke_security_group(a, &id(&db), false, &[from_group(&web)], &[], false)
        .unwrap();
    assert!(matches!(
        w.cp.delete_security_group(a, &id(&web), true),
        Err(Error::DryRunOperation)
    ));
    w.cp.delete_security_group(a, &GroupSelector::Name("web".into()), false)
        .unwrap();
    assert!(matches!(
        w.cp.delete_security_group(a, &id(&web), false),
        Err(Error::NotFound {
            kind: ResourceKind::SecurityGroup,
            ..
        })
    ));
    // The rule limit per direction.
    let many: Vec<IpPermissionInput> = (1..=60).map(|p| tcp(p, "0.0.0.0/0")).collect();
    w.cp.authorize_security_group(a, &id(&db), false, &many[..59], &[], false)
        .unwrap();
    assert!(matches!(
        w.cp.authorize_security_group(
            a,
            &id(&db),
            false,
            &[tcp(1000, "0.0.0.0/0"), tcp(1001, "0.0.0.0/0")],
            &[],
            false
        ),
        Err(Error::RulesPerSecurityGroupLimitExceeded(_))
    ));
}

#[test]
fn routes_and_associations() {
    let w = world();
    let a = &w.a;
    let vpc = w.vpc(a, "10.8.0.0/16");
    let subnet = w.subnet(a, &vpc, "10.8.1.0/24").unwrap();
    let rtb =
        w.cp.create_route_table(a, &vpc, Some("tok"), &[], false)
            .unwrap();
    let rtb_id = rtb.table.id.clone();
    // ClientToken: the retry answers the same table.
    let again =
        w.cp.create_route_table(a, &vpc, Some("tok"), &[], false)
            .unwrap();
    assert_eq!(again.table.id, rtb.table.id);
    let (igw, _) = w.cp.create_internet_gateway(a, &[], false).unwrap();
    let igw_id = igw.id.clone();
    // Not attached to the table's VPC yet.
    assert!(matches!(
        w.cp.create_route(a, &rtb_id, "0.0.0.0/0", &igw_id, false),
        Err(Error::InvalidParameterValue(_))
    ));
    w.cp.attach_internet_gateway(a, &igw_id, &vpc, false)
        .unwrap();
    assert!(matches!(
        w.cp.attach_internet_gateway(a, &igw_id, &vpc, false),
        Err(Error::ResourceAlreadyAssociated(_))
    ));
    w.cp.create_route(a, &rtb_id, "0.0.0.0/0", &igw_id, false)
        .unwrap();
    assert!(matches!(
        w.cp.create_route(a, &rtb_id, "0.0.0.0/0", &igw_id, false),
        Err(Error::RouteAlreadyExists(_))
    ));
    assert!(matches!(
        w.cp.create_route(a, &rtb_id, "10.8.3.0/24", &igw_id, false),
        Err(Error::InvalidParameterValue(_))
    ));
    let assoc =
        w.cp.associate_route_table(a, &rtb_id, &subnet, false)
            .unwrap();
    assert!(matches!(
        w.cp.associate_route_table(a, &rtb_id, &subnet, false),
        Err(Error::ResourceAlreadyAssociated(_))
    ));
    assert!(matches!(
        w.cp.delete_route_table(a, &rtb_id, false),
        Err(Error::DependencyViolation(_))
    ));
    // Detaching the gateway turns its routes into blackholes.
    w.cp.detach_internet_gateway(a, &igw_id, &vpc, false)
        .unwrap();
    assert!(matches!(
        w.cp.detach_internet_gateway(a, &igw_id, &vpc, false),
        Err(Error::GatewayNotAttached(_))
    ));
    let (tables, _) =
        w.cp.describe_route_tables(a, std::slice::from_ref(&rtb_id), &none(), &all())
            .unwrap();
    assert_eq!(tables[0].route_states, vec!["active", "blackhole"]);
    let (by_state, _) =
        w.cp.describe_route_tables(a, &[], &filters(&[("route.state", "blackhole")]), &all())
            .unwrap();
    assert_eq!(by_state.len(), 1);
    assert!(matches!(
        w.cp.delete_route(a, &rtb_id, "10.8.0.0/16", false),
        Err(Error::InvalidParameterValue(_))
    ));
    assert!(matches!(
        w.cp.delete_route(a, &rtb_id, "1.0.0.0/8", false),
        Err(Error::InvalidRouteNotFound(_))
    ));
    w.cp.delete_route(a, &rtb_id, "0.0.0.0/0", false).unwrap();
    // The main association cannot be removed; the subnet's can.
    let (main, _) =
        w.cp.describe_route_tables(
            a,
            &[],
            &filters(&[("vpc-id", vpc.as_str()), ("association.main", "true")]),
            &all(),
        )
        .unwrap();
    let main_assoc = main[0].table.associations[0].id.clone();
    assert!(matches!(
        w.cp.disassociate_route_table(a, &main_assoc, false),
        Err(Error::InvalidParameterValue(_))
    ));
    assert!(matches!(
        w.cp.delete_route_table(a, &main[0].table.id, false),
        Err(Error::DependencyViolation(_))
    ));
    w.cp.disassociate_route_table(a, &assoc, false).unwrap();
    assert!(matches!(
        w.cp.disassociate_route_table(a, &assoc, false),
        Err(Error::NotFound {
            kind: ResourceKind::RouteTableAssociation,
            ..
        })
    ));
    w.cp.delete_route_table(a, &rtb_id, false).unwrap();
}

#[test]
fn accounts_cannot_see_or_touch_each_others_networks() {
    let w = world();
    let (a, b) = (&w.a, &w.b);
    let vpc = w.vpc(a, "10.9.0.0/16");
    let subnet = w.subnet(a, &vpc, "10.9.1.0/24").unwrap();
    let sg = w.group(a, Some(&vpc), "secret").unwrap();
    let (rules, _) =
        w.cp.describe_security_group_rules(a, &[], &filters(&[("group-id", sg.as_str())]), &all())
            .unwrap();
    let rule = rules[0].0.id.clone();
    let (igw, _) = w.cp.create_internet_gateway(a, &[], false).unwrap();
    let rtb = w.cp.create_route_table(a, &vpc, None, &[], false).unwrap();

    // Invisible: by id they do not exist, listings never show them.
    let vpc_nf = |e: Error| {
        matches!(
            e,
            Error::NotFound {
                kind: ResourceKind::Vpc,
                ..
            }
        )
    };
    assert!(vpc_nf(
        w.cp.describe_vpcs(b, std::slice::from_ref(&vpc), &none(), &all())
            .unwrap_err()
    ));
    assert!(w
        .cp
        .describe_vpcs(b, &[], &none(), &all())
        .unwrap()
        .0
        .iter()
        .all(|(v, _)| v.account_id == b.account));
    assert!(w
        .cp
        .describe_subnets(b, std::slice::from_ref(&subnet), &none(), &all())
        .is_err());
    assert!(w
        .cp
        .describe_security_groups(b, std::slice::from_ref(&sg), &[], &none(), &all())
        .is_err());
    assert!(w
        .cp
        .describe_security_group_rules(b, std::slice::from_ref(&rule), &none(), &all())
        .is_err());
    assert!(w
        .cp
        .describe_security_group_rules(b, &[], &filters(&[("group-id", sg.as_str())]), &all())
        .unwrap()
        .0
        .is_empty());
    assert!(w
        .cp
        .describe_internet_gateways(b, std::slice::from_ref(&igw.id), &none(), &all())
        .is_err());
    assert!(w
        .cp
        .describe_route_tables(b, std::slice::from_ref(&rtb.table.id), &none(), &all())
        .is_err());

    // Untouchable.
    assert!(vpc_nf(w.cp.delete_vpc(b, &vpc, false).unwrap_err()));
    assert!(w
        .cp
        .modify_vpc_attribute(b, &vpc, VpcAttribute::EnableDnsHostnames, true, false)
        .is_err());
    assert!(w.cp.delete_subnet(b, &subnet, false).is_err());
    assert!(w.subnet(b, &vpc, "10.9.2.0/24").is_err());
    assert!(w.group(b, Some(&vpc), "mine").is_err());
    let sel = GroupSelector::Id(sg.clone());
    assert!(w.cp.delete_security_group(b, &sel, false).is_err());
    assert!(w
        .cp
        .authorize_security_group(b, &sel, false, &[tcp(22, "0.0.0.0/0")], &[], false)
        .is_err());
    assert!(w
        .cp
        .revoke_security_group(b, &sel, true, &[], std::slice::from_ref(&rule), false)
        .is_err());
    assert!(w
        .cp
        .attach_internet_gateway(b, &igw.id, &vpc, false)
        .is_err());
    assert!(w.cp.create_route_table(b, &vpc, None, &[], false).is_err());
    assert!(w.run(b, 1, Some(&subnet), &[]).is_err());
    assert!(w
        .cp
        .create_tags(b, &[vpc.to_string()], &[("k".into(), "v".into())], false)
        .is_err());

    // B cannot reference A's group in its own rules, by id or with A's account id.
    let b_group = w.group(b, None, "b-web").unwrap();
    let b_sel = GroupSelector::Id(b_group.clone());
    assert!(matches!(
        w.cp.authorize_security_group(b, &b_sel, false, &[from_group(&sg)], &[], false),
        Err(Error::NotFound {
            kind: ResourceKind::SecurityGroup,
            ..
        })
    ));
    let with_owner = IpPermissionInput {
        protocol: Some("-1".into()),
        groups: vec![GroupPairInput {
            group_id: Some(sg.clone()),
            user_id: Some(a.account.to_string()),
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(w
        .cp
        .authorize_security_group(b, &b_sel, false, &[with_owner], &[], false)
        .is_err());
    // Nothing of A changed.
    let (mine, _) =
        w.cp.describe_security_group_rules(a, &[], &filters(&[("group-id", sg.as_str())]), &all())
            .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        w.cp.describe_vpcs(a, &[vpc], &none(), &all())
            .unwrap()
            .0
            .len(),
        1
    );
}

#[test]
fn network_resources_take_tags() {
    let w = world();
    let a = &w.a;
    let vpc = w.vpc(a, "10.10.0.0/16");
    let subnet = w.subnet(a, &vpc, "10.10.1.0/24").unwrap();
    let sg = w.group(a, Some(&vpc), "tagged").unwrap();
    let (igw, _) = w.cp.create_internet_gateway(a, &[], false).unwrap();
    let rtb = w.cp.create_route_table(a, &vpc, None, &[], false).unwrap();
    let (dopt, _) = w.cp.describe_dhcp_options(a, &[], &none(), &all()).unwrap();
    let (rules, _) =
        w.cp.describe_security_group_rules(a, &[], &filters(&[("group-id", sg.as_str())]), &all())
            .unwrap();
    let ids = vec![
        vpc.to_string(),
        subnet.to_string(),
        sg.to_string(),
        rules[0].0.id.to_string(),
        igw.id.to_string(),
        rtb.table.id.to_string(),
        dopt[0].0.id.to_string(),
    ];
    w.cp.create_tags(a, &ids, &[("Env".into(), "test".into())], false)
        .unwrap();
    let (tags, _) = w.cp.describe_tags(a, &none(), &all()).unwrap();
    let mut types: Vec<String> = tags.iter().map(|t| t.resource_type.clone()).collect();
    types.sort();
    assert_eq!(
        types,
        vec![
            "dhcp-options",
            "internet-gateway",
            "route-table",
            "security-group",
            "security-group-rule",
            "subnet",
            "vpc"
        ]
    );
    assert!(matches!(
        w.cp.create_tags(
            a,
            &["vpc-0123456789abcdef0".into()],
            &[("k".into(), "v".into())],
            false
        ),
        Err(Error::NotFound {
            kind: ResourceKind::Vpc,
            ..
        })
    ));
    // Deleting a resource deletes its tags.
    w.cp.delete_route_table(a, &rtb.table.id, false).unwrap();
    let (tags, _) = w.cp.describe_tags(a, &none(), &all()).unwrap();
    assert_eq!(tags.len(), 6);
    // TagSpecifications of another resource type are refused.
    assert!(matches!(
        w.cp.create_vpc(
            a,
            &CreateVpcInput {
                cidr_block: Some("10.11.0.0/16".into()),
                tag_specs: vec![TagSpec {
                    resource_type: "subnet".into(),
                    tags: vec![("a".into(), "b".into())],
                }],
                ..Default::default()
            },
            false
        ),
        Err(Error::InvalidParameterValue(_))
    ));
}
