//! The instance-type catalog, regions and availability zones, and the Describe
//! actions that select from them: the front door hands over typed input and a
//! `FilterSet` and maps the records returned here to its answers.
//!
//! Instance types are real EC2 families with their real vCPU and memory figures; the
//! host runs each with exactly those resources.

use crate::net::flag;
use crate::page::{paginate, PageRequest};
use crate::{Caller, ControlPlane};
use strato_common::filter::FilterSet;
use strato_common::{Error, Result};

/// One instance type.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceType {
    pub name: &'static str,
    pub vcpus: u32,
    pub memory_mib: u32,
    pub clock_ghz: f32,
    pub burstable: bool,
    pub network: &'static str,
    /// `nitro` for current families, `xen` for t2.
    pub hypervisor: &'static str,
    pub free_tier: bool,
    /// The type's instance-store disks (storage-optimized families), if any.
    pub instance_store: Option<InstanceStore>,
}

/// A type's instance store: `count` local disks of `size_gb` GB each (decimal, as EC2
/// states them), `ssd` or `hdd`, NVMe on every family Strato offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceStore {
    pub count: u32,
    pub size_gb: u64,
    pub kind: &'static str,
}

impl InstanceStore {
    /// The store's total size in GB.
    pub fn total_gb(&self) -> u64 {
        self.size_gb * u64::from(self.count)
    }

    /// Bytes in one of its disks.
    pub fn disk_bytes(&self) -> u64 {
        self.size_gb * 1_000_000_000
    }
}

// A positional constructor keeps the catalog table readable, one type per line.
#[allow(clippy::too_many_arguments)]
const fn it(
    name: &'static str,
    vcpus: u32,
    memory_mib: u32,
    clock_ghz: f32,
    burstable: bool,
    network: &'static str,
    hypervisor: &'static str,
    free_tier: bool,
) -> InstanceType {
    InstanceType {
        name,
        vcpus,
        memory_mib,
        clock_ghz,
        burstable,
        network,
        hypervisor,
        free_tier,
        instance_store: None,
    }
}

/// A type with an instance store (see [`it`]).
#[allow(clippy::too_many_arguments)]
const fn it_store(
    name: &'static str,
    vcpus: u32,
    memory_mib: u32,
    clock_ghz: f32,
    network: &'static str,
    count: u32,
    size_gb: u64,
    kind: &'static str,
) -> InstanceType {
    InstanceType {
        instance_store: Some(InstanceStore {
            count,
            size_gb,
            kind,
        }),
        ..it(
            name, vcpus, memory_mib, clock_ghz, false, network, "nitro", false,
        )
    }
}

impl InstanceType {
    /// The family (`t3` of `t3.micro`).
    pub fn family(&self) -> &'static str {
        self.name.split('.').next().unwrap_or(self.name)
    }

    /// The default number of CPU cores: vCPUs are hyperthreads, two per core, as on
    /// EC2's current Intel and AMD families (a one-vCPU type has one core).
    pub fn default_cores(&self) -> u32 {
        if self.vcpus >= 2 {
            self.vcpus / 2
        } else {
            1
        }
    }

    /// The default threads per core (see [`InstanceType::default_cores`]).
    pub fn default_threads_per_core(&self) -> u32 {
        if self.vcpus >= 2 {
            2
        } else {
            1
        }
    }

    /// Whether RunInstances takes `CpuOptions` for this type: every type but t2, as EC2.
    pub fn cpu_options_supported(&self) -> bool {
        self.family() != "t2"
    }

    /// The core counts `CpuOptions.CoreCount` may ask for: one to the default (none
    /// where CPU options are not supported). DescribeInstanceTypes shows them as
    /// `validCores`, so they must be the ones RunInstances accepts.
    pub fn valid_cores(&self) -> Vec<u32> {
        if self.cpu_options_supported() {
            (1..=self.default_cores()).collect()
        } else {
            vec![]
        }
    }

    /// The thread counts `CpuOptions.ThreadsPerCore` may ask for: one, or the default
    /// (none where CPU options are not supported; see [`InstanceType::valid_cores`]).
    pub fn valid_threads_per_core(&self) -> Vec<u32> {
        if !self.cpu_options_supported() {
            return vec![];
        }
        let mut v = vec![1];
        if self.default_threads_per_core() != 1 {
            v.push(self.default_threads_per_core());
        }
        v
    }

    /// The CPU credit option a burstable type launches with when nothing is asked:
    /// `standard` for t2, `unlimited` for the later families, as EC2; `None` for a type
    /// that does not earn credits.
    pub fn default_cpu_credits(&self) -> Option<&'static str> {
        match (self.burstable, self.family()) {
            (false, _) => None,
            (true, "t2") => Some("standard"),
            (true, _) => Some("unlimited"),
        }
    }
}

