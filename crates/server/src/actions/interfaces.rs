//! Network interface actions: typed requests to the control plane, its records to the
//! model's output types.

use super::{id, ids, non_empty, page, tag_set, tag_specs, Ctx};
use strato_common::{Error, Result};
use strato_control::instances::private_dns_name;
use strato_control::net::addresses::PublicAssociation;
use strato_control::net::interfaces::{
    status_of, CreateInterface, InterfaceInfo, INTERFACE_FILTERS,
};
use strato_control::ControlPlane;
use strato_ec2_wire::codec::DateTime;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, AttachmentStatus, NetworkInterfaceStatus};

/// The public address an interface holds, as EC2 shows it in `association` (on the
/// interface and on the private address that carries it). Carrier and customer-owned
/// addresses never exist here.
fn association_item(p: &PublicAssociation) -> wire::NetworkInterfaceAssociation {
    wire::NetworkInterfaceAssociation {
        public_ip: Some(p.public_ip.clone()),
        public_dns_name: Some(p.public_dns_name.clone()),
        ip_owner_id: Some(p.ip_owner_id.clone()),
        allocation_id: p.allocation_id.as_ref().map(|a| a.to_string()),
        association_id: p.association_id.as_ref().map(|a| a.to_string()),
        carrier_ip: None,
        customer_owned_ip: None,
    }
}

/// A network interface as EC2 describes it (the items of `networkInterfaceSet`, and
/// `networkInterface` in Create answers). Strato gives an interface exactly one
/// private address (its primary), no IPv6 and one network card, so those members are
/// constants; its public address, if any, is that primary address's.
fn interface_item(region: &str, info: &InterfaceInfo) -> wire::NetworkInterface {
    let (n, tags) = (&info.interface, &info.tags);
    let dns = private_dns_name(region, &n.private_ip);
    let association = info.association.as_ref().map(association_item);
    wire::NetworkInterface {
        network_interface_id: Some(n.id.to_string()),
        subnet_id: Some(n.subnet_id.to_string()),
        vpc_id: Some(n.vpc_id.to_string()),
        availability_zone: Some(n.availability_zone.clone()),
        description: Some(n.description.clone()),
        owner_id: Some(n.account_id.to_string()),
        requester_managed: Some(false),
        status: NetworkInterfaceStatus::from_wire(status_of(n)),
        mac_address: Some(n.mac_address.clone()),
        private_ip_address: Some(n.private_ip.clone()),
        private_dns_name: Some(dns.clone()),
        source_dest_check: Some(true),
        groups: Some(
            n.groups
                .iter()
                .map(|g| wire::GroupIdentifier {
                    group_id: Some(g.id.to_string()),
                    group_name: Some(g.name.clone()),
                })
                .collect(),
        ),
        attachment: n
            .attachment
            .as_ref()
            .map(|a| wire::NetworkInterfaceAttachment {
                attachment_id: Some(a.id.to_string()),
                instance_id: Some(a.instance_id.to_string()),
                instance_owner_id: Some(n.account_id.to_string()),
                device_index: Some(i32::try_from(a.device_index).unwrap_or(i32::MAX)),
                network_card_index: Some(0),
                status: Some(AttachmentStatus::Attached),
                attach_time: Some(DateTime(a.attach_time_ms)),
                delete_on_termination: Some(a.delete_on_termination),
                ..Default::default()
            }),
        tag_set: tag_set(tags),
        private_ip_addresses: Some(vec![wire::NetworkInterfacePrivateIpAddress {
            private_ip_address: Some(n.private_ip.clone()),
            private_dns_name: Some(dns),
            primary: Some(true),
            association: association.clone(),
        }]),
        association,
        ipv6_addresses: Some(vec![]),
        interface_type: Some(wire::NetworkInterfaceType::Interface),
        ..Default::default()
    }
}

/// CreateNetworkInterface.
pub fn create(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateNetworkInterfaceRequest,
) -> Result<wire::CreateNetworkInterfaceResult> {
    // The tag specifications are checked before the ids, as EC2 answers them.
    let specs = tag_specs(&req.tag_specifications)?;
    let input = CreateInterface {
        subnet_id: id(&req.subnet_id)?,
        private_ip: non_empty(req.private_ip_address),
        group_ids: ids(&req.groups)?,
        description: req.description,
        client_token: req.client_token,
    };
    let info = cp.create_network_interface(cx.caller, &input, &specs, cx.dry_run)?;
    Ok(wire::CreateNetworkInterfaceResult {
        network_interface: Some(interface_item(&cx.caller.region, &info)),
        client_token: None,
    })
}

/// DescribeNetworkInterfaces.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeNetworkInterfacesRequest,
) -> Result<wire::DescribeNetworkInterfacesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, INTERFACE_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) = cp.describe_network_interfaces(
        cx.caller,
        &ids(&req.network_interface_ids)?,
        &filters,
        &pg,
    )?;
    let region = &cx.caller.region;
    Ok(wire::DescribeNetworkInterfacesResult {
        network_interfaces: Some(
            list.iter()
                .map(|info| interface_item(region, info))
                .collect(),
        ),
        next_token: next,
    })
}

/// DeleteNetworkInterface.
pub fn delete(cp: &ControlPlane, cx: &Ctx, req: wire::DeleteNetworkInterfaceRequest) -> Result<()> {
    cp.delete_network_interface(cx.caller, &id(&req.network_interface_id)?, cx.dry_run)
}

/// AttachNetworkInterface (always on network card 0, the only one an instance has).
pub fn attach(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AttachNetworkInterfaceRequest,
) -> Result<wire::AttachNetworkInterfaceResult> {
    let att = cp.attach_network_interface(
        cx.caller,
        &id(&req.network_interface_id)?,
        &id(&req.instance_id)?,
        i64::from(req.device_index),
        cx.dry_run,
    )?;
    Ok(wire::AttachNetworkInterfaceResult {
        attachment_id: Some(att.to_string()),
        network_card_index: Some(0),
    })
}

/// DetachNetworkInterface. `Force` is accepted and changes nothing: a detach here is
/// immediate, so there is never a stuck attachment to force off.
pub fn detach(cp: &ControlPlane, cx: &Ctx, req: wire::DetachNetworkInterfaceRequest) -> Result<()> {
    cp.detach_network_interface(cx.caller, &id(&req.attachment_id)?, cx.dry_run)
}
