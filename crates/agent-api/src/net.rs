//! The dataplane part of the contract: what a host's VPC networks should look like.
//!
//! Like VM specs these are declarations, not commands. The control plane recomputes
//! the [`HostNetSpec`] of a host whenever something that shapes packets changes
//! (instances, interfaces, security groups and their rules, gateways, addresses) and
//! sends the whole of it; the agent converges each VPC namespace to it and removes
//! what is no longer named. Security-group references are already resolved to the
//! member addresses, so the agent needs no view of the API's resources.

use serde::{Deserialize, Serialize};

/// One network interface of a VM, as the hypervisor needs it: which VPC it plugs
/// into, and the addresses its port is locked to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NicSpec {
    /// The interface id (`eni-…`); the tap's name is derived from it.
    pub interface_id: String,
    /// 0 for the primary interface.
    pub device_index: u32,
    /// `02:xx:xx:xx:xx:xx`.
    pub mac: String,
    /// The VPC (one network namespace per VPC per host).
    pub vpc_id: String,
    /// The subnet's CIDR, e.g. `10.0.1.0/24`; the VPC router answers at its first
    /// host address, as in EC2.
    pub subnet_cidr: String,
    /// The interface's primary private IPv4 address.
    pub private_ip: String,
}

impl NicSpec {
    /// The host-side tap name: at most 15 bytes (IFNAMSIZ), unique per interface.
    pub fn tap_name(&self) -> String {
        tap_name(&self.interface_id)
    }
}

/// The tap name of interface `eni-<hex>`: `t` and its first 14 hex digits.
pub fn tap_name(interface_id: &str) -> String {
    let hex = interface_id.trim_start_matches("eni-");
    format!("t{}", &hex[..hex.len().min(14)])
}

/// The whole desired dataplane of one host.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HostNetSpec {
    pub vpcs: Vec<VpcNetSpec>,
}

/// One VPC as present on a host.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct VpcNetSpec {
    pub vpc_id: String,
    /// An internet gateway is attached: the VPC gets an uplink, and ports with a
    /// public address are NATed 1:1 through it.
    pub internet: bool,
    /// The interfaces of this VPC whose VMs live on this host.
    pub ports: Vec<PortSpec>,
    /// The VPC's private DNS domain (`ec2.internal` in us-east-1, else
    /// `<region>.compute.internal`): DHCP hands it out as the search domain, and the
    /// VPC's resolver answers `ip-a-b-c-d` names in it. Empty in records from before
    /// the resolver existed: no domain is handed out then.
    #[serde(default)]
    pub domain: String,
}

/// One interface's port: its addresses and the security-group rules that guard it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PortSpec {
    pub interface_id: String,
    pub mac: String,
    pub private_ip: String,
    pub subnet_cidr: String,
    /// The public (or Elastic) address NATed to `private_ip`, if any.
    pub public_ip: Option<String>,
    /// The DHCP hostname, `ip-a-b-c-d`.
    pub hostname: String,
    /// Traffic admitted towards the port (the union of its groups' inbound rules).
    pub ingress: Vec<RuleSpec>,
    /// Traffic admitted from the port (the union of its groups' outbound rules).
    pub egress: Vec<RuleSpec>,
}

impl PortSpec {
    /// The host-side tap name.
    pub fn tap_name(&self) -> String {
        tap_name(&self.interface_id)
    }
}

/// One security-group rule with its peer resolved to addresses.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RuleSpec {
    /// `-1` (all), `tcp`, `udp`, `icmp`, or an IP protocol number.
    pub protocol: String,
    /// Port range for tcp/udp; ICMP type (`from`) and code (`to`), -1 meaning any.
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    /// IPv4 CIDRs the rule admits (a group reference becomes its members' /32s; an
    /// empty list admits nothing).
    pub cidrs: Vec<String>,
}
