//! The domain records: what the control plane reasons about, the store persists and the
//! front door encodes. They carry no I/O, so every layer may name them without
//! depending on the layer that keeps them. Each is scoped to an account; the account is
//! part of every lookup key, which is how tenancy is enforced at the lowest layer.

pub mod image;
pub mod import;
pub mod snapshot;
pub mod volume;

pub use image::{Firmware, Image, ImageBoot, ImageEbs, ImageMapping, ImageState};
pub use import::{ImportStatus, ImportTask, ImportedImage};
pub use snapshot::{Snapshot, SnapshotOrigin, SnapshotState};
pub use volume::{
    AttachmentState, ModificationState, RegionSettings, Volume, VolumeAttachment, VolumeConfig,
    VolumeImage, VolumeModification, VolumeState, VolumeType,
};

use serde::{Deserialize, Serialize};
use strato_common::{
    AccountId, AddressAssociationId, AllocationId, DhcpOptionsId, ImageId, InstanceId,
    InternetGatewayId, KeyPairId, NetworkInterfaceAttachmentId, NetworkInterfaceId, ReservationId,
    RouteTableAssociationId, RouteTableId, SecurityGroupId, SecurityGroupRuleId, SubnetId, VpcId,
};

/// A tenant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub created_ms: i64,
}

/// An access key pair belonging to an account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub account_id: AccountId,
    pub created_ms: i64,
}

/// EC2's instance states.
///
/// ```text
///            RunInstances
///                 │
///                 ▼         agent: running
///             pending ─────────────────────▶ running ──Reboot──▶ running
///                 ▲                            │   │
///     StartInstances                  StopInstances  TerminateInstances
///                 │                            ▼   ▼
///             stopped ◀── agent: stopped ── stopping  shutting-down ── agent: gone ──▶ terminated
///                 │                                        ▲
///                 └──────────── TerminateInstances ────────┘
/// ```
///
/// Transitions out of `pending`, `stopping` and `shutting-down` happen only when the
/// host agent reports what the hypervisor did; the API layer never advances state on a
/// timer.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    pub const ALL: [InstanceState; 6] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::ShuttingDown,
        InstanceState::Terminated,
        InstanceState::Stopping,
        InstanceState::Stopped,
    ];

    /// EC2's numeric state code.
    pub fn code(self) -> u16 {
        match self {
            InstanceState::Pending => 0,
            InstanceState::Running => 16,
            InstanceState::ShuttingDown => 32,
            InstanceState::Terminated => 48,
            InstanceState::Stopping => 64,
            InstanceState::Stopped => 80,
        }
    }

    /// EC2's state name.
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.name() == s)
    }
}

/// What the control plane wants the hypervisor to do with an instance.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Desired {
    Running,
    Stopped,
    Deleted,
}

/// What an instance does when its guest powers off.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum ShutdownBehavior {
    #[default]
    Stop,
    Terminate,
}

impl ShutdownBehavior {
    pub fn as_str(self) -> &'static str {
        match self {
            ShutdownBehavior::Stop => "stop",
            ShutdownBehavior::Terminate => "terminate",
        }
    }
}

/// Which stored text a record was read from: the store numbers each distinct document
/// text it decodes (process-wide, never reused), so two records with the same
/// revision are the same text — what lets the front door keep an answer it encoded
/// from one and hand it back for the other. `DocRev(0)` is a record not read from the
/// store (just made). It is bookkeeping, not data: never stored, and it takes no part
/// in comparing or hashing records.
#[derive(Clone, Copy, Debug, Default)]
pub struct DocRev(pub u64);

