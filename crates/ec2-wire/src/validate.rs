//! Checking a request's parameters against the operation's schema from the AWS model.
//!
//! Every parameter name is walked through the input shape (`Filter.2.Value.1` →
//! member `Filter`, index 2, member `Value`, index 1), so a name the model does not
//! have answers `UnknownParameter`, a member Strato does not honour answers
//! `UnsupportedOperation` naming it, and each scalar is checked against its shape:
//! integers and their ranges, booleans, enum values, string lengths, list sizes.
//! Required members are checked in every structure the request carries. Handlers
//! still decode the values; this pass guarantees they never silently drop one.

use crate::params::Params;
use std::collections::{BTreeMap, BTreeSet};
use strato_common::{Error, Result};
use strato_ec2_model::{Kind, Served, Shape};

/// Parameters of the request envelope rather than of the operation: the action, the
/// API version, and the query-string forms of SigV4 and SigV2 authentication.
fn is_envelope(key: &str) -> bool {
    matches!(
        key,
        "Action"
            | "Version"
            | "AWSAccessKeyId"
            | "Signature"
            | "SignatureMethod"
            | "SignatureVersion"
            | "Timestamp"
            | "Expires"
            | "SecurityToken"
    ) || key.starts_with("X-Amz-")
}

/// The longest value echoed back in an error message; longer ones are cut with `…`.
pub const MAX_ECHO: usize = 64;

/// `value` shortened for an error message, so a megabyte parameter is never echoed,
/// with characters XML cannot carry replaced.
pub fn echo(value: &str) -> String {
    let clean = |c: char| {
        if crate::xml::is_xml_char(c) {
            c
        } else {
            '\u{FFFD}'
        }
    };
    if value.chars().count() <= MAX_ECHO {
        value.chars().map(clean).collect()
    } else {
        let cut: String = value.chars().take(MAX_ECHO).map(clean).collect();
        format!("{cut}…")
    }
}

/// Checks every parameter of `p` against the served operation `op` (named `action`).
pub fn validate(action: &str, op: &Served, p: &Params) -> Result<()> {
    let Some(input) = op.input else {
        if let Some(k) = p.keys().find(|k| !is_envelope(k)) {
            return Err(unknown(k));
        }
        return Ok(());
    };
    // Structures the request carries (by key prefix, "" for the input itself), so the
    // required members of each can be checked once every name is walked.
    let mut structures: BTreeMap<String, &'static Shape> = BTreeMap::new();
    structures.insert(String::new(), input);
    // List sizes, by list prefix: the highest index seen and the element count.
    let mut lists: BTreeMap<String, (&'static Shape, BTreeSet<u64>)> = BTreeMap::new();
    for (key, value) in p.iter() {
        if is_envelope(key) {
            continue;
        }
        let mut shape: &'static Shape = input;
        let mut path = String::new();
        let mut prefix = String::new();
        for seg in key.split('.') {
            match &shape.kind {
                Kind::Structure(members) => {
                    let m = members
                        .iter()
                        .find(|m| m.wire == seg)
                        .ok_or_else(|| unknown(key))?;
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(m.wire);
                    shape = m.shape;
                }
                Kind::List { member, .. } => {
                    let n: u64 = seg
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| unknown(key))?;
                    lists
                        .entry(prefix.clone())
                        .or_insert_with(|| (shape, BTreeSet::new()))
                        .1
                        .insert(n);
                    shape = member;
                }
                _ => return Err(unknown(key)),
            }
            if !prefix.is_empty() {
                prefix.push('.');
            }
            prefix.push_str(seg);
            if matches!(shape.kind, Kind::Structure(_)) {
                structures.entry(prefix.clone()).or_insert(shape);
            }
        }
        if matches!(shape.kind, Kind::Structure(_) | Kind::List { .. }) {
            return Err(unknown(key));
        }
        if !op.honours_value(&path, value) {
            return Err(Error::Unsupported(format!(
                "The parameter {key} of {action} is not supported by this endpoint."
            )));
        }
        scalar(key, value, shape)?;
    }
    for (prefix, shape) in &structures {
        let Kind::Structure(members) = &shape.kind else {
            continue;
        };
        for m in members.iter().filter(|m| m.required) {
            let name = if prefix.is_empty() {
                m.wire.to_string()
            } else {
                format!("{prefix}.{}", m.wire)
            };
            let dotted = format!("{name}.");
            let present = p
                .keys()
                .any(|k| k == name || k.starts_with(dotted.as_str()));
            if !present {
                return Err(Error::MissingParameter(name));
            }
        }
    }
    for (prefix, (shape, indices)) in &lists {
        if let Kind::List { max: Some(max), .. } = shape.kind {
            if indices.len() as i64 > max {
                return Err(Error::invalid_value(format!(
                    "The parameter {prefix} takes at most {max} values, {} were given.",
                    indices.len()
                )));
            }
        }
    }
    Ok(())
}

