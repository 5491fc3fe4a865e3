//! Elastic IPs: AllocateAddress, DescribeAddresses, AssociateAddress,
//! DisassociateAddress, ReleaseAddress.
//!
//! Addresses come from one public pool of the control plane (`public_ip_pool`), the
//! lowest free one first, skipping the pool's network and broadcast addresses. A
//! public address belongs to one account at a time; another account's address is
//! simply not found. An address maps to an instance's primary private address; the
//! instance record carries the public address too (`public_ip`), changed in the same
//! transaction, so DescribeInstances needs no join. Nothing touches a host yet.

use super::load;
use crate::tags::{put_tags, tags_for, TagSpec};
use crate::{Caller, ControlConfig, ControlPlane, Tags};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use strato_common::cidr::Ipv4Cidr;
use strato_common::filter::FilterSet;
use strato_common::time_fmt::now_ms;
use strato_common::{
    AccountId, AddressAssociationId, AllocationId, Error, InstanceId, ResourceId, ResourceKind,
    Result,
};
use strato_domain::Scope;
use strato_store::{AddressAssociation, ElasticIp, Instance, InstanceState, WriteTx};

/// Filter names DescribeAddresses accepts.
pub const ADDRESS_FILTERS: &[&str] = &[
    "allocation-id",
    "association-id",
    "domain",
    "instance-id",
    "network-interface-id",
    "network-interface-owner-id",
    "private-ip-address",
    "public-ip",
    "network-border-group",
];

/// The tag resource type of Elastic IPs.
pub const ADDRESS_RESOURCE_TYPE: &str = "elastic-ip";

/// How the caller names an address: by allocation id or by public address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddressRef {
    /// `AllocationId`.
    Allocation(AllocationId),
    /// `PublicIp`, as [`parse_public_ip`] answers it.
    Public(String),
}

/// How DisassociateAddress names the association to end: by its id or by the public
/// address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssociationRef {
    /// `AssociationId`.
    Association(AddressAssociationId),
    /// `PublicIp`, as [`parse_public_ip`] answers it.
    Public(String),
}

/// The addresses of a pool that may be handed out, in order: all but the network and
/// broadcast addresses (a `/31` or `/32` has neither).
pub fn pool_addresses(pool: &Ipv4Cidr) -> impl Iterator<Item = Ipv4Addr> + '_ {
    let size = pool.size();
    let (first, end) = if size > 2 { (1, size - 1) } else { (0, size) };
    (first..end).filter_map(move |i| pool.nth(i))
}

/// The lowest address of the pool not in `taken`.
pub fn first_free(pool: &Ipv4Cidr, taken: &HashSet<String>) -> Option<Ipv4Addr> {
    pool_addresses(pool).find(|a| !taken.contains(&a.to_string()))
}

/// A free address of the pool for an instance's auto-assigned public IP, if any is
/// left. Picked at random, not lowest-first: an address given back a moment ago (its
/// old VM may still be shutting down, and clients may still know it) is then rarely
/// handed out again at once, as on EC2.
pub fn take_public_ip(tx: &WriteTx, pool: &Ipv4Cidr) -> Result<Option<String>> {
    use rand::Rng;
    let size = pool.size();
    let (first, end) = if size > 2 { (1, size - 1) } else { (0, size) };
    let mut rng = rand::thread_rng();
    // Random probes (one index lookup each) find a free address fast unless the pool
    // is nearly full; then the whole taken set is read once and the first free one
    // is as good as any.
    for _ in 0..16 {
        if let Some(a) = pool.nth(rng.gen_range(first..end)) {
            let a = a.to_string();
            if !tx.public_ip_in_use(&a)? {
                return Ok(Some(a));
            }
        }
    }
    let taken: HashSet<String> = tx.public_ips_in_use()?.into_iter().collect();
    Ok(first_free(pool, &taken).map(|a| a.to_string()))
}

