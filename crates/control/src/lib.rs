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

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use strato_agent_api::AgentClient;
use strato_common::AccountId;
use strato_store::Db;

/// A resource's tags as (key, value) pairs, sorted by key.
pub type Tags = Vec<(String, String)>;

/// Who is calling: the account every query is scoped to.
#[derive(Clone, Debug)]
pub struct Caller {
    pub account: AccountId,
    pub access_key_id: String,
}

/// How long terminated instances stay visible, as on EC2 (about an hour).
pub const TERMINATED_VISIBILITY_MS: i64 = 3_600_000;

/// Settings of the control plane.
#[derive(Clone, Debug)]
pub struct ControlConfig {
    pub region: String,
    pub availability_zones: Vec<String>,
    /// The public URL clients use (shown by DescribeRegions).
    pub endpoint: String,
    /// The most instances (not terminated) one account may have.
    pub max_instances_per_account: i64,
    /// How long terminated instances stay visible, in milliseconds.
    pub terminated_visibility_ms: i64,
    /// The block Elastic IPs are allocated from (its network and broadcast addresses
    /// are never handed out).
    pub public_ip_pool: strato_common::cidr::Ipv4Cidr,
    /// The most Elastic IPs one account may hold (`vpc-max-elastic-ips`).
    pub max_elastic_ips_per_account: usize,
}

/// The default Elastic IP pool: TEST-NET-2, never routed on the internet.
pub const DEFAULT_PUBLIC_IP_POOL: &str = "198.51.100.0/24";

impl ControlConfig {
    pub fn new(region: &str, endpoint: &str) -> Self {
        ControlConfig {
            region: region.to_string(),
            availability_zones: ["a", "b", "c"]
                .iter()
                .map(|s| format!("{region}{s}"))
                .collect(),
            endpoint: endpoint.to_string(),
            max_instances_per_account: 20_000,
            terminated_visibility_ms: TERMINATED_VISIBILITY_MS,
            public_ip_pool: strato_common::cidr::Ipv4Cidr::parse(DEFAULT_PUBLIC_IP_POOL)
                .expect("the default pool is a valid block"),
            max_elastic_ips_per_account: 5,
        }
    }
}

/// The control plane: the store, the host agent and the settings.
pub struct ControlPlane {
    pub db: Arc<Db>,
    pub agent: Arc<dyn AgentClient>,
    pub cfg: ControlConfig,
    /// Accounts whose default network is known to exist, so only an account's first
    /// network call pays for the database check (see [`net::defaults`]).
    network_ready: Mutex<HashSet<AccountId>>,
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