impl PartialEq for DocRev {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for DocRev {}

impl std::hash::Hash for DocRev {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// EC2's `StateReason`: a code such as `Client.UserInitiatedShutdown` and its message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct StateReason {
    pub code: String,
    pub message: String,
}

/// One instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Instance {
    pub id: InstanceId,
    pub account_id: AccountId,
    pub reservation_id: ReservationId,
    pub image_id: ImageId,
    pub instance_type: String,
    pub key_name: Option<String>,
    pub launch_index: u32,
    pub state: InstanceState,
    pub state_reason: Option<StateReason>,
    pub state_transition_reason: String,
    pub launch_time_ms: i64,
    pub availability_zone: String,
    /// Base64 as given by the client (EC2 returns it the same way).
    pub user_data: Option<String>,
    pub disable_api_termination: bool,
    pub disable_api_stop: bool,
    pub shutdown_behavior: ShutdownBehavior,
    pub client_token: Option<String>,
    pub architecture: String,
    pub root_device_name: String,
    pub kernel_id: Option<String>,
    pub ramdisk_id: Option<String>,
    /// The host agent that runs it.
    pub host: String,
    /// What the hypervisor should do; `generation` increases with every change of the
    /// desired spec so the agent can tell new intent from old.
    pub desired: Desired,
    pub generation: u64,
    /// Bumped by RebootInstances; the agent reboots when it sees a larger value.
    pub reboot_seq: u64,
    /// The pending stop should cut power rather than wait for the guest (`Force`).
    #[serde(default)]
    pub force_stop: bool,
    /// How the instance metadata service answers this instance.
    #[serde(default)]
    pub metadata_options: MetadataOptions,
    /// When the instance reached `terminated` (it stays visible for an hour).
    pub terminated_ms: Option<i64>,
    /// The VPC and subnet the instance was launched into. `None` only for instances
    /// launched before Strato had VPCs (rows written by older versions load with
    /// these defaults).
    #[serde(default)]
    pub vpc_id: Option<VpcId>,
    #[serde(default)]
    /// See `vpc_id`.
    pub subnet_id: Option<SubnetId>,
    /// The security groups of the instance, with their names: group names never
    /// change and a group cannot be deleted while an instance uses it, so keeping the
    /// name here spares DescribeInstances a lookup per instance.
    #[serde(default)]
    pub security_groups: Vec<GroupRef>,
    /// The primary private IPv4 address, allocated from the subnet at launch and
    /// released when the instance is terminated.
    #[serde(default)]
    pub private_ip: Option<String>,
    /// The Elastic IP associated with the instance, kept here so DescribeInstances
    /// needs no join; changed in the same transaction as the address's record.
    #[serde(default)]
    pub public_ip: Option<String>,
    /// The instance gets a public address from the pool whenever it runs
    /// (`AssociatePublicIpAddress`, or the subnet's `MapPublicIpOnLaunch`); it is
    /// given back at stop and terminate, as EC2 does with auto-assigned addresses.
    #[serde(default)]
    pub auto_public_ip: bool,
    /// The CPU credit option of a burstable instance (`standard` | `unlimited`), set at
    /// launch from the request or the account's default for the family. `None` for
    /// records written before credits existed: the family's EC2 default applies.
    #[serde(default)]
    pub cpu_credits: Option<String>,
    /// Detailed monitoring (`Monitoring.Enabled`): recorded and shown; metrics come
    /// with CloudWatch.
    #[serde(default)]
    pub monitoring: bool,
    /// `EbsOptimized`: recorded and shown (every root disk is local here).
    #[serde(default)]
    pub ebs_optimized: bool,
    /// The guest's CPU topology when `CpuOptions` asked for one; otherwise the type's
    /// default (see the catalog).
    #[serde(default)]
    pub cpu_options: Option<CpuOptions>,
    /// `MaintenanceOptions.AutoRecovery`: `default` or `disabled`.
    #[serde(default = "default_auto_recovery")]
    pub auto_recovery: String,
    /// Tags of `volume` tag specifications at launch (the launch's volumes got them).
    #[serde(default)]
    pub volume_tags: Vec<(String, String)>,
    /// The root disk is an EBS volume, attached at `root_device_name` (the instance
    /// cannot start while none is). `false` for instances launched before root volumes
    /// existed: they boot from a disk the hypervisor keeps and no API shows.
    #[serde(default)]
    pub root_volume: bool,
    /// The stored text this record was read from ([`DocRev`]).
    #[serde(skip)]
    pub rev: DocRev,
}

fn default_auto_recovery() -> String {
    "default".into()
}