/// Gives an instance a public address when it should have one and has none (it
/// starts running, or lost its Elastic IP), and takes an auto-assigned one back when
/// it stops running. Elastic IPs are left alone.
pub fn settle_public_ip(tx: &WriteTx, cfg: &ControlConfig, inst: &mut Instance) -> Result<()> {
    let pool = &cfg.public_ip_pool;
    let runs = matches!(inst.state, InstanceState::Pending | InstanceState::Running);
    let elastic = match &inst.public_ip {
        Some(ip) => !tx
            .list_docs_by::<ElasticIp>(&Scope::of_instance(inst), "public_ip", ip)?
            .is_empty(),
        None => false,
    };
    if elastic {
        return Ok(());
    }
    if runs && inst.auto_public_ip && inst.public_ip.is_none() {
        // EC2 never fails a launch for want of a public address; with the pool used
        // up the instance runs with its private address only.
        if tx.public_ips_of_account(&inst.account_id)? >= cfg.public_ip_share() as i64 {
            static WARNED_SHARE: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED_SHARE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(instance = %inst.id, account = %inst.account_id, share = cfg.public_ip_share(), "account holds its share of the public address pool; its instances launch without a public IP (--public-ips-per-account)");
            }
            return Ok(());
        }
        inst.public_ip = take_public_ip(tx, pool)?;
        if inst.public_ip.is_none() {
            // Once per process is enough to tell the operator; a large launch would
            // otherwise log a line per instance.
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(instance = %inst.id, %pool, "public address pool exhausted; instances launch without a public IP (--public-ip-pool)");
            }
        }
    } else if !runs && inst.public_ip.is_some() {
        inst.public_ip = None;
    }
    Ok(())
}

/// The public DNS name EC2 gives an instance with a public address.
pub fn public_dns_name(region: &str, ip: &str) -> String {
    let host = format!("ec2-{}", ip.replace('.', "-"));
    if region == "us-east-1" {
        format!("{host}.compute-1.amazonaws.com")
    } else {
        format!("{host}.{region}.compute.amazonaws.com")
    }
}

/// The public IPv4 address an interface holds, as EC2 shows it in the interface's
/// `association` (DescribeNetworkInterfaces, and DescribeInstances' interfaces) and as
/// the `association.*` filters read it: one computation for both, so a value the
/// answer shows selects its interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicAssociation {
    /// The public address.
    pub public_ip: String,
    /// Its public DNS name ([`public_dns_name`]).
    pub public_dns_name: String,
    /// `amazon` for an auto-assigned address, the account for its Elastic IP.
    pub ip_owner_id: String,
    /// The Elastic IP's allocation; `None` for an auto-assigned address.
    pub allocation_id: Option<AllocationId>,
    /// The Elastic IP's association; `None` for an auto-assigned address.
    pub association_id: Option<AddressAssociationId>,
}

impl PublicAssociation {
    /// The association of `ip`, held by an interface of `account` in `region`; `eip`
    /// is the account's Elastic IP record when the address is one.
    pub fn new(region: &str, account: &AccountId, ip: &str, eip: Option<&ElasticIp>) -> Self {
        PublicAssociation {
            public_ip: ip.to_string(),
            public_dns_name: public_dns_name(region, ip),
            ip_owner_id: match eip {
                Some(_) => account.to_string(),
                None => "amazon".to_string(),
            },
            allocation_id: eip.map(|a| a.id.clone()),
            association_id: eip
                .and_then(|a| a.association.as_ref())
                .map(|x| x.id.clone()),
        }
    }

    /// Its values for an `association.*` filter (`name` is the part after
    /// `association.`). Carrier and customer-owned addresses (Wavelength, Outposts)
    /// never exist here, so they have no value.
    pub fn field(&self, name: &str) -> Vec<String> {
        match name {
            "public-ip" => vec![self.public_ip.clone()],
            "public-dns-name" => vec![self.public_dns_name.clone()],
            "ip-owner-id" | "owner-id" => vec![self.ip_owner_id.clone()],
            "allocation-id" => self.allocation_id.iter().map(|a| a.to_string()).collect(),
            "association-id" => self.association_id.iter().map(|a| a.to_string()).collect(),
            _ => vec![],
        }
    }
}

