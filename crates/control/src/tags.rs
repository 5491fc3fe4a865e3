//! Tags on every resource kind: CreateTags, DeleteTags, DescribeTags, and the
//! `TagSpecification` validation that creating actions share.

use crate::page::{paginate, PageRequest};
use crate::{Caller, ControlPlane};
use serde::Serialize;
use strato_common::filter::FilterSet;
use strato_common::{kind_of_id, Error, ResourceKind, Result};
use strato_domain::Scope;
use strato_store::{
    DhcpOptions, InternetGateway, ReadTx, RouteTable, SecurityGroup, SecurityGroupRule, Subnet,
    Tag, Vpc, WriteTx,
};

/// Most tags one resource may carry.
pub const MAX_TAGS: usize = 50;

/// Tags requested for resources a call creates (`TagSpecification.N`).
#[derive(Clone, Debug, Serialize)]
pub struct TagSpec {
    pub resource_type: String,
    pub tags: Vec<(String, String)>,
}

/// Filter names DescribeTags accepts.
pub const TAG_FILTERS: &[&str] = &["key", "value", "resource-id", "resource-type"];

/// Checks keys and values the way EC2 does.
pub fn validate_tags(tags: &[(String, String)]) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::TagLimitExceeded(format!(
            "The maximum number of tags per resource is {MAX_TAGS}."
        )));
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(Error::invalid_value(format!(
                "Tag key '{k}' is invalid: a tag key is 1 to 128 characters."
            )));
        }
        if v.chars().count() > 256 {
            return Err(Error::invalid_value(format!(
                "Tag value for key '{k}' exceeds the maximum length of 256 characters."
            )));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(Error::invalid_value(format!(
                "Tag keys starting with 'aws:' are reserved for internal use: '{k}'"
            )));
        }
    }
    Ok(())
}

/// The tags `TagSpecification.N` asks for on a resource of `resource_type`, validated.
/// Any other resource type is refused: silently dropping tags the caller asked for
/// would be worse than an error.
pub fn tags_for(specs: &[TagSpec], resource_type: &str) -> Result<Vec<(String, String)>> {
    let mut tags = vec![];
    for s in specs {
        if s.resource_type != resource_type {
            return Err(Error::invalid_value(format!(
                "'{}' is not a valid taggable resource type for this operation.",
                s.resource_type
            )));
        }
        tags.extend(s.tags.iter().cloned());
    }
    validate_tags(&tags)?;
    Ok(tags)
}

/// Stores tags of one resource (inside the caller's transaction).
pub(crate) fn put_tags(
    tx: &WriteTx,
    account: &Scope,
    resource_id: &str,
    resource_type: &str,
    tags: &[(String, String)],
) -> Result<()> {
    for (k, v) in tags {
        tx.put_tag(
            account,
            &Tag {
                resource_id: resource_id.to_string(),
                resource_type: resource_type.to_string(),
                key: k.clone(),
                value: v.clone(),
            },
        )?;
    }
    Ok(())
}

/// The tags of a set of resources of one kind, from one range query over their ids.
pub(crate) fn tags_of_ids<'a>(
    tx: &ReadTx,
    account: &Scope,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<strato_common::hashing::FastMap<String, crate::Tags>> {
    let ids: Vec<&str> = ids.into_iter().collect();
    let (Some(first), Some(last)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(Default::default());
    };
    tx.tags_in_range(account, first, last)
}

