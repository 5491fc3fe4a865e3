"""Network interfaces as resources: Create/Describe/Delete/Attach/DetachNetworkInterface,
their addresses, MACs, error codes, DryRun, filters, dependencies and tenancy; every
instance's primary interface (in DescribeInstances and DescribeNetworkInterfaces, its
rules, its end with the instance), and launching with an existing interface or a chosen
address through NetworkInterface.1."""

import ipaddress
import re

import pytest

from conftest import DEFAULT_IMAGE
from helpers import aws_error, client_error, expect_code, instance, instance_count, launch, wait_state

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
    # The only interfaces in use are instances' primary ones.
    in_use = enis(ec2, Filters=[{"Name": "status", "Values": ["in-use"]}])
    assert in_use and all(x["Attachment"]["DeviceIndex"] == 0 for x in in_use)
    assert eni not in [x["NetworkInterfaceId"] for x in in_use]
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
    by_index = {x["Attachment"]["DeviceIndex"]: x["NetworkInterfaceId"] for x in got}
    assert len(got) == 2 and by_index[1] == eni
    assert d["Attachment"]["DeleteOnTermination"] is False
    # DescribeInstances lists both, the primary first.
    nics = instance(ec2, net["iid"])["NetworkInterfaces"]
    assert [(n["NetworkInterfaceId"], n["Attachment"]["DeviceIndex"]) for n in nics] == \
        [(by_index[0], 0), (eni, 1)]
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


# --------------------------------------------------------------------------- primary interfaces


@pytest.fixture(scope="module")
def account_id(strato):
    return strato.client(service="sts").get_caller_identity()["Account"]


def primary_of(ec2, iid):
    (n,) = [x for x in instance(ec2, iid)["NetworkInterfaces"] if x["Attachment"]["DeviceIndex"] == 0]
    return n


def test_primary_interface_in_describe_instances(strato, ec2, net, account_id):
    (iid,) = launch(ec2, SubnetId=net["sa"], SecurityGroupIds=[net["sg"]], wait="running")
    i = instance(ec2, iid)
    (n,) = i["NetworkInterfaces"]
    eni = n["NetworkInterfaceId"]
    assert re.fullmatch(r"eni-[0-9a-f]{17}", eni)
    assert re.fullmatch(r"02(:[0-9a-f]{2}){5}", n["MacAddress"])
    ip = i["PrivateIpAddress"]
    dns = f"ip-{ip.replace('.', '-')}.ec2.internal"
    assert i["PrivateDnsName"] == dns
    assert (n["SubnetId"], n["VpcId"], n["OwnerId"], n["Status"], n["Description"]) == \
        (net["sa"], net["vpc"], account_id, "in-use", "")
    assert (n["PrivateIpAddress"], n["PrivateDnsName"], n["SourceDestCheck"]) == (ip, dns, True)
    assert n["Groups"] == [{"GroupId": net["sg"], "GroupName": "eni-sg"}]
    att = n["Attachment"]
    assert att["AttachmentId"].startswith("eni-attach-")
    assert (att["DeviceIndex"], att["Status"], att["DeleteOnTermination"], att["NetworkCardIndex"]) == \
        (0, "attached", True, 0)
    assert "AttachTime" in att
    assert n["PrivateIpAddresses"] == [{"PrivateIpAddress": ip, "PrivateDnsName": dns, "Primary": True}]
    assert n["Ipv6Addresses"] == [] and n["InterfaceType"] == "interface"
    assert "Association" not in n
    # DescribeNetworkInterfaces shows it in use by the instance.
    (d,) = enis(ec2, NetworkInterfaceIds=[eni])
    assert (d["Status"], d["MacAddress"], d["PrivateIpAddress"]) == ("in-use", n["MacAddress"], ip)
    assert d["Attachment"]["InstanceId"] == iid and d["Attachment"]["InstanceOwnerId"] == account_id
    assert d["Attachment"]["DeviceIndex"] == 0 and d["Attachment"]["DeleteOnTermination"] is True
    assert d["AvailabilityZone"] == "us-east-1a"
    # DescribeInstances filters on it.
    for name, value in [("network-interface.network-interface-id", eni),
                        ("network-interface.mac-address", n["MacAddress"]),
                        ("network-interface.private-dns-name", dns),
                        ("network-interface.addresses.private-ip-address", ip),
                        ("network-interface.attachment.device-index", "0")]:
        r = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])
        found = [x["InstanceId"] for res in r["Reservations"] for x in res["Instances"]]
        assert iid in found, name
        if name != "network-interface.attachment.device-index":
            assert found == [iid], name
    r = ec2.describe_instances(Filters=[{"Name": "network-interface.mac-address", "Values": ["02:00:00:00:00:00"]}])
    assert r["Reservations"] == []
    # The aws CLI reads the same shape.
    out = strato.aws("ec2", "describe-instances", "--instance-ids", iid)
    assert out["Reservations"][0]["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"] == eni
    # An Elastic IP shows as the interface's association, owned by the account.
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=iid)
    n = primary_of(ec2, iid)
    pub = alloc["PublicIp"]
    assoc = {"PublicIp": pub, "PublicDnsName": f"ec2-{pub.replace('.', '-')}.compute-1.amazonaws.com",
             "IpOwnerId": account_id}
    assert n["Association"] == assoc
    assert n["PrivateIpAddresses"][0]["Association"] == assoc
    ec2.disassociate_address(PublicIp=pub)
    ec2.release_address(AllocationId=alloc["AllocationId"])
    assert "Association" not in primary_of(ec2, iid)
    # ModifyInstanceAttribute groups are the primary interface's groups.
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[net["sg"], default_group(ec2, net["vpc"])])
    assert {g["GroupName"] for g in primary_of(ec2, iid)["Groups"]} == {"eni-sg", "default"}
    assert {g["GroupName"] for g in enis(ec2, NetworkInterfaceIds=[eni])[0]["Groups"]} == {"eni-sg", "default"}
    ec2.terminate_instances(InstanceIds=[iid])


