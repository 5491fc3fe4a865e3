//! Security group actions: typed requests to the control plane, its records to the
//! model's output types.

use super::{id, ids, non_empty, page, tag_set, tag_specs, Ctx};
use strato_common::{Error, Result};
use strato_control::net::rules::{GroupPairInput, IpPermissionInput, IpPermissionView, RangeInput};
use strato_control::net::security_groups::{
    check_new_group, check_revoke_form, CreateSecurityGroupInput, GroupInfo, GroupSelector,
    RuleUpdate, GROUP_FILTERS, RULE_FILTERS,
};
use strato_control::ControlPlane;
use strato_control::Tags;
use strato_domain::{RulePeer, SecurityGroupRule};
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types as wire;

/// One `IpPermissions.N` structure as the control plane takes it. Empty group ids and
/// names are taken as absent (a pair names its group by one of them) and the group ids
/// parsed; the other strings are passed as given, for the control plane to refuse.
fn ip_permission(p: &wire::IpPermission) -> Result<IpPermissionInput> {
    Ok(IpPermissionInput {
        protocol: p.ip_protocol.clone(),
        from_port: p.from_port.map(i64::from),
        to_port: p.to_port.map(i64::from),
        ipv4_ranges: p
            .ip_ranges
            .iter()
            .flatten()
            .map(|r| RangeInput {
                cidr: r.cidr_ip.clone(),
                description: r.description.clone(),
            })
            .collect(),
        ipv6_ranges: p
            .ipv6_ranges
            .iter()
            .flatten()
            .map(|r| RangeInput {
                cidr: r.cidr_ipv6.clone(),
                description: r.description.clone(),
            })
            .collect(),
        groups: p
            .user_id_group_pairs
            .iter()
            .flatten()
            .map(|g| {
                Ok(GroupPairInput {
                    group_id: non_empty(g.group_id.clone())
                        .as_deref()
                        .map(id)
                        .transpose()?,
                    group_name: non_empty(g.group_name.clone()),
                    user_id: g.user_id.clone(),
                    description: g.description.clone(),
                })
            })
            .collect::<Result<_>>()?,
        // An item without `PrefixListId` names nothing, so it is skipped.
        prefix_list_ids: p
            .prefix_list_ids
            .iter()
            .flatten()
            .filter_map(|s| s.prefix_list_id.clone())
            .collect(),
    })
}

/// The legacy flat parameters of Authorize/Revoke, which describe one permission
/// (the four request types carry the same members under the same names).
struct Flat {
    ip_protocol: Option<String>,
    from_port: Option<i32>,
    to_port: Option<i32>,
    cidr_ip: Option<String>,
    source_security_group_name: Option<String>,
    source_security_group_owner_id: Option<String>,
}

impl Flat {
    /// Whether any flat parameter was given (even empty: giving it is what counts).
    fn given(&self) -> bool {
        self.ip_protocol.is_some()
            || self.from_port.is_some()
            || self.to_port.is_some()
            || self.cidr_ip.is_some()
            || self.source_security_group_name.is_some()
            || self.source_security_group_owner_id.is_some()
    }
}

/// The permissions of an Authorize/Revoke request: `IpPermissions.N`, or the legacy
/// flat parameters (`IpProtocol`, `FromPort`, `ToPort`, `CidrIp`,
/// `SourceSecurityGroupName`, `SourceSecurityGroupOwnerId`) as one permission, never
/// both. Made in two steps because EC2 answers in that order: [`Permissions::new`]
/// checks the form, [`Permissions::parse`] (later) the group ids of the pairs.
struct Permissions<'a> {
    structured: &'a [wire::IpPermission],
    flat: Flat,
}

impl<'a> Permissions<'a> {
    fn new(structured: &'a [wire::IpPermission], flat: Flat) -> Result<Self> {
        if flat.given() && !structured.is_empty() {
            return Err(Error::InvalidParameterCombination(
                "The parameter IpPermissions cannot be used with IpProtocol, FromPort, ToPort, CidrIp or SourceSecurityGroupName.".into(),
            ));
        }
        Ok(Permissions { structured, flat })
    }

