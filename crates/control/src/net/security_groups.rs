//! Security groups and their rules: CreateSecurityGroup, DeleteSecurityGroup,
//! DescribeSecurityGroups, DescribeSecurityGroupRules, Authorize/Revoke ingress and
//! egress, ModifySecurityGroupRules; and the resolution of an instance's groups.
//!
//! Groups are addressed by id anywhere, or by name within a VPC: the legacy name
//! parameters (`GroupName`, `SourceSecurityGroupName`, DescribeSecurityGroups'
//! `GroupName.N`) mean the default VPC, as in EC2. A rule may only reference a group
//! of the same account and VPC.

use super::rules::{
    check_rule_description, describe_rule, ipv4_peer, ipv6_peer, port_spec, GroupPairInput,
    IpPermissionInput, IpPermissionView, PortSpec, MAX_RULES_PER_DIRECTION,
};
use super::{load, Tagged};
use crate::page::{paginate, PageRequest};
use crate::tags::{put_tags, tags_for, tags_of_ids, TagSpec};
use crate::{Caller, ControlPlane, Tags};
use std::collections::{HashMap, HashSet};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::now_ms;
use strato_common::{
    Error, ResourceId, ResourceKind, Result, SecurityGroupId, SecurityGroupRuleId, VpcId,
};
use strato_domain::Scope;
use strato_store::{GroupRef, ReadTx, RulePeer, SecurityGroup, SecurityGroupRule, Vpc, WriteTx};

/// Filter names DescribeSecurityGroups accepts.
pub const GROUP_FILTERS: &[&str] = &[
    "description",
    "egress.ip-permission.cidr",
    "egress.ip-permission.from-port",
    "egress.ip-permission.group-id",
    "egress.ip-permission.group-name",
    "egress.ip-permission.ipv6-cidr",
    "egress.ip-permission.prefix-list-id",
    "egress.ip-permission.protocol",
    "egress.ip-permission.to-port",
    "egress.ip-permission.user-id",
    "group-id",
    "group-name",
    "ip-permission.cidr",
    "ip-permission.from-port",
    "ip-permission.group-id",
    "ip-permission.group-name",
    "ip-permission.ipv6-cidr",
    "ip-permission.prefix-list-id",
    "ip-permission.protocol",
    "ip-permission.to-port",
    "ip-permission.user-id",
    "owner-id",
    "vpc-id",
];

/// Filter names DescribeSecurityGroupRules accepts.
pub const RULE_FILTERS: &[&str] = &["group-id", "security-group-rule-id"];

/// How a request names a security group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupSelector {
    /// By id, in any VPC of the account.
    Id(SecurityGroupId),
    /// By name, in the default VPC.
    Name(String),
}

/// A CreateSecurityGroup request.
#[derive(Clone, Debug, Default)]
pub struct CreateSecurityGroupInput {
    /// `GroupName`.
    pub name: Option<String>,
    /// `GroupDescription`.
    pub description: Option<String>,
    /// `VpcId`; the default VPC when absent.
    pub vpc_id: Option<VpcId>,
    /// `TagSpecification.N`.
    pub tag_specs: Vec<TagSpec>,
}

/// A group as DescribeSecurityGroups shows it: tags and rules by direction.
#[derive(Clone, Debug)]
pub struct GroupInfo {
    /// The group.
    pub group: SecurityGroup,
    /// Its tags.
    pub tags: Tags,
    /// Inbound rules grouped into permissions.
    pub ingress: Vec<IpPermissionView>,
    /// Outbound rules grouped into permissions.
    pub egress: Vec<IpPermissionView>,
}

/// One `SecurityGroupRule.N` of ModifySecurityGroupRules: the rule's new definition.
#[derive(Clone, Debug)]
pub struct RuleUpdate {
    /// `SecurityGroupRuleId` of the rule to change.
    pub rule_id: SecurityGroupRuleId,
    /// `IpProtocol`.
    pub protocol: Option<String>,
    /// `FromPort`.
    pub from_port: Option<i64>,
    /// `ToPort`.
    pub to_port: Option<i64>,
    /// `CidrIpv4` peer.
    pub cidr_ipv4: Option<String>,
    /// `CidrIpv6` peer.
    pub cidr_ipv6: Option<String>,
    /// `PrefixListId` peer (refused).
    pub prefix_list_id: Option<String>,
    /// `ReferencedGroupId` peer.
    pub referenced_group_id: Option<SecurityGroupId>,
    /// `Description`.
    pub description: Option<String>,
}

