//! Internet gateway, route table and network ACL actions: typed requests to the
//! control plane, its records to the model's output types.

use super::{id, ids, non_empty, page, tag_set, tag_specs, Ctx};
use strato_common::{Error, InternetGatewayId, Result, RouteTableId};
use strato_control::net::acls::{NetworkAcl, ACL_FILTERS};
use strato_control::net::gateways::{ATTACHED_STATE, GATEWAY_FILTERS};
use strato_control::net::route_tables::{
    gateway_id_of, parse_destination, RouteTableInfo, ROUTE_TABLE_FILTERS,
};
use strato_control::ControlPlane;
use strato_domain::InternetGateway;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types as wire;

/// A member the model leaves optional but Strato needs (it serves one form of the
/// operation): absent or empty is `MissingParameter` naming it, as for required ones.
fn required(value: Option<String>, name: &str) -> Result<String> {
    non_empty(value).ok_or_else(|| Error::MissingParameter(name.to_string()))
}

/// The table, destination and internet gateway of a CreateRoute or ReplaceRoute, checked
/// in EC2's order: both present, then the table id, the destination block and the
/// gateway id. The gateway is always an internet gateway here, so `local` and ids of
/// other gateways answer `InvalidInternetGatewayID.Malformed`, as they always have.
fn route_target(
    table: &str,
    destination: Option<String>,
    gateway: Option<String>,
) -> Result<(RouteTableId, String, InternetGatewayId)> {
    let destination = required(destination, "DestinationCidrBlock")?;
    let gateway = required(gateway, "GatewayId")?;
    let table = id(table)?;
    parse_destination(&destination)?;
    Ok((table, destination, id(&gateway)?))
}

/// EC2's `associationState` of a route table association, which Strato only reports
/// once it is made.
fn associated() -> Option<wire::RouteTableAssociationState> {
    Some(wire::RouteTableAssociationState {
        state: Some(wire::RouteTableAssociationStateCode::Associated),
        status_message: None,
    })
}

/// An internet gateway as EC2 describes it. `attachmentSet` is always written (empty
/// when detached).
fn gateway_item(g: &InternetGateway, tags: &[(String, String)]) -> wire::InternetGateway {
    wire::InternetGateway {
        internet_gateway_id: Some(g.id.to_string()),
        owner_id: Some(g.account_id.to_string()),
        attachments: Some(
            g.vpc_id
                .iter()
                .map(|vpc| wire::InternetGatewayAttachment {
                    vpc_id: Some(vpc.to_string()),
                    // EC2 answers `available` (ATTACHED_STATE), which the model's
                    // enum lacks; the generator adds it (EXTRA_ENUM_VALUES).
                    state: wire::AttachmentStatus::from_wire(ATTACHED_STATE),
                })
                .collect(),
        ),
        tags: tag_set(tags),
    }
}

/// CreateInternetGateway.
pub fn create_gateway(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateInternetGatewayRequest,
) -> Result<wire::CreateInternetGatewayResult> {
    let (g, tags) =
        cp.create_internet_gateway(cx.caller, &tag_specs(&req.tag_specifications)?, cx.dry_run)?;
    Ok(wire::CreateInternetGatewayResult {
        internet_gateway: Some(gateway_item(&g, &tags)),
    })
}

/// AttachInternetGateway.
pub fn attach_gateway(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AttachInternetGatewayRequest,
) -> Result<()> {
    cp.attach_internet_gateway(
        cx.caller,
        &id(&req.internet_gateway_id)?,
        &id(&req.vpc_id)?,
        cx.dry_run,
    )
}

/// DetachInternetGateway.
pub fn detach_gateway(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DetachInternetGatewayRequest,
) -> Result<()> {
    cp.detach_internet_gateway(
        cx.caller,
        &id(&req.internet_gateway_id)?,
        &id(&req.vpc_id)?,
        cx.dry_run,
    )
}

