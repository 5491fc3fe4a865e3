//! CPU credits of burstable instances: DescribeInstanceCreditSpecifications,
//! ModifyInstanceCreditSpecification, Get/ModifyDefaultCreditSpecification.
//!
//! A burstable instance (T2, T3, T3a, T4g) launches with the credit option it asks
//! for, else its account's default for the family, else EC2's (t2 `standard`, the
//! later families `unlimited`). The option is recorded and shown; the host runs every
//! instance at its full vCPU share, so `standard` does not throttle the guest.

use crate::catalog::{self, BURSTABLE_FAMILIES};
use crate::instances::cpu_credits_of;
use crate::page::PageRequest;
use crate::{Caller, ControlPlane};
use strato_common::filter::FilterSet;
use strato_common::{Error, InstanceId, ResourceKind, Result};
use strato_domain::Scope;
use strato_domain::{CreditDefault, Instance, InstanceState};

/// The filters DescribeInstanceCreditSpecifications accepts.
pub const CREDIT_FILTERS: &[&str] = &["instance-id"];

/// One instance's credit option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditSpecification {
    pub instance_id: InstanceId,
    pub cpu_credits: String,
}

/// One `InstanceCreditSpecification.N` of ModifyInstanceCreditSpecification.
#[derive(Debug)]
pub struct CreditRequest {
    /// `InstanceId` as given: the answer names the item by it.
    pub given: String,
    /// The instance the front door parsed from `given`, or its `Malformed` error. EC2
    /// answers a malformed id as the failure of its own item, not of the whole call,
    /// so the error travels with the item.
    pub instance: Result<InstanceId>,
    /// `CpuCredits`.
    pub cpu_credits: String,
}

/// `InvalidParameterCombination` when a DescribeInstanceCreditSpecifications request
/// names instances and a page size too. The front door checks this before it parses
/// the ids, because EC2 answers it first.
pub fn check_ids_or_page(ids_given: bool, page: &PageRequest) -> Result<()> {
    if ids_given && page.max_results.is_some() {
        return Err(Error::InvalidParameterCombination(
            "The parameter InstanceId cannot be used with the parameter MaxResults".into(),
        ));
    }
    Ok(())
}

/// The outcome of one instance of ModifyInstanceCreditSpecification.
#[derive(Debug)]
pub enum CreditChange {
    Done(String),
    /// The instance and what went wrong with it (the front door maps it to EC2's code).
    Failed(String, Error),
}

fn check_option(value: &str) -> Result<String> {
    match value {
        "standard" | "unlimited" => Ok(value.to_string()),
        other => Err(Error::invalid_value(format!(
            "Invalid value '{other}' for CpuCredits. Expected 'standard' or 'unlimited'."
        ))),
    }
}

fn check_family(family: &str) -> Result<()> {
    if BURSTABLE_FAMILIES.contains(&family) {
        Ok(())
    } else {
        Err(Error::invalid_value(format!(
            "Invalid value '{family}' for InstanceFamily. Expected one of: {}.",
            BURSTABLE_FAMILIES.join(", ")
        )))
    }
}

impl ControlPlane {
    /// The account's own default credit option for `family`, if it set one.
    pub(crate) fn default_credit_option(
        &self,
        account: &Scope,
        family: &str,
    ) -> Result<Option<String>> {
        self.db.read(|tx| {
            Ok(tx
                .get_doc::<CreditDefault>(account, family)?
                .map(|d| d.cpu_credits))
        })
    }

    /// GetDefaultCreditSpecification: the option new instances of `family` launch with.
    pub fn default_credit_specification(&self, caller: &Caller, family: &str) -> Result<String> {
        check_family(family)?;
        let own = self.default_credit_option(&caller.scope(), family)?;
        Ok(own.unwrap_or_else(|| {
            if family == "t2" {
                "standard"
            } else {
                "unlimited"
            }
            .to_string()
        }))
    }