/// The burstable families whose default credit option an account can change
/// (ModifyDefaultCreditSpecification), as EC2.
pub const BURSTABLE_FAMILIES: &[&str] = &["t2", "t3", "t3a", "t4g"];

/// Every instance type Strato offers, in catalog order.
pub static INSTANCE_TYPES: &[InstanceType] = &[
    it(
        "t2.nano",
        1,
        512,
        2.4,
        true,
        "Low to Moderate",
        "xen",
        false,
    ),
    it(
        "t2.micro",
        1,
        1024,
        2.5,
        true,
        "Low to Moderate",
        "xen",
        true,
    ),
    it(
        "t2.small",
        1,
        2048,
        2.5,
        true,
        "Low to Moderate",
        "xen",
        false,
    ),
    it(
        "t2.medium",
        2,
        4096,
        2.3,
        true,
        "Low to Moderate",
        "xen",
        false,
    ),
    it(
        "t3.nano",
        2,
        512,
        2.5,
        true,
        "Up to 5 Gigabit",
        "nitro",
        false,
    ),
    it(
        "t3.micro",
        2,
        1024,
        2.5,
        true,
        "Up to 5 Gigabit",
        "nitro",
        true,
    ),
    it(
        "t3.small",
        2,
        2048,
        2.5,
        true,
        "Up to 5 Gigabit",
        "nitro",
        false,
    ),
    it(
        "t3.medium",
        2,
        4096,
        2.5,
        true,
        "Up to 5 Gigabit",
        "nitro",
        false,
    ),
    it(
        "t3.large",
        2,
        8192,
        2.5,
        true,
        "Up to 5 Gigabit",
        "nitro",
        false,
    ),
    it(
        "t3.xlarge",
        4,
        16384,
        2.5,
        true,
        "Up to 5 Gigabit",
        "nitro",
        false,
    ),
    it(
        "t3.2xlarge",
        8,
        32768,
        2.5,
        true,
        "Up to 5 Gigabit",
        "nitro",
        false,
    ),
    it(
        "m5.large",
        2,
        8192,
        3.1,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "m5.xlarge",
        4,
        16384,
        3.1,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "m5.2xlarge",
        8,
        32768,
        3.1,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "m5.4xlarge",
        16,
        65536,
        3.1,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "c5.large",
        2,
        4096,
        3.4,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "c5.xlarge",
        4,
        8192,
        3.4,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "c5.2xlarge",
        8,
        16384,
        3.4,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "c5.4xlarge",
        16,
        32768,
        3.4,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "r5.large",
        2,
        16384,
        3.1,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "r5.xlarge",
        4,
        32768,
        3.1,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    it(
        "r5.2xlarge",
        8,
        65536,
        3.1,
        false,
        "Up to 10 Gigabit",
        "nitro",
        false,
    ),
    // Storage optimized: local NVMe instance store, erased when the instance stops.
    it_store("i3.large", 2, 15616, 2.3, "Up to 10 Gigabit", 1, 475, "ssd"),
    it_store(
        "i3.xlarge",
        4,
        31232,
        2.3,
        "Up to 10 Gigabit",
        1,
        950,
        "ssd",
    ),
    it_store(
        "i3.2xlarge",
        8,
        62464,
        2.3,
        "Up to 10 Gigabit",
        1,
        1900,
        "ssd",
    ),
    it_store(
        "i4i.large",
        2,
        16384,
        3.5,
        "Up to 10 Gigabit",
        1,
        468,
        "ssd",
    ),
    it_store(
        "i4i.xlarge",
        4,
        32768,
        3.5,
        "Up to 10 Gigabit",
        1,
        937,
        "ssd",
    ),
    it_store(
        "i4i.2xlarge",
        8,
        65536,
        3.5,
        "Up to 12 Gigabit",
        1,
        1875,
        "ssd",
    ),
    it_store(
        "d3.xlarge",
        4,
        32768,
        3.1,
        "Up to 15 Gigabit",
        3,
        1980,
        "hdd",
    ),
    it_store(
        "d3.2xlarge",
        8,
        65536,
        3.1,
        "Up to 15 Gigabit",
        6,
        1980,
        "hdd",
    ),
];

/// One AWS region: its name, the letters of its availability zones and whether AWS
/// makes accounts opt in to it (the regions launched since 2019).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    pub name: &'static str,
    pub zone_letters: &'static str,
    pub opt_in: bool,
}

