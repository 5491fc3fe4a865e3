//! The EC2 Query protocol, without I/O.
//!
//! Requests are `application/x-www-form-urlencoded` POST bodies (or GET query strings)
//! carrying `Action`, `Version=2016-11-15` and the action's parameters, with lists and
//! structures flattened into dotted names:
//!
//! ```text
//! Action=DescribeInstances&Version=2016-11-15
//! &InstanceId.1=i-0123456789abcdef0&InstanceId.2=i-…          (a list: Name.N, N from 1)
//! &Filter.1.Name=tag:Env&Filter.1.Value.1=prod&Filter.1.Value.2=dev   (list of structures)
//! &Placement.AvailabilityZone=us-east-1a                         (a structure member)
//! ```
//!
//! Responses are XML documents `<ActionResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">`
//! whose first child is `<requestId>`; lists are `<name><item>…</item></name>`. Errors are
//! `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`.
//!
//! [`params`] decodes, [`filter`] holds EC2's filter semantics, [`xml`] encodes.

pub mod codec;
pub mod filter;
mod generated;
pub mod params;
pub mod validate;
pub mod xml;

pub use generated::service::{dispatch, Ec2Service};
/// The typed requests, responses and enums of the served operations (generated).
pub use generated::types;

pub use filter::{filter_set, Filter, FilterSet};
pub use params::Params;
pub use xml::XmlWriter;

/// The only API version this codec speaks (the one every current SDK sends).
pub const EC2_VERSION: &str = "2016-11-15";
/// The XML namespace of EC2 responses.
pub const EC2_XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
