//! The nftables rules of a VPC namespace, rendered from its [`VpcNetSpec`].
//!
//! One `inet strato` table and one `arp strato` table per namespace, replaced whole and
//! atomically (`nft -f` runs the delete and the new definition in one transaction), so
//! a change never leaves a moment without rules, and conntrack entries survive it:
//! flows that were admitted stay admitted after the rule that let them in is revoked,
//! as in EC2.
//!
//! Packet path through the namespace:
//!
//! | hook | chain | what |
//! |------|-------|------|
//! | prerouting (raw) | `guard` → `port_<tap>` | anti-spoofing: the guest's own MAC and IPv4 only (DHCP discovery from 0.0.0.0 excepted), no IPv6, no DHCP server replies |
//! | prerouting (dstnat) | `nat_in` | public address → private address (1:1) |
//! | input | `input` | what guests may ask the router itself: DHCP, DNS, the metadata service, ping |
//! | forward | `forward` → `egress_<tap>`, `ingress_<tap>` | established flows pass; new ones need the sender's egress rules **and** the receiver's ingress rules; to the uplink only from ports with a public address |
//! | postrouting (srcnat) | `nat_out` | private address → public address on the way out |
//! | arp input | `arp strato` | ARP from a port must carry its own MAC and IPv4 |

use std::fmt::Write;
use std::net::Ipv4Addr;
use strato_agent_api::{PortSpec, RuleSpec, VpcNetSpec};

use super::{METADATA_ADDR, UPLINK_DEV};

/// The complete ruleset of one VPC namespace, as input for `nft -f -`.
pub fn render(vpc: &VpcNetSpec) -> String {
    let ports: Vec<&PortSpec> = vpc.ports.iter().filter(|p| valid_port(p)).collect();
    let mut s = String::new();
    s.push_str("table inet strato\ndelete table inet strato\ntable inet strato {\n");

    s.push_str("  chain guard {\n    type filter hook prerouting priority raw; policy accept;\n");
    for p in &ports {
        let _ = writeln!(
            s,
            "    iifname \"{}\" jump port_{}",
            p.tap_name(),
            p.tap_name()
        );
    }
    // Anything else arriving on a tap-like name (a port whose interface is not in the
    // spec yet) is dropped rather than trusted. (An accept in a port chain ends only
    // this hook: the filter and NAT hooks still see the packet.)
    s.push_str("    iifname \"t*\" drop\n  }\n");
    for p in &ports {
        let tap = p.tap_name();
        let _ = write!(
            s,
            "  chain port_{tap} {{\n    ether saddr != {mac} drop\n    meta nfproto ipv6 drop\n    \
             udp sport 67 drop\n    ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept\n    \
             ip saddr != {ip} drop\n    accept\n  }}\n",
            mac = p.mac.to_ascii_lowercase(),
            ip = p.private_ip
        );
    }

    let _ = write!(
        s,
        "  chain input {{\n    type filter hook input priority filter; policy drop;\n    \
         iif lo accept\n    ct state established,related accept\n    \
         iifname \"t*\" udp dport 67 accept\n    \
         iifname \"t*\" udp dport 53 accept\n    \
         iifname \"t*\" tcp dport 53 accept\n    \
         iifname \"t*\" ip daddr {METADATA_ADDR} tcp dport 80 accept\n    \
         iifname \"t*\" icmp type echo-request accept\n  }}\n"
    );

    s.push_str(
        "  chain forward {\n    type filter hook forward priority filter; policy drop;\n    \
         ct state established,related accept\n    ct state invalid drop\n",
    );
    for p in &ports {
        let _ = writeln!(s, "    iifname \"{0}\" jump egress_{0}", p.tap_name());
    }
    for p in &ports {
        let _ = writeln!(s, "    oifname \"{0}\" jump ingress_{0}", p.tap_name());
    }
    let public: Vec<&&PortSpec> = ports.iter().filter(|p| p.public_ip.is_some()).collect();
    if vpc.internet && !public.is_empty() {
        let srcs: Vec<&str> = public.iter().map(|p| p.private_ip.as_str()).collect();
        let _ = writeln!(
            s,
            "    oifname \"{UPLINK_DEV}\" ip saddr {{ {} }} accept",
            srcs.join(", ")
        );
    }
    s.push_str("  }\n");
    for p in &ports {
        let tap = p.tap_name();
        let _ = writeln!(s, "  chain egress_{tap} {{");
        for r in &p.egress {
            if let Some(m) = rule_match(r, "daddr") {
                let _ = writeln!(s, "    {m}return");
            }
        }
        s.push_str("    drop\n  }\n");
        let _ = writeln!(s, "  chain ingress_{tap} {{");
        for r in &p.ingress {
            if let Some(m) = rule_match(r, "saddr") {
                let _ = writeln!(s, "    {m}accept");
            }
        }
        s.push_str("    drop\n  }\n");
    }

    s.push_str("  chain nat_in {\n    type nat hook prerouting priority dstnat; policy accept;\n");
    if vpc.internet {
        for p in &public {
            let _ = writeln!(
                s,
                "    iifname \"{UPLINK_DEV}\" ip daddr {} dnat ip to {}",
                p.public_ip.as_deref().unwrap_or_default(),
                p.private_ip
            );
        }
    }
    s.push_str("  }\n");
    s.push_str(
        "  chain nat_out {\n    type nat hook postrouting priority srcnat; policy accept;\n",
    );
    if vpc.internet {
        for p in &public {
            let _ = writeln!(
                s,
                "    oifname \"{UPLINK_DEV}\" ip saddr {} snat ip to {}",
                p.private_ip,
                p.public_ip.as_deref().unwrap_or_default()
            );
        }
    }
    s.push_str("  }\n}\n");

    s.push_str("table arp strato\ndelete table arp strato\ntable arp strato {\n");
    s.push_str("  chain input {\n    type filter hook input priority filter; policy accept;\n");
    for p in &ports {
        let tap = p.tap_name();
        let _ = writeln!(
            s,
            "    iifname \"{tap}\" arp saddr ether != {} drop",
            p.mac.to_ascii_lowercase()
        );
        // 0.0.0.0 is an address-conflict probe (RFC 5227), which DHCP clients send.
        let _ = writeln!(
            s,
            "    iifname \"{tap}\" arp saddr ip != {{ 0.0.0.0, {} }} drop",
            p.private_ip
        );
    }
    s.push_str("  }\n}\n");
    s
}

