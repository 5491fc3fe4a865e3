//! Network interface actions and their XML encoding.

use super::{page, tag_specs};
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{Error, Result};
use strato_control::instances::private_dns_name;
use strato_control::net::interfaces::{status_of, CreateInterface, INTERFACE_FILTERS};
use strato_control::{Caller, ControlPlane};
use strato_domain::NetworkInterface;
use strato_ec2_wire::{decode_filters, xml, Params, XmlWriter};

/// A `NetworkInterface` structure.
fn write_interface(
    w: &mut XmlWriter,
    region: &str,
    n: &NetworkInterface,
    tags: &[(String, String)],
) {
    let dns = private_dns_name(region, &n.private_ip);
    w.text("networkInterfaceId", n.id.as_str())
        .text("subnetId", n.subnet_id.as_str())
        .text("vpcId", n.vpc_id.as_str())
        .text("availabilityZone", &n.availability_zone)
        .text("description", &n.description)
        .text("ownerId", n.account_id.as_str())
        .bool("requesterManaged", false)
        .text("status", status_of(n))
        .text("macAddress", &n.mac_address)
        .text("privateIpAddress", &n.private_ip)
        .text("privateDnsName", &dns)
        .bool("sourceDestCheck", true);
    w.list("groupSet", &n.groups, |w, g| {
        w.text("groupId", g.id.as_str()).text("groupName", &g.name);
    });
    if let Some(a) = &n.attachment {
        w.open("attachment")
            .text("attachmentId", a.id.as_str())
            .text("instanceId", a.instance_id.as_str())
            .text("instanceOwnerId", n.account_id.as_str())
            .num("deviceIndex", a.device_index)
            .num("networkCardIndex", 0)
            .text("status", "attached")
            .text("attachTime", &ec2_timestamp(a.attach_time_ms))
            .bool("deleteOnTermination", a.delete_on_termination)
            .close("attachment");
    }
    w.tag_set(tags);
    w.list("privateIpAddressesSet", std::iter::once(()), |w, _| {
        w.text("privateIpAddress", &n.private_ip)
            .text("privateDnsName", &dns)
            .bool("primary", true);
    });
    w.open("ipv6AddressesSet")
        .close("ipv6AddressesSet")
        .text("interfaceType", "interface");
}

/// CreateNetworkInterface.
pub fn create(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let req = CreateInterface {
        subnet_id: p.required("SubnetId")?.to_string(),
        private_ip: p
            .get("PrivateIpAddress")
            .filter(|s| !s.is_empty())
            .map(String::from),
        group_ids: p.list("SecurityGroupId"),
        description: p.get("Description").map(String::from),
        client_token: p.get("ClientToken").map(String::from),
    };
    let (n, tags) = cp.create_network_interface(c, &req, &tag_specs(p)?, dry)?;
    let region = c.region.clone();
    Ok(xml::success("CreateNetworkInterface", rid, |w| {
        w.open("networkInterface");
        write_interface(w, &region, &n, &tags);
        w.close("networkInterface");
    }))
}

/// DescribeNetworkInterfaces.
pub fn describe(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", INTERFACE_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) =
        cp.describe_network_interfaces(c, &p.list("NetworkInterfaceId"), &filters, &pg)?;
    let region = c.region.clone();
    Ok(xml::success("DescribeNetworkInterfaces", rid, |w| {
        w.list("networkInterfaceSet", &list, |w, (n, t)| {
            write_interface(w, &region, n, t)
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

/// DeleteNetworkInterface.
pub fn delete(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.delete_network_interface(c, p.required("NetworkInterfaceId")?, dry)?;
    Ok(xml::success("DeleteNetworkInterface", rid, |w| {
        w.bool("return", true);
    }))
}

/// AttachNetworkInterface.
pub fn attach(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let index = p
        .int("DeviceIndex")?
        .ok_or_else(|| Error::MissingParameter("DeviceIndex".into()))?;
    let att = cp.attach_network_interface(
        c,
        p.required("NetworkInterfaceId")?,
        p.required("InstanceId")?,
        index,
        dry,
    )?;
    Ok(xml::success("AttachNetworkInterface", rid, |w| {
        w.text("attachmentId", att.as_str())
            .num("networkCardIndex", 0);
    }))
}

/// DetachNetworkInterface.
pub fn detach(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    p.bool("Force")?;
    cp.detach_network_interface(c, p.required("AttachmentId")?, dry)?;
    Ok(xml::success("DetachNetworkInterface", rid, |w| {
        w.bool("return", true);
    }))
}
