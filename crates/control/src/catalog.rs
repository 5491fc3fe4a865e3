//! The instance-type catalog, regions and availability zones.
//!
//! Instance types are real EC2 families with their real vCPU and memory figures; the
//! host runs each with exactly those resources.

use crate::ControlPlane;
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