impl RuleUpdate {
    /// An update of `rule_id` that gives nothing yet: a rule id has no default, so
    /// callers name it here and fill in the definition with struct update syntax.
    pub fn of(rule_id: SecurityGroupRuleId) -> Self {
        RuleUpdate {
            rule_id,
            protocol: None,
            from_port: None,
            to_port: None,
            cidr_ipv4: None,
            cidr_ipv6: None,
            prefix_list_id: None,
            referenced_group_id: None,
            description: None,
        }
    }
}

/// Validates a group name or description (`what` names the parameter).
fn check_group_text(value: &str, what: &str) -> Result<()> {
    if value.chars().count() > 255 {
        return Err(Error::invalid_value(format!(
            "Value ({value}) for parameter {what} is invalid. Length exceeds maximum of 255."
        )));
    }
    if !super::rules::allowed_text(value) {
        return Err(Error::invalid_value(format!(
            "Value ({value}) for parameter {what} is invalid. Character sets beyond a-zA-Z0-9 ._-:/()#,@[]+=&;{{}}!$* are not supported."
        )));
    }
    Ok(())
}

/// Checks a new group's name and description as EC2 does (both given, their length and
/// characters, no `sg-` name, not `default`) and answers them. The front door checks them
/// before it parses the `VpcId`, because EC2 answers them first.
pub fn check_new_group<'a>(
    name: Option<&'a str>,
    description: Option<&'a str>,
) -> Result<(&'a str, &'a str)> {
    let name = name
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::MissingParameter("GroupName".into()))?;
    let description = description
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::MissingParameter("GroupDescription".into()))?;
    check_group_text(name, "GroupName")?;
    check_group_text(description, "GroupDescription")?;
    if name.to_ascii_lowercase().starts_with("sg-") {
        return Err(Error::invalid_value(format!(
            "Value ({name}) for parameter GroupName is invalid. Group names may not be in the format sg-*."
        )));
    }
    if name == SecurityGroup::DEFAULT_NAME {
        return Err(Error::InvalidGroupReserved(format!(
            "The security group '{name}' is reserved"
        )));
    }
    Ok((name, description))
}

/// Checks that a Revoke request names its rules one way: by permissions or by rule ids,
/// never both and never neither. The front door checks this before it parses the rule
/// ids, so that a request giving both forms is answered so whatever its ids look like.
pub fn check_revoke_form(by_permissions: bool, by_rule_ids: bool) -> Result<()> {
    match (by_permissions, by_rule_ids) {
        (false, false) => Err(Error::MissingParameter(
            "IpPermissions or SecurityGroupRuleIds".into(),
        )),
        (true, true) => Err(Error::InvalidParameterCombination(
            "IpPermissions and SecurityGroupRuleIds cannot be used together.".into(),
        )),
        _ => Ok(()),
    }
}

fn no_default_vpc() -> Error {
    Error::VpcIdNotSpecified("No default VPC for this user".into())
}

fn different_networks() -> Error {
    Error::NotFoundWithMessage {
        kind: ResourceKind::SecurityGroup,
        message: "You have specified two resources that belong to different networks.".into(),
    }
}

/// The caller's default VPC, inside a transaction.
pub(crate) fn default_vpc_tx(tx: &ReadTx, account: &Scope) -> Result<Option<Vpc>> {
    let list: Vec<Vpc> = tx.list_docs_by(account, "is_default", "true")?;
    Ok(list.into_iter().next())
}

/// A group by name within a VPC.
fn group_by_name(
    tx: &ReadTx,
    account: &Scope,
    vpc: &VpcId,
    name: &str,
    default_vpc: bool,
) -> Result<SecurityGroup> {
    let groups: Vec<SecurityGroup> = tx.list_docs_by(account, "name", name)?;
    groups
        .into_iter()
        .find(|g| &g.vpc_id == vpc)
        .ok_or_else(|| Error::NotFoundWithMessage {
            kind: ResourceKind::SecurityGroup,
            message: if default_vpc {
                format!("The security group '{name}' does not exist in default VPC '{vpc}'")
            } else {
                format!("The security group '{name}' does not exist in VPC '{vpc}'")
            },
        })
}

