#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use super::*;

fn res(vcpus: u32, memory_gib: u64) -> Resources {
    Resources {
        vcpus,
        memory_mib: memory_gib * 1024,
        disk_gib: 100,
        instance_store_gib: 0,
    }
}

fn host(id: &str, zone: &str, vcpus: u32, memory_gib: u64) -> Host {
    Host {
        id: id.into(),
        zone: zone.into(),
        state: HostState::Ready,
        capacity: Resources {
            vcpus,
            memory_mib: memory_gib * 1024,
            disk_gib: 1000,
            instance_store_gib: 0,
        },
        reserved: Resources::default(),
    }
}

fn req(zones: &[&str], vcpus: u32, memory_gib: u64) -> Request {
    Request {
        zones: zones.iter().map(|z| z.to_string()).collect(),
        need: res(vcpus, memory_gib),
        ..Default::default()
    }
}

fn grouped(mut r: Request, group: &str) -> Request {
    r.group = Some(group.into());
    r
}

fn id(c: &Cluster, p: &Placement) -> String {
    c.hosts[p.host].id.clone()
}

/// Places `r` and answers the host's id.
fn put(c: &mut Cluster, r: &Request) -> String {
    let p = c.place(r).unwrap();
    id(c, &p)
}

#[test]
fn the_least_loaded_host_in_the_zone_takes_the_instance() {
    let mut c = Cluster::new(vec![
        host("h1", "a", 8, 32),
        host("h2", "a", 8, 32),
        host("h3", "b", 64, 256),
    ]);
    let r = req(&["a"], 2, 4);
    let first = c.place(&r).unwrap();
    assert_eq!(id(&c, &first), "h1", "ties go to the lowest id");
    let second = c.place(&r).unwrap();
    assert_eq!(id(&c, &second), "h2", "then the emptier host");
    // Never the other zone, however empty it is.
    for _ in 0..6 {
        let p = c.place(&r).unwrap();
        assert_ne!(id(&c, &p), "h3");
    }
    assert_eq!(c.hosts[0].reserved.vcpus, 8);
    assert_eq!(c.hosts[1].reserved.vcpus, 8);
    assert_eq!(
        c.place(&r),
        Err(NoPlacement::Capacity {
            zones: vec!["a".into()]
        }),
        "a full zone refuses; nothing is overcommitted"
    );
    assert_eq!(c.hosts[0].reserved.vcpus, 8, "a refusal reserves nothing");
    // Any zone: the big host.
    assert_eq!(put(&mut c, &req(&[], 2, 4)), "h3");
}

#[test]
fn memory_disk_and_instance_store_must_all_fit() {
    let mut h = host("h1", "a", 64, 8);
    h.capacity.instance_store_gib = 500;
    let mut c = Cluster::new(vec![h]);
    assert!(c.choose(&req(&["a"], 1, 16)).is_err(), "memory");
    let mut disk = req(&["a"], 1, 1);
    disk.need.disk_gib = 2000;
    assert!(c.choose(&disk).is_err(), "disk");
    let mut store = req(&["a"], 1, 1);
    store.need.instance_store_gib = 475;
    c.place(&store).unwrap();
    assert!(c.choose(&store).is_err(), "instance store is taken");
    assert!(c.choose(&req(&["a"], 1, 1)).is_ok());
}

#[test]
fn only_ready_hosts_take_instances() {
    let mut hosts = vec![
        host("h1", "a", 8, 32),
        host("h2", "a", 8, 32),
        host("h3", "a", 8, 32),
        host("h4", "a", 8, 32),
    ];
    hosts[0].state = HostState::Draining;
    hosts[1].state = HostState::Unreachable;
    hosts[2].state = HostState::Fenced;
    let mut c = Cluster::new(hosts);
    for _ in 0..4 {
        assert_eq!(put(&mut c, &req(&["a"], 2, 2)), "h4");
    }
    assert!(c.place(&req(&["a"], 2, 2)).is_err());
}

#[test]
fn a_preferred_host_wins_when_it_qualifies() {
    let mut c = Cluster::new(vec![host("h1", "a", 8, 32), host("h2", "a", 8, 32)]);
    c.hosts[1].reserved = res(6, 8);
    let mut r = req(&["a"], 2, 4);
    r.prefer_host = Some("h2".into());
    assert_eq!(put(&mut c, &r), "h2");
    assert_eq!(put(&mut c, &r), "h1", "full: elsewhere");
    r.prefer_host = Some("gone".into());
    assert!(c.place(&r).is_ok());
}

