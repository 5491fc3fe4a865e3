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
    /// VPCs (`vpc-…`).
    Vpc,
    /// Subnets (`subnet-…`).
    Subnet,
    /// Security groups, addressed by id (`sg-…`) or by name within a VPC.
    SecurityGroup,
    /// Security group rules (`sgr-…`).
    SecurityGroupRule,
    /// Internet gateways (`igw-…`).
    InternetGateway,
    /// Route tables (`rtb-…`).
    RouteTable,
    /// Route table associations (`rtbassoc-…`).
    RouteTableAssociation,
    /// DHCP options sets (`dopt-…`).
    DhcpOptions,
    /// Elastic IP allocations (`eipalloc-…`).
    Address,
    /// Elastic IP associations (`eipassoc-…`).
    AddressAssociation,
    /// Elastic IPs named by their public address (`InvalidAddress.NotFound`).
    PublicIp,
    /// Network interfaces (`eni-…`).
    NetworkInterface,
    /// Network interface attachments (`eni-attach-…`).
    NetworkInterfaceAttachment,
    /// A network ACL (`acl-…`).
    NetworkAcl,
    /// EBS volumes (`vol-…`): `InvalidVolumeID.Malformed`, but `InvalidVolume.NotFound`.
    Volume,
    /// EBS snapshots (`snap-…`): `InvalidSnapshotID.Malformed`, but
    /// `InvalidSnapshot.NotFound`.
    Snapshot,
}

impl ResourceKind {
    /// The stem of EC2's error codes for this kind (`InvalidInstanceID`).
    ///
    /// Security groups are the one kind whose two codes have different stems: EC2
    /// answers `InvalidGroupId.Malformed` for an ill-formed id but
    /// `InvalidGroup.NotFound` for a group missing by id or by name, so use
    /// [`ResourceKind::not_found_code`] and [`ResourceKind::malformed_code`].
    pub fn code_stem(self) -> &'static str {
        match self {
            ResourceKind::Instance => "InvalidInstanceID",
            ResourceKind::Reservation => "InvalidReservationID",
            ResourceKind::Image => "InvalidAMIID",
            ResourceKind::KeyPair => "InvalidKeyPair",
            ResourceKind::Vpc => "InvalidVpcID",
            ResourceKind::Subnet => "InvalidSubnetID",
            ResourceKind::SecurityGroup => "InvalidGroupId",
            ResourceKind::SecurityGroupRule => "InvalidSecurityGroupRuleId",
            ResourceKind::InternetGateway => "InvalidInternetGatewayID",
            ResourceKind::RouteTable => "InvalidRouteTableID",
            ResourceKind::RouteTableAssociation => "InvalidAssociationID",
            ResourceKind::DhcpOptions => "InvalidDhcpOptionID",
            ResourceKind::Address => "InvalidAllocationID",
            ResourceKind::AddressAssociation => "InvalidAssociationID",
            ResourceKind::PublicIp => "InvalidAddress",
            ResourceKind::NetworkInterface => "InvalidNetworkInterfaceID",
            ResourceKind::NetworkInterfaceAttachment => "InvalidAttachmentID",
            ResourceKind::NetworkAcl => "InvalidNetworkAclID",
            ResourceKind::Volume => "InvalidVolumeID",
            ResourceKind::Snapshot => "InvalidSnapshotID",
        }
    }

    /// EC2's code for a resource of this kind that does not exist.
    pub fn not_found_code(self) -> String {
        match self {
            ResourceKind::SecurityGroup => "InvalidGroup.NotFound".to_string(),
            ResourceKind::Volume => "InvalidVolume.NotFound".to_string(),
            ResourceKind::Snapshot => "InvalidSnapshot.NotFound".to_string(),
            other => format!("{}.NotFound", other.code_stem()),
        }
    }

    /// EC2's code for an id of this kind that is not well formed.
    pub fn malformed_code(self) -> String {
        format!("{}.Malformed", self.code_stem())
    }

    /// The resource type name used by DescribeTags (`resource-type`).
    pub fn tag_resource_type(self) -> &'static str {
        match self {
            ResourceKind::Instance => "instance",
            ResourceKind::Reservation => "reservation",
            ResourceKind::Image => "image",
            ResourceKind::KeyPair => "key-pair",
            ResourceKind::Vpc => "vpc",
            ResourceKind::Subnet => "subnet",
            ResourceKind::SecurityGroup => "security-group",
            ResourceKind::SecurityGroupRule => "security-group-rule",
            ResourceKind::InternetGateway => "internet-gateway",
            ResourceKind::RouteTable => "route-table",
            ResourceKind::RouteTableAssociation => "route-table-association",
            ResourceKind::DhcpOptions => "dhcp-options",
            ResourceKind::Address => "elastic-ip",
            ResourceKind::AddressAssociation => "elastic-ip-association",
            ResourceKind::PublicIp => "elastic-ip",
            ResourceKind::NetworkInterface => "network-interface",
            ResourceKind::NetworkInterfaceAttachment => "network-interface-attachment",
            ResourceKind::NetworkAcl => "network-acl",
            ResourceKind::Volume => "volume",
            ResourceKind::Snapshot => "snapshot",
        }
    }

    /// How the kind is named in human messages (EC2's own, odd capitalisation included).
    pub fn noun(self) -> &'static str {
        match self {
            ResourceKind::Instance => "instance ID",
            ResourceKind::Reservation => "reservation ID",
            ResourceKind::Image => "image id",
            ResourceKind::KeyPair => "key pair",
            ResourceKind::Vpc => "vpc ID",
            ResourceKind::Subnet => "subnet ID",
            ResourceKind::SecurityGroup => "security group",
            ResourceKind::SecurityGroupRule => "security group rule ID",
            ResourceKind::InternetGateway => "internetGateway ID",
            ResourceKind::RouteTable => "routeTable ID",
            ResourceKind::RouteTableAssociation => "association ID",
            ResourceKind::DhcpOptions => "dhcpOption ID",
            ResourceKind::Address => "allocation ID",
            ResourceKind::AddressAssociation => "association ID",
            ResourceKind::PublicIp => "address",
            ResourceKind::NetworkInterface => "networkInterface ID",
            ResourceKind::NetworkInterfaceAttachment => "attachment ID",
            ResourceKind::NetworkAcl => "networkAcl ID",
            ResourceKind::Volume => "volume",
            ResourceKind::Snapshot => "snapshot",
        }
    }
}

