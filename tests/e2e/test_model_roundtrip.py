"""Every served EC2 action round-trips through botocore: the request is serialised by
botocore's own EC2 serializer from its model, Strato decodes and answers it, and the
answer is parsed by botocore's parser — and also walked strictly against the model's
output shape, since botocore's parser silently skips elements it does not know: every
element must be a member of its shape (by the model's `locationName`), lists must hold
`item`s, and scalars must be what the shape says (integers, booleans, timestamps,
enum values).

The scenario below calls each action of `crates/ec2-model/served.toml` once with
working parameters, in an order where each finds what it needs; the test fails if an
action is served but not exercised here, so adding an action means adding its call."""

import datetime
import http.server
import os
import shutil
import tempfile
import threading
import time
import tomllib
import xml.etree.ElementTree as ET

import pytest

from conftest import DEFAULT_IMAGE, ROOT, Strato
from helpers import wait_state, wait_until

SERVED = os.path.join(ROOT, "crates", "ec2-model", "served.toml")
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJHaYg+v8oEoB7ECwP/Xn4DTrYZDWaa5K95NusjROaP/ roundtrip"


# Where EC2 itself answers outside its model:
# - a top-level `<return>true</return>` beside the output members (CreateSecurityGroup,
#   AssociateAddress, …: EC2's own examples show it; botocore ignores it) is allowed,
#   though Strato's generated encoders write only the model's members;
# - internet gateway attachments in state `available` (the model's enum has only
#   attaching/attached/detaching/detached, but EC2 reports `available`; the generator
#   adds the value, EXTRA_ENUM_VALUES in xtask).
ENVELOPE_EXTRAS = {"requestId", "return"}
ENUM_QUIRKS = {("AttachmentStatus", "available")}


def local(tag):
    return tag.rsplit("}", 1)[-1]


def check_shape(elem, shape, path, problems):
    """Walks `elem` against botocore `shape`, appending what does not fit."""
    kind = shape.type_name
    if kind == "structure":
        members = {m.serialization.get("name", name): m for name, m in shape.members.items()}
        for child in elem:
            tag = local(child.tag)
            m = members.get(tag)
            if m is None:
                problems.append(f"{path}/{tag}: not a member of {shape.name}")
                continue
            check_shape(child, m, f"{path}/{tag}", problems)
    elif kind == "list":
        item = shape.member.serialization.get("name", "item")
        for child in elem:
            if local(child.tag) != item:
                problems.append(f"{path}/{local(child.tag)}: a list of {shape.name} holds <{item}>")
                continue
            check_shape(child, shape.member, f"{path}/{item}", problems)
    else:
        if len(elem):
            problems.append(f"{path}: scalar {shape.name} has child elements")
            return
        text = elem.text or ""
        try:
            if kind in ("integer", "long"):
                int(text)
            elif kind in ("float", "double"):
                float(text)
            elif kind == "boolean":
                assert text in ("true", "false"), text
            elif kind == "timestamp":
                datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            elif kind == "string" and shape.enum and (shape.name, text) not in ENUM_QUIRKS:
                assert text in shape.enum, f"{text!r} not in {shape.name}"
        except (ValueError, AssertionError) as e:
            problems.append(f"{path}: {kind} {text!r} ({e})")


class Recorder:
    """Keeps the raw HTTP answer of every call with its operation model."""

    def __init__(self, client):
        self.calls = []
        client.meta.events.register("after-call.ec2", self.after_call)

    def after_call(self, http_response, parsed, model, **_):
        self.calls.append((model, http_response.status_code, http_response.content))

    def problems(self):
        out = []
        for model, status, body in self.calls:
            name = model.name
            if status != 200:
                out.append(f"{name}: HTTP {status}: {body[:300]!r}")
                continue
            root = ET.fromstring(body)
            if local(root.tag) != f"{name}Response":
                out.append(f"{name}: root element <{local(root.tag)}>")
            if model.output_shape is None:
                continue
            for child in root:
                if local(child.tag) in ENVELOPE_EXTRAS:
                    continue
                sub = ET.Element(root.tag)
                sub.append(child)
                check_shape(sub, model.output_shape, name, out)
        return out