/// The associated ones of an account's Elastic IPs, by public address: which public
/// addresses instances hold are the account's own rather than auto-assigned.
pub(crate) fn associated_by_public_ip(
    all: impl IntoIterator<Item = ElasticIp>,
) -> strato_common::hashing::FastMap<String, ElasticIp> {
    all.into_iter()
        .filter(|a| a.association.is_some())
        .map(|a| (a.public_ip.clone(), a))
        .collect()
}

/// A filter's values for one address.
fn field(a: &ElasticIp, region: &str, name: &str) -> Vec<String> {
    let assoc = a.association.as_ref();
    match name {
        "allocation-id" => vec![a.id.to_string()],
        "association-id" => assoc.map(|x| x.id.to_string()).into_iter().collect(),
        "domain" => vec![a.domain.clone()],
        "instance-id" => assoc
            .map(|x| x.instance_id.to_string())
            .into_iter()
            .collect(),
        "private-ip-address" => assoc.map(|x| x.private_ip.clone()).into_iter().collect(),
        "public-ip" => vec![a.public_ip.clone()],
        "network-border-group" => vec![region.to_string()],
        "network-interface-owner-id" => assoc
            .map(|_| a.account_id.to_string())
            .into_iter()
            .collect(),
        _ => vec![],
    }
}

/// Loads the caller's address named either way, or the kind's `NotFound`.
fn load_address(tx: &WriteTx, account: &Scope, r: &AddressRef) -> Result<ElasticIp> {
    match r {
        AddressRef::Allocation(id) => load(tx, account, ResourceKind::Address, id.as_str()),
        AddressRef::Public(ip) => tx
            .list_docs_by::<ElasticIp>(account, "public_ip", ip)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFoundWithMessage {
                kind: ResourceKind::PublicIp,
                message: format!("Address '{ip}' not found."),
            }),
    }
}

/// Takes the public address off the instance it is associated with (if any, and if
/// that instance still exists).
fn clear_instance(tx: &WriteTx, cfg: &ControlConfig, account: &Scope, a: &ElasticIp) -> Result<()> {
    if let Some(assoc) = &a.association {
        if let Some(mut inst) = tx.instance(account, assoc.instance_id.as_str())? {
            if inst.public_ip.as_deref() == Some(a.public_ip.as_str()) {
                inst.public_ip = None;
                // An instance that had an auto-assigned address gets a new one, as in EC2.
                settle_public_ip(tx, cfg, &mut inst)?;
                tx.update_instance(&inst)?;
            }
        }
    }
    Ok(())
}

/// Disassociates every address associated with an instance (it terminated). The
/// caller clears the instance's own `public_ip`.
pub fn disassociate_instance(tx: &WriteTx, account: &Scope, instance: &str) -> Result<()> {
    for mut a in tx.list_docs_by::<ElasticIp>(account, "instance_id", instance)? {
        a.association = None;
        tx.update_doc(&a)?;
    }
    Ok(())
}

/// Validates a `PublicIp` parameter: an IPv4 address. Public for the front door, which
/// checks the address an [`AddressRef`] or [`AssociationRef`] names where EC2 does,
/// with the request's other parameters.
pub fn parse_public_ip(ip: &str) -> Result<String> {
    ip.parse::<Ipv4Addr>()
        .map(|a| a.to_string())
        .map_err(|_| Error::invalid_value(format!("Invalid value '{ip}' for PublicIp.")))
}

