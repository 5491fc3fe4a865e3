//! Placement: which host runs an instance.
//!
//! Pure functions over a view of the hosts (their zone, state, capacity and what is
//! already reserved on them) and of the placement groups (which hosts, zones and
//! partitions their members are in). Nothing here reads a database or talks to a host:
//! the control plane builds a [`Cluster`] from its records inside the launch's
//! transaction, asks [`Cluster::place`] for each instance, and stores the reservation
//! in that same transaction, so two launches never take the same room.
//!
//! The rules, as EC2 states them for its placement groups:
//!
//! - A host takes an instance only when it is [`HostState::Ready`] (not draining,
//!   unreachable or fenced), is in one of the request's zones, and has the vCPUs,
//!   memory, disk and instance-store room free.
//! - **cluster**: one zone (the zone of the group's members, once it has some), packed
//!   onto the hosts that already run members, then onto the least loaded.
//! - **spread**: every member on a distinct host, and at most
//!   [`SPREAD_PER_ZONE`] running members per zone.
//! - **partition**: 1 to [`MAX_PARTITIONS`] partitions; a host serves one partition of
//!   the group only, so partitions share no host. An instance goes to the partition it
//!   names, else to the one with the fewest members.
//! - Otherwise, and to break ties, the least loaded host wins (by the larger of its
//!   vCPU and memory use after the placement), which spreads load across hosts as
//!   Nova's default weighers do; equal hosts are taken in id order, so a placement is
//!   reproducible.
//! - A request may prefer a host (an instance that starts again where its data is):
//!   that host wins whenever it qualifies.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The most running instances a spread group has in one zone (EC2's limit).
pub const SPREAD_PER_ZONE: u32 = 7;
/// The most partitions a partition group has (EC2's limit).
pub const MAX_PARTITIONS: u32 = 7;

/// Amounts of a host's resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub vcpus: u32,
    pub memory_mib: u64,
    /// Room for volumes, GiB.
    pub disk_gib: u64,
    /// Room for instance-store disks, GiB.
    pub instance_store_gib: u64,
}

impl Resources {
    fn fits(&self, free: &Resources) -> bool {
        self.vcpus <= free.vcpus
            && self.memory_mib <= free.memory_mib
            && self.disk_gib <= free.disk_gib
            && self.instance_store_gib <= free.instance_store_gib
    }

    fn plus(&self, o: &Resources) -> Resources {
        Resources {
            vcpus: self.vcpus + o.vcpus,
            memory_mib: self.memory_mib + o.memory_mib,
            disk_gib: self.disk_gib + o.disk_gib,
            instance_store_gib: self.instance_store_gib + o.instance_store_gib,
        }
    }

    fn minus(&self, o: &Resources) -> Resources {
        Resources {
            vcpus: self.vcpus.saturating_sub(o.vcpus),
            memory_mib: self.memory_mib.saturating_sub(o.memory_mib),
            disk_gib: self.disk_gib.saturating_sub(o.disk_gib),
            instance_store_gib: self.instance_store_gib.saturating_sub(o.instance_store_gib),
        }
    }
}

/// Whether a host takes new instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Takes instances.
    Ready,
    /// Runs what it has, takes nothing new (an operator is emptying it).
    Draining,
    /// Missed its heartbeats: nothing is placed on it until it is back or fenced.
    Unreachable,
    /// Declared dead: what it ran is placed elsewhere.
    Fenced,
}

/// One host as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub id: String,
    pub zone: String,
    pub state: HostState,
    /// What the host offers in all.
    pub capacity: Resources,
    /// What the instances placed on it have reserved.
    pub reserved: Resources,
}

impl Host {
    fn free(&self) -> Resources {
        self.capacity.minus(&self.reserved)
    }

    /// The larger of the host's vCPU and memory use, in millionths, once `add` is on it.
    fn load_with(&self, add: &Resources) -> u64 {
        let r = self.reserved.plus(add);
        let share = |used: u64, cap: u64| used.saturating_mul(1_000_000) / cap.max(1);
        share(r.vcpus as u64, self.capacity.vcpus as u64)
            .max(share(r.memory_mib, self.capacity.memory_mib))
    }
}

/// A placement group's strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "strategy")]
pub enum Strategy {
    Cluster,
    Spread,
    Partition { count: u32 },
}

