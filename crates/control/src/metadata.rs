//! What the instance metadata service learns from the control plane: the
//! [`MetadataSource`] of one-process mode is the [`ControlPlane`] itself.
//!
//! The service identifies a caller by the VPC namespace the request arrived in and the
//! packet's source address; [`ControlPlane::instance_metadata_at`] turns that pair into
//! the instance behind it with a handful of indexed point lookups (the interface by
//! `(vpc_id, private_ip)`, its instance, the instance's interfaces with their subnets,
//! the VPC, the key pair and the tags), cheap enough to run per request.

use crate::instances::private_dns_name;
use crate::net::addresses::public_dns_name;
use crate::ControlPlane;
use std::net::Ipv4Addr;
use strato_agent_api::metadata::{InstanceMetadata, InterfaceMetadata, MetadataAccess};
use strato_agent_api::MetadataSource;
use strato_common::base64::decode_base64;
use strato_common::Result;
use strato_domain::{Scope, Volume};
use strato_store::{Instance, InstanceState, MetadataOptions, Vpc};

/// The states in which an instance answers to its addresses: it has (or is about
/// to have, or still has) a running guest.
fn serves_metadata(state: InstanceState) -> bool {
    matches!(
        state,
        InstanceState::Pending | InstanceState::Running | InstanceState::Stopping
    )
}

/// How the metadata service should treat an instance's requests.
pub fn metadata_access(o: &MetadataOptions) -> MetadataAccess {
    MetadataAccess {
        enabled: o.http_endpoint != "disabled",
        tokens_required: o.http_tokens == "required",
        hop_limit: o.hop_limit,
        tags_enabled: o.instance_metadata_tags == "enabled",
    }
}

impl ControlPlane {
    /// The metadata of the instance in VPC `vpc_id` that holds private address `ip` on
    /// one of its interfaces and is pending, running or stopping; `None` for an
    /// address no such instance holds.
    pub fn instance_metadata_at(
        &self,
        vpc_id: &str,
        ip: Ipv4Addr,
    ) -> Result<Option<InstanceMetadata>> {
        self.db.read(|tx| {
            let Some(n) = tx.interface_at(vpc_id, &ip.to_string())? else {
                return Ok(None);
            };
            let Some(att) = &n.attachment else {
                return Ok(None);
            };
            let scope = Scope::new(n.account_id.clone(), n.region.clone());
            let account = &scope;
            let region = &scope.region;
            let Some(inst) = tx.instance(account, att.instance_id.as_str())? else {
                return Ok(None);
            };
            if !serves_metadata(inst.state) {
                return Ok(None);
            }
            let mut nics = tx.interfaces_of_instance(account, inst.id.as_str())?;
            nics.sort_by_key(|(n, _)| n.attachment.as_ref().map(|a| a.device_index));
            let vpc_cidr = tx
                .get_doc::<Vpc>(account, vpc_id)?
                .map(|v| v.cidr_block)
                .unwrap_or_default();
            let public_keys = match &inst.key_name {
                Some(name) => tx
                    .key_pair_by_name(account, name)?
                    .map(|k| vec![(name.clone(), format!("{} {name}", k.public_key))])
                    .unwrap_or_default(),
                None => vec![],
            };
            let tags = tx.tags_of(account, inst.id.as_str())?;
            let volumes = tx.volumes_of_instance(account, inst.id.as_str())?;
            let block_devices = block_devices(&inst, &volumes);
            let interfaces = nics
                .iter()
                .map(|(n, subnet)| {
                    let device = n.attachment.as_ref().map(|a| a.device_index).unwrap_or(0);
                    InterfaceMetadata {
                        interface_id: n.id.to_string(),
                        device_number: device,
                        mac: n.mac_address.clone(),
                        private_ip: n.private_ip.clone(),
                        // The instance's public address is its primary interface's.
                        public_ip: inst.public_ip.clone().filter(|_| device == 0),
                        subnet_id: n.subnet_id.to_string(),
                        subnet_cidr: subnet.cidr_block.clone(),
                        vpc_id: n.vpc_id.to_string(),
                        vpc_cidr: vpc_cidr.clone(),
                        security_group_ids: n.groups.iter().map(|g| g.id.to_string()).collect(),
                        security_groups: n.groups.iter().map(|g| g.name.clone()).collect(),
                        owner_id: n.account_id.to_string(),
                        local_hostname: private_dns_name(region, &n.private_ip),
                    }
                })
                .collect();
            Ok(Some(build(
                region,
                &inst,
                interfaces,
                public_keys,
                tags,
                block_devices,
            )))
        })
    }
}