impl ControlPlane {
    /// AllocateAddress: the lowest free address of the pool, for the VPC domain.
    pub fn allocate_address(
        &self,
        caller: &Caller,
        domain: Option<&str>,
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<(ElasticIp, Tags)> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        if let Some(d) = domain.filter(|d| *d != "vpc") {
            return Err(Error::invalid_value(format!(
                "Invalid value '{d}' for domain. Only 'vpc' is supported."
            )));
        }
        let tags = tags_for(tag_specs, ADDRESS_RESOURCE_TYPE)?;
        let limit = self.cfg.max_elastic_ips_per_account;
        self.db.write(|tx| {
            let mine: Vec<ElasticIp> = tx.list_docs(account)?;
            if mine.len() >= limit {
                return Err(Error::AddressLimitExceeded(
                    "The maximum number of addresses has been reached.".into(),
                ));
            }
            if tx.public_ips_of_account(&account.account)? >= self.cfg.public_ip_share() as i64 {
                return Err(Error::AddressLimitExceeded(format!(
                    "The maximum number of addresses has been reached: this account holds its share of the public address pool ({}).",
                    self.cfg.public_ip_share()
                )));
            }
            // An instance's auto-assigned address is taken too.
            let taken: HashSet<String> = tx.public_ips_in_use()?.into_iter().collect();
            let Some(ip) = first_free(&self.cfg.public_ip_pool, &taken) else {
                return Err(Error::AddressLimitExceeded(
                    "The maximum number of addresses has been reached.".into(),
                ));
            };
            Self::dry(dry_run)?;
            let a = ElasticIp {
                id: AllocationId::generate(),
                account_id: account.account.clone(),
                region: account.region.clone(),
                public_ip: ip.to_string(),
                domain: "vpc".into(),
                association: None,
                created_ms: now_ms(),
            };
            tx.insert_doc(&a)?;
            put_tags(tx, account, a.id.as_str(), ADDRESS_RESOURCE_TYPE, &tags)?;
            Ok((a, tags))
        })
    }