/// DeleteInternetGateway.
pub fn delete_gateway(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DeleteInternetGatewayRequest,
) -> Result<()> {
    cp.delete_internet_gateway(cx.caller, &id(&req.internet_gateway_id)?, cx.dry_run)
}

/// DescribeInternetGateways.
pub fn describe_gateways(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInternetGatewaysRequest,
) -> Result<wire::DescribeInternetGatewaysResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, GATEWAY_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) =
        cp.describe_internet_gateways(cx.caller, &ids(&req.internet_gateway_ids)?, &filters, &pg)?;
    Ok(wire::DescribeInternetGatewaysResult {
        internet_gateways: Some(list.iter().map(|(g, t)| gateway_item(g, t)).collect()),
        next_token: next,
    })
}

/// A route table as EC2 describes it. Routes and associations are always written, and
/// `propagatingVgwSet` always empty (Strato has no virtual private gateways).
fn route_table_item(info: &RouteTableInfo) -> wire::RouteTable {
    let t = &info.table;
    wire::RouteTable {
        route_table_id: Some(t.id.to_string()),
        vpc_id: Some(t.vpc_id.to_string()),
        owner_id: Some(t.account_id.to_string()),
        routes: Some(
            t.routes
                .iter()
                .zip(&info.route_states)
                .map(|(r, state)| wire::Route {
                    destination_cidr_block: Some(r.destination.clone()),
                    gateway_id: Some(gateway_id_of(&r.target)),
                    state: wire::RouteState::from_wire(state),
                    origin: wire::RouteOrigin::from_wire(&r.origin),
                    ..Default::default()
                })
                .collect(),
        ),
        associations: Some(
            t.associations
                .iter()
                .map(|a| wire::RouteTableAssociation {
                    route_table_association_id: Some(a.id.to_string()),
                    route_table_id: Some(t.id.to_string()),
                    subnet_id: a.subnet_id.as_ref().map(|s| s.to_string()),
                    main: Some(a.main),
                    association_state: associated(),
                    ..Default::default()
                })
                .collect(),
        ),
        propagating_vgws: Some(vec![]),
        tags: tag_set(&info.tags),
    }
}

/// CreateRouteTable (with `ClientToken`, echoed when given).
pub fn create_route_table(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateRouteTableRequest,
) -> Result<wire::CreateRouteTableResult> {
    let token = non_empty(req.client_token);
    // The tag specifications are checked before the VPC id, as EC2 answers them.
    let specs = tag_specs(&req.tag_specifications)?;
    let info = cp.create_route_table(
        cx.caller,
        &id(&req.vpc_id)?,
        token.as_deref(),
        &specs,
        cx.dry_run,
    )?;
    Ok(wire::CreateRouteTableResult {
        route_table: Some(route_table_item(&info)),
        client_token: token,
    })
}

/// DeleteRouteTable.
pub fn delete_route_table(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DeleteRouteTableRequest,
) -> Result<()> {
    cp.delete_route_table(cx.caller, &id(&req.route_table_id)?, cx.dry_run)
}

/// DescribeRouteTables.
pub fn describe_route_tables(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeRouteTablesRequest,
) -> Result<wire::DescribeRouteTablesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, ROUTE_TABLE_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 100)?;
    let (list, next) =
        cp.describe_route_tables(cx.caller, &ids(&req.route_table_ids)?, &filters, &pg)?;
    Ok(wire::DescribeRouteTablesResult {
        route_tables: Some(list.iter().map(route_table_item).collect()),
        next_token: next,
    })
}

/// CreateRoute (IPv4 destinations to internet gateways only).
pub fn create_route(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateRouteRequest,
) -> Result<wire::CreateRouteResult> {
    let (table, dest, gateway) = route_target(
        &req.route_table_id,
        req.destination_cidr_block,
        req.gateway_id,
    )?;
    cp.create_route(cx.caller, &table, &dest, &gateway, cx.dry_run)?;
    Ok(wire::CreateRouteResult {
        r#return: Some(true),
    })
}