/// Resolves a [`GroupSelector`] inside a transaction.
pub(crate) fn resolve_group(
    tx: &WriteTx,
    account: &Scope,
    sel: &GroupSelector,
) -> Result<SecurityGroup> {
    match sel {
        GroupSelector::Id(id) => load(tx, account, ResourceKind::SecurityGroup, id.as_str()),
        GroupSelector::Name(name) => {
            let vpc = default_vpc_tx(tx, account)?.ok_or_else(no_default_vpc)?;
            group_by_name(tx, account, &vpc.id, name, true)
        }
    }
}

/// Resolves the security groups of a launch into `vpc`: ids (which must lie in that
/// VPC) and names (looked up in it); with neither, the VPC's default group.
pub(crate) fn resolve_instance_groups(
    tx: &ReadTx,
    account: &Scope,
    vpc: &VpcId,
    subnet: &str,
    ids: &[SecurityGroupId],
    names: &[String],
) -> Result<Vec<GroupRef>> {
    let mut out: Vec<GroupRef> = vec![];
    let mut push = |g: SecurityGroup| {
        if !out.iter().any(|r| r.id == g.id) {
            out.push(GroupRef {
                id: g.id,
                name: g.name,
            });
        }
    };
    for id in ids {
        let g: SecurityGroup = load(tx, account, ResourceKind::SecurityGroup, id.as_str())?;
        if &g.vpc_id != vpc {
            return Err(Error::InvalidParameter(format!(
                "Security group {} and subnet {subnet} belong to different networks.",
                g.id
            )));
        }
        push(g);
    }
    for name in names {
        push(group_by_name(tx, account, vpc, name, false)?);
    }
    if ids.is_empty() && names.is_empty() {
        push(group_by_name(
            tx,
            account,
            vpc,
            SecurityGroup::DEFAULT_NAME,
            false,
        )?);
    }
    Ok(out)
}

/// Expands request permissions into the rules they stand for, for `group`. Referenced
/// groups must be the caller's and in the group's VPC.
fn expand(
    tx: &WriteTx,
    account: &Scope,
    group: &SecurityGroup,
    egress: bool,
    permissions: &[IpPermissionInput],
) -> Result<Vec<SecurityGroupRule>> {
    if permissions.is_empty() {
        return Err(Error::MissingParameter("IpPermissions".into()));
    }
    let mut out = vec![];
    for p in permissions {
        let spec = port_spec(p.protocol.as_deref(), p.from_port, p.to_port)?;
        if !p.prefix_list_ids.is_empty() {
            return Err(Error::Unsupported(
                "Prefix lists are not supported by this endpoint.".into(),
            ));
        }
        if p.ipv4_ranges.is_empty() && p.ipv6_ranges.is_empty() && p.groups.is_empty() {
            return Err(Error::MissingParameter(
                "IpRanges, Ipv6Ranges or Groups (UserIdGroupPairs)".into(),
            ));
        }
        let rule = |peer: RulePeer, description: &Option<String>| -> Result<SecurityGroupRule> {
            let description = description.clone().filter(|d| !d.is_empty());
            if let Some(d) = &description {
                check_rule_description(d)?;
            }
            Ok(new_rule(account, group, egress, &spec, peer, description))
        };
        for r in &p.ipv4_ranges {
            let cidr = r
                .cidr
                .as_deref()
                .ok_or_else(|| Error::MissingParameter("CidrIp".into()))?;
            out.push(rule(ipv4_peer(cidr)?, &r.description)?);
        }
        for r in &p.ipv6_ranges {
            let cidr = r
                .cidr
                .as_deref()
                .ok_or_else(|| Error::MissingParameter("CidrIpv6".into()))?;
            out.push(rule(ipv6_peer(cidr)?, &r.description)?);
        }
        for pair in &p.groups {
            let peer = resolve_pair(tx, account, group, pair)?;
            out.push(rule(peer, &pair.description)?);
        }
    }
    Ok(out)
}

