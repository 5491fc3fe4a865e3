"""VPC networking through the EC2 API, driven by boto3 and the aws CLI: the default
network every account gets, VPCs, subnets, security groups and their rules, internet
gateways, route tables, DHCP options, instances in subnets, tags, DryRun, filters,
paging, dependency rules and tenant isolation."""

import uuid

import pytest

from conftest import DEFAULT_IMAGE
from helpers import (
    aws_error,
    client_error,
    expect_code,
    instance,
    launch,
    signed,
    tag_dict,
    wait_state,
)


def uid():
    return uuid.uuid4().hex[:8]


def tags(resource_type, **kv):
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in kv.items()]}]


def default_vpc(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1, vpcs
    return vpcs[0]


def default_group(ec2, vpc_id):
    groups = ec2.describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]
    assert len(groups) == 1, groups
    return groups[0]


def new_vpc(ec2, cidr="10.0.0.0/16", **kw):
    return ec2.create_vpc(CidrBlock=cidr, **kw)["Vpc"]["VpcId"]


def rules_of(ec2, group_id):
    return ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]


def raw(strato, action, creds=None, **params):
    """A signed request with exactly these parameters (what boto3 cannot send)."""
    return signed(strato, {"Action": action, "Version": "2016-11-15", **params}, creds=creds)


# --------------------------------------------------------------------------- default network


