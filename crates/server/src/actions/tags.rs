//! CreateTags, DeleteTags, DescribeTags: typed requests to the control plane, its
//! records to the model's output types.

use super::{page, tag_list, Ctx};
use strato_common::{Error, Result};
use strato_control::tags::TAG_FILTERS;
use strato_control::ControlPlane;
use strato_domain::Tag;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, ResourceType};

/// CreateTags.
pub fn create(cp: &ControlPlane, cx: &Ctx, req: wire::CreateTagsRequest) -> Result<()> {
    cp.create_tags(
        cx.caller,
        &req.resources,
        &tag_list(&req.tags, "Tag")?,
        cx.dry_run,
    )
}

/// DeleteTags. A `Tag.N.Value` left out deletes the key whatever its value; one given,
/// even empty, deletes the key only with that value. A `Tag.N` without a `Key` names
/// nothing and is skipped.
pub fn delete(cp: &ControlPlane, cx: &Ctx, req: wire::DeleteTagsRequest) -> Result<()> {
    let tags: Vec<(String, Option<String>)> = req
        .tags
        .into_iter()
        .filter_map(|t| t.key.map(|k| (k, t.value)))
        .collect();
    cp.delete_tags(cx.caller, &req.resources, &tags, cx.dry_run)
}

/// One tag as DescribeTags lists it, with the type of the resource it is on.
fn tag_item(t: &Tag) -> wire::TagDescription {
    wire::TagDescription {
        resource_id: Some(t.resource_id.clone()),
        resource_type: ResourceType::from_wire(&t.resource_type),
        key: Some(t.key.clone()),
        value: Some(t.value.clone()),
    }
}

/// DescribeTags.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeTagsRequest,
) -> Result<wire::DescribeTagsResult> {
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, TAG_FILTERS, false)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    let (list, next) = cp.describe_tags(cx.caller, &filters, &pg)?;
    Ok(wire::DescribeTagsResult {
        tags: Some(list.iter().map(tag_item).collect()),
        next_token: next,
    })
}
