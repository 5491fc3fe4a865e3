//! Typed resource IDs.
//!
//! EC2 IDs are a prefix, a dash and 17 lowercase hex digits (`i-0123456789abcdef0`);
//! older 8-digit IDs are still accepted on input. Each kind of ID is its own type so a
//! volume ID can never be passed where an instance ID is expected. Parsing failures carry
//! the kind's `*.Malformed` error.

use crate::error::{Error, ResourceKind};
use rand::Rng;
use std::fmt;

/// Behaviour shared by every prefixed EC2 resource ID.
pub trait ResourceId: Sized + Clone + fmt::Display {
    /// The ID prefix without the dash (`i`, `ami`, `key`...).
    const PREFIX: &'static str;
    /// The resource kind, which names the error codes for this ID.
    const KIND: ResourceKind;
    /// Wraps an already-validated string.
    fn from_string_unchecked(s: String) -> Self;
    /// The ID as a string.
    fn as_str(&self) -> &str;

    /// A fresh random ID with 17 hex digits.
    fn generate() -> Self {
        let n: u128 = rand::thread_rng().gen();
        let hex = format!("{:032x}", n);
        Self::from_string_unchecked(format!("{}-{}", Self::PREFIX, &hex[..17]))
    }

    /// Parses and validates an ID, answering `<Kind>.Malformed` when it is not one.
    fn parse(s: &str) -> Result<Self, Error> {
        if is_well_formed(Self::PREFIX, s) {
            Ok(Self::from_string_unchecked(s.to_string()))
        } else {
            Err(Error::Malformed {
                kind: Self::KIND,
                id: s.to_string(),
            })
        }
    }
}

