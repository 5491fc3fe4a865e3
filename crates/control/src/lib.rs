//! The control plane.
//!
//! One module per resource family. Every operation takes the calling account
//! ([`Caller`]) and touches only that account's rows; every multi-row change is a
//! single store transaction, so a failed or retried call never leaves anything
//! half-made. Instance state advances only from host agent reports
//! ([`ControlPlane::handle_report`]); the API never moves state on a timer.

pub mod accounts;
pub mod catalog;
pub mod credits;
pub mod images;
pub mod instances;
pub mod keypairs;
pub mod lifecycle;
pub mod metadata;
pub mod net;
pub mod page;
pub mod tags;
pub mod volumes;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use strato_agent_api::AgentClient;
use strato_common::AccountId;
use strato_domain::Scope;
use strato_store::Db;

/// A resource's tags as (key, value) pairs, sorted by key.
pub type Tags = Vec<(String, String)>;

/// Who is calling, and where: the account and the region (from the request's
/// credential scope) every regional query is scoped to.
#[derive(Clone, Debug)]
pub struct Caller {
    pub account: AccountId,
    pub access_key_id: String,
    pub region: String,
}

impl Caller {
    /// The (account, region) the caller's regional resources live in.
    pub fn scope(&self) -> Scope {
        Scope::new(self.account.clone(), self.region.clone())
    }

    /// The same caller in another region (for tests and tools).
    pub fn in_region(&self, region: &str) -> Caller {
        Caller {
            region: region.to_string(),
            ..self.clone()
        }
    }
}

/// How long terminated instances stay visible, as on EC2 (about an hour).
pub const TERMINATED_VISIBILITY_MS: i64 = 3_600_000;

/// Settings of the control plane.
#[derive(Clone, Debug)]
pub struct ControlConfig {
    /// The region unsigned tools and `strato env` use, and that data from before
    /// regions belongs to.
    pub default_region: String,
    /// The regions this installation serves (a request scoped to another is refused).
    pub regions: Vec<String>,
    /// The public URL clients use (shown by DescribeRegions).
    pub endpoint: String,
    /// The most instances (not terminated) one account may have.
    pub max_instances_per_account: i64,
    /// How long terminated instances stay visible, in milliseconds.
    pub terminated_visibility_ms: i64,
    /// The block Elastic IPs are allocated from (its network and broadcast addresses
    /// are never handed out).
    pub public_ip_pool: strato_common::cidr::Ipv4Cidr,
    /// The most Elastic IPs one account may hold in one region (`vpc-max-elastic-ips`).
    pub max_elastic_ips_per_account: usize,
    /// The most addresses of the public pool one account may hold in all its regions
    /// together (Elastic IPs and instances' public IPs), so that no account can take
    /// the whole pool; `None` is half the pool.
    pub public_ips_per_account: Option<usize>,
}

/// The default Elastic IP pool: TEST-NET-2, never routed on the internet.
pub const DEFAULT_PUBLIC_IP_POOL: &str = "198.51.100.0/24";

impl ControlConfig {
    /// Settings serving `regions` (every commercial region when empty), with
    /// `default_region` among them.
    pub fn new(default_region: &str, endpoint: &str) -> Self {
        ControlConfig {
            default_region: default_region.to_string(),
            regions: catalog::REGIONS
                .iter()
                .map(|r| r.name.to_string())
                .collect(),
            endpoint: endpoint.to_string(),
            max_instances_per_account: 20_000,
            terminated_visibility_ms: TERMINATED_VISIBILITY_MS,
            public_ip_pool: strato_common::cidr::Ipv4Cidr::parse(DEFAULT_PUBLIC_IP_POOL)
                .expect("the default pool is a valid block"),
            max_elastic_ips_per_account: 5,
            public_ips_per_account: None,
        }
    }

    /// The account's share of the public pool (half the pool unless configured).
    pub fn public_ip_share(&self) -> usize {
        self.public_ips_per_account.unwrap_or_else(|| {
            let usable = self.public_ip_pool.size().saturating_sub(2).max(1);
            (usable as usize / 2).max(1)
        })
    }

    /// Whether this installation serves `region`.
    pub fn serves(&self, region: &str) -> bool {
        self.regions.iter().any(|r| r == region)
    }

    /// The availability zones of `region` (none for a region not served).
    pub fn zones(&self, region: &str) -> Vec<String> {
        if !self.serves(region) {
            return vec![];
        }
        catalog::region_info(region)
            .map(|r| r.zones())
            .unwrap_or_else(|| {
                ["a", "b", "c"]
                    .iter()
                    .map(|s| format!("{region}{s}"))
                    .collect()
            })
    }
}

/// The control plane: the store, the host agent and the settings.
pub struct ControlPlane {
    pub db: Arc<Db>,
    pub agent: Arc<dyn AgentClient>,
    pub cfg: ControlConfig,
    /// Accounts whose default network is known to exist, so only an account's first
    /// network call pays for the database check (see [`net::defaults`]).
    network_ready: Mutex<HashSet<Scope>>,
    /// Wakes the thread that recomputes the host's dataplane (started on first use).
    net_signal: std::sync::OnceLock<Arc<net::dataplane::Signal>>,
}

impl ControlPlane {
    /// A control plane over a store and a host agent.
    pub fn new(db: Arc<Db>, agent: Arc<dyn AgentClient>, cfg: ControlConfig) -> Self {
        ControlPlane {
            db,
            agent,
            cfg,
            network_ready: Mutex::new(HashSet::new()),
            net_signal: std::sync::OnceLock::new(),
        }
    }

    /// Cut-off before which terminated instances are no longer visible.
    pub(crate) fn visible_since(&self) -> i64 {
        strato_common::time_fmt::now_ms() - self.cfg.terminated_visibility_ms
    }
}
