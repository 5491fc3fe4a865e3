//! What a host's dataplane should look like, derived from the records.
//!
//! [`host_net_spec`] turns the API's resources into the agent's [`HostNetSpec`]: one
//! entry per VPC with live instances on the host, one port per attached interface,
//! with the interface's security groups flattened into rules whose group references
//! are resolved to the member interfaces' addresses. The control plane sends the whole
//! spec again after every change that can shape packets ([`ControlPlane::network_changed`]);
//! the agent diffs it against what is applied.

use crate::ControlPlane;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use strato_agent_api::{HostNetSpec, PortSpec, RuleSpec, VpcNetSpec};
use strato_common::Result;
use strato_domain::Scope;
use strato_store::{
    Instance, InternetGateway, NetworkInterface, ReadTx, RouteTable, RouteTarget, RulePeer,
    SecurityGroupRule, Subnet,
};

impl ControlPlane {
    /// Marks this host's dataplane as out of date: a background thread recomputes it
    /// and hands it to the agent, so the request that changed something does not pay
    /// for it, and a burst of changes costs one recomputation. Nothing happens when
    /// the agent builds no dataplane (the simulator).
    pub fn network_changed(&self) {
        if !self.agent.wants_network() {
            return;
        }
        let signal = self.net_signal.get_or_init(|| {
            let signal = Arc::new(Signal::default());
            let (db, agent, s) = (self.db.clone(), self.agent.clone(), signal.clone());
            std::thread::Builder::new()
                .name("strato-netspec".into())
                .spawn(move || loop {
                    s.wait();
                    match db.read(|tx| host_net_spec(tx, agent.host())) {
                        Ok(spec) => agent.apply_network(spec),
                        Err(e) => {
                            tracing::error!(error = %e, "could not compute the host's dataplane")
                        }
                    }
                })
                .expect("spawning the network spec thread");
            signal
        });
        signal.raise();
    }
}

/// A "something changed" flag a thread waits on; raising it twice before the thread
/// wakes counts once.
#[derive(Default)]
pub(crate) struct Signal {
    dirty: Mutex<bool>,
    cv: Condvar,
}

impl Signal {
    fn raise(&self) {
        *self.dirty.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_one();
    }

    /// Waits until raised, and lowers it.
    fn wait(&self) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        while !*dirty {
            dirty = self.cv.wait(dirty).unwrap_or_else(|p| p.into_inner());
        }
        *dirty = false;
    }
}

/// The hostname EC2 gives an address: `ip-10-0-1-10`.
/// A region's private DNS domain, as EC2 names it.
pub fn private_domain(region: &str) -> String {
    if region == "us-east-1" {
        "ec2.internal".into()
    } else {
        format!("{region}.compute.internal")
    }
}

pub fn hostname_of(ip: &str) -> String {
    format!("ip-{}", ip.replace('.', "-"))
}

/// The desired dataplane of `host`: every VPC with a live instance there.
pub fn host_net_spec(tx: &ReadTx, host: &str) -> Result<HostNetSpec> {
    // Not terminated, by the query's own condition.
    let instances: Vec<Instance> = tx.instances_on_host(host)?;
    let mut accounts: Vec<Scope> = instances.iter().map(Scope::of_instance).collect();
    accounts.sort();
    accounts.dedup();
    let mut vpcs: BTreeMap<String, VpcNetSpec> = BTreeMap::new();
    for account in &accounts {
        account_ports(tx, account, &instances, &mut vpcs)?;
    }
    Ok(HostNetSpec {
        vpcs: vpcs.into_values().collect(),
    })
}

