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
    /// Validates an availability zone name.
    pub fn check_zone(&self, zone: &str) -> Result<()> {
        if self.cfg.availability_zones.iter().any(|z| z == zone) {
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
