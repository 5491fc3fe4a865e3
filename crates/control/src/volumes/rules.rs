//! What each EBS volume type allows: sizes, IOPS and throughput ranges and defaults,
//! and the limits the host enforces on an attached disk. Figures are EC2's.

use strato_agent_api::DiskLimits;
use strato_common::{Error, Result};
use strato_domain::VolumeType;

const MIB: u64 = 1024 * 1024;

/// One type's rules.
struct TypeRules {
    min_gib: u32,
    max_gib: u32,
    /// `Iops` may be (gp3) or must be (io1, io2) given; others refuse it.
    iops: IopsRule,
    /// `Throughput` may be given (gp3 only).
    throughput: bool,
    multi_attach: bool,
}

enum IopsRule {
    /// Not configurable.
    None,
    /// Optional: default, range, most per GiB.
    Optional {
        default: u32,
        min: u32,
        max: u32,
        per_gib: u32,
    },
    /// Required: range, most per GiB.
    Required { min: u32, max: u32, per_gib: u32 },
}

fn rules(t: VolumeType) -> TypeRules {
    use VolumeType as T;
    let simple = |min_gib, max_gib| TypeRules {
        min_gib,
        max_gib,
        iops: IopsRule::None,
        throughput: false,
        multi_attach: false,
    };
    match t {
        T::Gp2 => simple(1, 16_384),
        T::Gp3 => TypeRules {
            min_gib: 1,
            max_gib: 16_384,
            iops: IopsRule::Optional {
                default: 3_000,
                min: 3_000,
                max: 16_000,
                per_gib: 500,
            },
            throughput: true,
            multi_attach: false,
        },
        T::Io1 => TypeRules {
            min_gib: 4,
            max_gib: 16_384,
            iops: IopsRule::Required {
                min: 100,
                max: 64_000,
                per_gib: 50,
            },
            throughput: false,
            multi_attach: true,
        },
        T::Io2 => TypeRules {
            min_gib: 4,
            max_gib: 65_536,
            iops: IopsRule::Required {
                min: 100,
                max: 256_000,
                per_gib: 1_000,
            },
            throughput: false,
            multi_attach: true,
        },
        T::St1 | T::Sc1 => simple(125, 16_384),
        T::Standard => simple(1, 1_024),
    }
}

/// gp3's throughput: default, range, and most MiB/s per provisioned IOPS (0.25).
const GP3_THROUGHPUT_DEFAULT: u32 = 125;
const GP3_THROUGHPUT_MIN: u32 = 125;
const GP3_THROUGHPUT_MAX: u32 = 1_000;

/// A volume's resolved performance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Performance {
    /// What DescribeVolumes shows as `Iops` (none for st1, sc1, standard).
    pub iops: Option<u32>,
    /// What DescribeVolumes shows as `Throughput` (gp3 only).
    pub throughput: Option<u32>,
}

/// gp2's baseline: 3 IOPS per GiB, at least 100, at most 16,000.
pub fn gp2_iops(size_gib: u32) -> u32 {
    (size_gib.saturating_mul(3)).clamp(100, 16_000)
}

/// Checks a size for a type (`InvalidParameterValue` with the type's range).
pub fn check_size(t: VolumeType, size_gib: i64) -> Result<u32> {
    let r = rules(t);
    if size_gib < r.min_gib as i64 {
        return Err(Error::invalid_value(format!(
            "Volume of {size_gib}GiB is too small for volume type {}; minimum is {}GiB.",
            t.as_str(),
            r.min_gib
        )));
    }
    if size_gib > r.max_gib as i64 {
        return Err(Error::invalid_value(format!(
            "Volume of {size_gib}GiB is too large for volume type {}; maximum is {}GiB.",
            t.as_str(),
            r.max_gib
        )));
    }
    Ok(size_gib as u32)
}

