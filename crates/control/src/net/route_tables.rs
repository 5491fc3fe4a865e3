//! Route tables: CreateRouteTable, DeleteRouteTable, DescribeRouteTables, CreateRoute,
//! DeleteRoute, AssociateRouteTable, DisassociateRouteTable.
//!
//! Every VPC has one main table (made with the VPC, deleted with it); a subnet uses
//! the table it is explicitly associated with, else the main one. Every table holds
//! the VPC's local route, which cannot be removed. Routes may target internet gateways
//! attached to the table's VPC.

use super::load;
use crate::page::{paginate, PageRequest};
use crate::tags::{put_tags, tags_for, tags_of_ids, TagSpec};
use crate::{Caller, ControlPlane, Tags};
use std::collections::HashMap;
use strato_common::cidr::Ipv4Cidr;
use strato_common::filter::FilterSet;
use strato_common::time_fmt::now_ms;
use strato_common::{
    Error, InternetGatewayId, ResourceId, ResourceKind, Result, RouteTableAssociationId,
    RouteTableId, SubnetId, VpcId,
};
use strato_domain::Scope;
use strato_store::{
    InternetGateway, Route, RouteTable, RouteTableAssociation, RouteTarget, Subnet, Vpc,
};

/// Filter names DescribeRouteTables accepts: every name EC2 documents (values in
/// `table_field`; `tag:<key>` is the generic tag filter).
pub const ROUTE_TABLE_FILTERS: &[&str] = &[
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

/// A route table as Describe calls show it: with tags and each route's state
/// (`active`, or `blackhole` when its gateway is gone or detached from the VPC).
#[derive(Clone, Debug)]
pub struct RouteTableInfo {
    /// The table, with its routes and associations.
    pub table: RouteTable,
    /// Its tags.
    pub tags: Tags,
    /// One state per route, in the order of `table.routes`.
    pub route_states: Vec<&'static str>,
}

/// What a route targets as EC2 writes it in `gatewayId`.
pub fn gateway_id_of(t: &RouteTarget) -> String {
    match t {
        RouteTarget::Local => "local".to_string(),
        RouteTarget::Gateway { id } => id.to_string(),
    }
}

fn route_states(
    table: &RouteTable,
    gateways: &HashMap<String, InternetGateway>,
) -> Vec<&'static str> {
    table
        .routes
        .iter()
        .map(|r| match &r.target {
            RouteTarget::Local => "active",
            RouteTarget::Gateway { id } => match gateways.get(id.as_str()) {
                Some(g) if g.vpc_id.as_ref() == Some(&table.vpc_id) => "active",
                _ => "blackhole",
            },
        })
        .collect()
}

