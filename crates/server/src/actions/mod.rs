//! EC2 actions: each decodes its parameters from [`Params`], calls the control plane
//! and encodes the XML answer. One function per action, listed in [`dispatch`].

pub mod addresses;
pub mod instances;
pub mod interfaces;
pub mod keypairs;
pub mod meta;
pub mod routing;
pub mod security_groups;
pub mod sts;
pub mod tags;
pub mod vpcs;

use strato_common::{Error, Result};
use strato_control::tags::TagSpec;
use strato_control::{Caller, ControlPlane};
use strato_ec2_wire::Params;

/// Every action this endpoint serves.
pub const ACTIONS: &[&str] = &[
    "RunInstances",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "StartInstances",
    "StopInstances",
    "RebootInstances",
    "TerminateInstances",
    "DescribeInstanceAttribute",
    "ModifyInstanceAttribute",
    "GetConsoleOutput",
    "ModifyInstanceMetadataOptions",
    "DescribeInstanceTypes",
    "DescribeInstanceTypeOfferings",
    "DescribeImages",
    "DescribeRegions",
    "DescribeAvailabilityZones",
    "DescribeAccountAttributes",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPair",
    "CreateTags",
    "DeleteTags",
    "DescribeTags",
    "CreateVpc",
    "DeleteVpc",
    "DescribeVpcs",
    "ModifyVpcAttribute",
    "DescribeVpcAttribute",
    "CreateDefaultVpc",
    "DescribeDhcpOptions",
    "CreateSubnet",
    "DeleteSubnet",
    "DescribeSubnets",
    "ModifySubnetAttribute",
    "CreateSecurityGroup",
    "DeleteSecurityGroup",
    "DescribeSecurityGroups",
    "DescribeSecurityGroupRules",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "ModifySecurityGroupRules",
    "CreateInternetGateway",
    "AttachInternetGateway",
    "DetachInternetGateway",
    "DeleteInternetGateway",
    "DescribeInternetGateways",
    "CreateRouteTable",
    "DeleteRouteTable",
    "DescribeRouteTables",
    "CreateRoute",
    "DeleteRoute",
    "AssociateRouteTable",
    "DisassociateRouteTable",
    "AllocateAddress",
    "DescribeAddresses",
    "AssociateAddress",
    "DisassociateAddress",
    "ReleaseAddress",
    "CreateNetworkInterface",
    "DescribeNetworkInterfaces",
    "DeleteNetworkInterface",
    "AttachNetworkInterface",
    "DetachNetworkInterface",
    "GetCallerIdentity",
];

