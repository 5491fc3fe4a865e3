//! What the instance metadata service (IMDS) of a host may know about an instance.
//!
//! The metadata service runs on the host, inside each VPC namespace, and identifies
//! the caller by the VPC and the packet's source address (the dataplane's
//! anti-spoofing makes that address trustworthy). It asks a [`MetadataSource`] (the
//! control plane, in one-process mode) for the instance behind it.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Everything an instance's metadata paths are built from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceMetadata {
    pub account_id: String,
    pub region: String,
    pub availability_zone: String,
    /// The zone's id (`use1-az1`), as DescribeAvailabilityZones reports it; served as
    /// `placement/availability-zone-id` when not empty.
    #[serde(default)]
    pub availability_zone_id: String,
    pub instance_id: String,
    pub image_id: String,
    pub instance_type: String,
    pub reservation_id: String,
    pub launch_index: u32,
    pub architecture: String,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    /// Launch time, epoch milliseconds (`pendingTime` of the identity document).
    pub launch_time_ms: i64,
    /// `ip-a-b-c-d.<region>.compute.internal`.
    pub local_hostname: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
    pub public_hostname: Option<String>,
    /// Names of the instance's security groups.
    pub security_groups: Vec<String>,
    /// Every interface of the instance, primary first.
    pub interfaces: Vec<InterfaceMetadata>,
    /// `(key name, OpenSSH public key line)`; empty without a key pair.
    pub public_keys: Vec<(String, String)>,
    /// Decoded user data, if any.
    pub user_data: Option<Vec<u8>>,
    /// Tags, served under `tags/instance/` when `instance_metadata_tags` is enabled.
    pub tags: Vec<(String, String)>,
    /// `block-device-mapping/`: `(virtual name, device)` pairs, `ami` and `root` first,
    /// then `ebsN` (the attached volumes other than the root, in attachment order) and
    /// `ephemeralN` (the type's instance-store disks). Devices are as EC2 shows them:
    /// the root with its `/dev/` prefix, the others without. Empty means the record
    /// predates the field: `ami` and `root` are then `/dev/xvda`.
    #[serde(default)]
    pub block_devices: Vec<(String, String)>,
    pub options: MetadataAccess,
}

/// One interface under `network/interfaces/macs/<mac>/`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct InterfaceMetadata {
    pub interface_id: String,
    pub device_number: u32,
    pub mac: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
    pub subnet_id: String,
    pub subnet_cidr: String,
    pub vpc_id: String,
    pub vpc_cidr: String,
    pub security_group_ids: Vec<String>,
    pub security_groups: Vec<String>,
    pub owner_id: String,
    pub local_hostname: String,
}

/// The instance's `MetadataOptions` as far as the service enforces them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MetadataAccess {
    /// `false` when `HttpEndpoint` is `disabled`.
    pub enabled: bool,
    /// `true` when `HttpTokens` is `required` (IMDSv1 requests get 401).
    pub tokens_required: bool,
    /// The IP TTL of token responses (`HttpPutResponseHopLimit`, 1–64).
    pub hop_limit: u32,
    /// `InstanceMetadataTags` is `enabled`.
    pub tags_enabled: bool,
}

impl Default for MetadataAccess {
    fn default() -> Self {
        MetadataAccess {
            enabled: true,
            tokens_required: false,
            hop_limit: 1,
            tags_enabled: false,
        }
    }
}

/// Finds the instance behind a metadata request.
pub trait MetadataSource: Send + Sync {
    /// The instance in VPC `vpc_id` that owns private address `ip` on one of its
    /// interfaces and is pending, running or stopping; `None` otherwise.
    fn instance_metadata(&self, vpc_id: &str, ip: Ipv4Addr) -> Option<InstanceMetadata>;
}
