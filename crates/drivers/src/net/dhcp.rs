//! DHCP for guests: one dnsmasq per VPC namespace, serving fixed addresses only.
//!
//! dnsmasq answers on every tap (`t*`) of its namespace, with the router address of the
//! tap as the default gateway, and hands out exactly the address the control plane
//! allocated to each MAC (`dhcp-range … static`: an unknown MAC gets nothing). Hosts
//! live in a file dnsmasq re-reads on SIGHUP, so adding an instance needs no restart.
//! DNS is off (`port=0`). dnsmasq outlives the agent like QEMU does; a restarted agent
//! finds it again through its pid file.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use strato_agent_api::VpcNetSpec;
use strato_common::cidr::Ipv4Cidr;
use strato_common::{Error, Result};

/// The files of one namespace's dnsmasq.
pub struct Dhcp {
    dir: PathBuf,
}

impl Dhcp {
    /// dnsmasq state for a namespace lives in `dir` (created on demand).
    pub fn new(dir: impl Into<PathBuf>) -> Dhcp {
        Dhcp { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Brings dnsmasq in namespace `ns` to serve `vpc`'s ports: rewrites its files
    /// when they change, starts it if it is not running, and makes it re-read its hosts.
    pub fn ensure(&self, ns: &str, vpc: &VpcNetSpec) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating dnsmasq dir", e))?;
        let conf = config(&self.dir, vpc);
        let hosts = hosts(vpc);
        let old_hosts = std::fs::read_to_string(self.path("hosts")).unwrap_or_default();
        // dnsmasq keeps a lease in memory for a MAC that left, and will not give its
        // address to the next instance that gets it: a removed host needs a restart
        // (clients then renew their static addresses without noticing).
        let host_removed = old_hosts.lines().any(|l| !hosts.lines().any(|n| n == l));
        let conf_changed = write_if_changed(&self.path("dnsmasq.conf"), &conf)?;
        let hosts_changed = write_if_changed(&self.path("hosts"), &hosts)?;
        match self.pid() {
            Some(pid) if conf_changed || host_removed => {
                // New subnets need a new configuration, a removed host forgetting.
                signal(pid, libc::SIGTERM);
                wait_gone(pid);
                self.start(ns)
            }
            Some(pid) if hosts_changed => {
                signal(pid, libc::SIGHUP);
                Ok(())
            }
            Some(_) => Ok(()),
            None => self.start(ns),
        }
    }

    fn start(&self, ns: &str) -> Result<()> {
        let conf = self.path("dnsmasq.conf");
        super::run_in(
            Some(ns),
            "dnsmasq",
            &[&format!("--conf-file={}", conf.display())],
            None,
        )?;
        Ok(())
    }

    /// Stops the namespace's dnsmasq and removes its files. Idempotent.
    pub fn remove(&self) -> Result<()> {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGTERM);
            wait_gone(pid);
        }
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("removing dnsmasq dir", e)),
        }
    }

    /// The pid of this namespace's running dnsmasq, if it runs.
    pub fn pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.path("dnsmasq.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let conf = self.path("dnsmasq.conf").display().to_string();
        let ours = String::from_utf8_lossy(&cmdline).contains(&conf);
        ours.then_some(pid)
    }
}

/// The dnsmasq configuration for a VPC: one static range per subnet with ports here.
pub fn config(dir: &Path, vpc: &VpcNetSpec) -> String {
    let subnets: BTreeSet<&str> = vpc.ports.iter().map(|p| p.subnet_cidr.as_str()).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Written by Strato for {}; rewritten on every change.",
        vpc.vpc_id
    );
    s.push_str("port=0\ninterface=t*\nexcept-interface=lo\nexcept-interface=up0\n");
    s.push_str("dhcp-authoritative\nleasefile-ro\n");
    for cidr in subnets {
        if let Some(c) = Ipv4Cidr::parse(cidr) {
            let _ = writeln!(
                s,
                "dhcp-range={},static,{},3600",
                c.network(),
                netmask(c.prefix_len())
            );
        }
    }
    let _ = writeln!(s, "dhcp-hostsfile={}", dir.join("hosts").display());
    let _ = writeln!(s, "pid-file={}", dir.join("dnsmasq.pid").display());
    let _ = writeln!(s, "log-facility={}", dir.join("dnsmasq.log").display());
    s
}

/// One `MAC,IP,hostname` line per port.
pub fn hosts(vpc: &VpcNetSpec) -> String {
    let mut s = String::new();
    for p in &vpc.ports {
        let _ = writeln!(
            s,
            "{},{},{}",
            p.mac.to_ascii_lowercase(),
            p.private_ip,
            p.hostname
        );
    }
    s
}

fn netmask(prefix: u8) -> std::net::Ipv4Addr {
    let bits = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    };
    std::net::Ipv4Addr::from(bits)
}

fn write_if_changed(path: &Path, text: &str) -> Result<bool> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(false);
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| io("writing dnsmasq file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("writing dnsmasq file", e))?;
    Ok(true)
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn wait_gone(pid: i32) {
    for _ in 0..100 {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn io(what: &str, e: std::io::Error) -> Error {
    Error::Internal(format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_agent_api::PortSpec;

    #[test]
    fn one_static_range_per_subnet_and_one_host_per_port() {
        let port = |ip: &str, subnet: &str, mac: &str| PortSpec {
            interface_id: "eni-0123456789abcdef0".into(),
            mac: mac.into(),
            private_ip: ip.into(),
            subnet_cidr: subnet.into(),
            public_ip: None,
            hostname: format!("ip-{}", ip.replace('.', "-")),
            ingress: vec![],
            egress: vec![],
        };
        let vpc = VpcNetSpec {
            vpc_id: "vpc-1".into(),
            cidr: "10.0.0.0/16".into(),
            internet: false,
            ports: vec![
                port("10.0.1.10", "10.0.1.0/24", "02:00:00:00:00:01"),
                port("10.0.1.11", "10.0.1.0/24", "02:00:00:00:00:02"),
                port("10.0.128.4", "10.0.128.0/20", "02:00:00:00:00:03"),
            ],
        };
        let c = config(Path::new("/d"), &vpc);
        assert!(c.contains("dhcp-range=10.0.1.0,static,255.255.255.0,3600\n"));
        assert!(c.contains("dhcp-range=10.0.128.0,static,255.255.240.0,3600\n"));
        assert_eq!(c.matches("dhcp-range").count(), 2);
        assert!(c.contains("port=0\n"));
        assert_eq!(
            hosts(&vpc).lines().next().unwrap(),
            "02:00:00:00:00:01,10.0.1.10,ip-10-0-1-10"
        );
    }
}
