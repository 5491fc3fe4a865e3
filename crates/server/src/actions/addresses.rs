//! Elastic IP actions: typed requests to the control plane, its records to the
//! model's output types.

use super::{non_empty, tag_set, tag_specs, Ctx};
use strato_common::{Error, Result};
use strato_control::net::addresses::{address_ref, AddressRef, ADDRESS_FILTERS};
use strato_control::ControlPlane;
use strato_domain::ElasticIp;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, DomainType};

/// The pool every address is allocated from (Strato has no BYOIP pools).
const PUBLIC_IPV4_POOL: &str = "amazon";

/// An Elastic IP as EC2 describes it (the items of `addressesSet`). The association
/// members are present only while the address is associated; `region` is the
/// address's network border group (one per region here).
fn address_item(region: &str, a: &ElasticIp, tags: &[(String, String)]) -> wire::Address {
    let assoc = a.association.as_ref();
    wire::Address {
        public_ip: Some(a.public_ip.clone()),
        allocation_id: Some(a.id.to_string()),
        domain: DomainType::from_wire(&a.domain),
        instance_id: assoc.map(|x| x.instance_id.to_string()),
        association_id: assoc.map(|x| x.id.to_string()),
        network_interface_owner_id: assoc.map(|_| a.account_id.to_string()),
        private_ip_address: assoc.map(|x| x.private_ip.clone()),
        tags: tag_set(tags),
        public_ipv4_pool: Some(PUBLIC_IPV4_POOL.to_string()),
        network_border_group: Some(region.to_string()),
        ..Default::default()
    }
}

/// AllocateAddress. A network border group other than the caller's region is
/// refused, as EC2 refuses one the region does not have.
pub fn allocate(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AllocateAddressRequest,
) -> Result<wire::AllocateAddressResult> {
    let region = &cx.caller.region;
    if let Some(g) = &req.network_border_group {
        if g != region {
            return Err(Error::invalid_value(format!(
                "Invalid value '{g}' for NetworkBorderGroup."
            )));
        }
    }
    let (a, _tags) = cp.allocate_address(
        cx.caller,
        req.domain.map(|d| d.as_str()),
        &tag_specs(&req.tag_specifications)?,
        cx.dry_run,
    )?;
    Ok(wire::AllocateAddressResult {
        public_ip: Some(a.public_ip.clone()),
        domain: DomainType::from_wire(&a.domain),
        allocation_id: Some(a.id.to_string()),
        public_ipv4_pool: Some(PUBLIC_IPV4_POOL.to_string()),
        network_border_group: Some(region.clone()),
        ..Default::default()
    })
}

/// DescribeAddresses.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeAddressesRequest,
) -> Result<wire::DescribeAddressesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, ADDRESS_FILTERS, true)?;
    let list = cp.describe_addresses(cx.caller, &req.public_ips, &req.allocation_ids, &filters)?;
    let region = &cx.caller.region;
    Ok(wire::DescribeAddressesResult {
        addresses: Some(
            list.iter()
                .map(|(a, t)| address_item(region, a, t))
                .collect(),
        ),
    })
}

/// AssociateAddress (with an instance; network interfaces are not served yet, so
/// `InstanceId` is required although the model makes it optional).
pub fn associate(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AssociateAddressRequest,
) -> Result<wire::AssociateAddressResult> {
    let address = address_ref(
        non_empty(req.allocation_id).as_deref(),
        non_empty(req.public_ip).as_deref(),
    )?;
    let instance =
        non_empty(req.instance_id).ok_or_else(|| Error::MissingParameter("InstanceId".into()))?;
    let assoc = cp.associate_address(
        cx.caller,
        &address,
        &instance,
        non_empty(req.private_ip_address).as_deref(),
        req.allow_reassociation.unwrap_or(false),
        cx.dry_run,
    )?;
    Ok(wire::AssociateAddressResult {
        association_id: Some(assoc.to_string()),
    })
}

/// DisassociateAddress.
pub fn disassociate(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DisassociateAddressRequest,
) -> Result<()> {
    cp.disassociate_address(
        cx.caller,
        non_empty(req.association_id).as_deref(),
        non_empty(req.public_ip).as_deref(),
        cx.dry_run,
    )
}

/// ReleaseAddress.
pub fn release(cp: &ControlPlane, cx: &Ctx, req: wire::ReleaseAddressRequest) -> Result<()> {
    let address: AddressRef = address_ref(
        non_empty(req.allocation_id).as_deref(),
        non_empty(req.public_ip).as_deref(),
    )?;
    cp.release_address(cx.caller, &address, cx.dry_run)
}
