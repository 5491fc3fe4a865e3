//! EC2 actions. Each served operation is one method of the generated
//! [`Ec2Service`] trait, which receives the operation's typed request (decoded from the
//! query parameters after the schema walk) and returns its typed result (encoded to
//! EC2's XML by the generated encoder). The methods live in one module per family;
//! each turns the request into the control plane's input, calls it, and maps the
//! domain records it answers into the model's output types.

pub mod addresses;
pub mod credits;
pub mod images;
pub mod imports;
pub mod instances;
pub mod interfaces;
pub mod keypairs;
pub mod meta;
pub mod routing;
pub mod security_groups;
pub mod snapshots;
pub mod sts;
pub mod tags;
pub mod volumes;
pub mod vpcs;

use strato_common::{Error, ResourceId, Result};
use strato_control::page::PageRequest;
use strato_control::tags::TagSpec;
use strato_control::{Caller, ControlPlane};
use strato_ec2_model::Operation;
use strato_ec2_wire::codec::Node;
use strato_ec2_wire::types::*;
use strato_ec2_wire::{types, Ec2Service, Params};

/// What every EC2 handler receives beside its typed request.
pub struct Ctx<'a> {
    /// Who is calling, and in which region (the credential scope's).
    pub caller: &'a Caller,
    pub request_id: &'a str,
    /// `DryRun=true`: check everything, change nothing, answer `DryRunOperation`.
    pub dry_run: bool,
}

/// The EC2 handlers over one control plane: `served.toml` names the operations, the
/// generated [`Ec2Service`] trait makes each of them need exactly one method here.
struct Handlers<'a>(&'a ControlPlane);

impl<'a> Ec2Service for Handlers<'a> {
    type Context = Ctx<'a>;

