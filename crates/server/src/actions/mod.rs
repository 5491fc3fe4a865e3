//! EC2 actions: each decodes its parameters from [`Params`], calls the control plane
//! and encodes the XML answer. One function per action, listed in [`dispatch`].

pub mod addresses;
pub mod credits;
pub mod instances;
pub mod interfaces;
pub mod keypairs;
pub mod meta;
pub mod routing;
pub mod security_groups;
pub mod sts;
pub mod tags;
pub mod vpcs;

use strato_common::{Error, Result};
use strato_control::tags::TagSpec;
use strato_control::{Caller, ControlPlane};
use strato_ec2_model::{Ec2Service, Operation};
use strato_ec2_wire::Params;

/// One EC2 request as every handler receives it.
pub struct Request<'a> {
    pub caller: &'a Caller,
    pub params: &'a Params,
    pub request_id: &'a str,
}

/// The EC2 handlers over one control plane: `served.toml` names the operations, the
/// generated [`Ec2Service`] trait makes each of them need exactly one method here.
struct Handlers<'a>(&'a ControlPlane);

impl<'a> Ec2Service for Handlers<'a> {
    type Request = Request<'a>;
    type Output = Result<String>;

    fn run_instances(&self, r: &Request) -> Result<String> {
        instances::run(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_instances(&self, r: &Request) -> Result<String> {
        instances::describe(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_instance_status(&self, r: &Request) -> Result<String> {
        instances::describe_status(self.0, r.caller, r.params, r.request_id)
    }
    fn start_instances(&self, r: &Request) -> Result<String> {
        instances::start(self.0, r.caller, r.params, r.request_id)
    }
    fn stop_instances(&self, r: &Request) -> Result<String> {
        instances::stop(self.0, r.caller, r.params, r.request_id)
    }
    fn reboot_instances(&self, r: &Request) -> Result<String> {
        instances::reboot(self.0, r.caller, r.params, r.request_id)
    }
    fn terminate_instances(&self, r: &Request) -> Result<String> {
        instances::terminate(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_instance_attribute(&self, r: &Request) -> Result<String> {
        instances::describe_attribute(self.0, r.caller, r.params, r.request_id)
    }
    fn modify_instance_attribute(&self, r: &Request) -> Result<String> {
        instances::modify_attribute(self.0, r.caller, r.params, r.request_id)
    }
    fn get_console_output(&self, r: &Request) -> Result<String> {
        instances::console_output(self.0, r.caller, r.params, r.request_id)
    }
    fn modify_instance_metadata_options(&self, r: &Request) -> Result<String> {
        instances::modify_metadata_options(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_instance_types(&self, r: &Request) -> Result<String> {
        meta::describe_instance_types(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_instance_type_offerings(&self, r: &Request) -> Result<String> {
        meta::describe_instance_type_offerings(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_images(&self, r: &Request) -> Result<String> {
        meta::describe_images(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_regions(&self, r: &Request) -> Result<String> {
        meta::describe_regions(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_availability_zones(&self, r: &Request) -> Result<String> {
        meta::describe_availability_zones(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_account_attributes(&self, r: &Request) -> Result<String> {
        meta::describe_account_attributes(self.0, r.caller, r.params, r.request_id)
    }
    fn create_key_pair(&self, r: &Request) -> Result<String> {
        keypairs::create(self.0, r.caller, r.params, r.request_id)
    }
    fn import_key_pair(&self, r: &Request) -> Result<String> {
        keypairs::import(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_key_pairs(&self, r: &Request) -> Result<String> {
        keypairs::describe(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_key_pair(&self, r: &Request) -> Result<String> {
        keypairs::delete(self.0, r.caller, r.params, r.request_id)
    }
    fn create_tags(&self, r: &Request) -> Result<String> {
        tags::create(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_tags(&self, r: &Request) -> Result<String> {
        tags::delete(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_tags(&self, r: &Request) -> Result<String> {
        tags::describe(self.0, r.caller, r.params, r.request_id)
    }
    fn create_vpc(&self, r: &Request) -> Result<String> {
        vpcs::create_vpc(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_vpc(&self, r: &Request) -> Result<String> {
        vpcs::delete_vpc(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_vpcs(&self, r: &Request) -> Result<String> {
        vpcs::describe_vpcs(self.0, r.caller, r.params, r.request_id)
    }
    fn modify_vpc_attribute(&self, r: &Request) -> Result<String> {
        vpcs::modify_vpc_attribute(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_vpc_attribute(&self, r: &Request) -> Result<String> {
        vpcs::describe_vpc_attribute(self.0, r.caller, r.params, r.request_id)
    }
    fn create_default_vpc(&self, r: &Request) -> Result<String> {
        vpcs::create_default_vpc(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_dhcp_options(&self, r: &Request) -> Result<String> {
        vpcs::describe_dhcp_options(self.0, r.caller, r.params, r.request_id)
    }
    fn create_subnet(&self, r: &Request) -> Result<String> {
        vpcs::create_subnet(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_subnet(&self, r: &Request) -> Result<String> {
        vpcs::delete_subnet(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_subnets(&self, r: &Request) -> Result<String> {
        vpcs::describe_subnets(self.0, r.caller, r.params, r.request_id)
    }
    fn modify_subnet_attribute(&self, r: &Request) -> Result<String> {
        vpcs::modify_subnet_attribute(self.0, r.caller, r.params, r.request_id)
    }
    fn create_security_group(&self, r: &Request) -> Result<String> {
        security_groups::create(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_security_group(&self, r: &Request) -> Result<String> {
        security_groups::delete(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_security_groups(&self, r: &Request) -> Result<String> {
        security_groups::describe(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_security_group_rules(&self, r: &Request) -> Result<String> {
        security_groups::describe_rules(self.0, r.caller, r.params, r.request_id)
    }
    fn authorize_security_group_ingress(&self, r: &Request) -> Result<String> {
        security_groups::authorize_ingress(self.0, r.caller, r.params, r.request_id)
    }
    fn authorize_security_group_egress(&self, r: &Request) -> Result<String> {
        security_groups::authorize_egress(self.0, r.caller, r.params, r.request_id)
    }
    fn revoke_security_group_ingress(&self, r: &Request) -> Result<String> {
        security_groups::revoke_ingress(self.0, r.caller, r.params, r.request_id)
    }
    fn revoke_security_group_egress(&self, r: &Request) -> Result<String> {
        security_groups::revoke_egress(self.0, r.caller, r.params, r.request_id)
    }
    fn modify_security_group_rules(&self, r: &Request) -> Result<String> {
        security_groups::modify_rules(self.0, r.caller, r.params, r.request_id)
    }
    fn create_internet_gateway(&self, r: &Request) -> Result<String> {
        routing::create_gateway(self.0, r.caller, r.params, r.request_id)
    }
    fn attach_internet_gateway(&self, r: &Request) -> Result<String> {
        routing::attach_gateway(self.0, r.caller, r.params, r.request_id)
    }
    fn detach_internet_gateway(&self, r: &Request) -> Result<String> {
        routing::detach_gateway(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_internet_gateway(&self, r: &Request) -> Result<String> {
        routing::delete_gateway(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_internet_gateways(&self, r: &Request) -> Result<String> {
        routing::describe_gateways(self.0, r.caller, r.params, r.request_id)
    }
    fn create_route_table(&self, r: &Request) -> Result<String> {
        routing::create_route_table(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_route_table(&self, r: &Request) -> Result<String> {
        routing::delete_route_table(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_route_tables(&self, r: &Request) -> Result<String> {
        routing::describe_route_tables(self.0, r.caller, r.params, r.request_id)
    }
    fn create_route(&self, r: &Request) -> Result<String> {
        routing::create_route(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_route(&self, r: &Request) -> Result<String> {
        routing::delete_route(self.0, r.caller, r.params, r.request_id)
    }
    fn associate_route_table(&self, r: &Request) -> Result<String> {
        routing::associate_route_table(self.0, r.caller, r.params, r.request_id)
    }
    fn disassociate_route_table(&self, r: &Request) -> Result<String> {
        routing::disassociate_route_table(self.0, r.caller, r.params, r.request_id)
    }
    fn allocate_address(&self, r: &Request) -> Result<String> {
        addresses::allocate(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_addresses(&self, r: &Request) -> Result<String> {
        addresses::describe(self.0, r.caller, r.params, r.request_id)
    }
    fn associate_address(&self, r: &Request) -> Result<String> {
        addresses::associate(self.0, r.caller, r.params, r.request_id)
    }
    fn disassociate_address(&self, r: &Request) -> Result<String> {
        addresses::disassociate(self.0, r.caller, r.params, r.request_id)
    }
    fn release_address(&self, r: &Request) -> Result<String> {
        addresses::release(self.0, r.caller, r.params, r.request_id)
    }
    fn create_network_interface(&self, r: &Request) -> Result<String> {
        interfaces::create(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_network_interfaces(&self, r: &Request) -> Result<String> {
        interfaces::describe(self.0, r.caller, r.params, r.request_id)
    }
    fn delete_network_interface(&self, r: &Request) -> Result<String> {
        interfaces::delete(self.0, r.caller, r.params, r.request_id)
    }
    fn attach_network_interface(&self, r: &Request) -> Result<String> {
        interfaces::attach(self.0, r.caller, r.params, r.request_id)
    }
    fn detach_network_interface(&self, r: &Request) -> Result<String> {
        interfaces::detach(self.0, r.caller, r.params, r.request_id)
    }
    fn describe_instance_credit_specifications(&self, r: &Request) -> Result<String> {
        credits::describe(self.0, r)
    }
    fn modify_instance_credit_specification(&self, r: &Request) -> Result<String> {
        credits::modify(self.0, r)
    }
    fn get_default_credit_specification(&self, r: &Request) -> Result<String> {
        credits::get_default(self.0, r)
    }
    fn modify_default_credit_specification(&self, r: &Request) -> Result<String> {
        credits::modify_default(self.0, r)
    }
    fn describe_network_acls(&self, r: &Request) -> Result<String> {
        routing::describe_network_acls(self.0, r.caller, r.params, r.request_id)
    }
    fn replace_route(&self, r: &Request) -> Result<String> {
        routing::replace_route(self.0, r.caller, r.params, r.request_id)
    }
    fn replace_route_table_association(&self, r: &Request) -> Result<String> {
        routing::replace_route_table_association(self.0, r.caller, r.params, r.request_id)
    }
    fn get_password_data(&self, r: &Request) -> Result<String> {
        credits::password_data(self.0, r)
    }
    fn reset_instance_attribute(&self, r: &Request) -> Result<String> {
        credits::reset_attribute(self.0, r)
    }
}

/// Whether `action` is a name metrics may use as a label (bounded: the model's names).
pub fn is_known(action: &str) -> bool {
    action == "GetCallerIdentity" || Operation::from_name(action).is_some()
}

/// The operation `action` names, or EC2's answer for a name the model does not have.
pub fn operation(action: &str) -> Result<Operation> {
    Operation::from_name(action).ok_or_else(|| Error::InvalidAction(action.to_string()))
}

/// Runs one EC2 action for an authenticated caller: the model decides whether the
/// action exists (`InvalidAction`) and is served (`UnsupportedOperation`), the
/// schema checks every parameter, then the operation's handler runs.
pub fn dispatch(
    cp: &ControlPlane,
    caller: &Caller,
    action: &str,
    p: &Params,
    rid: &str,
) -> Result<String> {
    if action == "GetCallerIdentity" {
        return sts::get_caller_identity(cp, caller, p, rid);
    }
    let op = operation(action)?;
    let served = op.served().ok_or_else(|| {
        Error::Unsupported(format!(
            "The action {action} is not supported by this endpoint."
        ))
    })?;
    check_version(p)?;
    strato_ec2_wire::validate::validate(action, served, p)?;
    let req = Request {
        caller,
        params: p,
        request_id: rid,
    };
    strato_ec2_model::dispatch(&Handlers(cp), op, &req).unwrap_or_else(|| {
        Err(Error::Internal(format!(
            "{action} is served but has no handler"
        )))
    })
}

/// EC2 API versions are dates; every current SDK sends 2016-11-15, older tools send
/// older dates whose shapes are a subset, so any well-formed date is served.
fn check_version(p: &Params) -> Result<()> {
    let v = p.required("Version")?;
    let ok = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
        && v <= strato_ec2_wire::EC2_VERSION;
    if ok {
        Ok(())
    } else {
        Err(Error::NoSuchVersion(v.to_string()))
    }
}

/// Decodes `TagSpecification.N` (EC2 spells the list `TagSpecification`).
pub fn tag_specs(p: &Params) -> Result<Vec<TagSpec>> {
    p.structs("TagSpecification")
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let resource_type = s
                .get("ResourceType")
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    Error::MissingParameter(format!("TagSpecification.{}.ResourceType", i + 1))
                })?
                .to_string();
            Ok(TagSpec {
                resource_type,
                tags: tag_list(&s, "Tag")?,
            })
        })
        .collect()
}

/// Decodes `Tag.N.Key` / `Tag.N.Value` pairs (a missing value is the empty string).
pub fn tag_list(p: &Params, prefix: &str) -> Result<Vec<(String, String)>> {
    p.structs(prefix)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let key = t
                .get("Key")
                .ok_or_else(|| Error::MissingParameter(format!("{prefix}.{}.Key", i + 1)))?;
            Ok((key.to_string(), t.get("Value").unwrap_or("").to_string()))
        })
        .collect()
}

/// The common `MaxResults` / `NextToken` pair.
pub fn page(p: &Params, min: i64, max: i64) -> Result<strato_control::page::PageRequest> {
    strato_control::page::PageRequest::new(p.int("MaxResults")?, p.get("NextToken"), min, max)
}
