//! The network every account starts with, as AWS makes it: a default VPC
//! `172.31.0.0/16` with one default `/20` subnet per availability zone, the VPC's
//! default security group, a main route table with the local route and a `0.0.0.0/0`
//! route to an internet gateway attached to the VPC, and the account's default DHCP
//! options.
//!
//! **When.** Lazily: the first network call of an account (any VPC-family action,
//! RunInstances, DescribeAccountAttributes) creates them in one transaction, which
//! first checks the account's `network_defaults` row, so concurrent first calls and
//! retries after a crash create them exactly once. Creating them at account creation
//! instead would miss accounts made by older versions, and `strato accounts create`
//! does not know the region's zones. Once made they are never made again: a user who
//! deletes the default VPC gets it back only through CreateDefaultVpc, as on AWS.

use crate::ControlPlane;
use strato_common::cidr::Ipv4Cidr;
use strato_common::time_fmt::now_ms;
use strato_common::{
    generate_with_prefix, DhcpOptionsId, InternetGatewayId, ResourceId, RouteTableAssociationId,
    RouteTableId, SecurityGroupId, SecurityGroupRuleId, SubnetId, VpcId,
};
use strato_common::{Error, Result};
use strato_domain::Scope;
use strato_store::{
    DhcpOptions, InternetGateway, Route, RouteTable, RouteTableAssociation, RouteTarget, RulePeer,
    SecurityGroup, SecurityGroupRule, Subnet, Vpc, WriteTx,
};

/// The default VPC's block.
pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
/// The prefix length of default subnets (one `/20` per zone: `172.31.0.0/20`,
/// `172.31.16.0/20`, …).
pub const DEFAULT_SUBNET_PREFIX: u8 = 20;
/// The description EC2 gives every VPC's default security group.
pub const DEFAULT_GROUP_DESCRIPTION: &str = "default VPC security group";

