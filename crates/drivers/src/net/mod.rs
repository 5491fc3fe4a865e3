//! Host networking building blocks for VPCs (the dataplane is being built on these).
//!
//! Each VPC gets a network namespace of its own (`strato-<vpc-id>`) holding a bridge
//! (`br0`) that its instances' interfaces attach to. Because every VPC lives in its own
//! namespace, two VPCs may use the same CIDR and still never see each other's packets:
//! isolation comes from the kernel, not from filtering rules.
//!
//! Everything is done with iproute2 (`ip`), the tool every Linux host has; each step is
//! idempotent so a reconcile loop can repeat it after a crash.

use std::process::Command;
use strato_common::{Error, Result};

/// Runs `ip` with `args`; `ip` errors become internal errors carrying its message.
pub fn ip(args: &[&str]) -> Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| Error::Internal(format!("running ip: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Internal(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Runs `ip` inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

/// The namespace name of a VPC (`strato-vpc-…`, within the 255-byte name limit).
pub fn vpc_namespace(vpc_id: &str) -> String {
    format!("strato-{vpc_id}")
}

/// All namespaces on the host.
pub fn namespaces() -> Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// A VPC's namespace with its bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcNet {
    pub namespace: String,
}

impl VpcNet {
    /// Creates (or finds) the namespace and its bridge, up, with `gateway/prefix` on the
    /// bridge as the VPC router address. Idempotent.
    pub fn ensure(vpc_id: &str, gateway_cidr: &str) -> Result<VpcNet> {
        let namespace = vpc_namespace(vpc_id);
        if !namespaces()?.contains(&namespace) {
            ip(&["netns", "add", &namespace])?;
        }
        ip_in(&namespace, &["link", "set", "lo", "up"])?;
        if ip_in(&namespace, &["link", "show", "br0"]).is_err() {
            ip_in(&namespace, &["link", "add", "br0", "type", "bridge"])?;
        }
        let addrs = ip_in(&namespace, &["-o", "addr", "show", "dev", "br0"])?;
        if !addrs.contains(&format!(" {gateway_cidr} ")) {
            ip_in(&namespace, &["addr", "add", gateway_cidr, "dev", "br0"])?;
        }
        ip_in(&namespace, &["link", "set", "br0", "up"])?;
        Ok(VpcNet { namespace })
    }

    /// Attaches a host-side link (a VM's tap, or a veth end) to the VPC: moves it into
    /// the namespace and enslaves it to the bridge. Idempotent.
    pub fn attach(&self, link: &str) -> Result<()> {
        if ip_in(&self.namespace, &["link", "show", link]).is_err() {
            ip(&["link", "set", link, "netns", &self.namespace])?;
        }
        ip_in(&self.namespace, &["link", "set", link, "master", "br0"])?;
        ip_in(&self.namespace, &["link", "set", link, "up"])?;
        Ok(())
    }

    /// Removes a link from the VPC (deleting it). Idempotent.
    pub fn detach(&self, link: &str) -> Result<()> {
        match ip_in(&self.namespace, &["link", "del", link]) {
            Ok(_) => Ok(()),
            Err(_) if ip_in(&self.namespace, &["link", "show", link]).is_err() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes the namespace and everything in it. Idempotent.
    pub fn remove(&self) -> Result<()> {
        if namespaces()?.contains(&self.namespace) {
            ip(&["netns", "del", &self.namespace])?;
        }
        Ok(())
    }
}
