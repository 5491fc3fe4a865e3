//! Instance actions and the instance XML encoding.

use super::{page, tag_specs};
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{Error, Result};
use strato_control::instances::private_dns_name;
use strato_control::instances::{
    reachability_of, status_of, AttributeChange, InstanceInterfaces, MetadataOptionsChange,
    RunInstancesInput, StateChange, INSTANCE_FILTERS, INSTANCE_STATUS_FILTERS,
};
use strato_control::{Caller, ControlPlane};
use strato_domain::{Instance, InstanceState, NetworkInterface, ShutdownBehavior};
use strato_ec2_wire::params::{decode_base64, encode_base64};
use strato_ec2_wire::{decode_filters, xml, Params, XmlWriter, EC2_XMLNS};

/// `<instanceState><code/><name/></instanceState>` under another tag name.
fn state(w: &mut XmlWriter, tag: &str, s: InstanceState) {
    w.open(tag)
        .num("code", s.code())
        .text("name", s.name())
        .close(tag);
}

/// The instance's security groups (`groupSet`).
fn write_groups(w: &mut XmlWriter, i: &Instance) {
    w.list("groupSet", &i.security_groups, |w, g| {
        w.text("groupId", g.id.as_str()).text("groupName", &g.name);
    });
}

/// A public address as an interface shows it (`association`).
struct PublicAddress<'a> {
    ip: &'a str,
    dns_name: String,
    /// `amazon`, or the account for an Elastic IP.
    owner: &'a str,
}

impl PublicAddress<'_> {
    fn write(&self, w: &mut XmlWriter) {
        w.open("association")
            .text("publicIp", self.ip)
            .text("publicDnsName", &self.dns_name)
            .text("ipOwnerId", self.owner)
            .close("association");
    }
}

/// One `networkInterfaceSet` item of an instance (`InstanceNetworkInterface`).
fn write_instance_interface(
    w: &mut XmlWriter,
    region: &str,
    n: &NetworkInterface,
    public: Option<&PublicAddress>,
) {
    let dns = private_dns_name(region, &n.private_ip);
    w.text("networkInterfaceId", n.id.as_str())
        .text("subnetId", n.subnet_id.as_str())
        .text("vpcId", n.vpc_id.as_str())
        .text("description", &n.description)
        .text("ownerId", n.account_id.as_str())
        .text("status", strato_control::net::interfaces::status_of(n))
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
            .num("deviceIndex", a.device_index)
            .text("status", "attached")
            .text("attachTime", &ec2_timestamp(a.attach_time_ms))
            .bool("deleteOnTermination", a.delete_on_termination)
            .num("networkCardIndex", 0)
            .close("attachment");
    }
    if let Some(p) = public {
        p.write(w);
    }
    w.list("privateIpAddressesSet", std::iter::once(()), |w, _| {
        w.text("privateIpAddress", &n.private_ip)
            .text("privateDnsName", &dns)
            .bool("primary", true);
        if let Some(p) = public {
            p.write(w);
        }
    });
    w.open("ipv6AddressesSet")
        .close("ipv6AddressesSet")
        .text("interfaceType", "interface");
}

