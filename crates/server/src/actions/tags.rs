//! CreateTags, DeleteTags, DescribeTags.

use super::{page, tag_list};
use strato_common::{Error, Result};
use strato_control::tags::TAG_FILTERS;
use strato_control::{Caller, ControlPlane};
use strato_ec2_wire::{decode_filters, xml, Params};

pub fn create(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    cp.create_tags(c, &p.list("ResourceId"), &tag_list(p, "Tag")?, dry)?;
    Ok(xml::success("CreateTags", rid, |w| {
        w.bool("return", true);
    }))
}

pub fn delete(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    let dry = p.dry_run()?;
    let tags: Vec<(String, Option<String>)> = p
        .structs("Tag")
        .into_iter()
        .filter_map(|t| {
            t.get("Key")
                .map(|k| (k.to_string(), t.get("Value").map(str::to_string)))
        })
        .collect();
    cp.delete_tags(c, &p.list("ResourceId"), &tags, dry)?;
    Ok(xml::success("DeleteTags", rid, |w| {
        w.bool("return", true);
    }))
}

pub fn describe(cp: &ControlPlane, c: &Caller, p: &Params, rid: &str) -> Result<String> {
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", TAG_FILTERS, false)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) = cp.describe_tags(c, &filters, &pg)?;
    Ok(xml::success("DescribeTags", rid, |w| {
        w.list("tagSet", &list, |w, t| {
            w.text("resourceId", &t.resource_id)
                .text("resourceType", &t.resource_type)
                .text("key", &t.key)
                .text("value", &t.value);
        });
        w.opt_text("nextToken", next.as_deref());
    }))
}