fn unknown(key: &str) -> Error {
    Error::UnknownParameter(format!("The parameter {} is not recognized", echo(key)))
}

use strato_ec2_model::generated::schema::OPEN_ENUMS;

/// Checks one scalar value against its shape.
fn scalar(key: &str, value: &str, shape: &Shape) -> Result<()> {
    // A value XML cannot carry would be stored and later make every listing that
    // echoes it unparseable: refuse it here, naming the character, not echoing it.
    if let Some(c) = value.chars().find(|c| !crate::xml::is_xml_char(*c)) {
        return Err(Error::invalid_value(format!(
            "The value of {key} contains the character U+{:04X}, which is not allowed.",
            c as u32
        )));
    }
    let bad = |expect: &str| {
        Error::invalid_value(format!(
            "Invalid value '{}' for {key}. {expect}",
            echo(value)
        ))
    };
    match &shape.kind {
        Kind::Integer { min, max } | Kind::Long { min, max } => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| bad("Expected an integer."))?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(bad(&range_text(*min, *max)));
            }
        }
        Kind::Double => {
            value
                .trim()
                .parse::<f64>()
                .map_err(|_| bad("Expected a number."))?;
        }
        Kind::Boolean => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err(bad("Expected a boolean (true or false)."));
            }
        }
        Kind::String { values, min, max } => {
            if !values.is_empty() && !values.contains(&value) && !OPEN_ENUMS.contains(&shape.name) {
                return Err(bad(&enum_text(values)));
            }
            let len = value.chars().count() as i64;
            if min.is_some_and(|m| len < m) || max.is_some_and(|m| len > m) {
                return Err(bad(&format!(
                    "Expected a length {}.",
                    range_text(*min, *max)
                        .trim_start_matches("Expected a value ")
                        .trim_end_matches('.')
                )));
            }
        }
        Kind::Timestamp | Kind::Blob => {}
        Kind::Structure(_) | Kind::List { .. } => {}
    }
    Ok(())
}

fn range_text(min: Option<i64>, max: Option<i64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("Expected a value between {a} and {b}."),
        (Some(a), None) => format!("Expected a value of at least {a}."),
        (None, Some(b)) => format!("Expected a value of at most {b}."),
        (None, None) => String::new(),
    }
}