/// A table's values for a DescribeRouteTables filter: what the answer shows for it.
/// Routes target the VPC (`local`) or internet gateways only, and associations are
/// with subnets or the VPC (main), so filters on other targets (IPv6 blocks, prefix
/// lists, egress-only internet gateways, instances, NAT and transit gateways, VPC
/// peering connections) and on gateway associations match nothing.
fn table_field(t: &RouteTable, states: &[&'static str], name: &str) -> Vec<String> {
    match name {
        "association.gateway-id" => vec![],
        "association.main" => t.associations.iter().map(|a| a.main.to_string()).collect(),
        "association.route-table-association-id" => {
            t.associations.iter().map(|a| a.id.to_string()).collect()
        }
        "association.route-table-id" => t.associations.iter().map(|_| t.id.to_string()).collect(),
        "association.subnet-id" => t
            .associations
            .iter()
            .filter_map(|a| a.subnet_id.as_ref().map(|s| s.to_string()))
            .collect(),
        "owner-id" => vec![t.account_id.to_string()],
        "route-table-id" => vec![t.id.to_string()],
        "route.destination-cidr-block" => t.routes.iter().map(|r| r.destination.clone()).collect(),
        "route.gateway-id" => t.routes.iter().map(|r| gateway_id_of(&r.target)).collect(),
        "route.origin" => t.routes.iter().map(|r| r.origin.clone()).collect(),
        "route.state" => states.iter().map(|s| s.to_string()).collect(),
        "vpc-id" => vec![t.vpc_id.to_string()],
        _ => vec![],
    }
}

/// Parses a route's `DestinationCidrBlock`. Public so that the front door can check it
/// before it parses the gateway id, which EC2 checks after it.
pub fn parse_destination(s: &str) -> Result<Ipv4Cidr> {
    Ipv4Cidr::parse(s).ok_or_else(|| {
        Error::invalid_value(format!(
            "Value ({s}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."
        ))
    })
}

impl ControlPlane {
    fn route_table_info(
        &self,
        caller: &Caller,
        table: RouteTable,
        tags: Tags,
    ) -> Result<RouteTableInfo> {
        let gateways: Vec<InternetGateway> = self.db.read(|tx| tx.list_docs(&caller.scope()))?;
        let by_id = gateways
            .into_iter()
            .map(|g| (g.id.to_string(), g))
            .collect();
        Ok(RouteTableInfo {
            route_states: route_states(&table, &by_id),
            table,
            tags,
        })
    }

    /// CreateRouteTable: a table with the local route and no associations. A retry with
    /// the same `ClientToken` returns the table the first call made.
    pub fn create_route_table(
        &self,
        caller: &Caller,
        vpc_id: &VpcId,
        client_token: Option<&str>,
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<RouteTableInfo> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let tags = tags_for(tag_specs, "route-table")?;
        if let Some(t) = client_token {
            if t.len() > 64 || !t.is_ascii() {
                return Err(Error::invalid_value(
                    "The client token must be at most 64 ASCII characters.",
                ));
            }
        }
        let now = now_ms();
        let (table, tags) = self.db.write(|tx| {
            let vpc: Vpc = load(tx, account, ResourceKind::Vpc, vpc_id.as_str())?;
            if let Some(token) = client_token {
                let all: Vec<RouteTable> = tx.list_docs(account)?;
                if let Some(t) = all.into_iter().find(|t| t.client_token.as_deref() == Some(token)) {
                    if t.vpc_id != vpc.id {
                        return Err(Error::IdempotentParameterMismatch(format!(
                            "The client token '{token}' has already been used with different parameters."
                        )));
                    }
                    Self::dry(dry_run)?;
                    let tags = tx.tags_of(account, t.id.as_str())?;
                    return Ok((t, tags));
                }
            }
            Self::dry(dry_run)?;
            let table = RouteTable {
                id: RouteTableId::generate(),
                account_id: account.account.clone(),
                region: account.region.clone(),
                vpc_id: vpc.id.clone(),
                routes: vec![super::defaults::local_route(&vpc.cidr_block)],
                associations: vec![],
                client_token: client_token.map(str::to_string),
                created_ms: now,
            };
            tx.insert_doc(&table)?;
            put_tags(tx, account, table.id.as_str(), "route-table", &tags)?;
            Ok((table, tags.clone()))
        })?;
        self.route_table_info(caller, table, tags)
    }

    /// DeleteRouteTable: the main table and tables with subnet associations are refused
    /// with `DependencyViolation`.
    pub fn delete_route_table(
        &self,
        caller: &Caller,
        id: &RouteTableId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let t: RouteTable = load(tx, account, ResourceKind::RouteTable, id.as_str())?;
            if !t.associations.is_empty() {
                return Err(Error::DependencyViolation(format!(
                    "The routeTable '{}' has dependencies and cannot be deleted.",
                    t.id
                )));
            }
            Self::dry(dry_run)?;
            tx.delete_doc::<RouteTable>(account, t.id.as_str())?;
            Ok(())
        })
    }

    /// DescribeRouteTables.
    pub fn describe_route_tables(
        &self,
        caller: &Caller,
        ids: &[RouteTableId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<RouteTableInfo>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let (tables, gateways, mut tags) = self.db.read(|tx| {
            let tables: Vec<RouteTable> = tx.list_docs(account)?;
            let gateways: Vec<InternetGateway> = tx.list_docs(account)?;
            let tags = tags_of_ids(tx, account, tables.iter().map(|t| t.id.as_str()))?;
            Ok((tables, gateways, tags))
        })?;
        for id in ids {
            if !tables.iter().any(|t| &t.id == id) {
                return Err(Error::not_found(ResourceKind::RouteTable, id));
            }
        }
        let by_id: HashMap<String, InternetGateway> = gateways
            .into_iter()
            .map(|g| (g.id.to_string(), g))
            .collect();
        let list: Vec<RouteTableInfo> = tables
            .into_iter()
            .filter(|t| ids.is_empty() || ids.contains(&t.id))
            .filter_map(|t| {
                let states = route_states(&t, &by_id);
                let tg = tags.remove(t.id.as_str()).unwrap_or_default();
                filters
                    .matches(&tg, |n| table_field(&t, &states, n))
                    .then_some(RouteTableInfo {
                        table: t,
                        tags: tg,
                        route_states: states,
                    })
            })
            .collect();
        Ok(paginate(list, page, |i| i.table.id.to_string()))
    }

    /// CreateRoute to an internet gateway attached to the table's VPC.
    pub fn create_route(
        &self,
        caller: &Caller,
        table_id: &RouteTableId,
        destination: &str,
        gateway_id: &InternetGatewayId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let dest = parse_destination(destination)?;
        self.db.write(|tx| {
            let mut t: RouteTable = load(tx, account, ResourceKind::RouteTable, table_id.as_str())?;
            let igw = gateway_of_table(tx, account, &t, gateway_id)?;
            let vpc: Vpc = load(tx, account, ResourceKind::Vpc, t.vpc_id.as_str())?;
            let vpc_block = Ipv4Cidr::parse(&vpc.cidr_block)
                .ok_or_else(|| Error::internal(format!("{} has a bad block", vpc.id)))?;
            if vpc_block.contains(&dest) {
                return Err(Error::invalid_value(format!(
                    "The destination CIDR block {dest} is equal to or more specific than one of this VPC's CIDR blocks. This route can target only an interface or an instance."
                )));
            }
            if t.routes.iter().any(|r| r.destination == dest.to_string()) {
                return Err(Error::RouteAlreadyExists(format!(
                    "The route identified by {dest} already exists."
                )));
            }
            Self::dry(dry_run)?;
            t.routes.push(Route {
                destination: dest.to_string(),
                target: RouteTarget::Gateway { id: igw.id },
                origin: "CreateRoute".to_string(),
            });
            tx.update_doc(&t)
        })
    }

    /// ReplaceRoute: the route to `destination` now leads to the internet gateway
    /// `gateway_id` (attached to the table's VPC). The local route keeps its target.
    pub fn replace_route(
        &self,
        caller: &Caller,
        table_id: &RouteTableId,
        destination: &str,
        gateway_id: &InternetGatewayId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let dest = parse_destination(destination)?.to_string();
        self.db.write(|tx| {
            let mut t: RouteTable = load(tx, account, ResourceKind::RouteTable, table_id.as_str())?;
            let igw = gateway_of_table(tx, account, &t, gateway_id)?;
            let route = t
                .routes
                .iter_mut()
                .find(|r| r.destination == dest)
                .ok_or_else(|| {
                    Error::InvalidRouteNotFound(format!(
                        "There is no route defined for '{dest}' in the route table. Use CreateRoute instead."
                    ))
                })?;
            if route.target == RouteTarget::Local {
                return Err(Error::invalid_value(format!(
                    "The local route {dest} of route table {} can only target the VPC.",
                    table_id
                )));
            }
            Self::dry(dry_run)?;
            route.target = RouteTarget::Gateway { id: igw.id };
            tx.update_doc(&t)
        })
    }

    /// DeleteRoute. The local route cannot be deleted.
    pub fn delete_route(
        &self,
        caller: &Caller,
        table_id: &RouteTableId,
        destination: &str,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let dest = parse_destination(destination)?.to_string();
        self.db.write(|tx| {
            let mut t: RouteTable = load(tx, account, ResourceKind::RouteTable, table_id.as_str())?;
            let pos = t
                .routes
                .iter()
                .position(|r| r.destination == dest)
                .ok_or_else(|| {
                    Error::InvalidRouteNotFound(format!(
                        "no route with destination-cidr-block {dest} in route table {}",
                        t.id
                    ))
                })?;
            if t.routes[pos].target == RouteTarget::Local {
                return Err(Error::invalid_value(format!(
                    "cannot remove local route {dest} in route table {}",
                    t.id
                )));
            }
            Self::dry(dry_run)?;
            t.routes.remove(pos);
            tx.update_doc(&t)
        })
    }

    /// AssociateRouteTable with a subnet of the same VPC that has no explicit
    /// association yet.
    pub fn associate_route_table(
        &self,
        caller: &Caller,
        table_id: &RouteTableId,
        subnet_id: &SubnetId,
        dry_run: bool,
    ) -> Result<RouteTableAssociationId> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let mut t: RouteTable = load(tx, account, ResourceKind::RouteTable, table_id.as_str())?;
            let subnet: Subnet = load(tx, account, ResourceKind::Subnet, subnet_id.as_str())?;
            if subnet.vpc_id != t.vpc_id {
                return Err(Error::invalid_value(format!(
                    "Route table {} and subnet {} belong to different networks",
                    t.id, subnet.id
                )));
            }
            let siblings: Vec<RouteTable> = tx.list_docs_by(account, "vpc_id", t.vpc_id.as_str())?;
            if siblings
                .iter()
                .flat_map(|s| &s.associations)
                .any(|a| a.subnet_id.as_ref() == Some(&subnet.id))
            {
                return Err(Error::ResourceAlreadyAssociated(format!(
                    "the specified association for route table {} conflicts with an existing association",
                    t.id
                )));
            }
            Self::dry(dry_run)?;
            let id = RouteTableAssociationId::generate();
            t.associations.push(RouteTableAssociation {
                id: id.clone(),
                subnet_id: Some(subnet.id),
                main: false,
            });
            tx.update_doc(&t)?;
            Ok(id)
        })
    }

    /// ReplaceRouteTableAssociation: the subnet (or, for the main association, the
    /// VPC) now uses `table_id`, under a new association id, in one transaction.
    pub fn replace_route_table_association(
        &self,
        caller: &Caller,
        id: &RouteTableAssociationId,
        table_id: &RouteTableId,
        dry_run: bool,
    ) -> Result<RouteTableAssociationId> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let mut target: RouteTable =
                load(tx, account, ResourceKind::RouteTable, table_id.as_str())?;
            let tables: Vec<RouteTable> = tx.list_docs(account)?;
            let mut from = tables
                .into_iter()
                .find(|t| t.associations.iter().any(|a| a.id == *id))
                .ok_or_else(|| Error::not_found(ResourceKind::RouteTableAssociation, id))?;
            if from.vpc_id != target.vpc_id {
                return Err(Error::invalid_value(format!(
                    "Route table {} and association {id} belong to different networks",
                    target.id
                )));
            }
            Self::dry(dry_run)?;
            let pos = from
                .associations
                .iter()
                .position(|a| a.id == *id)
                .ok_or_else(|| Error::internal("association vanished"))?;
            let old = from.associations.remove(pos);
            let new_id = RouteTableAssociationId::generate();
            let moved = RouteTableAssociation {
                id: new_id.clone(),
                ..old
            };
            if from.id == target.id {
                from.associations.push(moved);
                tx.update_doc(&from)?;
            } else {
                target.associations.push(moved);
                tx.update_doc(&from)?;
                tx.update_doc(&target)?;
            }
            Ok(new_id)
        })
    }

    /// DisassociateRouteTable: the subnet falls back to the main table. The main
    /// association itself cannot be removed.
    pub fn disassociate_route_table(
        &self,
        caller: &Caller,
        id: &RouteTableAssociationId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let tables: Vec<RouteTable> = tx.list_docs(account)?;
            let mut t = tables
                .into_iter()
                .find(|t| t.associations.iter().any(|a| a.id == *id))
                .ok_or_else(|| Error::not_found(ResourceKind::RouteTableAssociation, id))?;
            if t.associations.iter().any(|a| a.id == *id && a.main) {
                return Err(Error::invalid_value(format!(
                    "cannot disassociate the main route table association {id}"
                )));
            }
            Self::dry(dry_run)?;
            t.associations.retain(|a| a.id != *id);
            tx.update_doc(&t)
        })
    }
}

/// The internet gateway `id`, which must be attached to `table`'s VPC.
fn gateway_of_table(
    tx: &strato_store::WriteTx,
    account: &Scope,
    table: &RouteTable,
    id: &InternetGatewayId,
) -> Result<InternetGateway> {
    let igw: InternetGateway = load(tx, account, ResourceKind::InternetGateway, id.as_str())?;
    if igw.vpc_id.as_ref() != Some(&table.vpc_id) {
        return Err(Error::invalid_value(format!(
            "route table {} and network gateway {} belong to different networks",
            table.id, igw.id
        )));
    }
    Ok(igw)
}
