//! Primary network interfaces on a real store with the simulated host agent: the VM
//! specs' `nics`, the metadata source, instances from before primary interfaces were
//! stored, and launches that fail leaving nothing behind.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strato_agent::Agent;
use strato_agent_api::{AgentClient, HostNetSpec, MetadataSource, VmReport, VmSpec};
use strato_common::filter::FilterSet;
use strato_common::{Error, InstanceId, SubnetId};
use strato_control::instances::{MetadataOptionsChange, RunInstancesInput};
use strato_control::net::interfaces::CreateInterface;
use strato_control::net::subnets::CreateSubnetInput;
use strato_control::net::vpcs::CreateVpcInput;
use strato_control::page::PageRequest;
use strato_control::tags::TagSpec;
use strato_control::{accounts, Caller, ControlConfig, ControlPlane};
use strato_drivers::sim::{SimConfig, SimDriver};
use strato_drivers::Hypervisor;
use strato_store::{Db, InstanceState, NetworkInterface};
use tokio::sync::mpsc::UnboundedReceiver;

const IMAGE: &str = strato_control::images::DEFAULT_IMAGE_ID;

/// The simulated agent, with every spec the control plane sends it recorded.
struct Recording {
    inner: Arc<Agent>,
    applied: Mutex<Vec<VmSpec>>,
    synced: Mutex<Vec<VmSpec>>,
}

impl AgentClient for Recording {
    fn host(&self) -> &str {
        self.inner.host()
    }
    fn apply(&self, spec: VmSpec) {
        self.applied.lock().unwrap().push(spec.clone());
        self.inner.apply(spec);
    }
    fn sync(&self, specs: Vec<VmSpec>) {
        *self.synced.lock().unwrap() = specs.clone();
        self.inner.sync(specs);
    }
    fn console(&self, id: &InstanceId) -> Option<Vec<u8>> {
        self.inner.console(id)
    }
    fn screenshot(&self, id: &InstanceId, wake: bool) -> strato_common::Result<Option<Vec<u8>>> {
        self.inner.screenshot(id, wake)
    }
    fn hypervisor_description(&self) -> String {
        self.inner.hypervisor_description()
    }
    fn apply_network(&self, _spec: HostNetSpec) {}
    fn apply_volume(&self, spec: strato_agent_api::VolumeSpec) {
        self.inner.apply_volume(spec);
    }
    fn sync_volumes(&self, specs: Vec<strato_agent_api::VolumeSpec>) {
        self.inner.sync_volumes(specs);
    }
    fn apply_snapshots(
        &self,
        specs: Vec<strato_agent_api::SnapshotSpec>,
        quiesce: Option<(&InstanceId, strato_agent_api::Quiesce)>,
    ) {
        self.inner.apply_snapshots(specs, quiesce);
    }
    fn sync_snapshots(&self, specs: Vec<strato_agent_api::SnapshotSpec>) {
        self.inner.sync_snapshots(specs);
    }
}

struct World {
    _dir: tempfile::TempDir,
    db: Arc<Db>,
    cp: Arc<ControlPlane>,
    agent: Arc<Recording>,
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
    let (inner, reports) = Agent::new("local", driver as Arc<dyn Hypervisor>);
    let agent = Arc::new(Recording {
        inner,
        applied: Mutex::new(vec![]),
        synced: Mutex::new(vec![]),
    });
    let cp = Arc::new(ControlPlane::new(
        db.clone(),
        agent.clone() as Arc<dyn AgentClient>,
        ControlConfig::new("eu-west-1", "http://127.0.0.1:1"),
    ));
    cp.register_builtin_images(None).unwrap();
    let (acct, key) = accounts::create_account(&db, "a", None).unwrap();
    World {
        _dir: dir,
        db,
        cp,
        agent,
        reports,
        a: Caller {
            account: acct.id,
            access_key_id: key.access_key_id,
            region: "eu-west-1".into(),
        },
    }
}

impl World {
    fn settle(&mut self) {
        for _ in 0..10 {
            self.agent.inner.reconcile_all();
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
            image_id: Some(IMAGE.into()),
            min_count: Some(1),
            max_count: Some(1),
            ..input
        };
        self.cp
            .run_instances(&self.a, &input, false)
            .unwrap()
            .instances[0]
            .0
            .id
            .clone()
    }

    /// The interfaces attached to an instance, primary first.
    fn nics(&self, id: &InstanceId) -> Vec<NetworkInterface> {
        let (_, nics, _) = self
            .cp
            .describe_instances_with_interfaces(
                &self.a,
                std::slice::from_ref(id),
                &FilterSet::default(),
                &PageRequest::all(),
            )
            .unwrap();
        nics.of(id.as_str()).iter().map(|n| (**n).clone()).collect()
    }