/// The allowed values, listed in full when short, else the first few.
fn enum_text(values: &[&str]) -> String {
    const SHOWN: usize = 12;
    if values.len() <= SHOWN {
        format!("Valid values: {}.", values.join(", "))
    } else {
        format!(
            "Valid values include: {}, … ({} in all).",
            values[..SHOWN].join(", "),
            values.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_ec2_model::Operation;

    fn check(op: Operation, pairs: &[(&str, &str)]) -> Result<()> {
        let served = op.served().expect("served");
        validate(
            op.name(),
            served,
            &Params::from_pairs(pairs.iter().copied()),
        )
    }

    #[test]
    fn walks_names_through_the_model() {
        let base = [("Action", "RunInstances"), ("Version", "2016-11-15")];
        let ok = [
            &base[..],
            &[
                ("ImageId", "ami-1"),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("TagSpecification.1.ResourceType", "instance"),
                ("TagSpecification.1.Tag.1.Key", "k"),
            ],
        ]
        .concat();
        check(Operation::RunInstances, &ok).unwrap();
        let e = check(
            Operation::RunInstances,
            &[&ok[..], &[("Bogus", "1")]].concat(),
        );
        assert!(
            matches!(&e, Err(Error::UnknownParameter(m)) if m == "The parameter Bogus is not recognized"),
            "{e:?}"
        );
        // A member of the model Strato does not honour is refused by name.
        let e = check(
            Operation::RunInstances,
            &[
                &ok[..],
                &[("ElasticInferenceAccelerator.1.Type", "eia1.medium")],
            ]
            .concat(),
        );
        assert!(
            matches!(&e, Err(Error::Unsupported(m)) if m.contains("ElasticInferenceAccelerator.1.Type")),
            "{e:?}"
        );
        // An index must be a positive integer; a structure needs a member.
        for bad in [
            "TagSpecification.0.ResourceType",
            "TagSpecification.x.ResourceType",
            "Placement",
        ] {
            let e = check(Operation::RunInstances, &[&ok[..], &[(bad, "v")]].concat());
            assert!(matches!(e, Err(Error::UnknownParameter(_))), "{bad}: {e:?}");
        }
    }

    #[test]
    fn checks_required_members_and_values() {
        let base = [("ImageId", "ami-1"), ("MinCount", "1"), ("MaxCount", "1")];
        // The model does not require ImageId (a launch template may name the image):
        // that check is the handler's.
        assert!(check(Operation::RunInstances, &base[1..]).is_ok());
        let e = check(
            Operation::RunInstances,
            &[("ImageId", "ami-1"), ("MaxCount", "1")],
        );
        assert!(
            matches!(&e, Err(Error::MissingParameter(m)) if m == "MinCount"),
            "{e:?}"
        );
        let e = check(
            Operation::RunInstances,
            &[&base[..], &[("DryRun", "maybe")]].concat(),
        );
        assert!(
            matches!(&e, Err(Error::InvalidParameterValue(m)) if m.contains("DryRun")),
            "{e:?}"
        );
        let e = check(
            Operation::RunInstances,
            &[("ImageId", "a"), ("MinCount", "x"), ("MaxCount", "1")],
        );
        assert!(
            matches!(&e, Err(Error::InvalidParameterValue(m)) if m.contains("MinCount")),
            "{e:?}"
        );
        let e = check(
            Operation::RunInstances,
            &[
                &base[..],
                &[("InstanceInitiatedShutdownBehavior", "explode")],
            ]
            .concat(),
        );
        assert!(
            matches!(&e, Err(Error::InvalidParameterValue(m)) if m.contains("explode") && m.contains("terminate")),
            "{e:?}"
        );
        // Open enums are the handler's: EC2 answers InvalidInstanceType for a bad type.
        assert!(check(
            Operation::RunInstances,
            &[&base[..], &[("InstanceType", "t3.enormous")]].concat()
        )
        .is_ok());
        // Required members of nested structures: an InstanceCreditSpecification item
        // needs its InstanceId.
        let e = check(
            Operation::ModifyInstanceCreditSpecification,
            &[("InstanceCreditSpecification.1.CpuCredits", "standard")],
        );
        assert!(
            matches!(&e, Err(Error::MissingParameter(m)) if m == "InstanceCreditSpecification.1.InstanceId"),
            "{e:?}"
        );
    }

    #[test]
    fn characters_xml_cannot_carry_are_refused() {
        for bad in ["a\u{FFFE}", "\u{FFFF}", "x\u{1}y"] {
            let e = check(
                Operation::CreateTags,
                &[
                    ("ResourceId.1", "i-1"),
                    ("Tag.1.Key", "k"),
                    ("Tag.1.Value", bad),
                ],
            );
            assert!(
                matches!(&e, Err(Error::InvalidParameterValue(m)) if m.contains("Tag.1.Value") && !m.contains(bad)),
                "{e:?}"
            );
        }
        check(
            Operation::CreateTags,
            &[
                ("ResourceId.1", "i-1"),
                ("Tag.1.Key", "k"),
                ("Tag.1.Value", "tab\there \u{10000}"),
            ],
        )
        .unwrap();
    }

    #[test]
    fn echoes_are_cut() {
        let long = "x".repeat(10_000);
        let e = check(Operation::DescribeInstances, &[(long.as_str(), "1")]).unwrap_err();
        assert!(e.to_string().len() < 200, "{e}");
    }
}
