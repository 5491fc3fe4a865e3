//! Security group actions and their XML encoding.

use super::{page, tag_specs};
use strato_common::{Error, Result};
use strato_control::net::rules::{GroupPairInput, IpPermissionInput, IpPermissionView, RangeInput};
use strato_control::net::security_groups::{
    CreateSecurityGroupInput, GroupSelector, RuleUpdate, GROUP_FILTERS, RULE_FILTERS,
};
use strato_control::{Caller, ControlPlane};
use strato_domain::{RulePeer, SecurityGroupRule};
use strato_ec2_wire::{decode_filters, xml, Params, XmlWriter};

fn opt(p: &Params, key: &str) -> Option<String> {
    p.get(key).map(str::to_string)
}

/// One `IpPermissions.N` structure. The group pairs' wire name is `Groups` (the
/// member's locationName); `UserIdGroupPairs` is accepted too for hand-written requests.
fn ip_permission(p: &Params) -> Result<IpPermissionInput> {
    let ranges = |list: &str, key: &str| -> Vec<RangeInput> {
        p.structs(list)
            .iter()
            .map(|r| RangeInput {
                cidr: opt(r, key),
                description: opt(r, "Description"),
            })
            .collect()
    };
    let mut groups = vec![];
    for list in ["Groups", "UserIdGroupPairs"] {
        for g in p.structs(list) {
            groups.push(GroupPairInput {
                group_id: opt(&g, "GroupId").filter(|s| !s.is_empty()),
                group_name: opt(&g, "GroupName").filter(|s| !s.is_empty()),
                user_id: opt(&g, "UserId"),
                description: opt(&g, "Description"),
            });
        }
    }
    Ok(IpPermissionInput {
        protocol: opt(p, "IpProtocol"),
        from_port: p.int("FromPort")?,
        to_port: p.int("ToPort")?,
        ipv4_ranges: ranges("IpRanges", "CidrIp"),
        ipv6_ranges: ranges("Ipv6Ranges", "CidrIpv6"),
        groups,
        prefix_list_ids: p
            .structs("PrefixListIds")
            .iter()
            .filter_map(|s| opt(s, "PrefixListId"))
            .collect(),
    })
}

/// The permissions of an Authorize/Revoke request: `IpPermissions.N`, or the legacy
/// flat parameters (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`,
/// `SourceSecurityGroupName`, `SourceSecurityGroupOwnerId`) as one permission.
fn permissions(p: &Params) -> Result<Vec<IpPermissionInput>> {
    let structured = p
        .structs("IpPermissions")
        .iter()
        .map(ip_permission)
        .collect::<Result<Vec<_>>>()?;
    const FLAT: &[&str] = &[
        "IpProtocol",
        "FromPort",
        "ToPort",
        "CidrIp",
        "SourceSecurityGroupName",
        "SourceSecurityGroupOwnerId",
    ];
    if !FLAT.iter().any(|k| p.get(k).is_some()) {
        return Ok(structured);
    }
    if !structured.is_empty() {
        return Err(Error::InvalidParameterCombination(
            "The parameter IpPermissions cannot be used with IpProtocol, FromPort, ToPort, CidrIp or SourceSecurityGroupName.".into(),
        ));
    }
    let source = opt(p, "SourceSecurityGroupName").filter(|s| !s.is_empty());
    let protocol = opt(p, "IpProtocol").or_else(|| source.as_ref().map(|_| "-1".to_string()));
    Ok(vec![IpPermissionInput {
        protocol,
        from_port: p.int("FromPort")?,
        to_port: p.int("ToPort")?,
        ipv4_ranges: opt(p, "CidrIp")
            .map(|c| {
                vec![RangeInput {
                    cidr: Some(c),
                    description: None,
                }]
            })
            .unwrap_or_default(),
        ipv6_ranges: vec![],
        groups: source
            .map(|name| {
                vec![GroupPairInput {
                    group_id: None,
                    group_name: Some(name),
                    user_id: opt(p, "SourceSecurityGroupOwnerId"),
                    description: None,
                }]
            })
            .unwrap_or_default(),
        prefix_list_ids: vec![],
    }])
}

/// The target group: `GroupId`, or (ingress only) `GroupName` in the default VPC.
fn selector(p: &Params, by_name: bool) -> Result<GroupSelector> {
    if let Some(id) = p.get("GroupId").filter(|s| !s.is_empty()) {
        return Ok(GroupSelector::Id(id.to_string()));
    }
    if by_name {
        if let Some(name) = p.get("GroupName").filter(|s| !s.is_empty()) {
            return Ok(GroupSelector::Name(name.to_string()));
        }
    }
    Err(Error::MissingParameter("GroupId".into()))
}

