//! Network interfaces as resources: CreateNetworkInterface, DescribeNetworkInterfaces,
//! DeleteNetworkInterface, AttachNetworkInterface, DetachNetworkInterface.
//!
//! An interface holds one private address of its subnet (a `subnet_addresses` row
//! under the interface's id, so the subnet's free count sees it) and a MAC address
//! unique across accounts. Every instance launched in a VPC has a primary interface
//! at device index 0, made in the launch transaction (or an available interface named
//! at launch); it cannot be detached. CreateNetworkInterface makes others, which
//! attach to a running or stopped instance of their zone and VPC at device index 1 and
//! up. An attached interface cannot be deleted. When an instance terminates, its
//! interfaces marked `delete_on_termination` (the primary one RunInstances made) are
//! deleted and their addresses released; the others are detached and kept.
//!
//! Attaching or detaching an interface changes the instance's VM spec (its `nics`)
//! and bumps its generation; a running VM picks the change up at its next start.

use super::addresses::{associated_by_public_ip, PublicAssociation};
use super::security_groups::resolve_instance_groups;
use super::subnets::SubnetAddresses;
use super::{filter_page, flag, load, select, Tagged};
use crate::catalog;
use crate::instances::private_dns_name;
use crate::page::PageRequest;
use crate::tags::{put_tags, tags_for, TagSpec};
use crate::{Caller, ControlPlane, Tags};
use rand::Rng;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use strato_common::filter::FilterSet;
use strato_common::time_fmt::{ec2_timestamp, now_ms};
use strato_common::{
    Error, InstanceId, NetworkInterfaceAttachmentId, NetworkInterfaceId, ResourceId, ResourceKind,
    Result, SecurityGroupId, SubnetId,
};
use strato_domain::Scope;
use strato_store::{
    ElasticIp, GroupRef, Instance, InstanceState, NetworkInterface, NetworkInterfaceAttachment,
    ReadTx, Subnet, WriteTx,
};

/// Filter names DescribeNetworkInterfaces accepts: every name EC2 documents (values
/// in `field`), and `group-name`, which EC2 accepts too.
pub const INTERFACE_FILTERS: &[&str] = &[
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
    // Not documented, but EC2 accepts it.
    "group-name",
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

/// The tag resource type of network interfaces.
pub const INTERFACE_RESOURCE_TYPE: &str = "network-interface";

/// What CreateNetworkInterface asks for.
#[derive(Clone, Debug)]
pub struct CreateInterface {
    pub subnet_id: SubnetId,
    pub private_ip: Option<String>,
    pub group_ids: Vec<SecurityGroupId>,
    pub description: Option<String>,
    /// Makes the call idempotent: a retry with the same token and parameters returns
    /// the interface the first call made (SDKs fill it in for every call).
    pub client_token: Option<String>,
}

impl CreateInterface {
    /// An interface in `subnet_id` with nothing else asked for: a subnet id has no
    /// default, so callers name it here and add the rest with struct update syntax.
    pub fn in_subnet(subnet_id: SubnetId) -> Self {
        CreateInterface {
            subnet_id,
            private_ip: None,
            group_ids: vec![],
            description: None,
            client_token: None,
        }
    }
}

/// `available` or `in-use`.
pub fn status_of(n: &NetworkInterface) -> &'static str {
    if n.attachment.is_some() {
        "in-use"
    } else {
        "available"
    }
}

/// A random locally administered unicast MAC address, `02:xx:xx:xx:xx:xx`.
pub fn random_mac() -> String {
    let b: [u8; 5] = rand::thread_rng().gen();
    format!(
        "02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4]
    )
}

/// A network interface as CreateNetworkInterface and DescribeNetworkInterfaces answer
/// it: with its tags and the public address it holds.
#[derive(Clone, Debug)]
pub struct InterfaceInfo {
    /// The interface.
    pub interface: NetworkInterface,
    /// Its tags.
    pub tags: Tags,
    /// Its public address (its `association`), when it has one: only an instance's
    /// primary interface does, holding the instance's.
    pub association: Option<PublicAssociation>,
}