def test_default_network(strato, ec2):
    vpc = default_vpc(ec2)
    assert vpc["CidrBlock"] == "172.31.0.0/16"
    assert vpc["IsDefault"] is True and vpc["State"] == "available"
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlockState"]["State"] == "associated"
    assert vpc["CidrBlockAssociationSet"][0]["AssociationId"].startswith("vpc-cidr-assoc-")
    vpc_id = vpc["VpcId"]
    attrs = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"] == [{"AttributeValue": vpc_id}]
    for attr, want in [("enableDnsSupport", True), ("enableDnsHostnames", True)]:
        r = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=attr)
        assert r[attr[0].upper() + attr[1:]]["Value"] is want

    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    by_zone = {s["AvailabilityZone"]: s for s in subnets}
    # One /20 per zone of the region (us-east-1 has six), as on AWS.
    assert {z: s["CidrBlock"] for z, s in by_zone.items()} == {
        f"us-east-1{c}": f"172.31.{16 * n}.0/20" for n, c in enumerate("abcdef")}
    for s in subnets:
        assert s["VpcId"] == vpc_id and s["MapPublicIpOnLaunch"] is True and s["DefaultForAz"] is True
        assert s["State"] == "available"
        assert s["SubnetArn"].endswith(f":subnet/{s['SubnetId']}")
        assert s["AvailabilityZoneId"].startswith("use1-az")

    sg = default_group(ec2, vpc_id)
    assert sg["Description"] == "default VPC security group"
    assert sg["IpPermissions"] == [{
        "IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
        "UserIdGroupPairs": [{"GroupId": sg["GroupId"], "UserId": sg["OwnerId"]}]}]
    assert sg["IpPermissionsEgress"] == [{
        "IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [], "PrefixListIds": [],
        "UserIdGroupPairs": []}]
    rules = rules_of(ec2, sg["GroupId"])
    assert sorted(r["IsEgress"] for r in rules) == [False, True]
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") for r in rules)

    igws = ec2.describe_internet_gateways(
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}])["InternetGateways"]
    assert len(igws) == 1
    assert igws[0]["Attachments"] == [{"VpcId": vpc_id, "State": "available"}]
    igw_id = igws[0]["InternetGatewayId"]

    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
    assert len(tables) == 1
    main = tables[0]
    assert main["Associations"][0]["Main"] is True
    assert main["Associations"][0]["AssociationState"]["State"] == "associated"
    assert main["Routes"] == [
        {"DestinationCidrBlock": "172.31.0.0/16", "GatewayId": "local", "State": "active",
         "Origin": "CreateRouteTable"},
        {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": igw_id, "State": "active", "Origin": "CreateRoute"}]

    dopts = ec2.describe_dhcp_options(DhcpOptionsIds=[vpc["DhcpOptionsId"]])["DhcpOptions"]
    config = {c["Key"]: [v["Value"] for v in c["Values"]] for c in dopts[0]["DhcpConfigurations"]}
    assert config == {"domain-name": ["ec2.internal"], "domain-name-servers": ["AmazonProvidedDNS"]}

    # The aws CLI sees the same.
    cli = strato.aws("ec2", "describe-vpcs", "--filters", "Name=is-default,Values=true")
    assert [v["VpcId"] for v in cli["Vpcs"]] == [vpc_id]
    cli = strato.aws("ec2", "describe-account-attributes", "--attribute-names", "default-vpc")
    assert cli["AccountAttributes"][0]["AttributeValues"][0]["AttributeValue"] == vpc_id


def test_create_default_vpc(strato):
    """A fresh account: delete its default VPC the way a user must, then bring it back."""
    ec2 = strato.client(strato.create_account(f"dv-{uid()}"))
    vpc_id = default_vpc(ec2)["VpcId"]
    code, status, msg = client_error(ec2.create_default_vpc)
    assert (code, status) == ("DefaultVpcAlreadyExists", 400), msg
    expect_code("DependencyViolation", ec2.delete_vpc, VpcId=vpc_id)
    for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    (igw,) = ec2.describe_internet_gateways()["InternetGateways"]
    expect_code("DependencyViolation", ec2.delete_internet_gateway, InternetGatewayId=igw["InternetGatewayId"])
    ec2.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=vpc_id)
    ec2.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    ec2.delete_vpc(VpcId=vpc_id)
    assert ec2.describe_vpcs()["Vpcs"] == []
    assert ec2.describe_security_groups()["SecurityGroups"] == []
    assert ec2.describe_route_tables()["RouteTables"] == []
    attrs = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"] == [{"AttributeValue": "none"}]
    # Without a default VPC, a launch without a subnet and a group without a VPC fail.
    expect_code("VPCIdNotSpecified", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1)
    expect_code("VPCIdNotSpecified", ec2.create_security_group, GroupName="g", Description="d")
    expect_code("VPCIdNotSpecified", ec2.describe_security_groups, GroupNames=["default"])
    expect_code("DryRunOperation", ec2.create_default_vpc, DryRun=True)
    assert ec2.describe_vpcs()["Vpcs"] == []
    vpc = ec2.create_default_vpc()["Vpc"]
    assert vpc["IsDefault"] is True and vpc["CidrBlock"] == "172.31.0.0/16"
    assert len(ec2.describe_subnets()["Subnets"]) == 6
    assert len(ec2.describe_internet_gateways()["InternetGateways"]) == 1
    (iid,) = launch(ec2)
    assert instance(ec2, iid)["VpcId"] == vpc["VpcId"]


# --------------------------------------------------------------------------- VPCs


def test_create_vpc_validation_and_dry_run(strato, ec2):
    before = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    for cidr in ("10.0.0.0/15", "10.0.0.0/8", "10.0.0.0/29", "10.0.0.0/32"):
        status, msg = expect_code("InvalidVpc.Range", ec2.create_vpc, CidrBlock=cidr)
        assert cidr in msg
    for cidr in ("10.0.0.1/16", "10.0.0.0", "300.0.0.0/16", "nonsense"):
        expect_code("InvalidParameterValue", ec2.create_vpc, CidrBlock=cidr)
    raw(strato, "CreateVpc").assert_ec2_error("MissingParameter", 400)
    assert aws_error(strato, "ec2", "create-vpc", "--cidr-block", "10.0.0.0/12") == "InvalidVpc.Range"
    status, _ = expect_code("DryRunOperation", ec2.create_vpc, CidrBlock="10.0.0.0/16", DryRun=True)
    assert status == 412
    # Invalid values are reported even with DryRun.
    expect_code("InvalidVpc.Range", ec2.create_vpc, CidrBlock="10.0.0.0/8", DryRun=True)
    expect_code("UnsupportedOperation", ec2.create_vpc, CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)
    assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == before


def test_vpcs_create_describe_filter_page(strato, ec2):
    name = f"net-{uid()}"
    a = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=tags("vpc", Name=name, Tier="a"))["Vpc"]
    assert a["State"] == "available" and a["IsDefault"] is False and a["CidrBlock"] == "10.20.0.0/16"
    assert tag_dict(a) == {"Name": name, "Tier": "a"}
    assert a["InstanceTenancy"] == "default" and a["DhcpOptionsId"].startswith("dopt-")
    # Overlapping blocks are allowed between VPCs.
    b = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    c = strato.aws("ec2", "create-vpc", "--cidr-block", "10.21.0.0/24", "--tag-specifications",
                   f"ResourceType=vpc,Tags=[{{Key=Name,Value={name}-cli}}]")["Vpc"]
    assert c["CidrBlock"] == "10.21.0.0/24" and tag_dict(c) == {"Name": f"{name}-cli"}
    ids = [a["VpcId"], b, c["VpcId"]]
    got = ec2.describe_vpcs(VpcIds=ids)["Vpcs"]
    assert sorted(v["VpcId"] for v in got) == sorted(ids)

    def ids_for(*filters):
        return sorted(v["VpcId"] for v in ec2.describe_vpcs(
            Filters=[{"Name": n, "Values": vals} for n, vals in filters])["Vpcs"])

    assert ids_for(("cidr", ["10.20.0.0/16"])) == sorted([a["VpcId"], b])
    assert ids_for(("cidr-block-association.cidr-block", ["10.21.0.0/24"])) == [c["VpcId"]]
    assert ids_for(("tag:Name", [name])) == [a["VpcId"]]
    assert ids_for(("tag:Name", [f"{name}*"])) == sorted([a["VpcId"], c["VpcId"]])
    assert ids_for(("tag-key", ["Tier"]), ("vpc-id", ids)) == [a["VpcId"]]
    assert ids_for(("tag-value", ["a"]), ("vpc-id", ids)) == [a["VpcId"]]
    assert ids_for(("is-default", ["false"]), ("vpc-id", ids)) == sorted(ids)
    assert ids_for(("state", ["available"]), ("vpc-id", ids)) == sorted(ids)
    assert ids_for(("owner-id", [a["OwnerId"]]), ("vpc-id", ids)) == sorted(ids)
    assert ids_for(("dhcp-options-id", [a["DhcpOptionsId"]]), ("vpc-id", ids)) == sorted(ids)
    assert ids_for(("owner-id", ["000000000000"])) == []
    expect_code("InvalidParameterValue", ec2.describe_vpcs, Filters=[{"Name": "colour", "Values": ["x"]}])
    expect_code("InvalidVpcID.NotFound", ec2.describe_vpcs, VpcIds=["vpc-0123456789abcdef0"])
    expect_code("InvalidVpcID.Malformed", ec2.describe_vpcs, VpcIds=["vpc-xyz"])
    # Paging walks every VPC exactly once.
    for i in range(4):
        new_vpc(ec2, f"10.{30 + i}.0.0/16")
    everything = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    seen, token = [], None
    while True:
        kw = {"MaxResults": 5}
        if token:
            kw["NextToken"] = token
        r = ec2.describe_vpcs(**kw)
        assert len(r["Vpcs"]) <= 5
        seen += [v["VpcId"] for v in r["Vpcs"]]
        token = r.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(everything)
    pages = list(ec2.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": 5}))
    assert sum(len(p["Vpcs"]) for p in pages) == len(everything)
    expect_code("InvalidParameterValue", strato.client(validate=False).describe_vpcs, MaxResults=4)


def test_vpc_attributes(strato, ec2):
    vpc = new_vpc(ec2, "10.40.0.0/16")
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"] is True
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"] is False
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"] is True
    strato.aws("ec2", "modify-vpc-attribute", "--vpc-id", vpc, "--no-enable-dns-support")
    cli = strato.aws("ec2", "describe-vpc-attribute", "--vpc-id", vpc, "--attribute", "enableDnsSupport")
    assert cli == {"VpcId": vpc, "EnableDnsSupport": {"Value": False}}
    # One attribute per call; DryRun changes nothing; unknown attributes are refused.
    raw(strato, "ModifyVpcAttribute", VpcId=vpc, **{"EnableDnsSupport.Value": "true",
                                                    "EnableDnsHostnames.Value": "false"}
        ).assert_ec2_error("InvalidParameterCombination", 400)
    raw(strato, "ModifyVpcAttribute", VpcId=vpc).assert_ec2_error("MissingParameter", 400)
    # The model gives ModifyVpcAttribute no DryRun member, so EC2 does not know it.
    r = raw(strato, "ModifyVpcAttribute", VpcId=vpc, DryRun="true", **{"EnableDnsSupport.Value": "true"})
    r.assert_ec2_error("UnknownParameter", 400)
    assert ec2.describe_vpc_attribute(VpcId=vpc, Attribute="enableDnsSupport")["EnableDnsSupport"]["Value"] is False
    expect_code("InvalidParameterValue", ec2.describe_vpc_attribute, VpcId=vpc, Attribute="colour")
    expect_code("InvalidVpcID.NotFound", ec2.modify_vpc_attribute, VpcId="vpc-0123456789abcdef0",
                EnableDnsSupport={"Value": True})


def test_delete_vpc_waits_for_its_dependencies(strato, ec2):
    vpc = new_vpc(ec2, "10.50.0.0/16")
    own_sg = default_group(ec2, vpc)["GroupId"]
    (main,) = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.50.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="dep", Description="dep", VpcId=vpc)["GroupId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    (iid,) = launch(ec2, SubnetId=subnet, SecurityGroupIds=[sg])
    status, msg = expect_code("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    assert vpc in msg
    expect_code("DependencyViolation", ec2.delete_subnet, SubnetId=subnet)
    expect_code("DependencyViolation", ec2.delete_security_group, GroupId=sg)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    ec2.delete_subnet(SubnetId=subnet)
    expect_code("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    ec2.delete_security_group(GroupId=sg)
    expect_code("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    ec2.delete_route_table(RouteTableId=rtb)
    expect_code("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    expect_code("DryRunOperation", ec2.delete_vpc, VpcId=vpc, DryRun=True)
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
    strato.aws("ec2", "delete-vpc", "--vpc-id", vpc)
    expect_code("InvalidVpcID.NotFound", ec2.describe_vpcs, VpcIds=[vpc])
    # Its default group and main route table went with it; the gateway stays, detached.
    expect_code("InvalidGroup.NotFound", ec2.describe_security_groups, GroupIds=[own_sg])
    expect_code("InvalidRouteTableID.NotFound", ec2.describe_route_tables, RouteTableIds=[main["RouteTableId"]])
    assert ec2.describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0]["Attachments"] == []
    expect_code("InvalidVpcID.NotFound", ec2.delete_vpc, VpcId=vpc)


# --------------------------------------------------------------------------- subnets


def test_subnets(strato, ec2):
    vpc = new_vpc(ec2, "10.60.0.0/16")
    s = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24", TagSpecifications=tags("subnet", Name="app"))["Subnet"]
    assert s["AvailabilityZone"] == "us-east-1a", "the first zone by default"
    assert s["AvailableIpAddressCount"] == 251 and s["DefaultForAz"] is False
    assert s["MapPublicIpOnLaunch"] is False and tag_dict(s) == {"Name": "app"}
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.2.0/28", AvailabilityZone="us-east-1b")["Subnet"]
    assert b["AvailableIpAddressCount"] == 11
    c = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.3.0/24", AvailabilityZoneId="use1-az3")["Subnet"]
    assert c["AvailabilityZone"] == "us-east-1c"
    d = strato.aws("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.60.4.0/22")["Subnet"]
    assert d["CidrBlock"] == "10.60.4.0/22" and d["AvailableIpAddressCount"] == 1019

    for cidr in ("10.61.0.0/24", "10.60.0.0/29", "10.0.0.0/8"):
        expect_code("InvalidSubnet.Range", ec2.create_subnet, VpcId=vpc, CidrBlock=cidr)
    for cidr in ("10.60.1.0/24", "10.60.1.128/25", "10.60.0.0/16", "10.60.5.0/24"):
        status, msg = expect_code("InvalidSubnet.Conflict", ec2.create_subnet, VpcId=vpc, CidrBlock=cidr)
        assert cidr in msg
    expect_code("InvalidParameterValue", ec2.create_subnet, VpcId=vpc, CidrBlock="10.60.9.1/24")
    expect_code("InvalidParameterValue", ec2.create_subnet, VpcId=vpc, CidrBlock="10.60.9.0/24",
                AvailabilityZone="us-west-2a")
    expect_code("InvalidVpcID.NotFound", ec2.create_subnet, VpcId="vpc-0123456789abcdef0", CidrBlock="10.0.0.0/24")
    expect_code("DryRunOperation", ec2.create_subnet, VpcId=vpc, CidrBlock="10.60.9.0/24", DryRun=True)
    expect_code("InvalidSubnet.Conflict", ec2.create_subnet, VpcId=vpc, CidrBlock="10.60.1.0/24", DryRun=True)

    def ids_for(*filters):
        return sorted(x["SubnetId"] for x in ec2.describe_subnets(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["Subnets"])

    assert ids_for(("vpc-id", [vpc])) == sorted([s["SubnetId"], b["SubnetId"], c["SubnetId"], d["SubnetId"]])
    assert ids_for(("vpc-id", [vpc]), ("availability-zone", ["us-east-1b"])) == [b["SubnetId"]]
    assert ids_for(("vpc-id", [vpc]), ("availability-zone-id", ["use1-az3"])) == [c["SubnetId"]]
    assert ids_for(("cidr-block", ["10.60.1.0/24"])) == [s["SubnetId"]]
    assert ids_for(("subnet-id", [b["SubnetId"]])) == [b["SubnetId"]]
    assert ids_for(("tag:Name", ["app"]), ("vpc-id", [vpc])) == [s["SubnetId"]]
    assert ids_for(("default-for-az", ["false"]), ("vpc-id", [vpc])) == ids_for(("vpc-id", [vpc]))
    assert ids_for(("state", ["available"]), ("vpc-id", [vpc])) == ids_for(("vpc-id", [vpc]))
    assert ids_for(("available-ip-address-count", ["11"]), ("vpc-id", [vpc])) == [b["SubnetId"]]
    expect_code("InvalidSubnetID.NotFound", ec2.describe_subnets, SubnetIds=["subnet-0123456789abcdef0"])
    expect_code("InvalidSubnetID.Malformed", ec2.describe_subnets, SubnetIds=["subnet-1"])

    # Instances take addresses; the count follows.
    ids = launch(ec2, count=3, SubnetId=b["SubnetId"])
    addrs = sorted(instance(ec2, i)["PrivateIpAddress"] for i in ids)
    assert addrs == ["10.60.2.4", "10.60.2.5", "10.60.2.6"]
    assert ec2.describe_subnets(SubnetIds=[b["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 8
    expect_code("InsufficientFreeAddressesInSubnet", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=9,
                MaxCount=9, SubnetId=b["SubnetId"])
    # MaxCount beyond the free addresses launches what fits.
    more = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=20, SubnetId=b["SubnetId"])["Instances"]
    assert len(more) == 8
    assert ec2.describe_subnets(SubnetIds=[b["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 0
    expect_code("DependencyViolation", ec2.delete_subnet, SubnetId=b["SubnetId"])
    everything = ids + [i["InstanceId"] for i in more]
    ec2.terminate_instances(InstanceIds=everything)
    wait_state(ec2, everything, "terminated")
    assert ec2.describe_subnets(SubnetIds=[b["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == 11

    # ModifySubnetAttribute.
    ec2.modify_subnet_attribute(SubnetId=s["SubnetId"], MapPublicIpOnLaunch={"Value": True})
    assert ec2.describe_subnets(SubnetIds=[s["SubnetId"]])["Subnets"][0]["MapPublicIpOnLaunch"] is True
    strato.aws("ec2", "modify-subnet-attribute", "--subnet-id", s["SubnetId"], "--no-map-public-ip-on-launch")
    assert ec2.describe_subnets(SubnetIds=[s["SubnetId"]])["Subnets"][0]["MapPublicIpOnLaunch"] is False
    raw(strato, "ModifySubnetAttribute", SubnetId=s["SubnetId"], DryRun="true",
        **{"MapPublicIpOnLaunch.Value": "true"}).assert_ec2_error("UnknownParameter", 400)
    assert ec2.describe_subnets(SubnetIds=[s["SubnetId"]])["Subnets"][0]["MapPublicIpOnLaunch"] is False
    expect_code("UnsupportedOperation", ec2.modify_subnet_attribute, SubnetId=s["SubnetId"],
                AssignIpv6AddressOnCreation={"Value": True})

    expect_code("DryRunOperation", ec2.delete_subnet, SubnetId=c["SubnetId"], DryRun=True)
    ec2.delete_subnet(SubnetId=c["SubnetId"])
    expect_code("InvalidSubnetID.NotFound", ec2.delete_subnet, SubnetId=c["SubnetId"])


# --------------------------------------------------------------------------- security groups


def test_security_group_lifecycle(strato, ec2):
    vpc_id = default_vpc(ec2)["VpcId"]
    name = f"web-{uid()}"
    r = ec2.create_security_group(GroupName=name, Description="web servers",
                                  TagSpecifications=tags("security-group", Role="web"))
    gid = r["GroupId"]
    assert gid.startswith("sg-") and r["SecurityGroupArn"].endswith(f":security-group/{gid}")
    assert tag_dict(r) == {"Role": "web"}
    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert (g["GroupName"], g["Description"], g["VpcId"]) == (name, "web servers", vpc_id)
    assert g["IpPermissions"] == []
    assert g["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    assert ec2.describe_security_groups(GroupNames=[name])["SecurityGroups"][0]["GroupId"] == gid

    status, msg = expect_code("InvalidGroup.Duplicate", ec2.create_security_group, GroupName=name, Description="x")
    assert name in msg
    expect_code("InvalidGroup.Reserved", ec2.create_security_group, GroupName="default", Description="x")
    expect_code("InvalidParameterValue", ec2.create_security_group, GroupName="sg-mine", Description="x")
    expect_code("InvalidParameterValue", ec2.create_security_group, GroupName="x" * 256, Description="x")
    expect_code("InvalidParameterValue", ec2.create_security_group, GroupName="ünïcode", Description="x")
    loose = strato.client(validate=False)
    expect_code("MissingParameter", loose.create_security_group, GroupName="no-desc")
    expect_code("MissingParameter", loose.create_security_group, Description="no name")
    expect_code("InvalidVpcID.NotFound", ec2.create_security_group, GroupName="x", Description="x",
                VpcId="vpc-0123456789abcdef0")
    expect_code("DryRunOperation", ec2.create_security_group, GroupName="dry", Description="x", DryRun=True)
    assert ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["dry"]}])["SecurityGroups"] == []
    # The same name in another VPC is another group.
    vpc2 = new_vpc(ec2, "10.70.0.0/16")
    other = strato.aws("ec2", "create-security-group", "--group-name", name, "--description", "in vpc2",
                       "--vpc-id", vpc2)["GroupId"]
    assert other != gid

    def ids_for(*filters):
        return sorted(x["GroupId"] for x in ec2.describe_security_groups(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["SecurityGroups"])

    assert ids_for(("group-name", [name])) == sorted([gid, other])
    assert ids_for(("group-name", [name]), ("vpc-id", [vpc2])) == [other]
    assert ids_for(("description", ["web servers"])) == [gid]
    assert ids_for(("group-id", [gid])) == [gid]
    assert ids_for(("tag:Role", ["web"])) == [gid]
    assert ids_for(("owner-id", [g["OwnerId"]]), ("group-name", [name])) == sorted([gid, other])
    expect_code("InvalidGroup.NotFound", ec2.describe_security_groups, GroupIds=["sg-0123456789abcdef0"])
    expect_code("InvalidGroupId.Malformed", ec2.describe_security_groups, GroupIds=["sg-nothex"])
    expect_code("InvalidGroup.NotFound", ec2.describe_security_groups, GroupNames=["no-such-group"])

    # The default group cannot go; a referenced group cannot go; by name means the default VPC.
    default = default_group(ec2, vpc_id)
    status, msg = expect_code("CannotDelete", ec2.delete_security_group, GroupId=default["GroupId"])
    assert default["GroupId"] in msg
    expect_code("CannotDelete", ec2.delete_security_group, GroupName="default")
    ref = ec2.create_security_group(GroupName=f"ref-{uid()}", Description="refers")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=ref, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": gid}]}])
    expect_code("DependencyViolation", ec2.delete_security_group, GroupId=gid)
    assert ids_for(("ip-permission.group-id", [gid])) == [ref]
    assert ids_for(("ip-permission.group-name", [name])) == [ref]
    ec2.delete_security_group(GroupId=ref)
    expect_code("DryRunOperation", ec2.delete_security_group, GroupId=gid, DryRun=True)
    r = ec2.delete_security_group(GroupName=name)
    assert r["GroupId"] == gid
    expect_code("InvalidGroup.NotFound", ec2.delete_security_group, GroupId=gid)
    strato.aws("ec2", "delete-security-group", "--group-id", other)
    expect_code("MissingParameter", loose.delete_security_group)


def test_ingress_and_egress_rules(strato, ec2):
    gid = ec2.create_security_group(GroupName=f"rules-{uid()}", Description="rules")["GroupId"]
    peer = ec2.create_security_group(GroupName=f"peer-{uid()}", Description="peer")["GroupId"]
    r = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "office"}, {"CidrIp": "192.168.0.0/16"}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": peer, "Description": "from peer"}]},
    ], TagSpecifications=tags("security-group-rule", Batch="one"))
    assert r["Return"] is True
    added = r["SecurityGroupRules"]
    assert len(added) == 5 and all(x["SecurityGroupRuleId"].startswith("sgr-") for x in added)
    assert all(x["GroupId"] == gid and x["IsEgress"] is False and tag_dict(x) == {"Batch": "one"} for x in added)
    ssh = [x for x in added if x.get("CidrIpv4") == "10.0.0.0/8"][0]
    assert (ssh["IpProtocol"], ssh["FromPort"], ssh["ToPort"], ssh["Description"]) == ("tcp", 22, 22, "office")
    grp = [x for x in added if "ReferencedGroupInfo" in x][0]
    assert grp["ReferencedGroupInfo"]["GroupId"] == peer and (grp["FromPort"], grp["ToPort"]) == (-1, -1)

    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    perms = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")): p for p in g["IpPermissions"]}
    assert set(perms) == {("tcp", 22, 22), ("icmp", 8, -1), ("-1", None, None)}
    assert sorted(perms[("tcp", 22, 22)]["IpRanges"], key=lambda x: x["CidrIp"]) == [
        {"CidrIp": "10.0.0.0/8", "Description": "office"}, {"CidrIp": "192.168.0.0/16"}]
    assert perms[("tcp", 22, 22)]["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32"}]
    assert perms[("-1", None, None)]["UserIdGroupPairs"] == [
        {"GroupId": peer, "UserId": g["OwnerId"], "Description": "from peer"}]

    # Protocol numbers and names are the same rule.
    expect_code("InvalidPermission.Duplicate", ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    # Legacy flat parameters, as `aws ec2 authorize-security-group-ingress --port --cidr` sends them.
    strato.aws("ec2", "authorize-security-group-ingress", "--group-id", gid, "--protocol", "tcp",
               "--port", "80-81", "--cidr", "0.0.0.0/0")
    assert aws_error(strato, "ec2", "authorize-security-group-ingress", "--group-id", gid, "--protocol", "tcp",
                     "--port", "80-81", "--cidr", "0.0.0.0/0") == "InvalidPermission.Duplicate"
    ec2.authorize_security_group_ingress(GroupId=gid, IpProtocol="udp", FromPort=53, ToPort=53,
                                         CidrIp="172.16.0.0/12")
    strato.aws("ec2", "authorize-security-group-ingress", "--group-id", gid, "--ip-permissions",
               "IpProtocol=tcp,FromPort=443,ToPort=443,IpRanges=[{CidrIp=0.0.0.0/0,Description=https}]")
    rules = rules_of(ec2, gid)
    assert len([x for x in rules if not x["IsEgress"]]) == 8

    # Validation: nothing of a bad request is kept.
    bad = [
        {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 70000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "bogus", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "300", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "icmp", "FromPort": 300, "ToPort": 0, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.1/8"}]},
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ü"}]},
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::1/32"}]},
    ]
    for perm in bad:
        code, status, msg = client_error(ec2.authorize_security_group_ingress, GroupId=gid,
                                         IpPermissions=[{"IpProtocol": "tcp", "FromPort": 9, "ToPort": 9,
                                                         "IpRanges": [{"CidrIp": "1.2.3.4/32"}]}, perm])
        assert (code, status) == ("InvalidParameterValue", 400), (perm, code, msg)
    expect_code("InvalidGroup.NotFound", ec2.authorize_security_group_ingress, GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]}])
    other_vpc_group = ec2.create_security_group(GroupName="elsewhere", Description="x",
                                                VpcId=new_vpc(ec2, "10.71.0.0/16"))["GroupId"]
    status, msg = expect_code("InvalidGroup.NotFound", ec2.authorize_security_group_ingress, GroupId=gid,
                              IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": other_vpc_group}]}])
    assert "different networks" in msg
    expect_code("InvalidGroup.NotFound", ec2.authorize_security_group_ingress, GroupId="sg-0123456789abcdef0",
                IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    expect_code("DryRunOperation", ec2.authorize_security_group_ingress, GroupId=gid, DryRun=True,
                IpPermissions=[{"IpProtocol": "tcp", "FromPort": 9, "ToPort": 9, "IpRanges": [{"CidrIp": "1.2.3.4/32"}]}])
    assert len([x for x in rules_of(ec2, gid) if not x["IsEgress"]]) == 8

    # Egress: authorize, duplicates, revoke by id and by permission.
    e = ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": peer}]}])
    assert e["SecurityGroupRules"][0]["IsEgress"] is True
    expect_code("InvalidPermission.Duplicate", ec2.authorize_security_group_egress, GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    r = ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert r["Return"] is True and len(r["RevokedSecurityGroupRules"]) == 1
    expect_code("InvalidPermission.NotFound", ec2.revoke_security_group_egress, GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    egress_id = e["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    # An egress rule id is not an ingress rule.
    expect_code("InvalidSecurityGroupRuleId.NotFound", ec2.revoke_security_group_ingress, GroupId=gid,
                SecurityGroupRuleIds=[egress_id])
    expect_code("DryRunOperation", ec2.revoke_security_group_egress, GroupId=gid,
                SecurityGroupRuleIds=[egress_id], DryRun=True)
    ec2.revoke_security_group_egress(GroupId=gid, SecurityGroupRuleIds=[egress_id])
    (g,) = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"]
    assert g["IpPermissionsEgress"] == []

    # Ingress revoke: all or nothing, by permission or id, and the flat CLI form.
    before = len(rules_of(ec2, gid))
    status, msg = expect_code("InvalidPermission.NotFound", ec2.revoke_security_group_ingress, GroupId=gid,
                              IpPermissions=[
                                  {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                   "IpRanges": [{"CidrIp": "10.0.0.0/8"}, {"CidrIp": "11.0.0.0/8"}]}])
    assert len(rules_of(ec2, gid)) == before
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    strato.aws("ec2", "revoke-security-group-ingress", "--group-id", gid, "--protocol", "tcp", "--port", "80-81",
               "--cidr", "0.0.0.0/0")
    assert aws_error(strato, "ec2", "revoke-security-group-ingress", "--group-id", gid, "--protocol", "tcp",
                     "--port", "80-81", "--cidr", "0.0.0.0/0") == "InvalidPermission.NotFound"
    icmp = [x for x in rules_of(ec2, gid) if x["IpProtocol"] == "icmp"][0]["SecurityGroupRuleId"]
    r = ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[icmp])
    assert [x["SecurityGroupRuleId"] for x in r["RevokedSecurityGroupRules"]] == [icmp]
    expect_code("InvalidSecurityGroupRuleId.NotFound", ec2.revoke_security_group_ingress, GroupId=gid,
                SecurityGroupRuleIds=[icmp])
    expect_code("InvalidSecurityGroupRuleId.Malformed", ec2.revoke_security_group_ingress, GroupId=gid,
                SecurityGroupRuleIds=["sgr-bad"])
    assert len(rules_of(ec2, gid)) == before - 3


def test_security_group_rules_describe_modify_page(strato, ec2):
    gid = ec2.create_security_group(GroupName=f"many-{uid()}", Description="many")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
        for p in range(1000, 1011)])
    rules = rules_of(ec2, gid)
    assert len(rules) == 12
    seen, token = [], None
    while True:
        kw = {"Filters": [{"Name": "group-id", "Values": [gid]}], "MaxResults": 5}
        if token:
            kw["NextToken"] = token
        r = ec2.describe_security_group_rules(**kw)
        seen += [x["SecurityGroupRuleId"] for x in r["SecurityGroupRules"]]
        token = r.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(x["SecurityGroupRuleId"] for x in rules)
    one = rules[0]["SecurityGroupRuleId"]
    got = ec2.describe_security_group_rules(SecurityGroupRuleIds=[one])["SecurityGroupRules"]
    assert [x["SecurityGroupRuleId"] for x in got] == [one]
    got = ec2.describe_security_group_rules(Filters=[{"Name": "security-group-rule-id", "Values": [one]}])
    assert len(got["SecurityGroupRules"]) == 1
    expect_code("InvalidSecurityGroupRuleId.NotFound", ec2.describe_security_group_rules,
                SecurityGroupRuleIds=["sgr-0123456789abcdef0"])
    cli = strato.aws("ec2", "describe-security-group-rules", "--filters", f"Name=group-id,Values={gid}")
    assert len(cli["SecurityGroupRules"]) == 12

    rule = [x for x in rules if not x["IsEgress"] and x["FromPort"] == 1000][0]["SecurityGroupRuleId"]
    ec2.modify_security_group_rules(GroupId=gid, SecurityGroupRules=[{
        "SecurityGroupRuleId": rule,
        "SecurityGroupRule": {"IpProtocol": "udp", "FromPort": 2000, "ToPort": 2001, "CidrIpv4": "10.1.0.0/16",
                              "Description": "changed"}}])
    (x,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule])["SecurityGroupRules"]
    assert (x["IpProtocol"], x["FromPort"], x["ToPort"], x["CidrIpv4"], x["Description"]) == (
        "udp", 2000, 2001, "10.1.0.0/16", "changed")
    # Becoming the same as another rule is a duplicate; DryRun changes nothing.
    expect_code("InvalidPermission.Duplicate", ec2.modify_security_group_rules, GroupId=gid, SecurityGroupRules=[{
        "SecurityGroupRuleId": rule,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 1001, "ToPort": 1001, "CidrIpv4": "0.0.0.0/0"}}])
    expect_code("DryRunOperation", ec2.modify_security_group_rules, GroupId=gid, DryRun=True, SecurityGroupRules=[{
        "SecurityGroupRuleId": rule,
        "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 7, "ToPort": 7, "CidrIpv4": "0.0.0.0/0"}}])
    (x,) = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule])["SecurityGroupRules"]
    assert x["FromPort"] == 2000
    expect_code("InvalidSecurityGroupRuleId.NotFound", ec2.modify_security_group_rules, GroupId=gid,
                SecurityGroupRules=[{"SecurityGroupRuleId": "sgr-0123456789abcdef0",
                                     "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"}}])
    # Filters on permissions.
    found = ec2.describe_security_groups(Filters=[
        {"Name": "ip-permission.from-port", "Values": ["2000"]},
        {"Name": "ip-permission.protocol", "Values": ["udp"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [gid]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.cidr", "Values": ["10.1.0.0/16"]}])
    assert [g["GroupId"] for g in found["SecurityGroups"]] == [gid]
    found = ec2.describe_security_groups(Filters=[
        {"Name": "egress.ip-permission.cidr", "Values": ["0.0.0.0/0"]}, {"Name": "group-id", "Values": [gid]}])
    assert len(found["SecurityGroups"]) == 1
    # The per-direction rule quota.
    expect_code("RulesPerSecurityGroupLimitExceeded", ec2.authorize_security_group_ingress, GroupId=gid,
                IpPermissions=[{"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
                               for p in range(3000, 3050)])


# --------------------------------------------------------------------------- instances in VPCs


def test_instances_in_subnets_with_groups(strato, ec2):
    vpc = new_vpc(ec2, "10.80.0.0/16")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]
    sn = subnet["SubnetId"]
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1, SubnetId=sn, SecurityGroupIds=[web, app])
    i = r["Instances"][0]
    assert (i["VpcId"], i["SubnetId"]) == (vpc, sn)
    assert i["Placement"]["AvailabilityZone"] == "us-east-1b", "the subnet's zone"
    assert sorted((g["GroupId"], g["GroupName"]) for g in i["SecurityGroups"]) == sorted([(web, "web"), (app, "app")])
    assert i["PrivateIpAddress"] == "10.80.1.4"
    assert i["PrivateDnsName"] == "ip-10-80-1-4.ec2.internal"
    iid = i["InstanceId"]
    # By name, in the subnet's VPC.
    (by_name,) = launch(ec2, SubnetId=sn, SecurityGroups=["app"])
    assert [g["GroupId"] for g in instance(ec2, by_name)["SecurityGroups"]] == [app]
    # With no group, the VPC's default group.
    (plain,) = launch(ec2, SubnetId=sn)
    assert [g["GroupName"] for g in instance(ec2, plain)["SecurityGroups"]] == ["default"]
    # The aws CLI, including the network-interface form --associate-public-ip-address produces.
    cli = strato.aws("ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--subnet-id", sn,
                     "--security-group-ids", web)["Instances"][0]
    assert cli["SubnetId"] == sn and [g["GroupId"] for g in cli["SecurityGroups"]] == [web]
    nic = strato.aws("ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--subnet-id", sn,
                     "--security-group-ids", app, "--associate-public-ip-address")["Instances"][0]
    assert nic["SubnetId"] == sn and [g["GroupId"] for g in nic["SecurityGroups"]] == [app]

    def ids_for(*filters):
        return sorted(x["InstanceId"] for res in ec2.describe_instances(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["Reservations"] for x in res["Instances"])

    everyone = sorted([iid, by_name, plain, cli["InstanceId"], nic["InstanceId"]])
    assert ids_for(("vpc-id", [vpc])) == everyone
    assert ids_for(("subnet-id", [sn])) == everyone
    assert ids_for(("instance.group-id", [web])) == sorted([iid, cli["InstanceId"]])
    assert ids_for(("instance.group-name", ["app"]), ("vpc-id", [vpc])) == sorted([iid, by_name, nic["InstanceId"]])
    assert ids_for(("private-ip-address", ["10.80.1.4"])) == [iid]
    assert ids_for(("private-dns-name", ["ip-10-80-1-4.ec2.internal"])) == [iid]

    # Errors: groups of another VPC, unknown groups, subnets and zones that do not match.
    default_sg = default_group(ec2, default_vpc(ec2)["VpcId"])["GroupId"]
    status, msg = expect_code("InvalidParameter", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1,
                              MaxCount=1, SubnetId=sn, SecurityGroupIds=[default_sg])
    assert "different networks" in msg
    expect_code("InvalidGroup.NotFound", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                SubnetId=sn, SecurityGroupIds=["sg-0123456789abcdef0"])
    expect_code("InvalidGroup.NotFound", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                SubnetId=sn, SecurityGroups=["no-such-group"])
    expect_code("InvalidSubnetID.NotFound", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                SubnetId="subnet-0123456789abcdef0")
    expect_code("InvalidParameterValue", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                SubnetId=sn, Placement={"AvailabilityZone": "us-east-1a"})
    expect_code("InvalidParameterCombination", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                SubnetId=sn, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": sn}])
    expect_code("DryRunOperation", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1, SubnetId=sn,
                DryRun=True)
    expect_code("InvalidParameter", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1, SubnetId=sn,
                SecurityGroupIds=[default_sg], DryRun=True)
    assert ids_for(("vpc-id", [vpc])) == everyone

    # Without a subnet: the default subnet of the chosen zone, and the default group.
    (d,) = launch(ec2, Placement={"AvailabilityZone": "us-east-1c"})
    di = instance(ec2, d)
    c_subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]},
                                             {"Name": "availability-zone", "Values": ["us-east-1c"]}])["Subnets"][0]
    assert di["SubnetId"] == c_subnet["SubnetId"] and di["PrivateIpAddress"].startswith("172.31.")
    assert [g["GroupId"] for g in di["SecurityGroups"]] == [default_sg]

    # The instance's groups can be changed, within its VPC.
    ec2.modify_instance_attribute(InstanceId=iid, Groups=[app])
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")
    assert attr["Groups"] == [{"GroupId": app, "GroupName": "app"}]
    expect_code("InvalidParameter", ec2.modify_instance_attribute, InstanceId=iid, Groups=[default_sg])
    expect_code("DryRunOperation", ec2.modify_instance_attribute, InstanceId=iid, Groups=[web], DryRun=True)
    assert [g["GroupId"] for g in instance(ec2, iid)["SecurityGroups"]] == [app]
    # web is now used only by the CLI instance.
    expect_code("DependencyViolation", ec2.delete_security_group, GroupId=web)
    ec2.terminate_instances(InstanceIds=[cli["InstanceId"]])
    wait_state(ec2, [cli["InstanceId"]], "terminated")
    ec2.delete_security_group(GroupId=web)


# --------------------------------------------------------------------------- gateways and routes


def test_internet_gateways(strato, ec2):
    vpc = new_vpc(ec2, "10.90.0.0/16")
    g = ec2.create_internet_gateway(TagSpecifications=tags("internet-gateway", Name="gw"))["InternetGateway"]
    igw = g["InternetGatewayId"]
    assert igw.startswith("igw-") and g["Attachments"] == [] and tag_dict(g) == {"Name": "gw"}
    expect_code("DryRunOperation", ec2.attach_internet_gateway, InternetGatewayId=igw, VpcId=vpc, DryRun=True)
    assert ec2.describe_internet_gateways(InternetGatewayIds=[igw])["InternetGateways"][0]["Attachments"] == []
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    got = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]
    assert [x["InternetGatewayId"] for x in got] == [igw]
    assert got[0]["Attachments"] == [{"VpcId": vpc, "State": "available"}]
    expect_code("Resource.AlreadyAssociated", ec2.attach_internet_gateway, InternetGatewayId=igw, VpcId=vpc)
    second = strato.aws("ec2", "create-internet-gateway")["InternetGateway"]["InternetGatewayId"]
    expect_code("Resource.AlreadyAssociated", ec2.attach_internet_gateway, InternetGatewayId=second, VpcId=vpc)
    expect_code("Gateway.NotAttached", ec2.detach_internet_gateway, InternetGatewayId=second, VpcId=vpc)
    expect_code("DependencyViolation", ec2.delete_internet_gateway, InternetGatewayId=igw)
    expect_code("InvalidVpcID.NotFound", ec2.attach_internet_gateway, InternetGatewayId=second,
                VpcId="vpc-0123456789abcdef0")
    expect_code("InvalidInternetGatewayID.NotFound", ec2.attach_internet_gateway,
                InternetGatewayId="igw-0123456789abcdef0", VpcId=vpc)
    expect_code("InvalidInternetGatewayID.Malformed", ec2.describe_internet_gateways, InternetGatewayIds=["igw-x"])
    ids = {x["InternetGatewayId"] for x in ec2.describe_internet_gateways(
        Filters=[{"Name": "internet-gateway-id", "Values": [igw, second]}])["InternetGateways"]}
    assert ids == {igw, second}
    assert [x["InternetGatewayId"] for x in ec2.describe_internet_gateways(
        Filters=[{"Name": "tag:Name", "Values": ["gw"]}])["InternetGateways"]] == [igw]
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    expect_code("DryRunOperation", ec2.delete_internet_gateway, InternetGatewayId=igw, DryRun=True)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    strato.aws("ec2", "delete-internet-gateway", "--internet-gateway-id", second)
    expect_code("InvalidInternetGatewayID.NotFound", ec2.describe_internet_gateways, InternetGatewayIds=[igw])


def test_route_tables(strato, ec2):
    vpc = new_vpc(ec2, "10.100.0.0/16")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.100.1.0/24")["Subnet"]["SubnetId"]
    r = ec2.create_route_table(VpcId=vpc, TagSpecifications=tags("route-table", Name="public"),
                               ClientToken="rtb-token-1")
    t = r["RouteTable"]
    rtb = t["RouteTableId"]
    assert r["ClientToken"] == "rtb-token-1"
    assert t["Routes"] == [{"DestinationCidrBlock": "10.100.0.0/16", "GatewayId": "local", "State": "active",
                            "Origin": "CreateRouteTable"}]
    assert t["Associations"] == [] and tag_dict(t) == {"Name": "public"}
    # A retry with the same token is the same table; with other parameters it is refused.
    assert ec2.create_route_table(VpcId=vpc, ClientToken="rtb-token-1")["RouteTable"]["RouteTableId"] == rtb
    expect_code("IdempotentParameterMismatch", ec2.create_route_table, VpcId=new_vpc(ec2, "10.101.0.0/16"),
                ClientToken="rtb-token-1")
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    expect_code("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0",
                GatewayId=igw)
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    expect_code("DryRunOperation", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0",
                GatewayId=igw, DryRun=True)
    assert ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)["Return"] is True
    strato.aws("ec2", "create-route", "--route-table-id", rtb, "--destination-cidr-block", "192.0.2.0/24",
               "--gateway-id", igw)
    expect_code("RouteAlreadyExists", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0",
                GatewayId=igw)
    expect_code("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.100.5.0/24",
                GatewayId=igw)
    expect_code("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="1.2.3.4/8",
                GatewayId=igw)
    expect_code("UnsupportedOperation", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="1.0.0.0/8",
                NatGatewayId="nat-0123456789abcdef0")
    expect_code("InvalidRouteTableID.NotFound", ec2.create_route, RouteTableId="rtb-0123456789abcdef0",
                DestinationCidrBlock="1.0.0.0/8", GatewayId=igw)

    a = ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
    assert a["AssociationId"].startswith("rtbassoc-") and a["AssociationState"]["State"] == "associated"
    expect_code("Resource.AlreadyAssociated", ec2.associate_route_table, RouteTableId=rtb, SubnetId=subnet)
    other_subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    expect_code("InvalidParameterValue", ec2.associate_route_table, RouteTableId=rtb,
                SubnetId=other_subnet["SubnetId"])
    expect_code("DependencyViolation", ec2.delete_route_table, RouteTableId=rtb)

    def ids_for(*filters):
        return sorted(x["RouteTableId"] for x in ec2.describe_route_tables(
            Filters=[{"Name": n, "Values": v} for n, v in filters])["RouteTables"])

    assert ids_for(("association.subnet-id", [subnet])) == [rtb]
    assert ids_for(("route.gateway-id", [igw])) == [rtb]
    assert ids_for(("route.destination-cidr-block", ["192.0.2.0/24"])) == [rtb]
    assert ids_for(("tag:Name", ["public"])) == [rtb]
    assert ids_for(("vpc-id", [vpc]), ("association.main", ["false"])) == [rtb]
    (main,) = [x for x in ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"]
               if x["RouteTableId"] != rtb]
    assert ids_for(("vpc-id", [vpc]), ("association.main", ["true"])) == [main["RouteTableId"]]

    # A detached gateway leaves blackholes behind.
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    (t,) = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"]
    assert {x["DestinationCidrBlock"]: x["State"] for x in t["Routes"]} == {
        "10.100.0.0/16": "active", "0.0.0.0/0": "blackhole", "192.0.2.0/24": "blackhole"}
    assert ids_for(("route.state", ["blackhole"])) == [rtb]

    expect_code("InvalidParameterValue", ec2.delete_route, RouteTableId=rtb, DestinationCidrBlock="10.100.0.0/16")
    expect_code("InvalidRoute.NotFound", ec2.delete_route, RouteTableId=rtb, DestinationCidrBlock="203.0.113.0/24")
    expect_code("DryRunOperation", ec2.delete_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", DryRun=True)
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0")
    strato.aws("ec2", "delete-route", "--route-table-id", rtb, "--destination-cidr-block", "192.0.2.0/24")

    main_assoc = main["Associations"][0]["RouteTableAssociationId"]
    expect_code("InvalidParameterValue", ec2.disassociate_route_table, AssociationId=main_assoc)
    expect_code("DependencyViolation", ec2.delete_route_table, RouteTableId=main["RouteTableId"])
    expect_code("DryRunOperation", ec2.disassociate_route_table, AssociationId=a["AssociationId"], DryRun=True)
    ec2.disassociate_route_table(AssociationId=a["AssociationId"])
    expect_code("InvalidAssociationID.NotFound", ec2.disassociate_route_table, AssociationId=a["AssociationId"])
    expect_code("DryRunOperation", ec2.delete_route_table, RouteTableId=rtb, DryRun=True)
    ec2.delete_route_table(RouteTableId=rtb)
    expect_code("InvalidRouteTableID.NotFound", ec2.describe_route_tables, RouteTableIds=[rtb])
    expect_code("InvalidRouteTableID.Malformed", ec2.describe_route_tables, RouteTableIds=["rtb-x"])
    # Deleting a subnet drops its explicit association.
    rtb2 = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=rtb2, SubnetId=subnet)
    ec2.delete_subnet(SubnetId=subnet)
    assert ec2.describe_route_tables(RouteTableIds=[rtb2])["RouteTables"][0]["Associations"] == []
    ec2.delete_route_table(RouteTableId=rtb2)


def test_dhcp_options(strato, ec2):
    vpc = default_vpc(ec2)
    dopt = vpc["DhcpOptionsId"]
    (d,) = ec2.describe_dhcp_options(DhcpOptionsIds=[dopt])["DhcpOptions"]
    assert d["OwnerId"] == vpc["OwnerId"]
    # New VPCs use the account's default options too.
    assert ec2.describe_vpcs(VpcIds=[new_vpc(ec2, "10.110.0.0/16")])["Vpcs"][0]["DhcpOptionsId"] == dopt
    for name, value in [("key", "domain-name"), ("value", "AmazonProvidedDNS"), ("dhcp-options-id", dopt)]:
        got = ec2.describe_dhcp_options(Filters=[{"Name": name, "Values": [value]}])["DhcpOptions"]
        assert [x["DhcpOptionsId"] for x in got] == [dopt]
    assert ec2.describe_dhcp_options(Filters=[{"Name": "value", "Values": ["nope"]}])["DhcpOptions"] == []
    expect_code("InvalidDhcpOptionID.NotFound", ec2.describe_dhcp_options, DhcpOptionsIds=["dopt-0123456789abcdef0"])
    cli = strato.aws("ec2", "describe-dhcp-options", "--dhcp-options-ids", dopt)
    assert cli["DhcpOptions"][0]["DhcpOptionsId"] == dopt


def test_tags_on_network_resources(strato, ec2):
    vpc = new_vpc(ec2, "10.120.0.0/16")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.120.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="tagged", Description="t", VpcId=vpc)["GroupId"]
    sgr = rules_of(ec2, sg)[0]["SecurityGroupRuleId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    dopt = default_vpc(ec2)["DhcpOptionsId"]
    ids = [vpc, subnet, sg, sgr, igw, rtb, dopt]
    marker = uid()
    ec2.create_tags(Resources=ids, Tags=[{"Key": "Marker", "Value": marker}])
    got = ec2.describe_tags(Filters=[{"Name": "value", "Values": [marker]}])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"]) for t in got) == sorted([
        (vpc, "vpc"), (subnet, "subnet"), (sg, "security-group"), (sgr, "security-group-rule"),
        (igw, "internet-gateway"), (rtb, "route-table"), (dopt, "dhcp-options")])
    assert tag_dict(ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]) == {"Marker": marker}
    assert tag_dict(ec2.describe_security_group_rules(SecurityGroupRuleIds=[sgr])["SecurityGroupRules"][0]) == {
        "Marker": marker}
    got = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["subnet"]},
                                     {"Name": "value", "Values": [marker]}])["Tags"]
    assert [t["ResourceId"] for t in got] == [subnet]
    strato.aws("ec2", "delete-tags", "--resources", vpc, "--tags", "Key=Marker")
    assert "Tags" not in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]
    expect_code("InvalidSubnetID.NotFound", ec2.create_tags, Resources=["subnet-0123456789abcdef0"],
                Tags=[{"Key": "a", "Value": "b"}])
    expect_code("InvalidGroup.NotFound", ec2.create_tags, Resources=["sg-0123456789abcdef0"],
                Tags=[{"Key": "a", "Value": "b"}])
    expect_code("InvalidParameterValue", ec2.create_vpc, CidrBlock="10.121.0.0/16",
                TagSpecifications=tags("subnet", a="b"))
    # A deleted resource takes its tags with it.
    ec2.delete_route_table(RouteTableId=rtb)
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [rtb]}])["Tags"] == []


