"""Network interfaces as resources: Create/Describe/Delete/Attach/DetachNetworkInterface,
their addresses, MACs, error codes, DryRun, filters, dependencies and tenancy."""

import ipaddress
import re

import pytest

from helpers import aws_error, client_error, expect_code, launch, wait_state

MISSING_ENI = "eni-0123456789abcdef0"


@pytest.fixture(scope="module")
def net(ec2):
    """A VPC with subnets in zones a and b, a group, and a running instance in zone a."""
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    sa = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    sb = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.2.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(VpcId=vpc, GroupName="eni-sg", Description="eni")["GroupId"]
    (iid,) = launch(ec2, SubnetId=sa, wait="running")
    return {"vpc": vpc, "sa": sa, "sb": sb, "sg": sg, "iid": iid}


def enis(ec2, **kw):
    return ec2.describe_network_interfaces(**kw)["NetworkInterfaces"]


def free_count(ec2, subnet):
    return ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["AvailableIpAddressCount"]


def test_create_describe_delete(ec2, net):
    before = free_count(ec2, net["sa"])
    n = ec2.create_network_interface(SubnetId=net["sa"], Groups=[net["sg"]], Description="web", TagSpecifications=[
        {"ResourceType": "network-interface", "Tags": [{"Key": "Name", "Value": "eni1"}]}])["NetworkInterface"]
    eni = n["NetworkInterfaceId"]
    assert re.fullmatch(r"eni-[0-9a-f]{17}", eni)
    assert re.fullmatch(r"02(:[0-9a-f]{2}){5}", n["MacAddress"])
    assert n["Status"] == "available" and n["Description"] == "web"
    assert n["VpcId"] == net["vpc"] and n["AvailabilityZone"] == "us-east-1a"
    assert [g["GroupId"] for g in n["Groups"]] == [net["sg"]]
    assert {t["Key"]: t["Value"] for t in n["TagSet"]} == {"Name": "eni1"}
    ip = ipaddress.ip_address(n["PrivateIpAddress"])
    assert ip in ipaddress.ip_network("10.40.1.0/24") and (int(ip) & 0xff) >= 4
    assert free_count(ec2, net["sa"]) == before - 1
    (d,) = enis(ec2, NetworkInterfaceIds=[eni])
    assert d["MacAddress"] == n["MacAddress"] and d["PrivateIpAddress"] == n["PrivateIpAddress"]
    for name, value in [("subnet-id", net["sa"]), ("vpc-id", net["vpc"]), ("status", "available"),
                        ("mac-address", n["MacAddress"]), ("private-ip-address", n["PrivateIpAddress"]),
                        ("group-id", net["sg"]), ("description", "web"), ("tag:Name", "eni1")]:
        got = enis(ec2, Filters=[{"Name": name, "Values": [value]}])
        assert eni in [x["NetworkInterfaceId"] for x in got], name
    assert enis(ec2, Filters=[{"Name": "status", "Values": ["in-use"]}]) == []
    # A default group when none is named; a chosen address; MACs are unique.
    m = ec2.create_network_interface(SubnetId=net["sa"], PrivateIpAddress="10.40.1.200")["NetworkInterface"]
    assert m["PrivateIpAddress"] == "10.40.1.200"
    assert [g["GroupName"] for g in m["Groups"]] == ["default"]
    assert m["MacAddress"] != n["MacAddress"]
    expect_code("InvalidIPAddress.InUse", ec2.create_network_interface, SubnetId=net["sa"],
                PrivateIpAddress="10.40.1.200")
    expect_code("InvalidParameterValue", ec2.create_network_interface, SubnetId=net["sa"],
                PrivateIpAddress="10.40.2.10")
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_network_interface(NetworkInterfaceId=m["NetworkInterfaceId"])
    expect_code("InvalidNetworkInterfaceID.NotFound", ec2.describe_network_interfaces, NetworkInterfaceIds=[eni])
    assert free_count(ec2, net["sa"]) == before


