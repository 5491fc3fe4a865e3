//! VPCs: CreateVpc, DeleteVpc, DescribeVpcs, ModifyVpcAttribute, DescribeVpcAttribute,
//! CreateDefaultVpc; and DescribeDhcpOptions, whose sets VPCs refer to.

use super::{describe, flag, load, Tagged, MAX_PREFIX, MIN_PREFIX};
use crate::page::PageRequest;
use crate::tags::{put_tags, tags_for, TagSpec};
use crate::{Caller, ControlPlane};
use strato_common::cidr::Ipv4Cidr;
use strato_common::filter::FilterSet;
use strato_common::time_fmt::now_ms;
use strato_common::{
    generate_with_prefix, DhcpOptionsId, Error, ResourceId, ResourceKind, Result, VpcId,
};
use strato_store::{
    DhcpOptions, InternetGateway, NetworkColumn, RouteTable, SecurityGroup, SecurityGroupRule,
    Subnet, Vpc,
};

/// Filter names DescribeVpcs accepts.
pub const VPC_FILTERS: &[&str] = &[
    "cidr",
    // Not in EC2's documentation, but EC2 answers it and Ansible's ec2_vpc_net sends it.
    "cidr-block",
    "cidr-block-association.cidr-block",
    "cidr-block-association.association-id",
    "cidr-block-association.state",
    "dhcp-options-id",
    "ipv6-cidr-block-association.ipv6-cidr-block",
    "ipv6-cidr-block-association.ipv6-pool",
    "ipv6-cidr-block-association.association-id",
    "ipv6-cidr-block-association.state",
    "is-default",
    "owner-id",
    "state",
    "vpc-id",
];

/// Filter names DescribeDhcpOptions accepts.
pub const DHCP_FILTERS: &[&str] = &["dhcp-options-id", "key", "value", "owner-id"];

/// A CreateVpc request.
#[derive(Clone, Debug, Default)]
pub struct CreateVpcInput {
    /// `CidrBlock`.
    pub cidr_block: Option<String>,
    /// `InstanceTenancy` (only `default` is served).
    pub instance_tenancy: Option<String>,
    /// `TagSpecification.N`.
    pub tag_specs: Vec<TagSpec>,
}

/// The VPC attributes ModifyVpcAttribute changes and DescribeVpcAttribute reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VpcAttribute {
    /// Whether the Amazon-provided DNS server answers in the VPC.
    EnableDnsSupport,
    /// Whether instances get public DNS host names.
    EnableDnsHostnames,
    /// Always off: Strato publishes no address usage metrics.
    EnableNetworkAddressUsageMetrics,
}

impl VpcAttribute {
    /// Parses EC2's attribute name (`enableDnsSupport`…).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "enableDnsSupport" => Ok(VpcAttribute::EnableDnsSupport),
            "enableDnsHostnames" => Ok(VpcAttribute::EnableDnsHostnames),
            "enableNetworkAddressUsageMetrics" => Ok(VpcAttribute::EnableNetworkAddressUsageMetrics),
            other => Err(Error::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Valid values: enableDnsSupport, enableDnsHostnames, enableNetworkAddressUsageMetrics."
            ))),
        }
    }

    /// The attribute's value on a VPC.
    pub fn value(self, vpc: &Vpc) -> bool {
        match self {
            VpcAttribute::EnableDnsSupport => vpc.enable_dns_support,
            VpcAttribute::EnableDnsHostnames => vpc.enable_dns_hostnames,
            VpcAttribute::EnableNetworkAddressUsageMetrics => false,
        }
    }
}

/// Parses a VPC block: well formed, else `InvalidParameterValue`; `/16` to `/28`, else
/// `InvalidVpc.Range`.
pub fn parse_vpc_cidr(s: &str) -> Result<Ipv4Cidr> {
    let cidr = Ipv4Cidr::parse(s).ok_or_else(|| {
        Error::invalid_value(format!(
            "Value ({s}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
        ))
    })?;
    if !(MIN_PREFIX..=MAX_PREFIX).contains(&cidr.prefix_len()) {
        return Err(Error::InvalidVpcRange(format!(
            "The CIDR '{s}' is invalid."
        )));
    }
    Ok(cidr)
}