    fn run_instances(&self, cx: &Ctx<'a>, req: RunInstancesRequest) -> Result<Reservation> {
        instances::run(self.0, cx, req)
    }
    fn describe_instances(
        &self,
        cx: &Ctx<'a>,
        req: DescribeInstancesRequest,
    ) -> Result<DescribeInstancesResult> {
        instances::describe(self.0, cx, req)
    }
    fn describe_instance_status(
        &self,
        cx: &Ctx<'a>,
        req: DescribeInstanceStatusRequest,
    ) -> Result<DescribeInstanceStatusResult> {
        instances::describe_status(self.0, cx, req)
    }
    fn start_instances(
        &self,
        cx: &Ctx<'a>,
        req: StartInstancesRequest,
    ) -> Result<StartInstancesResult> {
        instances::start(self.0, cx, req)
    }
    fn stop_instances(
        &self,
        cx: &Ctx<'a>,
        req: StopInstancesRequest,
    ) -> Result<StopInstancesResult> {
        instances::stop(self.0, cx, req)
    }
    fn reboot_instances(&self, cx: &Ctx<'a>, req: RebootInstancesRequest) -> Result<()> {
        instances::reboot(self.0, cx, req)
    }
    fn terminate_instances(
        &self,
        cx: &Ctx<'a>,
        req: TerminateInstancesRequest,
    ) -> Result<TerminateInstancesResult> {
        instances::terminate(self.0, cx, req)
    }
    fn describe_instance_attribute(
        &self,
        cx: &Ctx<'a>,
        req: DescribeInstanceAttributeRequest,
    ) -> Result<InstanceAttribute> {
        instances::describe_attribute(self.0, cx, req)
    }
    fn modify_instance_attribute(
        &self,
        cx: &Ctx<'a>,
        req: ModifyInstanceAttributeRequest,
    ) -> Result<()> {
        instances::modify_attribute(self.0, cx, req)
    }
    fn get_console_output(
        &self,
        cx: &Ctx<'a>,
        req: GetConsoleOutputRequest,
    ) -> Result<GetConsoleOutputResult> {
        instances::console_output(self.0, cx, req)
    }
    fn get_console_screenshot(
        &self,
        cx: &Ctx<'a>,
        req: GetConsoleScreenshotRequest,
    ) -> Result<GetConsoleScreenshotResult> {
        instances::console_screenshot(self.0, cx, req)
    }
    fn modify_instance_metadata_options(
        &self,
        cx: &Ctx<'a>,
        req: ModifyInstanceMetadataOptionsRequest,
    ) -> Result<ModifyInstanceMetadataOptionsResult> {
        instances::modify_metadata_options(self.0, cx, req)
    }
    fn describe_instance_types(
        &self,
        cx: &Ctx<'a>,
        req: DescribeInstanceTypesRequest,
    ) -> Result<DescribeInstanceTypesResult> {
        meta::describe_instance_types(self.0, cx, req)
    }
    fn describe_instance_type_offerings(
        &self,
        cx: &Ctx<'a>,
        req: DescribeInstanceTypeOfferingsRequest,
    ) -> Result<DescribeInstanceTypeOfferingsResult> {
        meta::describe_instance_type_offerings(self.0, cx, req)
    }
    fn describe_images(
        &self,
        cx: &Ctx<'a>,
        req: DescribeImagesRequest,
    ) -> Result<DescribeImagesResult> {
        images::describe(self.0, cx, req)
    }
    fn describe_regions(
        &self,
        cx: &Ctx<'a>,
        req: DescribeRegionsRequest,
    ) -> Result<DescribeRegionsResult> {
        meta::describe_regions(self.0, cx, req)
    }
    fn describe_availability_zones(
        &self,
        cx: &Ctx<'a>,
        req: DescribeAvailabilityZonesRequest,
    ) -> Result<DescribeAvailabilityZonesResult> {
        meta::describe_availability_zones(self.0, cx, req)
    }
    fn describe_account_attributes(
        &self,
        cx: &Ctx<'a>,
        req: DescribeAccountAttributesRequest,
    ) -> Result<DescribeAccountAttributesResult> {
        meta::describe_account_attributes(self.0, cx, req)
    }
    fn create_key_pair(&self, cx: &Ctx<'a>, req: CreateKeyPairRequest) -> Result<KeyPair> {
        keypairs::create(self.0, cx, req)
    }
    fn import_key_pair(
        &self,
        cx: &Ctx<'a>,
        req: ImportKeyPairRequest,
    ) -> Result<ImportKeyPairResult> {
        keypairs::import(self.0, cx, req)
    }
    fn describe_key_pairs(
        &self,
        cx: &Ctx<'a>,
        req: DescribeKeyPairsRequest,
    ) -> Result<DescribeKeyPairsResult> {
        keypairs::describe(self.0, cx, req)
    }
    fn delete_key_pair(
        &self,
        cx: &Ctx<'a>,
        req: DeleteKeyPairRequest,
    ) -> Result<DeleteKeyPairResult> {
        keypairs::delete(self.0, cx, req)
    }
    fn create_tags(&self, cx: &Ctx<'a>, req: CreateTagsRequest) -> Result<()> {
        tags::create(self.0, cx, req)
    }
    fn delete_tags(&self, cx: &Ctx<'a>, req: DeleteTagsRequest) -> Result<()> {
        tags::delete(self.0, cx, req)
    }
    fn describe_tags(&self, cx: &Ctx<'a>, req: DescribeTagsRequest) -> Result<DescribeTagsResult> {
        tags::describe(self.0, cx, req)
    }
    fn create_vpc(&self, cx: &Ctx<'a>, req: CreateVpcRequest) -> Result<CreateVpcResult> {
        vpcs::create_vpc(self.0, cx, req)
    }
    fn delete_vpc(&self, cx: &Ctx<'a>, req: DeleteVpcRequest) -> Result<()> {
        vpcs::delete_vpc(self.0, cx, req)
    }
    fn describe_vpcs(&self, cx: &Ctx<'a>, req: DescribeVpcsRequest) -> Result<DescribeVpcsResult> {
        vpcs::describe_vpcs(self.0, cx, req)
    }
    fn modify_vpc_attribute(&self, cx: &Ctx<'a>, req: ModifyVpcAttributeRequest) -> Result<()> {
        vpcs::modify_vpc_attribute(self.0, cx, req)
    }
    fn describe_vpc_attribute(
        &self,
        cx: &Ctx<'a>,
        req: DescribeVpcAttributeRequest,
    ) -> Result<DescribeVpcAttributeResult> {
        vpcs::describe_vpc_attribute(self.0, cx, req)
    }
    fn create_default_vpc(
        &self,
        cx: &Ctx<'a>,
        req: CreateDefaultVpcRequest,
    ) -> Result<CreateDefaultVpcResult> {
        vpcs::create_default_vpc(self.0, cx, req)
    }
    fn describe_dhcp_options(
        &self,
        cx: &Ctx<'a>,
        req: DescribeDhcpOptionsRequest,
    ) -> Result<DescribeDhcpOptionsResult> {
        vpcs::describe_dhcp_options(self.0, cx, req)
    }
    fn create_subnet(&self, cx: &Ctx<'a>, req: CreateSubnetRequest) -> Result<CreateSubnetResult> {
        vpcs::create_subnet(self.0, cx, req)
    }
    fn delete_subnet(&self, cx: &Ctx<'a>, req: DeleteSubnetRequest) -> Result<()> {
        vpcs::delete_subnet(self.0, cx, req)
    }
    fn describe_subnets(
        &self,
        cx: &Ctx<'a>,
        req: DescribeSubnetsRequest,
    ) -> Result<DescribeSubnetsResult> {
        vpcs::describe_subnets(self.0, cx, req)
    }
    fn modify_subnet_attribute(
        &self,
        cx: &Ctx<'a>,
        req: ModifySubnetAttributeRequest,
    ) -> Result<()> {
        vpcs::modify_subnet_attribute(self.0, cx, req)
    }
    fn create_security_group(
        &self,
        cx: &Ctx<'a>,
        req: CreateSecurityGroupRequest,
    ) -> Result<CreateSecurityGroupResult> {
        security_groups::create(self.0, cx, req)
    }
    fn delete_security_group(
        &self,
        cx: &Ctx<'a>,
        req: DeleteSecurityGroupRequest,
    ) -> Result<DeleteSecurityGroupResult> {
        security_groups::delete(self.0, cx, req)
    }
    fn describe_security_groups(
        &self,
        cx: &Ctx<'a>,
        req: DescribeSecurityGroupsRequest,
    ) -> Result<DescribeSecurityGroupsResult> {
        security_groups::describe(self.0, cx, req)
    }
    fn describe_security_group_rules(
        &self,
        cx: &Ctx<'a>,
        req: DescribeSecurityGroupRulesRequest,
    ) -> Result<DescribeSecurityGroupRulesResult> {
        security_groups::describe_rules(self.0, cx, req)
    }
    fn authorize_security_group_ingress(
        &self,
        cx: &Ctx<'a>,
        req: AuthorizeSecurityGroupIngressRequest,
    ) -> Result<AuthorizeSecurityGroupIngressResult> {
        security_groups::authorize_ingress(self.0, cx, req)
    }
    fn authorize_security_group_egress(
        &self,
        cx: &Ctx<'a>,
        req: AuthorizeSecurityGroupEgressRequest,
    ) -> Result<AuthorizeSecurityGroupEgressResult> {
        security_groups::authorize_egress(self.0, cx, req)
    }
    fn revoke_security_group_ingress(
        &self,
        cx: &Ctx<'a>,
        req: RevokeSecurityGroupIngressRequest,
    ) -> Result<RevokeSecurityGroupIngressResult> {
        security_groups::revoke_ingress(self.0, cx, req)
    }
    fn revoke_security_group_egress(
        &self,
        cx: &Ctx<'a>,
        req: RevokeSecurityGroupEgressRequest,
    ) -> Result<RevokeSecurityGroupEgressResult> {
        security_groups::revoke_egress(self.0, cx, req)
    }
    fn modify_security_group_rules(
        &self,
        cx: &Ctx<'a>,
        req: ModifySecurityGroupRulesRequest,
    ) -> Result<ModifySecurityGroupRulesResult> {
        security_groups::modify_rules(self.0, cx, req)
    }
    fn create_internet_gateway(
        &self,
        cx: &Ctx<'a>,
        req: CreateInternetGatewayRequest,
    ) -> Result<CreateInternetGatewayResult> {
        routing::create_gateway(self.0, cx, req)
    }
    fn attach_internet_gateway(
        &self,
        cx: &Ctx<'a>,
        req: AttachInternetGatewayRequest,
    ) -> Result<()> {
        routing::attach_gateway(self.0, cx, req)
    }
    fn detach_internet_gateway(
        &self,
        cx: &Ctx<'a>,
        req: DetachInternetGatewayRequest,
    ) -> Result<()> {
        routing::detach_gateway(self.0, cx, req)
    }
    fn delete_internet_gateway(
        &self,
        cx: &Ctx<'a>,
        req: DeleteInternetGatewayRequest,
    ) -> Result<()> {
        routing::delete_gateway(self.0, cx, req)
    }
    fn describe_internet_gateways(
        &self,
        cx: &Ctx<'a>,
        req: DescribeInternetGatewaysRequest,
    ) -> Result<DescribeInternetGatewaysResult> {
        routing::describe_gateways(self.0, cx, req)
    }
    fn create_route_table(
        &self,
        cx: &Ctx<'a>,
        req: CreateRouteTableRequest,
    ) -> Result<CreateRouteTableResult> {
        routing::create_route_table(self.0, cx, req)
    }
    fn delete_route_table(&self, cx: &Ctx<'a>, req: DeleteRouteTableRequest) -> Result<()> {
        routing::delete_route_table(self.0, cx, req)
    }
    fn describe_route_tables(
        &self,
        cx: &Ctx<'a>,
        req: DescribeRouteTablesRequest,
    ) -> Result<DescribeRouteTablesResult> {
        routing::describe_route_tables(self.0, cx, req)
    }
    fn create_route(&self, cx: &Ctx<'a>, req: CreateRouteRequest) -> Result<CreateRouteResult> {
        routing::create_route(self.0, cx, req)
    }
    fn delete_route(&self, cx: &Ctx<'a>, req: DeleteRouteRequest) -> Result<()> {
        routing::delete_route(self.0, cx, req)
    }
    fn associate_route_table(
        &self,
        cx: &Ctx<'a>,
        req: AssociateRouteTableRequest,
    ) -> Result<AssociateRouteTableResult> {
        routing::associate_route_table(self.0, cx, req)
    }
    fn disassociate_route_table(
        &self,
        cx: &Ctx<'a>,
        req: DisassociateRouteTableRequest,
    ) -> Result<()> {
        routing::disassociate_route_table(self.0, cx, req)
    }
    fn allocate_address(
        &self,
        cx: &Ctx<'a>,
        req: AllocateAddressRequest,
    ) -> Result<AllocateAddressResult> {
        addresses::allocate(self.0, cx, req)
    }
    fn describe_addresses(
        &self,
        cx: &Ctx<'a>,
        req: DescribeAddressesRequest,
    ) -> Result<DescribeAddressesResult> {
        addresses::describe(self.0, cx, req)
    }
    fn associate_address(
        &self,
        cx: &Ctx<'a>,
        req: AssociateAddressRequest,
    ) -> Result<AssociateAddressResult> {
        addresses::associate(self.0, cx, req)
    }
    fn disassociate_address(&self, cx: &Ctx<'a>, req: DisassociateAddressRequest) -> Result<()> {
        addresses::disassociate(self.0, cx, req)
    }
    fn release_address(&self, cx: &Ctx<'a>, req: ReleaseAddressRequest) -> Result<()> {
        addresses::release(self.0, cx, req)
    }
    fn create_volume(&self, cx: &Ctx<'a>, req: CreateVolumeRequest) -> Result<Volume> {
        volumes::create(self.0, cx, req)
    }
    fn describe_volumes(
        &self,
        cx: &Ctx<'a>,
        req: DescribeVolumesRequest,
    ) -> Result<DescribeVolumesResult> {
        volumes::describe(self.0, cx, req)
    }
    fn delete_volume(&self, cx: &Ctx<'a>, req: DeleteVolumeRequest) -> Result<()> {
        volumes::delete(self.0, cx, req)
    }
    fn enable_ebs_encryption_by_default(
        &self,
        cx: &Ctx<'a>,
        _req: EnableEbsEncryptionByDefaultRequest,
    ) -> Result<EnableEbsEncryptionByDefaultResult> {
        Ok(EnableEbsEncryptionByDefaultResult {
            ebs_encryption_by_default: Some(volumes::set_encryption_by_default(self.0, cx, true)?),
        })
    }
    fn disable_ebs_encryption_by_default(
        &self,
        cx: &Ctx<'a>,
        _req: DisableEbsEncryptionByDefaultRequest,
    ) -> Result<DisableEbsEncryptionByDefaultResult> {
        Ok(DisableEbsEncryptionByDefaultResult {
            ebs_encryption_by_default: Some(volumes::set_encryption_by_default(self.0, cx, false)?),
        })
    }
    fn get_ebs_encryption_by_default(
        &self,
        cx: &Ctx<'a>,
        _req: GetEbsEncryptionByDefaultRequest,
    ) -> Result<GetEbsEncryptionByDefaultResult> {
        volumes::get_encryption_by_default(self.0, cx)
    }
    fn attach_volume(&self, cx: &Ctx<'a>, req: AttachVolumeRequest) -> Result<VolumeAttachment> {
        volumes::attach(self.0, cx, req)
    }
    fn detach_volume(&self, cx: &Ctx<'a>, req: DetachVolumeRequest) -> Result<VolumeAttachment> {
        volumes::detach(self.0, cx, req)
    }
    fn modify_volume(&self, cx: &Ctx<'a>, req: ModifyVolumeRequest) -> Result<ModifyVolumeResult> {
        volumes::modify(self.0, cx, req)
    }
    fn describe_volumes_modifications(
        &self,
        cx: &Ctx<'a>,
        req: DescribeVolumesModificationsRequest,
    ) -> Result<DescribeVolumesModificationsResult> {
        volumes::describe_modifications(self.0, cx, req)
    }
    fn describe_volume_status(
        &self,
        cx: &Ctx<'a>,
        req: DescribeVolumeStatusRequest,
    ) -> Result<DescribeVolumeStatusResult> {
        volumes::describe_status(self.0, cx, req)
    }
    fn describe_volume_attribute(
        &self,
        cx: &Ctx<'a>,
        req: DescribeVolumeAttributeRequest,
    ) -> Result<DescribeVolumeAttributeResult> {
        volumes::describe_attribute(self.0, cx, req)
    }
    fn modify_volume_attribute(
        &self,
        cx: &Ctx<'a>,
        req: ModifyVolumeAttributeRequest,
    ) -> Result<()> {
        volumes::modify_attribute(self.0, cx, req)
    }
    fn import_snapshot(
        &self,
        cx: &Ctx<'a>,
        req: ImportSnapshotRequest,
    ) -> Result<ImportSnapshotResult> {
        imports::import_snapshot(self.0, cx, req)
    }
    fn import_image(&self, cx: &Ctx<'a>, req: ImportImageRequest) -> Result<ImportImageResult> {
        imports::import_image(self.0, cx, req)
    }
    fn describe_import_snapshot_tasks(
        &self,
        cx: &Ctx<'a>,
        req: DescribeImportSnapshotTasksRequest,
    ) -> Result<DescribeImportSnapshotTasksResult> {
        imports::describe_snapshot_tasks(self.0, cx, req)
    }
    fn describe_import_image_tasks(
        &self,
        cx: &Ctx<'a>,
        req: DescribeImportImageTasksRequest,
    ) -> Result<DescribeImportImageTasksResult> {
        imports::describe_image_tasks(self.0, cx, req)
    }
    fn cancel_import_task(
        &self,
        cx: &Ctx<'a>,
        req: CancelImportTaskRequest,
    ) -> Result<CancelImportTaskResult> {
        imports::cancel(self.0, cx, req)
    }
    fn create_image(&self, cx: &Ctx<'a>, req: CreateImageRequest) -> Result<CreateImageResult> {
        images::create(self.0, cx, req)
    }
    fn register_image(
        &self,
        cx: &Ctx<'a>,
        req: RegisterImageRequest,
    ) -> Result<RegisterImageResult> {
        images::register(self.0, cx, req)
    }
    fn deregister_image(
        &self,
        cx: &Ctx<'a>,
        req: DeregisterImageRequest,
    ) -> Result<DeregisterImageResult> {
        images::deregister(self.0, cx, req)
    }
    fn copy_image(&self, cx: &Ctx<'a>, req: CopyImageRequest) -> Result<CopyImageResult> {
        images::copy(self.0, cx, req)
    }
    fn describe_image_attribute(
        &self,
        cx: &Ctx<'a>,
        req: DescribeImageAttributeRequest,
    ) -> Result<ImageAttribute> {
        images::describe_attribute(self.0, cx, req)
    }
    fn modify_image_attribute(&self, cx: &Ctx<'a>, req: ModifyImageAttributeRequest) -> Result<()> {
        images::modify_attribute(self.0, cx, req)
    }
    fn reset_image_attribute(&self, cx: &Ctx<'a>, req: ResetImageAttributeRequest) -> Result<()> {
        images::reset_attribute(self.0, cx, req)
    }
    fn enable_image_deprecation(
        &self,
        cx: &Ctx<'a>,
        req: EnableImageDeprecationRequest,
    ) -> Result<EnableImageDeprecationResult> {
        images::enable_deprecation(self.0, cx, req)
    }
    fn disable_image_deprecation(
        &self,
        cx: &Ctx<'a>,
        req: DisableImageDeprecationRequest,
    ) -> Result<DisableImageDeprecationResult> {
        images::disable_deprecation(self.0, cx, req)
    }
    fn create_snapshot(&self, cx: &Ctx<'a>, req: CreateSnapshotRequest) -> Result<Snapshot> {
        snapshots::create(self.0, cx, req)
    }
    fn create_snapshots(
        &self,
        cx: &Ctx<'a>,
        req: CreateSnapshotsRequest,
    ) -> Result<CreateSnapshotsResult> {
        snapshots::create_many(self.0, cx, req)
    }
    fn copy_snapshot(&self, cx: &Ctx<'a>, req: CopySnapshotRequest) -> Result<CopySnapshotResult> {
        snapshots::copy(self.0, cx, req)
    }
    fn delete_snapshot(&self, cx: &Ctx<'a>, req: DeleteSnapshotRequest) -> Result<()> {
        snapshots::delete(self.0, cx, req)
    }
    fn describe_snapshots(
        &self,
        cx: &Ctx<'a>,
        req: DescribeSnapshotsRequest,
    ) -> Result<DescribeSnapshotsResult> {
        snapshots::describe(self.0, cx, req)
    }
    fn describe_snapshot_attribute(
        &self,
        cx: &Ctx<'a>,
        req: DescribeSnapshotAttributeRequest,
    ) -> Result<DescribeSnapshotAttributeResult> {
        snapshots::describe_attribute(self.0, cx, req)
    }
    fn modify_snapshot_attribute(
        &self,
        cx: &Ctx<'a>,
        req: ModifySnapshotAttributeRequest,
    ) -> Result<()> {
        snapshots::modify_attribute(self.0, cx, req)
    }
    fn reset_snapshot_attribute(
        &self,
        cx: &Ctx<'a>,
        req: ResetSnapshotAttributeRequest,
    ) -> Result<()> {
        snapshots::reset_attribute(self.0, cx, req)
    }
    fn create_network_interface(
        &self,
        cx: &Ctx<'a>,
        req: CreateNetworkInterfaceRequest,
    ) -> Result<CreateNetworkInterfaceResult> {
        interfaces::create(self.0, cx, req)
    }
    fn describe_network_interfaces(
        &self,
        cx: &Ctx<'a>,
        req: DescribeNetworkInterfacesRequest,
    ) -> Result<DescribeNetworkInterfacesResult> {
        interfaces::describe(self.0, cx, req)
    }
    fn delete_network_interface(
        &self,
        cx: &Ctx<'a>,
        req: DeleteNetworkInterfaceRequest,
    ) -> Result<()> {
        interfaces::delete(self.0, cx, req)
    }
    fn attach_network_interface(
        &self,
        cx: &Ctx<'a>,
        req: AttachNetworkInterfaceRequest,
    ) -> Result<AttachNetworkInterfaceResult> {
        interfaces::attach(self.0, cx, req)
    }
    fn detach_network_interface(
        &self,
        cx: &Ctx<'a>,
        req: DetachNetworkInterfaceRequest,
    ) -> Result<()> {
        interfaces::detach(self.0, cx, req)
    }
    fn describe_instance_credit_specifications(
        &self,
        cx: &Ctx<'a>,
        req: DescribeInstanceCreditSpecificationsRequest,
    ) -> Result<DescribeInstanceCreditSpecificationsResult> {
        credits::describe(self.0, cx, req)
    }
    fn modify_instance_credit_specification(
        &self,
        cx: &Ctx<'a>,
        req: ModifyInstanceCreditSpecificationRequest,
    ) -> Result<ModifyInstanceCreditSpecificationResult> {
        credits::modify(self.0, cx, req)
    }
    fn get_default_credit_specification(
        &self,
        cx: &Ctx<'a>,
        req: GetDefaultCreditSpecificationRequest,
    ) -> Result<GetDefaultCreditSpecificationResult> {
        credits::get_default(self.0, cx, req)
    }
    fn modify_default_credit_specification(
        &self,
        cx: &Ctx<'a>,
        req: ModifyDefaultCreditSpecificationRequest,
    ) -> Result<ModifyDefaultCreditSpecificationResult> {
        credits::modify_default(self.0, cx, req)
    }
    fn describe_network_acls(
        &self,
        cx: &Ctx<'a>,
        req: DescribeNetworkAclsRequest,
    ) -> Result<DescribeNetworkAclsResult> {
        routing::describe_network_acls(self.0, cx, req)
    }
    fn replace_route(&self, cx: &Ctx<'a>, req: ReplaceRouteRequest) -> Result<()> {
        routing::replace_route(self.0, cx, req)
    }
    fn replace_route_table_association(
        &self,
        cx: &Ctx<'a>,
        req: ReplaceRouteTableAssociationRequest,
    ) -> Result<ReplaceRouteTableAssociationResult> {
        routing::replace_route_table_association(self.0, cx, req)
    }
    fn get_password_data(
        &self,
        cx: &Ctx<'a>,
        req: GetPasswordDataRequest,
    ) -> Result<GetPasswordDataResult> {
        credits::password_data(self.0, cx, req)
    }
    fn reset_instance_attribute(
        &self,
        cx: &Ctx<'a>,
        req: ResetInstanceAttributeRequest,
    ) -> Result<()> {
        credits::reset_attribute(self.0, cx, req)
    }
}