pub fn is_known(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// Runs one action for an authenticated caller.
pub fn dispatch(
    cp: &ControlPlane,
    caller: &Caller,
    action: &str,
    p: &Params,
    rid: &str,
) -> Result<String> {
    if !is_known(action) {
        return Err(Error::InvalidAction(action.to_string()));
    }
    if action == "GetCallerIdentity" {
        return sts::get_caller_identity(cp, caller, p, rid);
    }
    check_version(p)?;
    match action {
        "RunInstances" => instances::run(cp, caller, p, rid),
        "DescribeInstances" => instances::describe(cp, caller, p, rid),
        "DescribeInstanceStatus" => instances::describe_status(cp, caller, p, rid),
        "StartInstances" => instances::start(cp, caller, p, rid),
        "StopInstances" => instances::stop(cp, caller, p, rid),
        "RebootInstances" => instances::reboot(cp, caller, p, rid),
        "TerminateInstances" => instances::terminate(cp, caller, p, rid),
        "DescribeInstanceAttribute" => instances::describe_attribute(cp, caller, p, rid),
        "ModifyInstanceAttribute" => instances::modify_attribute(cp, caller, p, rid),
        "GetConsoleOutput" => instances::console_output(cp, caller, p, rid),
        "ModifyInstanceMetadataOptions" => instances::modify_metadata_options(cp, caller, p, rid),
        "DescribeInstanceTypes" => meta::describe_instance_types(cp, caller, p, rid),
        "DescribeInstanceTypeOfferings" => {
            meta::describe_instance_type_offerings(cp, caller, p, rid)
        }
        "DescribeImages" => meta::describe_images(cp, caller, p, rid),
        "DescribeRegions" => meta::describe_regions(cp, caller, p, rid),
        "DescribeAvailabilityZones" => meta::describe_availability_zones(cp, caller, p, rid),
        "DescribeAccountAttributes" => meta::describe_account_attributes(cp, caller, p, rid),
        "CreateKeyPair" => keypairs::create(cp, caller, p, rid),
        "ImportKeyPair" => keypairs::import(cp, caller, p, rid),
        "DescribeKeyPairs" => keypairs::describe(cp, caller, p, rid),
        "DeleteKeyPair" => keypairs::delete(cp, caller, p, rid),
        "CreateTags" => tags::create(cp, caller, p, rid),
        "DeleteTags" => tags::delete(cp, caller, p, rid),
        "DescribeTags" => tags::describe(cp, caller, p, rid),
        "CreateVpc" => vpcs::create_vpc(cp, caller, p, rid),
        "DeleteVpc" => vpcs::delete_vpc(cp, caller, p, rid),
        "DescribeVpcs" => vpcs::describe_vpcs(cp, caller, p, rid),
        "ModifyVpcAttribute" => vpcs::modify_vpc_attribute(cp, caller, p, rid),
        "DescribeVpcAttribute" => vpcs::describe_vpc_attribute(cp, caller, p, rid),
        "CreateDefaultVpc" => vpcs::create_default_vpc(cp, caller, p, rid),
        "DescribeDhcpOptions" => vpcs::describe_dhcp_options(cp, caller, p, rid),
        "CreateSubnet" => vpcs::create_subnet(cp, caller, p, rid),
        "DeleteSubnet" => vpcs::delete_subnet(cp, caller, p, rid),
        "DescribeSubnets" => vpcs::describe_subnets(cp, caller, p, rid),
        "ModifySubnetAttribute" => vpcs::modify_subnet_attribute(cp, caller, p, rid),
        "CreateSecurityGroup" => security_groups::create(cp, caller, p, rid),
        "DeleteSecurityGroup" => security_groups::delete(cp, caller, p, rid),
        "DescribeSecurityGroups" => security_groups::describe(cp, caller, p, rid),
        "DescribeSecurityGroupRules" => security_groups::describe_rules(cp, caller, p, rid),
        "AuthorizeSecurityGroupIngress" => security_groups::authorize_ingress(cp, caller, p, rid),
        "AuthorizeSecurityGroupEgress" => security_groups::authorize_egress(cp, caller, p, rid),
        "RevokeSecurityGroupIngress" => security_groups::revoke_ingress(cp, caller, p, rid),
        "RevokeSecurityGroupEgress" => security_groups::revoke_egress(cp, caller, p, rid),
        "ModifySecurityGroupRules" => security_groups::modify_rules(cp, caller, p, rid),
        "CreateInternetGateway" => routing::create_gateway(cp, caller, p, rid),
        "AttachInternetGateway" => routing::attach_gateway(cp, caller, p, rid),
        "DetachInternetGateway" => routing::detach_gateway(cp, caller, p, rid),
        "DeleteInternetGateway" => routing::delete_gateway(cp, caller, p, rid),
        "DescribeInternetGateways" => routing::describe_gateways(cp, caller, p, rid),
        "CreateRouteTable" => routing::create_route_table(cp, caller, p, rid),
        "DeleteRouteTable" => routing::delete_route_table(cp, caller, p, rid),
        "DescribeRouteTables" => routing::describe_route_tables(cp, caller, p, rid),
        "CreateRoute" => routing::create_route(cp, caller, p, rid),
        "DeleteRoute" => routing::delete_route(cp, caller, p, rid),
        "AssociateRouteTable" => routing::associate_route_table(cp, caller, p, rid),
        "DisassociateRouteTable" => routing::disassociate_route_table(cp, caller, p, rid),
        "AllocateAddress" => addresses::allocate(cp, caller, p, rid),
        "DescribeAddresses" => addresses::describe(cp, caller, p, rid),
        "AssociateAddress" => addresses::associate(cp, caller, p, rid),
        "DisassociateAddress" => addresses::disassociate(cp, caller, p, rid),
        "ReleaseAddress" => addresses::release(cp, caller, p, rid),
        "CreateNetworkInterface" => interfaces::create(cp, caller, p, rid),
        "DescribeNetworkInterfaces" => interfaces::describe(cp, caller, p, rid),
        "DeleteNetworkInterface" => interfaces::delete(cp, caller, p, rid),
        "AttachNetworkInterface" => interfaces::attach(cp, caller, p, rid),
        "DetachNetworkInterface" => interfaces::detach(cp, caller, p, rid),
        other => Err(Error::InvalidAction(other.to_string())),
    }
}

/// EC2 API versions are dates; every current SDK sends 2016-11-15, older tools send
/// older dates whose shapes are a subset, so any well-formed date is served.
fn check_version(p: &Params) -> Result<()> {
    let v = p.required("Version")?;
    let ok = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
        && v <= strato_ec2_wire::EC2_VERSION;
    if ok {
        Ok(())
    } else {
        Err(Error::NoSuchVersion(v.to_string()))
    }
}

/// Decodes `TagSpecification.N` (EC2 spells the list `TagSpecification`).
pub fn tag_specs(p: &Params) -> Result<Vec<TagSpec>> {
    p.structs("TagSpecification")
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let resource_type = s
                .get("ResourceType")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::MissingParameter(format!("TagSpecification.{}.ResourceType", i + 1))
                })?
                .to_string();
            Ok(TagSpec {
                resource_type,
                tags: tag_list(&s, "Tag")?,
            })
        })
        .collect()
}

/// Decodes `Tag.N.Key` / `Tag.N.Value` pairs (a missing value is the empty string).
pub fn tag_list(p: &Params, prefix: &str) -> Result<Vec<(String, String)>> {
    p.structs(prefix)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let key = t
                .get("Key")
                .ok_or_else(|| Error::MissingParameter(format!("{prefix}.{}.Key", i + 1)))?;
            Ok((key.to_string(), t.get("Value").unwrap_or("").to_string()))
        })
        .collect()
}

/// The common `MaxResults` / `NextToken` pair.
pub fn page(p: &Params, min: i64, max: i64) -> Result<strato_control::page::PageRequest> {
    strato_control::page::PageRequest::new(p.int("MaxResults")?, p.get("NextToken"), min, max)
}