fn vpc_field(v: &Vpc, name: &str) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    match name {
        "cidr" | "cidr-block" | "cidr-block-association.cidr-block" => one(&v.cidr_block),
        "cidr-block-association.association-id" => one(&v.cidr_association_id),
        "cidr-block-association.state" => one("associated"),
        "dhcp-options-id" => one(v.dhcp_options_id.as_ref().map_or("default", |d| d.as_str())),
        "is-default" => flag(v.is_default),
        "owner-id" => one(v.account_id.as_str()),
        "state" => one("available"),
        "vpc-id" => one(v.id.as_str()),
        _ => vec![],
    }
}

impl ControlPlane {
    /// CreateVpc. Blocks of different VPCs may overlap, as in EC2.
    pub fn create_vpc(
        &self,
        caller: &Caller,
        input: &CreateVpcInput,
        dry_run: bool,
    ) -> Result<Tagged<Vpc>> {
        let caller = self.net_caller(caller)?;
        let cidr = match input.cidr_block.as_deref() {
            Some(s) if !s.is_empty() => parse_vpc_cidr(s)?,
            _ => {
                return Err(Error::MissingParameter(
                    "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.".into(),
                ))
            }
        };
        let tenancy = match input.instance_tenancy.as_deref() {
            None | Some("default") => "default",
            Some("dedicated") | Some("host") => {
                return Err(Error::Unsupported(
                    "Dedicated instance tenancy is not supported by this endpoint.".into(),
                ))
            }
            Some(other) => {
                return Err(Error::invalid_value(format!(
                    "Value ({other}) for parameter instanceTenancy is invalid. Valid values: default, dedicated, host."
                )))
            }
        };
        let tags = tags_for(&input.tag_specs, "vpc")?;
        Self::dry(dry_run)?;
        let now = now_ms();
        let vpc = self.db.write(|tx| {
            let dopt = self.default_dhcp_options_tx(tx, &caller.scope(), now)?;
            let vpc = Vpc {
                id: VpcId::generate(),
                account_id: caller.account.clone(),
                region: caller.region.clone(),
                cidr_block: cidr.to_string(),
                cidr_association_id: generate_with_prefix("vpc-cidr-assoc"),
                is_default: false,
                dhcp_options_id: Some(dopt),
                instance_tenancy: tenancy.to_string(),
                enable_dns_support: true,
                enable_dns_hostnames: false,
                created_ms: now,
            };
            self.create_vpc_tx(tx, &vpc, now)?;
            put_tags(tx, &caller.scope(), vpc.id.as_str(), "vpc", &tags)?;
            Ok(vpc)
        })?;
        tracing::info!(vpc = %vpc.id, cidr = %vpc.cidr_block, "vpc created");
        Ok((vpc, tags))
    }

    /// CreateDefaultVpc: a new default VPC with its default subnets and internet
    /// gateway, when the account has none.
    pub fn create_default_vpc(&self, caller: &Caller, dry_run: bool) -> Result<Tagged<Vpc>> {
        let caller = self.net_caller(caller)?;
        let exists = |tx: &strato_store::ReadTx| -> Result<()> {
            let defaults: Vec<Vpc> = tx.list_docs_by(&caller.scope(), "is_default", "true")?;
            if defaults.is_empty() {
                Ok(())
            } else {
                Err(Error::DefaultVpcAlreadyExists(
                    "A Default VPC already exists for this account in this region.".into(),
                ))
            }
        };
        self.db.read(|tx| exists(tx))?;
        Self::dry(dry_run)?;
        let now = now_ms();
        let vpc = self.db.write(|tx| {
            exists(tx)?;
            let dopt = self.default_dhcp_options_tx(tx, &caller.scope(), now)?;
            self.create_default_vpc_tx(tx, &caller.scope(), Some(dopt), now)
        })?;
        Ok((vpc, vec![]))
    }