/// One instance as EC2 describes it (an `instancesSet` item). `region` names the
/// private DNS domain; `nics` are the instance's attached interfaces, primary first.
pub fn write_instance(
    w: &mut XmlWriter,
    region: &str,
    i: &Instance,
    tags: &[(String, String)],
    nics: &InstanceInterfaces,
) {
    w.text("instanceId", i.id.as_str())
        .text("imageId", i.image_id.as_str());
    state(w, "instanceState", i.state);
    let private_dns = i
        .private_ip
        .as_deref()
        .map(|ip| private_dns_name(region, ip))
        .unwrap_or_default();
    let public_dns = i
        .public_ip
        .as_deref()
        .map(|ip| strato_control::net::addresses::public_dns_name(region, ip))
        .unwrap_or_default();
    w.text("privateDnsName", &private_dns)
        .text("dnsName", &public_dns)
        .text("reason", &i.state_transition_reason)
        .opt_text("keyName", i.key_name.as_deref())
        .num("amiLaunchIndex", i.launch_index)
        .open("productCodes")
        .close("productCodes")
        .text("instanceType", &i.instance_type)
        .text("launchTime", &ec2_timestamp(i.launch_time_ms))
        .open("placement")
        .text("availabilityZone", &i.availability_zone)
        .text("groupName", "")
        .text("tenancy", "default")
        .close("placement")
        .opt_text("kernelId", i.kernel_id.as_deref())
        .opt_text("ramdiskId", i.ramdisk_id.as_deref())
        .open("monitoring")
        .text("state", if i.monitoring { "enabled" } else { "disabled" })
        .close("monitoring")
        .opt_text("subnetId", i.subnet_id.as_ref().map(|s| s.as_str()))
        .opt_text("vpcId", i.vpc_id.as_ref().map(|v| v.as_str()))
        .opt_text("privateIpAddress", i.private_ip.as_deref())
        .opt_text("ipAddress", i.public_ip.as_deref());
    if i.vpc_id.is_some() {
        w.bool("sourceDestCheck", true);
    }
    write_groups(w, i);
    if let Some(r) = &i.state_reason {
        w.open("stateReason")
            .text("code", &r.code)
            .text("message", &r.message)
            .close("stateReason");
    }
    w.text("architecture", &i.architecture)
        .text("rootDeviceType", "ebs")
        .text("rootDeviceName", &i.root_device_name)
        .open("blockDeviceMapping")
        .close("blockDeviceMapping")
        .text("virtualizationType", "hvm")
        .opt_text("clientToken", i.client_token.as_deref())
        .tag_set(tags)
        .text("hypervisor", "xen");
    let public = i.public_ip.as_deref().map(|ip| PublicAddress {
        ip,
        dns_name: public_dns.clone(),
        owner: if nics.is_elastic(ip) {
            i.account_id.as_str()
        } else {
            "amazon"
        },
    });
    w.list("networkInterfaceSet", nics.of(i.id.as_str()), |w, n| {
        // The instance's public address is its primary interface's.
        let primary = n.attachment.as_ref().is_some_and(|a| a.device_index == 0);
        write_instance_interface(w, region, n, public.as_ref().filter(|_| primary));
    });
    w.bool("ebsOptimized", i.ebs_optimized)
        .bool("enaSupport", true);
    if let Some(o) = strato_control::instances::cpu_options_of(i) {
        w.open("cpuOptions")
            .num("coreCount", o.core_count)
            .num("threadsPerCore", o.threads_per_core)
            .close("cpuOptions");
    }
    w.open("capacityReservationSpecification")
        .text("capacityReservationPreference", "open")
        .close("capacityReservationSpecification")
        .open("hibernationOptions")
        .bool("configured", false)
        .close("hibernationOptions")
        .open("metadataOptions");
    write_metadata_options(w, &i.metadata_options);
    w.close("metadataOptions")
        .open("enclaveOptions")
        .bool("enabled", false)
        .close("enclaveOptions")
        .text("bootMode", "legacy-bios")
        .text("platformDetails", "Linux/UNIX")
        .text("usageOperation", "RunInstances")
        .text("usageOperationUpdateTime", &ec2_timestamp(i.launch_time_ms))
        .open("maintenanceOptions")
        .text("autoRecovery", &i.auto_recovery)
        .close("maintenanceOptions")
        .open("privateDnsNameOptions")
        .text("hostnameType", "ip-name")
        .bool("enableResourceNameDnsARecord", false)
        .bool("enableResourceNameDnsAAAARecord", false)
        .close("privateDnsNameOptions")
        .text("currentInstanceBootMode", "legacy-bios");
}