    fn all_interfaces(&self) -> Vec<NetworkInterface> {
        self.cp
            .describe_network_interfaces(&self.a, &[], &FilterSet::default(), &PageRequest::all())
            .unwrap()
            .0
            .into_iter()
            .map(|i| i.interface)
            .collect()
    }

    fn last_spec(&self, id: &InstanceId) -> VmSpec {
        self.agent
            .applied
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s.instance_id == *id)
            .cloned()
            .expect("a spec was sent")
    }

    fn subnet_cidr(&self, id: &SubnetId) -> String {
        let info = self
            .cp
            .describe_subnets(
                &self.a,
                std::slice::from_ref(id),
                &FilterSet::default(),
                &PageRequest::all(),
            )
            .unwrap()
            .0;
        info[0].subnet.cidr_block.clone()
    }

    fn free_addresses(&self, subnet: &SubnetId) -> u64 {
        self.cp
            .describe_subnets(
                &self.a,
                std::slice::from_ref(subnet),
                &FilterSet::default(),
                &PageRequest::all(),
            )
            .unwrap()
            .0[0]
            .available_ips
    }
}

#[test]
fn specs_carry_the_instances_interfaces() {
    let mut w = world();
    let id = w.launch(RunInstancesInput::default());
    let inst = w.cp.instance(&w.a, &id).unwrap();
    let subnet = inst.subnet_id.clone().unwrap();
    let cidr = w.subnet_cidr(&subnet);
    let nics = w.nics(&id);
    assert_eq!(nics.len(), 1);
    let primary = &nics[0];
    let spec = w.last_spec(&id);
    assert_eq!(spec.nics.len(), 1);
    let nic = &spec.nics[0];
    assert_eq!(nic.interface_id, primary.id.as_str());
    assert_eq!(nic.device_index, 0);
    assert_eq!(nic.mac, primary.mac_address);
    assert_eq!(nic.vpc_id, inst.vpc_id.as_ref().unwrap().as_str());
    assert_eq!(nic.subnet_cidr, cidr);
    assert_eq!(Some(&nic.private_ip), inst.private_ip.as_ref());
    assert_eq!(w.cp.spec_of(&inst), spec);
    w.settle();
    assert_eq!(
        w.cp.instance(&w.a, &id).unwrap().state,
        InstanceState::Running
    );

    // A secondary interface: a new generation naming both, primary first.
    let gen = w.cp.instance(&w.a, &id).unwrap().generation;
    let eni =
        w.cp.create_network_interface(
            &w.a,
            &CreateInterface::in_subnet(subnet.clone()),
            &[],
            false,
        )
        .unwrap()
        .interface;
    let att =
        w.cp.attach_network_interface(&w.a, &eni.id, &id, 1, false)
            .unwrap();
    let spec = w.last_spec(&id);
    assert_eq!(spec.generation, gen + 1);
    let ids: Vec<(&str, u32)> = spec
        .nics
        .iter()
        .map(|n| (n.interface_id.as_str(), n.device_index))
        .collect();
    assert_eq!(ids, vec![(primary.id.as_str(), 0), (eni.id.as_str(), 1)]);
    assert_eq!(spec.nics[1].private_ip, eni.private_ip);
    // The running VM keeps running (it sees the change at its next start).
    w.settle();
    assert_eq!(
        w.cp.instance(&w.a, &id).unwrap().state,
        InstanceState::Running
    );
    assert_eq!(w.cp.instance(&w.a, &id).unwrap().generation, gen + 1);

    // The startup sync sends the same interfaces for every instance.
    let other = w.launch(RunInstancesInput::default());
    w.settle();
    w.cp.sync_agent().unwrap();
    let synced = w.agent.synced.lock().unwrap().clone();
    let by_id = |i: &InstanceId| synced.iter().find(|s| s.instance_id == *i).unwrap().clone();
    assert_eq!(by_id(&id).nics, spec.nics);
    assert_eq!(by_id(&other).nics.len(), 1);
    assert_eq!(
        by_id(&other).nics[0].interface_id,
        w.nics(&other)[0].id.as_str()
    );

    // Detaching: a new generation without it. The primary stays.
    w.cp.detach_network_interface(&w.a, &att, false).unwrap();
    let spec = w.last_spec(&id);
    assert_eq!(spec.generation, gen + 2);
    assert_eq!(spec.nics.len(), 1);
    let primary_att = primary.attachment.as_ref().unwrap().id.clone();
    assert!(matches!(
        w.cp.detach_network_interface(&w.a, &primary_att, false),
        Err(Error::OperationNotPermitted(_))
    ));
    assert!(matches!(
        w.cp.delete_network_interface(&w.a, &primary.id, false),
        Err(Error::NetworkInterfaceInUse(_))
    ));
    w.settle();
    assert_eq!(
        w.cp.instance(&w.a, &id).unwrap().state,
        InstanceState::Running
    );
}

