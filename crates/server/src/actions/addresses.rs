//! Elastic IP actions: typed requests to the control plane, its records to the
//! model's output types.

use super::{id, ids, non_empty, tag_set, tag_specs, Ctx};
use strato_common::{Error, ResourceId, Result};
use strato_control::net::addresses::{
    parse_public_ip, AddressRef, AssociationRef, ADDRESS_FILTERS,
};
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

/// Names an address (or association) by exactly one of an id (`param`, which EC2's
/// messages call `noun`) and a public IP; `by_id` and `by_ip` build the reference. The
/// form is checked before the id or the address is parsed, as EC2 answers it first.
fn id_or_public_ip<T: ResourceId, R>(
    given_id: Option<String>,
    public_ip: Option<String>,
    (param, noun): (&str, &str),
    by_id: fn(T) -> R,
    by_ip: fn(String) -> R,
) -> Result<R> {
    match (non_empty(given_id), non_empty(public_ip)) {
        (Some(given), None) => Ok(by_id(id(&given)?)),
        (None, Some(ip)) => Ok(by_ip(parse_public_ip(&ip)?)),
        (Some(_), Some(_)) => Err(Error::InvalidParameterCombination(format!(
            "You may specify public IP or {noun}, but not both in the same call"
        ))),
        (None, None) => Err(Error::MissingParameter(format!("{param} or PublicIp"))),
    }
}

/// The address an `AllocationId` or a `PublicIp` names.
fn address_ref(allocation_id: Option<String>, public_ip: Option<String>) -> Result<AddressRef> {
    id_or_public_ip(
        allocation_id,
        public_ip,
        ("AllocationId", "allocation id"),
        AddressRef::Allocation,
        AddressRef::Public,
    )
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
    let list = cp.describe_addresses(
        cx.caller,
        &req.public_ips,
        &ids(&req.allocation_ids)?,
        &filters,
    )?;
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
    let address = address_ref(req.allocation_id, req.public_ip)?;
    let instance =
        non_empty(req.instance_id).ok_or_else(|| Error::MissingParameter("InstanceId".into()))?;
    let assoc = cp.associate_address(
        cx.caller,
        &address,
        &id(&instance)?,
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
    let association = id_or_public_ip(
        req.association_id,
        req.public_ip,
        ("AssociationId", "association id"),
        AssociationRef::Association,
        AssociationRef::Public,
    )?;
    cp.disassociate_address(cx.caller, &association, cx.dry_run)
}

/// ReleaseAddress.
pub fn release(cp: &ControlPlane, cx: &Ctx, req: wire::ReleaseAddressRequest) -> Result<()> {
    let address = address_ref(req.allocation_id, req.public_ip)?;
    cp.release_address(cx.caller, &address, cx.dry_run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::ResourceKind;

    #[test]
    fn addresses_are_named_one_way() {
        let some = |s: &str| Some(s.to_string());
        assert!(matches!(
            address_ref(some("eipalloc-12345678"), None),
            Ok(AddressRef::Allocation(_))
        ));
        assert!(matches!(
            address_ref(some("eipalloc-zz"), None),
            Err(Error::Malformed {
                kind: ResourceKind::Address,
                ..
            })
        ));
        assert!(matches!(
            address_ref(None, some("nope")),
            Err(Error::InvalidParameterValue(_))
        ));
        // The form is answered before the id is parsed.
        assert!(matches!(
            address_ref(some("eipalloc-zz"), some("198.51.100.1")),
            Err(Error::InvalidParameterCombination(_))
        ));
        assert!(matches!(
            address_ref(some(""), None),
            Err(Error::MissingParameter(_))
        ));
        assert!(matches!(
            id_or_public_ip(
                some("eipassoc-zz"),
                None,
                ("AssociationId", "association id"),
                AssociationRef::Association,
                AssociationRef::Public,
            ),
            Err(Error::Malformed {
                kind: ResourceKind::AddressAssociation,
                ..
            })
        ));
    }
}