/// A guest's CPU topology: `core_count × threads_per_core` vCPUs on one socket.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct CpuOptions {
    pub core_count: u32,
    pub threads_per_core: u32,
}

/// An account's default CPU credit option for one burstable family
/// (ModifyDefaultCreditSpecification). Families without a record use EC2's default.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CreditDefault {
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// The family, `t2` | `t3` | `t3a` | `t4g`: the record's id.
    pub family: String,
    /// `standard` | `unlimited`.
    pub cpu_credits: String,
}

/// A security group as an instance refers to it (`groupSet` items).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct GroupRef {
    /// The group.
    pub id: SecurityGroupId,
    /// Its name (names never change).
    pub name: String,
}

/// A key pair. The private key is never stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeyPair {
    pub id: KeyPairId,
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    pub name: String,
    pub key_type: String,
    pub fingerprint: String,
    pub public_key: String,
    pub created_ms: i64,
}

/// A tag on any resource.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tag {
    pub resource_id: String,
    pub resource_type: String,
    pub key: String,
    pub value: String,
}

/// What a RunInstances `ClientToken` was first used for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientTokenRecord {
    pub token: String,
    pub reservation_id: ReservationId,
    /// A digest of the request parameters, to detect reuse with other parameters.
    pub params_digest: String,
}

// ---- networking --------------------------------------------------------------------------

/// A virtual private cloud: an IPv4 address range of one account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Vpc {
    /// The VPC id.
    pub id: VpcId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// The primary IPv4 block, canonical (`172.31.0.0/16`).
    pub cidr_block: String,
    /// The `vpc-cidr-assoc-…` id of the primary block's association.
    pub cidr_association_id: String,
    /// The account's default VPC (at most one per account).
    pub is_default: bool,
    /// The DHCP options set in use; `None` is EC2's `default` (no options).
    pub dhcp_options_id: Option<DhcpOptionsId>,
    /// `default` (the only tenancy served).
    pub instance_tenancy: String,
    /// Whether the Amazon-provided DNS server answers.
    pub enable_dns_support: bool,
    /// Whether instances get DNS host names.
    pub enable_dns_hostnames: bool,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

/// A subnet: a block of a VPC's range in one availability zone.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Subnet {
    /// The subnet id.
    pub id: SubnetId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// Its VPC.
    pub vpc_id: VpcId,
    /// Canonical IPv4 block inside the VPC's block.
    pub cidr_block: String,
    /// Its availability zone.
    pub availability_zone: String,
    /// The default subnet of its zone in the default VPC: where RunInstances launches
    /// when no subnet is named.
    pub default_for_az: bool,
    /// Whether instances launched here ask for a public address.
    pub map_public_ip_on_launch: bool,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

/// A security group. Its rules are [`SecurityGroupRule`] rows of their own, so each
/// has an id (`sgr-…`) and tags, as in EC2.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroup {
    /// The group id.
    pub id: SecurityGroupId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// Its VPC.
    pub vpc_id: VpcId,
    /// Unique within the VPC. `default` is the VPC's default group, which only the
    /// VPC's creation makes and only its deletion removes.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

impl SecurityGroup {
    /// The name EC2 gives every VPC's default group (and reserves for it).
    pub const DEFAULT_NAME: &'static str = "default";

    /// True for the VPC's default group.
    pub fn is_default(&self) -> bool {
        self.name == Self::DEFAULT_NAME
    }
}

/// The other end of a security group rule: where traffic may come from (ingress) or
/// go to (egress).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RulePeer {
    /// An IPv4 block, canonical.
    Ipv4 { cidr: String },
    /// An IPv6 block, canonical (RFC 5952).
    Ipv6 { cidr: String },
    /// Members of a security group (of the same account).
    Group {
        /// The referenced group.
        group_id: SecurityGroupId,
        /// Its account (always the rule's own).
        account_id: AccountId,
    },
}