    /// DeleteVpc. Refused with `DependencyViolation` while the VPC has subnets,
    /// instances, security groups other than its default one, route tables other than
    /// its main one, or an attached internet gateway; the default group and the main
    /// table go with the VPC.
    pub fn delete_vpc(&self, caller: &Caller, id: &VpcId, dry_run: bool) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let vpc: Vpc = load(tx, account, ResourceKind::Vpc, id.as_str())?;
            let busy = || {
                Error::DependencyViolation(format!(
                    "The vpc '{}' has dependencies and cannot be deleted.",
                    vpc.id
                ))
            };
            let subnets: Vec<Subnet> = tx.list_docs_by(account, "vpc_id", id.as_str())?;
            let groups: Vec<SecurityGroup> = tx.list_docs_by(account, "vpc_id", id.as_str())?;
            let gateways: Vec<InternetGateway> = tx.list_docs_by(account, "vpc_id", id.as_str())?;
            let tables: Vec<RouteTable> = tx.list_docs_by(account, "vpc_id", id.as_str())?;
            if !subnets.is_empty()
                || !gateways.is_empty()
                || groups.iter().any(|g| !g.is_default())
                || tables.iter().any(|t| !t.is_main())
                || tx.count_live_instances_in(account, NetworkColumn::Vpc, id.as_str())? > 0
            {
                return Err(busy());
            }
            Self::dry(dry_run)?;
            for g in &groups {
                let rules: Vec<SecurityGroupRule> =
                    tx.list_docs_by(account, "group_id", g.id.as_str())?;
                for r in rules {
                    tx.delete_doc::<SecurityGroupRule>(account, r.id.as_str())?;
                }
                tx.delete_doc::<SecurityGroup>(account, g.id.as_str())?;
            }
            for t in &tables {
                tx.delete_doc::<RouteTable>(account, t.id.as_str())?;
            }
            tx.delete_doc::<Vpc>(account, id.as_str())?;
            // The default network ACL is derived from the VPC; its tags go with it.
            tx.delete_tags_of(account, super::acls::default_acl_id(id.as_str()).as_str())?;
            Ok(())
        })?;
        tracing::info!(vpc = %id, "vpc deleted");
        Ok(())
    }

    /// DescribeVpcs.
    pub fn describe_vpcs(
        &self,
        caller: &Caller,
        ids: &[VpcId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Tagged<Vpc>>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        self.db.read(|tx| {
            describe(
                tx,
                &caller.scope(),
                ResourceKind::Vpc,
                ids,
                filters,
                page,
                vpc_field,
            )
        })
    }

    /// One VPC of the caller (DescribeVpcAttribute).
    pub fn vpc(&self, caller: &Caller, id: &VpcId) -> Result<Vpc> {
        let caller = self.net_caller(caller)?;
        self.db
            .read(|tx| load(tx, &caller.scope(), ResourceKind::Vpc, id.as_str()))
    }

    /// The caller's default VPC, if it has one.
    pub fn default_vpc(&self, caller: &Caller) -> Result<Option<Vpc>> {
        let caller = self.net_caller(caller)?;
        let list: Vec<Vpc> = self
            .db
            .read(|tx| tx.list_docs_by(&caller.scope(), "is_default", "true"))?;
        Ok(list.into_iter().next())
    }

    /// ModifyVpcAttribute (one attribute per call, as EC2 requires).
    pub fn modify_vpc_attribute(
        &self,
        caller: &Caller,
        id: &VpcId,
        attribute: VpcAttribute,
        value: bool,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        if attribute == VpcAttribute::EnableNetworkAddressUsageMetrics {
            return Err(Error::Unsupported(
                "Network address usage metrics are not supported by this endpoint.".into(),
            ));
        }
        self.db.write(|tx| {
            let mut vpc: Vpc = load(tx, &caller.scope(), ResourceKind::Vpc, id.as_str())?;
            match attribute {
                VpcAttribute::EnableDnsSupport => vpc.enable_dns_support = value,
                VpcAttribute::EnableDnsHostnames => vpc.enable_dns_hostnames = value,
                VpcAttribute::EnableNetworkAddressUsageMetrics => {}
            }
            Self::dry(dry_run)?;
            tx.update_doc(&vpc)
        })
    }

    /// DescribeDhcpOptions.
    pub fn describe_dhcp_options(
        &self,
        caller: &Caller,
        ids: &[DhcpOptionsId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Tagged<DhcpOptions>>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        self.db.read(|tx| {
            describe(
                tx,
                &caller.scope(),
                ResourceKind::DhcpOptions,
                ids,
                filters,
                page,
                |d: &DhcpOptions, name| match name {
                    "dhcp-options-id" => vec![d.id.to_string()],
                    "key" => d.options.iter().map(|(k, _)| k.clone()).collect(),
                    "value" => d.options.iter().flat_map(|(_, v)| v.clone()).collect(),
                    "owner-id" => vec![d.account_id.to_string()],
                    _ => vec![],
                },
            )
        })
    }
}