/// The members of `metadataOptions` / `instanceMetadataOptions`.
fn write_metadata_options(w: &mut XmlWriter, m: &strato_domain::MetadataOptions) {
    w.text("state", "applied")
        .text("httpTokens", &m.http_tokens)
        .num("httpPutResponseHopLimit", m.hop_limit)
        .text("httpEndpoint", &m.http_endpoint)
        .text("httpProtocolIpv6", &m.http_protocol_ipv6)
        .text("instanceMetadataTags", &m.instance_metadata_tags);
}

/// Decodes metadata options given as `{prefix}HttpTokens` etc.
fn metadata_change(p: &Params, prefix: &str) -> Result<MetadataOptionsChange> {
    let s = |k: &str| p.get(&format!("{prefix}{k}")).map(str::to_string);
    Ok(MetadataOptionsChange {
        http_tokens: s("HttpTokens"),
        hop_limit: p.int(&format!("{prefix}HttpPutResponseHopLimit"))?,
        http_endpoint: s("HttpEndpoint"),
        http_protocol_ipv6: s("HttpProtocolIpv6"),
        instance_metadata_tags: s("InstanceMetadataTags"),
    })
}

pub fn modify_metadata_options(
    cp: &ControlPlane,
    c: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    let dry = p.dry_run()?;
    let id = p.required("InstanceId")?;
    let change = metadata_change(p, "")?;
    let i = cp.modify_instance_metadata_options(c, id, &change, dry)?;
    Ok(xml::success("ModifyInstanceMetadataOptions", rid, |w| {
        w.text("instanceId", i.id.as_str())
            .open("instanceMetadataOptions");
        write_metadata_options(w, &i.metadata_options);
        w.close("instanceMetadataOptions");
    }))
}

fn run_input(p: &Params) -> Result<RunInstancesInput> {
    let net = launch_network(p)?;
    Ok(RunInstancesInput {
        image_id: p.get("ImageId").map(str::to_string),
        instance_type: p.get("InstanceType").map(str::to_string),
        min_count: p.int("MinCount")?,
        max_count: p.int("MaxCount")?,
        key_name: p
            .get("KeyName")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        user_data: p
            .get("UserData")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        tag_specs: tag_specs(p)?,
        disable_api_termination: p.bool("DisableApiTermination")?,
        disable_api_stop: p.bool("DisableApiStop")?,
        shutdown_behavior: p
            .get("InstanceInitiatedShutdownBehavior")
            .map(str::to_string),
        availability_zone: p
            .get("Placement.AvailabilityZone")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        client_token: p
            .get("ClientToken")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        subnet_id: net.subnet_id,
        security_group_ids: net.security_group_ids,
        security_group_names: p.list("SecurityGroup"),
        metadata_options: metadata_change(p, "MetadataOptions.")?,
        private_ip_address: net.private_ip_address,
        network_interface_id: net.network_interface_id,
        delete_on_termination: net.delete_on_termination,
        interface_description: net.description,
        associate_public_ip: net.associate_public_ip,
        cpu_credits: p.get("CreditSpecification.CpuCredits").map(str::to_string),
        monitoring: p.bool("Monitoring.Enabled")?,
        ebs_optimized: p.bool("EbsOptimized")?,
        core_count: p.int("CpuOptions.CoreCount")?,
        threads_per_core: p.int("CpuOptions.ThreadsPerCore")?,
        auto_recovery: p.get("MaintenanceOptions.AutoRecovery").map(str::to_string),
    })
}

/// The network part of a RunInstances request.
#[derive(Default)]
struct LaunchNetworkParams {
    subnet_id: Option<String>,
    security_group_ids: Vec<String>,
    private_ip_address: Option<String>,
    network_interface_id: Option<String>,
    delete_on_termination: Option<bool>,
    description: Option<String>,
    associate_public_ip: Option<bool>,
}

