//! The one STS action tools call first: GetCallerIdentity (`aws sts get-caller-identity`).

use crate::errors::WireError;
use strato_common::{Error, Result};
use strato_control::{Caller, ControlPlane};
use strato_ec2_wire::{xml, Params};

pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The STS actions Strato serves (metrics label them by name).
pub const ACTIONS: &[&str] = &["GetCallerIdentity"];

/// Runs one STS action for an authenticated caller.
pub fn dispatch(
    cp: &ControlPlane,
    caller: &Caller,
    action: &str,
    p: &Params,
    rid: &str,
) -> Result<String> {
    match action {
        "GetCallerIdentity" => get_caller_identity(cp, caller, p, rid),
        other => Err(Error::InvalidAction(other.to_string())),
    }
}

pub fn get_caller_identity(
    _cp: &ControlPlane,
    caller: &Caller,
    p: &Params,
    rid: &str,
) -> Result<String> {
    match p.get("Version") {
        Some("2011-06-15") => {}
        Some(v) => return Err(Error::NoSuchVersion(v.to_string())),
        None => return Err(Error::MissingParameter("Version".into())),
    }
    let account = caller.account.as_str();
    // STS puts the request id in ResponseMetadata, not first; build the document by hand.
    let mut w = xml::XmlWriter::default();
    w.open("GetCallerIdentityResult")
        .text("Arn", &format!("arn:aws:iam::{account}:root"))
        .text("UserId", account)
        .text("Account", account)
        .close("GetCallerIdentityResult")
        .open("ResponseMetadata")
        .text("RequestId", rid)
        .close("ResponseMetadata");
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetCallerIdentityResponse xmlns=\"{STS_XMLNS}\">{}</GetCallerIdentityResponse>",
        w.into_string()
    ))
}

/// STS's error envelope.
pub fn error(w: &WireError, rid: &str) -> String {
    let kind = if w.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let mut x = xml::XmlWriter::default();
    x.open("Error")
        .text("Type", kind)
        .text("Code", &w.code)
        .text("Message", &w.message)
        .close("Error")
        .text("RequestId", rid);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{STS_XMLNS}\">{}</ErrorResponse>",
        x.into_string()
    )
}
