//! Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.
//! Private keys are returned once and never stored.

use crate::tags::{tags_for, TagSpec};
use crate::{Caller, ControlPlane};
use strato_common::filter::FilterSet;
use strato_common::{time_fmt::now_ms, Error, KeyPairId, ResourceId, ResourceKind, Result};
use strato_keys::{KeyError, KeyFormat, KeyType};
use strato_store::{KeyPair, Tag};

/// Filter names DescribeKeyPairs accepts.
pub const KEY_PAIR_FILTERS: &[&str] = &["key-pair-id", "fingerprint", "key-name", "key-type"];

fn key_error(e: KeyError) -> Error {
    match e {
        KeyError::InvalidFormat(m) => Error::InvalidKeyFormat(m),
        KeyError::Unsupported(m) => Error::InvalidParameterValue(m),
        KeyError::Internal(m) => Error::Internal(m),
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::MissingParameter("KeyName".into()));
    }
    if name.len() > 255 || !name.is_ascii() {
        return Err(Error::invalid_value(format!(
            "Value ({name}) for parameter keyName is invalid. A key name is up to 255 ASCII characters."
        )));
    }
    Ok(())
}

fn key_tags(specs: &[TagSpec]) -> Result<Vec<(String, String)>> {
    tags_for(specs, "key-pair")
}

/// A key pair as returned by Create/Import (with the private key for Create).
pub struct NewKeyPair {
    pub pair: KeyPair,
    pub material: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl ControlPlane {
    fn store_key_pair(
        &self,
        caller: &Caller,
        pair: KeyPair,
        tags: Vec<(String, String)>,
    ) -> Result<()> {
        self.db.write(|tx| {
            tx.insert_key_pair(&pair)?;
            for (k, v) in &tags {
                tx.put_tag(
                    &caller.scope(),
                    &Tag {
                        resource_id: pair.id.to_string(),
                        resource_type: "key-pair".into(),
                        key: k.clone(),
                        value: v.clone(),
                    },
                )?;
            }
            Ok(())
        })
    }

    pub fn create_key_pair(
        &self,
        caller: &Caller,
        name: &str,
        key_type: Option<&str>,
        format: Option<&str>,
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<NewKeyPair> {
        check_name(name)?;
        let key_type: KeyType = key_type.unwrap_or("rsa").parse().map_err(|_| {
            Error::invalid_value(format!(
                "Value ({}) for parameter keyType is invalid. Valid values: rsa, ed25519.",
                key_type.unwrap_or_default()
            ))
        })?;
        let format: KeyFormat = format.unwrap_or("pem").parse().map_err(|_| {
            Error::invalid_value(format!(
                "Value ({}) for parameter keyFormat is invalid. Valid values: pem, ppk.",
                format.unwrap_or_default()
            ))
        })?;
        let tags = key_tags(tag_specs)?;
        if self
            .db
            .read(|tx| tx.key_pair_by_name(&caller.scope(), name))?
            .is_some()
        {
            return Err(Error::KeyPairDuplicate(name.to_string()));
        }
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        let created = strato_keys::create_key(key_type, format, name).map_err(key_error)?;
        let pair = KeyPair {
            region: caller.region.clone(),
            id: KeyPairId::generate(),
            account_id: caller.account.clone(),
            name: name.to_string(),
            key_type: key_type.as_str().to_string(),
            fingerprint: created.fingerprint,
            public_key: created.public_key_openssh,
            created_ms: now_ms(),
        };
        self.store_key_pair(caller, pair.clone(), tags.clone())?;
        Ok(NewKeyPair {
            pair,
            material: Some(created.key_material),
            tags,
        })
    }

    pub fn import_key_pair(
        &self,
        caller: &Caller,
        name: &str,
        material: &[u8],
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<NewKeyPair> {
        check_name(name)?;
        let tags = key_tags(tag_specs)?;
        let imported = strato_keys::import_public_key(material).map_err(key_error)?;
        if self
            .db
            .read(|tx| tx.key_pair_by_name(&caller.scope(), name))?
            .is_some()
        {
            return Err(Error::KeyPairDuplicate(name.to_string()));
        }
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        let pair = KeyPair {
            region: caller.region.clone(),
            id: KeyPairId::generate(),
            account_id: caller.account.clone(),
            name: name.to_string(),
            key_type: imported.key_type.as_str().to_string(),
            fingerprint: imported.fingerprint,
            public_key: imported.public_key_openssh,
            created_ms: now_ms(),
        };
        self.store_key_pair(caller, pair.clone(), tags.clone())?;
        Ok(NewKeyPair {
            pair,
            material: None,
            tags,
        })
    }

    pub fn describe_key_pairs(
        &self,
        caller: &Caller,
        names: &[String],
        ids: &[KeyPairId],
        filters: &FilterSet,
    ) -> Result<Vec<(KeyPair, crate::Tags)>> {
        let (pairs, mut tags) = self.db.read(|tx| {
            let pairs = tx.key_pairs(&caller.scope())?;
            // One range query for every pair's tags, not one query per pair.
            let ids = pairs.iter().map(|p| p.id.as_str());
            let tags = match (ids.clone().min(), ids.max()) {
                (Some(first), Some(last)) => tx.tags_in_range(&caller.scope(), first, last)?,
                _ => Default::default(),
            };
            Ok((pairs, tags))
        })?;
        for n in names {
            if !pairs.iter().any(|p| &p.name == n) {
                return Err(Error::not_found(ResourceKind::KeyPair, n));
            }
        }
        for id in ids {
            if !pairs.iter().any(|p| &p.id == id) {
                return Err(Error::not_found(ResourceKind::KeyPair, id));
            }
        }
        Ok(pairs
            .into_iter()
            .filter(|p| names.is_empty() || names.contains(&p.name))
            .filter(|p| ids.is_empty() || ids.contains(&p.id))
            .map(|p| {
                let t = tags.remove(p.id.as_str()).unwrap_or_default();
                (p, t)
            })
            .filter(|(p, t)| {
                filters.matches(t, |n| match n {
                    "key-pair-id" => vec![p.id.to_string()],
                    "fingerprint" => vec![p.fingerprint.clone()],
                    "key-name" => vec![p.name.clone()],
                    "key-type" => vec![p.key_type.clone()],
                    _ => vec![],
                })
            })
            .collect())
    }

    /// DeleteKeyPair by name or id. Like EC2, deleting a name that does not exist
    /// succeeds; an unknown id is NotFound.
    pub fn delete_key_pair(
        &self,
        caller: &Caller,
        name: Option<&str>,
        id: Option<&KeyPairId>,
        dry_run: bool,
    ) -> Result<Option<KeyPair>> {
        if name.is_none() && id.is_none() {
            return Err(Error::MissingParameter("KeyName or KeyPairId".into()));
        }
        self.db.write(|tx| {
            let found = match (name, id) {
                (_, Some(id)) => Some(
                    tx.key_pair_by_id(&caller.scope(), id.as_str())?
                        .ok_or_else(|| Error::not_found(ResourceKind::KeyPair, id))?,
                ),
                (Some(n), None) => tx.key_pair_by_name(&caller.scope(), n)?,
                (None, None) => None,
            };
            if dry_run {
                return Err(Error::DryRunOperation);
            }
            if let Some(p) = &found {
                tx.delete_key_pair(&caller.scope(), &p.name)?;
                tx.delete_tags_of(&caller.scope(), p.id.as_str())?;
            }
            Ok(found)
        })
    }
}