@pytest.fixture(scope="module")
def server():
    s = Strato(boot_ms=100, stop_ms=100).start()
    yield s
    s.cleanup()


def scenario(ec2, ca):
    """Calls every served action once; returns nothing, raises on an error answer."""
    # Catalog.
    ec2.describe_regions(AllRegions=True)
    ec2.describe_availability_zones(AllAvailabilityZones=True)
    ec2.describe_account_attributes()
    ec2.describe_instance_types(InstanceTypes=["t3.micro", "m5.large"])
    ec2.describe_instance_type_offerings(LocationType="availability-zone")
    ec2.describe_images(Owners=["strato"])
    # Key pairs.
    ec2.create_key_pair(KeyName="rt-key", KeyType="ed25519")
    ec2.import_key_pair(KeyName="rt-imported", PublicKeyMaterial=PUBLIC_KEY.encode())
    ec2.describe_key_pairs(IncludePublicKey=True)
    # A VPC with everything in it.
    vpc = ec2.create_vpc(CidrBlock="10.50.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "rt"}]}])["Vpc"]["VpcId"]
    ec2.describe_vpcs(VpcIds=[vpc])
    ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24",
                               AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    ec2.describe_subnets(SubnetIds=[subnet])
    ec2.modify_subnet_attribute(SubnetId=subnet, MapPublicIpOnLaunch={"Value": True})
    sg = ec2.create_security_group(GroupName="rt-sg", Description="round trip", VpcId=vpc)["GroupId"]
    ec2.describe_security_groups(GroupIds=[sg])
    ssh = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    rule = ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=ssh)["SecurityGroupRules"][0]
    https = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=https)
    ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])
    ec2.modify_security_group_rules(GroupId=sg, SecurityGroupRules=[{
        "SecurityGroupRuleId": rule["SecurityGroupRuleId"],
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "CidrIpv4": "0.0.0.0/0"}}])
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=https)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.describe_internet_gateways(InternetGatewayIds=[igw])
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.replace_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.describe_route_tables(RouteTableIds=[rtb])
    assoc = ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)["AssociationId"]
    main = ec2.describe_route_tables(Filters=[
        {"Name": "vpc-id", "Values": [vpc]},
        {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]["RouteTableId"]
    ec2.replace_route_table_association(AssociationId=assoc, RouteTableId=rtb)
    assoc = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Associations"][0]["RouteTableAssociationId"]
    assert main != rtb
    ec2.disassociate_route_table(AssociationId=assoc)
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0")
    ec2.delete_route_table(RouteTableId=rtb)
    ec2.describe_dhcp_options()
    ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    # An instance in it, through its whole life.
    iid = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            SubnetId=subnet, SecurityGroupIds=[sg], KeyName="rt-key",
                            CpuOptions={"CoreCount": 1, "ThreadsPerCore": 2},
                            CreditSpecification={"CpuCredits": "standard"},
                            Monitoring={"Enabled": True},
                            TagSpecifications=[{"ResourceType": "instance",
                                                "Tags": [{"Key": "Name", "Value": "rt"}]}])["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    ec2.describe_instances(InstanceIds=[iid])
    ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)
    ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    ec2.reset_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")
    ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required")
    ec2.get_console_output(InstanceId=iid)
    ec2.get_console_screenshot(InstanceId=iid, WakeUp=True)
    ec2.get_password_data(InstanceId=iid)
    ec2.describe_instance_credit_specifications(InstanceIds=[iid])
    ec2.modify_instance_credit_specification(InstanceCreditSpecifications=[
        {"InstanceId": iid, "CpuCredits": "unlimited"}])
    ec2.get_default_credit_specification(InstanceFamily="t3")
    ec2.modify_default_credit_specification(InstanceFamily="t3", CpuCredits="unlimited")
    ec2.create_tags(Resources=[iid, vpc], Tags=[{"Key": "team", "Value": "rt"}])
    ec2.describe_tags(Filters=[{"Name": "key", "Values": ["team"]}])
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "team"}])
    # A second interface, attached and detached.
    eni = ec2.create_network_interface(SubnetId=subnet, Description="rt", Groups=[sg])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])
    att = ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    ec2.detach_network_interface(AttachmentId=att)
    wait_until(lambda: ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])
               ["NetworkInterfaces"][0]["Status"] == "available", what="interface detached")
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    # A volume, attached and detached.
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=1, VolumeType="gp3", Encrypted=True, TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "rt"}]}])["VolumeId"]
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"] == "available",
               what="volume available")
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"][0]["State"] == "attached",
               what="volume attached")
    ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
    ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": False}}])
    ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")
    ec2.describe_instances(InstanceIds=[iid])
    ec2.modify_volume(VolumeId=vol, Size=8, Iops=3500)
    wait_until(lambda: ec2.describe_volumes_modifications(VolumeIds=[vol])["VolumesModifications"][0]
               ["ModificationState"] == "completed", what="volume modified")
    ec2.describe_volume_status(VolumeIds=[vol])
    ec2.modify_volume_attribute(VolumeId=vol, AutoEnableIO={"Value": True})
    ec2.describe_volume_attribute(VolumeId=vol, Attribute="autoEnableIO")
    # Snapshots of it: together with the instance's others, alone, copied, shared.
    together = ec2.create_snapshots(InstanceSpecification={"InstanceId": iid}, CopyTagsFromSource="volume")
    snap = ec2.create_snapshot(VolumeId=vol, Description="rt", TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": "rt"}]}])["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed",
               what="snapshot completed")
    ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [vol]}])
    ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="remove",
                                  UserIds=["123456789012"])
    ec2.reset_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    copied = ca.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=snap)["SnapshotId"]
    wait_until(lambda: ca.describe_snapshots(SnapshotIds=[copied])["Snapshots"][0]["State"] == "completed",
               what="copy completed")
    ca.delete_snapshot(SnapshotId=copied)
    restored = ec2.create_volume(AvailabilityZone=zone, SnapshotId=snap)["VolumeId"]
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[restored])["Volumes"][0]["State"] == "available",
               what="restored volume available")
    ec2.delete_volume(VolumeId=restored)
    # Images: of the instance, of the snapshot, copied, shared, deprecated, gone.
    baked = ec2.create_image(InstanceId=iid, Name="rt-baked", NoReboot=True, TagSpecifications=[
        {"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "rt"}]}])["ImageId"]
    wait_until(lambda: ec2.describe_images(ImageIds=[baked])["Images"][0]["State"] == "available",
               what="image available")
    reg = ec2.register_image(Name="rt-registered", RootDeviceName="/dev/xvda", BootMode="uefi",
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])["ImageId"]
    ec2.describe_images(Owners=["self"], Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snap]}])
    ec2.describe_image_attribute(ImageId=reg, Attribute="launchPermission")
    ec2.describe_image_attribute(ImageId=reg, Attribute="blockDeviceMapping")
    ec2.modify_image_attribute(ImageId=reg, LaunchPermission={"Add": [{"UserId": "123456789012"}]})
    ec2.reset_image_attribute(ImageId=reg, Attribute="launchPermission")
    ec2.enable_image_deprecation(ImageId=reg, DeprecateAt="2030-01-01T00:00:00Z")
    ec2.disable_image_deprecation(ImageId=reg)
    ca_copy = ca.copy_image(SourceRegion="us-east-1", SourceImageId=baked, Name="rt-copy")["ImageId"]
    wait_until(lambda: ca.describe_images(ImageIds=[ca_copy])["Images"][0]["State"] == "available",
               what="image copy available")
    ca.deregister_image(ImageId=ca_copy, DeleteAssociatedSnapshots=True)
    ec2.deregister_image(ImageId=reg)
    ec2.deregister_image(ImageId=baked, DeleteAssociatedSnapshots=True)
    # Imports: a small disk with a boot sector, from a file and (slowly) over http.
    disk_dir = tempfile.mkdtemp(prefix="strato-rt-import-")
    disk = os.path.join(disk_dir, "disk.raw")
    with open(disk, "wb") as f:
        f.write(b"\0" * 510 + b"\x55\xaa")
        f.truncate(1 << 20)
    snap_task = ec2.import_snapshot(DiskContainer={"Format": "RAW", "Url": disk})["ImportTaskId"]
    img_task = ec2.import_image(DiskContainers=[{"Format": "RAW", "Url": disk}])["ImportTaskId"]
    wait_until(lambda: ec2.describe_import_snapshot_tasks(ImportTaskIds=[snap_task])["ImportSnapshotTasks"][0][
        "SnapshotTaskDetail"]["Status"] == "completed", what="snapshot import completed")
    wait_until(lambda: ec2.describe_import_image_tasks(ImportTaskIds=[img_task])["ImportImageTasks"][0][
        "Status"] == "completed", what="image import completed")

    class Slow(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            time.sleep(2)
            super().do_GET()

        def log_message(self, *args):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                          lambda *a, **kw: Slow(*a, directory=disk_dir, **kw))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    slow = ec2.import_snapshot(DiskContainer={
        "Format": "RAW", "Url": f"http://127.0.0.1:{srv.server_address[1]}/disk.raw"})["ImportTaskId"]
    ec2.cancel_import_task(ImportTaskId=slow)
    time.sleep(3)
    srv.shutdown()
    shutil.rmtree(disk_dir, ignore_errors=True)
    for s in [snap] + [x["SnapshotId"] for x in together["Snapshots"]]:
        ec2.delete_snapshot(SnapshotId=s)
    ec2.detach_volume(VolumeId=vol, InstanceId=iid)
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"] == "available",
               what="volume detached")
    ec2.delete_volume(VolumeId=vol)
    ec2.enable_ebs_encryption_by_default()
    ec2.get_ebs_encryption_by_default()
    ec2.disable_ebs_encryption_by_default()
    # An Elastic IP.
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.describe_addresses(AllocationIds=[alloc])
    eip_assoc = ec2.associate_address(AllocationId=alloc, InstanceId=iid)["AssociationId"]
    ec2.disassociate_address(AssociationId=eip_assoc)
    ec2.release_address(AllocationId=alloc)
    # Stop, start, reboot, terminate.
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    ec2.reboot_instances(InstanceIds=[iid])
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    # Tear the VPC down.
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_security_group(GroupId=sg)
    ec2.delete_subnet(SubnetId=subnet)
    ec2.delete_vpc(VpcId=vpc)
    ec2.delete_key_pair(KeyName="rt-key")
    ec2.delete_key_pair(KeyName="rt-imported")
    # A default VPC made again, in a region of its own (ca-central-1).
    [default] = ca.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    dvpc = default["VpcId"]
    for g in ca.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [dvpc]}])["InternetGateways"]:
        ca.detach_internet_gateway(InternetGatewayId=g["InternetGatewayId"], VpcId=dvpc)
        ca.delete_internet_gateway(InternetGatewayId=g["InternetGatewayId"])
    for s in ca.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [dvpc]}])["Subnets"]:
        ca.delete_subnet(SubnetId=s["SubnetId"])
    ca.delete_vpc(VpcId=dvpc)
    ca.create_default_vpc()


def test_every_served_action_round_trips_through_botocore(server):
    served = set(tomllib.load(open(SERVED, "rb")))
    ec2 = server.client()
    ca = server.client(region="ca-central-1")
    rec, rec_ca = Recorder(ec2), Recorder(ca)
    scenario(ec2, ca)
    called = {m.name for m, _, _ in rec.calls + rec_ca.calls}
    assert served - called == set(), f"served but not exercised here: {sorted(served - called)}"
    assert called - served == set(), f"called but not served: {sorted(called - served)}"
    problems = rec.problems() + rec_ca.problems()
    assert problems == [], "answers that do not fit the model:\n" + "\n".join(problems)