def test_describe_network_interfaces_shows_public_addresses(ec2, account_id):
    """A primary interface's public address shows in DescribeNetworkInterfaces as in
    DescribeInstances: auto-assigned (Amazon's), or an Elastic IP (the account's, with
    its allocation and association); the association filters select by those values."""
    auto, elastic = launch(ec2, count=2, wait="running")  # default subnets map addresses
    alloc = ec2.allocate_address(Domain="vpc")
    assoc = ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=elastic)["AssociationId"]
    try:
        for iid in (auto, elastic):
            n = primary_of(ec2, iid)
            (d,) = enis(ec2, NetworkInterfaceIds=[n["NetworkInterfaceId"]])
            shown = n["Association"]
            got = d["Association"]
            assert (got["PublicIp"], got["PublicDnsName"], got["IpOwnerId"]) == \
                (shown["PublicIp"], shown["PublicDnsName"], shown["IpOwnerId"])
            assert got["PublicIp"] == instance(ec2, iid)["PublicIpAddress"]
            assert d["PrivateIpAddresses"][0]["Association"] == got
            (f,) = enis(ec2, Filters=[{"Name": "association.public-ip", "Values": [got["PublicIp"]]}])
            assert f["NetworkInterfaceId"] == n["NetworkInterfaceId"] and f["Association"] == got
        got = enis(ec2, NetworkInterfaceIds=[primary_of(ec2, auto)["NetworkInterfaceId"]])[0]["Association"]
        assert got["IpOwnerId"] == "amazon" and "AllocationId" not in got and "AssociationId" not in got
        got = enis(ec2, NetworkInterfaceIds=[primary_of(ec2, elastic)["NetworkInterfaceId"]])[0]["Association"]
        pub = alloc["PublicIp"]
        (a,) = ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])["Addresses"]
        assert got == {"PublicIp": pub, "IpOwnerId": account_id,
                       "PublicDnsName": f"ec2-{pub.replace('.', '-')}.compute-1.amazonaws.com",
                       "AllocationId": a["AllocationId"], "AssociationId": a["AssociationId"]}
        assert a["AssociationId"] == assoc and a["InstanceId"] == elastic
        # An interface attached to nothing has no public address.
        sub = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1a"]},
                                            {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
        spare = ec2.create_network_interface(SubnetId=sub["SubnetId"])["NetworkInterface"]
        assert "Association" not in spare
        assert "Association" not in enis(ec2, NetworkInterfaceIds=[spare["NetworkInterfaceId"]])[0]
        ec2.delete_network_interface(NetworkInterfaceId=spare["NetworkInterfaceId"])
        # Disassociated, the interface shows the instance's new auto-assigned address.
        ec2.disassociate_address(AssociationId=assoc)
        got = enis(ec2, NetworkInterfaceIds=[primary_of(ec2, elastic)["NetworkInterfaceId"]])[0]["Association"]
        assert got["PublicIp"] != pub and got["IpOwnerId"] == "amazon" and "AllocationId" not in got
        assert got["PublicIp"] == instance(ec2, elastic)["PublicIpAddress"]
        assert enis(ec2, Filters=[{"Name": "association.public-ip", "Values": [pub]}]) == []
    finally:
        if "AssociationId" in ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])["Addresses"][0]:
            ec2.disassociate_address(AssociationId=assoc)
        ec2.release_address(AllocationId=alloc["AllocationId"])
        ec2.terminate_instances(InstanceIds=[auto, elastic])