fn account_ports(
    tx: &ReadTx,
    account: &Scope,
    instances: &[Instance],
    out: &mut BTreeMap<String, VpcNetSpec>,
) -> Result<()> {
    let live: HashMap<&str, &Instance> = instances
        .iter()
        .filter(|i| Scope::of_instance(i) == *account)
        .map(|i| (i.id.as_str(), i))
        .collect();
    let interfaces: Vec<NetworkInterface> = tx.list_docs(account)?;
    let rules: Vec<SecurityGroupRule> = tx.list_docs(account)?;
    let subnets: HashMap<String, Subnet> = tx
        .list_docs::<Subnet>(account)?
        .into_iter()
        .map(|s| (s.id.to_string(), s))
        .collect();
    let gateways: HashMap<String, String> = tx
        .list_docs::<InternetGateway>(account)?
        .into_iter()
        .filter_map(|g| Some((g.id.to_string(), g.vpc_id?.to_string())))
        .collect();
    let tables: Vec<RouteTable> = tx.list_docs(account)?;

    // Group membership spans the account's interfaces, wherever their VMs run.
    let mut members: HashMap<&str, Vec<String>> = HashMap::new();
    for n in &interfaces {
        for g in &n.groups {
            members
                .entry(g.id.as_str())
                .or_default()
                .push(format!("{}/32", n.private_ip));
        }
    }
    let mut by_group: HashMap<&str, Vec<&SecurityGroupRule>> = HashMap::new();
    for r in &rules {
        by_group.entry(r.group_id.as_str()).or_default().push(r);
    }
    let resolve = |r: &SecurityGroupRule| -> Option<RuleSpec> {
        let cidrs = match &r.peer {
            RulePeer::Ipv4 { cidr } => vec![cidr.clone()],
            RulePeer::Ipv6 { .. } => return None,
            RulePeer::Group { group_id, .. } => {
                members.get(group_id.as_str()).cloned().unwrap_or_default()
            }
        };
        Some(RuleSpec {
            protocol: r.protocol.clone(),
            from_port: r.from_port,
            to_port: r.to_port,
            cidrs,
        })
    };

    let internet_subnets = internet_routed_subnets(&subnets, &tables, &gateways);
    for n in &interfaces {
        let Some(att) = &n.attachment else { continue };
        let Some(inst) = live.get(att.instance_id.as_str()) else {
            continue;
        };
        let Some(subnet) = subnets.get(n.subnet_id.as_str()) else {
            continue;
        };
        let vpc_id = n.vpc_id.to_string();
        // A public address only works where the subnet routes to an attached gateway.
        let public_ip = (att.device_index == 0 && internet_subnets.contains(n.subnet_id.as_str()))
            .then(|| inst.public_ip.clone())
            .flatten();
        let mut ingress = vec![];
        let mut egress = vec![];
        let mut seen = HashSet::new();
        for g in &n.groups {
            if !seen.insert(g.id.as_str()) {
                continue;
            }
            for r in by_group.get(g.id.as_str()).into_iter().flatten() {
                if let Some(spec) = resolve(r) {
                    if r.egress {
                        egress.push(spec);
                    } else {
                        ingress.push(spec);
                    }
                }
            }
        }
        let vpc = out.entry(vpc_id.clone()).or_insert_with(|| VpcNetSpec {
            vpc_id: vpc_id.clone(),
            internet: gateways.values().any(|v| v == &vpc_id),
            ports: vec![],
            domain: private_domain(&account.region),
        });
        vpc.ports.push(PortSpec {
            interface_id: n.id.to_string(),
            mac: n.mac_address.clone(),
            private_ip: n.private_ip.clone(),
            subnet_cidr: subnet.cidr_block.clone(),
            public_ip,
            hostname: hostname_of(&n.private_ip),
            ingress,
            egress,
        });
    }
    Ok(())
}

/// Subnets whose route table (their own, or the VPC's main one) sends 0.0.0.0/0 to an
/// internet gateway attached to the VPC.
fn internet_routed_subnets(
    subnets: &HashMap<String, Subnet>,
    tables: &[RouteTable],
    gateways: &HashMap<String, String>,
) -> HashSet<String> {
    let routes_out = |t: &RouteTable| {
        t.routes.iter().any(|r| {
            r.destination == "0.0.0.0/0"
                && matches!(&r.target, RouteTarget::Gateway { id }
                    if gateways.get(id.as_str()) == Some(&t.vpc_id.to_string()))
        })
    };
    let mut explicit: HashMap<String, bool> = HashMap::new();
    let mut main: HashMap<String, bool> = HashMap::new();
    for t in tables {
        let out = routes_out(t);
        for a in &t.associations {
            if let Some(s) = &a.subnet_id {
                explicit.insert(s.to_string(), out);
            } else if a.main {
                main.insert(t.vpc_id.to_string(), out);
            }
        }
    }
    subnets
        .values()
        .filter(|s| {
            explicit
                .get(s.id.as_str())
                .or_else(|| main.get(s.vpc_id.as_str()))
                .copied()
                .unwrap_or(false)
        })
        .map(|s| s.id.to_string())
        .collect()
}
