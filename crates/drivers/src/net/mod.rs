//! The VPC dataplane on one host: namespaces, ports, NAT, filtering and DHCP.
//!
//! Every VPC with instances on the host gets a network namespace of its own
//! (`strato-<vpc-id>`) that plays the VPC's router. Isolation between VPCs (even with
//! the same CIDR) comes from the kernel: their packets never share a namespace.
//!
//! The namespace is a *routed* network, not a bridge: each instance interface is a tap
//! in the namespace carrying the subnet's router address (the subnet's first host
//! address, as in EC2, with `noprefixroute` so the same address can sit on many taps)
//! and a /32 route to the instance's private address. Proxy ARP on the taps lets
//! instances of one subnet reach each other through the router. Every tap is an L2
//! segment of its own, so a guest can only ever talk to the router, and every packet
//! it sends passes the namespace's nftables rules ([`nft`]): anti-spoofing, then the
//! security groups of both ends, statefully.
//!
//! With an internet gateway the namespace gets an uplink: a veth pair whose far end
//! (`u<hex>`) sits in the uplink namespace (the host's own by default). Public and
//! Elastic IPs are local addresses of the uplink (`up0`) and are NATed 1:1 to the
//! private addresses; the uplink namespace routes each public /32 to the VPC's veth.
//!
//! Everything is done with iproute2 and nft; each step is idempotent so the agent can
//! repeat it after a crash.

pub mod dhcp;
pub mod nft;

use std::io::Write;
use std::process::{Command, Stdio};
use strato_common::cidr::Ipv4Cidr;
use strato_common::{Error, Result};

/// The link-local address of the uplink namespace's end of every VPC uplink (the
/// VPC's default gateway towards the internet gateway).
pub const UPLINK_GATEWAY: &str = "169.254.0.1";
/// The VPC namespace's own address on its uplink.
pub const UPLINK_LOCAL: &str = "169.254.0.2";
/// The uplink's name inside a VPC namespace.
pub const UPLINK_DEV: &str = "up0";
/// Where the instance metadata service answers in every VPC namespace.
pub const METADATA_ADDR: &str = "169.254.169.254";

/// Runs `ip` with `args`; `ip` errors become internal errors carrying its message.
pub fn ip(args: &[&str]) -> Result<String> {
    run("ip", args, None)
}

/// Runs `ip` inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    ip(&full)
}

/// Runs `ip` in `ns`, or in the host's namespace when `ns` is `None`.
pub fn ip_at(ns: Option<&str>, args: &[&str]) -> Result<String> {
    match ns {
        Some(ns) => ip_in(ns, args),
        None => ip(args),
    }
}

