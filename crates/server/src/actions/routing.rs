//! Internet gateway and route table actions and their XML encoding.

use super::{page, tag_specs};
use strato_common::{Error, Result};
use strato_control::net::gateways::{ATTACHED_STATE, GATEWAY_FILTERS};
use strato_control::net::route_tables::{gateway_id_of, RouteTableInfo, ROUTE_TABLE_FILTERS};
use strato_control::{Caller, ControlPlane};
use strato_domain::InternetGateway;
use strato_ec2_wire::{decode_filters, xml, Params, XmlWriter};

fn write_gateway(w: &mut XmlWriter, g: &InternetGateway, tags: &[(String, String)]) {
    w.text("internetGatewayId", g.id.as_str())
        .text("ownerId", g.account_id.as_str());
    w.list("attachmentSet", g.vpc_id.iter(), |w, vpc| {
        w.text("vpcId", vpc.as_str()).text("state", ATTACHED_STATE);
    });
    w.tag_set(tags);
}

/// CreateInternetGateway.
pub fn create_gateway(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let (g, tags) = cp.create_internet_gateway(c, &tag_specs(p)?, dry)?;
    Ok(xml::success("CreateInternetGateway", rid, |w| {
        w.open("internetGateway");
        write_gateway(w, &g, &tags);
        w.close("internetGateway");
    }))
}

/// AttachInternetGateway.
pub fn attach_gateway(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.attach_internet_gateway(
        c,
        p.required("InternetGatewayId")?,
        p.required("VpcId")?,
        dry,
    )?;
    Ok(xml::success("AttachInternetGateway", rid, |w| {
        w.bool("return", true);
    }))
}

/// DetachInternetGateway.
pub fn detach_gateway(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.detach_internet_gateway(
        c,
        p.required("InternetGatewayId")?,
        p.required("VpcId")?,
        dry,
    )?;
    Ok(xml::success("DetachInternetGateway", rid, |w| {
        w.bool("return", true);
    }))
}

/// DeleteInternetGateway.
pub fn delete_gateway(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.delete_internet_gateway(c, p.required("InternetGatewayId")?, dry)?;
    Ok(xml::success("DeleteInternetGateway", rid, |w| {
        w.bool("return", true);
    }))
}