/// ReplaceRoute (IPv4 destinations to internet gateways only).
pub fn replace_route(cp: &ControlPlane, cx: &Ctx, req: wire::ReplaceRouteRequest) -> Result<()> {
    let (table, dest, gateway) = route_target(
        &req.route_table_id,
        req.destination_cidr_block,
        req.gateway_id,
    )?;
    cp.replace_route(cx.caller, &table, &dest, &gateway, cx.dry_run)
}

/// ReplaceRouteTableAssociation.
pub fn replace_route_table_association(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ReplaceRouteTableAssociationRequest,
) -> Result<wire::ReplaceRouteTableAssociationResult> {
    let new_id = cp.replace_route_table_association(
        cx.caller,
        &id(&req.association_id)?,
        &id(&req.route_table_id)?,
        cx.dry_run,
    )?;
    Ok(wire::ReplaceRouteTableAssociationResult {
        new_association_id: Some(new_id.to_string()),
        association_state: associated(),
    })
}

/// DeleteRoute (by IPv4 destination).
pub fn delete_route(cp: &ControlPlane, cx: &Ctx, req: wire::DeleteRouteRequest) -> Result<()> {
    let dest = required(req.destination_cidr_block, "DestinationCidrBlock")?;
    cp.delete_route(cx.caller, &id(&req.route_table_id)?, &dest, cx.dry_run)
}

/// AssociateRouteTable (with a subnet; gateway associations are not served).
pub fn associate_route_table(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AssociateRouteTableRequest,
) -> Result<wire::AssociateRouteTableResult> {
    let subnet = required(req.subnet_id, "SubnetId")?;
    let association = cp.associate_route_table(
        cx.caller,
        &id(&req.route_table_id)?,
        &id(&subnet)?,
        cx.dry_run,
    )?;
    Ok(wire::AssociateRouteTableResult {
        association_id: Some(association.to_string()),
        association_state: associated(),
    })
}

/// DisassociateRouteTable.
pub fn disassociate_route_table(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DisassociateRouteTableRequest,
) -> Result<()> {
    cp.disassociate_route_table(cx.caller, &id(&req.association_id)?, cx.dry_run)
}

/// A network ACL as EC2 describes it; its associations and entries are always
/// written.
fn acl_item(a: &NetworkAcl, tags: &[(String, String)]) -> wire::NetworkAcl {
    wire::NetworkAcl {
        associations: Some(
            a.associations
                .iter()
                .map(|(id, subnet)| wire::NetworkAclAssociation {
                    network_acl_association_id: Some(id.clone()),
                    network_acl_id: Some(a.id.to_string()),
                    subnet_id: Some(subnet.clone()),
                })
                .collect(),
        ),
        entries: Some(
            a.entries
                .iter()
                .map(|e| wire::NetworkAclEntry {
                    cidr_block: Some(e.cidr.clone()),
                    egress: Some(e.egress),
                    protocol: Some(e.protocol.clone()),
                    rule_action: Some(if e.allow {
                        wire::RuleAction::Allow
                    } else {
                        wire::RuleAction::Deny
                    }),
                    rule_number: Some(i32::try_from(e.rule_number).unwrap_or(i32::MAX)),
                    ..Default::default()
                })
                .collect(),
        ),
        is_default: Some(a.is_default),
        network_acl_id: Some(a.id.to_string()),
        owner_id: Some(a.account_id.to_string()),
        tags: tag_set(tags),
        vpc_id: Some(a.vpc_id.clone()),
    }
}

/// DescribeNetworkAcls (every VPC's default ACL). Unlike the other Describe actions,
/// the dry run is answered only once the request has been checked against the data.
pub fn describe_network_acls(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeNetworkAclsRequest,
) -> Result<wire::DescribeNetworkAclsResult> {
    let filters = filter_set(&req.filters, ACL_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) =
        cp.describe_network_acls(cx.caller, &ids(&req.network_acl_ids)?, &filters, &pg)?;
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    Ok(wire::DescribeNetworkAclsResult {
        network_acls: Some(list.iter().map(|(a, t)| acl_item(a, t)).collect()),
        next_token: next,
    })
}