/// The network of a launch: given directly (`SubnetId`, `SecurityGroupId.N`,
/// `PrivateIpAddress`), or through `NetworkInterface.1` (the primary interface: the aws
/// CLI sends the subnet and groups there with `--associate-public-ip-address`), which
/// may also name an existing interface to launch with (`NetworkInterfaceId`). One
/// interface at launch is all Strato takes; more attach afterwards.
fn launch_network(p: &Params) -> Result<LaunchNetworkParams> {
    let non_empty = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
    let subnet = non_empty(p.get("SubnetId"));
    let groups = p.list("SecurityGroupId");
    let private_ip = non_empty(p.get("PrivateIpAddress"));
    let nics = p.structs("NetworkInterface");
    let Some(nic) = nics.first() else {
        return Ok(LaunchNetworkParams {
            subnet_id: subnet,
            security_group_ids: groups,
            private_ip_address: private_ip,
            ..Default::default()
        });
    };
    if nics.len() > 1 {
        return Err(Error::Unsupported(
            "Launching with more than one network interface is not supported by this endpoint."
                .into(),
        ));
    }
    for key in [
        "PrivateIpAddresses.1.PrivateIpAddress",
        "SecondaryPrivateIpAddressCount",
        "Ipv6AddressCount",
        "Ipv6Addresses.1.Ipv6Address",
    ] {
        if nic.get(key).is_some() {
            return Err(Error::Unsupported(format!(
                "NetworkInterface.1.{key} is not supported by this endpoint."
            )));
        }
    }
    if nic.int("DeviceIndex")?.unwrap_or(0) != 0 {
        return Err(Error::invalid_value(
            "The primary network interface must have device index 0.",
        ));
    }
    let public = nic.bool("AssociatePublicIpAddress")?;
    let delete_on_termination = nic.bool("DeleteOnTermination")?;
    let nic_subnet = non_empty(nic.get("SubnetId"));
    let nic_groups = nic.list("SecurityGroupId");
    let nic_ip = non_empty(nic.get("PrivateIpAddress"));
    let eni = non_empty(nic.get("NetworkInterfaceId"));
    let description = nic.get("Description").map(str::to_string);
    let combination = |m: &str| Err(Error::InvalidParameterCombination(m.into()));
    if eni.is_some() {
        if nic_subnet.is_some() {
            return combination(
                "A network interface may not specify both a network interface ID and a subnet.",
            );
        }
        if !nic_groups.is_empty() {
            return combination("A network interface may not specify both a network interface ID and security groups.");
        }
        if nic_ip.is_some() {
            return combination("A network interface may not specify both a network interface ID and a private IP address.");
        }
        if public.is_some() {
            return combination("The associatePublicIPAddress parameter cannot be specified when launching with an existing network interface.");
        }
        if description.is_some() {
            return combination("A network interface may not specify both a network interface ID and a description.");
        }
    }
    if subnet.is_some() && (nic_subnet.is_some() || eni.is_some()) {
        return combination("Network interfaces and an instance-level subnet ID may not be specified on the same request");
    }
    if !groups.is_empty() && (!nic_groups.is_empty() || eni.is_some()) {
        return combination("Network interfaces and an instance-level security groups may not be specified on the same request");
    }
    if private_ip.is_some() && (nic_ip.is_some() || eni.is_some()) {
        return combination("Network interfaces and an instance-level private IP address should not be specified on the same request");
    }
    Ok(LaunchNetworkParams {
        subnet_id: subnet.or(nic_subnet),
        security_group_ids: if groups.is_empty() {
            nic_groups
        } else {
            groups
        },
        private_ip_address: private_ip.or(nic_ip),
        network_interface_id: eni,
        delete_on_termination,
        description,
        associate_public_ip: public,
    })
}

pub fn run(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let res = cp.run_instances(c, &run_input(p)?, dry)?;
    Ok(xml::success("RunInstances", rid, |w| {
        w.text("reservationId", res.reservation_id.as_str())
            .text("ownerId", &res.owner_id)
            .open("groupSet")
            .close("groupSet");
        w.list("instancesSet", &res.instances, |w, (i, t)| {
            write_instance(w, &c.region, i, t, &res.interfaces)
        });
    }))
}