const fn region(name: &'static str, zone_letters: &'static str, opt_in: bool) -> RegionInfo {
    RegionInfo {
        name,
        zone_letters,
        opt_in,
    }
}

/// AWS's commercial regions with their availability zones, as AWS names them.
pub static REGIONS: &[RegionInfo] = &[
    region("af-south-1", "abc", true),
    region("ap-east-1", "abc", true),
    region("ap-east-2", "abc", true),
    region("ap-northeast-1", "acd", false),
    region("ap-northeast-2", "abcd", false),
    region("ap-northeast-3", "abc", false),
    region("ap-south-1", "abc", false),
    region("ap-south-2", "abc", true),
    region("ap-southeast-1", "abc", false),
    region("ap-southeast-2", "abc", false),
    region("ap-southeast-3", "abc", true),
    region("ap-southeast-4", "abc", true),
    region("ap-southeast-5", "abc", true),
    region("ap-southeast-7", "abc", true),
    region("ca-central-1", "abd", false),
    region("ca-west-1", "abc", true),
    region("eu-central-1", "abc", false),
    region("eu-central-2", "abc", true),
    region("eu-north-1", "abc", false),
    region("eu-south-1", "abc", true),
    region("eu-south-2", "abc", true),
    region("eu-west-1", "abc", false),
    region("eu-west-2", "abc", false),
    region("eu-west-3", "abc", false),
    region("il-central-1", "abc", true),
    region("me-central-1", "abc", true),
    region("me-south-1", "abc", true),
    region("mx-central-1", "abc", true),
    region("sa-east-1", "abc", false),
    region("us-east-1", "abcdef", false),
    region("us-east-2", "abc", false),
    region("us-west-1", "bc", false),
    region("us-west-2", "abcd", false),
];

/// The region named `name`, if AWS has it.
pub fn region_info(name: &str) -> Option<&'static RegionInfo> {
    REGIONS.iter().find(|r| r.name == name)
}

impl RegionInfo {
    /// The region's availability zone names (`us-west-1b`, `us-west-1c`).
    pub fn zones(&self) -> Vec<String> {
        self.zone_letters
            .chars()
            .map(|c| format!("{}{c}", self.name))
            .collect()
    }

    /// `opt-in-not-required` or, for an opt-in region this installation serves,
    /// `opted-in` (DescribeRegions' `optInStatus`).
    pub fn opt_in_status(&self, served: bool) -> &'static str {
        match (self.opt_in, served) {
            (false, _) => "opt-in-not-required",
            (true, true) => "opted-in",
            (true, false) => "not-opted-in",
        }
    }
}