/// Loads a rendered ruleset into namespace `ns` in one transaction.
pub fn load(ns: &str, ruleset: &str) -> strato_common::Result<()> {
    super::run_in(Some(ns), "nft", &["-f", "-"], Some(ruleset)).map(|_| ())
}

/// Only well-formed values ever reach a ruleset (they come from the control plane,
/// which validated them, but a ruleset is no place to find out).
fn valid_port(p: &PortSpec) -> bool {
    let mac_ok = p.mac.len() == 17
        && p.mac
            .split(':')
            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
    mac_ok
        && p.private_ip.parse::<Ipv4Addr>().is_ok()
        && p.public_ip
            .as_deref()
            .is_none_or(|ip| ip.parse::<Ipv4Addr>().is_ok())
        && p.interface_id.starts_with("eni-")
        && p.interface_id[4..].chars().all(|c| c.is_ascii_hexdigit())
}

/// The match part of one rule (ending in a space), or `None` when it admits nothing
/// this IPv4 dataplane carries (no addresses, or an IPv6-only protocol).
fn rule_match(r: &RuleSpec, dir: &str) -> Option<String> {
    let cidrs: Vec<String> = r.cidrs.iter().filter(|c| valid_cidr(c)).cloned().collect();
    if cidrs.is_empty() {
        return None;
    }
    let mut m = String::new();
    if !cidrs.iter().any(|c| c == "0.0.0.0/0") {
        let _ = write!(m, "ip {dir} {{ {} }} ", cidrs.join(", "));
    }
    let ports = |proto: &str| -> String {
        match (r.from_port, r.to_port) {
            (Some(f), Some(t)) if f >= 0 && t >= f && !(f == 0 && t == 65535) => {
                if f == t {
                    format!("{proto} dport {f} ")
                } else {
                    format!("{proto} dport {f}-{t} ")
                }
            }
            _ => format!("meta l4proto {proto} "),
        }
    };
    match r.protocol.as_str() {
        "-1" | "all" => {}
        "tcp" | "6" => m.push_str(&ports("tcp")),
        "udp" | "17" => m.push_str(&ports("udp")),
        "icmp" | "1" => match (r.from_port, r.to_port) {
            (Some(t), Some(c)) if t >= 0 && c >= 0 => {
                let _ = write!(m, "icmp type {t} icmp code {c} ");
            }
            (Some(t), _) if t >= 0 => {
                let _ = write!(m, "icmp type {t} ");
            }
            _ => m.push_str("meta l4proto icmp "),
        },
        "icmpv6" | "58" => return None,
        other => {
            let n: u8 = other.parse().ok()?;
            let _ = write!(m, "meta l4proto {n} ");
        }
    }
    Some(m)
}