pub fn describe(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", INSTANCE_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, nics, next) =
        cp.describe_instances_with_interfaces(c, &p.list("InstanceId"), &filters, &pg)?;
    // Group by reservation, keeping the order in which reservations first appear.
    let mut groups: Vec<(String, Vec<usize>)> = vec![];
    let mut index: std::collections::HashMap<&str, usize> = Default::default();
    for (n, (i, _)) in list.iter().enumerate() {
        let key = i.reservation_id.as_str();
        match index.get(key) {
            Some(g) => groups[*g].1.push(n),
            None => {
                index.insert(key, groups.len());
                groups.push((key.to_string(), vec![n]));
            }
        }
    }
    let owner = c.account.to_string();
    // An instance with one interface encodes to about 3.7 KB.
    let capacity = 2048 + list.len() * 4096;
    Ok(xml::success_sized(
        "DescribeInstances",
        EC2_XMLNS,
        rid,
        capacity,
        |w| {
            w.list("reservationSet", &groups, |w, (res, members)| {
                w.text("reservationId", res)
                    .text("ownerId", &owner)
                    .open("groupSet")
                    .close("groupSet");
                w.list("instancesSet", members, |w, n| {
                    let (i, t) = &list[*n];
                    write_instance(w, &c.region, i, t, &nics);
                });
            });
            w.opt_text("nextToken", next.as_deref());
        },
    ))
}