/// Runs `program args` (inside namespace `ns` when given), feeding `stdin` if any.
pub fn run_in(
    ns: Option<&str>,
    program: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    match ns {
        Some(ns) => {
            let mut full = vec!["netns", "exec", ns, program];
            full.extend_from_slice(args);
            run("ip", &full, stdin)
        }
        None => run(program, args, stdin),
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Internal(format!("running {program}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| Error::Internal(format!("writing to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Internal(format!("running {program}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Internal(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Writes a sysctl of namespace `ns` (a path under /proc/sys, with dots).
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    run_in(
        Some(ns),
        "sh",
        &["-c", &format!("echo {value} > {path}")],
        None,
    )
    .map(|_| ())
}

/// The namespace name of a VPC (`strato-vpc-…`).
pub fn vpc_namespace(vpc_id: &str) -> String {
    format!("strato-{vpc_id}")
}

/// The uplink's far end in the uplink namespace: `u` and the VPC id's first 14 hex
/// digits (within IFNAMSIZ).
pub fn uplink_peer(vpc_id: &str) -> String {
    let hex = vpc_id.trim_start_matches("vpc-");
    format!("u{}", &hex[..hex.len().min(14)])
}

/// All namespaces on the host.
pub fn namespaces() -> Result<Vec<String>> {
    Ok(ip(&["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// True when link `dev` exists in `ns` (the host's namespace for `None`).
pub fn link_exists(ns: Option<&str>, dev: &str) -> bool {
    ip_at(ns, &["link", "show", "dev", dev]).is_ok()
}

/// The router address of a subnet with its prefix, e.g. `10.0.1.1/24` for
/// `10.0.1.0/24`.
pub fn router_address(subnet_cidr: &str) -> Result<String> {
    let c = Ipv4Cidr::parse(subnet_cidr)
        .ok_or_else(|| Error::Internal(format!("bad subnet CIDR {subnet_cidr}")))?;
    let router = c
        .nth(1)
        .ok_or_else(|| Error::Internal(format!("subnet {subnet_cidr} has no router address")))?;
    Ok(format!("{router}/{}", c.prefix_len()))
}

/// Serialises what creates or removes VPC namespaces and their taps within this
/// process: the hypervisor driver (a VM's namespace and taps, at start) and the
/// dataplane reconciler (namespaces, and removing one once no tap is left) would
/// otherwise race, one creating a tap in a namespace the other is deleting.
pub fn with_namespace_lock<T>(f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    f()
}

/// Creates (or finds) a VPC's namespace, set up as a router with the metadata address
/// on its loopback. Idempotent. Callers hold [`with_namespace_lock`].
pub fn ensure_vpc_namespace(vpc_id: &str) -> Result<String> {
    let ns = vpc_namespace(vpc_id);
    if !namespaces()?.contains(&ns) {
        // Another Strato process cannot be making this VPC's namespace, but an
        // earlier crash may have left its file: "exists" is success.
        if let Err(e) = ip(&["netns", "add", &ns]) {
            if !e.to_string().contains("File exists") {
                return Err(e);
            }
        }
    }
    ip_in(&ns, &["link", "set", "lo", "up"])?;
    let lo = ip_in(&ns, &["-o", "-4", "addr", "show", "dev", "lo"])?;
    if !lo.contains(&format!(" {METADATA_ADDR}/32 ")) {
        ip_in(
            &ns,
            &["addr", "add", &format!("{METADATA_ADDR}/32"), "dev", "lo"],
        )?;
    }
    sysctl(&ns, "net.ipv4.ip_forward", "1")?;
    // The VPC dataplane is IPv4 only: no router advertisements, no link-local chatter.
    sysctl(&ns, "net.ipv6.conf.all.disable_ipv6", "1")?;
    sysctl(&ns, "net.ipv6.conf.default.disable_ipv6", "1")?;
    Ok(ns)
}

/// Creates a tap for a VM interface inside `ns`, owned by `uid` so an unprivileged
/// QEMU can attach to it. Idempotent.
pub fn ensure_tap(ns: &str, tap: &str, uid: u32) -> Result<()> {
    if !link_exists(Some(ns), tap) {
        ip_in(
            ns,
            &[
                "tuntap",
                "add",
                "dev",
                tap,
                "mode",
                "tap",
                "user",
                &uid.to_string(),
            ],
        )?;
    }
    Ok(())
}

/// Makes `dev` (a tap, or a veth in tests) the port of `private_ip` in subnet
/// `subnet_cidr`: router address on it, proxy ARP, a /32 route to the instance. Idempotent.
pub fn configure_port(ns: &str, dev: &str, subnet_cidr: &str, private_ip: &str) -> Result<()> {
    let router = router_address(subnet_cidr)?;
    let addrs = ip_in(ns, &["-o", "-4", "addr", "show", "dev", dev])?;
    if !addrs.contains(&format!(" {router} ")) {
        ip_in(ns, &["addr", "add", &router, "dev", dev, "noprefixroute"])?;
    }
    sysctl(ns, &format!("net.ipv4.conf.{dev}.proxy_arp"), "1")?;
    ip_in(ns, &["link", "set", dev, "up"])?;
    ip_in(
        ns,
        &["route", "replace", &format!("{private_ip}/32"), "dev", dev],
    )?;
    Ok(())
}

/// Removes a port's device. Idempotent.
pub fn remove_port(ns: &str, dev: &str) -> Result<()> {
    if namespaces()?.iter().any(|n| n == ns) && link_exists(Some(ns), dev) {
        ip_in(ns, &["link", "del", dev])?;
    }
    Ok(())
}

/// The tap devices in `ns` (what keeps a VPC namespace alive on the host).
pub fn taps_in(ns: &str) -> Result<Vec<String>> {
    Ok(ip_in(ns, &["-o", "link", "show", "type", "tun"])?
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|s| s.trim().split('@').next().unwrap_or("").to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Connects a VPC namespace to the uplink namespace (`None`: the host's own) with a
/// veth pair and a default route through it. Idempotent.
pub fn ensure_uplink(ns: &str, vpc_id: &str, uplink_ns: Option<&str>) -> Result<()> {
    let peer = uplink_peer(vpc_id);
    if !link_exists(Some(ns), UPLINK_DEV) {
        // Created inside the VPC namespace, then the far end is moved out.
        if link_exists(uplink_ns, &peer) {
            ip_at(uplink_ns, &["link", "del", &peer])?;
        }
        ip_in(
            ns,
            &[
                "link", "add", UPLINK_DEV, "type", "veth", "peer", "name", &peer,
            ],
        )?;
        // `ip link set netns` takes a name, or a pid: PID 1 lives in the host's namespace.
        ip_in(
            ns,
            &["link", "set", &peer, "netns", uplink_ns.unwrap_or("1")],
        )?;
    }
    let local = format!("{UPLINK_LOCAL}/32");
    if !ip_in(ns, &["-o", "-4", "addr", "show", "dev", UPLINK_DEV])?.contains(&format!(" {local} "))
    {
        ip_in(ns, &["addr", "add", &local, "dev", UPLINK_DEV])?;
    }
    ip_in(ns, &["link", "set", UPLINK_DEV, "up"])?;
    ip_in(
        ns,
        &[
            "route",
            "replace",
            "default",
            "via",
            UPLINK_GATEWAY,
            "dev",
            UPLINK_DEV,
            "onlink",
        ],
    )?;
    let gw = format!("{UPLINK_GATEWAY}/32");
    if !ip_at(uplink_ns, &["-o", "-4", "addr", "show", "dev", &peer])?.contains(&format!(" {gw} "))
    {
        ip_at(
            uplink_ns,
            &["addr", "add", &gw, "dev", &peer, "noprefixroute"],
        )?;
    }
    ip_at(uplink_ns, &["link", "set", &peer, "up"])?;
    Ok(())
}

/// Removes a VPC's uplink (and with it every public route through it). Idempotent.
pub fn remove_uplink(ns: &str) -> Result<()> {
    if link_exists(Some(ns), UPLINK_DEV) {
        ip_in(ns, &["link", "del", UPLINK_DEV])?;
    }
    Ok(())
}

/// The public addresses currently on a VPC's uplink.
pub fn public_addresses(ns: &str) -> Result<Vec<String>> {
    if !link_exists(Some(ns), UPLINK_DEV) {
        return Ok(vec![]);
    }
    Ok(ip_in(ns, &["-o", "-4", "addr", "show", "dev", UPLINK_DEV])?
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.find(|w| *w == "inet")?;
            let a = it.next()?;
            let a = a.strip_suffix("/32")?;
            (a != UPLINK_LOCAL).then(|| a.to_string())
        })
        .collect())
}

/// Makes `public_ip` answer on a VPC's uplink and routes it there from the uplink
/// namespace. Idempotent.
pub fn add_public_address(
    ns: &str,
    vpc_id: &str,
    uplink_ns: Option<&str>,
    public_ip: &str,
) -> Result<()> {
    let a = format!("{public_ip}/32");
    if !public_addresses(ns)?.iter().any(|p| p == public_ip) {
        ip_in(ns, &["addr", "add", &a, "dev", UPLINK_DEV])?;
    }
    ip_at(
        uplink_ns,
        &["route", "replace", &a, "dev", &uplink_peer(vpc_id)],
    )?;
    Ok(())
}

/// Withdraws a public address from a VPC's uplink. Idempotent.
pub fn remove_public_address(
    ns: &str,
    vpc_id: &str,
    uplink_ns: Option<&str>,
    public_ip: &str,
) -> Result<()> {
    let a = format!("{public_ip}/32");
    let _ = ip_at(
        uplink_ns,
        &["route", "del", &a, "dev", &uplink_peer(vpc_id)],
    );
    if public_addresses(ns)?.iter().any(|p| p == public_ip) {
        ip_in(ns, &["addr", "del", &a, "dev", UPLINK_DEV])?;
    }
    Ok(())
}

/// Deletes a namespace and everything in it (taps, uplink, rules). Idempotent.
pub fn remove_namespace(ns: &str) -> Result<()> {
    if namespaces()?.iter().any(|n| n == ns) {
        ip(&["netns", "del", ns])?;
    }
    Ok(())
}