/// Resolves `Iops` and `Throughput` for a volume of `t` and `size_gib`, answering EC2's
/// errors for values the type does not take or that are out of its ranges.
pub fn performance(
    t: VolumeType,
    size_gib: u32,
    iops: Option<i64>,
    throughput: Option<i64>,
) -> Result<Performance> {
    let r = rules(t);
    let ty = t.as_str();
    if throughput.is_some() && !r.throughput {
        return Err(Error::InvalidParameterCombination(format!(
            "The parameter throughput is not supported for {ty} volumes."
        )));
    }
    let check_iops = |n: i64, min: u32, max: u32, per_gib: u32| -> Result<u32> {
        if n < min as i64 {
            return Err(Error::invalid_value(format!(
                "Volume iops of {n} is too low; minimum is {min}."
            )));
        }
        if n > max as i64 {
            return Err(Error::invalid_value(format!(
                "Volume iops of {n} is too high; maximum is {max}."
            )));
        }
        let ratio = n as f64 / size_gib as f64;
        if ratio > per_gib as f64 {
            return Err(Error::invalid_value(format!(
                "Iops to volume size ratio of {ratio:.6} is too high; maximum is {:.6}.",
                per_gib as f64
            )));
        }
        Ok(n as u32)
    };
    let iops = match (r.iops, iops) {
        (IopsRule::None, Some(_)) => {
            return Err(Error::InvalidParameterCombination(format!(
                "The parameter iops is not supported for {ty} volumes."
            )))
        }
        (IopsRule::None, None) => (t == VolumeType::Gp2).then(|| gp2_iops(size_gib)),
        (IopsRule::Required { .. }, None) => {
            return Err(Error::MissingParameter("iops".into()));
        }
        (IopsRule::Required { min, max, per_gib }, Some(n)) => {
            Some(check_iops(n, min, max, per_gib)?)
        }
        (IopsRule::Optional { default, .. }, None) => Some(default),
        (
            IopsRule::Optional {
                min, max, per_gib, ..
            },
            Some(n),
        ) => Some(check_iops(n, min, max, per_gib)?),
    };
    let throughput = if r.throughput {
        let n = throughput.unwrap_or(GP3_THROUGHPUT_DEFAULT as i64);
        if n < GP3_THROUGHPUT_MIN as i64 {
            return Err(Error::invalid_value(format!(
                "Throughput of {n}MiB/s is too low; minimum is {GP3_THROUGHPUT_MIN}MiB/s."
            )));
        }
        if n > GP3_THROUGHPUT_MAX as i64 {
            return Err(Error::invalid_value(format!(
                "Throughput of {n}MiB/s is too high; maximum is {GP3_THROUGHPUT_MAX}MiB/s."
            )));
        }
        let iops = iops.unwrap_or(GP3_THROUGHPUT_DEFAULT);
        // 0.25 MiB/s per provisioned IOPS.
        if n * 4 > iops as i64 {
            return Err(Error::invalid_value(format!(
                "Throughput (MiBps) to iops ratio of {:.6} is too high; maximum is 0.250000 MiBps per iops.",
                n as f64 / iops as f64
            )));
        }
        Some(n as u32)
    } else {
        None
    };
    Ok(Performance { iops, throughput })
}

/// Whether `MultiAttachEnabled` is allowed for the type (io1 and io2).
pub fn check_multi_attach(t: VolumeType, multi_attach: bool) -> Result<()> {
    if multi_attach && !rules(t).multi_attach {
        return Err(Error::InvalidParameterCombination(format!(
            "Multi-Attach is supported only for io1 and io2 volumes, not for {} volumes.",
            t.as_str()
        )));
    }
    Ok(())
}

/// What the host enforces on an attached disk of this type: the provisioned or
/// baseline IOPS, and the type's throughput. gp2 gets its baseline (the burst bucket
/// is not modelled); st1 and sc1 are limited by throughput only (their burst rates,
/// 250 and 80 MiB/s per TiB, at most 500 and 250 MiB/s); magnetic volumes get 100
/// IOPS, their documented average.
pub fn limits(t: VolumeType, size_gib: u32, perf: Performance) -> DiskLimits {
    let per_tib = |rate: u64, max: u64| ((rate * size_gib as u64) / 1024).clamp(1, max) * MIB;
    let (iops, mib) = match t {
        VolumeType::Gp2 => (gp2_iops(size_gib), 250 * MIB),
        VolumeType::Gp3 => (
            perf.iops.unwrap_or(3_000),
            perf.throughput.unwrap_or(125) as u64 * MIB,
        ),
        VolumeType::Io1 => (perf.iops.unwrap_or(100), 1_000 * MIB),
        VolumeType::Io2 => (perf.iops.unwrap_or(100), 4_000 * MIB),
        VolumeType::St1 => (0, per_tib(250, 500)),
        VolumeType::Sc1 => (0, per_tib(80, 250)),
        VolumeType::Standard => (100, 0),
    };
    DiskLimits {
        iops,
        bytes_per_sec: mib,
    }
}