/// The public addresses a set of interfaces hold: an instance's public address is its
/// primary interface's (device index 0). Both the answer's `association` and the
/// `association.*` filters read it, so they agree.
#[derive(Default)]
struct PublicAddresses {
    /// By interface id.
    by_interface: HashMap<String, PublicAssociation>,
}

impl PublicAddresses {
    /// The public addresses of `interfaces`, read once for all of them: their instances'
    /// addresses (by id, one query per 500 instances, never one per interface) and the
    /// account's Elastic IPs (a handful), which tell Elastic IPs from auto-assigned
    /// addresses.
    fn load<'a>(
        tx: &ReadTx,
        account: &Scope,
        interfaces: impl IntoIterator<Item = &'a NetworkInterface>,
    ) -> Result<Self> {
        // The primary interface of each instance, by instance id.
        let primary: HashMap<&str, &NetworkInterface> = interfaces
            .into_iter()
            .filter_map(|n| {
                let a = n.attachment.as_ref().filter(|a| a.device_index == 0)?;
                Some((a.instance_id.as_str(), n))
            })
            .collect();
        if primary.is_empty() {
            return Ok(Self::default());
        }
        let instances: Vec<&str> = primary.keys().copied().collect();
        let held = tx.public_ips_of_instances(account, &instances)?;
        let elastic_ips = associated_by_public_ip(tx.list_docs::<ElasticIp>(account)?);
        let by_interface = held
            .into_iter()
            .filter_map(|(instance, ip)| {
                let n = primary.get(instance.as_str())?;
                let public = PublicAssociation::new(
                    &account.region,
                    &n.account_id,
                    &ip,
                    elastic_ips.get(&ip),
                );
                Some((n.id.to_string(), public))
            })
            .collect();
        Ok(PublicAddresses { by_interface })
    }

    /// The public address interface `n` holds, if any.
    fn of(&self, n: &NetworkInterface) -> Option<&PublicAssociation> {
        self.by_interface.get(n.id.as_str())
    }

    /// Pairs tagged interfaces with their public addresses.
    fn answer(mut self, list: Vec<Tagged<NetworkInterface>>) -> Vec<InterfaceInfo> {
        list.into_iter()
            .map(|(n, tags)| InterfaceInfo {
                association: self.by_interface.remove(n.id.as_str()),
                interface: n,
                tags,
            })
            .collect()
    }
}

/// An interface's values for a DescribeNetworkInterfaces filter: what the answer shows
/// for it. IPv6 addresses, requesters and operator-managed interfaces do not exist
/// here, so those filters match nothing.
fn field(region: &str, public: &PublicAddresses, n: &NetworkInterface, name: &str) -> Vec<String> {
    if let Some(f) = name
        .strip_prefix("association.")
        .or_else(|| name.strip_prefix("addresses.association."))
    {
        return public.of(n).map(|p| p.field(f)).unwrap_or_default();
    }
    let att = n.attachment.as_ref();
    match name {
        "attachment.attachment-id" => att.map(|a| a.id.to_string()).into_iter().collect(),
        "attachment.attach-time" => att
            .map(|a| ec2_timestamp(a.attach_time_ms))
            .into_iter()
            .collect(),
        "attachment.delete-on-termination" => att
            .map(|a| a.delete_on_termination.to_string())
            .into_iter()
            .collect(),
        "attachment.device-index" => att
            .map(|a| a.device_index.to_string())
            .into_iter()
            .collect(),
        "attachment.instance-id" => att.map(|a| a.instance_id.to_string()).into_iter().collect(),
        "attachment.instance-owner-id" => {
            att.map(|_| n.account_id.to_string()).into_iter().collect()
        }
        "attachment.status" => att.map(|_| "attached".to_string()).into_iter().collect(),
        "availability-zone" => vec![n.availability_zone.clone()],
        "availability-zone-id" => vec![catalog::zone_id(region, &n.availability_zone)],
        "description" => vec![n.description.clone()],
        "group-id" => n.groups.iter().map(|g| g.id.to_string()).collect(),
        "group-name" => n.groups.iter().map(|g| g.name.clone()).collect(),
        "interface-type" => vec!["interface".to_string()],
        "mac-address" => vec![n.mac_address.clone()],
        "network-interface-id" => vec![n.id.to_string()],
        "owner-id" => vec![n.account_id.to_string()],
        // One private address per interface: its primary.
        "private-ip-address" | "addresses.private-ip-address" => vec![n.private_ip.clone()],
        "addresses.primary" => flag(true),
        "private-dns-name" => vec![private_dns_name(region, &n.private_ip)],
        "requester-managed" => flag(false),
        "source-dest-check" => flag(true),
        "status" => vec![status_of(n).to_string()],
        "subnet-id" => vec![n.subnet_id.to_string()],
        "vpc-id" => vec![n.vpc_id.to_string()],
        _ => vec![],
    }
}

