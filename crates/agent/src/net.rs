//! The host's dataplane reconciler.
//!
//! Holds the newest [`HostNetSpec`] from the control plane and converges the host to
//! it on its own thread (every step shells out to `ip`, `nft` or `dnsmasq`): per VPC a
//! namespace with its uplink, public addresses, nftables rules, dnsmasq and a metadata
//! service listener. A new spec is applied at once; every few seconds the thread also
//! checks that dnsmasq and the metadata listeners still run, and every half minute it
//! re-applies everything (repairing what an operator or a crash broke).
//!
//! Taps belong to the hypervisor driver (they live and die with the VM); this side
//! removes a VPC's namespace only once the VPC is gone from the spec *and* no tap is
//! left in it. Namespaces it ever created are remembered in `owned.json` so that a
//! restarted agent still cleans up after itself but never touches another Strato's
//! namespaces on the same host. Nothing here is needed for running guests to keep
//! working across an agent restart: the kernel keeps the namespaces, rules and
//! routes, dnsmasq keeps running, and only the metadata listeners are re-opened.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use strato_agent_api::{HostNetSpec, VpcNetSpec};
use strato_common::Result;
use strato_drivers::net::{self, dhcp::Dhcp, nft};

/// How often liveness (dnsmasq, metadata listeners) is checked without a new spec.
const CHECK_EVERY: Duration = Duration::from_secs(3);
/// How often everything is re-applied without a new spec.
const REPAIR_EVERY: Duration = Duration::from_secs(30);

/// Opens the metadata service inside a VPC namespace.
pub trait MetadataServer: Send + Sync {
    /// Starts serving 169.254.169.254:80 inside namespace `ns` for VPC `vpc_id`; the
    /// returned handle stops it when aborted.
    fn serve(&self, ns: &str, vpc_id: &str) -> Result<tokio::task::JoinHandle<()>>;
}

/// Where the VPC uplinks lead and where state is kept.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Directory for dnsmasq files and `owned.json`.
    pub state_dir: PathBuf,
    /// The namespace VPC uplinks lead to (`None`: the host's own).
    pub uplink_ns: Option<String>,
}

struct Applied {
    spec: VpcNetSpec,
    at: Instant,
    ruleset: String,
    metadata: Option<tokio::task::JoinHandle<()>>,
}

/// The dataplane reconciler of one host.
pub struct NetAgent {
    tx: Mutex<mpsc::Sender<HostNetSpec>>,
}

