//! The EC2 API as data, generated from AWS's own model.
//!
//! `model/ec2-2016-11-15.json` is botocore's EC2 `service-2.json` with its documentation
//! removed (see `model/README.md`); `served.toml` names the operations Strato serves,
//! their effect and the input members each handler honours. `cargo xtask codegen`
//! turns both into [`generated`]: one [`Operation`] per operation of the model, the
//! input schema of every served operation, and the [`Ec2Service`] trait with one method
//! per served operation. Nothing here is written by hand except these types.
//!
//! The wire codec (`strato-ec2-wire`) walks a request's parameters against the schema,
//! so required members, enum values and numeric ranges come from the model, and a
//! parameter the model lacks, or that Strato does not honour, is refused by name.

pub mod generated;

pub use generated::operations::Operation;

/// What an operation may change, which decides metrics labels and whether the host's
/// dataplane is recomputed after it succeeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Changes nothing (Describe*, Get*).
    Read,
    /// Changes records that never shape packets (key pairs, tags, credit settings).
    Write,
    /// Changes something the dataplane depends on (instances, addresses, rules, routes).
    Network,
}

/// A shape of the model, reduced to what decoding and validation need.
#[derive(Debug)]
pub struct Shape {
    /// The shape's name in the model (`RunInstancesRequest`).
    pub name: &'static str,
    pub kind: Kind,
}

/// The kinds of shapes, with the constraints the model states for each.
#[derive(Debug)]
pub enum Kind {
    Structure(&'static [Member]),
    /// A list; in EC2's Query protocol always flattened as `Name.N` (N from 1).
    List {
        member: &'static Shape,
        min: Option<i64>,
        max: Option<i64>,
    },
    String {
        /// The allowed values when the shape is an enum (empty otherwise).
        values: &'static [&'static str],
        min: Option<i64>,
        max: Option<i64>,
    },
    Integer {
        min: Option<i64>,
        max: Option<i64>,
    },
    Long {
        min: Option<i64>,
        max: Option<i64>,
    },
    Double,
    Boolean,
    Timestamp,
    Blob,
}

/// A member of a structure.
#[derive(Debug)]
pub struct Member {
    /// The member's name in the model (`ImageId`, `BlockDeviceMappings`).
    pub name: &'static str,
    /// Its name on the wire: `queryName`, else `locationName` capitalised, else `name`.
    pub wire: &'static str,
    pub shape: &'static Shape,
    pub required: bool,
}

/// An operation Strato serves.
#[derive(Debug)]
pub struct Served {
    /// The input structure (`None` for the few operations without one).
    pub input: Option<&'static Shape>,
    pub effect: Effect,
    /// The input paths the handler honours, sorted: wire names joined by `.` without
    /// list indices (`TagSpecification.Tag.Key`). A path honours its node and
    /// everything below it. `Path=value` honours the member only with that value: the
    /// value that asks for what Strato does anyway (`Ipv6Native=false`), which tools
    /// send explicitly.
    pub honours: &'static [&'static str],
}

impl Served {
    /// Whether the member at `path` (wire names without indices) is honoured: the path
    /// itself or one of its ancestors is listed.
    pub fn honours(&self, path: &str) -> bool {
        let mut p = path;
        loop {
            if self.honours.binary_search(&p).is_ok() {
                return true;
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => return false,
            }
        }
    }

    /// Whether the scalar at `path` is honoured with `value`: [`Served::honours`], or
    /// an entry `path=value` names exactly this value.
    pub fn honours_value(&self, path: &str, value: &str) -> bool {
        self.honours(path)
            || self.honours.iter().any(|h| {
                h.split_once('=')
                    .is_some_and(|(p, v)| p == path && v == value)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_operation_is_named_once() {
        assert!(Operation::ALL.len() >= 800, "{}", Operation::ALL.len());
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(*op));
        }
        assert_eq!(Operation::from_name("NoSuchAction"), None);
        assert_eq!(
            Operation::from_name("RunInstances"),
            Some(Operation::RunInstances)
        );
    }

    #[test]
    fn served_operations_carry_their_schema() {
        let run = Operation::RunInstances
            .served()
            .expect("RunInstances is served");
        assert_eq!(run.effect, Effect::Network);
        let input = run.input.expect("RunInstances has an input");
        let Kind::Structure(members) = &input.kind else {
            panic!("input is a structure")
        };
        let image = members.iter().find(|m| m.name == "ImageId").unwrap();
        assert_eq!(image.wire, "ImageId");
        let bdm = members
            .iter()
            .find(|m| m.name == "BlockDeviceMappings")
            .unwrap();
        // locationName `BlockDeviceMapping`, capitalised: EC2's singular list name.
        assert_eq!(bdm.wire, "BlockDeviceMapping");
        assert!(members.iter().any(|m| m.name == "MinCount" && m.required));
        assert!(run.honours("ImageId"));
        assert!(run.honours("TagSpecification.Tag.Key"));
        assert!(!run.honours("ElasticInferenceAccelerator"));
        assert_eq!(
            Operation::DescribeInstances.served().unwrap().effect,
            Effect::Read
        );
        assert!(Operation::CreateCapacityReservation.served().is_none());
        assert_eq!(Operation::CreateCapacityReservation.effect(), Effect::Write);
        assert_eq!(Operation::DescribeHosts.effect(), Effect::Read);
    }
}