#[test]
fn a_spread_group_puts_each_member_on_its_own_host_and_seven_per_zone() {
    let hosts: Vec<Host> = (0..10)
        .map(|i| host(&format!("a{i}"), "a", 64, 256))
        .chain((0..2).map(|i| host(&format!("b{i}"), "b", 64, 256)))
        .collect();
    let mut c = Cluster::new(hosts);
    c.add_group("web", Strategy::Spread, &[]);
    let r = grouped(req(&["a"], 1, 1), "web");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..SPREAD_PER_ZONE {
        let p = c.place(&r).unwrap();
        assert!(seen.insert(id(&c, &p)), "a host twice");
    }
    assert_eq!(
        c.place(&r),
        Err(NoPlacement::SpreadLimit {
            zones: vec!["a".into()]
        }),
        "the eighth in one zone"
    );
    // Another zone has room for two more, one per host.
    let rb = grouped(req(&["b"], 1, 1), "web");
    c.place(&rb).unwrap();
    c.place(&rb).unwrap();
    assert!(matches!(c.place(&rb), Err(NoPlacement::Capacity { .. })));
    // Members found at start count the same.
    let mut c2 = Cluster::new(vec![host("x", "a", 8, 8), host("y", "a", 8, 8)]);
    c2.add_group(
        "g",
        Strategy::Spread,
        &[Member {
            host: "x".into(),
            zone: "a".into(),
            partition: None,
            running: true,
        }],
    );
    let r2 = grouped(req(&["a"], 1, 1), "g");
    assert_eq!(put(&mut c2, &r2), "y");
    assert!(c2.place(&r2).is_err());
}

#[test]
fn a_cluster_group_packs_into_one_zone() {
    let mut c = Cluster::new(vec![
        host("a1", "a", 8, 32),
        host("a2", "a", 8, 32),
        host("b1", "b", 8, 32),
    ]);
    c.add_group("hpc", Strategy::Cluster, &[]);
    let r = grouped(req(&[], 2, 2), "hpc");
    let first = put(&mut c, &r);
    for _ in 0..3 {
        assert_eq!(put(&mut c, &r), first, "packed onto its members' host");
    }
    let zone = c.hosts.iter().find(|h| h.id == first).unwrap().zone.clone();
    let next = c.place(&r).unwrap();
    assert_eq!(c.hosts[next.host].zone, zone, "full host: same zone");
    let other = if zone == "a" { "b" } else { "a" };
    assert_eq!(
        c.choose(&grouped(req(&[other], 1, 1), "hpc")),
        Err(NoPlacement::ClusterZone { group_zone: zone })
    );
}

#[test]
fn partitions_share_no_host_and_fill_evenly() {
    let hosts: Vec<Host> = (0..6).map(|i| host(&format!("h{i}"), "a", 8, 32)).collect();
    let mut c = Cluster::new(hosts);
    c.add_group("db", Strategy::Partition { count: 3 }, &[]);
    let r = grouped(req(&["a"], 1, 1), "db");
    let mut by_host: HashMap<String, u32> = HashMap::new();
    let mut counts = [0u32; 4];
    for _ in 0..12 {
        let p = c.place(&r).unwrap();
        let part = p.partition.unwrap();
        counts[part as usize] += 1;
        let prev = by_host.insert(id(&c, &p), part);
        assert!(
            prev.is_none() || prev == Some(part),
            "a host in two partitions"
        );
    }
    assert_eq!(&counts[1..], &[4, 4, 4], "even");
    // A named partition goes to its hosts, or to a host no partition has.
    let mut named = r.clone();
    named.partition = Some(2);
    let p = c.place(&named).unwrap();
    assert_eq!(p.partition, Some(2));
    assert!(by_host.get(&id(&c, &p)).is_none_or(|x| *x == 2));
    named.partition = Some(4);
    assert_eq!(
        c.choose(&named),
        Err(NoPlacement::NoSuchPartition {
            partition: 4,
            count: 3
        })
    );
    named.partition = Some(0);
    assert!(c.choose(&named).is_err());
}

#[test]
fn an_unknown_group_is_refused() {
    let c = Cluster::new(vec![host("h", "a", 8, 8)]);
    assert_eq!(
        c.choose(&grouped(req(&[], 1, 1), "nope")),
        Err(NoPlacement::NoSuchGroup("nope".into()))
    );
}
