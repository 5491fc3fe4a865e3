//! VPC, subnet and DHCP options actions: typed requests to the control plane, its
//! records to the model's output types.

use super::{id, ids, non_empty, page, tag_set, tag_specs, Ctx};
use strato_common::{Error, Result};
use strato_control::net::subnets::{CreateSubnetInput, SubnetInfo, SUBNET_FILTERS};
use strato_control::net::vpcs::{CreateVpcInput, VpcAttribute, DHCP_FILTERS, VPC_FILTERS};
use strato_control::{catalog, ControlPlane};
use strato_domain::{DhcpOptions, Vpc};
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, AttributeBooleanValue, VpcAttributeName};

/// A VPC as EC2 describes it (the items of `vpcSet`, and `vpc` in Create answers).
pub fn vpc_item(v: &Vpc, tags: &[(String, String)]) -> wire::Vpc {
    wire::Vpc {
        vpc_id: Some(v.id.to_string()),
        owner_id: Some(v.account_id.to_string()),
        state: Some(wire::VpcState::Available),
        cidr_block: Some(v.cidr_block.clone()),
        cidr_block_association_set: Some(vec![wire::VpcCidrBlockAssociation {
            association_id: Some(v.cidr_association_id.clone()),
            cidr_block: Some(v.cidr_block.clone()),
            cidr_block_state: Some(wire::VpcCidrBlockState {
                state: Some(wire::VpcCidrBlockStateCode::Associated),
                status_message: None,
            }),
        }]),
        ipv6_cidr_block_association_set: Some(vec![]),
        dhcp_options_id: Some(
            v.dhcp_options_id
                .as_ref()
                .map_or("default".to_string(), |d| d.to_string()),
        ),
        instance_tenancy: wire::Tenancy::from_wire(&v.instance_tenancy),
        is_default: Some(v.is_default),
        block_public_access_states: Some(wire::BlockPublicAccessStates {
            internet_gateway_block_mode: Some(wire::BlockPublicAccessMode::Off),
        }),
        tags: tag_set(tags),
        ..Default::default()
    }
}

/// CreateVpc.
pub fn create_vpc(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateVpcRequest,
) -> Result<wire::CreateVpcResult> {
    let input = CreateVpcInput {
        cidr_block: req.cidr_block,
        instance_tenancy: req.instance_tenancy.map(|t| t.as_str().to_string()),
        tag_specs: tag_specs(&req.tag_specifications)?,
    };
    let (vpc, tags) = cp.create_vpc(cx.caller, &input, cx.dry_run)?;
    Ok(wire::CreateVpcResult {
        vpc: Some(vpc_item(&vpc, &tags)),
    })
}

/// CreateDefaultVpc.
pub fn create_default_vpc(
    cp: &ControlPlane,
    cx: &Ctx,
    _req: wire::CreateDefaultVpcRequest,
) -> Result<wire::CreateDefaultVpcResult> {
    let (vpc, tags) = cp.create_default_vpc(cx.caller, cx.dry_run)?;
    Ok(wire::CreateDefaultVpcResult {
        vpc: Some(vpc_item(&vpc, &tags)),
    })
}

/// DeleteVpc.
pub fn delete_vpc(cp: &ControlPlane, cx: &Ctx, req: wire::DeleteVpcRequest) -> Result<()> {
    cp.delete_vpc(cx.caller, &id(&req.vpc_id)?, cx.dry_run)
}

/// DescribeVpcs.
pub fn describe_vpcs(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeVpcsRequest,
) -> Result<wire::DescribeVpcsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, VPC_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) = cp.describe_vpcs(cx.caller, &ids(&req.vpc_ids)?, &filters, &pg)?;
    Ok(wire::DescribeVpcsResult {
        vpcs: Some(list.iter().map(|(v, t)| vpc_item(v, t)).collect()),
        next_token: next,
    })
}

/// ModifyVpcAttribute (one attribute per call).
pub fn modify_vpc_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyVpcAttributeRequest,
) -> Result<()> {
    let value = |a: &Option<AttributeBooleanValue>| a.as_ref().and_then(|v| v.value);
    let changes: Vec<(VpcAttribute, bool)> = [
        (
            VpcAttribute::EnableDnsSupport,
            value(&req.enable_dns_support),
        ),
        (
            VpcAttribute::EnableDnsHostnames,
            value(&req.enable_dns_hostnames),
        ),
        (
            VpcAttribute::EnableNetworkAddressUsageMetrics,
            value(&req.enable_network_address_usage_metrics),
        ),
    ]
    .into_iter()
    .filter_map(|(a, v)| v.map(|v| (a, v)))
    .collect();
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
    cp.modify_vpc_attribute(cx.caller, &id(&req.vpc_id)?, attr, value, cx.dry_run)
}

/// DescribeVpcAttribute.
pub fn describe_vpc_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeVpcAttributeRequest,
) -> Result<wire::DescribeVpcAttributeResult> {
    let attr = match req.attribute {
        VpcAttributeName::EnableDnsSupport => VpcAttribute::EnableDnsSupport,
        VpcAttributeName::EnableDnsHostnames => VpcAttribute::EnableDnsHostnames,
        VpcAttributeName::EnableNetworkAddressUsageMetrics => {
            VpcAttribute::EnableNetworkAddressUsageMetrics
        }
    };
    let vpc = cp.vpc(cx.caller, &id(&req.vpc_id)?)?;
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let value = Some(AttributeBooleanValue {
        value: Some(attr.value(&vpc)),
    });
    let mut out = wire::DescribeVpcAttributeResult {
        vpc_id: Some(vpc.id.to_string()),
        ..Default::default()
    };
    match attr {
        VpcAttribute::EnableDnsSupport => out.enable_dns_support = value,
        VpcAttribute::EnableDnsHostnames => out.enable_dns_hostnames = value,
        VpcAttribute::EnableNetworkAddressUsageMetrics => {
            out.enable_network_address_usage_metrics = value
        }
    }
    Ok(out)
}