/// The type RunInstances uses when none is given.
pub const DEFAULT_INSTANCE_TYPE: &str = "t3.micro";

/// Looks up an instance type, answering EC2's error for RunInstances when unknown.
pub fn instance_type(name: &str) -> Result<&'static InstanceType> {
    INSTANCE_TYPES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| Error::invalid_value(format!("Invalid value '{name}' for InstanceType.")))
}

/// A zone's EC2-style zone id (`use1-az1` for us-east-1a, `apse2-az3` for
/// ap-southeast-2c): the country part, the direction's initials, the number.
pub fn zone_id(region: &str, zone: &str) -> String {
    let mut short = String::new();
    for (i, part) in region.split('-').enumerate() {
        if i == 0 || part.chars().all(|c| c.is_ascii_digit()) {
            short.push_str(part);
            continue;
        }
        let abbrev = match part {
            "northeast" => "ne",
            "northwest" => "nw",
            "southeast" => "se",
            "southwest" => "sw",
            other => &other[..other.len().min(1)],
        };
        short.push_str(abbrev);
    }
    let idx = zone
        .chars()
        .last()
        .map(|c| (c as u32).saturating_sub('a' as u32) + 1)
        .unwrap_or(1);
    format!("{short}-az{idx}")
}

/// Filter names DescribeRegions accepts: every name EC2 documents.
pub const REGION_FILTERS: &[&str] = &["endpoint", "opt-in-status", "region-name"];

/// Filter names DescribeAvailabilityZones accepts: every name EC2 documents, and
/// `network-border-group`, which EC2 documented before and Strato has always accepted
/// (the answer shows `networkBorderGroup`).
pub const ZONE_FILTERS: &[&str] = &[
    "group-long-name",
    "group-name",
    "message",
    "network-border-group",
    "opt-in-status",
    "parent-zone-id",
    "parent-zone-name",
    "region-name",
    "state",
    "zone-id",
    "zone-name",
    "zone-type",
];

/// Filter names DescribeInstanceTypeOfferings accepts: every name EC2 documents.
pub const OFFERING_FILTERS: &[&str] = &["instance-type", "location"];

/// Filter names DescribeInstanceTypes accepts: every name EC2 documents (values in
/// [`instance_type_values`]).
pub const INSTANCE_TYPE_FILTERS: &[&str] = &[
    "auto-recovery-supported",
    "bare-metal",
    "burstable-performance-supported",
    "current-generation",
    "dedicated-hosts-supported",
    "ebs-info.attachment-limit-type",
    "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.baseline-iops",
    "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-iops",
    "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps",
    "ebs-info.ebs-optimized-support",
    "ebs-info.encryption-support",
    "ebs-info.maximum-ebs-attachments",
    "ebs-info.nvme-support",
    "free-tier-eligible",
    "hibernation-supported",
    "hypervisor",
    "instance-storage-info.disk.count",
    "instance-storage-info.disk.size-in-gb",
    "instance-storage-info.disk.type",
    "instance-storage-info.encryption-support",
    "instance-storage-info.nvme-support",
    "instance-storage-info.total-size-in-gb",
    "instance-storage-supported",
    "instance-type",
    "memory-info.size-in-mib",
    "network-info.bandwidth-weightings",
    "network-info.efa-info.maximum-efa-interfaces",
    "network-info.efa-supported",
    "network-info.ena-support",
    "network-info.encryption-in-transit-supported",
    "network-info.flexible-ena-queues-support",
    "network-info.ipv4-addresses-per-interface",
    "network-info.ipv6-addresses-per-interface",
    "network-info.ipv6-supported",
    "network-info.maximum-network-cards",
    "network-info.maximum-network-interfaces",
    "network-info.network-performance",
    "nitro-enclaves-support",
    "nitro-tpm-info.supported-versions",
    "nitro-tpm-support",
    "processor-info.supported-architecture",
    "processor-info.supported-features",
    "processor-info.sustained-clock-speed-in-ghz",
    "reboot-migration-support",
    "supported-boot-mode",
    "supported-root-device-type",
    "supported-usage-class",
    "supported-virtualization-type",
    "vcpu-info.default-cores",
    "vcpu-info.default-threads-per-core",
    "vcpu-info.default-vcpus",
    "vcpu-info.valid-cores",
    "vcpu-info.valid-threads-per-core",
];