/// A volume's performance as request parameters for another volume of `t` and
/// `size_gib` made like it: `None` where it is what that type and size get anyway (a
/// default that may not be given explicitly, such as gp3's 3,000 IOPS on a small
/// volume), and nothing when the type changes.
pub(crate) fn carried_performance(
    from: (VolumeType, Option<u32>, Option<u32>),
    t: VolumeType,
    size_gib: u32,
) -> (Option<i64>, Option<i64>) {
    if from.0 != t {
        return (None, None);
    }
    let default = performance(t, size_gib, None, None).ok();
    let keep = |v: Option<u32>, d: Option<u32>| v.filter(|v| Some(*v) != d).map(i64::from);
    (
        keep(from.1, default.as_ref().and_then(|p| p.iops)),
        keep(from.2, default.as_ref().and_then(|p| p.throughput)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_type() {
        assert!(check_size(VolumeType::Gp2, 0).is_err());
        assert_eq!(check_size(VolumeType::Gp2, 1).unwrap(), 1);
        assert!(check_size(VolumeType::Gp2, 16_385).is_err());
        assert!(check_size(VolumeType::Io1, 3).is_err());
        assert!(check_size(VolumeType::St1, 124).is_err());
        assert!(check_size(VolumeType::Standard, 1_025).is_err());
        assert_eq!(check_size(VolumeType::Io2, 65_536).unwrap(), 65_536);
    }

    #[test]
    fn iops_and_throughput_defaults_and_ranges() {
        let p = performance(VolumeType::Gp2, 10, None, None).unwrap();
        assert_eq!(p.iops, Some(100));
        assert_eq!(
            performance(VolumeType::Gp2, 1000, None, None).unwrap().iops,
            Some(3000)
        );
        assert_eq!(
            performance(VolumeType::Gp2, 16_000, None, None)
                .unwrap()
                .iops,
            Some(16_000)
        );
        let p = performance(VolumeType::Gp3, 10, None, None).unwrap();
        assert_eq!((p.iops, p.throughput), (Some(3000), Some(125)));
        assert!(matches!(
            performance(VolumeType::Gp2, 10, Some(300), None),
            Err(Error::InvalidParameterCombination(_))
        ));
        assert!(matches!(
            performance(VolumeType::Io1, 10, None, None),
            Err(Error::MissingParameter(_))
        ));
        // 50 IOPS per GiB for io1.
        assert!(performance(VolumeType::Io1, 10, Some(500), None).is_ok());
        assert!(performance(VolumeType::Io1, 10, Some(501), None).is_err());
        assert!(performance(VolumeType::Gp3, 10, Some(2_999), None).is_err());
        assert!(performance(VolumeType::Gp3, 100, Some(16_001), None).is_err());
        // gp3 throughput: 125..=1000 and at most IOPS / 4.
        assert!(performance(VolumeType::Gp3, 100, None, Some(750)).is_ok());
        assert!(performance(VolumeType::Gp3, 100, None, Some(751)).is_err());
        assert!(performance(VolumeType::Gp3, 100, Some(4_000), Some(1_000)).is_ok());
        assert!(performance(VolumeType::Gp3, 100, None, Some(124)).is_err());
        assert!(matches!(
            performance(VolumeType::Io2, 100, Some(1000), Some(200)),
            Err(Error::InvalidParameterCombination(_))
        ));
    }

    #[test]
    fn limits_follow_the_type() {
        let l = limits(
            VolumeType::Gp2,
            100,
            performance(VolumeType::Gp2, 100, None, None).unwrap(),
        );
        assert_eq!((l.iops, l.bytes_per_sec), (300, 250 * MIB));
        let l = limits(
            VolumeType::St1,
            2048,
            performance(VolumeType::St1, 2048, None, None).unwrap(),
        );
        assert_eq!((l.iops, l.bytes_per_sec), (0, 500 * MIB));
        assert!(check_multi_attach(VolumeType::Io2, true).is_ok());
        assert!(check_multi_attach(VolumeType::Gp3, true).is_err());
    }

    #[test]
    fn carried_performance_leaves_out_defaults_and_other_types() {
        // A small gp3 volume's 3,000 IOPS and 125 MiB/s are its defaults.
        assert_eq!(
            carried_performance((VolumeType::Gp3, Some(3000), Some(125)), VolumeType::Gp3, 3),
            (None, None)
        );
        assert_eq!(
            carried_performance(
                (VolumeType::Gp3, Some(4000), Some(250)),
                VolumeType::Gp3,
                10
            ),
            (Some(4000), Some(250))
        );
        assert_eq!(
            carried_performance((VolumeType::Io1, Some(200), None), VolumeType::Io1, 4),
            (Some(200), None)
        );
        assert_eq!(
            carried_performance((VolumeType::Io1, Some(200), None), VolumeType::Gp3, 4),
            (None, None)
        );
    }
}
