//! VPC, subnet and DHCP options actions and their XML encoding.

use super::{page, tag_specs};
use strato_common::{Error, Result};
use strato_control::net::subnets::{CreateSubnetInput, SubnetInfo, SUBNET_FILTERS};
use strato_control::net::vpcs::{CreateVpcInput, VpcAttribute, DHCP_FILTERS, VPC_FILTERS};
use strato_control::{catalog, Caller, ControlPlane};
use strato_domain::Vpc;
use strato_ec2_wire::{decode_filters, xml, Params, XmlWriter};

/// A `Vpc` structure (the items of `vpcSet`, and `vpc` in Create answers).
pub fn write_vpc(w: &mut XmlWriter, v: &Vpc, tags: &[(String, String)]) {
    w.text("vpcId", v.id.as_str())
        .text("ownerId", v.account_id.as_str())
        .text("state", "available")
        .text("cidrBlock", &v.cidr_block)
        .open("cidrBlockAssociationSet")
        .open("item")
        .text("cidrBlock", &v.cidr_block)
        .text("associationId", &v.cidr_association_id)
        .open("cidrBlockState")
        .text("state", "associated")
        .close("cidrBlockState")
        .close("item")
        .close("cidrBlockAssociationSet")
        .open("ipv6CidrBlockAssociationSet")
        .close("ipv6CidrBlockAssociationSet")
        .text(
            "dhcpOptionsId",
            v.dhcp_options_id.as_ref().map_or("default", |d| d.as_str()),
        )
        .text("instanceTenancy", &v.instance_tenancy)
        .bool("isDefault", v.is_default)
        .open("blockPublicAccessStates")
        .text("internetGatewayBlockMode", "off")
        .close("blockPublicAccessStates")
        .tag_set(tags);
}

/// CreateVpc.
pub fn create_vpc(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let input = CreateVpcInput {
        cidr_block: p.get("CidrBlock").map(str::to_string),
        instance_tenancy: p.get("InstanceTenancy").map(str::to_string),
        tag_specs: tag_specs(p)?,
    };
    let (vpc, tags) = cp.create_vpc(c, &input, dry)?;
    Ok(xml::success("CreateVpc", rid, |w| {
        w.open("vpc");
        write_vpc(w, &vpc, &tags);
        w.close("vpc");
    }))
}

/// CreateDefaultVpc.
pub fn create_default_vpc(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let (vpc, tags) = cp.create_default_vpc(c, dry)?;
    Ok(xml::success("CreateDefaultVpc", rid, |w| {
        w.open("vpc");
        write_vpc(w, &vpc, &tags);
        w.close("vpc");
    }))
}

/// DeleteVpc.
pub fn delete_vpc(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.delete_vpc(c, p.required("VpcId")?, dry)?;
    Ok(xml::success("DeleteVpc", rid, |w| {
        w.bool("return", true);
    }))
}

/// DescribeVpcs.
pub fn describe_vpcs(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", VPC_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) = cp.describe_vpcs(c, &p.list("VpcId"), &filters, &pg)?;
    Ok(xml::success("DescribeVpcs", rid, |w| {
        w.list("vpcSet", &list, |w, (v, t)| write_vpc(w, v, t));
        w.opt_text("nextToken", next.as_deref());
    }))
}

/// ModifyVpcAttribute (one attribute per call).
pub fn modify_vpc_attribute(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let dry = p.dry_run()?;
    let id = p.required("VpcId")?;
    let mut changes = vec![];
    for (param, attr) in [
        ("EnableDnsSupport.Value", VpcAttribute::EnableDnsSupport),
        ("EnableDnsHostnames.Value", VpcAttribute::EnableDnsHostnames),
        (
            "EnableNetworkAddressUsageMetrics.Value",
            VpcAttribute::EnableNetworkAddressUsageMetrics,
        ),
    ] {
        if let Some(v) = p.bool(param)? {
            changes.push((attr, v));
        }
    }
    let (attr, value) = match changes.as_slice() {
        [] => {
            return Err(Error::MissingParameter(
                "EnableDnsSupport, EnableDnsHostnames or EnableNetworkAddressUsageMetrics".into(),
            ))
        }
        [one] => *one,
        _ => {
            return Err(Error::InvalidParameterCombination(
                "Only one attribute can be modified at a time.".into(),
            ))
        }
    };
    cp.modify_vpc_attribute(c, id, attr, value, dry)?;
    Ok(xml::success("ModifyVpcAttribute", rid, |w| {
        w.bool("return", true);
    }))
}