/// The network interfaces DescribeInstanceTypes shows every type taking: one figure
/// for the whole catalog, so the answer and the `network-info.*` filters share it.
pub const MAX_NETWORK_INTERFACES: u32 = 3;
/// The private IPv4 addresses per interface DescribeInstanceTypes shows (see
/// [`MAX_NETWORK_INTERFACES`]).
pub const IPV4_ADDRESSES_PER_INTERFACE: u32 = 6;
/// The network cards of every instance: Strato attaches every interface to card 0.
pub const NETWORK_CARDS: u32 = 1;

/// The values of DescribeInstanceTypes filter `name` for `t`: what the answer shows
/// for it, so a value read back selects the type (the server's tests hold its answer
/// and these together). Every type runs the same way on Strato (x86_64 HVM guests
/// booted by legacy BIOS from one EBS root volume, on one network card), so only the
/// catalog's own figures vary. Features Strato does not offer but EC2 reports for
/// every type answer as EC2 does for types without them (`false`, `unsupported`: EFA,
/// encryption in transit, flexible ENA queues, Nitro Enclaves, NitroTPM, reboot
/// migration). What EC2 leaves out for types without the feature, and Strato has no
/// figure for, has no value, so those filters match nothing: EBS attachment limits and
/// optimized bandwidth, IOPS and throughput, the instance storage of types without it,
/// bandwidth weightings, EFA interface counts, IPv6
/// address counts, extra processor features and NitroTPM versions.
pub fn instance_type_values(t: &InstanceType, name: &str) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    let num = |n: u32| vec![n.to_string()];
    let nums = |v: Vec<u32>| v.into_iter().map(|n| n.to_string()).collect();
    match name {
        "auto-recovery-supported" => flag(true),
        "bare-metal" => flag(false),
        "burstable-performance-supported" => flag(t.burstable),
        "current-generation" => flag(true),
        "dedicated-hosts-supported" => flag(false),
        "ebs-info.ebs-optimized-support" => one("default"),
        "ebs-info.encryption-support" => one("supported"),
        "ebs-info.nvme-support" => one("required"),
        "free-tier-eligible" => flag(t.free_tier),
        "hibernation-supported" => flag(false),
        "hypervisor" => one(t.hypervisor),
        "instance-storage-supported" => flag(t.instance_store.is_some()),
        "instance-storage-info.disk.count" => {
            t.instance_store.map(|s| num(s.count)).unwrap_or_default()
        }
        "instance-storage-info.disk.size-in-gb" => t
            .instance_store
            .map(|s| vec![s.size_gb.to_string()])
            .unwrap_or_default(),
        "instance-storage-info.disk.type" => {
            t.instance_store.map(|s| one(s.kind)).unwrap_or_default()
        }
        "instance-storage-info.encryption-support" => t
            .instance_store
            .map(|_| one("required"))
            .unwrap_or_default(),
        "instance-storage-info.nvme-support" => t
            .instance_store
            .map(|_| one("required"))
            .unwrap_or_default(),
        "instance-storage-info.total-size-in-gb" => t
            .instance_store
            .map(|s| vec![s.total_gb().to_string()])
            .unwrap_or_default(),
        "instance-type" => one(t.name),
        "memory-info.size-in-mib" => num(t.memory_mib),
        "network-info.efa-supported" => flag(false),
        "network-info.ena-support" => one("required"),
        "network-info.encryption-in-transit-supported" => flag(false),
        "network-info.flexible-ena-queues-support" => one("unsupported"),
        "network-info.ipv4-addresses-per-interface" => num(IPV4_ADDRESSES_PER_INTERFACE),
        "network-info.ipv6-supported" => flag(false),
        "network-info.maximum-network-cards" => num(NETWORK_CARDS),
        "network-info.maximum-network-interfaces" => num(MAX_NETWORK_INTERFACES),
        "network-info.network-performance" => one(t.network),
        "nitro-enclaves-support" => one("unsupported"),
        "nitro-tpm-support" => one("unsupported"),
        "processor-info.supported-architecture" => one("x86_64"),
        // The catalog's `f32` as it prints (`3.1`), which is how the answer shows it.
        "processor-info.sustained-clock-speed-in-ghz" => vec![t.clock_ghz.to_string()],
        "reboot-migration-support" => one("unsupported"),
        "supported-boot-mode" => vec!["legacy-bios".into(), "uefi".into()],
        "supported-root-device-type" => one("ebs"),
        "supported-usage-class" => one("on-demand"),
        "supported-virtualization-type" => one("hvm"),
        "vcpu-info.default-cores" => num(t.default_cores()),
        "vcpu-info.default-threads-per-core" => num(t.default_threads_per_core()),
        "vcpu-info.default-vcpus" => num(t.vcpus),
        "vcpu-info.valid-cores" => nums(t.valid_cores()),
        "vcpu-info.valid-threads-per-core" => nums(t.valid_threads_per_core()),
        _ => vec![],
    }
}

