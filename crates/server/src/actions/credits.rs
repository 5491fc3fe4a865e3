//! CPU credit actions of burstable instances, and GetPasswordData /
//! ResetInstanceAttribute (the instance actions Terraform reads and resets).

use super::{id, ids, page, Ctx};
use strato_common::{Error, Result};
use strato_control::credits::{check_ids_or_page, CreditChange, CreditRequest, CREDIT_FILTERS};
use strato_control::ControlPlane;
use strato_ec2_wire::codec::DateTime;
use strato_ec2_wire::filter_set;
use strato_ec2_wire::types::{self as wire, InstanceAttributeName};

/// DescribeInstanceCreditSpecifications.
pub fn describe(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::DescribeInstanceCreditSpecificationsRequest,
) -> Result<wire::DescribeInstanceCreditSpecificationsResult> {
    if cx.dry_run {
        // A dry run still needs the caller to be able to list its instances.
        cp.describe_instance_credit_specifications(
            cx.caller,
            &[],
            &Default::default(),
            &strato_control::page::PageRequest::all(),
        )?;
        return Err(Error::DryRunOperation);
    }
    let filters = filter_set(&req.filters, CREDIT_FILTERS, false)?;
    let pg = page(req.max_results, req.next_token.as_deref(), 5, 1000)?;
    check_ids_or_page(!req.instance_ids.is_empty(), &pg)?;
    let (list, next) = cp.describe_instance_credit_specifications(
        cx.caller,
        &ids(&req.instance_ids)?,
        &filters,
        &pg,
    )?;
    Ok(wire::DescribeInstanceCreditSpecificationsResult {
        instance_credit_specifications: Some(
            list.into_iter()
                .map(|c| wire::InstanceCreditSpecification {
                    instance_id: Some(c.instance_id.to_string()),
                    cpu_credits: Some(c.cpu_credits),
                })
                .collect(),
        ),
        next_token: next,
    })
}

/// The model's code for one instance's failed credit change. The model's list of codes
/// has no `UnsupportedOperation`; a non-burstable instance is what EC2 answers
/// `InstanceCreditSpecification.NotSupported` for.
fn credit_error_code(e: &Error) -> Option<wire::UnsuccessfulInstanceCreditSpecificationErrorCode> {
    use wire::UnsuccessfulInstanceCreditSpecificationErrorCode as Code;
    match e {
        Error::Unsupported(_) => Some(Code::InstanceCreditSpecificationNotSupported),
        _ => Code::from_wire(&crate::errors::to_wire(e).code),
    }
}

/// ModifyInstanceCreditSpecification: per-instance outcomes, as EC2 answers them.
pub fn modify(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyInstanceCreditSpecificationRequest,
) -> Result<wire::ModifyInstanceCreditSpecificationResult> {
    let changes = req
        .instance_credit_specifications
        .into_iter()
        .enumerate()
        .map(|(n, s)| {
            let missing = |k: &str| {
                Error::MissingParameter(format!("InstanceCreditSpecification.{}.{k}", n + 1))
            };
            if s.instance_id.is_empty() {
                return Err(missing("InstanceId"));
            }
            let credits = super::non_empty(s.cpu_credits).ok_or_else(|| missing("CpuCredits"))?;
            Ok(CreditRequest {
                instance: id(&s.instance_id),
                given: s.instance_id,
                cpu_credits: credits,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let outcomes = cp.modify_instance_credit_specification(cx.caller, changes, cx.dry_run)?;
    let mut ok = vec![];
    let mut failed = vec![];
    for o in outcomes {
        match o {
            CreditChange::Done(id) => ok.push(wire::SuccessfulInstanceCreditSpecificationItem {
                instance_id: Some(id),
            }),
            CreditChange::Failed(id, e) => {
                failed.push(wire::UnsuccessfulInstanceCreditSpecificationItem {
                    instance_id: Some(id),
                    error: Some(wire::UnsuccessfulInstanceCreditSpecificationItemError {
                        code: credit_error_code(&e),
                        message: Some(crate::errors::to_wire(&e).message),
                    }),
                })
            }
        }
    }
    Ok(wire::ModifyInstanceCreditSpecificationResult {
        successful_instance_credit_specifications: Some(ok),
        unsuccessful_instance_credit_specifications: Some(failed),
    })
}

/// The `instanceFamilyCreditSpecification` of the default credit answers.
fn family_item(
    family: wire::UnlimitedSupportedInstanceFamily,
    credits: String,
) -> Option<wire::InstanceFamilyCreditSpecification> {
    Some(wire::InstanceFamilyCreditSpecification {
        instance_family: Some(family),
        cpu_credits: Some(credits),
    })
}

/// GetDefaultCreditSpecification.
pub fn get_default(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::GetDefaultCreditSpecificationRequest,
) -> Result<wire::GetDefaultCreditSpecificationResult> {
    let credits = cp.default_credit_specification(cx.caller, req.instance_family.as_str())?;
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    Ok(wire::GetDefaultCreditSpecificationResult {
        instance_family_credit_specification: family_item(req.instance_family, credits),
    })
}

/// ModifyDefaultCreditSpecification.
pub fn modify_default(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ModifyDefaultCreditSpecificationRequest,
) -> Result<wire::ModifyDefaultCreditSpecificationResult> {
    let credits = cp.modify_default_credit_specification(
        cx.caller,
        req.instance_family.as_str(),
        &req.cpu_credits,
        cx.dry_run,
    )?;
    Ok(wire::ModifyDefaultCreditSpecificationResult {
        instance_family_credit_specification: family_item(req.instance_family, credits),
    })
}

/// GetPasswordData: Linux instances have no Windows password, so EC2 answers an empty
/// `passwordData` for them (the instance must exist and be the caller's).
pub fn password_data(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::GetPasswordDataRequest,
) -> Result<wire::GetPasswordDataResult> {
    let i = cp.instance(cx.caller, &id(&req.instance_id)?)?;
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    Ok(wire::GetPasswordDataResult {
        instance_id: Some(i.id.to_string()),
        timestamp: Some(DateTime(i.launch_time_ms)),
        password_data: Some(String::new()),
    })
}

/// ResetInstanceAttribute: EC2 resets `kernel`, `ramdisk` and `sourceDestCheck`.
/// Source/destination checking is always on here, so resetting it succeeds and changes
/// nothing; instances have no kernel or ramdisk of their own to reset to.
pub fn reset_attribute(
    cp: &ControlPlane,
    cx: &Ctx,
    req: wire::ResetInstanceAttributeRequest,
) -> Result<()> {
    let i = cp.instance(cx.caller, &id(&req.instance_id)?)?;
    match req.attribute {
        InstanceAttributeName::SourceDestCheck => {}
        a @ (InstanceAttributeName::Kernel | InstanceAttributeName::Ramdisk) => {
            return Err(Error::Unsupported(format!(
                "Resetting the attribute '{}' is not supported by this endpoint.",
                a.as_str()
            )))
        }
        other => {
            return Err(Error::invalid_value(format!(
                "Value ({}) for parameter attribute is invalid. Only kernel, ramdisk and sourceDestCheck can be reset.",
                other.as_str()
            )))
        }
    }
    if i.state == strato_domain::InstanceState::Terminated {
        return Err(Error::IncorrectInstanceState(format!(
            "The instance '{}' is terminated.",
            i.id
        )));
    }
    if cx.dry_run {
        return Err(Error::DryRunOperation);
    }
    Ok(())
}
