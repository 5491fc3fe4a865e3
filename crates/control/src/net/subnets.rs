//! Subnets: CreateSubnet, DeleteSubnet, DescribeSubnets, ModifySubnetAttribute, and
//! the allocation of instances' private addresses from a subnet.

use super::{flag, load, MAX_PREFIX, MIN_PREFIX};
use crate::page::{paginate, PageRequest};
use crate::tags::{put_tags, tags_for, tags_of_ids, TagSpec};
use crate::{catalog, Caller, ControlPlane, Tags};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use strato_common::cidr::{Ipv4Cidr, SUBNET_RESERVED};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::now_ms;
use strato_common::{Error, ResourceId, ResourceKind, Result, SubnetId, VpcId};
use strato_domain::Scope;
use strato_store::{NetworkColumn, ReadTx, RouteTable, Subnet, Vpc, WriteTx};

/// Filter names DescribeSubnets accepts: every name EC2 documents (values in
/// `subnet_field`; `tag:<key>` is the generic tag filter), and the older `cidr`,
/// `cidrBlock` and `defaultForAz`, which EC2 accepts too.
pub const SUBNET_FILTERS: &[&str] = &[
    "availability-zone",
    "availability-zone-id",
    "available-ip-address-count",
    // Not documented, but EC2 accepts it.
    "cidr",
    "cidr-block",
    // Not documented, but EC2 accepts it.
    "cidrBlock",
    "customer-owned-ipv4-pool",
    "default-for-az",
    // Not documented, but EC2 accepts it.
    "defaultForAz",
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

/// A CreateSubnet request.
#[derive(Clone, Debug, Default)]
pub struct CreateSubnetInput {
    /// `VpcId`.
    pub vpc_id: Option<VpcId>,
    /// `CidrBlock`.
    pub cidr_block: Option<String>,
    /// `AvailabilityZone`.
    pub availability_zone: Option<String>,
    /// `AvailabilityZoneId` (`use1-az1`…).
    pub availability_zone_id: Option<String>,
    /// `TagSpecification.N`.
    pub tag_specs: Vec<TagSpec>,
}

/// A subnet as Describe calls show it: with its tags and how many addresses are free.
#[derive(Clone, Debug)]
pub struct SubnetInfo {
    /// The subnet.
    pub subnet: Subnet,
    /// Its tags.
    pub tags: Tags,
    /// Addresses not reserved by EC2 and not held by an instance.
    pub available_ips: u64,
}

/// The block of a stored subnet (always canonical: it was parsed before it was stored).
pub(crate) fn block_of(s: &Subnet) -> Result<Ipv4Cidr> {
    Ipv4Cidr::parse(&s.cidr_block)
        .ok_or_else(|| Error::internal(format!("{} has a bad block {}", s.id, s.cidr_block)))
}

impl ControlPlane {
    /// A subnet's values for a DescribeSubnets filter: what the answer shows for it.
    /// Outposts (customer-owned pools, `outpost-arn`), IPv6 blocks and LNI device
    /// indexes do not exist here, so those filters match nothing.
    fn subnet_field(&self, s: &Subnet, available: u64, name: &str) -> Vec<String> {
        let one = |v: &str| vec![v.to_string()];
        match name {
            "availability-zone" => one(&s.availability_zone),
            "availability-zone-id" => one(&catalog::zone_id(&s.region, &s.availability_zone)),
            "available-ip-address-count" => vec![available.to_string()],
            "cidr" | "cidr-block" | "cidrBlock" => one(&s.cidr_block),
            "default-for-az" | "defaultForAz" => flag(s.default_for_az),
            "ipv6-native" | "enable-dns64" | "map-customer-owned-ip-on-launch" => flag(false),
            "private-dns-name-options-on-launch.hostname-type" => one("ip-name"),
            "private-dns-name-options-on-launch.enable-resource-name-dns-a-record"
            | "private-dns-name-options-on-launch.enable-resource-name-dns-aaaa-record" => {
                flag(false)
            }
            "map-public-ip-on-launch" => flag(s.map_public_ip_on_launch),
            "owner-id" => one(s.account_id.as_str()),
            "state" => one("available"),
            "subnet-arn" => one(&Self::arn(
                &s.region,
                &s.account_id,
                "subnet",
                s.id.as_str(),
            )),
            "subnet-id" => one(s.id.as_str()),
            "vpc-id" => one(s.vpc_id.as_str()),
            _ => vec![],
        }
    }

    /// CreateSubnet. The block must be a `/16` to `/28` inside the VPC's block
    /// (`InvalidSubnet.Range`) and overlap no other subnet of the VPC
    /// (`InvalidSubnet.Conflict`); the zone defaults to the region's first.
    pub fn create_subnet(
        &self,
        caller: &Caller,
        input: &CreateSubnetInput,
        dry_run: bool,
    ) -> Result<SubnetInfo> {
        let caller = self.net_caller(caller)?;
        let vpc_id = input
            .vpc_id
            .as_ref()
            .ok_or_else(|| Error::MissingParameter("VpcId".into()))?;
        let text = input
            .cidr_block
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::MissingParameter("CidrBlock".into()))?;
        let cidr = Ipv4Cidr::parse(text).ok_or_else(|| {
            Error::invalid_value(format!(
                "Value ({text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
            ))
        })?;
        let out_of_range = || Error::InvalidSubnetRange(format!("The CIDR '{text}' is invalid."));
        if !(MIN_PREFIX..=MAX_PREFIX).contains(&cidr.prefix_len()) {
            return Err(out_of_range());
        }
        let zone = match (&input.availability_zone, &input.availability_zone_id) {
            (Some(_), Some(_)) => {
                return Err(Error::InvalidParameterCombination(
                    "Only one of availabilityZone and availabilityZoneId may be given.".into(),
                ))
            }
            (Some(z), None) => self.zone(&caller.region, z)?,
            (None, Some(id)) => self
                .cfg
                .zones(&caller.region)
                .into_iter()
                .find(|z| catalog::zone_id(&caller.region, z) == *id)
                .ok_or_else(|| {
                    Error::invalid_value(format!(
                        "Value ({id}) for parameter availabilityZoneId is invalid."
                    ))
                })?,
            (None, None) => self
                .cfg
                .zones(&caller.region)
                .into_iter()
                .next()
                .ok_or_else(|| Error::internal("the region has no zones"))?,
        };
        let tags = tags_for(&input.tag_specs, "subnet")?;
        let now = now_ms();
        let subnet = self.db.write(|tx| {
            let vpc: Vpc = load(tx, &caller.scope(), ResourceKind::Vpc, vpc_id.as_str())?;
            let vpc_block = Ipv4Cidr::parse(&vpc.cidr_block)
                .ok_or_else(|| Error::internal(format!("{} has a bad block", vpc.id)))?;
            if !vpc_block.contains(&cidr) {
                return Err(out_of_range());
            }
            let siblings: Vec<Subnet> =
                tx.list_docs_by(&caller.scope(), "vpc_id", vpc_id.as_str())?;
            for s in &siblings {
                if block_of(s)?.overlaps(&cidr) {
                    return Err(Error::InvalidSubnetConflict(format!(
                        "The CIDR '{text}' conflicts with another subnet"
                    )));
                }
            }
            Self::dry(dry_run)?;
            let subnet = Subnet {
                id: SubnetId::generate(),
                account_id: caller.account.clone(),
                region: caller.region.clone(),
                vpc_id: vpc_id.clone(),
                cidr_block: cidr.to_string(),
                availability_zone: zone.clone(),
                default_for_az: false,
                map_public_ip_on_launch: false,
                created_ms: now,
            };
            tx.insert_doc(&subnet)?;
            put_tags(tx, &caller.scope(), subnet.id.as_str(), "subnet", &tags)?;
            Ok(subnet)
        })?;
        tracing::info!(subnet = %subnet.id, vpc = %subnet.vpc_id, cidr = %subnet.cidr_block, "subnet created");
        Ok(SubnetInfo {
            available_ips: cidr.usable(),
            subnet,
            tags,
        })
    }

    /// DeleteSubnet: refused with `DependencyViolation` while instances that are not
    /// terminated are in it. Its explicit route table association goes with it.
    pub fn delete_subnet(&self, caller: &Caller, id: &SubnetId, dry_run: bool) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let subnet: Subnet = load(tx, account, ResourceKind::Subnet, id.as_str())?;
            if tx.count_live_instances_in(account, NetworkColumn::Subnet, id.as_str())? > 0
                || super::interfaces::subnet_in_use(tx, account, id.as_str())?
            {
                return Err(Error::DependencyViolation(format!(
                    "The subnet '{id}' has dependencies and cannot be deleted."
                )));
            }
            Self::dry(dry_run)?;
            let tables: Vec<RouteTable> =
                tx.list_docs_by(account, "vpc_id", subnet.vpc_id.as_str())?;
            for mut t in tables {
                let before = t.associations.len();
                t.associations
                    .retain(|a| a.subnet_id.as_ref() != Some(&subnet.id));
                if t.associations.len() != before {
                    tx.update_doc(&t)?;
                }
            }
            tx.delete_doc::<Subnet>(account, id.as_str())?;
            Ok(())
        })?;
        tracing::info!(subnet = %id, "subnet deleted");
        Ok(())
    }

    /// DescribeSubnets.
    pub fn describe_subnets(
        &self,
        caller: &Caller,
        ids: &[SubnetId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<SubnetInfo>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let (subnets, counts, mut tags) = self.db.read(|tx| {
            let all: Vec<Subnet> = tx.list_docs(account)?;
            let counts = tx.subnet_address_counts(account)?;
            let tags = tags_of_ids(tx, account, all.iter().map(|s| s.id.as_str()))?;
            Ok((all, counts, tags))
        })?;
        let mut by_id: HashMap<String, Subnet> =
            subnets.into_iter().map(|s| (s.id.to_string(), s)).collect();
        let mut chosen: Vec<Subnet> = if ids.is_empty() {
            by_id.into_values().collect()
        } else {
            let mut out = vec![];
            for id in ids {
                if out.iter().any(|s: &Subnet| &s.id == id) {
                    continue;
                }
                out.push(
                    by_id
                        .remove(id.as_str())
                        .ok_or_else(|| Error::not_found(ResourceKind::Subnet, id))?,
                );
            }
            out
        };
        chosen.sort_by(|a, b| a.id.cmp(&b.id));
        let mut list = vec![];
        for s in chosen {
            let taken = counts.get(s.id.as_str()).copied().unwrap_or(0);
            let available = block_of(&s)?.usable().saturating_sub(taken);
            let t = tags.remove(s.id.as_str()).unwrap_or_default();
            if filters.matches(&t, |n| self.subnet_field(&s, available, n)) {
                list.push(SubnetInfo {
                    subnet: s,
                    tags: t,
                    available_ips: available,
                });
            }
        }
        Ok(paginate(list, page, |i| i.subnet.id.to_string()))
    }

    /// ModifySubnetAttribute `MapPublicIpOnLaunch`.
    pub fn modify_subnet_map_public_ip(
        &self,
        caller: &Caller,
        id: &SubnetId,
        value: bool,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        self.db.write(|tx| {
            let mut s: Subnet = load(tx, &caller.scope(), ResourceKind::Subnet, id.as_str())?;
            Self::dry(dry_run)?;
            s.map_public_ip_on_launch = value;
            tx.update_doc(&s)
        })
    }
}

