//! Network ACLs: every VPC's default network ACL, as DescribeNetworkAcls shows it.
//!
//! EC2 gives each VPC one default ACL that allows all traffic both ways (rule 100)
//! above the final deny (`*`, rule 32767), associated with every subnet that has no
//! other ACL. Strato has no custom ACLs yet (CreateNetworkAcl is not served) and
//! enforces none beyond the security groups, so the default ACL is derived from the
//! VPC and its subnets rather than stored: its id is a digest of the VPC id, stable
//! for the VPC's life, and it can carry tags like any resource.

use super::Tagged;
use crate::page::{paginate, PageRequest};
use crate::tags::tags_of_ids;
use crate::{Caller, ControlPlane};
use sha2::{Digest, Sha256};
use strato_common::filter::FilterSet;
use strato_common::{AccountId, Error, NetworkAclId, ResourceId, ResourceKind, Result};
use strato_domain::Scope;
use strato_domain::{Subnet, Vpc};
use strato_store::WriteTx;

/// The filters DescribeNetworkAcls accepts (EC2's list).
pub const ACL_FILTERS: &[&str] = &[
    "association.association-id",
    "association.network-acl-id",
    "association.subnet-id",
    "default",
    "entry.cidr",
    "entry.egress",
    "entry.icmp.code",
    "entry.icmp.type",
    "entry.ipv6-cidr",
    "entry.port-range.from",
    "entry.port-range.to",
    "entry.protocol",
    "entry.rule-action",
    "entry.rule-number",
    "network-acl-id",
    "owner-id",
    "vpc-id",
];

/// One entry (rule) of an ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclEntry {
    pub rule_number: u32,
    /// `-1` for every protocol.
    pub protocol: String,
    pub allow: bool,
    pub egress: bool,
    pub cidr: String,
}

/// A network ACL as DescribeNetworkAcls answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkAcl {
    pub id: NetworkAclId,
    pub account_id: AccountId,
    pub vpc_id: String,
    pub is_default: bool,
    pub entries: Vec<AclEntry>,
    /// (association id, subnet id).
    pub associations: Vec<(String, String)>,
}

fn digest17(kind: &str, of: &str) -> String {
    let d = hex::encode(Sha256::digest(format!("{kind}:{of}")));
    d[..17].to_string()
}

/// The id of `vpc`'s default ACL.
pub fn default_acl_id(vpc: &str) -> NetworkAclId {
    NetworkAclId::parse(&format!("acl-{}", digest17("default-acl", vpc)))
        .unwrap_or_else(|_| unreachable!("17 hex digits form an acl id"))
}

/// EC2's default entries: allow everything, then deny everything, each way.
fn default_entries() -> Vec<AclEntry> {
    let mut out = vec![];
    for egress in [false, true] {
        for (rule_number, allow) in [(100, true), (32767, false)] {
            out.push(AclEntry {
                rule_number,
                protocol: "-1".into(),
                allow,
                egress,
                cidr: "0.0.0.0/0".into(),
            });
        }
    }
    out
}

fn default_acl(vpc: &Vpc, subnets: &[Subnet]) -> NetworkAcl {
    let mut associations: Vec<(String, String)> = subnets
        .iter()
        .filter(|s| s.vpc_id == vpc.id)
        .map(|s| {
            (
                format!("aclassoc-{}", digest17("acl-association", s.id.as_str())),
                s.id.to_string(),
            )
        })
        .collect();
    associations.sort();
    NetworkAcl {
        id: default_acl_id(vpc.id.as_str()),
        account_id: vpc.account_id.clone(),
        vpc_id: vpc.id.to_string(),
        is_default: true,
        entries: default_entries(),
        associations,
    }
}

fn acl_field(a: &NetworkAcl, name: &str) -> Vec<String> {
    let entries = |f: &dyn Fn(&AclEntry) -> Option<String>| -> Vec<String> {
        a.entries.iter().filter_map(f).collect()
    };
    match name {
        "network-acl-id" | "association.network-acl-id" => vec![a.id.to_string()],
        "vpc-id" => vec![a.vpc_id.clone()],
        "owner-id" => vec![a.account_id.to_string()],
        "default" => vec![a.is_default.to_string()],
        "association.association-id" => a.associations.iter().map(|(id, _)| id.clone()).collect(),
        "association.subnet-id" => a.associations.iter().map(|(_, s)| s.clone()).collect(),
        "entry.cidr" => entries(&|e| Some(e.cidr.clone())),
        "entry.egress" => entries(&|e| Some(e.egress.to_string())),
        "entry.protocol" => entries(&|e| Some(e.protocol.clone())),
        "entry.rule-action" => entries(&|e| Some(if e.allow { "allow" } else { "deny" }.into())),
        "entry.rule-number" => entries(&|e| Some(e.rule_number.to_string())),
        // The default entries name no ports, ICMP codes or IPv6 blocks.
        _ => vec![],
    }
}

/// Whether `id` is the default ACL of one of the account's VPCs (for tagging).
pub(crate) fn acl_exists(tx: &WriteTx, account: &Scope, id: &str) -> Result<bool> {
    let vpcs: Vec<Vpc> = tx.list_docs(account)?;
    Ok(vpcs
        .iter()
        .any(|v| default_acl_id(v.id.as_str()).as_str() == id))
}

impl ControlPlane {
    /// DescribeNetworkAcls: the default ACL of each of the caller's VPCs.
    pub fn describe_network_acls(
        &self,
        caller: &Caller,
        ids: &[NetworkAclId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Tagged<NetworkAcl>>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        let (acls, mut tags) = self.db.read(|tx| {
            let vpcs: Vec<Vpc> = tx.list_docs(account)?;
            let subnets: Vec<Subnet> = tx.list_docs(account)?;
            let acls: Vec<NetworkAcl> = vpcs.iter().map(|v| default_acl(v, &subnets)).collect();
            let tags = tags_of_ids(tx, account, acls.iter().map(|a| a.id.as_str()))?;
            Ok((acls, tags))
        })?;
        for id in ids {
            if !acls.iter().any(|a| &a.id == id) {
                return Err(Error::not_found(ResourceKind::NetworkAcl, id));
            }
        }
        let mut list: Vec<Tagged<NetworkAcl>> = acls
            .into_iter()
            .filter(|a| ids.is_empty() || ids.contains(&a.id))
            .filter_map(|a| {
                let tg = tags.remove(a.id.as_str()).unwrap_or_default();
                filters
                    .matches(&tg, |n| acl_field(&a, n))
                    .then_some((a, tg))
            })
            .collect();
        list.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        Ok(paginate(list, page, |(a, _)| a.id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_acl_ids_are_stable_and_distinct() {
        let a = default_acl_id("vpc-0123456789abcdef0");
        assert_eq!(a, default_acl_id("vpc-0123456789abcdef0"));
        assert_ne!(a, default_acl_id("vpc-0123456789abcdef1"));
        assert!(a.as_str().starts_with("acl-") && a.as_str().len() == 21);
    }

    #[test]
    fn default_entries_allow_then_deny_each_way() {
        let e = default_entries();
        assert_eq!(e.len(), 4);
        assert!(e.iter().filter(|e| e.rule_number == 100).all(|e| e.allow));
        assert!(e
            .iter()
            .filter(|e| e.rule_number == 32767)
            .all(|e| !e.allow));
    }
}