/// One security group rule: a protocol, a port range and one peer. EC2's
/// `IpPermission` structures are groupings of these by protocol and ports.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SecurityGroupRule {
    /// The rule id.
    pub id: SecurityGroupRuleId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// The group the rule belongs to.
    pub group_id: SecurityGroupId,
    /// Outbound (egress) rather than inbound.
    pub egress: bool,
    /// `-1` (all), `tcp`, `udp`, `icmp`, `icmpv6`, or another protocol number.
    pub protocol: String,
    /// Ports for tcp/udp, ICMP type and code for icmp/icmpv6 (`-1` = all); `None` for
    /// protocols without ports.
    pub from_port: Option<i32>,
    /// See `from_port`.
    pub to_port: Option<i32>,
    /// The other end.
    pub peer: RulePeer,
    /// The rule description.
    pub description: Option<String>,
}

impl SecurityGroupRule {
    /// The group this rule references, if its peer is a group.
    pub fn referenced_group(&self) -> Option<&SecurityGroupId> {
        match &self.peer {
            RulePeer::Group { group_id, .. } => Some(group_id),
            _ => None,
        }
    }

    /// True when `other` allows the same traffic (descriptions aside): EC2 refuses
    /// such a rule as a duplicate and revokes by this identity.
    pub fn same_permission(&self, other: &SecurityGroupRule) -> bool {
        self.egress == other.egress
            && self.protocol == other.protocol
            && self.from_port == other.from_port
            && self.to_port == other.to_port
            && self.peer == other.peer
    }
}

/// An internet gateway, attached to at most one VPC.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InternetGateway {
    /// The gateway id.
    pub id: InternetGatewayId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// The VPC it is attached to.
    pub vpc_id: Option<VpcId>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

/// Where a route sends traffic.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum RouteTarget {
    /// Within the VPC (`gatewayId` `local`).
    Local,
    /// An internet gateway.
    Gateway { id: InternetGatewayId },
}

/// One route of a route table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Route {
    /// Canonical IPv4 destination block.
    pub destination: String,
    /// Where it sends traffic.
    pub target: RouteTarget,
    /// `CreateRouteTable` for the local route, `CreateRoute` for the others.
    pub origin: String,
}

/// A route table's association with a subnet, or its main association with its VPC.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RouteTableAssociation {
    /// The association id.
    pub id: RouteTableAssociationId,
    /// The subnet, for a subnet association.
    pub subnet_id: Option<SubnetId>,
    /// The VPC's main association (no subnet).
    pub main: bool,
}

/// A route table of a VPC. Routes and associations live inside the record: they are
/// few, always read with their table, and changed in the same transaction.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RouteTable {
    /// The table id.
    pub id: RouteTableId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// Its VPC.
    pub vpc_id: VpcId,
    /// Its routes, the local one first.
    pub routes: Vec<Route>,
    /// Its associations.
    pub associations: Vec<RouteTableAssociation>,
    /// The `ClientToken` of the CreateRouteTable call that made it, so a retry returns
    /// this table instead of making another.
    #[serde(default)]
    pub client_token: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

impl RouteTable {
    /// True for the VPC's main route table.
    pub fn is_main(&self) -> bool {
        self.associations.iter().any(|a| a.main)
    }
}

/// A set of DHCP options (`domain-name`, `domain-name-servers`…).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DhcpOptions {
    /// The options id.
    pub id: DhcpOptionsId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// Keys in the order given, each with its values.
    pub options: Vec<(String, Vec<String>)>,
    /// The set EC2 made for the account (VPCs get it unless told otherwise).
    #[serde(default)]
    pub is_default: bool,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

/// An instance's metadata-service settings (RunInstances `MetadataOptions`,
/// ModifyInstanceMetadataOptions). Values are EC2's own strings.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct MetadataOptions {
    /// `optional` (IMDSv1 and v2) or `required` (v2 tokens only).
    pub http_tokens: String,
    /// How many network hops a token response may travel (1–64).
    pub hop_limit: u32,
    /// `enabled` or `disabled`.
    pub http_endpoint: String,
    pub http_protocol_ipv6: String,
    pub instance_metadata_tags: String,
}

impl Default for MetadataOptions {
    fn default() -> Self {
        MetadataOptions {
            http_tokens: "optional".into(),
            hop_limit: 1,
            http_endpoint: "enabled".into(),
            http_protocol_ipv6: "disabled".into(),
            instance_metadata_tags: "disabled".into(),
        }
    }
}