fn write_permission(w: &mut XmlWriter, perm: &IpPermissionView) {
    w.text("ipProtocol", &perm.protocol);
    if let Some(f) = perm.from_port {
        w.num("fromPort", f);
    }
    if let Some(t) = perm.to_port {
        w.num("toPort", t);
    }
    w.list("groups", &perm.groups, |w, (gid, user, desc)| {
        w.text("userId", user.as_str())
            .text("groupId", gid.as_str())
            .opt_text("description", desc.as_deref());
    });
    w.list("ipRanges", &perm.ipv4_ranges, |w, (cidr, desc)| {
        w.text("cidrIp", cidr)
            .opt_text("description", desc.as_deref());
    });
    w.list("ipv6Ranges", &perm.ipv6_ranges, |w, (cidr, desc)| {
        w.text("cidrIpv6", cidr)
            .opt_text("description", desc.as_deref());
    });
    w.open("prefixListIds").close("prefixListIds");
}

/// A `SecurityGroupRule` structure (DescribeSecurityGroupRules, Authorize answers).
fn write_rule(w: &mut XmlWriter, r: &SecurityGroupRule, tags: &[(String, String)]) {
    w.text("securityGroupRuleId", r.id.as_str())
        .text("groupId", r.group_id.as_str())
        .text("groupOwnerId", r.account_id.as_str())
        .bool("isEgress", r.egress)
        .text("ipProtocol", &r.protocol)
        .num("fromPort", r.from_port.unwrap_or(-1))
        .num("toPort", r.to_port.unwrap_or(-1));
    match &r.peer {
        RulePeer::Ipv4 { cidr } => {
            w.text("cidrIpv4", cidr);
        }
        RulePeer::Ipv6 { cidr } => {
            w.text("cidrIpv6", cidr);
        }
        RulePeer::Group {
            group_id,
            account_id,
        } => {
            w.open("referencedGroupInfo")
                .text("groupId", group_id.as_str())
                .text("userId", account_id.as_str())
                .close("referencedGroupInfo");
        }
    }
    w.opt_text("description", r.description.as_deref())
        .tag_set(tags)
        .text(
            "securityGroupRuleArn",
            &ControlPlane::arn(
                &r.region,
                &r.account_id,
                "security-group-rule",
                r.id.as_str(),
            ),
        );
}

/// CreateSecurityGroup.
pub fn create(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let input = CreateSecurityGroupInput {
        name: opt(p, "GroupName"),
        description: opt(p, "GroupDescription"),
        vpc_id: opt(p, "VpcId"),
        tag_specs: tag_specs(p)?,
    };
    let (g, tags) = cp.create_security_group(c, &input, dry)?;
    Ok(xml::success("CreateSecurityGroup", rid, |w| {
        w.bool("return", true)
            .text("groupId", g.id.as_str())
            .tag_set(&tags)
            .text(
                "securityGroupArn",
                &ControlPlane::arn(&g.region, &g.account_id, "security-group", g.id.as_str()),
            );
    }))
}

/// DeleteSecurityGroup (by `GroupId`, or `GroupName` in the default VPC).
pub fn delete(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let sel = match (
        p.get("GroupId").filter(|s| !s.is_empty()),
        p.get("GroupName").filter(|s| !s.is_empty()),
    ) {
        (Some(id), _) => GroupSelector::Id(id.to_string()),
        (None, Some(name)) => GroupSelector::Name(name.to_string()),
        (None, None) => return Err(Error::MissingParameter("GroupId or GroupName".into())),
    };
    let id = cp.delete_security_group(c, &sel, dry)?;
    Ok(xml::success("DeleteSecurityGroup", rid, |w| {
        w.bool("return", true).text("groupId", id.as_str());
    }))
}