#[test]
fn metadata_finds_the_instance_behind_an_address() {
    let mut w = world();
    let vpc =
        w.cp.create_vpc(
            &w.a,
            &CreateVpcInput {
                cidr_block: Some("10.9.0.0/16".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap()
        .0
        .id;
    let subnet =
        w.cp.create_subnet(
            &w.a,
            &CreateSubnetInput {
                vpc_id: Some(vpc.clone()),
                cidr_block: Some("10.9.1.0/24".into()),
                availability_zone: Some("eu-west-1b".into()),
                ..Default::default()
            },
            false,
        )
        .unwrap()
        .subnet
        .id;
    let key =
        w.cp.create_key_pair(&w.a, "meta-key", Some("ed25519"), None, &[], false)
            .unwrap()
            .pair;
    use base64::Engine;
    let id = w.launch(RunInstancesInput {
        subnet_id: Some(subnet.clone()),
        private_ip_address: Some("10.9.1.20".into()),
        key_name: Some("meta-key".into()),
        user_data: Some(base64::engine::general_purpose::STANDARD.encode("#!/bin/sh\necho hi\n")),
        tag_specs: vec![TagSpec {
            resource_type: "instance".into(),
            tags: vec![("Name".into(), "web".into())],
        }],
        metadata_options: MetadataOptionsChange {
            http_tokens: Some("required".into()),
            hop_limit: Some(2),
            instance_metadata_tags: Some("enabled".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    let ip: Ipv4Addr = "10.9.1.20".parse().unwrap();
    let source: Arc<dyn MetadataSource> = w.cp.clone();
    // Pending already answers.
    let m = source
        .instance_metadata(vpc.as_str(), ip)
        .expect("pending instance");
    assert_eq!(m.instance_id, id.as_str());
    w.settle();
    let m = source
        .instance_metadata(vpc.as_str(), ip)
        .expect("running instance");
    let inst = w.cp.instance(&w.a, &id).unwrap();
    assert_eq!(m.account_id, w.a.account.as_str());
    assert_eq!(m.region, "eu-west-1");
    assert_eq!(m.availability_zone, "eu-west-1b");
    assert_eq!(m.image_id, IMAGE);
    assert_eq!(m.instance_type, inst.instance_type);
    assert_eq!(m.reservation_id, inst.reservation_id.as_str());
    assert_eq!(m.architecture, "x86_64");
    assert_eq!(m.launch_time_ms, inst.launch_time_ms);
    assert_eq!(m.private_ip, "10.9.1.20");
    assert_eq!(m.local_hostname, "ip-10-9-1-20.eu-west-1.compute.internal");
    assert_eq!(m.public_ip, None);
    assert_eq!(m.public_hostname, None);
    assert_eq!(m.security_groups, vec!["default".to_string()]);
    assert_eq!(
        m.public_keys,
        vec![(
            "meta-key".to_string(),
            format!("{} meta-key", key.public_key)
        )]
    );
    assert!(m.public_keys[0].1.starts_with("ssh-ed25519 "));
    assert_eq!(m.user_data.as_deref(), Some(&b"#!/bin/sh\necho hi\n"[..]));
    assert_eq!(m.tags, vec![("Name".to_string(), "web".to_string())]);
    assert!(m.options.enabled && m.options.tokens_required && m.options.tags_enabled);
    assert_eq!(m.options.hop_limit, 2);
    assert_eq!(m.interfaces.len(), 1);
    let primary = &w.nics(&id)[0];
    let nic = &m.interfaces[0];
    assert_eq!(nic.interface_id, primary.id.as_str());
    assert_eq!(nic.device_number, 0);
    assert_eq!(nic.mac, primary.mac_address);
    assert_eq!(nic.private_ip, "10.9.1.20");
    assert_eq!(
        (nic.subnet_id.as_str(), nic.subnet_cidr.as_str()),
        (subnet.as_str(), "10.9.1.0/24")
    );
    assert_eq!(
        (nic.vpc_id.as_str(), nic.vpc_cidr.as_str()),
        (vpc.as_str(), "10.9.0.0/16")
    );
    assert_eq!(nic.security_groups, vec!["default".to_string()]);
    assert_eq!(
        nic.security_group_ids,
        vec![inst.security_groups[0].id.to_string()]
    );
    assert_eq!(nic.owner_id, w.a.account.as_str());
    assert_eq!(nic.local_hostname, m.local_hostname);

    // Not another VPC's address, nor an address nobody holds.
    let default_vpc = w.cp.default_vpc(&w.a).unwrap().unwrap().id.to_string();
    assert!(source.instance_metadata(&default_vpc, ip).is_none());
    assert!(source
        .instance_metadata(vpc.as_str(), "10.9.1.21".parse().unwrap())
        .is_none());
    assert!(source
        .instance_metadata("vpc-0123456789abcdef0", ip)
        .is_none());

    // A secondary interface's address finds the instance too, and is listed second.
    let eni =
        w.cp.create_network_interface(
            &w.a,
            &CreateInterface {
                private_ip: Some("10.9.1.30".into()),
                ..CreateInterface::in_subnet(subnet.clone())
            },
            &[],
            false,
        )
        .unwrap()
        .interface;
    w.cp.attach_network_interface(&w.a, &eni.id, &id, 1, false)
        .unwrap();
    let m2 = source
        .instance_metadata(vpc.as_str(), "10.9.1.30".parse().unwrap())
        .expect("by the secondary address");
    assert_eq!(m2.instance_id, id.as_str());
    let devices: Vec<(u32, &str)> = m2
        .interfaces
        .iter()
        .map(|n| (n.device_number, n.private_ip.as_str()))
        .collect();
    assert_eq!(devices, vec![(0, "10.9.1.20"), (1, "10.9.1.30")]);
    // The available interface answers for nobody once detached.
    let att = eni.id.to_string();
    let att = w
        .all_interfaces()
        .into_iter()
        .find(|n| n.id.as_str() == att)
        .unwrap()
        .attachment
        .unwrap()
        .id;
    w.cp.detach_network_interface(&w.a, &att, false).unwrap();
    assert!(source
        .instance_metadata(vpc.as_str(), "10.9.1.30".parse().unwrap())
        .is_none());

    // An Elastic IP is the instance's and its primary interface's public address.
    let (eip, _) = w.cp.allocate_address(&w.a, None, &[], false).unwrap();
    w.cp.associate_address(
        &w.a,
        &strato_control::net::addresses::AddressRef::Allocation(eip.id.clone()),
        &id,
        None,
        false,
        false,
    )
    .unwrap();
    let m = source.instance_metadata(vpc.as_str(), ip).unwrap();
    assert_eq!(m.public_ip.as_deref(), Some(eip.public_ip.as_str()));
    assert_eq!(
        m.public_hostname.unwrap(),
        format!(
            "ec2-{}.eu-west-1.compute.amazonaws.com",
            eip.public_ip.replace('.', "-")
        )
    );
    assert_eq!(
        m.interfaces[0].public_ip.as_deref(),
        Some(eip.public_ip.as_str())
    );

    // Stopped and terminated instances answer to nothing.
    w.cp.stop_instances(&w.a, std::slice::from_ref(&id), false, false)
        .unwrap();
    w.settle();
    assert_eq!(
        w.cp.instance(&w.a, &id).unwrap().state,
        InstanceState::Stopped
    );
    assert!(source.instance_metadata(vpc.as_str(), ip).is_none());
    w.cp.start_instances(&w.a, std::slice::from_ref(&id), false)
        .unwrap();
    w.settle();
    assert!(source.instance_metadata(vpc.as_str(), ip).is_some());
    w.cp.terminate_instances(&w.a, std::slice::from_ref(&id), false)
        .unwrap();
    w.settle();
    assert_eq!(
        w.cp.instance(&w.a, &id).unwrap().state,
        InstanceState::Terminated
    );
    assert!(source.instance_metadata(vpc.as_str(), ip).is_none());
}

#[test]
fn instances_from_before_primary_interfaces_get_one_once() {
    let mut w = world();
    let id = w.launch(RunInstancesInput::default());
    w.settle();
    let inst = w.cp.instance(&w.a, &id).unwrap();
    let subnet = inst.subnet_id.clone().unwrap();
    let free = w.free_addresses(&subnet);
    // Make it look like an instance of the previous version: no interface, the
    // address held under the instance's own id.
    let eni = w.nics(&id).remove(0);
    w.db.write(|tx| {
        tx.delete_doc::<NetworkInterface>(&w.a.scope(), eni.id.as_str())?;
        assert_eq!(
            tx.move_subnet_addresses(&w.a.scope(), subnet.as_str(), eni.id.as_str(), id.as_str())?,
            1
        );
        Ok(())
    })
    .unwrap();
    assert!(w.nics(&id).is_empty(), "rendered without interfaces");
    assert_eq!(w.cp.spec_of(&inst).nics, vec![]);
    assert_eq!(w.free_addresses(&subnet), free);

    assert_eq!(w.cp.adopt_primary_interfaces().unwrap(), 1);
    assert_eq!(w.cp.adopt_primary_interfaces().unwrap(), 0, "once");
    let nics = w.nics(&id);
    assert_eq!(nics.len(), 1);
    let n = &nics[0];
    assert_ne!(n.id, eni.id);
    assert_eq!(Some(&n.private_ip), inst.private_ip.as_ref());
    assert_eq!(n.subnet_id, subnet);
    assert_eq!(n.groups, inst.security_groups);
    let att = n.attachment.as_ref().unwrap();
    assert!(att.device_index == 0 && att.delete_on_termination);
    assert_eq!(att.attach_time_ms, inst.launch_time_ms);
    assert_eq!(
        w.free_addresses(&subnet),
        free,
        "the address moved, no second one taken"
    );

    // Terminating releases the address once: the count returns to what it was before
    // the instance.
    w.cp.terminate_instances(&w.a, std::slice::from_ref(&id), false)
        .unwrap();
    w.settle();
    assert!(w.all_interfaces().is_empty());
    assert_eq!(w.free_addresses(&subnet), free + 1);
}

#[test]
fn failed_launches_make_no_interfaces() {
    let w = world();
    let id = w.launch(RunInstancesInput::default());
    let inst = w.cp.instance(&w.a, &id).unwrap();
    let taken = inst.private_ip.clone().unwrap();
    let before = w.all_interfaces().len();
    let input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(1),
        max_count: Some(1),
        private_ip_address: Some(taken),
        ..Default::default()
    };
    assert!(matches!(
        w.cp.run_instances(&w.a, &input, false),
        Err(Error::InvalidIpAddressInUse(_))
    ));
    let input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(1),
        max_count: Some(1),
        ..Default::default()
    };
    assert!(matches!(
        w.cp.run_instances(&w.a, &input, true),
        Err(Error::DryRunOperation)
    ));
    assert_eq!(w.all_interfaces().len(), before);
    // DescribeInstances' network-interface filters.
    let eni = w.nics(&id).remove(0);
    let filters = FilterSet::of(&[("network-interface.mac-address", eni.mac_address.as_str())]);
    let (found, nics, _) =
        w.cp.describe_instances_with_interfaces(&w.a, &[], &filters, &PageRequest::all())
            .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(nics.of(id.as_str()), &[std::sync::Arc::new(eni)][..]);
}

#[test]
fn describe_pages_carry_their_interfaces() {
    let w = world();
    let input = RunInstancesInput {
        image_id: Some(IMAGE.into()),
        min_count: Some(7),
        max_count: Some(7),
        ..Default::default()
    };
    let r = w.cp.run_instances(&w.a, &input, false).unwrap();
    assert_eq!(r.instances.len(), 7);
    for (i, _) in &r.instances {
        assert_eq!(r.interfaces.of(i.id.as_str()).len(), 1);
    }
    let subnet = r.instances[0].0.subnet_id.clone().unwrap().to_string();
    let by_subnet = FilterSet::of(&[("network-interface.subnet-id", subnet.as_str())]);
    // Unfiltered (interfaces loaded for the page) and filtered on interfaces (loaded
    // per chunk): both pages of 5 + 2, every instance with its interface.
    for filters in [FilterSet::default(), by_subnet] {
        let mut seen = vec![];
        let mut page = PageRequest::new(Some(5), None, 5, 1000).unwrap();
        loop {
            let (list, nics, next) =
                w.cp.describe_instances_with_interfaces(&w.a, &[], &filters, &page)
                    .unwrap();
            for (i, _) in &list {
                let n = nics.of(i.id.as_str());
                assert_eq!(n.len(), 1);
                assert_eq!(Some(&n[0].private_ip), i.private_ip.as_ref());
                seen.push(i.id.to_string());
            }
            match next {
                Some(t) => page = PageRequest::new(Some(5), Some(&t), 5, 1000).unwrap(),
                None => break,
            }
        }
        let mut want: Vec<String> = r.instances.iter().map(|(i, _)| i.id.to_string()).collect();
        want.sort();
        assert_eq!(seen, want);
    }
}