/// Where one member of a placement group is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub host: String,
    pub zone: String,
    /// Its partition (partition groups).
    pub partition: Option<u32>,
    /// Running or about to (spread groups count these per zone).
    pub running: bool,
}

/// What one instance needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The zones it may go to (its subnet's, or the one it names); empty: any zone.
    pub zones: Vec<String>,
    pub need: Resources,
    /// Its placement group, by name, in the [`Cluster`]'s groups.
    pub group: Option<String>,
    /// The partition it names (partition groups).
    pub partition: Option<u32>,
    /// A host it should go back to when that host qualifies.
    pub prefer_host: Option<String>,
}

/// Where an instance goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The host's index in [`Cluster::hosts`].
    pub host: usize,
    /// Its partition (partition groups).
    pub partition: Option<u32>,
}

/// Why an instance cannot be placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoPlacement {
    /// No qualifying host has room (EC2's `InsufficientInstanceCapacity`). `zones` are
    /// the zones that were tried.
    Capacity { zones: Vec<String> },
    /// A spread group already runs [`SPREAD_PER_ZONE`] instances in every zone tried.
    SpreadLimit { zones: Vec<String> },
    /// The partition named is not one of the group's.
    NoSuchPartition { partition: u32, count: u32 },
    /// The request names a group the cluster does not know.
    NoSuchGroup(String),
    /// A cluster group's members are in one zone, which the request does not allow.
    ClusterZone { group_zone: String },
}

impl std::fmt::Display for NoPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoPlacement::Capacity { zones } => write!(
                f,
                "We currently do not have sufficient capacity in {} for the instance: no host there has the vCPUs, memory and disk free",
                zone_list(zones)
            ),
            NoPlacement::SpreadLimit { zones } => write!(
                f,
                "The spread placement group already runs {SPREAD_PER_ZONE} instances in {}, the most one zone may have",
                zone_list(zones)
            ),
            NoPlacement::NoSuchPartition { partition, count } => write!(
                f,
                "The partition number {partition} is not valid: the placement group has partitions 1 to {count}"
            ),
            NoPlacement::NoSuchGroup(g) => write!(f, "The placement group '{g}' is unknown"),
            NoPlacement::ClusterZone { group_zone } => write!(
                f,
                "The cluster placement group's instances are in {group_zone}: a cluster placement group does not span zones"
            ),
        }
    }
}

fn zone_list(zones: &[String]) -> String {
    if zones.is_empty() {
        "any zone".into()
    } else {
        zones.join(", ")
    }
}

/// A placement group's members, indexed the ways placement asks about them.
#[derive(Clone, Debug, Default)]
struct GroupView {
    strategy: Option<Strategy>,
    /// Members per host.
    on_host: HashMap<String, u32>,
    /// Running members per zone.
    running_in_zone: HashMap<String, u32>,
    /// The partition each host serves, and the members of each partition.
    host_partition: HashMap<String, u32>,
    partition_members: HashMap<u32, u32>,
    /// The zone of a cluster group's members.
    zone: Option<String>,
}

impl GroupView {
    fn add(&mut self, m: &Member) {
        *self.on_host.entry(m.host.clone()).or_default() += 1;
        if m.running {
            *self.running_in_zone.entry(m.zone.clone()).or_default() += 1;
        }
        if let Some(p) = m.partition {
            self.host_partition.insert(m.host.clone(), p);
            *self.partition_members.entry(p).or_default() += 1;
        }
        if self.zone.is_none() {
            self.zone = Some(m.zone.clone());
        }
    }
}

/// The hosts and placement groups one launch places into. Each placement reserves its
/// room at once ([`Cluster::place`]), so the instances of one request (or a batch of
/// pending ones) never overcommit a host between them.
#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub hosts: Vec<Host>,
    groups: HashMap<String, GroupView>,
}

impl Cluster {
    /// Hosts, in any order (ties go to the lowest id).
    pub fn new(mut hosts: Vec<Host>) -> Cluster {
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        Cluster {
            hosts,
            groups: HashMap::new(),
        }
    }

    /// Adds a placement group and where its members are.
    pub fn add_group(&mut self, name: &str, strategy: Strategy, members: &[Member]) {
        let mut g = GroupView {
            strategy: Some(strategy),
            ..Default::default()
        };
        for m in members {
            g.add(m);
        }
        self.groups.insert(name.to_string(), g);
    }