/// DescribeVpcAttribute.
pub fn describe_vpc_attribute(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let id = p.required("VpcId")?;
    let name = p.required("Attribute")?;
    let attr = VpcAttribute::parse(name)?;
    if p.dry_run()? {
        cp.vpc(c, id)?;
        return Err(Error::DryRunOperation);
    }
    let vpc = cp.vpc(c, id)?;
    Ok(xml::success("DescribeVpcAttribute", rid, |w| {
        w.text("vpcId", vpc.id.as_str())
            .open(name)
            .bool("value", attr.value(&vpc))
            .close(name);
    }))
}

/// DescribeDhcpOptions.
pub fn describe_dhcp_options(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", DHCP_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) = cp.describe_dhcp_options(c, &p.list("DhcpOptionsId"), &filters, &pg)?;
    Ok(xml::success("DescribeDhcpOptions", rid, |w| {
        w.list("dhcpOptionsSet", &list, |w, (d, t)| {
            w.text("dhcpOptionsId", d.id.as_str())
                .text("ownerId", d.account_id.as_str());
            w.list("dhcpConfigurationSet", &d.options, |w, (k, values)| {
                w.text("key", k);
                w.list("valueSet", values, |w, v| {
                    w.text("value", v);
                });
            });
            w.tag_set(t);
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

// ---- subnets -------------------------------------------------------------------------

/// A `Subnet` structure.
pub fn write_subnet(w: &mut XmlWriter, s: &SubnetInfo) {
    let sub = &s.subnet;
    w.text("subnetId", sub.id.as_str())
        .text(
            "subnetArn",
            &ControlPlane::arn(&sub.region, &sub.account_id, "subnet", sub.id.as_str()),
        )
        .text("state", "available")
        .text("ownerId", sub.account_id.as_str())
        .text("vpcId", sub.vpc_id.as_str())
        .text("cidrBlock", &sub.cidr_block)
        .open("ipv6CidrBlockAssociationSet")
        .close("ipv6CidrBlockAssociationSet")
        .num("availableIpAddressCount", s.available_ips)
        .text("availabilityZone", &sub.availability_zone)
        .text(
            "availabilityZoneId",
            &catalog::zone_id(&sub.region, &sub.availability_zone),
        )
        .bool("defaultForAz", sub.default_for_az)
        .bool("mapPublicIpOnLaunch", sub.map_public_ip_on_launch)
        .bool("mapCustomerOwnedIpOnLaunch", false)
        .bool("assignIpv6AddressOnCreation", false)
        .bool("enableDns64", false)
        .bool("ipv6Native", false)
        .open("privateDnsNameOptionsOnLaunch")
        .text("hostnameType", "ip-name")
        .bool("enableResourceNameDnsARecord", false)
        .bool("enableResourceNameDnsAAAARecord", false)
        .close("privateDnsNameOptionsOnLaunch")
        .open("blockPublicAccessStates")
        .text("internetGatewayBlockMode", "off")
        .close("blockPublicAccessStates")
        .tag_set(&s.tags);
}

/// CreateSubnet.
pub fn create_subnet(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let input = CreateSubnetInput {
        vpc_id: p.get("VpcId").map(str::to_string),
        cidr_block: p.get("CidrBlock").map(str::to_string),
        availability_zone: p
            .get("AvailabilityZone")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        availability_zone_id: p
            .get("AvailabilityZoneId")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        tag_specs: tag_specs(p)?,
    };
    let s = cp.create_subnet(c, &input, dry)?;
    Ok(xml::success("CreateSubnet", rid, |w| {
        w.open("subnet");
        write_subnet(w, &s);
        w.close("subnet");
    }))
}

/// DeleteSubnet.
pub fn delete_subnet(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.delete_subnet(c, p.required("SubnetId")?, dry)?;
    Ok(xml::success("DeleteSubnet", rid, |w| {
        w.bool("return", true);
    }))
}

/// DescribeSubnets.
pub fn describe_subnets(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", SUBNET_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) = cp.describe_subnets(c, &p.list("SubnetId"), &filters, &pg)?;
    Ok(xml::success("DescribeSubnets", rid, |w| {
        w.list("subnetSet", &list, write_subnet);
        w.opt_text("nextToken", next.as_deref());
    }))
}

/// ModifySubnetAttribute (`MapPublicIpOnLaunch`).
pub fn modify_subnet_attribute(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let dry = p.dry_run()?;
    let id = p.required("SubnetId")?;
    let value = p
        .bool("MapPublicIpOnLaunch.Value")?
        .ok_or_else(|| Error::MissingParameter("MapPublicIpOnLaunch".into()))?;
    cp.modify_subnet_map_public_ip(c, id, value, dry)?;
    Ok(xml::success("ModifySubnetAttribute", rid, |w| {
        w.bool("return", true);
    }))
}