    /// Whether the request gives no permission at all.
    fn is_empty(&self) -> bool {
        self.structured.is_empty() && !self.flat.given()
    }

    fn parse(self) -> Result<Vec<IpPermissionInput>> {
        if !self.flat.given() {
            return self.structured.iter().map(ip_permission).collect();
        }
        Ok(vec![flat_permission(self.flat)])
    }
}

/// The one permission the legacy flat parameters describe.
fn flat_permission(flat: Flat) -> IpPermissionInput {
    let source = non_empty(flat.source_security_group_name);
    // A source group without a protocol means all traffic from it, as EC2 reads it.
    let protocol = flat
        .ip_protocol
        .or_else(|| source.as_ref().map(|_| "-1".to_string()));
    IpPermissionInput {
        protocol,
        from_port: flat.from_port.map(i64::from),
        to_port: flat.to_port.map(i64::from),
        ipv4_ranges: flat
            .cidr_ip
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
                    user_id: flat.source_security_group_owner_id,
                    description: None,
                }]
            })
            .unwrap_or_default(),
        prefix_list_ids: vec![],
    }
}

/// The target group of an Authorize/Revoke request as given: its presence is checked
/// first, its id parsed by [`Target::parse`] only after the permissions' form (and an
/// Authorize's tag specifications), in EC2's order.
enum Target {
    Id(String),
    Name(String),
}

impl Target {
    fn parse(self) -> Result<GroupSelector> {
        Ok(match self {
            Target::Id(group) => GroupSelector::Id(id(&group)?),
            Target::Name(name) => GroupSelector::Name(name),
        })
    }
}

/// The target group of an ingress request: `GroupId`, or `GroupName` in the default
/// VPC (egress requests have only the id, which the decoder requires).
fn selector(group_id: Option<String>, group_name: Option<String>) -> Result<Target> {
    if let Some(group) = non_empty(group_id) {
        return Ok(Target::Id(group));
    }
    if let Some(name) = non_empty(group_name) {
        return Ok(Target::Name(name));
    }
    Err(Error::MissingParameter("GroupId".into()))
}

/// Authorizes an ingress or egress request's permissions, parsing what is left in
/// EC2's order: tag specifications, the target's id, the pairs' group ids.
fn authorize(
    cp: &ControlPlane,
    cx: &Ctx,
    target: Target,
    perms: Permissions,
    specs: &[wire::TagSpecification],
    egress: bool,
) -> Result<Vec<(SecurityGroupRule, Tags)>> {
    let specs = tag_specs(specs)?;
    let sel = target.parse()?;
    let perms = perms.parse()?;
    cp.authorize_security_group(cx.caller, &sel, egress, &perms, &specs, cx.dry_run)
}

/// Revokes an ingress or egress request's rules, given by permissions or by rule ids,
/// parsing what is left in EC2's order: the target's id, the form (one way, not both),
/// the rule ids, the pairs' group ids.
fn revoke(
    cp: &ControlPlane,
    cx: &Ctx,
    target: Target,
    perms: Permissions,
    rule_ids: &[String],
    egress: bool,
) -> Result<Vec<SecurityGroupRule>> {
    let sel = target.parse()?;
    check_revoke_form(!perms.is_empty(), !rule_ids.is_empty())?;
    let rule_ids = ids(rule_ids)?;
    let perms = perms.parse()?;
    cp.revoke_security_group(cx.caller, &sel, egress, &perms, &rule_ids, cx.dry_run)
}

/// A security group's ARN.
fn group_arn(g: &strato_domain::SecurityGroup) -> String {
    ControlPlane::arn(&g.region, &g.account_id, "security-group", g.id.as_str())
}