/// The catalog's types named by DescribeInstanceTypes' `InstanceType.N`, in the
/// order given. Every unknown name is reported in one error, as EC2 does.
pub fn instance_types_named(names: &[String]) -> Result<Vec<&'static InstanceType>> {
    let mut found = Vec::with_capacity(names.len());
    let mut unknown: Vec<&str> = vec![];
    for n in names {
        match INSTANCE_TYPES.iter().find(|t| t.name == n.as_str()) {
            Some(t) => found.push(t),
            None => unknown.push(n),
        }
    }
    if !unknown.is_empty() {
        return Err(Error::InvalidInstanceType(format!(
            "The following supplied instance types do not exist: [{}]",
            unknown.join(", ")
        )));
    }
    Ok(found)
}

/// Where DescribeInstanceTypeOfferings lists offerings (its `LocationType`, less
/// Outposts, which Strato does not have).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocationKind {
    /// The caller's region.
    Region,
    /// Each availability zone of the region, by name.
    AvailabilityZone,
    /// Each availability zone of the region, by zone id.
    AvailabilityZoneId,
}

/// One instance type offered in one location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offering {
    pub instance_type: &'static str,
    /// A region name, zone name or zone id, as the request's [`LocationKind`] asked.
    pub location: String,
}

/// The values of DescribeInstanceTypeOfferings filter `name` for `o`.
pub fn offering_values(o: &Offering, name: &str) -> Vec<String> {
    match name {
        "instance-type" => vec![o.instance_type.to_string()],
        "location" => vec![o.location.clone()],
        _ => vec![],
    }
}

/// A DescribeRegions request.
#[derive(Clone, Debug, Default)]
pub struct DescribeRegionsInput {
    /// `RegionName.N`.
    pub region_names: Vec<String>,
    /// `AllRegions`: AWS's regions this installation does not serve too.
    pub all_regions: bool,
    pub filters: FilterSet,
}

/// A region as DescribeRegions answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionRecord {
    pub name: String,
    /// The host every region is served on (the endpoint without its scheme).
    pub endpoint: String,
    /// `opt-in-not-required`, `opted-in` or `not-opted-in`.
    pub opt_in_status: &'static str,
}

/// The values of DescribeRegions filter `name` for `r`: what the answer shows.
pub fn region_values(r: &RegionRecord, name: &str) -> Vec<String> {
    match name {
        "endpoint" => vec![r.endpoint.clone()],
        "opt-in-status" => vec![r.opt_in_status.to_string()],
        "region-name" => vec![r.name.clone()],
        _ => vec![],
    }
}

