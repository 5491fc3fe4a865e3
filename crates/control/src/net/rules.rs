//! Security group rules without storage: EC2's `IpPermission` as a request carries it,
//! the validation of protocols, ports, blocks and descriptions, and the grouping of
//! stored rules back into `IpPermission`s for DescribeSecurityGroups.
//!
//! A stored rule is one protocol, one port range and one peer; an `IpPermission` is a
//! protocol and port range with lists of peers. Authorize expands permissions into
//! rules, Describe groups rules into permissions.

use strato_common::cidr::{Ipv4Cidr, Ipv6Cidr};
use strato_common::{AccountId, Error, Result, SecurityGroupId};
use strato_store::{RulePeer, SecurityGroupRule};

/// The most rules a group may have in one direction (EC2's default quota).
pub const MAX_RULES_PER_DIRECTION: usize = 60;

/// One `IpPermissions.N` structure of a request (or the legacy flat parameters).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IpPermissionInput {
    /// `IpProtocol`: a name, a number, or `-1`.
    pub protocol: Option<String>,
    /// `FromPort` (the ICMP type for ICMP).
    pub from_port: Option<i64>,
    /// `ToPort` (the ICMP code for ICMP).
    pub to_port: Option<i64>,
    /// `IpRanges.N`.
    pub ipv4_ranges: Vec<RangeInput>,
    /// `Ipv6Ranges.N`.
    pub ipv6_ranges: Vec<RangeInput>,
    /// `Groups.N` (UserIdGroupPairs).
    pub groups: Vec<GroupPairInput>,
    /// `PrefixListIds.N` (refused: Strato has no prefix lists).
    pub prefix_list_ids: Vec<String>,
}

/// An `IpRanges.N` / `Ipv6Ranges.N` item.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RangeInput {
    /// `CidrIp` or `CidrIpv6`.
    pub cidr: Option<String>,
    /// The rule description.
    pub description: Option<String>,
}

/// A `Groups.N` (UserIdGroupPair) item: a group by id or, within the rule's VPC, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupPairInput {
    /// The group by id.
    pub group_id: Option<SecurityGroupId>,
    /// The group by name, in the rule's VPC.
    pub group_name: Option<String>,
    /// The owning account; only the caller's own is found.
    pub user_id: Option<String>,
    /// The rule description.
    pub description: Option<String>,
}

/// A protocol with its port range, normalised: `-1` and numbered protocols without
/// ports carry none, tcp/udp a port range, icmp/icmpv6 a type and a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    /// The normalised protocol (`tcp`, `udp`, `icmp`, `icmpv6`, `-1` or a number).
    pub protocol: String,
    /// First port, or ICMP type.
    pub from_port: Option<i32>,
    /// Last port, or ICMP code.
    pub to_port: Option<i32>,
}

/// Normalises a protocol as EC2 does: names and numbers of tcp (6), udp (17), icmp (1)
/// and icmpv6 (58) become the name, `-1`/`all` mean every protocol, other numbers
/// 0-255 stay numbers.
pub fn normalize_protocol(p: &str) -> Result<String> {
    let lower = p.trim().to_ascii_lowercase();
    let name = match lower.as_str() {
        "-1" | "all" => "-1",
        "tcp" | "6" => "tcp",
        "udp" | "17" => "udp",
        "icmp" | "1" => "icmp",
        "icmpv6" | "58" => "icmpv6",
        n if !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) => {
            match n.parse::<u16>() {
                Ok(v) if v <= 255 => return Ok(v.to_string()),
                _ => "",
            }
        }
        _ => "",
    };
    if name.is_empty() {
        return Err(Error::invalid_value(format!(
            "Invalid value '{p}' for IP protocol. Unknown protocol."
        )));
    }
    Ok(name.to_string())
}