/// The private addresses of one subnet as a launch transaction sees them: read once,
/// then counted and allocated from.
pub(crate) struct SubnetAddresses<'s> {
    subnet: &'s Subnet,
    block: Ipv4Cidr,
    /// Taken address indexes (offsets from the network address), ascending.
    taken: Vec<u64>,
}

impl<'s> SubnetAddresses<'s> {
    /// Reads the taken addresses of `subnet` inside the caller's transaction.
    pub(crate) fn load(tx: &ReadTx, account: &Scope, subnet: &'s Subnet) -> Result<Self> {
        Ok(SubnetAddresses {
            subnet,
            block: block_of(subnet)?,
            taken: tx.subnet_addresses(account, subnet.id.as_str())?,
        })
    }

    /// How many addresses are free.
    pub(crate) fn free(&self) -> u64 {
        self.block.usable().saturating_sub(self.taken.len() as u64)
    }

    /// Takes one requested address (RunInstances `PrivateIpAddress`) for `instance`: it
    /// must lie in the subnet, outside EC2's five reserved addresses, and be free.
    pub(crate) fn allocate_exact(
        &self,
        tx: &WriteTx,
        account: &Scope,
        address: Ipv4Addr,
        instance: &str,
    ) -> Result<Ipv4Addr> {
        let index = self.block.index_of(address).ok_or_else(|| {
            Error::invalid_value(format!(
                "Address {address} does not fall within the subnet's address range"
            ))
        })?;
        if self.block.is_reserved(address) {
            return Err(Error::invalid_value(format!(
                "Address {address} is in subnet's reserved address range"
            )));
        }
        if self.taken.contains(&index) {
            return Err(Error::InvalidIpAddressInUse(format!(
                "Address {address} is in use."
            )));
        }
        tx.take_subnet_address(account, self.subnet.id.as_str(), index, instance)?;
        Ok(address)
    }