# --------------------------------------------------------------------------- DryRun and tenancy


def snapshot(ec2):
    """Everything network-shaped the account has, for before/after comparisons."""
    return {
        "vpcs": ec2.describe_vpcs()["Vpcs"],
        "subnets": ec2.describe_subnets()["Subnets"],
        "groups": ec2.describe_security_groups()["SecurityGroups"],
        "rules": ec2.describe_security_group_rules()["SecurityGroupRules"],
        "igws": ec2.describe_internet_gateways()["InternetGateways"],
        "rtbs": ec2.describe_route_tables()["RouteTables"],
        "tags": ec2.describe_tags()["Tags"],
    }


def test_dry_run_changes_nothing(strato):
    ec2 = strato.client(strato.create_account(f"dry-{uid()}"))
    vpc = new_vpc(ec2, "10.130.0.0/16")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.130.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"]
    rule = rules_of(ec2, sg)[0]["SecurityGroupRuleId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    empty = new_vpc(ec2, "10.132.0.0/16")
    before = snapshot(ec2)
    perm = [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1, "IpRanges": [{"CidrIp": "1.1.1.1/32"}]}]
    calls = [
        (ec2.create_vpc, dict(CidrBlock="10.131.0.0/16")),
        (ec2.delete_vpc, dict(VpcId=empty)),
        (ec2.create_subnet, dict(VpcId=vpc, CidrBlock="10.130.2.0/24")),
        (ec2.delete_subnet, dict(SubnetId=subnet)),
        (ec2.create_security_group, dict(GroupName="h", Description="h", VpcId=vpc)),
        (ec2.delete_security_group, dict(GroupId=sg)),
        (ec2.authorize_security_group_ingress, dict(GroupId=sg, IpPermissions=perm)),
        (ec2.authorize_security_group_egress, dict(GroupId=sg, IpPermissions=perm)),
        (ec2.revoke_security_group_egress, dict(GroupId=sg, SecurityGroupRuleIds=[rule])),
        (ec2.modify_security_group_rules, dict(GroupId=sg, SecurityGroupRules=[{
            "SecurityGroupRuleId": rule, "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}}])),
        (ec2.create_internet_gateway, dict()),
        (ec2.attach_internet_gateway, dict(InternetGatewayId=igw, VpcId=vpc)),
        (ec2.delete_internet_gateway, dict(InternetGatewayId=igw)),
        (ec2.create_route_table, dict(VpcId=vpc)),
        (ec2.delete_route_table, dict(RouteTableId=rtb)),
        (ec2.associate_route_table, dict(RouteTableId=rtb, SubnetId=subnet)),
        (ec2.create_tags, dict(Resources=[vpc], Tags=[{"Key": "k", "Value": "v"}])),
    ]
    for fn, kw in calls:
        code, status, msg = client_error(fn, DryRun=True, **kw)
        assert (code, status) == ("DryRunOperation", 412), (fn.__name__, code, msg)
    for fn in (ec2.describe_vpcs, ec2.describe_subnets, ec2.describe_security_groups,
               ec2.describe_security_group_rules, ec2.describe_internet_gateways, ec2.describe_route_tables,
               ec2.describe_dhcp_options):
        code, status, _ = client_error(fn, DryRun=True)
        assert (code, status) == ("DryRunOperation", 412), fn.__name__
    assert snapshot(ec2) == before


def test_accounts_are_isolated(strato, ec2):
    """Account B can neither see nor change account A's VPCs, subnets, groups and rules,
    and cannot reference A's group in a rule of its own."""
    creds_b = strato.create_account(f"b-{uid()}")
    b = strato.client(creds_b)
    vpc = new_vpc(ec2, "10.140.0.0/16")
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.140.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="private", Description="a private group", VpcId=vpc)["GroupId"]
    rule = ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    )["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    owner_a = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["OwnerId"]
    before = snapshot(ec2)

    # B has its own default network, and nothing of A's in any listing.
    b_vpc = default_vpc(b)
    assert b_vpc["VpcId"] != default_vpc(ec2)["VpcId"] and b_vpc["OwnerId"] != owner_a
    for listing, key in [(b.describe_vpcs, "Vpcs"), (b.describe_subnets, "Subnets"),
                         (b.describe_security_groups, "SecurityGroups"),
                         (b.describe_security_group_rules, "SecurityGroupRules"),
                         (b.describe_internet_gateways, "InternetGateways"),
                         (b.describe_route_tables, "RouteTables"), (b.describe_dhcp_options, "DhcpOptions")]:
        for item in listing()[key]:
            assert owner_a not in (item.get("OwnerId"), item.get("GroupOwnerId")), (key, item)
    assert b.describe_vpcs(Filters=[{"Name": "owner-id", "Values": [owner_a]}])["Vpcs"] == []
    assert b.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"] == []

    # By id, A's resources do not exist for B.
    expect_code("InvalidVpcID.NotFound", b.describe_vpcs, VpcIds=[vpc])
    expect_code("InvalidSubnetID.NotFound", b.describe_subnets, SubnetIds=[subnet])
    expect_code("InvalidGroup.NotFound", b.describe_security_groups, GroupIds=[sg])
    expect_code("InvalidSecurityGroupRuleId.NotFound", b.describe_security_group_rules, SecurityGroupRuleIds=[rule])
    expect_code("InvalidInternetGatewayID.NotFound", b.describe_internet_gateways, InternetGatewayIds=[igw])
    expect_code("InvalidRouteTableID.NotFound", b.describe_route_tables, RouteTableIds=[rtb])
    assert aws_error(strato, "ec2", "describe-vpcs", "--vpc-ids", vpc, creds=creds_b) == "InvalidVpcID.NotFound"

    # Nor can B change them.
    expect_code("InvalidVpcID.NotFound", b.delete_vpc, VpcId=vpc)
    expect_code("InvalidVpcID.NotFound", b.modify_vpc_attribute, VpcId=vpc, EnableDnsHostnames={"Value": True})
    expect_code("InvalidVpcID.NotFound", b.create_subnet, VpcId=vpc, CidrBlock="10.140.2.0/24")
    expect_code("InvalidVpcID.NotFound", b.create_security_group, GroupName="x", Description="x", VpcId=vpc)
    expect_code("InvalidVpcID.NotFound", b.create_route_table, VpcId=vpc)
    expect_code("InvalidSubnetID.NotFound", b.delete_subnet, SubnetId=subnet)
    expect_code("InvalidSubnetID.NotFound", b.modify_subnet_attribute, SubnetId=subnet,
                MapPublicIpOnLaunch={"Value": True})
    expect_code("InvalidSubnetID.NotFound", b.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                SubnetId=subnet)
    expect_code("InvalidGroup.NotFound", b.delete_security_group, GroupId=sg)
    expect_code("InvalidGroup.NotFound", b.authorize_security_group_ingress, GroupId=sg, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    expect_code("InvalidGroup.NotFound", b.revoke_security_group_ingress, GroupId=sg, SecurityGroupRuleIds=[rule])
    expect_code("InvalidGroup.NotFound", b.modify_security_group_rules, GroupId=sg, SecurityGroupRules=[{
        "SecurityGroupRuleId": rule, "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "0.0.0.0/0"}}])
    expect_code("InvalidInternetGatewayID.NotFound", b.attach_internet_gateway, InternetGatewayId=igw,
                VpcId=b_vpc["VpcId"])
    expect_code("InvalidRouteTableID.NotFound", b.delete_route_table, RouteTableId=rtb)
    expect_code("InvalidVpcID.NotFound", b.create_tags, Resources=[vpc], Tags=[{"Key": "k", "Value": "v"}])
    expect_code("InvalidSecurityGroupRuleId.NotFound", b.create_tags, Resources=[rule],
                Tags=[{"Key": "k", "Value": "v"}])
    expect_code("InvalidGroup.NotFound", b.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                SecurityGroupIds=[sg])

    # Nor reference A's group in a rule of its own, with or without A's account id.
    mine = b.create_security_group(GroupName="mine", Description="b own group")["GroupId"]
    for pair in ({"GroupId": sg}, {"GroupId": sg, "UserId": owner_a}):
        expect_code("InvalidGroup.NotFound", b.authorize_security_group_ingress, GroupId=mine, IpPermissions=[
            {"IpProtocol": "-1", "UserIdGroupPairs": [pair]}])
    expect_code("InvalidGroup.NotFound", b.authorize_security_group_ingress, GroupId=mine,
                SourceSecurityGroupName="private", SourceSecurityGroupOwnerId=owner_a)

    assert snapshot(ec2) == before


def test_private_ip_address_on_launch(strato, ec2):
    vpc_id = new_vpc(ec2, cidr="10.77.0.0/16")
    subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
    (iid,) = launch(ec2, SubnetId=subnet, PrivateIpAddress="10.77.1.50")
    assert instance(ec2, iid)["PrivateIpAddress"] == "10.77.1.50"
    # The CLI spelling reaches the same parameter.
    assert aws_error(strato, "ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--subnet-id", subnet,
                     "--private-ip-address", "10.77.1.50") == "InvalidIPAddress.InUse"
    for bad, code in [("10.77.1.1", "InvalidParameterValue"),      # reserved (router)
                      ("10.77.1.255", "InvalidParameterValue"),    # reserved (broadcast)
                      ("10.77.2.9", "InvalidParameterValue"),      # outside the subnet
                      ("not-an-ip", "InvalidParameterValue")]:
        expect_code(code, ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                    SubnetId=subnet, PrivateIpAddress=bad)
    expect_code("InvalidParameterCombination", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=2,
                MaxCount=2, SubnetId=subnet, PrivateIpAddress="10.77.1.60")
    # Nothing was launched by the refused calls, and the address is free again once
    # its instance is terminated.
    running = ec2.describe_instances(Filters=[{"Name": "subnet-id", "Values": [subnet]}])["Reservations"]
    assert sum(len(r["Instances"]) for r in running) == 1
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    (again,) = launch(ec2, SubnetId=subnet, PrivateIpAddress="10.77.1.50")
    assert instance(ec2, again)["PrivateIpAddress"] == "10.77.1.50"
    ec2.terminate_instances(InstanceIds=[again])