/// The group a `UserIdGroupPair` names, as a rule peer.
fn resolve_pair(
    tx: &WriteTx,
    account: &Scope,
    group: &SecurityGroup,
    pair: &GroupPairInput,
) -> Result<RulePeer> {
    let shown = pair
        .group_id
        .as_ref()
        .map(|g| g.to_string())
        .or_else(|| pair.group_name.clone())
        .unwrap_or_default();
    // Groups of other accounts are as invisible here as everywhere else.
    if let Some(user) = pair.user_id.as_deref().filter(|u| !u.is_empty()) {
        if user != account.account.as_str() {
            return Err(Error::not_found(ResourceKind::SecurityGroup, shown));
        }
    }
    let peer_group = match (&pair.group_id, pair.group_name.as_deref()) {
        (Some(id), _) => {
            load::<SecurityGroup>(tx, account, ResourceKind::SecurityGroup, id.as_str())?
        }
        (_, Some(name)) if !name.is_empty() => {
            group_by_name(tx, account, &group.vpc_id, name, false)?
        }
        _ => return Err(Error::MissingParameter("GroupId or GroupName".into())),
    };
    if peer_group.vpc_id != group.vpc_id {
        return Err(different_networks());
    }
    Ok(RulePeer::Group {
        group_id: peer_group.id,
        account_id: account.account.clone(),
    })
}

fn new_rule(
    account: &Scope,
    group: &SecurityGroup,
    egress: bool,
    spec: &PortSpec,
    peer: RulePeer,
    description: Option<String>,
) -> SecurityGroupRule {
    SecurityGroupRule {
        id: SecurityGroupRuleId::generate(),
        account_id: account.account.clone(),
        region: account.region.clone(),
        group_id: group.id.clone(),
        egress,
        protocol: spec.protocol.clone(),
        from_port: spec.from_port,
        to_port: spec.to_port,
        peer,
        description,
    }
}

fn duplicate(r: &SecurityGroupRule) -> Error {
    Error::InvalidPermissionDuplicate(format!(
        "the specified rule \"{}\" already exists",
        describe_rule(r)
    ))
}