/// A DescribeAvailabilityZones request.
#[derive(Clone, Debug, Default)]
pub struct DescribeZonesInput {
    /// `ZoneName.N`.
    pub zone_names: Vec<String>,
    /// `ZoneId.N`.
    pub zone_ids: Vec<String>,
    pub filters: FilterSet,
}

/// An availability zone as DescribeAvailabilityZones answers it. Strato's zones are
/// all plain zones (no Local or Wavelength Zones), always available and never opt-in,
/// each in its region's one group and network border group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneRecord {
    pub region: String,
    pub name: String,
    pub id: String,
}

impl ZoneRecord {
    /// The answer's `zoneState`.
    pub const STATE: &'static str = "available";
    /// The answer's `zoneType`.
    pub const ZONE_TYPE: &'static str = "availability-zone";
    /// The answer's `optInStatus`.
    pub const OPT_IN_STATUS: &'static str = "opt-in-not-required";

    /// The zone's group, and its network border group: its region, as for EC2's
    /// plain zones.
    pub fn group_name(&self) -> &str {
        &self.region
    }
}

/// The values of DescribeAvailabilityZones filter `name` for `z`: what the answer
/// shows. A plain zone has no parent zone, no messages and (in Strato) no long group
/// name, so those filters match nothing.
pub fn zone_values(z: &ZoneRecord, name: &str) -> Vec<String> {
    let one = |s: &str| vec![s.to_string()];
    match name {
        "group-name" | "network-border-group" => one(z.group_name()),
        "opt-in-status" => one(ZoneRecord::OPT_IN_STATUS),
        "region-name" => one(&z.region),
        "state" => one(ZoneRecord::STATE),
        "zone-id" => one(&z.id),
        "zone-name" => one(&z.name),
        "zone-type" => one(ZoneRecord::ZONE_TYPE),
        _ => vec![],
    }
}

impl ControlPlane {
    /// Validates an availability zone name of the caller's region.
    pub fn check_zone(&self, region: &str, zone: &str) -> Result<()> {
        if self.cfg.zones(region).iter().any(|z| z == zone) {
            Ok(())
        } else {
            Err(Error::invalid_value(format!(
                "Invalid availability zone: [{zone}]"
            )))
        }
    }

    /// DescribeRegions: the regions this installation serves (every one on this
    /// endpoint), or those named; with `all_regions`, AWS's other commercial regions
    /// too, as not opted in. In name order.
    pub fn describe_regions(&self, input: &DescribeRegionsInput) -> Result<Vec<RegionRecord>> {
        let names = &input.region_names;
        for n in names {
            if region_info(n).is_none() && !self.cfg.serves(n) {
                return Err(Error::invalid_value(format!("Invalid region: {n}")));
            }
        }
        let endpoint = self
            .cfg
            .endpoint
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        let record = |name: &str, opt_in_status| RegionRecord {
            name: name.to_string(),
            endpoint: endpoint.clone(),
            opt_in_status,
        };
        let mut regions: Vec<RegionRecord> = REGIONS
            .iter()
            .map(|r| record(r.name, r.opt_in_status(self.cfg.serves(r.name))))
            .collect();
        // A region served by name that AWS does not have (a private one) opts in nothing.
        for r in &self.cfg.regions {
            if region_info(r).is_none() {
                regions.push(record(r, "opt-in-not-required"));
            }
        }
        regions.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(regions
            .into_iter()
            .filter(|r| input.all_regions || !names.is_empty() || self.cfg.serves(&r.name))
            .filter(|r| names.is_empty() || names.contains(&r.name))
            .filter(|r| input.filters.matches(&[], |n| region_values(r, n)))
            .collect())
    }