/// Every error a Strato operation can return to a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The referenced resource does not exist (or belongs to another account).
    #[error("The {} '{id}' does not exist", kind.noun())]
    NotFound { kind: ResourceKind, id: String },
    /// The resource does not exist, with EC2's own wording for the case (a group named
    /// in the wrong VPC, a group of another network…); the code is still the kind's
    /// `*.NotFound`.
    #[error("{message}")]
    NotFoundWithMessage { kind: ResourceKind, message: String },
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
    /// A parameter the operation does not have in EC2's model (`UnknownParameter`).
    #[error("{0}")]
    UnknownParameter(String),
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
    /// More filter values in one request than EC2 evaluates (`FilterLimitExceeded`).
    #[error("{0}")]
    FilterLimitExceeded(String),
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
    /// The resource is still used by others (subnets in a VPC, instances in a subnet,
    /// rules referencing a group…) and cannot be deleted or detached yet.
    #[error("{0}")]
    DependencyViolation(String),
    /// A VPC CIDR block outside what EC2 allows (`InvalidVpc.Range`).
    #[error("{0}")]
    InvalidVpcRange(String),
    /// A subnet CIDR block too large, too small or outside its VPC (`InvalidSubnet.Range`).
    #[error("{0}")]
    InvalidSubnetRange(String),
    /// A subnet CIDR block overlapping another subnet of the VPC (`InvalidSubnet.Conflict`).
    #[error("{0}")]
    InvalidSubnetConflict(String),
    /// A security group rule that already exists (`InvalidPermission.Duplicate`).
    #[error("{0}")]
    InvalidPermissionDuplicate(String),
    /// A security group rule to revoke that does not exist (`InvalidPermission.NotFound`).
    #[error("{0}")]
    InvalidPermissionNotFound(String),
    /// A security group name already used in the VPC (`InvalidGroup.Duplicate`).
    #[error("{0}")]
    InvalidGroupDuplicate(String),
    /// A security group name only EC2 may use (`InvalidGroup.Reserved`).
    #[error("{0}")]
    InvalidGroupReserved(String),
    /// A resource that can never be deleted by a user, like a VPC's default security
    /// group (`CannotDelete`).
    #[error("{0}")]
    CannotDelete(String),
    /// CreateDefaultVpc while the account has one (`DefaultVpcAlreadyExists`).
    #[error("{0}")]
    DefaultVpcAlreadyExists(String),
    /// No subnet was given and the account has no default VPC (`VPCIdNotSpecified`).
    #[error("{0}")]
    VpcIdNotSpecified(String),
    /// A route for that destination already exists in the table (`RouteAlreadyExists`).
    #[error("{0}")]
    RouteAlreadyExists(String),
    /// No route for that destination in the table (`InvalidRoute.NotFound`).
    #[error("{0}")]
    InvalidRouteNotFound(String),
    /// The resource is already attached or associated (`Resource.AlreadyAssociated`).
    #[error("{0}")]
    ResourceAlreadyAssociated(String),
    /// The gateway is not attached to that VPC (`Gateway.NotAttached`).
    #[error("{0}")]
    GatewayNotAttached(String),
    /// More rules than a security group may hold in one direction
    /// (`RulesPerSecurityGroupLimitExceeded`).
    #[error("{0}")]
    RulesPerSecurityGroupLimitExceeded(String),
    /// The subnet has fewer free addresses than the instances need
    /// (`InsufficientFreeAddressesInSubnet`).
    #[error("{0}")]
    InsufficientFreeAddressesInSubnet(String),
    /// No more Elastic IPs for the account or in the pool (`AddressLimitExceeded`).
    #[error("{0}")]
    AddressLimitExceeded(String),
    /// A network interface still attached (`InvalidNetworkInterface.InUse`).
    #[error("{0}")]
    NetworkInterfaceInUse(String),
    /// A requested private address is already used in its subnet (`InvalidIPAddress.InUse`).
    #[error("{0}")]
    InvalidIpAddressInUse(String),
    /// A volume attached to an instance where it must not be (`VolumeInUse`).
    #[error("{0}")]
    VolumeInUse(String),
    /// A resource in a state that does not allow the request (`IncorrectState`).
    #[error("{0}")]
    IncorrectState(String),
    /// A parameter given without one it depends on (`InvalidParameterDependency`).
    #[error("{0}")]
    InvalidParameterDependency(String),
    /// A volume and an instance in different zones (`InvalidVolume.ZoneMismatch`).
    #[error("{0}")]
    VolumeZoneMismatch(String),
    /// The account's storage quota for a volume type (`VolumeLimitExceeded`).
    #[error("{0}")]
    VolumeLimitExceeded(String),
    /// A device name already used on the instance, or more volumes than it takes
    /// (`InvalidParameterValue` with EC2's message is used for malformed names).
    #[error("{0}")]
    AttachmentLimitExceeded(String),
    /// A volume modification still in progress (`IncorrectModificationState`).
    #[error("{0}")]
    IncorrectModificationState(String),
    /// A volume never modified (`InvalidVolumeModification.NotFound`).
    #[error("{0}")]
    VolumeModificationNotFound(String),
    /// A launch's block device mapping that cannot be honoured, such as a root volume
    /// smaller than its image (`InvalidBlockDeviceMapping`).
    #[error("{0}")]
    InvalidBlockDeviceMapping(String),
    /// An image name EC2 does not accept (`InvalidAMIName.Malformed`).
    #[error("{0}")]
    InvalidAmiNameMalformed(String),
    /// An image name the account already uses in the region (`InvalidAMIName.Duplicate`).
    #[error("{0}")]
    InvalidAmiNameDuplicate(String),
    /// An image that exists but cannot be launched or copied yet, or any more
    /// (`InvalidAMIID.Unavailable`).
    #[error("{0}")]
    InvalidAmiUnavailable(String),
    /// A snapshot an image is made of (`InvalidSnapshot.InUse`).
    #[error("{0}")]
    SnapshotInUse(String),
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