/// DescribeSecurityGroups.
pub fn describe(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", GROUP_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) =
        cp.describe_security_groups(c, &p.list("GroupId"), &p.list("GroupName"), &filters, &pg)?;
    Ok(xml::success("DescribeSecurityGroups", rid, |w| {
        w.list("securityGroupInfo", &list, |w, g| {
            w.text("ownerId", g.group.account_id.as_str())
                .text("groupId", g.group.id.as_str())
                .text("groupName", &g.group.name)
                .text("groupDescription", &g.group.description)
                .text("vpcId", g.group.vpc_id.as_str())
                .text(
                    "securityGroupArn",
                    &ControlPlane::arn(
                        &g.group.region,
                        &g.group.account_id,
                        "security-group",
                        g.group.id.as_str(),
                    ),
                );
            w.list("ipPermissions", &g.ingress, write_permission);
            w.list("ipPermissionsEgress", &g.egress, write_permission);
            w.tag_set(&g.tags);
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

/// DescribeSecurityGroupRules.
pub fn describe_rules(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", RULE_FILTERS, true)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) =
        cp.describe_security_group_rules(c, &p.list("SecurityGroupRuleId"), &filters, &pg)?;
    Ok(xml::success("DescribeSecurityGroupRules", rid, |w| {
        w.list("securityGroupRuleSet", &list, |w, (r, t)| {
            write_rule(w, r, t)
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}

fn authorize(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str, egress: bool) -> Result<String> {
    let dry = p.dry_run()?;
    let sel = selector(p, !egress)?;
    let perms = permissions(p)?;
    let added = cp.authorize_security_group(c, &sel, egress, &perms, &tag_specs(p)?, dry)?;
    let action = if egress {
        "AuthorizeSecurityGroupEgress"
    } else {
        "AuthorizeSecurityGroupIngress"
    };
    Ok(xml::success(action, rid, |w| {
        w.bool("return", true);
        w.list("securityGroupRuleSet", &added, |w, (r, t)| {
            write_rule(w, r, t)
        });
    }))
}

/// AuthorizeSecurityGroupIngress.
pub fn authorize_ingress(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    authorize(cp, c, p, rid, false)
}

/// AuthorizeSecurityGroupEgress.
pub fn authorize_egress(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    authorize(cp, c, p, rid, true)
}

fn revoke(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str, egress: bool) -> Result<String> {
    let dry = p.dry_run()?;
    let sel = selector(p, !egress)?;
    let perms = permissions(p)?;
    let gone =
        cp.revoke_security_group(c, &sel, egress, &perms, &p.list("SecurityGroupRuleId"), dry)?;
    let action = if egress {
        "RevokeSecurityGroupEgress"
    } else {
        "RevokeSecurityGroupIngress"
    };
    Ok(xml::success(action, rid, |w| {
        w.bool("return", true);
        w.list("revokedSecurityGroupRuleSet", &gone, |w, r| {
            w.text("securityGroupRuleId", r.id.as_str())
                .text("groupId", r.group_id.as_str())
                .bool("isEgress", r.egress)
                .text("ipProtocol", &r.protocol)
                .num("fromPort", r.from_port.unwrap_or(-1))
                .num("toPort", r.to_port.unwrap_or(-1));
            match &r.peer {
                RulePeer::Ipv4 { cidr } => w.text("cidrIpv4", cidr),
                RulePeer::Ipv6 { cidr } => w.text("cidrIpv6", cidr),
                RulePeer::Group { group_id, .. } => w.text("referencedGroupId", group_id.as_str()),
            };
            w.opt_text("description", r.description.as_deref());
        });
    }))
}

/// RevokeSecurityGroupIngress.
pub fn revoke_ingress(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    revoke(cp, c, p, rid, false)
}

/// RevokeSecurityGroupEgress.
pub fn revoke_egress(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    revoke(cp, c, p, rid, true)
}

/// ModifySecurityGroupRules.
pub fn modify_rules(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let group = p.required("GroupId")?;
    let updates = p
        .structs("SecurityGroupRule")
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let def = item.sub("SecurityGroupRule");
            Ok(RuleUpdate {
                rule_id: item
                    .get("SecurityGroupRuleId")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        Error::MissingParameter(format!(
                            "SecurityGroupRule.{}.SecurityGroupRuleId",
                            i + 1
                        ))
                    })?
                    .to_string(),
                protocol: opt(&def, "IpProtocol"),
                from_port: def.int("FromPort")?,
                to_port: def.int("ToPort")?,
                cidr_ipv4: opt(&def, "CidrIpv4").filter(|s| !s.is_empty()),
                cidr_ipv6: opt(&def, "CidrIpv6").filter(|s| !s.is_empty()),
                prefix_list_id: opt(&def, "PrefixListId").filter(|s| !s.is_empty()),
                referenced_group_id: opt(&def, "ReferencedGroupId").filter(|s| !s.is_empty()),
                description: opt(&def, "Description"),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    cp.modify_security_group_rules(c, group, &updates, dry)?;
    Ok(xml::success("ModifySecurityGroupRules", rid, |w| {
        w.bool("return", true);
    }))
}
