//! The catalog's Describe actions on a real store with the simulated host agent
//! (DescribeRegions, DescribeAvailabilityZones, DescribeInstanceTypes,
//! DescribeInstanceTypeOfferings, and DescribeImages' typed ids): every filter EC2
//! documents is one the action accepts and evaluates, a record's own value (as the
//! answer shows it) selects it and another value does not, and names with no value in
//! Strato match nothing, as on EC2 for records without the feature.
//!
//! The documented names are botocore's, from each action's `Filters` documentation.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::sync::Arc;
use std::time::Duration;
use strato_agent::Agent;
use strato_agent_api::AgentClient;
use strato_common::filter::FilterSet;
use strato_common::{AccountId, Error, ImageId, ResourceId, ResourceKind};
use strato_control::catalog::{
    instance_type_values, instance_types_named, zone_id, DescribeRegionsInput, DescribeZonesInput,
    InstanceType, LocationKind, RegionRecord, ZoneRecord, INSTANCE_TYPES, INSTANCE_TYPE_FILTERS,
    OFFERING_FILTERS, REGION_FILTERS, ZONE_FILTERS,
};
use strato_control::images::{DescribeImagesInput, ImageOwner, DEFAULT_IMAGE_ID};
use strato_control::instances::RunInstancesInput;
use strato_control::page::PageRequest;
use strato_control::{accounts, Caller, ControlConfig, ControlPlane};
use strato_drivers::sim::{SimConfig, SimDriver};
use strato_drivers::Hypervisor;
use strato_store::Db;

const REGION: &str = "us-east-1";
const ENDPOINT_HOST: &str = "127.0.0.1:4566";

const DOC_REGIONS: &[&str] = &["endpoint", "opt-in-status", "region-name"];

const DOC_ZONES: &[&str] = &[
    "group-long-name",
    "group-name",
    "message",
    "opt-in-status",
    "parent-zone-id",
    "parent-zone-name",
    "region-name",
    "state",
    "zone-id",
    "zone-name",
    "zone-type",
];

const DOC_OFFERINGS: &[&str] = &["instance-type", "location"];

const DOC_INSTANCE_TYPES: &[&str] = &[
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

/// The instance-type names Strato has no value for: features it lacks that EC2 leaves
/// out of the answer for types without them.
const NO_VALUE_INSTANCE_TYPES: &[&str] = &[
    "ebs-info.attachment-limit-type",
    "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.baseline-iops",
    "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-iops",
    "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps",
    "ebs-info.maximum-ebs-attachments",
    "network-info.bandwidth-weightings",
    "network-info.efa-info.maximum-efa-interfaces",
    "network-info.ipv6-addresses-per-interface",
    "nitro-tpm-info.supported-versions",
    "processor-info.supported-features",
];

/// Checks an action's filter constant: every documented name is in it, each once, and
/// the only others are the undocumented names it keeps accepting (`extra`).
fn check_names(action: &str, constant: &[&str], documented: &[&str], extra: &[&str]) {
    for name in documented {
        assert!(
            constant.contains(name),
            "{action}: the documented filter '{name}' is not accepted"
        );
    }
    for name in constant {
        assert!(
            documented.contains(name) || extra.contains(name),
            "{action}: '{name}' is neither documented nor a known extra"
        );
        assert_eq!(
            constant.iter().filter(|n| *n == name).count(),
            1,
            "{action}: '{name}' is listed twice"
        );
    }
    assert_eq!(constant.len(), documented.len() + extra.len(), "{action}");
}

fn filter(name: &str, value: &str) -> FilterSet {
    FilterSet::of(&[(name, value)])
}

struct World {
    _dir: tempfile::TempDir,
    cp: Arc<ControlPlane>,
    a: Caller,
}

/// A control plane serving `regions` (every commercial region when `None`), its
/// endpoint `http://127.0.0.1:4566`, with one account calling from us-east-1.
fn world_serving(regions: Option<&[&str]>) -> World {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(&dir.path().join("db")).unwrap());
    let driver = Arc::new(
        SimDriver::open(
            &dir.path().join("sim"),
            SimConfig {
                boot_delay: Duration::ZERO,
                stop_delay: Duration::ZERO,
            },
        )
        .unwrap(),
    );
    let (agent, _reports) = Agent::new("local", driver as Arc<dyn Hypervisor>);
    let mut cfg = ControlConfig::new(REGION, &format!("http://{ENDPOINT_HOST}"));
    if let Some(regions) = regions {
        cfg.regions = regions.iter().map(|r| r.to_string()).collect();
    }
    let cp = Arc::new(ControlPlane::new(
        db.clone(),
        agent as Arc<dyn AgentClient>,
        cfg,
    ));
    cp.register_builtin_images(None).unwrap();
    let (acct, key) = accounts::create_account(&db, "a", None).unwrap();
    World {
        _dir: dir,
        cp,
        a: Caller {
            account: acct.id,
            access_key_id: key.access_key_id,
            region: REGION.into(),
        },
    }
}