/// What happens to an instance's interfaces when it terminates: those marked
/// `delete_on_termination` are deleted with their tags and give their address back;
/// the others are detached and kept.
pub fn release_instance(tx: &WriteTx, account: &Scope, instance: &str) -> Result<()> {
    for mut n in tx.list_docs_by::<NetworkInterface>(account, "instance_id", instance)? {
        if n.attachment
            .as_ref()
            .is_some_and(|a| a.delete_on_termination)
        {
            tx.release_instance_addresses(account, n.id.as_str())?;
            tx.delete_doc::<NetworkInterface>(account, n.id.as_str())?;
        } else {
            n.attachment = None;
            tx.update_doc(&n)?;
        }
    }
    Ok(())
}

/// Makes (and stores) a network interface holding `ip`, which the caller has already
/// taken in `subnet` under `id`. Its MAC address is unique across accounts.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_interface(
    tx: &WriteTx,
    account: &Scope,
    id: NetworkInterfaceId,
    subnet: &Subnet,
    ip: Ipv4Addr,
    groups: Vec<GroupRef>,
    description: String,
    attachment: Option<NetworkInterfaceAttachment>,
    now: i64,
) -> Result<NetworkInterface> {
    let mut mac = random_mac();
    while tx.mac_address_taken(&mac)? {
        mac = random_mac();
    }
    let n = NetworkInterface {
        id,
        account_id: account.account.clone(),
        region: account.region.clone(),
        subnet_id: subnet.id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        availability_zone: subnet.availability_zone.clone(),
        private_ip: ip.to_string(),
        mac_address: mac,
        description,
        groups,
        attachment,
        created_ms: now,
        client_token: None,
        rev: Default::default(),
    };
    tx.insert_doc(&n)?;
    Ok(n)
}

/// The attachment of an instance's primary interface (device index 0).
pub(crate) fn primary_attachment(
    instance: &Instance,
    delete_on_termination: bool,
    now: i64,
) -> NetworkInterfaceAttachment {
    NetworkInterfaceAttachment {
        id: NetworkInterfaceAttachmentId::generate(),
        instance_id: instance.id.clone(),
        device_index: 0,
        attach_time_ms: now,
        delete_on_termination,
    }
}

/// True when some interface of the account uses the group.
pub fn group_in_use(tx: &WriteTx, account: &Scope, group: &str) -> Result<bool> {
    Ok(tx
        .list_docs::<NetworkInterface>(account)?
        .iter()
        .any(|n| n.groups.iter().any(|g| g.id.as_str() == group)))
}

/// True when the subnet has interfaces.
pub fn subnet_in_use(tx: &WriteTx, account: &Scope, subnet: &str) -> Result<bool> {
    Ok(!tx
        .list_docs_by::<NetworkInterface>(account, "subnet_id", subnet)?
        .is_empty())
}

