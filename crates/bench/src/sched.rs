//! Scheduler benchmark: placements per second of `strato-scheduler` for a fleet of
//! hosts and a backlog of pending instances (default 1,000 hosts, 10,000 instances),
//! against the goal of 5,000 per second (Nomad's published C1M figure is 3,750 per
//! second). Each round builds the placement view from host and group records and
//! places the whole backlog, reserving as it goes; the median round is reported.
//!
//! The fleet: hosts of three sizes over six zones. The backlog: four instance sizes,
//! most in a zone of their own choosing, some in any zone; one in five in a spread
//! group of five, one in ten in a partition group of seven partitions, one in twenty in
//! a cluster group (in one zone). The fleet ends up about four-fifths full, so the last
//! placements search hard and some find no room.

use clap::Parser;
use std::time::Instant;
use strato_scheduler::{Cluster, Host, HostState, NoPlacement, Request, Resources, Strategy};

#[derive(Parser)]
#[command(about = "placements per second of the scheduler")]
struct Args {
    #[arg(long, default_value_t = 1000)]
    hosts: usize,
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

const GOAL_PER_SEC: f64 = 5000.0;
const NOMAD_C1M_PER_SEC: f64 = 3750.0;
const ZONES: [&str; 6] = [
    "us-east-1a",
    "us-east-1b",
    "us-east-1c",
    "us-east-1d",
    "us-east-1e",
    "us-east-1f",
];

/// A small deterministic generator (the same workload every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn fleet(n: usize) -> Vec<Host> {
    let sizes = [(96u32, 384u64), (64, 256), (32, 128)];
    (0..n)
        .map(|i| {
            let (vcpus, mem_gib) = sizes[i % sizes.len()];
            Host {
                id: format!("host-{i:05}"),
                zone: ZONES[i % ZONES.len()].to_string(),
                state: if i % 97 == 0 {
                    HostState::Draining
                } else {
                    HostState::Ready
                },
                capacity: Resources {
                    vcpus,
                    memory_mib: mem_gib * 1024,
                    disk_gib: 4000,
                    instance_store_gib: if i % 10 == 0 { 1900 } else { 0 },
                },
                reserved: Resources::default(),
            }
        })
        .collect()
}

/// The backlog, and the groups it names with their strategies.
fn backlog(n: usize) -> (Vec<Request>, Vec<(String, Strategy)>) {
    let mut rng = Lcg(42);
    let types = [(2u32, 1u64), (2, 8), (4, 8), (8, 64)];
    let mut groups = Vec::new();
    let mut reqs = Vec::with_capacity(n);
    for i in 0..n {
        let (vcpus, mem_gib) = types[rng.below(types.len() as u64) as usize];
        let zone = ZONES[rng.below(ZONES.len() as u64) as usize].to_string();
        let mut r = Request {
            zones: if rng.below(4) == 0 {
                vec![]
            } else {
                vec![zone]
            },
            need: Resources {
                vcpus,
                memory_mib: mem_gib * 1024,
                disk_gib: 8 + rng.below(60),
                instance_store_gib: 0,
            },
            ..Default::default()
        };
        match i % 20 {
            0..=3 => {
                let g = format!("spread-{}", i / 25);
                if !groups.iter().any(|(n, _)| *n == g) {
                    groups.push((g.clone(), Strategy::Spread));
                }
                r.group = Some(g);
            }
            4 | 5 => {
                let g = format!("partition-{}", i / 200);
                if !groups.iter().any(|(n, _)| *n == g) {
                    groups.push((g.clone(), Strategy::Partition { count: 7 }));
                }
                r.group = Some(g);
            }
            6 => {
                // A cluster group's instances share one subnet, so one zone.
                r.zones = vec![ZONES[(i / 400) % ZONES.len()].to_string()];
                let g = format!("cluster-{}", i / 400);
                if !groups.iter().any(|(n, _)| *n == g) {
                    groups.push((g.clone(), Strategy::Cluster));
                }
                r.group = Some(g);
            }
            _ => {}
        }
        reqs.push(r);
    }
    (reqs, groups)
}

struct Round {
    secs: f64,
    placed: usize,
    capacity: usize,
    other: usize,
}

fn round(hosts: &[Host], reqs: &[Request], groups: &[(String, Strategy)]) -> Round {
    let t0 = Instant::now();
    let mut c = Cluster::new(hosts.to_vec());
    for (name, strategy) in groups {
        c.add_group(name, *strategy, &[]);
    }
    let (mut placed, mut capacity, mut other) = (0, 0, 0);
    for r in reqs {
        match c.place(r) {
            Ok(_) => placed += 1,
            Err(NoPlacement::Capacity { .. }) => capacity += 1,
            Err(_) => other += 1,
        }
    }
    Round {
        secs: t0.elapsed().as_secs_f64(),
        placed,
        capacity,
        other,
    }
}

fn main() {
    let a = Args::parse();
    let hosts = fleet(a.hosts);
    let (reqs, groups) = backlog(a.instances);
    println!(
        "scheduler: {} hosts in {} zones, {} pending instances, {} placement groups, {} rounds",
        hosts.len(),
        ZONES.len(),
        reqs.len(),
        groups.len(),
        a.rounds
    );
    let mut rates = Vec::new();
    for n in 0..a.rounds.max(1) {
        let r = round(&hosts, &reqs, &groups);
        let rate = reqs.len() as f64 / r.secs;
        println!(
            "  round {}: {:.1} ms, {:.0} placements/s ({} placed, {} refused for capacity, {} by group rules)",
            n + 1,
            r.secs * 1000.0,
            rate,
            r.placed,
            r.capacity,
            r.other
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    let met = median >= GOAL_PER_SEC;
    println!(
        "placements per second, median: {median:.0} (goal >= {GOAL_PER_SEC:.0}: {}; {:.1}x Nomad's C1M {NOMAD_C1M_PER_SEC:.0}/s)",
        if met { "met" } else { "MISSED" },
        median / NOMAD_C1M_PER_SEC
    );
    if !met {
        std::process::exit(2);
    }
}