fn world() -> World {
    world_serving(None)
}

impl World {
    fn regions_with(&self, names: &[&str], all: bool, filters: FilterSet) -> Vec<RegionRecord> {
        let input = DescribeRegionsInput {
            region_names: names.iter().map(|s| s.to_string()).collect(),
            all_regions: all,
            filters,
        };
        self.cp.describe_regions(&input).unwrap()
    }

    fn regions(&self, name: &str, value: &str) -> Vec<String> {
        self.regions_with(&[], false, filter(name, value))
            .into_iter()
            .map(|r| r.name)
            .collect()
    }

    fn zones_with(&self, input: DescribeZonesInput) -> Result<Vec<ZoneRecord>, Error> {
        self.cp.describe_availability_zones(&self.a, &input)
    }

    fn zones(&self, name: &str, value: &str) -> Vec<String> {
        let input = DescribeZonesInput {
            filters: filter(name, value),
            ..Default::default()
        };
        self.zones_with(input)
            .unwrap()
            .into_iter()
            .map(|z| z.name)
            .collect()
    }

    fn types(&self, name: &str, value: &str) -> Vec<String> {
        let (list, next) =
            self.cp
                .describe_instance_types(&[], &filter(name, value), &PageRequest::all());
        assert_eq!(next, None);
        list.iter().map(|t| t.name.to_string()).collect()
    }

    /// Offerings by zone name, as `<type>@<zone>`.
    fn offerings(&self, name: &str, value: &str) -> Vec<String> {
        let (list, _) = self.cp.describe_instance_type_offerings(
            &self.a,
            LocationKind::AvailabilityZone,
            &filter(name, value),
            &PageRequest::all(),
        );
        list.iter()
            .map(|o| format!("{}@{}", o.instance_type, o.location))
            .collect()
    }

    fn images(&self, input: DescribeImagesInput) -> Result<Vec<String>, Error> {
        let (list, _) = self.cp.describe_images(&self.a, &input)?;
        Ok(list.iter().map(|(i, _)| i.id.to_string()).collect())
    }
}

/// `name=own` selects `id` and `name=other` does not.
#[track_caller]
fn selects(
    describe: &dyn Fn(&str, &str) -> Vec<String>,
    name: &str,
    own: &str,
    other: &str,
    id: &str,
) {
    assert!(
        describe(name, own).iter().any(|x| x == id),
        "{name}={own} should select {id}"
    );
    assert!(
        !describe(name, other).iter().any(|x| x == id),
        "{name}={other} should not select {id}"
    );
}

/// `name` matches nothing, whatever the value.
#[track_caller]
fn matches_nothing(describe: &dyn Fn(&str, &str) -> Vec<String>, name: &str) {
    assert_eq!(describe(name, "*"), Vec::<String>::new(), "{name}=*");
}