/// Rules grouped into an `IpPermission` (DescribeSecurityGroups). The group pairs and
/// both range lists are always written, empty or not, and the prefix lists always
/// empty (Strato has none), as EC2 does.
fn permission_item(perm: &IpPermissionView) -> wire::IpPermission {
    wire::IpPermission {
        ip_protocol: Some(perm.protocol.clone()),
        from_port: perm.from_port,
        to_port: perm.to_port,
        user_id_group_pairs: Some(
            perm.groups
                .iter()
                .map(|(gid, user, desc)| wire::UserIdGroupPair {
                    user_id: Some(user.to_string()),
                    group_id: Some(gid.to_string()),
                    description: desc.clone(),
                    ..Default::default()
                })
                .collect(),
        ),
        ip_ranges: Some(
            perm.ipv4_ranges
                .iter()
                .map(|(cidr, desc)| wire::IpRange {
                    cidr_ip: Some(cidr.clone()),
                    description: desc.clone(),
                })
                .collect(),
        ),
        ipv6_ranges: Some(
            perm.ipv6_ranges
                .iter()
                .map(|(cidr, desc)| wire::Ipv6Range {
                    cidr_ipv6: Some(cidr.clone()),
                    description: desc.clone(),
                })
                .collect(),
        ),
        prefix_list_ids: Some(vec![]),
    }
}

/// A group as DescribeSecurityGroups lists it (the items of `securityGroupInfo`).
fn group_item(g: &GroupInfo) -> wire::SecurityGroup {
    wire::SecurityGroup {
        owner_id: Some(g.group.account_id.to_string()),
        group_id: Some(g.group.id.to_string()),
        group_name: Some(g.group.name.clone()),
        description: Some(g.group.description.clone()),
        vpc_id: Some(g.group.vpc_id.to_string()),
        security_group_arn: Some(group_arn(&g.group)),
        ip_permissions: Some(g.ingress.iter().map(permission_item).collect()),
        ip_permissions_egress: Some(g.egress.iter().map(permission_item).collect()),
        tags: tag_set(&g.tags),
    }
}

/// A `SecurityGroupRule` (DescribeSecurityGroupRules and Authorize answers). Rules
/// without ports report `-1` for both, as EC2 does.
fn rule_item(r: &SecurityGroupRule, tags: &[(String, String)]) -> wire::SecurityGroupRule {
    let mut out = wire::SecurityGroupRule {
        security_group_rule_id: Some(r.id.to_string()),
        group_id: Some(r.group_id.to_string()),
        group_owner_id: Some(r.account_id.to_string()),
        is_egress: Some(r.egress),
        ip_protocol: Some(r.protocol.clone()),
        from_port: Some(r.from_port.unwrap_or(-1)),
        to_port: Some(r.to_port.unwrap_or(-1)),
        description: r.description.clone(),
        tags: tag_set(tags),
        security_group_rule_arn: Some(ControlPlane::arn(
            &r.region,
            &r.account_id,
            "security-group-rule",
            r.id.as_str(),
        )),
        ..Default::default()
    };
    match &r.peer {
        RulePeer::Ipv4 { cidr } => out.cidr_ipv4 = Some(cidr.clone()),
        RulePeer::Ipv6 { cidr } => out.cidr_ipv6 = Some(cidr.clone()),
        RulePeer::Group {
            group_id,
            account_id,
        } => {
            out.referenced_group_info = Some(wire::ReferencedSecurityGroup {
                group_id: Some(group_id.to_string()),
                user_id: Some(account_id.to_string()),
                ..Default::default()
            })
        }
    }
    out
}

/// A rule as Revoke answers list it (`revokedSecurityGroupRuleSet`): the referenced
/// group by id only, no owner, tags or ARN.
fn revoked_item(r: &SecurityGroupRule) -> wire::RevokedSecurityGroupRule {
    let mut out = wire::RevokedSecurityGroupRule {
        security_group_rule_id: Some(r.id.to_string()),
        group_id: Some(r.group_id.to_string()),
        is_egress: Some(r.egress),
        ip_protocol: Some(r.protocol.clone()),
        from_port: Some(r.from_port.unwrap_or(-1)),
        to_port: Some(r.to_port.unwrap_or(-1)),
        description: r.description.clone(),
        ..Default::default()
    };
    match &r.peer {
        RulePeer::Ipv4 { cidr } => out.cidr_ipv4 = Some(cidr.clone()),
        RulePeer::Ipv6 { cidr } => out.cidr_ipv6 = Some(cidr.clone()),
        RulePeer::Group { group_id, .. } => out.referenced_group_id = Some(group_id.to_string()),
    }
    out
}