def default_group(ec2, vpc):
    return ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                 {"Name": "group-name", "Values": ["default"]}]
                                        )["SecurityGroups"][0]["GroupId"]


def test_primary_interface_cannot_be_detached_or_deleted(strato, ec2, net):
    n = primary_of(ec2, net["iid"])
    eni, att = n["NetworkInterfaceId"], n["Attachment"]["AttachmentId"]
    status, msg = expect_code("OperationNotPermitted", ec2.detach_network_interface, AttachmentId=att)
    assert "device index 0 cannot be detached" in msg
    expect_code("OperationNotPermitted", ec2.detach_network_interface, AttachmentId=att, Force=True)
    assert aws_error(strato, "ec2", "detach-network-interface", "--attachment-id", att) == "OperationNotPermitted"
    expect_code("InvalidNetworkInterface.InUse", ec2.delete_network_interface, NetworkInterfaceId=eni)
    assert enis(ec2, NetworkInterfaceIds=[eni])[0]["Status"] == "in-use"


def test_terminate_deletes_the_primary_interface_and_frees_its_address(ec2, net):
    before = free_count(ec2, net["sa"])
    (iid,) = launch(ec2, SubnetId=net["sa"], PrivateIpAddress="10.40.1.99", wait="running")
    assert free_count(ec2, net["sa"]) == before - 1
    eni = primary_of(ec2, iid)["NetworkInterfaceId"]
    assert enis(ec2, NetworkInterfaceIds=[eni])[0]["PrivateIpAddress"] == "10.40.1.99"
    # A kept secondary interface stays; the primary goes with the instance.
    second = ec2.create_network_interface(SubnetId=net["sa"])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid, DeviceIndex=1)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    expect_code("InvalidNetworkInterfaceID.NotFound", ec2.describe_network_interfaces, NetworkInterfaceIds=[eni])
    assert enis(ec2, NetworkInterfaceIds=[second])[0]["Status"] == "available"
    assert instance(ec2, iid)["NetworkInterfaces"] == []
    ec2.delete_network_interface(NetworkInterfaceId=second)
    assert free_count(ec2, net["sa"]) == before
    # The address is free again: a new instance can have it.
    (again,) = launch(ec2, SubnetId=net["sa"], PrivateIpAddress="10.40.1.99", wait="running")
    assert instance(ec2, again)["PrivateIpAddress"] == "10.40.1.99"
    ec2.terminate_instances(InstanceIds=[again])
    wait_state(ec2, [again], "terminated")


def test_client_token_retry_makes_no_extra_interfaces(ec2, net):
    count = len(enis(ec2))
    kw = dict(ImageId=DEFAULT_IMAGE, MinCount=2, MaxCount=2, SubnetId=net["sa"], ClientToken="eni-token-1")
    first = ec2.run_instances(**kw)
    again = ec2.run_instances(**kw)
    assert [i["InstanceId"] for i in first["Instances"]] == [i["InstanceId"] for i in again["Instances"]]
    assert len(enis(ec2)) == count + 2
    # RunInstances answers with the interfaces too, one per instance, MACs distinct.
    macs = [i["NetworkInterfaces"][0]["MacAddress"] for i in first["Instances"]]
    assert len(set(macs)) == 2
    ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in first["Instances"]])


def test_interface_tags_at_launch(ec2, net):
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1, SubnetId=net["sa"], TagSpecifications=[
        {"ResourceType": "network-interface", "Tags": [{"Key": "role", "Value": "primary"}]}])
    i = r["Instances"][0]
    eni = i["NetworkInterfaces"][0]["NetworkInterfaceId"]
    assert {t["Key"]: t["Value"] for t in enis(ec2, NetworkInterfaceIds=[eni])[0]["TagSet"]} == {"role": "primary"}
    assert "Tags" not in i
    ec2.terminate_instances(InstanceIds=[i["InstanceId"]])


