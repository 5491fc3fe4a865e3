//! VPC networking, the control-plane half: VPCs, subnets, security groups and their
//! rules, internet gateways, route tables and DHCP options, with EC2's validation and
//! error codes. Nothing here touches a host yet: these are the records a dataplane
//! will later realise (namespaces, taps, nftables).
//!
//! Every account gets the network AWS gives it ([`defaults`]) the first time it
//! uses the network API. Every change is validated first and then made in one store
//! transaction; `DryRun` is answered after validation, before any change.

pub mod acls;
pub mod addresses;
pub mod dataplane;
pub mod defaults;
pub mod gateways;
pub mod interfaces;
pub mod route_tables;
pub mod rules;
pub mod security_groups;
pub mod subnets;
pub mod vpcs;

use crate::page::{paginate, PageRequest};
use crate::{Caller, ControlPlane, Tags};
use std::collections::HashMap;
use strato_common::filter::FilterSet;
use strato_common::{AccountId, Error, ResourceId, ResourceKind, Result};
use strato_domain::Scope;
use strato_store::{Document, ReadTx};

/// A resource with its tags, as Describe calls return it.
pub type Tagged<T> = (T, Tags);

/// The smallest and largest VPC and subnet blocks EC2 allows (`/16` to `/28`).
pub const MIN_PREFIX: u8 = 16;
/// See [`MIN_PREFIX`].
pub const MAX_PREFIX: u8 = 28;

/// Loads one record of the caller's account, or `<Kind>.NotFound`.
pub(crate) fn load<T: Document>(
    tx: &ReadTx,
    account: &Scope,
    kind: ResourceKind,
    id: &str,
) -> Result<T> {
    tx.get_doc::<T>(account, id)?
        .ok_or_else(|| Error::not_found(kind, id))
}

/// Builds a Describe answer: keeps the records named by `ids` (each must exist, else
/// `<Kind>.NotFound` for the first missing one) or all of them, attaches tags, applies
/// the filters and the page. `field` answers a record's values for a filter name.
pub(crate) fn describe<T: Document, I: ResourceId>(
    tx: &ReadTx,
    account: &Scope,
    kind: ResourceKind,
    ids: &[I],
    filters: &FilterSet,
    page: &PageRequest,
    field: impl Fn(&T, &str) -> Vec<String>,
) -> Result<(Vec<Tagged<T>>, Option<String>)> {
    let selected = select(tx.list_docs(account)?, kind, ids)?;
    filter_page(tx, account, selected, filters, page, field)
}

/// The records of `all` named by `ids`, in id order (each must exist, else
/// `<Kind>.NotFound` for the first missing one), or all of them: the first half of
/// [`describe`], for callers whose filters need more than the records to answer.
pub(crate) fn select<T: Document, I: ResourceId>(
    all: Vec<T>,
    kind: ResourceKind,
    ids: &[I],
) -> Result<Vec<T>> {
    if ids.is_empty() {
        return Ok(all);
    }
    let mut by_id: HashMap<String, T> = all
        .into_iter()
        .map(|d| (d.doc_id().to_string(), d))
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        // A repeated id is answered once, as EC2 does.
        if out.iter().any(|d: &T| d.doc_id() == id.as_str()) {
            continue;
        }
        out.push(
            by_id
                .remove(id.as_str())
                .ok_or_else(|| Error::not_found(kind, id))?,
        );
    }
    out.sort_by(|a, b| a.doc_id().cmp(b.doc_id()));
    Ok(out)
}

/// Attaches tags to the `selected` records, keeps those the filters accept and cuts
/// the page: the second half of [`describe`].
pub(crate) fn filter_page<T: Document>(
    tx: &ReadTx,
    account: &Scope,
    selected: Vec<T>,
    filters: &FilterSet,
    page: &PageRequest,
    field: impl Fn(&T, &str) -> Vec<String>,
) -> Result<(Vec<Tagged<T>>, Option<String>)> {
    let mut tags = crate::tags::tags_of_ids(tx, account, selected.iter().map(|d| d.doc_id()))?;
    let list: Vec<Tagged<T>> = selected
        .into_iter()
        .map(|d| {
            let t = tags.remove(d.doc_id()).unwrap_or_default();
            (d, t)
        })
        .filter(|(d, t)| filters.matches(t, |n| field(d, n)))
        .collect();
    Ok(paginate(list, page, |(d, _)| d.doc_id().to_string()))
}

/// A boolean as EC2 filters compare it.
pub(crate) fn flag(b: bool) -> Vec<String> {
    vec![if b { "true" } else { "false" }.to_string()]
}

impl ControlPlane {
    /// The ARN of a network resource (`arn:aws:ec2:<region>:<account>:<type>/<id>`).
    pub fn arn(region: &str, account: &AccountId, resource_type: &str, id: &str) -> String {
        format!("arn:aws:ec2:{region}:{account}:{resource_type}/{id}")
    }

    /// Answers `DryRunOperation` when asked to, after the caller validated everything.
    fn dry(dry_run: bool) -> Result<()> {
        if dry_run {
            Err(Error::DryRunOperation)
        } else {
            Ok(())
        }
    }

    /// Checks an availability zone name and returns it.
    fn zone(&self, region: &str, name: &str) -> Result<String> {
        let zones = self.cfg.zones(region);
        if zones.iter().any(|z| z == name) {
            Ok(name.to_string())
        } else {
            Err(Error::invalid_value(format!(
                "Value ({name}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                zones.join(", ")
            )))
        }
    }

    /// Resolves a caller for the network API: makes sure the account's default network
    /// exists first.
    fn net_caller<'c>(&self, caller: &'c Caller) -> Result<&'c Caller> {
        self.ensure_network_defaults(&caller.scope())?;
        Ok(caller)
    }
}