impl ControlPlane {
    /// Makes sure the account's default network exists (see the module docs). Cheap
    /// after the first call: a set lookup in memory.
    pub fn ensure_network_defaults(&self, account: &Scope) -> Result<()> {
        let ready = |cp: &ControlPlane| {
            cp.network_ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(account)
        };
        if ready(self) {
            return Ok(());
        }
        if !self.db.read(|tx| tx.network_defaults_done(account))? {
            let created = self.db.write(|tx| {
                // Re-checked under the write lock: another request may have won.
                if tx.network_defaults_done(account)? {
                    return Ok(false);
                }
                let now = now_ms();
                let dopt = self.default_dhcp_options_tx(tx, account, now)?;
                self.create_default_vpc_tx(tx, account, Some(dopt), now)?;
                tx.mark_network_defaults_done(account, now)?;
                Ok(true)
            })?;
            if created {
                tracing::info!(account = %account, "created the account's default network");
            }
        }
        self.network_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account.clone());
        Ok(())
    }

    /// The DHCP options EC2 gives an account: the region's internal domain and the
    /// Amazon-provided DNS server.
    pub fn default_dhcp_configuration(&self, region: &str) -> Vec<(String, Vec<String>)> {
        let domain = if region == "us-east-1" {
            "ec2.internal".to_string()
        } else {
            format!("{region}.compute.internal")
        };
        vec![
            ("domain-name".to_string(), vec![domain]),
            (
                "domain-name-servers".to_string(),
                vec!["AmazonProvidedDNS".to_string()],
            ),
        ]
    }

    /// The account's default DHCP options, created when missing.
    pub(crate) fn default_dhcp_options_tx(
        &self,
        tx: &WriteTx,
        account: &Scope,
        now: i64,
    ) -> Result<DhcpOptionsId> {
        let existing: Vec<DhcpOptions> = tx.list_docs(account)?;
        if let Some(d) = existing.into_iter().find(|d| d.is_default) {
            return Ok(d.id);
        }
        let d = DhcpOptions {
            id: DhcpOptionsId::generate(),
            account_id: account.account.clone(),
            region: account.region.clone(),
            options: self.default_dhcp_configuration(&account.region),
            is_default: true,
            created_ms: now,
        };
        tx.insert_doc(&d)?;
        Ok(d.id)
    }

    /// Stores a new VPC with what every VPC comes with: its default security group
    /// (all traffic in from members of the group, all traffic out) and its main route
    /// table holding the local route.
    pub(crate) fn create_vpc_tx(&self, tx: &WriteTx, vpc: &Vpc, now: i64) -> Result<()> {
        tx.insert_doc(vpc)?;
        let group = SecurityGroup {
            id: SecurityGroupId::generate(),
            account_id: vpc.account_id.clone(),
            region: vpc.region.clone(),
            vpc_id: vpc.id.clone(),
            name: SecurityGroup::DEFAULT_NAME.to_string(),
            description: DEFAULT_GROUP_DESCRIPTION.to_string(),
            created_ms: now,
        };
        tx.insert_doc(&group)?;
        let from_itself = RulePeer::Group {
            group_id: group.id.clone(),
            account_id: vpc.account_id.clone(),
        };
        tx.insert_doc(&all_traffic_rule(&group, false, from_itself))?;
        tx.insert_doc(&all_traffic_rule(&group, true, anywhere()))?;
        let main = RouteTable {
            id: RouteTableId::generate(),
            account_id: vpc.account_id.clone(),
            region: vpc.region.clone(),
            vpc_id: vpc.id.clone(),
            routes: vec![local_route(&vpc.cidr_block)],
            associations: vec![RouteTableAssociation {
                id: RouteTableAssociationId::generate(),
                subnet_id: None,
                main: true,
            }],
            client_token: None,
            created_ms: now,
        };
        tx.insert_doc(&main)
    }

    /// Creates a default VPC with its default subnets and an attached internet gateway
    /// routed from the main table. The caller has checked that none exists.
    pub(crate) fn create_default_vpc_tx(
        &self,
        tx: &WriteTx,
        account: &Scope,
        dhcp_options_id: Option<DhcpOptionsId>,
        now: i64,
    ) -> Result<Vpc> {
        let block = Ipv4Cidr::parse(DEFAULT_VPC_CIDR).ok_or_else(|| Error::internal("cidr"))?;
        let vpc = Vpc {
            id: VpcId::generate(),
            account_id: account.account.clone(),
            region: account.region.clone(),
            cidr_block: block.to_string(),
            cidr_association_id: generate_with_prefix("vpc-cidr-assoc"),
            is_default: true,
            dhcp_options_id,
            instance_tenancy: "default".to_string(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
            created_ms: now,
        };
        self.create_vpc_tx(tx, &vpc, now)?;
        let per_subnet = 1u64 << (32 - DEFAULT_SUBNET_PREFIX);
        for (i, zone) in self.cfg.zones(&account.region).iter().enumerate() {
            // A /16 holds sixteen /20s; zones past that get no default subnet.
            let Some(start) = block.nth(i as u64 * per_subnet) else {
                break;
            };
            let cidr = Ipv4Cidr::new(start, DEFAULT_SUBNET_PREFIX)
                .ok_or_else(|| Error::internal("default subnet block"))?;
            tx.insert_doc(&Subnet {
                id: SubnetId::generate(),
                account_id: account.account.clone(),
                region: account.region.clone(),
                vpc_id: vpc.id.clone(),
                cidr_block: cidr.to_string(),
                availability_zone: zone.clone(),
                default_for_az: true,
                map_public_ip_on_launch: true,
                created_ms: now,
            })?;
        }
        let igw = InternetGateway {
            id: InternetGatewayId::generate(),
            account_id: account.account.clone(),
            region: account.region.clone(),
            vpc_id: Some(vpc.id.clone()),
            created_ms: now,
        };
        tx.insert_doc(&igw)?;
        let mut main = self.main_route_table_tx(tx, account, &vpc.id)?;
        main.routes.push(Route {
            destination: "0.0.0.0/0".to_string(),
            target: RouteTarget::Gateway { id: igw.id.clone() },
            origin: "CreateRoute".to_string(),
        });
        tx.update_doc(&main)?;
        Ok(vpc)
    }

    /// The main route table of a VPC.
    pub(crate) fn main_route_table_tx(
        &self,
        tx: &WriteTx,
        account: &Scope,
        vpc: &VpcId,
    ) -> Result<RouteTable> {
        let tables: Vec<RouteTable> = tx.list_docs_by(account, "vpc_id", vpc.as_str())?;
        tables
            .into_iter()
            .find(|t| t.is_main())
            .ok_or_else(|| Error::internal(format!("{vpc} has no main route table")))
    }
}

/// The route every table has: the VPC's own block, delivered locally.
pub(crate) fn local_route(vpc_cidr: &str) -> Route {
    Route {
        destination: vpc_cidr.to_string(),
        target: RouteTarget::Local,
        origin: "CreateRouteTable".to_string(),
    }
}

/// `0.0.0.0/0` as a rule peer.
pub(crate) fn anywhere() -> RulePeer {
    RulePeer::Ipv4 {
        cidr: "0.0.0.0/0".to_string(),
    }
}

/// A rule allowing all protocols and ports to or from `peer`.
pub(crate) fn all_traffic_rule(
    group: &SecurityGroup,
    egress: bool,
    peer: RulePeer,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: SecurityGroupRuleId::generate(),
        account_id: group.account_id.clone(),
        region: group.region.clone(),
        group_id: group.id.clone(),
        egress,
        protocol: "-1".to_string(),
        from_port: None,
        to_port: None,
        peer,
        description: None,
    }
}