/// Validates a protocol and its ports.
pub fn port_spec(protocol: Option<&str>, from: Option<i64>, to: Option<i64>) -> Result<PortSpec> {
    let protocol = normalize_protocol(
        protocol
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::MissingParameter("IpProtocol".into()))?,
    )?;
    let (from_port, to_port) = match protocol.as_str() {
        "tcp" | "udp" => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(Error::invalid_value(
                    "Invalid value 'null' for portRange. Must specify both from and to ports with TCP/UDP.",
                ));
            };
            for v in [f, t] {
                if !(0..=65535).contains(&v) {
                    return Err(Error::invalid_value(format!(
                        "Invalid value '{v}' for portRange. Ports must be between 0 and 65535."
                    )));
                }
            }
            if f > t {
                return Err(Error::invalid_value(format!(
                    "Invalid value '{f}-{t}' for portRange. The from port must not be greater than the to port."
                )));
            }
            (Some(f as i32), Some(t as i32))
        }
        "icmp" | "icmpv6" => {
            // FromPort is the ICMP type, ToPort the code; -1 means any.
            let (ty, code) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&ty) {
                return Err(Error::invalid_value(format!(
                    "Invalid value '{ty}' for ICMP type. Valid types are -1 (all) and 0 to 255."
                )));
            }
            if !(-1..=255).contains(&code) {
                return Err(Error::invalid_value(format!(
                    "Invalid value '{code}' for ICMP code. Valid codes are -1 (all) and 0 to 255."
                )));
            }
            if ty == -1 && code != -1 {
                return Err(Error::invalid_value(format!(
                    "Invalid value '{code}' for ICMP code. The code must be -1 when the type is -1 (all types)."
                )));
            }
            (Some(ty as i32), Some(code as i32))
        }
        // All protocols, or a protocol without ports: EC2 ignores any ports given.
        _ => (None, None),
    };
    Ok(PortSpec {
        protocol,
        from_port,
        to_port,
    })
}

/// True for the characters EC2 allows in group names, group descriptions and rule
/// descriptions: `a-zA-Z0-9`, space and `._-:/()#,@[]+=&;{}!$*`.
pub fn allowed_text(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " ._-:/()#,@[]+=&;{}!$*".contains(c))
}

/// Validates a rule description.
pub fn check_rule_description(d: &str) -> Result<()> {
    if d.chars().count() > 255 || !allowed_text(d) {
        return Err(Error::invalid_value(
            "Invalid rule description. Valid descriptions are strings less than 256 characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*",
        ));
    }
    Ok(())
}

/// An IPv4 peer from a request's `CidrIp`.
pub fn ipv4_peer(s: &str) -> Result<RulePeer> {
    let c = Ipv4Cidr::parse(s.trim())
        .ok_or_else(|| Error::invalid_value(format!("CIDR block {s} is malformed")))?;
    Ok(RulePeer::Ipv4 {
        cidr: c.to_string(),
    })
}

/// An IPv6 peer from a request's `CidrIpv6`.
pub fn ipv6_peer(s: &str) -> Result<RulePeer> {
    let c = Ipv6Cidr::parse(s.trim())
        .ok_or_else(|| Error::invalid_value(format!("CIDR block {s} is malformed")))?;
    Ok(RulePeer::Ipv6 {
        cidr: c.to_string(),
    })
}

/// How EC2 spells a rule in its duplicate and not-found messages.
pub fn describe_rule(r: &SecurityGroupRule) -> String {
    let peer = match &r.peer {
        RulePeer::Ipv4 { cidr } | RulePeer::Ipv6 { cidr } => cidr.clone(),
        RulePeer::Group { group_id, .. } => group_id.to_string(),
    };
    let proto = match r.protocol.as_str() {
        "-1" => "ALL".to_string(),
        p => p.to_ascii_uppercase(),
    };
    match (r.from_port, r.to_port) {
        (Some(f), Some(t)) => format!("peer: {peer}, {proto}, from port: {f}, to port: {t}, ALLOW"),
        _ => format!("peer: {peer}, {proto}, ALLOW"),
    }
}

/// One `IpPermission` of a Describe answer: rules sharing a protocol and port range.
#[derive(Clone, Debug, PartialEq)]
pub struct IpPermissionView {
    /// The protocol shared by the grouped rules.
    pub protocol: String,
    /// Their first port (ICMP type); `None` without ports.
    pub from_port: Option<i32>,
    /// Their last port (ICMP code).
    pub to_port: Option<i32>,
    /// `(cidr, description)`.
    pub ipv4_ranges: Vec<(String, Option<String>)>,
    /// `(cidr, description)`.
    pub ipv6_ranges: Vec<(String, Option<String>)>,
    /// `(group id, owning account, description)`.
    pub groups: Vec<(SecurityGroupId, AccountId, Option<String>)>,
}