/// CreateSecurityGroup.
pub fn create(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateSecurityGroupRequest,
) -> Result<wire::CreateSecurityGroupResult> {
    let specs = tag_specs(&req.tag_specifications)?;
    // EC2 answers a bad name or description before a bad VPC id.
    check_new_group(Some(&req.group_name), Some(&req.description))?;
    let input = CreateSecurityGroupInput {
        vpc_id: non_empty(req.vpc_id).as_deref().map(id).transpose()?,
        name: Some(req.group_name),
        description: Some(req.description),
        tag_specs: specs,
    };
    let (g, tags) = cp.create_security_group(cx.caller, &input, cx.dry_run)?;
    Ok(wire::CreateSecurityGroupResult {
        group_id: Some(g.id.to_string()),
        tags: tag_set(&tags),
        security_group_arn: Some(group_arn(&g)),
    })
}

/// DeleteSecurityGroup (by `GroupId`, or `GroupName` in the default VPC).
pub fn delete(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DeleteSecurityGroupRequest,
) -> Result<wire::DeleteSecurityGroupResult> {
    let sel = match (non_empty(req.group_id), non_empty(req.group_name)) {
        (Some(group), _) => GroupSelector::Id(id(&group)?),
        (None, Some(name)) => GroupSelector::Name(name),
        (None, None) => return Err(Error::MissingParameter("GroupId or GroupName".into())),
    };
    let deleted = cp.delete_security_group(cx.caller, &sel, cx.dry_run)?;
    Ok(wire::DeleteSecurityGroupResult {
        r#return: Some(true),
        group_id: Some(deleted.to_string()),
    })
}

/// DescribeSecurityGroups.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeSecurityGroupsRequest,
) -> Result<wire::DescribeSecurityGroupsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, GROUP_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) = cp.describe_security_groups(
        cx.caller,
        &ids(&req.group_ids)?,
        &req.group_names,
        &filters,
        &pg,
    )?;
    Ok(wire::DescribeSecurityGroupsResult {
        security_groups: Some(list.iter().map(group_item).collect()),
        next_token: next,
    })
}

/// DescribeSecurityGroupRules.
pub fn describe_rules(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeSecurityGroupRulesRequest,
) -> Result<wire::DescribeSecurityGroupRulesResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, RULE_FILTERS, true)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) = cp.describe_security_group_rules(
        cx.caller,
        &ids(&req.security_group_rule_ids)?,
        &filters,
        &pg,
    )?;
    Ok(wire::DescribeSecurityGroupRulesResult {
        security_group_rules: Some(list.iter().map(|(r, t)| rule_item(r, t)).collect()),
        next_token: next,
    })
}

/// AuthorizeSecurityGroupIngress.
pub fn authorize_ingress(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AuthorizeSecurityGroupIngressRequest,
) -> Result<wire::AuthorizeSecurityGroupIngressResult> {
    let target = selector(req.group_id, req.group_name)?;
    let perms = Permissions::new(
        &req.ip_permissions,
        Flat {
            ip_protocol: req.ip_protocol,
            from_port: req.from_port,
            to_port: req.to_port,
            cidr_ip: req.cidr_ip,
            source_security_group_name: req.source_security_group_name,
            source_security_group_owner_id: req.source_security_group_owner_id,
        },
    )?;
    let added = authorize(cp, cx, target, perms, &req.tag_specifications, false)?;
    Ok(wire::AuthorizeSecurityGroupIngressResult {
        r#return: Some(true),
        security_group_rules: Some(added.iter().map(|(r, t)| rule_item(r, t)).collect()),
    })
}

/// AuthorizeSecurityGroupEgress.
pub fn authorize_egress(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::AuthorizeSecurityGroupEgressRequest,
) -> Result<wire::AuthorizeSecurityGroupEgressResult> {
    let target = selector(Some(req.group_id), None)?;
    let perms = Permissions::new(
        &req.ip_permissions,
        Flat {
            ip_protocol: req.ip_protocol,
            from_port: req.from_port,
            to_port: req.to_port,
            cidr_ip: req.cidr_ip,
            source_security_group_name: req.source_security_group_name,
            source_security_group_owner_id: req.source_security_group_owner_id,
        },
    )?;
    let added = authorize(cp, cx, target, perms, &req.tag_specifications, true)?;
    Ok(wire::AuthorizeSecurityGroupEgressResult {
        r#return: Some(true),
        security_group_rules: Some(added.iter().map(|(r, t)| rule_item(r, t)).collect()),
    })
}