    /// Takes the lowest free addresses for `instances` (in order). EC2's five reserved
    /// addresses are never handed out; an address is held until its instance is
    /// terminated.
    pub(crate) fn allocate(
        &self,
        tx: &WriteTx,
        account: &Scope,
        instances: &[&str],
    ) -> Result<Vec<Ipv4Addr>> {
        let mut taken = self.taken.iter().copied().peekable();
        let mut out = Vec::with_capacity(instances.len());
        // Indexes 0-3 and the last are reserved; the first usable index is 4.
        let mut candidate = SUBNET_RESERVED - 1;
        let last_usable = self.block.size() - 1;
        for instance in instances {
            loop {
                while taken.peek().is_some_and(|t| *t < candidate) {
                    taken.next();
                }
                if taken.peek() == Some(&candidate) {
                    candidate += 1;
                    continue;
                }
                break;
            }
            if candidate >= last_usable {
                return Err(Error::InsufficientFreeAddressesInSubnet(format!(
                    "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                    self.subnet.id
                )));
            }
            tx.take_subnet_address(account, self.subnet.id.as_str(), candidate, instance)?;
            out.push(
                self.block
                    .nth(candidate)
                    .ok_or_else(|| Error::internal("address outside its subnet"))?,
            );
            candidate += 1;
        }
        Ok(out)
    }
}