/// True when `s` is `<prefix>-` followed by 8 or 17 lowercase hex digits.
pub fn is_well_formed(prefix: &str, s: &str) -> bool {
    let Some(rest) = s.strip_prefix(prefix).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    (rest.len() == 17 || rest.len() == 8)
        && rest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl ResourceId for $name {
            const PREFIX: &'static str = $prefix;
            const KIND: ResourceKind = $kind;
            fn from_string_unchecked(s: String) -> Self {
                $name(s)
            }
            fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl $name {
            /// The ID as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Parses an ID, or `None` when it is not one of this kind.
            pub fn parse_str(s: &str) -> Option<Self> {
                <Self as ResourceId>::parse(s).ok()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

define_id!(
    /// An instance (`i-…`).
    InstanceId,
    "i",
    ResourceKind::Instance
);
define_id!(
    /// A reservation: the group of instances one RunInstances call launched (`r-…`).
    ReservationId,
    "r",
    ResourceKind::Reservation
);
define_id!(
    /// A machine image (`ami-…`).
    ImageId,
    "ami",
    ResourceKind::Image
);
define_id!(
    /// A key pair (`key-…`); users mostly address key pairs by name.
    KeyPairId,
    "key",
    ResourceKind::KeyPair
);

define_id!(
    /// An EBS volume (`vol-…`).
    VolumeId,
    "vol",
    ResourceKind::Volume
);
define_id!(
    /// An EBS snapshot (`snap-…`).
    SnapshotId,
    "snap",
    ResourceKind::Snapshot
);

define_id!(
    /// A virtual private cloud (`vpc-…`).
    VpcId,
    "vpc",
    ResourceKind::Vpc
);
define_id!(
    /// A subnet of a VPC (`subnet-…`).
    SubnetId,
    "subnet",
    ResourceKind::Subnet
);
define_id!(
    /// A security group (`sg-…`).
    SecurityGroupId,
    "sg",
    ResourceKind::SecurityGroup
);
define_id!(
    /// One rule of a security group (`sgr-…`).
    SecurityGroupRuleId,
    "sgr",
    ResourceKind::SecurityGroupRule
);
define_id!(
    /// An internet gateway (`igw-…`).
    InternetGatewayId,
    "igw",
    ResourceKind::InternetGateway
);
define_id!(
    /// A route table (`rtb-…`).
    RouteTableId,
    "rtb",
    ResourceKind::RouteTable
);
define_id!(
    /// The association of a route table with a subnet, or its main association with
    /// its VPC (`rtbassoc-…`).
    RouteTableAssociationId,
    "rtbassoc",
    ResourceKind::RouteTableAssociation
);
define_id!(
    /// A set of DHCP options (`dopt-…`).
    DhcpOptionsId,
    "dopt",
    ResourceKind::DhcpOptions
);

define_id!(
    /// A network ACL (`acl-…`).
    NetworkAclId,
    "acl",
    ResourceKind::NetworkAcl
);

define_id!(
    /// An Elastic IP allocation (`eipalloc-…`).
    AllocationId,
    "eipalloc",
    ResourceKind::Address
);
define_id!(
    /// The association of an Elastic IP with an instance (`eipassoc-…`).
    AddressAssociationId,
    "eipassoc",
    ResourceKind::AddressAssociation
);

define_id!(
    /// A network interface (`eni-…`).
    NetworkInterfaceId,
    "eni",
    ResourceKind::NetworkInterface
);
define_id!(
    /// The attachment of a network interface to an instance (`eni-attach-…`).
    NetworkInterfaceAttachmentId,
    "eni-attach",
    ResourceKind::NetworkInterfaceAttachment
);

/// A fresh identifier with any prefix, for identifiers that are only ever generated and
/// echoed (`vpc-cidr-assoc-…`), never parsed from a request.
pub fn generate_with_prefix(prefix: &str) -> String {
    let n: u128 = rand::thread_rng().gen();
    format!("{prefix}-{}", &format!("{n:032x}")[..17])
}

/// A 12-digit AWS-style account number, the unit of tenancy.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// A fresh random 12-digit account number (never starting with 0).
    pub fn generate() -> Self {
        let n: u64 = rand::thread_rng().gen_range(100_000_000_000..1_000_000_000_000);
        AccountId(n.to_string())
    }

    /// Validates a 12-digit account number.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| AccountId(s.to_string()))
    }

    /// The account number as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which kind of resource an ID names, judged by its prefix (used by CreateTags, which
/// takes IDs of any kind).
pub fn kind_of_id(s: &str) -> Option<ResourceKind> {
    let (prefix, _) = s.split_once('-')?;
    let kind = match prefix {
        "i" => ResourceKind::Instance,
        "r" => ResourceKind::Reservation,
        "ami" => ResourceKind::Image,
        "key" => ResourceKind::KeyPair,
        "vpc" => ResourceKind::Vpc,
        "subnet" => ResourceKind::Subnet,
        "sg" => ResourceKind::SecurityGroup,
        "sgr" => ResourceKind::SecurityGroupRule,
        "igw" => ResourceKind::InternetGateway,
        "rtb" => ResourceKind::RouteTable,
        "rtbassoc" => ResourceKind::RouteTableAssociation,
        "dopt" => ResourceKind::DhcpOptions,
        "eipalloc" => ResourceKind::Address,
        "eipassoc" => ResourceKind::AddressAssociation,
        "eni" => ResourceKind::NetworkInterface,
        "acl" => ResourceKind::NetworkAcl,
        "vol" => ResourceKind::Volume,
        "snap" => ResourceKind::Snapshot,
        _ => return None,
    };
    is_well_formed(prefix, s).then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_ids_are_well_formed() {
        for _ in 0..100 {
            let id = InstanceId::generate();
            assert_eq!(id.as_str().len(), 19);
            assert!(InstanceId::parse(id.as_str()).is_ok());
        }
        assert_eq!(AccountId::generate().as_str().len(), 12);
    }

    #[test]
    fn malformed_ids_are_rejected_with_their_kind() {
        for bad in [
            "i-",
            "i-xyz",
            "ami-0123456789abcdef0",
            "i-0123456789ABCDEF0",
            "i-123",
        ] {
            match InstanceId::parse(bad) {
                Err(Error::Malformed { kind, .. }) => assert_eq!(kind, ResourceKind::Instance),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(InstanceId::parse("i-12345678").is_ok());
        assert_eq!(
            kind_of_id("ami-0123456789abcdef0"),
            Some(ResourceKind::Image)
        );
        assert_eq!(
            kind_of_id("vol-0123456789abcdef0"),
            Some(ResourceKind::Volume)
        );
        assert_eq!(kind_of_id("lt-0123456789abcdef0"), None);
        assert_eq!(kind_of_id("vpc-0123456789abcdef0"), Some(ResourceKind::Vpc));
        assert_eq!(kind_of_id("sg-01234567"), Some(ResourceKind::SecurityGroup));
        assert_eq!(
            kind_of_id("sgr-0123456789abcdef0"),
            Some(ResourceKind::SecurityGroupRule)
        );
        // Compound prefixes are not confused with their first word.
        assert_eq!(kind_of_id("vpc-cidr-assoc-0123456789abcdef0"), None);
        assert!(generate_with_prefix("vpc-cidr-assoc").starts_with("vpc-cidr-assoc-"));
        assert!(SubnetId::parse("subnet-0123456789abcdef0").is_ok());
        assert_eq!(
            kind_of_id("eipalloc-0123456789abcdef0"),
            Some(ResourceKind::Address)
        );
        assert!(AllocationId::generate().as_str().starts_with("eipalloc-"));
        assert!(AddressAssociationId::parse("eipassoc-12345678").is_ok());
        assert_eq!(
            kind_of_id("eni-0123456789abcdef0"),
            Some(ResourceKind::NetworkInterface)
        );
        assert_eq!(kind_of_id("eni-attach-0123456789abcdef0"), None);
        assert!(NetworkInterfaceAttachmentId::parse(
            NetworkInterfaceAttachmentId::generate().as_str()
        )
        .is_ok());
        assert!(matches!(
            SecurityGroupId::parse("sg-zz"),
            Err(Error::Malformed {
                kind: ResourceKind::SecurityGroup,
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = InstanceId::parse(&s);
            let _ = kind_of_id(&s);
        }
    }
}