fn type_named(name: &str) -> &'static InstanceType {
    INSTANCE_TYPES.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn every_documented_name_is_accepted() {
    check_names("DescribeRegions", REGION_FILTERS, DOC_REGIONS, &[]);
    check_names(
        "DescribeAvailabilityZones",
        ZONE_FILTERS,
        DOC_ZONES,
        &["network-border-group"],
    );
    check_names(
        "DescribeInstanceTypeOfferings",
        OFFERING_FILTERS,
        DOC_OFFERINGS,
        &[],
    );
    check_names(
        "DescribeInstanceTypes",
        INSTANCE_TYPE_FILTERS,
        DOC_INSTANCE_TYPES,
        &[],
    );

    // Each name evaluates against the records without failing.
    let w = world();
    for name in DOC_REGIONS {
        w.regions(name, "x");
    }
    for name in DOC_ZONES {
        w.zones(name, "x");
    }
    for name in DOC_OFFERINGS {
        w.offerings(name, "x");
    }
    for name in DOC_INSTANCE_TYPES {
        w.types(name, "x");
    }
}

#[test]
fn region_filters_select_by_the_answers_values() {
    let w = world_serving(Some(&["us-east-1", "eu-west-1", "af-south-1"]));
    let q = |n: &str, v: &str| w.regions(n, v);
    selects(
        &q,
        "endpoint",
        ENDPOINT_HOST,
        "ec2.us-east-1.amazonaws.com",
        "eu-west-1",
    );
    selects(&q, "endpoint", "127.0.0.1:*", "http://*", "us-east-1");
    selects(&q, "region-name", "eu-west-1", "eu-west-2", "eu-west-1");
    selects(&q, "region-name", "eu-*", "us-*", "eu-west-1");
    selects(
        &q,
        "opt-in-status",
        "opt-in-not-required",
        "opted-in",
        "us-east-1",
    );
    selects(
        &q,
        "opt-in-status",
        "opted-in",
        "not-opted-in",
        "af-south-1",
    );
    assert_eq!(q("opt-in-status", "opted-in"), ["af-south-1"]);

    // Only served regions by default; AWS's others too with AllRegions, not opted in.
    assert_eq!(
        q("region-name", "*"),
        ["af-south-1", "eu-west-1", "us-east-1"]
    );
    let all = w.regions_with(&[], true, filter("opt-in-status", "not-opted-in"));
    assert!(all.iter().any(|r| r.name == "ap-east-1"));
    assert!(all.iter().all(|r| r.endpoint == ENDPOINT_HOST));
    // A region named is answered even when not served, with its status.
    let named = w.regions_with(&["ap-east-1"], false, FilterSet::default());
    assert_eq!(
        named,
        [RegionRecord {
            name: "ap-east-1".into(),
            endpoint: ENDPOINT_HOST.into(),
            opt_in_status: "not-opted-in",
        }]
    );
    let e =
        w.cp.describe_regions(&DescribeRegionsInput {
            region_names: vec!["moon-base-1".into()],
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(e, Error::InvalidParameterValue(_)), "{e:?}");
    assert_eq!(e.to_string(), "Invalid region: moon-base-1");
}

#[test]
fn private_region_opts_in_nothing() {
    let w = world_serving(Some(&["us-east-1", "lab-1"]));
    let r = w.regions_with(&[], false, filter("region-name", "lab-1"));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].opt_in_status, "opt-in-not-required");
}

#[test]
fn zone_filters_select_by_the_answers_values() {
    let w = world();
    let q = |n: &str, v: &str| w.zones(n, v);
    selects(&q, "zone-id", "use1-az2", "use1-az3", "us-east-1b");
    assert_eq!(q("zone-id", "use1-az2"), ["us-east-1b"]);
    selects(&q, "zone-name", "us-east-1c", "us-east-1d", "us-east-1c");
    selects(
        &q,
        "zone-type",
        "availability-zone",
        "local-zone",
        "us-east-1a",
    );
    selects(
        &q,
        "opt-in-status",
        "opt-in-not-required",
        "opted-in",
        "us-east-1a",
    );
    selects(&q, "region-name", REGION, "eu-west-1", "us-east-1f");
    selects(&q, "state", "available", "impaired", "us-east-1e");
    selects(&q, "group-name", REGION, "us-east-1-bos-1", "us-east-1a");
    selects(
        &q,
        "network-border-group",
        REGION,
        "us-east-1-wl1",
        "us-east-1a",
    );
    assert_eq!(q("zone-type", "availability-zone").len(), 6);
    // A plain zone has no parent, no messages, and no long group name in Strato.
    for name in [
        "group-long-name",
        "message",
        "parent-zone-id",
        "parent-zone-name",
    ] {
        matches_nothing(&q, name);
    }
}

