"""ReplaceRoute, ReplaceRouteTableAssociation and every VPC's default network ACL, in
the order Terraform's aws_vpc, aws_route and aws_route_table_association call them."""

from helpers import expect_code


def vpc_with_igw(ec2, cidr):
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    return vpc, igw


def cleanup(ec2, vpc, igw, subnets=(), tables=()):
    for s in subnets:
        ec2.delete_subnet(SubnetId=s)
    for t in tables:
        ec2.delete_route_table(RouteTableId=t)
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    ec2.delete_vpc(VpcId=vpc)


def routes_of(ec2, table):
    t = ec2.describe_route_tables(RouteTableIds=[table])["RouteTables"][0]
    return {r["DestinationCidrBlock"]: r.get("GatewayId") for r in t["Routes"]}


def test_replace_route(strato, ec2):
    vpc, igw = vpc_with_igw(ec2, "10.93.0.0/16")
    igw2 = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    try:
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        expect_code("InvalidRoute.NotFound", ec2.replace_route, RouteTableId=table,
                    DestinationCidrBlock="192.0.2.0/24", GatewayId=igw)
        # A gateway not attached to the table's VPC is refused, and nothing changes.
        expect_code("InvalidParameterValue", ec2.replace_route, RouteTableId=table,
                    DestinationCidrBlock="0.0.0.0/0", GatewayId=igw2)
        expect_code("InvalidParameterValue", ec2.replace_route, RouteTableId=table,
                    DestinationCidrBlock="10.93.0.0/16", GatewayId=igw)
        expect_code("DryRunOperation", ec2.replace_route, RouteTableId=table,
                    DestinationCidrBlock="0.0.0.0/0", GatewayId=igw, DryRun=True)
        ec2.replace_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        assert routes_of(ec2, table) == {"10.93.0.0/16": "local", "0.0.0.0/0": igw}
        # Targets Strato does not have are refused by name.
        expect_code("UnsupportedOperation", ec2.replace_route, RouteTableId=table,
                    DestinationCidrBlock="0.0.0.0/0", NatGatewayId="nat-0123456789abcdef0")
    finally:
        ec2.delete_internet_gateway(InternetGatewayId=igw2)
        cleanup(ec2, vpc, igw, tables=[table])


def test_replace_route_table_association(strato, ec2):
    vpc, igw = vpc_with_igw(ec2, "10.94.0.0/16")
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.94.1.0/24")["Subnet"]["SubnetId"]
    a = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    b = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    other = ec2.create_vpc(CidrBlock="10.95.0.0/16")["Vpc"]["VpcId"]
    c = ec2.create_route_table(VpcId=other)["RouteTable"]["RouteTableId"]
    try:
        assoc = ec2.associate_route_table(RouteTableId=a, SubnetId=sub)["AssociationId"]
        expect_code("InvalidParameterValue", ec2.replace_route_table_association, AssociationId=assoc, RouteTableId=c)
        expect_code("InvalidAssociationID.NotFound", ec2.replace_route_table_association,
                    AssociationId="rtbassoc-0123456789abcdef0", RouteTableId=b)
        r = ec2.replace_route_table_association(AssociationId=assoc, RouteTableId=b)
        new = r["NewAssociationId"]
        assert new != assoc and r["AssociationState"]["State"] == "associated"
        tables = {t["RouteTableId"]: t for t in ec2.describe_route_tables(
            Filters=[{"Name": "association.subnet-id", "Values": [sub]}])["RouteTables"]}
        assert list(tables) == [b]
        assert [x["RouteTableAssociationId"] for x in tables[b]["Associations"]] == [new]
        # The main association moves too: the other table becomes the VPC's main one.
        main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                  {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
        main_assoc = [x for x in main["Associations"] if x["Main"]][0]["RouteTableAssociationId"]
        ec2.replace_route_table_association(AssociationId=main_assoc, RouteTableId=a)
        now_main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                                      {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        assert [t["RouteTableId"] for t in now_main] == [a]
        back = [x for x in now_main[0]["Associations"] if x["Main"]][0]["RouteTableAssociationId"]
        ec2.replace_route_table_association(AssociationId=back, RouteTableId=main["RouteTableId"])
        ec2.disassociate_route_table(AssociationId=new)
    finally:
        ec2.delete_route_table(RouteTableId=c)
        ec2.delete_vpc(VpcId=other)
        cleanup(ec2, vpc, igw, subnets=[sub], tables=[a, b])


def test_default_network_acl(strato, ec2):
    vpc = ec2.create_vpc(CidrBlock="10.96.0.0/16")["Vpc"]["VpcId"]
    s1 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.96.1.0/24")["Subnet"]["SubnetId"]
    s2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.96.2.0/24")["Subnet"]["SubnetId"]
    try:
        # Terraform's aws_vpc read: the default ACL of the VPC.
        acls = ec2.describe_network_acls(Filters=[{"Name": "default", "Values": ["true"]},
                                                  {"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]
        assert len(acls) == 1
        acl = acls[0]
        assert acl["IsDefault"] is True and acl["VpcId"] == vpc and acl["NetworkAclId"].startswith("acl-")
        assert sorted(x["SubnetId"] for x in acl["Associations"]) == sorted([s1, s2])
        rules = {(e["RuleNumber"], e["Egress"]): e["RuleAction"] for e in acl["Entries"]}
        assert rules == {(100, False): "allow", (32767, False): "deny", (100, True): "allow", (32767, True): "deny"}
        # Stable, found by id and by subnet, taggable.
        aid = acl["NetworkAclId"]
        assert ec2.describe_network_acls(NetworkAclIds=[aid])["NetworkAcls"][0]["NetworkAclId"] == aid
        by_subnet = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [s2]}])
        assert [a["NetworkAclId"] for a in by_subnet["NetworkAcls"]] == [aid]
        ec2.create_tags(Resources=[aid], Tags=[{"Key": "Name", "Value": "default-acl"}])
        tagged = ec2.describe_network_acls(Filters=[{"Name": "tag:Name", "Values": ["default-acl"]}])["NetworkAcls"]
        assert [a["NetworkAclId"] for a in tagged] == [aid]
        # Every VPC has one, the default VPC included; other accounts see none of them.
        assert len(ec2.describe_network_acls()["NetworkAcls"]) >= 2
        other = strato.client(strato.create_account("acl-other"))
        expect_code("InvalidNetworkAclID.NotFound", other.describe_network_acls, NetworkAclIds=[aid])
        expect_code("InvalidNetworkAclID.Malformed", ec2.describe_network_acls, NetworkAclIds=["acl-xyz"])
        expect_code("InvalidParameterValue", ec2.describe_network_acls,
                    Filters=[{"Name": "colour", "Values": ["x"]}])
    finally:
        ec2.delete_subnet(SubnetId=s1)
        ec2.delete_subnet(SubnetId=s2)
        ec2.delete_vpc(VpcId=vpc)