pub fn describe_status(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", INSTANCE_STATUS_FILTERS, false)?;
    let pg = page(p, 5, 1000)?;
    let all = p.bool("IncludeAllInstances")?.unwrap_or(false);
    let (list, next) = cp.describe_instance_status(c, &p.list("InstanceId"), &filters, all, &pg)?;
    Ok(xml::success("DescribeInstanceStatus", rid, |w| {
        w.list("instanceStatusSet", &list, |w, i| {
            w.text("instanceId", i.id.as_str())
                .text("availabilityZone", &i.availability_zone);
            state(w, "instanceState", i.state);
            for tag in ["systemStatus", "instanceStatus"] {
                w.open(tag).text("status", status_of(i.state));
                w.list("details", [()], |w, _| {
                    w.text("name", "reachability")
                        .text("status", reachability_of(i.state));
                });
                w.close(tag);
            }
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

fn state_changes(action: &str, rid: &str, changes: &[StateChange]) -> String {
    xml::success(action, rid, |w| {
        w.list("instancesSet", changes, |w, ch| {
            w.text("instanceId", ch.instance_id.as_str());
            state(w, "currentState", ch.current);
            state(w, "previousState", ch.previous);
        });
    })
}

pub fn start(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let ch = cp.start_instances(c, &p.list("InstanceId"), dry)?;
    Ok(state_changes("StartInstances", rid, &ch))
}

pub fn stop(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    if p.bool("Hibernate")?.unwrap_or(false) {
        return Err(Error::Unsupported(
            "Hibernation is not supported by this endpoint.".into(),
        ));
    }
    let force = p.bool("Force")?.unwrap_or(false);
    let ch = cp.stop_instances(c, &p.list("InstanceId"), force, dry)?;
    Ok(state_changes("StopInstances", rid, &ch))
}

pub fn terminate(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let ch = cp.terminate_instances(c, &p.list("InstanceId"), dry)?;
    Ok(state_changes("TerminateInstances", rid, &ch))
}

pub fn reboot(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.reboot_instances(c, &p.list("InstanceId"), dry)?;
    Ok(xml::success("RebootInstances", rid, |w| {
        w.bool("return", true);
    }))
}

/// Attributes DescribeInstanceAttribute answers.
const ATTRIBUTES: &[&str] = &[
    "instanceType",
    "kernel",
    "ramdisk",
    "userData",
    "disableApiTermination",
    "disableApiStop",
    "instanceInitiatedShutdownBehavior",
    "rootDeviceName",
    "blockDeviceMapping",
    "productCodes",
    "sourceDestCheck",
    "groupSet",
    "ebsOptimized",
    "sriovNetSupport",
    "enaSupport",
    "enclaveOptions",
];

pub fn describe_attribute(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let id = p.required("InstanceId")?;
    let attr = p.required("Attribute")?;
    if !ATTRIBUTES.contains(&attr) {
        return Err(Error::invalid_value(format!(
            "Value ({attr}) for parameter attribute is invalid. Unknown attribute."
        )));
    }
    let i = cp.instance(c, id)?;
    Ok(xml::success("DescribeInstanceAttribute", rid, |w| {
        w.text("instanceId", i.id.as_str());
        let value = |w: &mut XmlWriter, tag: &str, v: Option<&str>| {
            w.open(tag);
            w.opt_text("value", v);
            w.close(tag);
        };
        match attr {
            "instanceType" => value(w, "instanceType", Some(&i.instance_type)),
            "kernel" => value(w, "kernel", i.kernel_id.as_deref()),
            "ramdisk" => value(w, "ramdisk", i.ramdisk_id.as_deref()),
            "userData" => value(w, "userData", i.user_data.as_deref()),
            "disableApiTermination" => value(
                w,
                "disableApiTermination",
                Some(if i.disable_api_termination {
                    "true"
                } else {
                    "false"
                }),
            ),
            "disableApiStop" => value(
                w,
                "disableApiStop",
                Some(if i.disable_api_stop { "true" } else { "false" }),
            ),
            "instanceInitiatedShutdownBehavior" => value(
                w,
                "instanceInitiatedShutdownBehavior",
                Some(i.shutdown_behavior.as_str()),
            ),
            "rootDeviceName" => value(w, "rootDeviceName", Some(&i.root_device_name)),
            "blockDeviceMapping" => {
                w.open("blockDeviceMapping").close("blockDeviceMapping");
            }
            "productCodes" => {
                w.open("productCodes").close("productCodes");
            }
            "sourceDestCheck" => value(w, "sourceDestCheck", Some("true")),
            "groupSet" => {
                write_groups(w, &i);
            }
            "ebsOptimized" => value(
                w,
                "ebsOptimized",
                Some(if i.ebs_optimized { "true" } else { "false" }),
            ),
            "sriovNetSupport" => value(w, "sriovNetSupport", None),
            "enaSupport" => value(w, "enaSupport", Some("true")),
            "enclaveOptions" => {
                w.open("enclaveOptions")
                    .bool("enabled", false)
                    .close("enclaveOptions");
            }
            _ => {}
        }
    }))
}

fn parse_bool_value(v: &str, name: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::invalid_value(format!(
            "Value ({v}) for parameter {name} is invalid. Expected a boolean."
        ))),
    }
}

fn parse_behavior(v: &str) -> Result<ShutdownBehavior> {
    match v {
        "stop" => Ok(ShutdownBehavior::Stop),
        "terminate" => Ok(ShutdownBehavior::Terminate),
        _ => Err(Error::invalid_value(format!(
            "Value ({v}) for parameter instanceInitiatedShutdownBehavior is invalid. Expected 'stop' or 'terminate'."
        ))),
    }
}

fn attribute_change(p: &Params) -> Result<AttributeChange> {
    let mut changes = vec![];
    if let Some(v) = p.get("InstanceType.Value") {
        changes.push(AttributeChange::InstanceType(v.to_string()));
    }
    if p.get("UserData.Value").is_some() {
        let bytes = p.base64("UserData.Value")?.unwrap_or_default();
        changes.push(AttributeChange::UserData(bytes));
    }
    if let Some(v) = p.get("DisableApiTermination.Value") {
        changes.push(AttributeChange::DisableApiTermination(parse_bool_value(
            v,
            "disableApiTermination",
        )?));
    }
    if let Some(v) = p.get("DisableApiStop.Value") {
        changes.push(AttributeChange::DisableApiStop(parse_bool_value(
            v,
            "disableApiStop",
        )?));
    }
    if let Some(v) = p.get("InstanceInitiatedShutdownBehavior.Value") {
        changes.push(AttributeChange::ShutdownBehavior(parse_behavior(v)?));
    }
    if let Some(v) = p.get("EbsOptimized.Value") {
        changes.push(AttributeChange::EbsOptimized(parse_bool_value(
            v,
            "ebsOptimized",
        )?));
    }
    // Source/destination checking is always on (the dataplane's anti-spoofing); the
    // model lets only `true` through (served.toml).
    if p.get("SourceDestCheck.Value").is_some() {
        changes.push(AttributeChange::SourceDestCheck);
    }
    if let Some(attr) = p.get("Attribute") {
        let v = p.get("Value").unwrap_or("");
        changes.push(match attr {
            "instanceType" => AttributeChange::InstanceType(v.to_string()),
            "userData" => AttributeChange::UserData(
                decode_base64(v)
                    .ok_or_else(|| Error::invalid_value("Invalid BASE64 encoding of user data."))?,
            ),
            "disableApiTermination" => {
                AttributeChange::DisableApiTermination(parse_bool_value(v, attr)?)
            }
            "disableApiStop" => AttributeChange::DisableApiStop(parse_bool_value(v, attr)?),
            "instanceInitiatedShutdownBehavior" => {
                AttributeChange::ShutdownBehavior(parse_behavior(v)?)
            }
            "ebsOptimized" => AttributeChange::EbsOptimized(parse_bool_value(v, attr)?),
            other => {
                return Err(Error::Unsupported(format!(
                    "Modifying the attribute '{other}' is not supported by this endpoint."
                )))
            }
        });
    }
    for unsupported in [
        "EnaSupport.Value",
        "Kernel.Value",
        "Ramdisk.Value",
        "SriovNetSupport.Value",
    ] {
        if p.get(unsupported).is_some() {
            return Err(Error::Unsupported(format!(
                "Modifying '{}' is not supported by this endpoint.",
                unsupported
                    .trim_end_matches(".Value")
                    .trim_end_matches(".1")
            )));
        }
    }
    match changes.len() {
        0 => Err(Error::MissingParameter("Attribute".into())),
        1 => Ok(changes.pop().expect("one change")),
        _ => Err(Error::InvalidParameterCombination(
            "Only one attribute may be modified per request.".into(),
        )),
    }
}

pub fn modify_attribute(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let id = p.required("InstanceId")?;
    let groups = p.list("GroupId");
    if groups.is_empty() {
        let change = attribute_change(p)?;
        cp.modify_instance_attribute(c, id, change, dry)?;
    } else {
        // The security groups are the one attribute that is a list; it still comes
        // alone, like every other attribute.
        if attribute_change(p).is_ok() {
            return Err(Error::InvalidParameterCombination(
                "Only one attribute may be modified per request.".into(),
            ));
        }
        cp.modify_instance_groups(c, id, &groups, dry)?;
    }
    Ok(xml::success("ModifyInstanceAttribute", rid, |w| {
        w.bool("return", true);
    }))
}

pub fn console_output(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let _ = p.dry_run()?;
    let id = p.required("InstanceId")?;
    p.bool("Latest")?;
    let (i, log) = cp.console_output(c, id)?;
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    Ok(xml::success("GetConsoleOutput", rid, |w| {
        w.text("instanceId", i.id.as_str()).text(
            "timestamp",
            &ec2_timestamp(strato_common::time_fmt::now_ms()),
        );
        if let Some(bytes) = &log {
            w.text("output", &encode_base64(bytes));
        }
    }))
}
