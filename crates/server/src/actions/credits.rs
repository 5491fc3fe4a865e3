//! CPU credit actions of burstable instances, and GetPasswordData /
//! ResetInstanceAttribute (the instance actions Terraform reads and resets).

use super::{page, Request};
use strato_common::time_fmt::ec2_timestamp;
use strato_common::{Error, Result};
use strato_control::credits::{CreditChange, CREDIT_FILTERS};
use strato_control::ControlPlane;
use strato_ec2_wire::{decode_filters, xml};

/// DescribeInstanceCreditSpecifications.
pub fn describe(cp: &ControlPlane, r: &Request) -> Result<String> {
    let p = r.params;
    if p.dry_run()? {
        cp.describe_instance_credit_specifications(
            r.caller,
            &[],
            &Default::default(),
            &strato_control::page::PageRequest::all(),
        )?;
        return Err(Error::DryRunOperation);
    }
    let filters = decode_filters(p, "Filter", CREDIT_FILTERS, false)?;
    let pg = page(p, 5, 1000)?;
    let (list, next) =
        cp.describe_instance_credit_specifications(r.caller, &p.list("InstanceId"), &filters, &pg)?;
    Ok(xml::success(
        "DescribeInstanceCreditSpecifications",
        r.request_id,
        |w| {
            w.list("instanceCreditSpecificationSet", &list, |w, c| {
                w.text("instanceId", c.instance_id.as_str())
                    .text("cpuCredits", &c.cpu_credits);
            });
            w.opt_text("nextToken", next.as_deref());
        },
    ))
}

/// ModifyInstanceCreditSpecification: per-instance outcomes, as EC2 answers them.
pub fn modify(cp: &ControlPlane, r: &Request) -> Result<String> {
    let p = r.params;
    let dry = p.dry_run()?;
    let changes = p
        .structs("InstanceCreditSpecification")
        .into_iter()
        .enumerate()
        .map(|(n, s)| {
            let field = |k: &str| {
                s.get(k)
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        Error::MissingParameter(format!(
                            "InstanceCreditSpecification.{}.{k}",
                            n + 1
                        ))
                    })
            };
            Ok((field("InstanceId")?, field("CpuCredits")?))
        })
        .collect::<Result<Vec<_>>>()?;
    let outcomes = cp.modify_instance_credit_specification(r.caller, &changes, dry)?;
    let ok: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            CreditChange::Done(id) => Some(id),
            CreditChange::Failed(..) => None,
        })
        .collect();
    let failed: Vec<(&String, crate::errors::WireError)> = outcomes
        .iter()
        .filter_map(|o| match o {
            CreditChange::Failed(id, e) => Some((id, crate::errors::to_wire(e))),
            CreditChange::Done(_) => None,
        })
        .collect();
    Ok(xml::success(
        "ModifyInstanceCreditSpecification",
        r.request_id,
        |w| {
            w.list("successfulInstanceCreditSpecificationSet", &ok, |w, id| {
                w.text("instanceId", id);
            });
            w.list(
                "unsuccessfulInstanceCreditSpecificationSet",
                &failed,
                |w, (id, e)| {
                    w.text("instanceId", id)
                        .open("error")
                        .text("code", &e.code)
                        .text("message", &e.message)
                        .close("error");
                },
            );
        },
    ))
}

fn family_answer(action: &str, rid: &str, family: &str, credits: &str) -> String {
    xml::success(action, rid, |w| {
        w.open("instanceFamilyCreditSpecification")
            .text("instanceFamily", family)
            .text("cpuCredits", credits)
            .close("instanceFamilyCreditSpecification");
    })
}

/// GetDefaultCreditSpecification.
pub fn get_default(cp: &ControlPlane, r: &Request) -> Result<String> {
    let p = r.params;
    let family = p.required("InstanceFamily")?;
    let credits = cp.default_credit_specification(r.caller, family)?;
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    Ok(family_answer(
        "GetDefaultCreditSpecification",
        r.request_id,
        family,
        &credits,
    ))
}

/// ModifyDefaultCreditSpecification.
pub fn modify_default(cp: &ControlPlane, r: &Request) -> Result<String> {
    let p = r.params;
    let family = p.required("InstanceFamily")?;
    let credits = cp.modify_default_credit_specification(
        r.caller,
        family,
        p.required("CpuCredits")?,
        p.dry_run()?,
    )?;
    Ok(family_answer(
        "ModifyDefaultCreditSpecification",
        r.request_id,
        family,
        &credits,
    ))
}

/// GetPasswordData: Linux instances have no Windows password, so EC2 answers an empty
/// `passwordData` for them (the instance must exist and be the caller's).
pub fn password_data(cp: &ControlPlane, r: &Request) -> Result<String> {
    let p = r.params;
    let i = cp.instance(r.caller, p.required("InstanceId")?)?;
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    Ok(xml::success("GetPasswordData", r.request_id, |w| {
        w.text("instanceId", i.id.as_str())
            .text("timestamp", &ec2_timestamp(i.launch_time_ms))
            .text("passwordData", "");
    }))
}

/// ResetInstanceAttribute: EC2 resets `kernel`, `ramdisk` and `sourceDestCheck`.
/// Source/destination checking is always on here, so resetting it succeeds and changes
/// nothing; instances have no kernel or ramdisk of their own to reset to.
pub fn reset_attribute(cp: &ControlPlane, r: &Request) -> Result<String> {
    let p = r.params;
    let i = cp.instance(r.caller, p.required("InstanceId")?)?;
    match p.required("Attribute")? {
        "sourceDestCheck" => {}
        a @ ("kernel" | "ramdisk") => {
            return Err(Error::Unsupported(format!(
                "Resetting the attribute '{a}' is not supported by this endpoint."
            )))
        }
        other => {
            return Err(Error::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid. Only kernel, ramdisk and sourceDestCheck can be reset."
            )))
        }
    }
    if i.state == strato_domain::InstanceState::Terminated {
        return Err(Error::IncorrectInstanceState(format!(
            "The instance '{}' is terminated.",
            i.id
        )));
    }
    if p.dry_run()? {
        return Err(Error::DryRunOperation);
    }
    Ok(xml::success("ResetInstanceAttribute", r.request_id, |w| {
        w.bool("return", true);
    }))
}
