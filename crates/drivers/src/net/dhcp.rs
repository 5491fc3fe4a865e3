//! DHCP for guests: one dnsmasq per VPC namespace, serving fixed addresses only.
//!
//! dnsmasq answers on every tap (`t*`) of its namespace, with the router address of the
//! tap as the default gateway, and hands out exactly the address the control plane
//! allocated to each MAC (`dhcp-range … static`: an unknown MAC gets nothing). Hosts
//! live in a file dnsmasq re-reads on SIGHUP, so adding an instance needs no restart.
//! The same dnsmasq is the VPC's resolver, as EC2's AmazonProvidedDNS is: DHCP names it
//! (the tap's router address) with the region's private domain as the search domain,
//! and it answers every port's `ip-a-b-c-d` name, bare or in that domain, from a names
//! file re-read with the hosts. It forwards nothing (guests have no internet here), so
//! any other name fails at once rather than after a timeout. dnsmasq outlives the
//! agent like QEMU does; a restarted agent finds it again through its pid file.

use crate::proc::{io_err, signal, wait_gone};
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use strato_agent_api::VpcNetSpec;
use strato_common::cidr::Ipv4Cidr;
use strato_common::Result;

/// How long dnsmasq gets to exit after SIGTERM.
const STOP_WAIT: Duration = Duration::from_secs(2);

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
        std::fs::create_dir_all(&self.dir).map_err(|e| io_err("creating dnsmasq dir", e))?;
        let conf = config(&self.dir, vpc);
        let hosts = hosts(vpc);
        // dnsmasq keeps a lease in memory for a MAC it served, even after the host
        // line is gone, and will not give that address to another MAC until the lease
        // expires. `seen` lists every pair the running dnsmasq may hold a lease for;
        // when an address (or a MAC) changes hands against it, dnsmasq restarts,
        // forgetting its leases (clients renew their static addresses without
        // noticing). That happens as the new instance is launched, before its guest
        // asks, so nobody waits for it.
        let seen = std::fs::read_to_string(self.path("seen")).unwrap_or_default();
        let reassigned = reassigned(&seen, &hosts);
        let conf_changed = write_if_changed(&self.path("dnsmasq.conf"), &conf)?;
        let names_changed = write_if_changed(&self.path("names"), &names(vpc))?;
        let hosts_changed = write_if_changed(&self.path("hosts"), &hosts)? || names_changed;
        let running = self.pid();
        if let Some(pid) = running {
            if !(conf_changed || reassigned) {
                if hosts_changed {
                    let mut all = seen;
                    for l in hosts.lines() {
                        if !all.lines().any(|s| s == l) {
                            all.push_str(l);
                            all.push('\n');
                        }
                    }
                    write_if_changed(&self.path("seen"), &all)?;
                    signal(pid, libc::SIGHUP);
                }
                return Ok(());
            }
            // New subnets need a new configuration, a reassigned address forgetting.
            signal(pid, libc::SIGTERM);
            wait_gone(pid, STOP_WAIT);
        }
        write_if_changed(&self.path("seen"), &hosts)?;
        self.start(ns)
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
            wait_gone(pid, STOP_WAIT);
        }
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing dnsmasq dir", e)),
        }
    }

    /// The pid of this namespace's running dnsmasq, if it runs.
    pub fn pid(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.path("dnsmasq.pid"))
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
    s.push_str("interface=t*\nexcept-interface=lo\nexcept-interface=up0\n");
    s.push_str("no-resolv\nno-poll\nno-hosts\n");
    let _ = writeln!(s, "addn-hosts={}", dir.join("names").display());
    if !vpc.domain.is_empty() {
        // The search domain, and never forwarded (there is nowhere to forward to).
        let _ = writeln!(s, "domain={}\nlocal=/{}/", vpc.domain, vpc.domain);
    }
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

/// The resolver's names: one `IP name name.domain` line per port.
pub fn names(vpc: &VpcNetSpec) -> String {
    let mut s = String::new();
    for p in &vpc.ports {
        if vpc.domain.is_empty() {
            let _ = writeln!(s, "{} {}", p.private_ip, p.hostname);
        } else {
            let _ = writeln!(
                s,
                "{} {} {}.{}",
                p.private_ip, p.hostname, p.hostname, vpc.domain
            );
        }
    }
    s
}

/// True when an address or a MAC of `new` was held by a different partner in `old`.
fn reassigned(old: &str, new: &str) -> bool {
    let pairs = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| {
                let mut it = l.split(',');
                Some((it.next()?.to_string(), it.next()?.to_string()))
            })
            .collect()
    };
    let old = pairs(old);
    pairs(new).iter().any(|(mac, ip)| {
        old.iter()
            .any(|(m, i)| (m == mac && i != ip) || (i == ip && m != mac))
    })
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
    std::fs::write(&tmp, text).map_err(|e| io_err("writing dnsmasq file", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err("writing dnsmasq file", e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_agent_api::PortSpec;

    #[test]
    fn an_address_changing_hands_is_a_reassignment() {
        let old =
            "02:00:00:00:00:01,10.0.1.4,ip-10-0-1-4\n02:00:00:00:00:02,10.0.1.5,ip-10-0-1-5\n";
        // Hosts leaving or arriving with fresh addresses: no.
        assert!(!reassigned(old, "02:00:00:00:00:02,10.0.1.5,ip-10-0-1-5\n"));
        assert!(!reassigned(
            old,
            &format!("{old}02:00:00:00:00:03,10.0.1.6,ip-10-0-1-6\n")
        ));
        // An address another MAC held, or a MAC with another address: yes.
        assert!(reassigned(old, "02:00:00:00:00:03,10.0.1.4,ip-10-0-1-4\n"));
        assert!(reassigned(old, "02:00:00:00:00:01,10.0.1.9,ip-10-0-1-9\n"));
    }

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
            internet: false,
            domain: "ec2.internal".into(),
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
        assert!(!c.contains("port="), "the resolver listens on port 53: {c}");
        assert!(
            c.contains("no-resolv\n") && c.contains("domain=ec2.internal\nlocal=/ec2.internal/\n")
        );
        assert_eq!(
            names(&vpc).lines().next().unwrap(),
            "10.0.1.10 ip-10-0-1-10 ip-10-0-1-10.ec2.internal"
        );
        assert_eq!(
            hosts(&vpc).lines().next().unwrap(),
            "02:00:00:00:00:01,10.0.1.10,ip-10-0-1-10"
        );
    }
}
