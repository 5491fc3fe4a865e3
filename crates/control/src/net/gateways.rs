//! Internet gateways: Create, Attach, Detach, Delete, Describe. A gateway is attached
//! to at most one VPC and a VPC has at most one gateway. Routes to a detached or
//! deleted gateway stay in their tables and show as `blackhole`, as in EC2.

use super::{describe, load, Tagged};
use crate::page::PageRequest;
use crate::tags::{put_tags, tags_for, TagSpec};
use crate::{Caller, ControlPlane};
use strato_common::filter::FilterSet;
use strato_common::time_fmt::now_ms;
use strato_common::{Error, InternetGatewayId, ResourceId, ResourceKind, Result, VpcId};
use strato_store::{InternetGateway, Vpc};

/// Filter names DescribeInternetGateways accepts.
pub const GATEWAY_FILTERS: &[&str] = &[
    "attachment.state",
    "attachment.vpc-id",
    "internet-gateway-id",
    "owner-id",
];

/// The attachment state EC2 reports for an attached internet gateway. (The model's
/// enum says `attached`; the service has always answered `available`, and tools such
/// as Terraform wait for that.)
pub const ATTACHED_STATE: &str = "available";

impl ControlPlane {
    /// CreateInternetGateway: a detached gateway.
    pub fn create_internet_gateway(
        &self,
        caller: &Caller,
        tag_specs: &[TagSpec],
        dry_run: bool,
    ) -> Result<Tagged<InternetGateway>> {
        let caller = self.net_caller(caller)?;
        let tags = tags_for(tag_specs, "internet-gateway")?;
        Self::dry(dry_run)?;
        let igw = InternetGateway {
            id: InternetGatewayId::generate(),
            account_id: caller.account.clone(),
            region: caller.region.clone(),
            vpc_id: None,
            created_ms: now_ms(),
        };
        self.db.write(|tx| {
            tx.insert_doc(&igw)?;
            put_tags(
                tx,
                &caller.scope(),
                igw.id.as_str(),
                "internet-gateway",
                &tags,
            )
        })?;
        Ok((igw, tags))
    }

    /// AttachInternetGateway.
    pub fn attach_internet_gateway(
        &self,
        caller: &Caller,
        igw_id: &InternetGatewayId,
        vpc_id: &VpcId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let mut igw: InternetGateway =
                load(tx, account, ResourceKind::InternetGateway, igw_id.as_str())?;
            let vpc: Vpc = load(tx, account, ResourceKind::Vpc, vpc_id.as_str())?;
            if let Some(attached) = &igw.vpc_id {
                return Err(Error::ResourceAlreadyAssociated(format!(
                    "resource {} is already attached to network {attached}",
                    igw.id
                )));
            }
            let on_vpc: Vec<InternetGateway> =
                tx.list_docs_by(account, "vpc_id", vpc.id.as_str())?;
            if let Some(other) = on_vpc.first() {
                return Err(Error::ResourceAlreadyAssociated(format!(
                    "Network {} already has an internet gateway attached ({})",
                    vpc.id, other.id
                )));
            }
            Self::dry(dry_run)?;
            igw.vpc_id = Some(vpc.id);
            tx.update_doc(&igw)
        })
    }

    /// DetachInternetGateway: the gateway must be attached to that VPC
    /// (`Gateway.NotAttached` otherwise).
    pub fn detach_internet_gateway(
        &self,
        caller: &Caller,
        igw_id: &InternetGatewayId,
        vpc_id: &VpcId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let mut igw: InternetGateway =
                load(tx, account, ResourceKind::InternetGateway, igw_id.as_str())?;
            let _: Vpc = load(tx, account, ResourceKind::Vpc, vpc_id.as_str())?;
            if igw.vpc_id.as_ref() != Some(vpc_id) {
                return Err(Error::GatewayNotAttached(format!(
                    "resource {} is not attached to network {vpc_id}",
                    igw.id
                )));
            }
            Self::dry(dry_run)?;
            igw.vpc_id = None;
            tx.update_doc(&igw)
        })
    }

    /// DeleteInternetGateway: refused with `DependencyViolation` while attached.
    pub fn delete_internet_gateway(
        &self,
        caller: &Caller,
        igw_id: &InternetGatewayId,
        dry_run: bool,
    ) -> Result<()> {
        let caller = self.net_caller(caller)?;
        let scope = caller.scope();
        let account = &scope;
        self.db.write(|tx| {
            let igw: InternetGateway =
                load(tx, account, ResourceKind::InternetGateway, igw_id.as_str())?;
            if igw.vpc_id.is_some() {
                return Err(Error::DependencyViolation(format!(
                    "The internetGateway '{}' has dependencies and cannot be deleted.",
                    igw.id
                )));
            }
            Self::dry(dry_run)?;
            tx.delete_doc::<InternetGateway>(account, igw.id.as_str())?;
            Ok(())
        })
    }

    /// DescribeInternetGateways.
    pub fn describe_internet_gateways(
        &self,
        caller: &Caller,
        ids: &[InternetGatewayId],
        filters: &FilterSet,
        page: &PageRequest,
    ) -> Result<(Vec<Tagged<InternetGateway>>, Option<String>)> {
        let caller = self.net_caller(caller)?;
        self.db.read(|tx| {
            describe(
                tx,
                &caller.scope(),
                ResourceKind::InternetGateway,
                ids,
                filters,
                page,
                |g: &InternetGateway, name| match name {
                    "attachment.state" => g
                        .vpc_id
                        .iter()
                        .map(|_| ATTACHED_STATE.to_string())
                        .collect(),
                    "attachment.vpc-id" => g.vpc_id.iter().map(|v| v.to_string()).collect(),
                    "internet-gateway-id" => vec![g.id.to_string()],
                    "owner-id" => vec![g.account_id.to_string()],
                    _ => vec![],
                },
            )
        })
    }
}