impl ControlPlane {
    /// CreateNetworkInterface.
    pub fn create_network_interface(
        &self,
        caller: &Caller,
        req: &CreateInterface,
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<InterfaceInfo> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let requested = req
            .private_ip
            .as_deref()
            .map(|ip| {
                ip.parse::<Ipv4Addr>().map_err(|_| {
                    Error::invalid_value(format!("Invalid value '{ip}' for PrivateIpAddress."))
                })
            })
            .transpose()?;
        let description = req.description.clone().unwrap_or_default();
        if description.len() > 255 {
            return Err(Error::invalid_value(
                "Description must be at most 255 characters.",
            ));
        }
        let tags = tags_for(tag_specs, INTERFACE_RESOURCE_TYPE)?;
        if let Some(token) = &req.client_token {
            if token.is_empty() || token.len() > 64 || !token.is_ascii() {
                return Err(Error::invalid_value(
                    "The client token must be 1 to 64 ASCII characters.",
                ));
            }
        }
        self.db.write(|tx| {
            let subnet: Subnet = load(tx, account, ResourceKind::Subnet, req.subnet_id.as_str())?;
            if let Some(token) = &req.client_token {
                let all: Vec<NetworkInterface> = tx.list_docs(account)?;
                if let Some(n) = all
                    .into_iter()
                    .find(|n| n.client_token.as_ref() == Some(token))
                {
                    let same_ip = requested.is_none_or(|ip| ip.to_string() == n.private_ip);
                    if n.subnet_id != subnet.id || n.description != description || !same_ip {
                        return Err(Error::IdempotentParameterMismatch(format!(
                            "The client token '{token}' has already been used with different parameters."
                        )));
                    }
                    Self::dry(dry_run)?;
                    let tags = tx.tags_of(account, n.id.as_str())?;
                    // Named at a launch since, it may be an instance's primary
                    // interface by now, holding the instance's public address.
                    let association = PublicAddresses::load(tx, account, [&n])?.of(&n).cloned();
                    return Ok(InterfaceInfo {
                        interface: n,
                        tags,
                        association,
                    });
                }
            }
            let groups = resolve_instance_groups(
                tx,
                account,
                &subnet.vpc_id,
                subnet.id.as_str(),
                &req.group_ids,
                &[],
            )?;
            let addresses = SubnetAddresses::load(tx, account, &subnet)?;
            if requested.is_none() && addresses.free() == 0 {
                return Err(Error::InsufficientFreeAddressesInSubnet(format!(
                    "There are not enough free addresses in subnet '{}' to satisfy the request.",
                    subnet.id
                )));
            }
            let id = NetworkInterfaceId::generate();
            // Validation first (allocation writes), then DryRun rolls the write back
            // with the error.
            let ip = match requested {
                Some(ip) => addresses.allocate_exact(tx, account, ip, id.as_str())?,
                None => addresses.allocate(tx, account, &[id.as_str()])?[0],
            };
            Self::dry(dry_run)?;
            let n = insert_interface(
                tx,
                account,
                id,
                &subnet,
                ip,
                groups,
                description.clone(),
                None,
                now_ms(),
            )?;
            let n = match &req.client_token {
                Some(token) => {
                    let n = NetworkInterface {
                        client_token: Some(token.clone()),
                        ..n
                    };
                    tx.update_doc(&n)?;
                    n
                }
                None => n,
            };
            put_tags(tx, account, n.id.as_str(), INTERFACE_RESOURCE_TYPE, &tags)?;
            // A new interface is attached to nothing, so it holds no public address.
            Ok(InterfaceInfo {
                interface: n,
                tags: tags.clone(),
                association: None,
            })
        })
    }

