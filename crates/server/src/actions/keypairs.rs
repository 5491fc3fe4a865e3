//! CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair: typed requests to
//! the control plane, its records to the model's output types.

use super::{id, ids, non_empty, tag_set, tag_specs, Ctx};
use strato_common::{Error, Result};
use strato_control::keypairs::KEY_PAIR_FILTERS;
use strato_control::ControlPlane;
use strato_domain::KeyPair;
use strato_ec2_wire::codec::DateTime;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, KeyType};

/// CreateKeyPair: the answer carries the private key, which is never stored.
pub fn create(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::CreateKeyPairRequest,
) -> Result<wire::KeyPair> {
    let k = cp.create_key_pair(
        cx.caller,
        &req.key_name,
        req.key_type.map(|t| t.as_str()),
        req.key_format.map(|f| f.as_str()),
        &tag_specs(&req.tag_specifications)?,
        cx.dry_run,
    )?;
    Ok(wire::KeyPair {
        key_name: Some(k.pair.name.clone()),
        key_fingerprint: Some(k.pair.fingerprint.clone()),
        key_material: k.material,
        key_pair_id: Some(k.pair.id.to_string()),
        tags: tag_set(&k.tags),
    })
}

/// ImportKeyPair. `PublicKeyMaterial` arrives base64-decoded (a blob in the model,
/// refused by the decoder when it is not base64), so the control plane gets the
/// OpenSSH text the caller encoded.
pub fn import(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ImportKeyPairRequest,
) -> Result<wire::ImportKeyPairResult> {
    let k = cp.import_key_pair(
        cx.caller,
        &req.key_name,
        &req.public_key_material.0,
        &tag_specs(&req.tag_specifications)?,
        cx.dry_run,
    )?;
    Ok(wire::ImportKeyPairResult {
        key_fingerprint: Some(k.pair.fingerprint.clone()),
        key_name: Some(k.pair.name.clone()),
        key_pair_id: Some(k.pair.id.to_string()),
        tags: tag_set(&k.tags),
    })
}

/// A key pair as DescribeKeyPairs lists it; the public key only when asked for
/// (`IncludePublicKey`), as EC2 does.
fn key_pair_item(
    k: &KeyPair,
    tags: &[(String, String)],
    include_public: bool,
) -> wire::KeyPairInfo {
    wire::KeyPairInfo {
        key_pair_id: Some(k.id.to_string()),
        key_type: KeyType::from_wire(&k.key_type),
        tags: tag_set(tags),
        key_name: Some(k.name.clone()),
        key_fingerprint: Some(k.fingerprint.clone()),
        public_key: include_public.then(|| k.public_key.clone()),
        create_time: Some(DateTime(k.created_ms)),
    }
}

/// DescribeKeyPairs.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeKeyPairsRequest,
) -> Result<wire::DescribeKeyPairsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, KEY_PAIR_FILTERS, true)?;
    let include_public = req.include_public_key.unwrap_or(false);
    let list = cp.describe_key_pairs(
        cx.caller,
        &req.key_names,
        &ids(&req.key_pair_ids)?,
        &filters,
    )?;
    Ok(wire::DescribeKeyPairsResult {
        key_pairs: Some(
            list.iter()
                .map(|(k, t)| key_pair_item(k, t, include_public))
                .collect(),
        ),
    })
}

/// DeleteKeyPair: succeeds for a name that does not exist (as EC2 does), and then
/// names no `keyPairId`.
pub fn delete(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DeleteKeyPairRequest,
) -> Result<wire::DeleteKeyPairResult> {
    let key_pair_id = non_empty(req.key_pair_id).as_deref().map(id).transpose()?;
    let deleted = cp.delete_key_pair(
        cx.caller,
        non_empty(req.key_name).as_deref(),
        key_pair_id.as_ref(),
        cx.dry_run,
    )?;
    Ok(wire::DeleteKeyPairResult {
        r#return: Some(true),
        key_pair_id: deleted.map(|k| k.id.to_string()),
    })
}