#[test]
fn zones_by_name_and_id() {
    let w = world();
    let names = |input: DescribeZonesInput| -> Vec<String> {
        w.zones_with(input)
            .unwrap()
            .into_iter()
            .map(|z| z.name)
            .collect()
    };
    assert_eq!(
        names(DescribeZonesInput {
            zone_names: vec!["us-east-1b".into()],
            ..Default::default()
        }),
        ["us-east-1b"]
    );
    assert_eq!(
        names(DescribeZonesInput {
            zone_ids: vec!["use1-az3".into()],
            ..Default::default()
        }),
        ["us-east-1c"]
    );
    let all = w.zones_with(DescribeZonesInput::default()).unwrap();
    for z in &all {
        assert_eq!(z.region, REGION);
        assert_eq!(z.id, zone_id(REGION, &z.name));
    }
    let err = |input: DescribeZonesInput| w.zones_with(input).unwrap_err().to_string();
    assert_eq!(
        err(DescribeZonesInput {
            zone_names: vec!["eu-west-1a".into()],
            ..Default::default()
        }),
        "Invalid availability zone: [eu-west-1a]"
    );
    assert_eq!(
        err(DescribeZonesInput {
            zone_ids: vec!["use1-az9".into()],
            ..Default::default()
        }),
        "Invalid availability zone id: [use1-az9]"
    );
}

#[test]
fn instance_type_filters_select_by_the_answers_values() {
    let w = world();
    let q = |n: &str, v: &str| w.types(n, v);
    selects(&q, "current-generation", "true", "false", "t2.micro");
    selects(&q, "vcpu-info.default-vcpus", "4", "2", "m5.xlarge");
    let four: Vec<&str> = INSTANCE_TYPES
        .iter()
        .filter(|t| t.vcpus == 4)
        .map(|t| t.name)
        .collect();
    let mut four_sorted = four.clone();
    four_sorted.sort();
    assert_eq!(q("vcpu-info.default-vcpus", "4"), four_sorted);
    selects(&q, "memory-info.size-in-mib", "8192", "8000", "m5.large");
    selects(
        &q,
        "processor-info.supported-architecture",
        "x86_64",
        "arm64",
        "c5.large",
    );
    selects(
        &q,
        "network-info.ena-support",
        "required",
        "unsupported",
        "r5.large",
    );
    selects(
        &q,
        "burstable-performance-supported",
        "true",
        "false",
        "t3.micro",
    );
    selects(
        &q,
        "burstable-performance-supported",
        "false",
        "true",
        "m5.large",
    );
    selects(&q, "free-tier-eligible", "true", "false", "t3.micro");
    selects(&q, "hypervisor", "xen", "nitro", "t2.nano");
    selects(&q, "instance-type", "r5.*", "m5.*", "r5.xlarge");
    selects(
        &q,
        "processor-info.sustained-clock-speed-in-ghz",
        "3.1",
        "3.0999999046325684",
        "m5.large",
    );
    selects(
        &q,
        "network-info.network-performance",
        "Up to 10 Gigabit",
        "Up to 5 Gigabit",
        "c5.large",
    );
    selects(&q, "vcpu-info.valid-cores", "4", "5", "m5.2xlarge");
    selects(&q, "vcpu-info.valid-threads-per-core", "1", "3", "t3.micro");
    selects(
        &q,
        "network-info.efa-supported",
        "false",
        "true",
        "m5.large",
    );
    selects(
        &q,
        "nitro-enclaves-support",
        "unsupported",
        "supported",
        "m5.large",
    );
    selects(
        &q,
        "instance-storage-info.disk.type",
        "hdd",
        "nvme",
        "d3.xlarge",
    );
    selects(
        &q,
        "instance-storage-info.total-size-in-gb",
        "475",
        "476",
        "i3.large",
    );
    selects(
        &q,
        "instance-storage-supported",
        "true",
        "maybe",
        "i4i.large",
    );
    assert!(!q("instance-storage-info.disk.count", "*").contains(&"m5.large".to_string()));
    // t2 takes no CPU options, so it shows (and matches) no valid core counts.
    assert!(!q("vcpu-info.valid-cores", "*").contains(&"t2.micro".to_string()));
    assert!(q("vcpu-info.valid-cores", "*").contains(&"t3.micro".to_string()));
    for name in NO_VALUE_INSTANCE_TYPES {
        matches_nothing(&q, name);
    }
}