impl NetAgent {
    /// Starts the reconciler thread.
    pub fn start(cfg: NetConfig, metadata: Option<Arc<dyn MetadataServer>>) -> Arc<NetAgent> {
        let (tx, rx) = mpsc::channel();
        let worker = Worker {
            cfg,
            metadata,
            applied: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("strato-net".into())
            .spawn(move || worker.run(rx))
            .expect("spawning the dataplane thread");
        Arc::new(NetAgent { tx: Mutex::new(tx) })
    }

    /// Replaces the desired dataplane; applied promptly by the reconciler thread.
    pub fn apply(&self, spec: HostNetSpec) {
        let _ = self.tx.lock().unwrap_or_else(|p| p.into_inner()).send(spec);
    }
}

struct Worker {
    cfg: NetConfig,
    metadata: Option<Arc<dyn MetadataServer>>,
    applied: HashMap<String, Applied>,
}

impl Worker {
    fn run(mut self, rx: mpsc::Receiver<HostNetSpec>) {
        let mut desired: Option<HostNetSpec> = None;
        loop {
            match rx.recv_timeout(CHECK_EVERY) {
                Ok(mut spec) => {
                    // Only the newest of a burst matters.
                    while let Ok(newer) = rx.try_recv() {
                        spec = newer;
                    }
                    desired = Some(spec);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            // Until the control plane has said what should exist, nothing is removed.
            if let Some(spec) = &desired {
                self.reconcile(spec);
            }
        }
    }

    fn owned_path(&self) -> PathBuf {
        self.cfg.state_dir.join("owned.json")
    }

    fn owned(&self) -> BTreeSet<String> {
        std::fs::read(self.owned_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_owned(&self, owned: &BTreeSet<String>) {
        let _ = std::fs::create_dir_all(&self.cfg.state_dir);
        let tmp = self.owned_path().with_extension("tmp");
        let ok = serde_json::to_vec(owned)
            .ok()
            .and_then(|b| std::fs::write(&tmp, b).ok())
            .and_then(|_| std::fs::rename(&tmp, self.owned_path()).ok());
        if ok.is_none() {
            tracing::error!("could not record the dataplane's namespaces");
        }
    }

    fn reconcile(&mut self, spec: &HostNetSpec) {
        let mut owned = self.owned();
        let wanted: BTreeSet<String> = spec
            .vpcs
            .iter()
            .map(|v| net::vpc_namespace(&v.vpc_id))
            .collect();
        if !wanted.is_subset(&owned) {
            // Recorded before creating, so a crash in between never loses track.
            owned.extend(wanted.iter().cloned());
            self.save_owned(&owned);
        }
        for vpc in &spec.vpcs {
            if let Err(e) = self.apply_vpc(vpc) {
                tracing::error!(vpc = %vpc.vpc_id, error = %e, "could not apply the VPC dataplane");
                self.applied.remove(&vpc.vpc_id);
            }
        }
        let mut changed = false;
        for ns in owned.clone() {
            if wanted.contains(&ns) {
                continue;
            }
            match self.remove_namespace(&ns) {
                Ok(true) => {
                    owned.remove(&ns);
                    changed = true;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(namespace = %ns, error = %e, "could not remove a VPC namespace")
                }
            }
        }
        if changed {
            self.save_owned(&owned);
        }
    }

    fn dhcp(&self, ns: &str) -> Dhcp {
        Dhcp::new(self.cfg.state_dir.join(ns))
    }

    fn apply_vpc(&mut self, vpc: &VpcNetSpec) -> Result<()> {
        let ns = net::vpc_namespace(&vpc.vpc_id);
        let fresh = self
            .applied
            .get(&vpc.vpc_id)
            .is_some_and(|a| &a.spec == vpc && a.at.elapsed() < REPAIR_EVERY);
        if !fresh {
            net::with_namespace_lock(|| net::ensure_vpc_namespace(&vpc.vpc_id))?;
            let uplink = self.cfg.uplink_ns.as_deref();
            if vpc.internet {
                net::ensure_uplink(&ns, &vpc.vpc_id, uplink)?;
                let want: BTreeSet<&str> = vpc
                    .ports
                    .iter()
                    .filter_map(|p| p.public_ip.as_deref())
                    .collect();
                let have = net::public_addresses(&ns)?;
                for ip in &have {
                    if !want.contains(ip.as_str()) {
                        net::remove_public_address(&ns, &vpc.vpc_id, uplink, ip)?;
                    }
                }
                for ip in want {
                    net::add_public_address(&ns, &vpc.vpc_id, uplink, ip)?;
                }
            } else {
                net::remove_uplink(&ns)?;
            }
            let ruleset = nft::render(vpc);
            let prev = self.applied.get(&vpc.vpc_id);
            // Rules are reloaded when they change, and on repair passes (cheap and
            // atomic; conntrack keeps established flows).
            if prev.is_none_or(|a| a.ruleset != ruleset || a.at.elapsed() >= REPAIR_EVERY) {
                nft::load(&ns, &ruleset)?;
            }
            let metadata = self.applied.remove(&vpc.vpc_id).and_then(|a| a.metadata);
            self.applied.insert(
                vpc.vpc_id.clone(),
                Applied {
                    spec: vpc.clone(),
                    at: Instant::now(),
                    ruleset,
                    metadata,
                },
            );
        }
        self.dhcp(&ns).ensure(&ns, vpc)?;
        if let Some(server) = &self.metadata {
            let a = self.applied.get_mut(&vpc.vpc_id).expect("applied above");
            if a.metadata.as_ref().is_none_or(|h| h.is_finished()) {
                a.metadata = Some(server.serve(&ns, &vpc.vpc_id)?);
            }
        }
        Ok(())
    }

    /// Removes a namespace that is no longer wanted, once no tap is left in it.
    /// Returns whether it is gone.
    fn remove_namespace(&mut self, ns: &str) -> Result<bool> {
        net::with_namespace_lock(|| self.remove_namespace_locked(ns))
    }

    fn remove_namespace_locked(&mut self, ns: &str) -> Result<bool> {
        if !net::namespaces()?.iter().any(|n| n == ns) {
            self.dhcp(ns).remove()?;
            return Ok(true);
        }
        if !net::taps_in(ns)?.is_empty() {
            return Ok(false);
        }
        let vpc_id = ns.trim_start_matches("strato-").to_string();
        if let Some(a) = self.applied.remove(&vpc_id) {
            if let Some(h) = a.metadata {
                h.abort();
            }
        }
        self.dhcp(ns).remove()?;
        // The uplink's far end and the public routes through it go with the namespace.
        net::remove_namespace(ns)?;
        tracing::info!(namespace = %ns, "removed VPC namespace");
        Ok(true)
    }
}