/// DescribeInternetGateways.
pub fn describe_gateways(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", GATEWAY_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) =
        cp.describe_internet_gateways(c, &p.list("InternetGatewayId"), &filters, &pg)?;
    Ok(xml::success("DescribeInternetGateways", rid, |w| {
        w.list("internetGatewaySet", &list, |w, (g, t)| {
            write_gateway(w, g, t)
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

fn write_route_table(w: &mut XmlWriter, info: &RouteTableInfo) {
    let t = &info.table;
    w.text("routeTableId", t.id.as_str())
        .text("vpcId", t.vpc_id.as_str())
        .text("ownerId", t.account_id.as_str());
    w.list(
        "routeSet",
        t.routes.iter().zip(&info.route_states),
        |w, (r, state)| {
            w.text("destinationCidrBlock", &r.destination)
                .text("gatewayId", &gateway_id_of(&r.target))
                .text("state", state)
                .text("origin", &r.origin);
        },
    );
    w.list("associationSet", &t.associations, |w, a| {
        w.text("routeTableAssociationId", a.id.as_str())
            .text("routeTableId", t.id.as_str())
            .opt_text("subnetId", a.subnet_id.as_ref().map(|s| s.as_str()))
            .bool("main", a.main)
            .open("associationState")
            .text("state", "associated")
            .close("associationState");
    });
    w.open("propagatingVgwSet")
        .close("propagatingVgwSet")
        .tag_set(&info.tags);
}

/// CreateRouteTable (with `ClientToken`).
pub fn create_route_table(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let token = p.get("ClientToken").filter(|s| !s.is_empty());
    let info = cp.create_route_table(c, p.required("VpcId")?, token, &tag_specs(p)?, dry)?;
    Ok(xml::success("CreateRouteTable", rid, |w| {
        w.open("routeTable");
        write_route_table(w, &info);
        w.close("routeTable");
        w.opt_text("clientToken", token);
    }))
}

/// DeleteRouteTable.
pub fn delete_route_table(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.delete_route_table(c, p.required("RouteTableId")?, dry)?;
    Ok(xml::success("DeleteRouteTable", rid, |w| {
        w.bool("return", true);
    }))
}

/// DescribeRouteTables.
pub fn describe_route_tables(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", ROUTE_TABLE_FILTERS, true)?;
    let pg = page(p, 5, 100)?;
    let (list, next) = cp.describe_route_tables(c, &p.list("RouteTableId"), &filters, &pg)?;
    Ok(xml::success("DescribeRouteTables", rid, |w| {
        w.list("routeTableSet", &list, write_route_table);
        w.opt_text("nextToken", next.as_deref());
    }))
}

/// CreateRoute (internet gateway targets only).
pub fn create_route(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let table = p.required("RouteTableId")?;
    let dest = p.required("DestinationCidrBlock")?;
    let gateway = p.required("GatewayId")?;
    cp.create_route(c, table, dest, gateway, dry)?;
    Ok(xml::success("CreateRoute", rid, |w| {
        w.bool("return", true);
    }))
}

/// ReplaceRoute (internet gateway targets only).
pub fn replace_route(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let table = p.required("RouteTableId")?;
    let dest = p.required("DestinationCidrBlock")?;
    cp.replace_route(c, table, dest, p.required("GatewayId")?, dry)?;
    Ok(xml::success("ReplaceRoute", rid, |w| {
        w.bool("return", true);
    }))
}

/// ReplaceRouteTableAssociation.
pub fn replace_route_table_association(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let dry = p.dry_run()?;
    let id = cp.replace_route_table_association(
        c,
        p.required("AssociationId")?,
        p.required("RouteTableId")?,
        dry,
    )?;
    Ok(xml::success("ReplaceRouteTableAssociation", rid, |w| {
        w.text("newAssociationId", id.as_str())
            .open("associationState")
            .text("state", "associated")
            .close("associationState");
    }))
}

/// DeleteRoute.
pub fn delete_route(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let table = p.required("RouteTableId")?;
    cp.delete_route(c, table, p.required("DestinationCidrBlock")?, dry)?;
    Ok(xml::success("DeleteRoute", rid, |w| {
        w.bool("return", true);
    }))
}

/// AssociateRouteTable (with a subnet).
pub fn associate_route_table(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let dry = p.dry_run()?;
    let table = p.required("RouteTableId")?;
    let id = cp.associate_route_table(c, table, p.required("SubnetId")?, dry)?;
    Ok(xml::success("AssociateRouteTable", rid, |w| {
        w.text("associationId", id.as_str())
            .open("associationState")
            .text("state", "associated")
            .close("associationState");
    }))
}

/// DisassociateRouteTable.
pub fn disassociate_route_table(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let dry = p.dry_run()?;
    cp.disassociate_route_table(c, p.required("AssociationId")?, dry)?;
    Ok(xml::success("DisassociateRouteTable", rid, |w| {
        w.bool("return", true);
    }))
}

/// DescribeNetworkAcls (every VPC's default ACL).
pub fn describe_network_acls(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    use strato_control::net::acls::ACL_FILTERS;
    let dry = p.dry_run()?;
    let filters = decode_filters(p, "Filter", ACL_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) = cp.describe_network_acls(c, &p.list("NetworkAclId"), &filters, &pg)?;
    if dry {
        return Err(Error::DryRunOperation);
    }
    Ok(xml::success("DescribeNetworkAcls", rid, |w| {
        w.list("networkAclSet", &list, |w, (a, tags)| {
            w.list("associationSet", &a.associations, |w, (id, subnet)| {
                w.text("networkAclAssociationId", id)
                    .text("networkAclId", a.id.as_str())
                    .text("subnetId", subnet);
            });
            w.list("entrySet", &a.entries, |w, e| {
                w.text("cidrBlock", &e.cidr)
                    .bool("egress", e.egress)
                    .text("protocol", &e.protocol)
                    .text("ruleAction", if e.allow { "allow" } else { "deny" })
                    .num("ruleNumber", e.rule_number);
            });
            w.bool("default", a.is_default)
                .text("networkAclId", a.id.as_str())
                .text("ownerId", a.account_id.as_str())
                .tag_set(tags)
                .text("vpcId", &a.vpc_id);
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}