    /// DescribeAddresses: by public address, by allocation id (each must exist) or
    /// all, then filtered. Not paginated, as in EC2.
    pub fn describe_addresses(
        &self,
        caller: &Caller,
        public_ips: &[String],
        allocation_ids: &[AllocationId],
        filters: &FilterSet,
    ) -> Result<Vec<(ElasticIp, Tags)>> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let ips: Vec<String> = public_ips
            .iter()
            .map(|ip| parse_public_ip(ip))
            .collect::<Result<_>>()?;
        let region = caller.region.clone();
        self.db.read(|tx| {
            let all: Vec<ElasticIp> = tx.list_docs(account)?;
            for id in allocation_ids {
                if !all.iter().any(|a| &a.id == id) {
                    return Err(Error::not_found(ResourceKind::Address, id));
                }
            }
            for ip in &ips {
                if !all.iter().any(|a| &a.public_ip == ip) {
                    return Err(Error::NotFoundWithMessage {
                        kind: ResourceKind::PublicIp,
                        message: format!("Address '{ip}' not found."),
                    });
                }
            }
            let mut tags =
                crate::tags::tags_of_ids(tx, account, all.iter().map(|a| a.id.as_str()))?;
            Ok(all
                .into_iter()
                .filter(|a| {
                    (ips.is_empty() && allocation_ids.is_empty())
                        || ips.contains(&a.public_ip)
                        || allocation_ids.contains(&a.id)
                })
                .map(|a| {
                    let t = tags.remove(a.id.as_str()).unwrap_or_default();
                    (a, t)
                })
                .filter(|(a, t)| filters.matches(t, |n| field(a, &region, n)))
                .collect())
        })
    }

    /// AssociateAddress with an instance's primary private address. An address already
    /// associated moves only with `AllowReassociation`; an instance that already has
    /// another address loses it (that address stays allocated), as in EC2.
    pub fn associate_address(
        &self,
        caller: &Caller,
        address: &AddressRef,
        instance_id: &InstanceId,
        private_ip: Option<&str>,
        allow_reassociation: bool,
        dry_run: bool,
    ) -> Result<AddressAssociationId> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let mut a = load_address(tx, account, address)?;
            let inst = tx
                .instance(account, instance_id.as_str())?
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, instance_id))?;
            if matches!(
                inst.state,
                InstanceState::Terminated | InstanceState::ShuttingDown
            ) || inst.vpc_id.is_none()
            {
                return Err(Error::IncorrectInstanceState(format!(
                    "The instance '{}' is not in a valid state for this operation.",
                    inst.id
                )));
            }
            let Some(inst_private) = inst.private_ip.clone() else {
                return Err(Error::IncorrectInstanceState(format!(
                    "The instance '{}' has no private address.",
                    inst.id
                )));
            };
            if let Some(p) = private_ip {
                if p != inst_private {
                    return Err(Error::invalid_value(format!(
                        "The private IP address '{p}' is not associated with instance '{}'.",
                        inst.id
                    )));
                }
            }
            if a.association.is_some() && !allow_reassociation {
                return Err(Error::ResourceAlreadyAssociated(format!(
                    "resource {} is already associated with associate-id {}",
                    a.id,
                    a.association.as_ref().map(|x| x.id.as_str()).unwrap_or("")
                )));
            }
            Self::dry(dry_run)?;
            // The address leaves its old instance…
            clear_instance(tx, &self.cfg, account, &a)?;
            // …and the instance's old address (another one) is disassociated.
            for mut other in
                tx.list_docs_by::<ElasticIp>(account, "instance_id", inst.id.as_str())?
            {
                if other.id != a.id {
                    other.association = None;
                    tx.update_doc(&other)?;
                }
            }
            let assoc_id = AddressAssociationId::generate();
            a.association = Some(AddressAssociation {
                id: assoc_id.clone(),
                instance_id: inst.id.clone(),
                private_ip: inst_private,
            });
            tx.update_doc(&a)?;
            // Re-read: clearing the old association may have been this very instance.
            let mut inst = tx
                .instance(account, inst.id.as_str())?
                .ok_or_else(|| Error::not_found(ResourceKind::Instance, instance_id))?;
            inst.public_ip = Some(a.public_ip.clone());
            tx.update_instance(&inst)?;
            Ok(assoc_id)
        })
    }

    /// DisassociateAddress, by association id or by public address (an unassociated
    /// address named by its public address is left as it is).
    pub fn disassociate_address(
        &self,
        caller: &Caller,
        association: &AssociationRef,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let mut a = match association {
                AssociationRef::Association(id) => tx
                    .list_docs::<ElasticIp>(account)?
                    .into_iter()
                    .find(|a| a.association.as_ref().is_some_and(|x| &x.id == id))
                    .ok_or_else(|| Error::not_found(ResourceKind::AddressAssociation, id))?,
                AssociationRef::Public(ip) => {
                    load_address(tx, account, &AddressRef::Public(ip.clone()))?
                }
            };
            Self::dry(dry_run)?;
            if a.association.is_some() {
                clear_instance(tx, &self.cfg, account, &a)?;
                a.association = None;
                tx.update_doc(&a)?;
            }
            Ok(())
        })
    }

    /// ReleaseAddress: refused with `InvalidIPAddress.InUse` while associated; the
    /// address goes back to the pool.
    pub fn release_address(
        &self,
        caller: &Caller,
        address: &AddressRef,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let a = load_address(tx, account, address)?;
            if a.association.is_some() {
                return Err(Error::InvalidIpAddressInUse(
                    "Address is in use.".to_string(),
                ));
            }
            Self::dry(dry_run)?;
            tx.delete_doc::<ElasticIp>(account, a.id.as_str())?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_skip_network_and_broadcast() {
        let pool = Ipv4Cidr::parse("198.51.100.0/29").unwrap();
        let all: Vec<String> = pool_addresses(&pool).map(|a| a.to_string()).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all.first().unwrap(), "198.51.100.1");
        assert_eq!(all.last().unwrap(), "198.51.100.6");
        let one = Ipv4Cidr::parse("203.0.113.7/32").unwrap();
        assert_eq!(pool_addresses(&one).count(), 1);
        let mut taken: HashSet<String> = ["198.51.100.1", "198.51.100.3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            first_free(&pool, &taken),
            Some("198.51.100.2".parse().unwrap())
        );
        taken.extend(all);
        assert_eq!(first_free(&pool, &taken), None);
    }

    #[test]
    fn public_dns_names() {
        assert_eq!(
            public_dns_name("us-east-1", "198.51.100.1"),
            "ec2-198-51-100-1.compute-1.amazonaws.com"
        );
        assert_eq!(
            public_dns_name("eu-west-1", "198.51.100.1"),
            "ec2-198-51-100-1.eu-west-1.compute.amazonaws.com"
        );
    }
}