fn valid_cidr(c: &str) -> bool {
    let Some((ip, len)) = c.split_once('/') else {
        return false;
    };
    ip.parse::<Ipv4Addr>().is_ok() && len.parse::<u8>().is_ok_and(|l| l <= 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(eni: &str, ip: &str, public: Option<&str>) -> PortSpec {
        PortSpec {
            interface_id: eni.into(),
            mac: "02:aa:bb:cc:dd:ee".into(),
            private_ip: ip.into(),
            subnet_cidr: "10.0.1.0/24".into(),
            public_ip: public.map(str::to_string),
            hostname: "ip-10-0-1-10".into(),
            ingress: vec![
                RuleSpec {
                    protocol: "tcp".into(),
                    from_port: Some(22),
                    to_port: Some(22),
                    cidrs: vec!["0.0.0.0/0".into()],
                },
                RuleSpec {
                    protocol: "icmp".into(),
                    from_port: Some(8),
                    to_port: Some(-1),
                    cidrs: vec!["10.0.0.0/16".into(), "10.1.0.5/32".into()],
                },
                // A group reference with no members admits nothing.
                RuleSpec {
                    protocol: "-1".into(),
                    from_port: None,
                    to_port: None,
                    cidrs: vec![],
                },
            ],
            egress: vec![RuleSpec {
                protocol: "-1".into(),
                from_port: None,
                to_port: None,
                cidrs: vec!["0.0.0.0/0".into()],
            }],
        }
    }

    #[test]
    fn renders_guards_groups_and_nat() {
        let vpc = VpcNetSpec {
            vpc_id: "vpc-0123456789abcdef0".into(),
            domain: "ec2.internal".into(),
            internet: true,
            ports: vec![port(
                "eni-0123456789abcdef0",
                "10.0.1.10",
                Some("198.51.100.7"),
            )],
        };
        let r = render(&vpc);
        assert!(r.contains("iifname \"t0123456789abcd\" jump port_t0123456789abcd"));
        assert!(r.contains("ether saddr != 02:aa:bb:cc:dd:ee drop"));
        assert!(r.contains("ip saddr != 10.0.1.10 drop"));
        assert!(r.contains("    tcp dport 22 accept"), "{r}");
        assert!(r.contains("ip saddr { 10.0.0.0/16, 10.1.0.5/32 } icmp type 8 accept"));
        assert!(r.contains("chain egress_t0123456789abcd {\n    return\n    drop"));
        assert!(r.contains("ip daddr 198.51.100.7 dnat ip to 10.0.1.10"));
        assert!(r.contains("ip saddr 10.0.1.10 snat ip to 198.51.100.7"));
        assert!(r.contains("oifname \"up0\" ip saddr { 10.0.1.10 } accept"));
        assert!(r.contains("arp saddr ip != { 0.0.0.0, 10.0.1.10 } drop"));
        // The empty group reference produced no rule that admits everything.
        assert_eq!(r.matches("ingress_t0123456789abcd {").count(), 1);
        assert!(!r.contains("    accept\n    drop"));
    }

    #[test]
    fn without_a_gateway_nothing_leaves_and_nothing_is_translated() {
        let vpc = VpcNetSpec {
            vpc_id: "vpc-0123456789abcdef0".into(),
            domain: "ec2.internal".into(),
            internet: false,
            ports: vec![port(
                "eni-0123456789abcdef0",
                "10.0.1.10",
                Some("198.51.100.7"),
            )],
        };
        let r = render(&vpc);
        assert!(!r.contains("dnat"));
        assert!(!r.contains("snat"));
        assert!(!r.contains("oifname \"up0\""));
    }

    #[test]
    fn malformed_values_never_reach_the_ruleset() {
        let mut p = port("eni-0123456789abcdef0", "10.0.1.10; flush ruleset", None);
        let vpc = VpcNetSpec {
            vpc_id: "vpc-1".into(),
            domain: "ec2.internal".into(),
            internet: false,
            ports: vec![p.clone()],
        };
        assert!(!render(&vpc).contains("flush"));
        p.private_ip = "10.0.1.10".into();
        p.ingress[0].cidrs = vec!["0.0.0.0/0 } accept; drop {".into()];
        let r = rule_match(&p.ingress[0], "saddr");
        assert!(r.is_none());
    }

    #[test]
    fn protocols_and_ports() {
        let r = |p: &str, f: Option<i32>, t: Option<i32>| {
            rule_match(
                &RuleSpec {
                    protocol: p.into(),
                    from_port: f,
                    to_port: t,
                    cidrs: vec!["0.0.0.0/0".into()],
                },
                "saddr",
            )
        };
        assert_eq!(r("tcp", Some(0), Some(65535)).unwrap(), "meta l4proto tcp ");
        assert_eq!(
            r("udp", Some(1000), Some(2000)).unwrap(),
            "udp dport 1000-2000 "
        );
        assert_eq!(r("icmp", Some(-1), Some(-1)).unwrap(), "meta l4proto icmp ");
        assert_eq!(
            r("icmp", Some(3), Some(4)).unwrap(),
            "icmp type 3 icmp code 4 "
        );
        assert_eq!(r("47", None, None).unwrap(), "meta l4proto 47 ");
        assert_eq!(r("-1", None, None).unwrap(), "");
        assert!(r("icmpv6", None, None).is_none());
    }
}