/// A DHCP options set as EC2 describes it.
fn dhcp_item(d: &DhcpOptions, tags: &[(String, String)]) -> wire::DhcpOptions {
    wire::DhcpOptions {
        dhcp_options_id: Some(d.id.to_string()),
        owner_id: Some(d.account_id.to_string()),
        dhcp_configurations: Some(
            d.options
                .iter()
                .map(|(k, values)| wire::DhcpConfiguration {
                    key: Some(k.clone()),
                    values: Some(
                        values
                            .iter()
                            .map(|v| wire::AttributeValue {
                                value: Some(v.clone()),
                            })
                            .collect(),
                    ),
                })
                .collect(),
        ),
        tags: tag_set(tags),
    }
}

/// DescribeDhcpOptions.
pub fn describe_dhcp_options(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeDhcpOptionsRequest,
) -> Result<wire::DescribeDhcpOptionsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, DHCP_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) =
        cp.describe_dhcp_options(cx.caller, &ids(&req.dhcp_options_ids)?, &filters, &pg)?;
    Ok(wire::DescribeDhcpOptionsResult {
        dhcp_options: Some(list.iter().map(|(d, t)| dhcp_item(d, t)).collect()),
        next_token: next,
    })
}

// ---- subnets -------------------------------------------------------------------------

/// A subnet as EC2 describes it.
pub fn subnet_item(s: &SubnetInfo) -> wire::Subnet {
    let sub = &s.subnet;
    wire::Subnet {
        subnet_id: Some(sub.id.to_string()),
        subnet_arn: Some(ControlPlane::arn(
            &sub.region,
            &sub.account_id,
            "subnet",
            sub.id.as_str(),
        )),
        state: Some(wire::SubnetState::Available),
        owner_id: Some(sub.account_id.to_string()),
        vpc_id: Some(sub.vpc_id.to_string()),
        cidr_block: Some(sub.cidr_block.clone()),
        ipv6_cidr_block_association_set: Some(vec![]),
        available_ip_address_count: Some(i32::try_from(s.available_ips).unwrap_or(i32::MAX)),
        availability_zone: Some(sub.availability_zone.clone()),
        availability_zone_id: Some(catalog::zone_id(&sub.region, &sub.availability_zone)),
        default_for_az: Some(sub.default_for_az),
        map_public_ip_on_launch: Some(sub.map_public_ip_on_launch),
        map_customer_owned_ip_on_launch: Some(false),
        assign_ipv6_address_on_creation: Some(false),
        enable_dns64: Some(false),
        ipv6_native: Some(false),
        private_dns_name_options_on_launch: Some(wire::PrivateDnsNameOptionsOnLaunch {
            hostname_type: Some(wire::HostnameType::IpName),
            enable_resource_name_dns_a_record: Some(false),
            enable_resource_name_dns_aaaa_record: Some(false),
        }),
        block_public_access_states: Some(wire::BlockPublicAccessStates {
            internet_gateway_block_mode: Some(wire::BlockPublicAccessMode::Off),
        }),
        tags: tag_set(&s.tags),
        ..Default::default()
    }
}

/// CreateSubnet.
pub fn create_subnet(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateSubnetRequest,
) -> Result<wire::CreateSubnetResult> {
    // The tag specifications are checked before the VPC id, as EC2 answers them.
    let tag_specs = tag_specs(&req.tag_specifications)?;
    let input = CreateSubnetInput {
        vpc_id: Some(id(&req.vpc_id)?),
        cidr_block: req.cidr_block,
        availability_zone: non_empty(req.availability_zone),
        availability_zone_id: non_empty(req.availability_zone_id),
        tag_specs,
    };
    let s = cp.create_subnet(cx.caller, &input, cx.dry_run)?;
    Ok(wire::CreateSubnetResult {
        subnet: Some(subnet_item(&s)),
    })
}

/// DeleteSubnet.
pub fn delete_subnet(cp: &ControlPlane, cx: &Ctx, req: wire::DeleteSubnetRequest) -> Result<()> {
    cp.delete_subnet(cx.caller, &id(&req.subnet_id)?, cx.dry_run)
}

/// DescribeSubnets.
pub fn describe_subnets(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeSubnetsRequest,
) -> Result<wire::DescribeSubnetsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, SUBNET_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) = cp.describe_subnets(cx.caller, &ids(&req.subnet_ids)?, &filters, &pg)?;
    Ok(wire::DescribeSubnetsResult {
        subnets: Some(list.iter().map(subnet_item).collect()),
        next_token: next,
    })
}

/// ModifySubnetAttribute (`MapPublicIpOnLaunch`).
pub fn modify_subnet_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifySubnetAttributeRequest,
) -> Result<()> {
    let value = req
        .map_public_ip_on_launch
        .and_then(|v| v.value)
        .ok_or_else(|| Error::MissingParameter("MapPublicIpOnLaunch".into()))?;
    cp.modify_subnet_map_public_ip(cx.caller, &id(&req.subnet_id)?, value, cx.dry_run)
}