    /// ModifyDefaultCreditSpecification: later launches of `family` default to
    /// `cpu_credits`; running instances keep theirs (as EC2).
    pub fn modify_default_credit_specification(
        &self,
        caller: &Caller,
        family: &str,
        cpu_credits: &str,
        dry_run: bool,
    ) -> Result<String> {
        check_family(family)?;
        let cpu_credits = check_option(cpu_credits)?;
        if dry_run {
            return Err(Error::DryRunOperation);
        }
        let d = CreditDefault {
            account_id: caller.account.clone(),
            region: caller.region.clone(),
            family: family.to_string(),
            cpu_credits: cpu_credits.clone(),
        };
        self.db.write(|tx| {
            if tx
                .get_doc::<CreditDefault>(&caller.scope(), family)?
                .is_some()
            {
                tx.update_doc(&d)
            } else {
                tx.insert_doc(&d)
            }
        })?;
        Ok(cpu_credits)
    }

    /// DescribeInstanceCreditSpecifications: the caller's burstable instances (or those
    /// named, which must be burstable), terminated ones excluded.
    pub fn describe_instance_credit_specifications(
        &self,
        caller: &Caller,
        ids: &[InstanceId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<CreditSpecification>, Option<String>)> {
        check_ids_or_page(!ids.is_empty(), page)?;
        let (list, _) =
            self.describe_instances(caller, ids, &FilterSet::default(), &PageRequest::all())?;
        let mut out = vec![];
        for (i, _) in list {
            let Some(c) = cpu_credits_of(&i) else {
                if !ids.is_empty() {
                    return Err(Error::Unsupported(format!(
                        "The instance {} is not a burstable performance instance ({}); only T2, T3, T3a and T4g instances have credit specifications.",
                        i.id, i.instance_type
                    )));
                }
                continue;
            };
            if i.state == InstanceState::Terminated {
                continue;
            }
            if !filters.matches(&[], |name| match name {
                "instance-id" => vec![i.id.to_string()],
                _ => vec![],
            }) {
                continue;
            }
            out.push(CreditSpecification {
                instance_id: i.id.clone(),
                cpu_credits: c,
            });
        }
        out.sort_by(|a, b| a.instance_id.as_str().cmp(b.instance_id.as_str()));
        Ok(crate::page::paginate(out, page, |c| {
            c.instance_id.to_string()
        }))
    }

    /// ModifyInstanceCreditSpecification: per instance, success or EC2's error for it;
    /// one bad instance does not fail the others.
    pub fn modify_instance_credit_specification(
        &self,
        caller: &Caller,
        changes: Vec<CreditRequest>,
        dry_run: bool,
    ) -> Result<Vec<CreditChange>> {
        if changes.is_empty() {
            return Err(Error::MissingParameter(
                "InstanceCreditSpecification".into(),
            ));
        }
        for c in &changes {
            check_option(&c.cpu_credits)?;
        }
        if dry_run {
            for c in changes {
                self.instance(caller, &c.instance?)?;
            }
            return Err(Error::DryRunOperation);
        }
        let mut out = vec![];
        for c in changes {
            let credits = &c.cpu_credits;
            let result = c.instance.and_then(|iid| {
                self.db.write(|tx| {
                    let mut i: Instance = tx
                        .instance(&caller.scope(), iid.as_str())?
                        .filter(|i| i.state != InstanceState::Terminated)
                        .ok_or_else(|| Error::not_found(ResourceKind::Instance, &iid))?;
                    let t = catalog::instance_type(&i.instance_type)?;
                    if t.default_cpu_credits().is_none() {
                        return Err(Error::Unsupported(format!(
                            "The instance {} is not a burstable performance instance.",
                            i.id
                        )));
                    }
                    i.cpu_credits = Some(credits.clone());
                    tx.update_instance(&i)
                })
            });
            out.push(match result {
                Ok(()) => CreditChange::Done(c.given),
                Err(
                    e @ (Error::NotFound { .. } | Error::Malformed { .. } | Error::Unsupported(_)),
                ) => CreditChange::Failed(c.given, e),
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }
}