    /// DescribeAvailabilityZones: the zones of the caller's region, or those named by
    /// name or id, in zone order. `AllAvailabilityZones` would change nothing: Local
    /// and Wavelength Zones are not offered, so all zones are the usual ones.
    pub fn describe_availability_zones(
        &self,
        caller: &Caller,
        input: &DescribeZonesInput,
    ) -> Result<Vec<ZoneRecord>> {
        let region = &caller.region;
        let zones = self.cfg.zones(region);
        for n in &input.zone_names {
            self.check_zone(region, n)?;
        }
        for id in &input.zone_ids {
            if !zones.iter().any(|z| zone_id(region, z) == *id) {
                return Err(Error::invalid_value(format!(
                    "Invalid availability zone id: [{id}]"
                )));
            }
        }
        Ok(zones
            .into_iter()
            .map(|z| ZoneRecord {
                region: region.clone(),
                id: zone_id(region, &z),
                name: z,
            })
            .filter(|z| input.zone_names.is_empty() || input.zone_names.contains(&z.name))
            .filter(|z| input.zone_ids.is_empty() || input.zone_ids.contains(&z.id))
            .filter(|z| input.filters.matches(&[], |n| zone_values(z, n)))
            .collect())
    }

    /// DescribeInstanceTypes: the catalog's types (the same in every region), or
    /// those in `wanted` (see [`instance_types_named`]), that pass `filters`, one page
    /// in name order.
    pub fn describe_instance_types(
        &self,
        wanted: &[&'static InstanceType],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> (Vec<&'static InstanceType>, Option<String>) {
        let mut list: Vec<&'static InstanceType> = INSTANCE_TYPES
            .iter()
            .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w.name == t.name))
            .filter(|t| filters.matches(&[], |n| instance_type_values(t, n)))
            .collect();
        // Pages resume after the last key, so the list must be in key order.
        list.sort_by_key(|t| t.name);
        paginate(list, page, |t| t.name.to_string())
    }

    /// DescribeInstanceTypeOfferings: every type is offered in every location of the
    /// caller's region; one page of those that pass `filters`, by location then type.
    pub fn describe_instance_type_offerings(
        &self,
        caller: &Caller,
        kind: LocationKind,
        filters: &FilterSet,
        page: &PageRequest,
    ) -> (Vec<Offering>, Option<String>) {
        let region = &caller.region;
        let locations: Vec<String> = match kind {
            LocationKind::Region => vec![region.clone()],
            LocationKind::AvailabilityZone => self.cfg.zones(region),
            LocationKind::AvailabilityZoneId => self
                .cfg
                .zones(region)
                .iter()
                .map(|z| zone_id(region, z))
                .collect(),
        };
        // The separator sorts below every printable character, so keys order by
        // location first even where one location is a prefix of another; NextTokens
        // carry this key, so it must not change.
        let key = |o: &Offering| format!("{}\u{1}{}", o.location, o.instance_type);
        let mut list: Vec<Offering> = locations
            .iter()
            .flat_map(|loc| {
                INSTANCE_TYPES.iter().map(move |t| Offering {
                    instance_type: t.name,
                    location: loc.clone(),
                })
            })
            .filter(|o| filters.matches(&[], |n| offering_values(o, n)))
            .collect();
        list.sort_by_key(key);
        paginate(list, page, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_consistent() {
        assert!(instance_type(DEFAULT_INSTANCE_TYPE).is_ok());
        assert_eq!(instance_type("m5.large").unwrap().memory_mib, 8192);
        assert!(instance_type("m5.huge").is_err());
        let mut names: Vec<_> = INSTANCE_TYPES.iter().map(|t| t.name).collect();
        names.dedup();
        assert_eq!(names.len(), INSTANCE_TYPES.len());
        assert_eq!(zone_id("us-east-1", "us-east-1a"), "use1-az1");
        assert_eq!(zone_id("eu-west-2", "eu-west-2c"), "euw2-az3");
        assert_eq!(zone_id("ap-southeast-2", "ap-southeast-2a"), "apse2-az1");
    }
}