#[test]
fn every_instance_type_value_selects_its_type() {
    let w = world();
    for t in INSTANCE_TYPES {
        for name in INSTANCE_TYPE_FILTERS {
            let values = instance_type_values(t, name);
            // t2 takes no CPU options, so it has no valid core or thread counts.
            // Only storage-optimized types have an instance store to describe.
            let none = NO_VALUE_INSTANCE_TYPES.contains(name)
                || (!t.cpu_options_supported() && name.starts_with("vcpu-info.valid-"))
                || (t.instance_store.is_none() && name.starts_with("instance-storage-info."));
            assert_eq!(values.is_empty(), none, "{} {name}: {values:?}", t.name);
            for v in values {
                assert!(
                    w.types(name, &v).iter().any(|n| n == t.name),
                    "{name}={v} should select {}",
                    t.name
                );
            }
            assert!(
                !w.types(name, "no-such-value").iter().any(|n| n == t.name),
                "{name}=no-such-value selects {}",
                t.name
            );
        }
    }
}

#[test]
fn instance_types_by_name_and_page() {
    let w = world();
    let wanted = instance_types_named(&["m5.large".to_string(), "c5.xlarge".to_string()]).unwrap();
    let (list, _) =
        w.cp.describe_instance_types(&wanted, &FilterSet::default(), &PageRequest::all());
    let names: Vec<&str> = list.iter().map(|t| t.name).collect();
    assert_eq!(names, ["c5.xlarge", "m5.large"]);
    let e = instance_types_named(&[
        "t3.micro".to_string(),
        "t3.gigantic".to_string(),
        "m5.huge".to_string(),
    ])
    .unwrap_err();
    assert!(matches!(e, Error::InvalidInstanceType(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "The following supplied instance types do not exist: [t3.gigantic, m5.huge]"
    );

    // Pages of five cover the catalog once, in name order.
    let mut seen = vec![];
    let mut page = PageRequest::new(Some(5), None, 5, 100).unwrap();
    loop {
        let (list, next) =
            w.cp.describe_instance_types(&[], &FilterSet::default(), &page);
        assert!(list.len() <= 5);
        seen.extend(list.iter().map(|t| t.name));
        match next {
            Some(token) => page = PageRequest::new(Some(5), Some(&token), 5, 100).unwrap(),
            None => break,
        }
    }
    let mut all: Vec<&str> = INSTANCE_TYPES.iter().map(|t| t.name).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn valid_cpu_options_are_the_ones_run_instances_takes() {
    let w = world();
    for t in INSTANCE_TYPES {
        let (cores, threads) = (t.valid_cores(), t.valid_threads_per_core());
        for c in 0..=t.default_cores() + 1 {
            for th in 0..=3u32 {
                let input = RunInstancesInput {
                    image_id: Some(DEFAULT_IMAGE_ID.into()),
                    instance_type: Some(t.name.into()),
                    min_count: Some(1),
                    max_count: Some(1),
                    core_count: Some(i64::from(c)),
                    threads_per_core: Some(i64::from(th)),
                    ..Default::default()
                };
                let got = w.cp.run_instances(&w.a, &input, true);
                let taken = matches!(got, Err(Error::DryRunOperation));
                assert_eq!(
                    taken,
                    cores.contains(&c) && threads.contains(&th),
                    "{} with {c} cores, {th} threads per core: {:?}",
                    t.name,
                    got.err()
                );
            }
        }
    }
    assert_eq!(
        type_named("m5.4xlarge").valid_cores(),
        (1..=8).collect::<Vec<_>>()
    );
    assert_eq!(type_named("t3.nano").valid_threads_per_core(), [1, 2]);
    assert!(type_named("t2.medium").valid_cores().is_empty());
}

#[test]
fn offering_filters_select_by_the_answers_values() {
    let w = world();
    let q = |n: &str, v: &str| w.offerings(n, v);
    selects(
        &q,
        "location",
        "us-east-1b",
        "us-east-1c",
        "m5.large@us-east-1b",
    );
    selects(&q, "location", "*-1b", "use1-az2", "m5.large@us-east-1b");
    selects(
        &q,
        "instance-type",
        "m5.large",
        "m5.xlarge",
        "m5.large@us-east-1b",
    );
    assert_eq!(q("location", "us-east-1b").len(), INSTANCE_TYPES.len());

    // Each location kind lists every type once per location, by location then type.
    let kinds = [
        (LocationKind::Region, vec![REGION.to_string()]),
        (
            LocationKind::AvailabilityZone,
            ('a'..='f').map(|c| format!("{REGION}{c}")).collect(),
        ),
        (
            LocationKind::AvailabilityZoneId,
            (1..=6).map(|n| format!("use1-az{n}")).collect(),
        ),
    ];
    for (kind, locations) in kinds {
        let (list, next) = w.cp.describe_instance_type_offerings(
            &w.a,
            kind,
            &FilterSet::default(),
            &PageRequest::all(),
        );
        assert_eq!(next, None);
        assert_eq!(
            list.len(),
            locations.len() * INSTANCE_TYPES.len(),
            "{kind:?}"
        );
        let mut seen: Vec<&str> = list.iter().map(|o| o.location.as_str()).collect();
        seen.dedup();
        assert_eq!(seen, locations, "{kind:?}");
        // Selecting by the location the answer shows finds that location's offerings.
        let (by_loc, _) = w.cp.describe_instance_type_offerings(
            &w.a,
            kind,
            &filter("location", &locations[0]),
            &PageRequest::all(),
        );
        assert_eq!(by_loc.len(), INSTANCE_TYPES.len(), "{kind:?}");
    }
}

#[test]
fn image_ids_and_owners_are_typed() {
    let w = world();
    let builtin = ImageId::parse(DEFAULT_IMAGE_ID).unwrap();
    let ids = |image_ids: Vec<ImageId>, owners: Vec<ImageOwner>| {
        w.images(DescribeImagesInput {
            image_ids,
            owners,
            ..Default::default()
        })
    };
    assert_eq!(
        ids(vec![builtin.clone()], vec![]).unwrap(),
        [DEFAULT_IMAGE_ID]
    );
    let alias = ImageOwner::parse("strato").unwrap();
    assert_eq!(alias, ImageOwner::Alias("strato".into()));
    assert_eq!(ids(vec![], vec![alias]).unwrap(), [DEFAULT_IMAGE_ID]);
    let builtin_owner = ImageOwner::parse("000000000000").unwrap();
    assert_eq!(
        builtin_owner,
        ImageOwner::Account(AccountId::parse("000000000000").unwrap())
    );
    assert_eq!(
        ids(vec![], vec![builtin_owner]).unwrap(),
        [DEFAULT_IMAGE_ID]
    );
    assert_eq!(ImageOwner::parse("self").unwrap(), ImageOwner::Caller);
    assert!(ids(vec![], vec![ImageOwner::Caller]).unwrap().is_empty());
    assert!(ids(vec![], vec![ImageOwner::Alias("amazon".into())])
        .unwrap()
        .is_empty());

    let e = ImageOwner::parse("someone").unwrap_err();
    assert!(matches!(e, Error::InvalidParameterValue(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Invalid value 'someone' for owners. Expected an account id or one of self, amazon, strato."
    );

    // Every id asked for and missing is named, in the order asked.
    let missing = [
        ImageId::parse("ami-0123456789abcdef0").unwrap(),
        ImageId::parse("ami-12345678").unwrap(),
    ];
    let e = ids(
        vec![missing[0].clone(), builtin, missing[1].clone()],
        vec![],
    )
    .unwrap_err();
    match &e {
        Error::NotFound { kind, id } => {
            assert_eq!(*kind, ResourceKind::Image);
            assert_eq!(id, "[ami-0123456789abcdef0, ami-12345678]");
        }
        other => panic!("{other:?}"),
    }
}
