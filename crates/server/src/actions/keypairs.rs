//! CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair.

use super::tag_specs;
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{Error, Result};
use strato_control::keypairs::KEY_PAIR_FILTERS;
use strato_control::{Caller, ControlPlane};
use strato_ec2_wire::{decode_filters, xml, Params};

pub fn create(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let name = p.required("KeyName")?;
    let k = cp.create_key_pair(
        c,
        name,
        p.get("KeyType"),
        p.get("KeyFormat"),
        &tag_specs(p)?,
        dry,
    )?;
    Ok(xml::success("CreateKeyPair", rid, |w| {
        w.text("keyName", &k.pair.name)
            .text("keyFingerprint", &k.pair.fingerprint)
            .opt_text("keyMaterial", k.material.as_deref())
            .text("keyPairId", k.pair.id.as_str())
            .tag_set(&k.tags);
    }))
}

pub fn import(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let name = p.required("KeyName")?;
    p.required("PublicKeyMaterial")?;
    let material = p
        .base64("PublicKeyMaterial")?
        .ok_or_else(|| Error::MissingParameter("PublicKeyMaterial".into()))?;
    let k = cp.import_key_pair(c, name, &material, &tag_specs(p)?, dry)?;
    Ok(xml::success("ImportKeyPair", rid, |w| {
        w.text("keyFingerprint", &k.pair.fingerprint)
            .text("keyName", &k.pair.name)
            .text("keyPairId", k.pair.id.as_str())
            .tag_set(&k.tags);
    }))
}

pub fn describe(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", KEY_PAIR_FILTERS, true)?;
    let include_public = p.bool("IncludePublicKey")?.unwrap_or(false);
    let list = cp.describe_key_pairs(c, &p.list("KeyName"), &p.list("KeyPairId"), &filters)?;
    Ok(xml::success("DescribeKeyPairs", rid, |w| {
        w.list("keySet", &list, |w, (k, tags)| {
            w.text("keyPairId", k.id.as_str())
                .text("keyType", &k.key_type)
                .tag_set(tags)
                .text("keyName", &k.name)
                .text("keyFingerprint", &k.fingerprint);
            if include_public {
                w.text("publicKey", &k.public_key);
            }
            w.text("createTime", &ec2_timestamp(k.created_ms));
        });
    }))
}

pub fn delete(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let deleted = cp.delete_key_pair(
        c,
        p.get("KeyName").filter(|s| !s.is_empty()),
        p.get("KeyPairId").filter(|s| !s.is_empty()),
        dry,
    )?;
    Ok(xml::success("DeleteKeyPair", rid, |w| {
        w.bool("return", true);
        if let Some(k) = &deleted {
            w.text("keyPairId", k.id.as_str());
        }
    }))
}