fn group_field(
    g: &SecurityGroup,
    rules: &[&SecurityGroupRule],
    names: &HashMap<String, String>,
    name: &str,
) -> Vec<String> {
    let (egress, key) = match name.strip_prefix("egress.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    let of_dir = || rules.iter().filter(move |r| r.egress == egress);
    match key {
        "description" if !egress => vec![g.description.clone()],
        "group-id" if !egress => vec![g.id.to_string()],
        "group-name" if !egress => vec![g.name.clone()],
        "owner-id" if !egress => vec![g.account_id.to_string()],
        "vpc-id" if !egress => vec![g.vpc_id.to_string()],
        "ip-permission.cidr" => of_dir()
            .filter_map(|r| match &r.peer {
                RulePeer::Ipv4 { cidr } => Some(cidr.clone()),
                _ => None,
            })
            .collect(),
        "ip-permission.ipv6-cidr" => of_dir()
            .filter_map(|r| match &r.peer {
                RulePeer::Ipv6 { cidr } => Some(cidr.clone()),
                _ => None,
            })
            .collect(),
        "ip-permission.from-port" => of_dir()
            .map(|r| r.from_port.unwrap_or(-1).to_string())
            .collect(),
        "ip-permission.to-port" => of_dir()
            .map(|r| r.to_port.unwrap_or(-1).to_string())
            .collect(),
        "ip-permission.protocol" => of_dir().map(|r| r.protocol.clone()).collect(),
        "ip-permission.group-id" => of_dir()
            .filter_map(|r| r.referenced_group().map(|g| g.to_string()))
            .collect(),
        "ip-permission.group-name" => of_dir()
            .filter_map(|r| {
                r.referenced_group()
                    .and_then(|g| names.get(g.as_str()))
                    .cloned()
            })
            .collect(),
        "ip-permission.user-id" => of_dir()
            .filter_map(|r| match &r.peer {
                RulePeer::Group { account_id, .. } => Some(account_id.to_string()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

impl ControlPlane {
    /// CreateSecurityGroup: a group in `VpcId` (default: the default VPC) whose only
    /// rule lets all traffic out, as in EC2.
    pub fn create_security_group(
        &self,
        caller: &Caller,
        input: &CreateSecurityGroupInput,
        dry_run: bool,
    ) -> Result<Tagged<SecurityGroup>> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let (name, description) =
            check_new_group(input.name.as_deref(), input.description.as_deref())?;
        let tags = tags_for(&input.tag_specs, "security-group")?;
        let now = now_ms();
        let group = self.db.write(|tx| {
            let vpc: Vpc = match &input.vpc_id {
                Some(v) => load(tx, account, ResourceKind::Vpc, v.as_str())?,
                None => default_vpc_tx(tx, account)?.ok_or_else(no_default_vpc)?,
            };
            let same_name: Vec<SecurityGroup> = tx.list_docs_by(account, "name", name)?;
            if same_name.iter().any(|g| g.vpc_id == vpc.id) {
                return Err(Error::InvalidGroupDuplicate(format!(
                    "The security group '{name}' already exists for VPC '{}'",
                    vpc.id
                )));
            }
            Self::dry(dry_run)?;
            let group = SecurityGroup {
                id: SecurityGroupId::generate(),
                account_id: account.account.clone(),
                region: account.region.clone(),
                vpc_id: vpc.id.clone(),
                name: name.to_string(),
                description: description.to_string(),
                created_ms: now,
            };
            tx.insert_doc(&group)?;
            tx.insert_doc(&super::defaults::all_traffic_rule(
                &group,
                true,
                super::defaults::anywhere(),
            ))?;
            put_tags(tx, account, group.id.as_str(), "security-group", &tags)?;
            Ok(group)
        })?;
        tracing::info!(group = %group.id, vpc = %group.vpc_id, "security group created");
        Ok((group, tags))
    }

    /// DeleteSecurityGroup. A VPC's default group cannot be deleted (`CannotDelete`);
    /// a group used by an instance that is not terminated, or referenced by a rule of
    /// another group, is refused with `DependencyViolation`.
    pub fn delete_security_group(
        &self,
        caller: &Caller,
        sel: &GroupSelector,
        dry_run: bool,
    ) -> Result<SecurityGroupId> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let id = self.db.write(|tx| {
            let g = resolve_group(tx, account, sel)?;
            if g.is_default() {
                return Err(Error::CannotDelete(format!(
                    "the specified group: \"{}\" name: \"{}\" cannot be deleted by a user",
                    g.id, g.name
                )));
            }
            let busy =
                || Error::DependencyViolation(format!("resource {} has a dependent object", g.id));
            if tx.count_live_instances_in_group(account, g.id.as_str())? > 0
                || super::interfaces::group_in_use(tx, account, g.id.as_str())?
            {
                return Err(busy());
            }
            let referencing: Vec<SecurityGroupRule> =
                tx.list_docs_by(account, "ref_group_id", g.id.as_str())?;
            if referencing.iter().any(|r| r.group_id != g.id) {
                return Err(busy());
            }
            Self::dry(dry_run)?;
            let own: Vec<SecurityGroupRule> =
                tx.list_docs_by(account, "group_id", g.id.as_str())?;
            for r in own {
                tx.delete_doc::<SecurityGroupRule>(account, r.id.as_str())?;
            }
            tx.delete_doc::<SecurityGroup>(account, g.id.as_str())?;
            Ok(g.id)
        })?;
        tracing::info!(group = %id, "security group deleted");
        Ok(id)
    }

    /// DescribeSecurityGroups: by id (any VPC), by name (default VPC), or all; filtered
    /// and paged, with rules grouped into permissions.
    pub fn describe_security_groups(
        &self,
        caller: &Caller,
        ids: &[SecurityGroupId],
        names: &[String],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<GroupInfo>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let (groups, rules, mut tags, selected) = self.db.read(|tx| {
            let groups: Vec<SecurityGroup> = tx.list_docs(account)?;
            let rules: Vec<SecurityGroupRule> = tx.list_docs(account)?;
            let tags = tags_of_ids(tx, account, groups.iter().map(|g| g.id.as_str()))?;
            let mut selected: Option<HashSet<SecurityGroupId>> = None;
            if !ids.is_empty() || !names.is_empty() {
                let mut set = HashSet::new();
                for id in ids {
                    let g = groups
                        .iter()
                        .find(|g| &g.id == id)
                        .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroup, id))?;
                    set.insert(g.id.clone());
                }
                if !names.is_empty() {
                    let vpc = default_vpc_tx(tx, account)?.ok_or_else(|| {
                        Error::VpcIdNotSpecified(
                            "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.".into(),
                        )
                    })?;
                    for n in names {
                        set.insert(group_by_name(tx, account, &vpc.id, n, true)?.id);
                    }
                }
                selected = Some(set);
            }
            Ok((groups, rules, tags, selected))
        })?;
        let names_by_id: HashMap<String, String> = groups
            .iter()
            .map(|g| (g.id.to_string(), g.name.clone()))
            .collect();
        let mut rules_by_group: HashMap<&str, Vec<&SecurityGroupRule>> = HashMap::new();
        for r in &rules {
            rules_by_group
                .entry(r.group_id.as_str())
                .or_default()
                .push(r);
        }
        let mut list = vec![];
        for g in &groups {
            if selected.as_ref().is_some_and(|s| !s.contains(&g.id)) {
                continue;
            }
            let own = rules_by_group.remove(g.id.as_str()).unwrap_or_default();
            let t = tags.remove(g.id.as_str()).unwrap_or_default();
            if !filters.matches(&t, |n| group_field(g, &own, &names_by_id, n)) {
                continue;
            }
            list.push(GroupInfo {
                group: g.clone(),
                tags: t,
                ingress: super::rules::group_permissions(own.iter().copied().filter(|r| !r.egress)),
                egress: super::rules::group_permissions(own.iter().copied().filter(|r| r.egress)),
            });
        }
        Ok(paginate(list, page, |i| i.group.id.to_string()))
    }

    /// DescribeSecurityGroupRules.
    pub fn describe_security_group_rules(
        &self,
        caller: &Caller,
        ids: &[SecurityGroupRuleId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Tagged<SecurityGroupRule>>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        self.db.read(|tx| {
            super::describe(
                tx,
                &caller.scope(),
                ResourceKind::SecurityGroupRule,
                ids,
                filters,
                page,
                |r: &SecurityGroupRule, name| match name {
                    "group-id" => vec![r.group_id.to_string()],
                    "security-group-rule-id" => vec![r.id.to_string()],
                    _ => vec![],
                },
            )
        })
    }

    /// AuthorizeSecurityGroupIngress / AuthorizeSecurityGroupEgress: adds the rules the
    /// permissions stand for, all or none. A rule that exists already (or twice in the
    /// request) is `InvalidPermission.Duplicate`.
    pub fn authorize_security_group(
        &self,
        caller: &Caller,
        sel: &GroupSelector,
        egress: bool,
        permissions: &[IpPermissionInput],
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<Vec<Tagged<SecurityGroupRule>>> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let tags = tags_for(tag_specs, "security-group-rule")?;
        let added = self.db.write(|tx| {
            let group = resolve_group(tx, account, sel)?;
            let new = expand(tx, account, &group, egress, permissions)?;
            let existing: Vec<SecurityGroupRule> =
                tx.list_docs_by(account, "group_id", group.id.as_str())?;
            for (i, r) in new.iter().enumerate() {
                if existing.iter().any(|e| e.same_permission(r))
                    || new[..i].iter().any(|e| e.same_permission(r))
                {
                    return Err(duplicate(r));
                }
            }
            let in_direction = existing.iter().filter(|e| e.egress == egress).count();
            if in_direction + new.len() > MAX_RULES_PER_DIRECTION {
                return Err(Error::RulesPerSecurityGroupLimitExceeded(
                    "The maximum number of rules per security group has been reached.".into(),
                ));
            }
            Self::dry(dry_run)?;
            for r in &new {
                tx.insert_doc(r)?;
                put_tags(tx, account, r.id.as_str(), "security-group-rule", &tags)?;
            }
            Ok(new)
        })?;
        Ok(added.into_iter().map(|r| (r, tags.clone())).collect())
    }

    /// RevokeSecurityGroupIngress / RevokeSecurityGroupEgress, by permissions or by rule
    /// ids: all named rules go, or none if any is missing
    /// (`InvalidPermission.NotFound` / `InvalidSecurityGroupRuleId.NotFound`).
    pub fn revoke_security_group(
        &self,
        caller: &Caller,
        sel: &GroupSelector,
        egress: bool,
        permissions: &[IpPermissionInput],
        ids: &[SecurityGroupRuleId],
        dry_run: bool,
    ) -> Result<Vec<SecurityGroupRule>> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        check_revoke_form(!permissions.is_empty(), !ids.is_empty())?;
        self.db.write(|tx| {
            let group = resolve_group(tx, account, sel)?;
            let existing: Vec<SecurityGroupRule> =
                tx.list_docs_by(account, "group_id", group.id.as_str())?;
            let mut gone: Vec<SecurityGroupRule> = vec![];
            let mut take = |r: &SecurityGroupRule| {
                if !gone.iter().any(|g| g.id == r.id) {
                    gone.push(r.clone());
                }
            };
            if ids.is_empty() {
                for wanted in expand(tx, account, &group, egress, permissions)? {
                    let found = existing
                        .iter()
                        .find(|e| e.same_permission(&wanted))
                        .ok_or_else(|| {
                            Error::InvalidPermissionNotFound(
                                "The specified rule does not exist in this security group.".into(),
                            )
                        })?;
                    take(found);
                }
            } else {
                for id in ids {
                    let found = existing
                        .iter()
                        .find(|e| &e.id == id && e.egress == egress)
                        .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroupRule, id))?;
                    take(found);
                }
            }
            Self::dry(dry_run)?;
            for r in &gone {
                tx.delete_doc::<SecurityGroupRule>(account, r.id.as_str())?;
            }
            Ok(gone)
        })
    }

    /// ModifySecurityGroupRules: replaces rules of a group by id with new definitions.
    pub fn modify_security_group_rules(
        &self,
        caller: &Caller,
        group_id: &SecurityGroupId,
        updates: &[RuleUpdate],
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        if updates.is_empty() {
            return Err(Error::MissingParameter("SecurityGroupRule".into()));
        }
        self.db.write(|tx| {
            let group: SecurityGroup =
                load(tx, account, ResourceKind::SecurityGroup, group_id.as_str())?;
            let mut rules: Vec<SecurityGroupRule> =
                tx.list_docs_by(account, "group_id", group.id.as_str())?;
            let mut changed = vec![];
            for u in updates {
                let pos = rules
                    .iter()
                    .position(|r| r.id == u.rule_id)
                    .ok_or_else(|| Error::not_found(ResourceKind::SecurityGroupRule, &u.rule_id))?;
                let old = &rules[pos];
                let spec = port_spec(u.protocol.as_deref(), u.from_port, u.to_port)?;
                let peers = [
                    u.cidr_ipv4.is_some(),
                    u.cidr_ipv6.is_some(),
                    u.prefix_list_id.is_some(),
                    u.referenced_group_id.is_some(),
                ];
                if peers.iter().filter(|p| **p).count() != 1 {
                    return Err(Error::InvalidParameterCombination(
                        "Exactly one of CidrIpv4, CidrIpv6, PrefixListId and ReferencedGroupId must be given.".into(),
                    ));
                }
                let peer = if let Some(c) = &u.cidr_ipv4 {
                    ipv4_peer(c)?
                } else if let Some(c) = &u.cidr_ipv6 {
                    ipv6_peer(c)?
                } else if let Some(g) = &u.referenced_group_id {
                    resolve_pair(
                        tx,
                        account,
                        &group,
                        &GroupPairInput {
                            group_id: Some(g.clone()),
                            ..Default::default()
                        },
                    )?
                } else {
                    return Err(Error::Unsupported(
                        "Prefix lists are not supported by this endpoint.".into(),
                    ));
                };
                let description = u.description.clone().filter(|d| !d.is_empty());
                if let Some(d) = &description {
                    check_rule_description(d)?;
                }
                let mut next = new_rule(account, &group, old.egress, &spec, peer, description);
                next.id = old.id.clone();
                if rules
                    .iter()
                    .any(|r| r.id != next.id && r.same_permission(&next))
                {
                    return Err(duplicate(&next));
                }
                rules[pos] = next.clone();
                changed.push(next);
            }
            Self::dry(dry_run)?;
            for r in &changed {
                tx.update_doc(r)?;
            }
            Ok(())
        })
    }
}
