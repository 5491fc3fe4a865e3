//! Elastic IP actions and their XML encoding.

use super::tag_specs;
use strato_common::{Error, Result};
use strato_control::net::addresses::{address_ref, AddressRef, ADDRESS_FILTERS};
use strato_control::{Caller, ControlPlane};
use strato_domain::ElasticIp;
use strato_ec2_wire::{decode_filters, xml, Params, XmlWriter};

/// An `addressesSet` item.
fn write_address(w: &mut XmlWriter, region: &str, a: &ElasticIp, tags: &[(String, String)]) {
    let assoc = a.association.as_ref();
    w.text("publicIp", &a.public_ip)
        .text("allocationId", a.id.as_str())
        .text("domain", &a.domain)
        .opt_text("instanceId", assoc.map(|x| x.instance_id.as_str()))
        .opt_text("associationId", assoc.map(|x| x.id.as_str()))
        .opt_text(
            "networkInterfaceOwnerId",
            assoc.map(|_| a.account_id.as_str()),
        )
        .opt_text("privateIpAddress", assoc.map(|x| x.private_ip.as_str()))
        .tag_set(tags)
        .text("publicIpv4Pool", "amazon")
        .text("networkBorderGroup", region);
}

/// AllocateAddress.
pub fn allocate(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    if let Some(g) = p.get("NetworkBorderGroup") {
        if g != c.region {
            return Err(Error::invalid_value(format!(
                "Invalid value '{g}' for NetworkBorderGroup."
            )));
        }
    }
    let (a, _tags) = cp.allocate_address(c, p.get("Domain"), &tag_specs(p)?, dry)?;
    let region = c.region.clone();
    Ok(xml::success("AllocateAddress", rid, |w| {
        w.text("publicIp", &a.public_ip)
            .text("domain", &a.domain)
            .text("allocationId", a.id.as_str())
            .text("publicIpv4Pool", "amazon")
            .text("networkBorderGroup", &region);
    }))
}

/// DescribeAddresses.
pub fn describe(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", ADDRESS_FILTERS, true)?;
    let list = cp.describe_addresses(c, &p.list("PublicIp"), &p.list("AllocationId"), &filters)?;
    let region = c.region.clone();
    Ok(xml::success("DescribeAddresses", rid, |w| {
        w.list("addressesSet", &list, |w, (a, t)| {
            write_address(w, &region, a, t)
        });
    }))
}

/// AssociateAddress (with an instance; network interfaces are not served yet).
pub fn associate(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let address = address_ref(
        p.get("AllocationId").filter(|s| !s.is_empty()),
        p.get("PublicIp").filter(|s| !s.is_empty()),
    )?;
    let instance = p.required("InstanceId")?;
    let allow = p.bool("AllowReassociation")?.unwrap_or(false);
    let assoc = cp.associate_address(
        c,
        &address,
        instance,
        p.get("PrivateIpAddress").filter(|s| !s.is_empty()),
        allow,
        dry,
    )?;
    Ok(xml::success("AssociateAddress", rid, |w| {
        w.bool("return", true).text("associationId", assoc.as_str());
    }))
}

/// DisassociateAddress.
pub fn disassociate(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.disassociate_address(
        c,
        p.get("AssociationId").filter(|s| !s.is_empty()),
        p.get("PublicIp").filter(|s| !s.is_empty()),
        dry,
    )?;
    Ok(xml::success("DisassociateAddress", rid, |w| {
        w.bool("return", true);
    }))
}

/// ReleaseAddress.
pub fn release(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let address: AddressRef = address_ref(
        p.get("AllocationId").filter(|s| !s.is_empty()),
        p.get("PublicIp").filter(|s| !s.is_empty()),
    )?;
    cp.release_address(c, &address, dry)?;
    Ok(xml::success("ReleaseAddress", rid, |w| {
        w.bool("return", true);
    }))
}