/// An Elastic IP: a public address from the control plane's pool, allocated to one
/// account and associated with at most one of its instances.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ElasticIp {
    /// The allocation id.
    pub id: AllocationId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// The public address, unique across accounts.
    pub public_ip: String,
    /// `vpc` (the only domain served).
    pub domain: String,
    /// Where it is associated, if anywhere.
    pub association: Option<AddressAssociation>,
    /// Allocation time, epoch milliseconds.
    pub created_ms: i64,
}

/// An Elastic IP's association with an instance's primary private address.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressAssociation {
    /// The association id.
    pub id: AddressAssociationId,
    /// The instance.
    pub instance_id: InstanceId,
    /// The instance's private address the public one maps to.
    pub private_ip: String,
}

/// A network interface (ENI): a private address of a subnet with security groups and a
/// MAC address. Every instance launched in a VPC has one at device index 0 (its
/// primary interface, made with it or named at launch); CreateNetworkInterface makes
/// others, attachable to an instance of their zone at device index 1 and up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct NetworkInterface {
    /// The interface id.
    pub id: NetworkInterfaceId,
    /// The owning account.
    pub account_id: AccountId,
    /// The region it lives in (with the account, its [`Scope`]).
    #[serde(default)]
    pub region: String,
    /// Its subnet, VPC and zone.
    pub subnet_id: SubnetId,
    /// See `subnet_id`.
    pub vpc_id: VpcId,
    /// See `subnet_id`.
    pub availability_zone: String,
    /// The primary private address, held in `subnet_addresses` under the interface id.
    pub private_ip: String,
    /// `02:xx:xx:xx:xx:xx`, unique across accounts.
    pub mac_address: String,
    /// The description.
    pub description: String,
    /// Its security groups.
    pub groups: Vec<GroupRef>,
    /// Where it is attached, if anywhere.
    pub attachment: Option<NetworkInterfaceAttachment>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// The `ClientToken` of the CreateNetworkInterface that made it, so a retry
    /// returns this interface instead of making another.
    #[serde(default)]
    pub client_token: Option<String>,
    /// The stored text this record was read from ([`DocRev`]).
    #[serde(skip)]
    pub rev: DocRev,
}

/// A network interface's attachment to an instance.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct NetworkInterfaceAttachment {
    /// The attachment id.
    pub id: NetworkInterfaceAttachmentId,
    /// The instance.
    pub instance_id: InstanceId,
    /// The device index: 0 for the primary interface, 1 and up for the others.
    pub device_index: u32,
    /// Attach time, epoch milliseconds.
    pub attach_time_ms: i64,
    /// The interface is deleted (and its address released) when the instance
    /// terminates; otherwise it is detached and kept. True for the primary interface
    /// RunInstances makes; false for interfaces attached later (records written
    /// before this field existed load as false).
    #[serde(default)]
    pub delete_on_termination: bool,
}

// ---- regions ------------------------------------------------------------------------

/// Where a regional resource lives: one account in one region. Every regional record
/// (instances, key pairs, VPCs and everything in them, addresses, tags) is stored and
/// found under its scope, so one region never sees another's; accounts, access keys
/// and images are global.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub account: AccountId,
    pub region: String,
}

impl KeyPair {
    /// The key pair's scope (key pairs are regional, as on EC2).
    pub fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
}

impl Scope {
    pub fn new(account: AccountId, region: impl Into<String>) -> Scope {
        Scope {
            account,
            region: region.into(),
        }
    }

    /// The scope of an instance: its account and the region of its zone.
    pub fn of_instance(i: &Instance) -> Scope {
        Scope::new(i.account_id.clone(), region_of_zone(&i.availability_zone))
    }

    /// The partition key the store files the scope's rows under (`account/region`).
    pub fn key(&self) -> String {
        format!("{}/{}", self.account, self.region)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {}", self.account, self.region)
    }
}

/// The region of an availability zone: EC2's zone names are the region's name and a
/// letter (`eu-west-1b` → `eu-west-1`).
pub fn region_of_zone(zone: &str) -> &str {
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase())
}
