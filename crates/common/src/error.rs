//! The one domain error type.
//!
//! Every failure a client can see is a variant here. The HTTP front door maps each
//! variant to EC2's error code and status in a single exhaustive function
//! (`strato_server::errors`), so adding a variant forces a decision about its wire form.
//! Messages in variants are client-safe; internal detail lives only in
//! [`Error::Internal`], whose text is logged and never sent.

use std::fmt;

/// The kinds of resources whose IDs have their own `*.NotFound` / `*.Malformed` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    Instance,
    Reservation,
    Image,
    KeyPair,
}

impl ResourceKind {
    /// The stem of EC2's error codes for this kind (`InvalidInstanceID`).
    pub fn code_stem(self) -> &'static str {
        match self {
            ResourceKind::Instance => "InvalidInstanceID",
            ResourceKind::Reservation => "InvalidReservationID",
            ResourceKind::Image => "InvalidAMIID",
            ResourceKind::KeyPair => "InvalidKeyPair",
        }
    }

    /// The resource type name used by DescribeTags (`resource-type`).
    pub fn tag_resource_type(self) -> &'static str {
        match self {
            ResourceKind::Instance => "instance",
            ResourceKind::Reservation => "reservation",
            ResourceKind::Image => "image",
            ResourceKind::KeyPair => "key-pair",
        }
    }

    /// How the kind is named in human messages.
    pub fn noun(self) -> &'static str {
        match self {
            ResourceKind::Instance => "instance ID",
            ResourceKind::Reservation => "reservation ID",
            ResourceKind::Image => "image id",
            ResourceKind::KeyPair => "key pair",
        }
    }
}

/// Every error a Strato operation can return to a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The referenced resource does not exist (or belongs to another account).
    #[error("The {} '{id}' does not exist", kind.noun())]
    NotFound { kind: ResourceKind, id: String },
    /// The ID is not syntactically an ID of that kind.
    #[error("Invalid id: \"{id}\"")]
    Malformed { kind: ResourceKind, id: String },
    /// A key pair with that name already exists.
    #[error("The keypair '{0}' already exists.")]
    KeyPairDuplicate(String),
    /// Imported key material could not be parsed.
    #[error("{0}")]
    InvalidKeyFormat(String),
    /// A tag-accepting action got an ID of no known resource kind.
    #[error("The ID '{0}' is not valid")]
    InvalidId(String),
    #[error("The request must contain the parameter {0}")]
    MissingParameter(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidParameterCombination(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidPaginationToken(String),
    #[error("{0}")]
    InvalidUserDataMalformed(String),
    #[error("{0}")]
    IncorrectInstanceState(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    #[error("{0}")]
    InsufficientInstanceCapacity(String),
    #[error("{0}")]
    TagLimitExceeded(String),
    #[error("{0}")]
    InvalidInstanceType(String),
    #[error("{0}")]
    RequestTooLarge(String),
    #[error("{0}")]
    InstanceLimitExceeded(String),
    #[error("The requested version ({0}) of service AmazonEC2 does not exist")]
    NoSuchVersion(String),
    #[error("{0}")]
    RequestLimitExceeded(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("The action {0} is not valid for this web service.")]
    InvalidAction(String),
    #[error("Request would have succeeded, but DryRun flag is set.")]
    DryRunOperation,
    #[error("{0}")]
    AuthFailure(String),
    #[error("{0}")]
    SignatureDoesNotMatch(String),
    #[error("{0}")]
    IncompleteSignature(String),
    #[error("{0}")]
    MissingAuthenticationToken(String),
    #[error("{0}")]
    RequestExpired(String),
    #[error("{0}")]
    UnauthorizedOperation(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// Something broke inside Strato; the text is logged, the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn not_found(kind: ResourceKind, id: impl fmt::Display) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    pub fn invalid_value(msg: impl Into<String>) -> Self {
        Error::InvalidParameterValue(msg.into())
    }

    pub fn internal(e: impl fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