/// Groups rules (of one direction) into permissions, in the order their protocol and
/// ports first appear.
pub fn group_permissions<'a>(
    rules: impl IntoIterator<Item = &'a SecurityGroupRule>,
) -> Vec<IpPermissionView> {
    let mut out: Vec<IpPermissionView> = vec![];
    for r in rules {
        let pos = out.iter().position(|p| {
            p.protocol == r.protocol && p.from_port == r.from_port && p.to_port == r.to_port
        });
        let p = match pos {
            Some(i) => &mut out[i],
            None => {
                out.push(IpPermissionView {
                    protocol: r.protocol.clone(),
                    from_port: r.from_port,
                    to_port: r.to_port,
                    ipv4_ranges: vec![],
                    ipv6_ranges: vec![],
                    groups: vec![],
                });
                out.last_mut().expect("just pushed")
            }
        };
        match &r.peer {
            RulePeer::Ipv4 { cidr } => p.ipv4_ranges.push((cidr.clone(), r.description.clone())),
            RulePeer::Ipv6 { cidr } => p.ipv6_ranges.push((cidr.clone(), r.description.clone())),
            RulePeer::Group {
                group_id,
                account_id,
            } => p
                .groups
                .push((group_id.clone(), account_id.clone(), r.description.clone())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::{ResourceId, SecurityGroupRuleId};

    #[test]
    fn protocols_normalise() {
        for (given, want) in [
            ("tcp", "tcp"),
            ("TCP", "tcp"),
            ("6", "tcp"),
            ("17", "udp"),
            ("1", "icmp"),
            ("58", "icmpv6"),
            ("-1", "-1"),
            ("all", "-1"),
            ("50", "50"),
            ("255", "255"),
        ] {
            assert_eq!(normalize_protocol(given).unwrap(), want, "{given}");
        }
        for bad in ["256", "-2", "tcpp", "", "1000", "+6"] {
            assert!(normalize_protocol(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_by_protocol() {
        let p = port_spec(Some("tcp"), Some(22), Some(22)).unwrap();
        assert_eq!((p.from_port, p.to_port), (Some(22), Some(22)));
        assert!(port_spec(Some("tcp"), None, Some(22)).is_err());
        assert!(port_spec(Some("udp"), Some(-1), Some(-1)).is_err());
        assert!(port_spec(Some("tcp"), Some(100), Some(99)).is_err());
        assert!(port_spec(Some("tcp"), Some(0), Some(65536)).is_err());
        let all = port_spec(Some("-1"), Some(5), Some(6)).unwrap();
        assert_eq!((all.from_port, all.to_port), (None, None));
        let icmp = port_spec(Some("icmp"), Some(8), Some(-1)).unwrap();
        assert_eq!((icmp.from_port, icmp.to_port), (Some(8), Some(-1)));
        assert!(port_spec(Some("icmp"), Some(-1), Some(0)).is_err());
        assert!(port_spec(Some("icmp"), Some(256), Some(0)).is_err());
        assert!(matches!(
            port_spec(None, Some(1), Some(1)),
            Err(Error::MissingParameter(_))
        ));
        let esp = port_spec(Some("50"), Some(1), Some(2)).unwrap();
        assert_eq!(esp.from_port, None);
    }

    #[test]
    fn peers_and_descriptions() {
        assert_eq!(
            ipv4_peer("0.0.0.0/0").unwrap(),
            RulePeer::Ipv4 {
                cidr: "0.0.0.0/0".into()
            }
        );
        assert!(ipv4_peer("10.0.0.1/8").is_err());
        assert!(ipv6_peer("::/0").is_ok());
        assert!(check_rule_description("SSH from the office (HQ)").is_ok());
        assert!(check_rule_description("naïve").is_err());
        assert!(check_rule_description(&"x".repeat(256)).is_err());
    }

    #[test]
    fn grouping_keeps_peers_together() {
        let account = AccountId::parse("123456789012").unwrap();
        let group = SecurityGroupId::generate();
        let rule = |proto: &str, port: Option<i32>, peer: RulePeer| SecurityGroupRule {
            id: SecurityGroupRuleId::generate(),
            account_id: account.clone(),
            region: "us-east-1".into(),
            group_id: group.clone(),
            egress: false,
            protocol: proto.into(),
            from_port: port,
            to_port: port,
            peer,
            description: None,
        };
        let rules = vec![
            rule("tcp", Some(22), ipv4_peer("10.0.0.0/8").unwrap()),
            rule("-1", None, ipv4_peer("0.0.0.0/0").unwrap()),
            rule("tcp", Some(22), ipv6_peer("::/0").unwrap()),
            rule(
                "tcp",
                Some(22),
                RulePeer::Group {
                    group_id: group.clone(),
                    account_id: account.clone(),
                },
            ),
        ];
        let perms = group_permissions(&rules);
        assert_eq!(perms.len(), 2);
        assert_eq!(perms[0].protocol, "tcp");
        assert_eq!(perms[0].ipv4_ranges.len(), 1);
        assert_eq!(perms[0].ipv6_ranges.len(), 1);
        assert_eq!(perms[0].groups.len(), 1);
        assert_eq!(perms[1].protocol, "-1");
        assert_eq!(
            describe_rule(&rules[0]),
            "peer: 10.0.0.0/8, TCP, from port: 22, to port: 22, ALLOW"
        );
        assert!(rules[0].same_permission(&rules[0].clone()));
        assert!(!rules[0].same_permission(&rules[2]));
    }
}