    /// DescribeNetworkInterfaces, each interface with the public address it holds. The
    /// public addresses are read once per call: for every selected interface when an
    /// `association.*` filter needs them, else for the page's interfaces only.
    pub fn describe_network_interfaces(
        &self,
        caller: &Caller,
        ids: &[NetworkInterfaceId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<InterfaceInfo>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        let region = caller.region.as_str();
        let associations = filters.filters.iter().any(|f| {
            f.name.starts_with("association.") || f.name.starts_with("addresses.association.")
        });
        self.db.read(|tx| {
            let scope = caller.scope();
            let selected = select(
                tx.list_docs::<NetworkInterface>(&scope)?,
                ResourceKind::NetworkInterface,
                ids,
            )?;
            let public = if associations {
                PublicAddresses::load(tx, &scope, &selected)?
            } else {
                PublicAddresses::default()
            };
            let (list, next) = filter_page(tx, &scope, selected, filters, page, |n, name| {
                field(region, &public, n, name)
            })?;
            let public = if associations {
                public
            } else {
                PublicAddresses::load(tx, &scope, list.iter().map(|(n, _)| n))?
            };
            Ok((public.answer(list), next))
        })
    }

    /// DeleteNetworkInterface: refused while attached; its address goes back to the
    /// subnet.
    pub fn delete_network_interface(
        &self,
        caller: &Caller,
        id: &NetworkInterfaceId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let n: NetworkInterface =
                load(tx, account, ResourceKind::NetworkInterface, id.as_str())?;
            if n.attachment.is_some() {
                return Err(Error::NetworkInterfaceInUse(format!(
                    "Network interface '{}' is currently in use.",
                    n.id
                )));
            }
            Self::dry(dry_run)?;
            tx.release_instance_addresses(account, n.id.as_str())?;
            tx.delete_doc::<NetworkInterface>(account, n.id.as_str())?;
            Ok(())
        })
    }

    /// AttachNetworkInterface: to a running or stopped instance of the same zone and
    /// VPC, at a free device index of 1 or more.
    pub fn attach_network_interface(
        &self,
        caller: &Caller,
        id: &NetworkInterfaceId,
        instance_id: &InstanceId,
        device_index: i64,
        dry_run: bool,
    ) -> Result<NetworkInterfaceAttachmentId> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        if !(0..=31).contains(&device_index) {
            return Err(Error::invalid_value(format!(
                "Invalid value '{device_index}' for deviceIndex."
            )));
        }
        let device_index = device_index as u32;
        self.db.write(|tx| {
            let mut n: NetworkInterface =
                load(tx, account, ResourceKind::NetworkInterface, id.as_str())?;
            let inst = tx
                .instance(account, instance_id.as_str())?
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, instance_id))?;
            if !matches!(inst.state, InstanceState::Running | InstanceState::Stopped) {
                return Err(Error::IncorrectInstanceState(format!(
                    "The instance '{}' is not in a valid state for this operation.",
                    inst.id
                )));
            }
            if let Some(a) = &n.attachment {
                return Err(Error::NetworkInterfaceInUse(format!(
                    "Interface: [{}] in use (attached to {}).",
                    n.id, a.instance_id
                )));
            }
            if inst.availability_zone != n.availability_zone {
                return Err(Error::InvalidParameterCombination(format!(
                    "You may not attach a network interface to an instance if they are not in the same availability zone ({} is in {}, {} in {}).",
                    n.id, n.availability_zone, inst.id, inst.availability_zone
                )));
            }
            if inst.vpc_id.as_ref() != Some(&n.vpc_id) {
                return Err(Error::InvalidParameterCombination(format!(
                    "Network interface {} and instance {} belong to different networks.",
                    n.id, inst.id
                )));
            }
            let taken = device_index == 0
                || tx
                    .list_docs_by::<NetworkInterface>(account, "instance_id", inst.id.as_str())?
                    .iter()
                    .any(|o| o.attachment.as_ref().is_some_and(|a| a.device_index == device_index));
            if taken {
                return Err(Error::invalid_value(format!(
                    "Instance '{}' already has an interface attached at device index '{device_index}'.",
                    inst.id
                )));
            }
            Self::dry(dry_run)?;
            let att = NetworkInterfaceAttachmentId::generate();
            n.attachment = Some(NetworkInterfaceAttachment {
                id: att.clone(),
                instance_id: inst.id.clone(),
                device_index,
                attach_time_ms: now_ms(),
                delete_on_termination: false,
            });
            tx.update_doc(&n)?;
            let spec = self.bump_spec(tx, inst)?;
            Ok((att, spec))
        })
        .map(|(att, spec)| {
            self.send_spec(spec);
            att
        })
    }

    /// The instance's interfaces changed: its VM spec did too. Bumps the generation
    /// (unless the instance is terminated) and returns the spec to send after commit.
    fn send_spec(&self, spec: Option<strato_agent_api::VmSpec>) {
        if let Some(spec) = spec {
            self.agent.apply(spec);
        }
    }

    /// DetachNetworkInterface by attachment id. A primary interface (device index 0)
    /// stays with its instance.
    pub fn detach_network_interface(
        &self,
        caller: &Caller,
        att: &NetworkInterfaceAttachmentId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db
            .write(|tx| {
                let mut n = tx
                    .list_docs::<NetworkInterface>(account)?
                    .into_iter()
                    .find(|n| n.attachment.as_ref().is_some_and(|a| &a.id == att))
                    .ok_or_else(|| {
                        Error::not_found(ResourceKind::NetworkInterfaceAttachment, att)
                    })?;
                let Some(a) = n.attachment.take() else {
                    return Err(Error::internal("attachment vanished"));
                };
                if a.device_index == 0 {
                    return Err(Error::OperationNotPermitted(
                        "The network interface at device index 0 cannot be detached.".into(),
                    ));
                }
                Self::dry(dry_run)?;
                tx.update_doc(&n)?;
                match tx.instance(account, a.instance_id.as_str())? {
                    Some(inst) => self.bump_spec(tx, inst),
                    None => Ok(None),
                }
            })
            .map(|spec| self.send_spec(spec))
    }
}