def test_errors_and_dry_run(ec2, net):
    expect_code("InvalidNetworkInterfaceID.Malformed", ec2.delete_network_interface, NetworkInterfaceId="eni-zz")
    expect_code("InvalidNetworkInterfaceID.NotFound", ec2.delete_network_interface, NetworkInterfaceId=MISSING_ENI)
    expect_code("InvalidSubnetID.NotFound", ec2.create_network_interface, SubnetId="subnet-0123456789abcdef0")
    expect_code("InvalidAttachmentID.NotFound", ec2.detach_network_interface,
                AttachmentId="eni-attach-0123456789abcdef0")
    before = len(enis(ec2))
    free = free_count(ec2, net["sa"])
    code, status, _ = client_error(ec2.create_network_interface, SubnetId=net["sa"], DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert len(enis(ec2)) == before and free_count(ec2, net["sa"]) == free
    eni = ec2.create_network_interface(SubnetId=net["sa"])["NetworkInterface"]["NetworkInterfaceId"]
    code, status, _ = client_error(ec2.attach_network_interface, NetworkInterfaceId=eni, InstanceId=net["iid"],
                                   DeviceIndex=1, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert enis(ec2, NetworkInterfaceIds=[eni])[0]["Status"] == "available"
    code, status, _ = client_error(ec2.delete_network_interface, NetworkInterfaceId=eni, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    ec2.delete_network_interface(NetworkInterfaceId=eni)


def test_attach_detach_rules(strato, ec2, net):
    eni = ec2.create_network_interface(SubnetId=net["sa"], Groups=[net["sg"]])["NetworkInterface"]["NetworkInterfaceId"]
    other_zone = ec2.create_network_interface(SubnetId=net["sb"])["NetworkInterface"]["NetworkInterfaceId"]
    expect_code("InvalidParameterCombination", ec2.attach_network_interface, NetworkInterfaceId=other_zone,
                InstanceId=net["iid"], DeviceIndex=1)
    expect_code("InvalidParameterValue", ec2.attach_network_interface, NetworkInterfaceId=eni,
                InstanceId=net["iid"], DeviceIndex=0)
    att = ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=net["iid"], DeviceIndex=1)["AttachmentId"]
    assert att.startswith("eni-attach-")
    (d,) = enis(ec2, NetworkInterfaceIds=[eni])
    assert d["Status"] == "in-use"
    assert d["Attachment"]["InstanceId"] == net["iid"] and d["Attachment"]["DeviceIndex"] == 1
    assert d["Attachment"]["Status"] == "attached" and d["Attachment"]["AttachmentId"] == att
    got = enis(ec2, Filters=[{"Name": "attachment.instance-id", "Values": [net["iid"]]}])
    assert [x["NetworkInterfaceId"] for x in got] == [eni]
    # In use: no second attachment, no delete, no deleting its group or subnet.
    expect_code("InvalidNetworkInterface.InUse", ec2.attach_network_interface, NetworkInterfaceId=eni,
                InstanceId=net["iid"], DeviceIndex=2)
    expect_code("InvalidNetworkInterface.InUse", ec2.delete_network_interface, NetworkInterfaceId=eni)
    expect_code("DependencyViolation", ec2.delete_security_group, GroupId=net["sg"])
    expect_code("DependencyViolation", ec2.delete_subnet, SubnetId=net["sb"])
    # Device index taken.
    third = ec2.create_network_interface(SubnetId=net["sa"])["NetworkInterface"]["NetworkInterfaceId"]
    expect_code("InvalidParameterValue", ec2.attach_network_interface, NetworkInterfaceId=third,
                InstanceId=net["iid"], DeviceIndex=1)
    # The aws CLI detaches.
    strato.aws("ec2", "detach-network-interface", "--attachment-id", att)
    assert enis(ec2, NetworkInterfaceIds=[eni])[0]["Status"] == "available"
    assert aws_error(strato, "ec2", "detach-network-interface", "--attachment-id", att) == \
        "InvalidAttachmentID.NotFound"
    for e in (eni, other_zone, third):
        ec2.delete_network_interface(NetworkInterfaceId=e)


def test_terminate_detaches(ec2, net):
    (iid,) = launch(ec2, SubnetId=net["sa"], wait="running")
    eni = ec2.create_network_interface(SubnetId=net["sa"])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=1)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    (d,) = enis(ec2, NetworkInterfaceIds=[eni])
    assert d["Status"] == "available" and "Attachment" not in d
    expect_code("IncorrectInstanceState", ec2.attach_network_interface, NetworkInterfaceId=eni,
                InstanceId=iid, DeviceIndex=1)
    ec2.delete_network_interface(NetworkInterfaceId=eni)


def test_tenancy(strato, ec2, net):
    ec2b = strato.client(strato.create_account("eni-b"))
    eni = ec2.create_network_interface(SubnetId=net["sa"])["NetworkInterface"]["NetworkInterfaceId"]
    assert eni not in [x["NetworkInterfaceId"] for x in enis(ec2b)]
    expect_code("InvalidNetworkInterfaceID.NotFound", ec2b.describe_network_interfaces, NetworkInterfaceIds=[eni])
    expect_code("InvalidNetworkInterfaceID.NotFound", ec2b.delete_network_interface, NetworkInterfaceId=eni)
    expect_code("InvalidSubnetID.NotFound", ec2b.create_network_interface, SubnetId=net["sa"])
    # B's own interface cannot go to A's instance.
    sub_b = ec2b.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]}])["Subnets"][0]
    eni_b = ec2b.create_network_interface(SubnetId=sub_b["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
    expect_code("InvalidInstanceID.NotFound", ec2b.attach_network_interface, NetworkInterfaceId=eni_b,
                InstanceId=net["iid"], DeviceIndex=1)
    ec2b.delete_network_interface(NetworkInterfaceId=eni_b)
    assert enis(ec2, NetworkInterfaceIds=[eni])[0]["Status"] == "available"
    ec2.delete_network_interface(NetworkInterfaceId=eni)