/// Whether `action` is a name metrics may use as a label (bounded: the model's names).
pub fn is_known(action: &str) -> bool {
    sts::ACTIONS.contains(&action) || Operation::from_name(action).is_some()
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
) -> Result<strato_ec2_wire::xml::Rope> {
    let op = operation(action)?;
    let served = op.served().ok_or_else(|| {
        Error::Unsupported(format!(
            "The action {action} is not supported by this endpoint."
        ))
    })?;
    check_version(p)?;
    strato_ec2_wire::validate::validate(action, served, p)?;
    let cx = Ctx {
        caller,
        request_id: rid,
        dry_run: p.dry_run()?,
    };
    let tree = Node::build(p.iter());
    strato_ec2_wire::dispatch(&Handlers(cp), op, &cx, &tree, rid).unwrap_or_else(|| {
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

/// The control plane's tag specifications of a request's `TagSpecification.N`.
pub fn tag_specs(specs: &[types::TagSpecification]) -> Result<Vec<TagSpec>> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let resource_type = s.resource_type.ok_or_else(|| {
                Error::MissingParameter(format!("TagSpecification.{}.ResourceType", i + 1))
            })?;
            Ok(TagSpec {
                resource_type: resource_type.as_str().to_string(),
                tags: tag_list(&s.tags, &format!("TagSpecification.{}.Tag", i + 1))?,
            })
        })
        .collect()
}