/// The meta key recording that instances from before stored primary interfaces have
/// been given theirs.
const ADOPTED_KEY: &str = "primary_interfaces_adopted";

impl ControlPlane {
    /// Gives every instance launched before primary interfaces were stored (in a VPC,
    /// not terminated, without an interface at device index 0) its primary interface:
    /// its subnet, address, groups and zone, `delete_on_termination`, attached since
    /// its launch. The address passes from the instance to the interface, so it is
    /// still released exactly once. Runs once per database (called at startup, before
    /// the agent is synchronised); returns how many interfaces it made.
    pub fn adopt_primary_interfaces(&self) -> Result<usize> {
        self.db.write(|tx| {
            if tx.meta_get(ADOPTED_KEY)?.is_some() {
                return Ok(0);
            }
            let with_primary: std::collections::HashSet<String> = tx
                .attached_interfaces()?
                .into_iter()
                .filter_map(|n| n.attachment)
                .filter(|a| a.device_index == 0)
                .map(|a| a.instance_id.to_string())
                .collect();
            let mut made = 0;
            for inst in tx.live_instances()? {
                let (Some(subnet_id), Some(ip)) = (&inst.subnet_id, &inst.private_ip) else {
                    continue;
                };
                if with_primary.contains(inst.id.as_str()) {
                    continue;
                }
                let scope = Scope::of_instance(&inst);
                let account = &scope;
                let Some(subnet) = tx.get_doc::<Subnet>(account, subnet_id.as_str())? else {
                    tracing::warn!(instance = %inst.id, subnet = %subnet_id, "instance's subnet is gone; no primary interface made");
                    continue;
                };
                let Ok(ip) = ip.parse::<Ipv4Addr>() else {
                    continue;
                };
                let id = NetworkInterfaceId::generate();
                if tx.move_subnet_addresses(account, subnet_id.as_str(), inst.id.as_str(), id.as_str())?
                    == 0
                {
                    tracing::warn!(instance = %inst.id, %ip, "instance held no address record; its interface takes none");
                }
                insert_interface(
                    tx,
                    account,
                    id,
                    &subnet,
                    ip,
                    inst.security_groups.clone(),
                    String::new(),
                    Some(primary_attachment(&inst, true, inst.launch_time_ms)),
                    inst.launch_time_ms,
                )?;
                made += 1;
            }
            tx.meta_set(ADOPTED_KEY, "1")?;
            if made > 0 {
                tracing::info!(interfaces = made, "primary network interfaces made for existing instances");
            }
            Ok(made)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_are_locally_administered_unicast() {
        for _ in 0..100 {
            let m = random_mac();
            assert_eq!(m.len(), 17);
            assert!(m.starts_with("02:"));
            assert!(m
                .split(':')
                .all(|b| b.len() == 2 && u8::from_str_radix(b, 16).is_ok()));
        }
    }
}