    /// Chooses a host for `req` and reserves its room there (and its place in its
    /// group), or says why none qualifies; a refusal changes nothing.
    pub fn place(&mut self, req: &Request) -> Result<Placement, NoPlacement> {
        let chosen = self.choose(req)?;
        let host = &mut self.hosts[chosen.host];
        host.reserved = host.reserved.plus(&req.need);
        if let Some(name) = &req.group {
            let member = Member {
                host: host.id.clone(),
                zone: host.zone.clone(),
                partition: chosen.partition,
                running: true,
            };
            if let Some(g) = self.groups.get_mut(name) {
                g.add(&member);
            }
        }
        Ok(chosen)
    }

    /// [`Cluster::place`] without reserving anything.
    pub fn choose(&self, req: &Request) -> Result<Placement, NoPlacement> {
        let group = match &req.group {
            Some(name) => Some(
                self.groups
                    .get(name)
                    .ok_or_else(|| NoPlacement::NoSuchGroup(name.clone()))?,
            ),
            None => None,
        };
        let strategy = group.and_then(|g| g.strategy);
        let mut zones = req.zones.clone();
        if let (Some(Strategy::Cluster), Some(gz)) = (strategy, group.and_then(|g| g.zone.clone()))
        {
            if !zones.is_empty() && !zones.contains(&gz) {
                return Err(NoPlacement::ClusterZone { group_zone: gz });
            }
            zones = vec![gz];
        }
        let in_zone = |h: &Host| zones.is_empty() || zones.contains(&h.zone);
        if let (Some(Strategy::Spread), Some(g)) = (strategy, group) {
            let open = |z: &str| g.running_in_zone.get(z).copied().unwrap_or(0) < SPREAD_PER_ZONE;
            let any_open = if zones.is_empty() {
                self.hosts.iter().any(|h| open(&h.zone))
            } else {
                zones.iter().any(|z| open(z))
            };
            if !any_open {
                return Err(NoPlacement::SpreadLimit { zones });
            }
        }
        // The partitions to try, in order.
        let partitions: Vec<Option<u32>> = match (strategy, group) {
            (Some(Strategy::Partition { count }), Some(g)) => match req.partition {
                Some(p) if p == 0 || p > count => {
                    return Err(NoPlacement::NoSuchPartition {
                        partition: p,
                        count,
                    })
                }
                Some(p) => vec![Some(p)],
                None => {
                    let mut ps: Vec<u32> = (1..=count).collect();
                    ps.sort_by_key(|p| (g.partition_members.get(p).copied().unwrap_or(0), *p));
                    ps.into_iter().map(Some).collect()
                }
            },
            _ => vec![None],
        };
        for partition in partitions {
            let qualifies = |h: &Host| -> bool {
                if h.state != HostState::Ready || !in_zone(h) || !req.need.fits(&h.free()) {
                    return false;
                }
                let Some(g) = group else { return true };
                match strategy {
                    Some(Strategy::Spread) => {
                        !g.on_host.contains_key(&h.id)
                            && g.running_in_zone.get(&h.zone).copied().unwrap_or(0)
                                < SPREAD_PER_ZONE
                    }
                    Some(Strategy::Partition { .. }) => match g.host_partition.get(&h.id) {
                        Some(p) => Some(*p) == partition,
                        None => true,
                    },
                    _ => true,
                }
            };
            if let Some(pref) = &req.prefer_host {
                if let Some(i) = self.hosts.iter().position(|h| &h.id == pref) {
                    if qualifies(&self.hosts[i]) {
                        return Ok(Placement { host: i, partition });
                    }
                }
            }
            // Lowest key wins: cluster members first (most members), then least load.
            let key = |h: &Host| -> (i64, u64) {
                let packed = match (strategy, group) {
                    (Some(Strategy::Cluster), Some(g)) => {
                        -(g.on_host.get(&h.id).copied().unwrap_or(0) as i64)
                    }
                    _ => 0,
                };
                (packed, h.load_with(&req.need))
            };
            let mut best: Option<(usize, (i64, u64))> = None;
            for (i, h) in self.hosts.iter().enumerate() {
                if !qualifies(h) {
                    continue;
                }
                let k = key(h);
                if best.is_none_or(|(_, bk)| k < bk) {
                    best = Some((i, k));
                }
            }
            if let Some((host, _)) = best {
                return Ok(Placement { host, partition });
            }
        }
        Err(NoPlacement::Capacity { zones })
    }
}

#[cfg(test)]
mod tests;