/// RevokeSecurityGroupIngress (by permissions or by `SecurityGroupRuleId.N`).
pub fn revoke_ingress(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::RevokeSecurityGroupIngressRequest,
) -> Result<wire::RevokeSecurityGroupIngressResult> {
    let target = selector(req.group_id, req.group_name)?;
    let perms = Permissions::new(
        &req.ip_permissions,
        Flat {
            ip_protocol: req.ip_protocol,
            from_port: req.from_port,
            to_port: req.to_port,
            cidr_ip: req.cidr_ip,
            source_security_group_name: req.source_security_group_name,
            source_security_group_owner_id: req.source_security_group_owner_id,
        },
    )?;
    let gone = revoke(cp, cx, target, perms, &req.security_group_rule_ids, false)?;
    Ok(wire::RevokeSecurityGroupIngressResult {
        r#return: Some(true),
        revoked_security_group_rules: Some(gone.iter().map(revoked_item).collect()),
        unknown_ip_permissions: None,
    })
}

/// RevokeSecurityGroupEgress (by permissions or by `SecurityGroupRuleId.N`).
pub fn revoke_egress(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::RevokeSecurityGroupEgressRequest,
) -> Result<wire::RevokeSecurityGroupEgressResult> {
    let target = selector(Some(req.group_id), None)?;
    let perms = Permissions::new(
        &req.ip_permissions,
        Flat {
            ip_protocol: req.ip_protocol,
            from_port: req.from_port,
            to_port: req.to_port,
            cidr_ip: req.cidr_ip,
            source_security_group_name: req.source_security_group_name,
            source_security_group_owner_id: req.source_security_group_owner_id,
        },
    )?;
    let gone = revoke(cp, cx, target, perms, &req.security_group_rule_ids, true)?;
    Ok(wire::RevokeSecurityGroupEgressResult {
        r#return: Some(true),
        revoked_security_group_rules: Some(gone.iter().map(revoked_item).collect()),
        unknown_ip_permissions: None,
    })
}

/// ModifySecurityGroupRules: each `SecurityGroupRule.N` replaces one rule's definition.
/// Empty peers are taken as absent (a rule has exactly one); the protocol and the
/// description are passed as given, for the control plane to check. The ids are parsed
/// in EC2's order: the group, every rule, then the referenced groups.
pub fn modify_rules(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifySecurityGroupRulesRequest,
) -> Result<wire::ModifySecurityGroupRulesResult> {
    let group = id(&req.group_id)?;
    let rule_ids = req
        .security_group_rules
        .iter()
        .map(|item| id(&item.security_group_rule_id))
        .collect::<Result<Vec<_>>>()?;
    let updates: Vec<RuleUpdate> = req
        .security_group_rules
        .into_iter()
        .zip(rule_ids)
        .map(|(item, rule_id)| {
            let Some(def) = item.security_group_rule else {
                return Ok(RuleUpdate::of(rule_id));
            };
            Ok(RuleUpdate {
                rule_id,
                protocol: def.ip_protocol,
                from_port: def.from_port.map(i64::from),
                to_port: def.to_port.map(i64::from),
                cidr_ipv4: non_empty(def.cidr_ipv4),
                cidr_ipv6: non_empty(def.cidr_ipv6),
                prefix_list_id: non_empty(def.prefix_list_id),
                referenced_group_id: non_empty(def.referenced_group_id)
                    .as_deref()
                    .map(id)
                    .transpose()?,
                description: def.description,
            })
        })
        .collect::<Result<_>>()?;
    cp.modify_security_group_rules(cx.caller, &group, &updates, cx.dry_run)?;
    Ok(wire::ModifySecurityGroupRulesResult {
        r#return: Some(true),
    })
}