/// `block-device-mapping/`: the root device as `ami` and `root`, the other attached
/// volumes as `ebs1`, `ebs2`… in attachment order, and the type's instance-store disks
/// as `ephemeral0`… on the devices that follow the root (`sdb`, `sdc`…), as EC2 lists
/// them. Cloud-init reads this to find the ephemeral disk it mounts on `/mnt`.
fn block_devices(i: &Instance, volumes: &[Volume]) -> Vec<(String, String)> {
    let mut out = vec![
        ("ami".to_string(), i.root_device_name.clone()),
        ("root".to_string(), i.root_device_name.clone()),
    ];
    let mut others: Vec<(i64, String)> = volumes
        .iter()
        .flat_map(|v| v.attachments.iter())
        .filter(|a| a.instance_id == i.id && a.device != i.root_device_name)
        .map(|a| (a.attach_time_ms, a.device.clone()))
        .collect();
    others.sort();
    for (n, (_, device)) in others.into_iter().enumerate() {
        let short = device.strip_prefix("/dev/").unwrap_or(&device).to_string();
        out.push((format!("ebs{}", n + 1), short));
    }
    let stores = crate::catalog::instance_type(&i.instance_type)
        .ok()
        .and_then(|t| t.instance_store)
        .map_or(0, |s| s.count);
    for n in 0..stores {
        let letter = (b'b' + n as u8) as char;
        out.push((format!("ephemeral{n}"), format!("sd{letter}")));
    }
    out
}

/// Everything but the interfaces, from the instance record.
fn build(
    region: &str,
    i: &Instance,
    interfaces: Vec<InterfaceMetadata>,
    public_keys: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    block_devices: Vec<(String, String)>,
) -> InstanceMetadata {
    let private_ip = i
        .private_ip
        .clone()
        .or_else(|| interfaces.first().map(|n| n.private_ip.clone()))
        .unwrap_or_default();
    InstanceMetadata {
        account_id: i.account_id.to_string(),
        region: region.to_string(),
        availability_zone: i.availability_zone.clone(),
        availability_zone_id: crate::catalog::zone_id(region, &i.availability_zone),
        instance_id: i.id.to_string(),
        image_id: i.image_id.to_string(),
        instance_type: i.instance_type.clone(),
        reservation_id: i.reservation_id.to_string(),
        launch_index: i.launch_index,
        architecture: i.architecture.clone(),
        kernel_id: i.kernel_id.clone(),
        ramdisk_id: i.ramdisk_id.clone(),
        launch_time_ms: i.launch_time_ms,
        local_hostname: private_dns_name(region, &private_ip),
        private_ip,
        public_ip: i.public_ip.clone(),
        public_hostname: i.public_ip.as_deref().map(|ip| public_dns_name(region, ip)),
        security_groups: i.security_groups.iter().map(|g| g.name.clone()).collect(),
        interfaces,
        public_keys,
        user_data: i.user_data.as_deref().and_then(decode_base64),
        tags,
        block_devices,
        options: metadata_access(&i.metadata_options),
    }
}

impl MetadataSource for ControlPlane {
    fn instance_metadata(&self, vpc_id: &str, ip: Ipv4Addr) -> Option<InstanceMetadata> {
        match self.instance_metadata_at(vpc_id, ip) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(vpc = vpc_id, %ip, error = %e, "metadata lookup failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_options_map_to_access() {
        let default = metadata_access(&MetadataOptions::default());
        assert_eq!(default, MetadataAccess::default());
        let strict = metadata_access(&MetadataOptions {
            http_tokens: "required".into(),
            hop_limit: 3,
            http_endpoint: "disabled".into(),
            http_protocol_ipv6: "enabled".into(),
            instance_metadata_tags: "enabled".into(),
        });
        assert_eq!(
            strict,
            MetadataAccess {
                enabled: false,
                tokens_required: true,
                hop_limit: 3,
                tags_enabled: true,
            }
        );
    }
}