impl ControlPlane {
    /// Checks that a taggable resource exists for the caller; returns its tag type.
    fn taggable(&self, tx: &WriteTx, caller: &Caller, id: &str) -> Result<&'static str> {
        let kind = kind_of_id(id).ok_or_else(|| Error::InvalidId(id.to_string()))?;
        let exists = match kind {
            ResourceKind::Instance => tx
                .instance(&caller.scope(), id)?
                .is_some_and(|i| i.terminated_ms.is_none_or(|t| t >= self.visible_since())),
            ResourceKind::Image => tx
                .visible_image(&caller.account, &caller.region, id)?
                .is_some(),
            ResourceKind::KeyPair => tx.key_pair_by_id(&caller.scope(), id)?.is_some(),
            ResourceKind::Vpc => tx.get_doc::<Vpc>(&caller.scope(), id)?.is_some(),
            ResourceKind::Subnet => tx.get_doc::<Subnet>(&caller.scope(), id)?.is_some(),
            ResourceKind::SecurityGroup => {
                tx.get_doc::<SecurityGroup>(&caller.scope(), id)?.is_some()
            }
            ResourceKind::SecurityGroupRule => tx
                .get_doc::<SecurityGroupRule>(&caller.scope(), id)?
                .is_some(),
            ResourceKind::InternetGateway => tx
                .get_doc::<InternetGateway>(&caller.scope(), id)?
                .is_some(),
            ResourceKind::RouteTable => tx.get_doc::<RouteTable>(&caller.scope(), id)?.is_some(),
            ResourceKind::DhcpOptions => tx.get_doc::<DhcpOptions>(&caller.scope(), id)?.is_some(),
            ResourceKind::NetworkInterface => tx
                .get_doc::<strato_store::NetworkInterface>(&caller.scope(), id)?
                .is_some(),
            ResourceKind::Address => tx
                .get_doc::<strato_store::ElasticIp>(&caller.scope(), id)?
                .is_some(),
            ResourceKind::NetworkAcl => crate::net::acls::acl_exists(tx, &caller.scope(), id)?,
            ResourceKind::Volume => tx
                .get_doc::<strato_store::Volume>(&caller.scope(), id)?
                .is_some_and(|v| v.state != strato_store::VolumeState::Deleted),
            ResourceKind::Snapshot => tx
                .get_doc::<strato_store::Snapshot>(&caller.scope(), id)?
                .is_some_and(|s| s.state != strato_store::SnapshotState::Deleting),
            // Neither reservations nor associations carry tags in EC2.
            ResourceKind::Reservation
            | ResourceKind::RouteTableAssociation
            | ResourceKind::AddressAssociation
            | ResourceKind::NetworkInterfaceAttachment
            | ResourceKind::PublicIp => return Err(Error::InvalidId(id.to_string())),
        };
        if !exists {
            return Err(Error::not_found(kind, id));
        }
        Ok(kind.tag_resource_type())
    }

    pub fn create_tags(
        &self,
        caller: &Caller,
        resource_ids: &[String],
        tags: &[(String, String)],
        dry_run: bool,
    ) -> Result<()> {
        if resource_ids.is_empty() {
            return Err(Error::MissingParameter("ResourceId".into()));
        }
        if tags.is_empty() {
            return Err(Error::MissingParameter("Tag".into()));
        }
        validate_tags(tags)?;
        self.db.write(|tx| {
            let mut kinds = Vec::with_capacity(resource_ids.len());
            for id in resource_ids {
                kinds.push(self.taggable(tx, caller, id)?);
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            for (id, rtype) in resource_ids.iter().zip(kinds) {
                for (k, v) in tags {
                    tx.put_tag(
                        &caller.scope(),
                        &Tag {
                            resource_id: id.clone(),
                            resource_type: rtype.to_string(),
                            key: k.clone(),
                            value: v.clone(),
                        },
                    )?;
                }
                if tx.tags_of(&caller.scope(), id)?.len() > MAX_TAGS {
                    return Err(Error::TagLimitExceeded(format!(
                        "The maximum number of tags per resource is {MAX_TAGS}; '{id}' would have more."
                    )));
                }
            }
            Ok(())
        })
    }

    /// DeleteTags. A tag given with a value is deleted only if the value matches; with
    /// no tags at all, every tag of the resources goes.
    pub fn delete_tags(
        &self,
        caller: &Caller,
        resource_ids: &[String],
        tags: &[(String, Option<String>)],
        dry_run: bool,
    ) -> Result<()> {
        if resource_ids.is_empty() {
            return Err(Error::MissingParameter("ResourceId".into()));
        }
        self.db.write(|tx| {
            for id in resource_ids {
                self.taggable(tx, caller, id)?;
            }
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            for id in resource_ids {
                if tags.is_empty() {
                    tx.delete_tags_of(&caller.scope(), id)?;
                }
                for (k, v) in tags {
                    tx.delete_tag(&caller.scope(), id, k, v.as_deref())?;
                }
            }
            Ok(())
        })
    }

    pub fn describe_tags(
        &self,
        caller: &Caller,
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Tag>, Option<String>)> {
        let all = self
            .db
            .read(|tx| tx.tags_page(&caller.scope(), None, usize::MAX >> 1))?;
        let visible = self.visible_since();
        // Tags of instances past their visibility window are as gone as the instance.
        let hidden: std::collections::HashSet<String> = self
            .db
            .read(|tx| tx.expired_instance_ids(&caller.scope(), visible))?
            .into_iter()
            .collect();
        let list: Vec<Tag> = all
            .into_iter()
            .filter(|t| !hidden.contains(&t.resource_id))
            .filter(|t| {
                filters.matches(&[], |n| match n {
                    "key" => vec![t.key.clone()],
                    "value" => vec![t.value.clone()],
                    "resource-id" => vec![t.resource_id.clone()],
                    "resource-type" => vec![t.resource_type.clone()],
                    _ => vec![],
                })
            })
            .collect();
        Ok(paginate(list, page, |t| {
            format!("{}\u{1}{}", t.resource_id, t.key)
        }))
    }
}