/// Key/value pairs of a request's `Tag.N` list (named `prefix` in errors); a missing
/// value is the empty string, as EC2 takes it.
pub fn tag_list(tags: &[types::Tag], prefix: &str) -> Result<Vec<(String, String)>> {
    tags.iter()
        .enumerate()
        .map(|(i, t)| {
            let key = t
                .key
                .clone()
                .ok_or_else(|| Error::MissingParameter(format!("{prefix}.{}.Key", i + 1)))?;
            Ok((key, t.value.clone().unwrap_or_default()))
        })
        .collect()
}

/// A resource's tags as EC2 lists them (`tagSet`, omitted when there are none).
pub fn tag_set(tags: &[(String, String)]) -> Option<Vec<types::Tag>> {
    if tags.is_empty() {
        return None;
    }
    Some(
        tags.iter()
            .map(|(k, v)| types::Tag {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
    )
}

/// One id of a request as its typed id, or the kind's `*.Malformed`. The front door
/// parses every id it is given, so the control plane only ever sees typed ones; call it
/// where the handler's other checks put the id's turn, since EC2 answers in that order.
pub fn id<T: ResourceId>(s: &str) -> Result<T> {
    T::parse(s)
}

/// A request's list of ids of one kind, all or nothing: the first malformed one answers
/// the kind's `*.Malformed`, as EC2 does.
pub fn ids<T: ResourceId>(list: &[String]) -> Result<Vec<T>> {
    list.iter().map(|s| id(s)).collect()
}

/// An optional string parameter, with the empty string taken as absent (as EC2 does).
pub fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// The common `MaxResults` / `NextToken` pair, with the operation's bounds.
pub fn page(
    max_results: Option<i32>,
    next_token: Option<&str>,
    min: i64,
    max: i64,
) -> Result<PageRequest> {
    PageRequest::new(max_results.map(i64::from), next_token, min, max)
}
