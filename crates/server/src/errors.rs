//! The one mapping from domain errors to EC2's wire errors.
//!
//! Exhaustive on purpose: a new [`Error`] variant does not compile until it has a code
//! and an HTTP status here.

use axum::http::StatusCode;
use strato_common::Error;

/// What a client sees for an error: HTTP status, EC2 error code, message.
pub struct WireError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

/// Maps a domain error to its wire form. Internal details never leave this function;
/// the caller logs the original error with the request id.
pub fn to_wire(e: &Error) -> WireError {
    use StatusCode as S;
    let (status, code): (S, String) = match e {
        Error::NotFound { kind, .. } | Error::NotFoundWithMessage { kind, .. } => {
            (S::BAD_REQUEST, kind.not_found_code())
        }
        Error::Malformed { kind, .. } => (S::BAD_REQUEST, kind.malformed_code()),
        Error::KeyPairDuplicate(_) => (S::BAD_REQUEST, "InvalidKeyPair.Duplicate".into()),
        Error::InvalidKeyFormat(_) => (S::BAD_REQUEST, "InvalidKey.Format".into()),
        Error::InvalidId(_) => (S::BAD_REQUEST, "InvalidID".into()),
        Error::MissingParameter(_) => (S::BAD_REQUEST, "MissingParameter".into()),
        Error::InvalidParameterValue(_) => (S::BAD_REQUEST, "InvalidParameterValue".into()),
        Error::UnknownParameter(_) => (S::BAD_REQUEST, "UnknownParameter".into()),
        Error::InvalidParameterCombination(_) => {
            (S::BAD_REQUEST, "InvalidParameterCombination".into())
        }
        Error::InvalidParameter(_) => (S::BAD_REQUEST, "InvalidParameter".into()),
        Error::InvalidPaginationToken(_) => (S::BAD_REQUEST, "InvalidPaginationToken".into()),
        Error::InvalidUserDataMalformed(_) => (S::BAD_REQUEST, "InvalidUserData.Malformed".into()),
        Error::IncorrectInstanceState(_) => (S::BAD_REQUEST, "IncorrectInstanceState".into()),
        Error::OperationNotPermitted(_) => (S::BAD_REQUEST, "OperationNotPermitted".into()),
        Error::IdempotentParameterMismatch(_) => {
            (S::BAD_REQUEST, "IdempotentParameterMismatch".into())
        }
        Error::InsufficientInstanceCapacity(_) => (
            S::INTERNAL_SERVER_ERROR,
            "InsufficientInstanceCapacity".into(),
        ),
        Error::TagLimitExceeded(_) => (S::BAD_REQUEST, "TagLimitExceeded".into()),
        Error::FilterLimitExceeded(_) => (S::BAD_REQUEST, "FilterLimitExceeded".into()),
        Error::InvalidInstanceType(_) => (S::BAD_REQUEST, "InvalidInstanceType".into()),
        Error::RequestTooLarge(_) => (S::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge".into()),
        Error::InstanceLimitExceeded(_) => (S::BAD_REQUEST, "InstanceLimitExceeded".into()),
        Error::NoSuchVersion(_) => (S::BAD_REQUEST, "NoSuchVersion".into()),
        Error::RequestLimitExceeded(_) => (S::SERVICE_UNAVAILABLE, "RequestLimitExceeded".into()),
        Error::Unsupported(_) => (S::BAD_REQUEST, "UnsupportedOperation".into()),
        Error::InvalidAction(_) => (S::BAD_REQUEST, "InvalidAction".into()),
        Error::DryRunOperation => (S::PRECONDITION_FAILED, "DryRunOperation".into()),
        Error::DependencyViolation(_) => (S::BAD_REQUEST, "DependencyViolation".into()),
        Error::InvalidVpcRange(_) => (S::BAD_REQUEST, "InvalidVpc.Range".into()),
        Error::InvalidSubnetRange(_) => (S::BAD_REQUEST, "InvalidSubnet.Range".into()),
        Error::InvalidSubnetConflict(_) => (S::BAD_REQUEST, "InvalidSubnet.Conflict".into()),
        Error::InvalidPermissionDuplicate(_) => {
            (S::BAD_REQUEST, "InvalidPermission.Duplicate".into())
        }
        Error::InvalidPermissionNotFound(_) => {
            (S::BAD_REQUEST, "InvalidPermission.NotFound".into())
        }
        Error::InvalidGroupDuplicate(_) => (S::BAD_REQUEST, "InvalidGroup.Duplicate".into()),
        Error::InvalidGroupReserved(_) => (S::BAD_REQUEST, "InvalidGroup.Reserved".into()),
        Error::CannotDelete(_) => (S::BAD_REQUEST, "CannotDelete".into()),
        Error::DefaultVpcAlreadyExists(_) => (S::BAD_REQUEST, "DefaultVpcAlreadyExists".into()),
        Error::VpcIdNotSpecified(_) => (S::BAD_REQUEST, "VPCIdNotSpecified".into()),
        Error::RouteAlreadyExists(_) => (S::BAD_REQUEST, "RouteAlreadyExists".into()),
        Error::InvalidRouteNotFound(_) => (S::BAD_REQUEST, "InvalidRoute.NotFound".into()),
        Error::ResourceAlreadyAssociated(_) => {
            (S::BAD_REQUEST, "Resource.AlreadyAssociated".into())
        }
        Error::GatewayNotAttached(_) => (S::BAD_REQUEST, "Gateway.NotAttached".into()),
        Error::RulesPerSecurityGroupLimitExceeded(_) => {
            (S::BAD_REQUEST, "RulesPerSecurityGroupLimitExceeded".into())
        }
        Error::VolumeInUse(_) => (S::BAD_REQUEST, "VolumeInUse".into()),
        Error::IncorrectState(_) => (S::BAD_REQUEST, "IncorrectState".into()),
        Error::InvalidParameterDependency(_) => {
            (S::BAD_REQUEST, "InvalidParameterDependency".into())
        }
        Error::VolumeZoneMismatch(_) => (S::BAD_REQUEST, "InvalidVolume.ZoneMismatch".into()),
        Error::VolumeLimitExceeded(_) => (S::BAD_REQUEST, "VolumeLimitExceeded".into()),
        Error::AttachmentLimitExceeded(_) => (S::BAD_REQUEST, "AttachmentLimitExceeded".into()),
        Error::IncorrectModificationState(_) => {
            (S::BAD_REQUEST, "IncorrectModificationState".into())
        }
        Error::VolumeModificationNotFound(_) => {
            (S::BAD_REQUEST, "InvalidVolumeModification.NotFound".into())
        }
        Error::InvalidBlockDeviceMapping(_) => (S::BAD_REQUEST, "InvalidBlockDeviceMapping".into()),
        Error::InvalidAmiNameMalformed(_) => (S::BAD_REQUEST, "InvalidAMIName.Malformed".into()),
        Error::InvalidAmiNameDuplicate(_) => (S::BAD_REQUEST, "InvalidAMIName.Duplicate".into()),
        Error::InvalidAmiUnavailable(_) => (S::BAD_REQUEST, "InvalidAMIID.Unavailable".into()),
        Error::SnapshotInUse(_) => (S::BAD_REQUEST, "InvalidSnapshot.InUse".into()),
        Error::NetworkInterfaceInUse(_) => (S::BAD_REQUEST, "InvalidNetworkInterface.InUse".into()),
        Error::AddressLimitExceeded(_) => (S::BAD_REQUEST, "AddressLimitExceeded".into()),
        Error::InvalidIpAddressInUse(_) => (S::BAD_REQUEST, "InvalidIPAddress.InUse".into()),
        Error::InsufficientFreeAddressesInSubnet(_) => {
            (S::BAD_REQUEST, "InsufficientFreeAddressesInSubnet".into())
        }
        Error::AuthFailure(_) => (S::UNAUTHORIZED, "AuthFailure".into()),
        Error::SignatureDoesNotMatch(_) => (S::FORBIDDEN, "SignatureDoesNotMatch".into()),
        Error::IncompleteSignature(_) => (S::BAD_REQUEST, "IncompleteSignature".into()),
        Error::MissingAuthenticationToken(_) => {
            (S::UNAUTHORIZED, "MissingAuthenticationToken".into())
        }
        Error::RequestExpired(_) => (S::BAD_REQUEST, "RequestExpired".into()),
        Error::UnauthorizedOperation(_) => (S::FORBIDDEN, "UnauthorizedOperation".into()),
        Error::InvalidRequest(_) => (S::BAD_REQUEST, "InvalidRequest".into()),
        Error::Internal(_) => (S::INTERNAL_SERVER_ERROR, "InternalError".into()),
    };
    let message = match e {
        Error::Internal(_) => "An internal error has occurred".to_string(),
        other => other.to_string(),
    };
    WireError {
        status,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strato_common::ResourceKind;

    #[test]
    fn codes_and_statuses() {
        let w = to_wire(&Error::not_found(
            ResourceKind::Instance,
            "i-0123456789abcdef0",
        ));
        assert_eq!(w.code, "InvalidInstanceID.NotFound");
        assert_eq!(
            w.message,
            "The instance ID 'i-0123456789abcdef0' does not exist"
        );
        let w = to_wire(&Error::DryRunOperation);
        assert_eq!(
            (w.status.as_u16(), w.code.as_str()),
            (412, "DryRunOperation")
        );
        assert_eq!(
            w.message,
            "Request would have succeeded, but DryRun flag is set."
        );
        let w = to_wire(&Error::Internal("secret path /var/lib".into()));
        assert_eq!(w.status.as_u16(), 500);
        assert!(!w.message.contains("secret"));
        let w = to_wire(&Error::Malformed {
            kind: ResourceKind::Image,
            id: "ami-x".into(),
        });
        assert_eq!(w.code, "InvalidAMIID.Malformed");
        // Security groups: missing groups are InvalidGroup, ill-formed ids InvalidGroupId.
        let w = to_wire(&Error::not_found(
            ResourceKind::SecurityGroup,
            "sg-12345678",
        ));
        assert_eq!(w.code, "InvalidGroup.NotFound");
        assert_eq!(w.message, "The security group 'sg-12345678' does not exist");
        let w = to_wire(&Error::Malformed {
            kind: ResourceKind::SecurityGroup,
            id: "sg-x".into(),
        });
        assert_eq!(w.code, "InvalidGroupId.Malformed");
        for (kind, code) in [
            (ResourceKind::Vpc, "InvalidVpcID.NotFound"),
            (ResourceKind::Subnet, "InvalidSubnetID.NotFound"),
            (
                ResourceKind::SecurityGroupRule,
                "InvalidSecurityGroupRuleId.NotFound",
            ),
            (
                ResourceKind::InternetGateway,
                "InvalidInternetGatewayID.NotFound",
            ),
            (ResourceKind::RouteTable, "InvalidRouteTableID.NotFound"),
            (
                ResourceKind::RouteTableAssociation,
                "InvalidAssociationID.NotFound",
            ),
            (ResourceKind::DhcpOptions, "InvalidDhcpOptionID.NotFound"),
            (ResourceKind::Address, "InvalidAllocationID.NotFound"),
            (
                ResourceKind::AddressAssociation,
                "InvalidAssociationID.NotFound",
            ),
            (ResourceKind::PublicIp, "InvalidAddress.NotFound"),
            (
                ResourceKind::NetworkInterface,
                "InvalidNetworkInterfaceID.NotFound",
            ),
            (
                ResourceKind::NetworkInterfaceAttachment,
                "InvalidAttachmentID.NotFound",
            ),
        ] {
            assert_eq!(to_wire(&Error::not_found(kind, "x")).code, code);
        }
        let w = to_wire(&Error::DependencyViolation("busy".into()));
        assert_eq!(
            (w.status.as_u16(), w.code.as_str()),
            (400, "DependencyViolation")
        );
        assert_eq!(
            to_wire(&Error::InvalidSubnetConflict("c".into())).code,
            "InvalidSubnet.Conflict"
        );
    }
}