def test_launch_with_an_existing_interface(strato, ec2, net):
    # An interface in zone b: the instance goes there, with its address and groups.
    n = ec2.create_network_interface(SubnetId=net["sb"], Groups=[net["sg"]], PrivateIpAddress="10.40.2.50",
                                     Description="mine")["NetworkInterface"]
    eni = n["NetworkInterfaceId"]
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                          NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": eni}])
    i = r["Instances"][0]
    iid = i["InstanceId"]
    assert i["PrivateIpAddress"] == "10.40.2.50" and i["SubnetId"] == net["sb"] and i["VpcId"] == net["vpc"]
    assert i["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert [g["GroupId"] for g in i["SecurityGroups"]] == [net["sg"]]
    wait_state(ec2, [iid], "running")
    p = primary_of(ec2, iid)
    assert (p["NetworkInterfaceId"], p["MacAddress"], p["Description"]) == (eni, n["MacAddress"], "mine")
    assert p["Attachment"]["DeleteOnTermination"] is False
    (d,) = enis(ec2, NetworkInterfaceIds=[eni])
    assert d["Status"] == "in-use" and d["Attachment"]["InstanceId"] == iid
    # In use now: another launch with it is refused.
    expect_code("InvalidNetworkInterface.InUse", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1,
                MaxCount=1, NetworkInterfaces=[{"DeviceIndex": 0, "NetworkInterfaceId": eni}])
    # Not deleted on termination: it comes back available, with its address.
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    (d,) = enis(ec2, NetworkInterfaceIds=[eni])
    assert d["Status"] == "available" and d["PrivateIpAddress"] == "10.40.2.50" and "Attachment" not in d
    # Again, through the aws CLI, deleted on termination this time.
    out = strato.aws("ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--count", "1", "--network-interfaces",
                     f"DeviceIndex=0,NetworkInterfaceId={eni},DeleteOnTermination=true")
    iid = out["Instances"][0]["InstanceId"]
    assert out["Instances"][0]["NetworkInterfaces"][0]["Attachment"]["DeleteOnTermination"] is True
    wait_state(ec2, [iid], "running")
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    expect_code("InvalidNetworkInterfaceID.NotFound", ec2.describe_network_interfaces, NetworkInterfaceIds=[eni])


def test_launch_with_an_interface_address(ec2, net):
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": net["sa"], "PrivateIpAddress": "10.40.1.77", "Groups": [net["sg"]],
         "Description": "front"}])
    i = r["Instances"][0]
    assert i["PrivateIpAddress"] == "10.40.1.77" and i["SubnetId"] == net["sa"]
    n = i["NetworkInterfaces"][0]
    assert (n["PrivateIpAddress"], n["Description"]) == ("10.40.1.77", "front")
    assert n["Attachment"]["DeleteOnTermination"] is True
    expect_code("InvalidIPAddress.InUse", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": net["sa"], "PrivateIpAddress": "10.40.1.77"}])
    ec2.terminate_instances(InstanceIds=[i["InstanceId"]])
    wait_state(ec2, [i["InstanceId"]], "terminated")


def test_launch_interface_validation(strato, ec2, net):
    eni = ec2.create_network_interface(SubnetId=net["sa"])["NetworkInterface"]["NetworkInterfaceId"]
    base = dict(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1)
    nic = {"DeviceIndex": 0, "NetworkInterfaceId": eni}
    count = instance_count(ec2)
    cases = [
        ("InvalidParameterCombination", dict(NetworkInterfaces=[dict(nic, SubnetId=net["sa"])])),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[dict(nic, Groups=[net["sg"]])])),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[dict(nic, AssociatePublicIpAddress=True)])),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[dict(nic, PrivateIpAddress="10.40.1.30")])),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[nic], SubnetId=net["sa"])),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[nic], SecurityGroupIds=[net["sg"]])),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[nic], PrivateIpAddress="10.40.1.30")),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[
            {"DeviceIndex": 0, "SubnetId": net["sa"], "PrivateIpAddress": "10.40.1.30"}],
            PrivateIpAddress="10.40.1.31")),
        ("InvalidParameterCombination", dict(NetworkInterfaces=[nic], MinCount=2, MaxCount=2)),
        ("InvalidParameterValue", dict(NetworkInterfaces=[nic], Placement={"AvailabilityZone": "us-east-1b"})),
        ("InvalidNetworkInterfaceID.NotFound", dict(NetworkInterfaces=[dict(nic, NetworkInterfaceId=MISSING_ENI)])),
        ("InvalidNetworkInterfaceID.Malformed", dict(NetworkInterfaces=[dict(nic, NetworkInterfaceId="eni-zz")])),
    ]
    for code, kw in cases:
        expect_code(code, ec2.run_instances, **dict(base, **kw))
    code, status, _ = client_error(ec2.run_instances, DryRun=True, **dict(base, NetworkInterfaces=[nic]))
    assert (code, status) == ("DryRunOperation", 412)
    # Another account's interface is not found.
    ec2b = strato.client(strato.create_account("eni-launch-b"))
    expect_code("InvalidNetworkInterfaceID.NotFound", ec2b.run_instances, **dict(base, NetworkInterfaces=[nic]))
    assert instance_count(ec2) == count
    assert enis(ec2, NetworkInterfaceIds=[eni])[0]["Status"] == "available"
    ec2.delete_network_interface(NetworkInterfaceId=eni)
