"""Elastic IPs: AllocateAddress, DescribeAddresses, AssociateAddress,
DisassociateAddress, ReleaseAddress; their error codes, DryRun, filters, the public
address on DescribeInstances, termination, pool and per-account limits, tenancy."""

import ipaddress

import pytest

from conftest import Strato
from helpers import aws_error, client_error, expect_code, instance, launch, tag_dict, wait_state

POOL = ipaddress.ip_network("198.51.100.0/24")
MISSING_ALLOC = "eipalloc-0123456789abcdef0"


@pytest.fixture(scope="module")
def running(ec2):
    """Two running instances of the default account."""
    ids = launch(ec2, count=2, wait="running")
    return ids


def addresses(ec2, **kw):
    return ec2.describe_addresses(**kw)["Addresses"]


def by_alloc(ec2, alloc):
    (a,) = addresses(ec2, AllocationIds=[alloc])
    return a


def release_all(ec2):
    for a in addresses(ec2):
        if "AssociationId" in a:
            ec2.disassociate_address(AssociationId=a["AssociationId"])
        ec2.release_address(AllocationId=a["AllocationId"])


def test_allocate_describe_release(ec2):
    r = ec2.allocate_address(Domain="vpc")
    alloc, ip = r["AllocationId"], r["PublicIp"]
    assert alloc.startswith("eipalloc-") and len(alloc) == len("eipalloc-") + 17
    assert r["Domain"] == "vpc"
    assert ipaddress.ip_address(ip) in POOL
    assert ip not in ("198.51.100.0", "198.51.100.255")
    a = by_alloc(ec2, alloc)
    assert a["PublicIp"] == ip and a["Domain"] == "vpc"
    assert "AssociationId" not in a and "InstanceId" not in a
    assert addresses(ec2, PublicIps=[ip])[0]["AllocationId"] == alloc
    ec2.release_address(AllocationId=alloc)
    expect_code("InvalidAllocationID.NotFound", ec2.describe_addresses, AllocationIds=[alloc])
    expect_code("InvalidAddress.NotFound", ec2.describe_addresses, PublicIps=[ip])
    # The address went back to the pool: the next allocation gets it again.
    r2 = ec2.allocate_address(Domain="vpc")
    assert r2["PublicIp"] == ip and r2["AllocationId"] != alloc
    ec2.release_address(PublicIp=ip)
    assert addresses(ec2) == []


def test_malformed_and_missing_ids(ec2):
    expect_code("InvalidAllocationID.Malformed", ec2.describe_addresses, AllocationIds=["eipalloc-zz"])
    expect_code("InvalidAllocationID.NotFound", ec2.describe_addresses, AllocationIds=[MISSING_ALLOC])
    expect_code("InvalidAllocationID.NotFound", ec2.release_address, AllocationId=MISSING_ALLOC)
    expect_code("InvalidAddress.NotFound", ec2.release_address, PublicIp="198.51.100.77")
    expect_code("InvalidAssociationID.NotFound", ec2.disassociate_address,
                AssociationId="eipassoc-0123456789abcdef0")
    expect_code("InvalidAllocationID.NotFound", ec2.associate_address,
                AllocationId=MISSING_ALLOC, InstanceId="i-0123456789abcdef0")
    expect_code("MissingParameter", ec2.release_address)


def test_dry_run_changes_nothing(ec2, running):
    code, status, _ = client_error(ec2.allocate_address, Domain="vpc", DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert addresses(ec2) == []
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    code, status, _ = client_error(ec2.associate_address, AllocationId=alloc, InstanceId=running[0],
                                   DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert "AssociationId" not in by_alloc(ec2, alloc)
    assoc = ec2.associate_address(AllocationId=alloc, InstanceId=running[0])["AssociationId"]
    code, status, _ = client_error(ec2.disassociate_address, AssociationId=assoc, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert by_alloc(ec2, alloc)["AssociationId"] == assoc
    ec2.disassociate_address(AssociationId=assoc)
    code, status, _ = client_error(ec2.release_address, AllocationId=alloc, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert by_alloc(ec2, alloc)
    code, status, _ = client_error(ec2.describe_addresses, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    ec2.release_address(AllocationId=alloc)


def test_associate_shows_on_instance_and_filters(ec2, running):
    a, b = running
    r = ec2.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": "web"}]}])
    alloc, ip = r["AllocationId"], r["PublicIp"]
    assoc = ec2.associate_address(AllocationId=alloc, InstanceId=a)["AssociationId"]
    assert assoc.startswith("eipassoc-")
    got = by_alloc(ec2, alloc)
    inst = instance(ec2, a)
    assert got["InstanceId"] == a and got["AssociationId"] == assoc
    assert got["PrivateIpAddress"] == inst["PrivateIpAddress"]
    assert tag_dict(got) == {"Name": "web"}
    assert inst["PublicIpAddress"] == ip
    assert inst["PublicDnsName"] == f"ec2-{ip.replace('.', '-')}.compute-1.amazonaws.com"
    r = ec2.describe_instances(Filters=[{"Name": "ip-address", "Values": [ip]}])
    assert [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]] == [a]
    for name, value in [("allocation-id", alloc), ("association-id", assoc), ("domain", "vpc"),
                        ("instance-id", a), ("private-ip-address", inst["PrivateIpAddress"]),
                        ("public-ip", ip), ("tag:Name", "web")]:
        got = addresses(ec2, Filters=[{"Name": name, "Values": [value]}])
        assert [x["AllocationId"] for x in got] == [alloc], name
    assert addresses(ec2, Filters=[{"Name": "instance-id", "Values": [b]}]) == []
    assert addresses(ec2, Filters=[{"Name": "network-interface-id", "Values": ["eni-12345678"]}]) == []
    expect_code("InvalidParameterValue", ec2.describe_addresses, Filters=[{"Name": "bogus", "Values": ["x"]}])
    # CreateTags on the allocation.
    ec2.create_tags(Resources=[alloc], Tags=[{"Key": "env", "Value": "prod"}])
    assert tag_dict(by_alloc(ec2, alloc)) == {"Name": "web", "env": "prod"}
    t = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [alloc]}])["Tags"]
    assert {x["ResourceType"] for x in t} == {"elastic-ip"}

    # Associated: release refused.
    expect_code("InvalidIPAddress.InUse", ec2.release_address, AllocationId=alloc)
    # Reassociation needs AllowReassociation.
    expect_code("Resource.AlreadyAssociated", ec2.associate_address, AllocationId=alloc, InstanceId=b)
    expect_code("Resource.AlreadyAssociated", ec2.associate_address, AllocationId=alloc, InstanceId=b,
                AllowReassociation=False)
    assoc2 = ec2.associate_address(AllocationId=alloc, InstanceId=b, AllowReassociation=True)["AssociationId"]
    assert assoc2 != assoc
    # The instance the address left gets an auto-assigned one again (it was launched
    # into a default subnet, which maps public addresses), as in EC2.
    after = instance(ec2, a)
    assert after.get("PublicIpAddress") not in (None, ip)
    assert after["PublicDnsName"] == f"ec2-{after['PublicIpAddress'].replace('.', '-')}.compute-1.amazonaws.com"
    assert instance(ec2, b)["PublicIpAddress"] == ip
    expect_code("InvalidAssociationID.NotFound", ec2.disassociate_address, AssociationId=assoc)
    # Disassociate by public address.
    ec2.disassociate_address(PublicIp=ip)
    assert "AssociationId" not in by_alloc(ec2, alloc)
    assert instance(ec2, b).get("PublicIpAddress") != ip
    release_all(ec2)


def test_associate_by_public_ip_and_replace_instance_address(ec2, running):
    a, _ = running
    first = ec2.allocate_address(Domain="vpc")
    second = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(PublicIp=first["PublicIp"], InstanceId=a)
    assert instance(ec2, a)["PublicIpAddress"] == first["PublicIp"]
    # A second address on the same instance replaces the first, which stays allocated.
    ec2.associate_address(AllocationId=second["AllocationId"], InstanceId=a)
    assert instance(ec2, a)["PublicIpAddress"] == second["PublicIp"]
    assert "AssociationId" not in by_alloc(ec2, first["AllocationId"])
    assert by_alloc(ec2, second["AllocationId"])["InstanceId"] == a
    release_all(ec2)


def test_instance_state_rules(ec2):
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    expect_code("InvalidInstanceID.NotFound", ec2.associate_address, AllocationId=alloc,
                InstanceId="i-0123456789abcdef0")
    expect_code("InvalidInstanceID.Malformed", ec2.associate_address, AllocationId=alloc, InstanceId="i-zz")
    expect_code("MissingParameter", ec2.associate_address, AllocationId=alloc)
    (iid,) = launch(ec2, wait="running")
    # A stopped instance keeps its address.
    assoc = ec2.associate_address(AllocationId=alloc, InstanceId=iid)["AssociationId"]
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    assert by_alloc(ec2, alloc)["AssociationId"] == assoc
    # Terminating disassociates it; the allocation stays.
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    got = by_alloc(ec2, alloc)
    assert "AssociationId" not in got and "InstanceId" not in got
    assert "PublicIpAddress" not in instance(ec2, iid)
    expect_code("IncorrectInstanceState", ec2.associate_address, AllocationId=alloc, InstanceId=iid)
    ec2.release_address(AllocationId=alloc)


def test_account_limit_and_pool_exhaustion():
    s = Strato(extra_args=["--public-ip-pool", "198.51.100.0/29", "--public-ips-per-account", "6"]).start()
    try:
        ec2 = s.client()
        ips = [ec2.allocate_address(Domain="vpc")["PublicIp"] for _ in range(5)]
        assert ips == [f"198.51.100.{n}" for n in range(1, 6)]
        # The account limit (vpc-max-elastic-ips).
        attrs = ec2.describe_account_attributes(AttributeNames=["vpc-max-elastic-ips"])
        assert attrs["AccountAttributes"][0]["AttributeValues"][0]["AttributeValue"] == "5"
        expect_code("AddressLimitExceeded", ec2.allocate_address, Domain="vpc")
        # Another account gets the pool's last address, then the pool is exhausted
        # (198.51.100.7 is the broadcast address and never handed out).
        other = s.client(s.create_account("other"))
        assert other.allocate_address(Domain="vpc")["PublicIp"] == "198.51.100.6"
        expect_code("AddressLimitExceeded", other.allocate_address, Domain="vpc")
        # Releasing gives the address back to the pool, for any account.
        ec2.release_address(PublicIp="198.51.100.3")
        assert other.allocate_address(Domain="vpc")["PublicIp"] == "198.51.100.3"
        # The aws CLI sees the same.
        out = s.aws("ec2", "describe-addresses", "--filters", "Name=public-ip,Values=198.51.100.1")
        assert [a["PublicIp"] for a in out["Addresses"]] == ["198.51.100.1"]
    finally:
        s.cleanup()


def test_no_account_takes_more_than_its_share_of_the_pool():
    # A /28 has 14 usable addresses: each account may hold half, 7, across its regions.
    s = Strato(extra_args=["--public-ip-pool", "198.51.100.0/28"]).start()
    try:
        us, eu = s.client(), s.client(region="eu-west-1")
        mine = [us.allocate_address(Domain="vpc")["AllocationId"] for _ in range(5)]
        mine += [eu.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2)]
        _, msg = expect_code("AddressLimitExceeded", eu.allocate_address, Domain="vpc")
        assert "share of the public address pool (7)" in msg
        # Instances of the account launch without a public address, as with an empty pool.
        [iid] = launch(us, wait="running")
        assert "PublicIpAddress" not in instance(us, iid)
        # Another account still gets addresses, for its instances too.
        other = s.client(s.create_account("other"))
        [oid] = launch(other, wait="running")
        assert instance(other, oid)["PublicIpAddress"].startswith("198.51.100.")
        # Releasing one gives the account room again.
        us.release_address(AllocationId=mine[0])
        assert us.allocate_address(Domain="vpc")["PublicIp"].startswith("198.51.100.")
    finally:
        s.cleanup()


def test_bad_pool_is_refused_at_startup():
    s = Strato(extra_args=["--public-ip-pool", "198.51.100.1/24"])
    with pytest.raises(RuntimeError):
        s.start()
    s.cleanup()


def test_aws_cli(strato, ec2, running):
    out = strato.aws("ec2", "allocate-address", "--domain", "vpc")
    alloc = out["AllocationId"]
    out = strato.aws("ec2", "associate-address", "--allocation-id", alloc, "--instance-id", running[1])
    assert out["AssociationId"].startswith("eipassoc-")
    out = strato.aws("ec2", "describe-addresses", "--allocation-ids", alloc)
    assert out["Addresses"][0]["InstanceId"] == running[1]
    assert aws_error(strato, "ec2", "release-address", "--allocation-id", alloc) == "InvalidIPAddress.InUse"
    strato.aws("ec2", "disassociate-address", "--association-id", out["Addresses"][0]["AssociationId"])
    strato.aws("ec2", "release-address", "--allocation-id", alloc)
    assert addresses(ec2) == []


def test_tenancy(strato, ec2, running):
    ec2b = strato.client(strato.create_account("eip-b"))
    r = ec2.allocate_address(Domain="vpc")
    alloc, ip = r["AllocationId"], r["PublicIp"]
    assoc = ec2.associate_address(AllocationId=alloc, InstanceId=running[0])["AssociationId"]
    # B sees none of it, by id, by address, or listing.
    assert addresses(ec2b) == []
    expect_code("InvalidAllocationID.NotFound", ec2b.describe_addresses, AllocationIds=[alloc])
    expect_code("InvalidAddress.NotFound", ec2b.describe_addresses, PublicIps=[ip])
    expect_code("InvalidAllocationID.NotFound", ec2b.release_address, AllocationId=alloc)
    expect_code("InvalidAddress.NotFound", ec2b.release_address, PublicIp=ip)
    expect_code("InvalidAssociationID.NotFound", ec2b.disassociate_address, AssociationId=assoc)
    expect_code("InvalidAddress.NotFound", ec2b.disassociate_address, PublicIp=ip)
    expect_code("InvalidAllocationID.NotFound", ec2b.create_tags, Resources=[alloc],
                Tags=[{"Key": "k", "Value": "v"}])
    # B cannot point its own address at A's instance.
    b_alloc = ec2b.allocate_address(Domain="vpc")["AllocationId"]
    assert ec2b.describe_addresses()["Addresses"][0]["PublicIp"] != ip
    expect_code("InvalidInstanceID.NotFound", ec2b.associate_address, AllocationId=b_alloc,
                InstanceId=running[0], AllowReassociation=True)
    # A's address is untouched.
    got = by_alloc(ec2, alloc)
    assert got["AssociationId"] == assoc and instance(ec2, running[0])["PublicIpAddress"] == ip
    ec2b.release_address(AllocationId=b_alloc)
    release_all(ec2)


def test_auto_assigned_public_addresses_follow_the_instance_lifecycle(ec2):
    """Default subnets map public addresses on launch; AssociatePublicIpAddress
    overrides the subnet either way; stopping gives the address back and starting takes
    a new one; terminating frees it for others."""
    (iid,) = launch(ec2, wait="running")
    first = instance(ec2, iid)["PublicIpAddress"]
    assert ipaddress.ip_address(first) in POOL
    r = ec2.describe_instances(Filters=[{"Name": "ip-address", "Values": [first]}])
    assert [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]] == [iid]
    nic = instance(ec2, iid)["NetworkInterfaces"][0]
    assert nic["Association"]["PublicIp"] == first and nic["Association"]["IpOwnerId"] == "amazon"
    # Nobody else gets it while it is held, not even as an Elastic IP.
    alloc = ec2.allocate_address(Domain="vpc")
    assert alloc["PublicIp"] != first
    ec2.release_address(AllocationId=alloc["AllocationId"])

    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    assert "PublicIpAddress" not in instance(ec2, iid)
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "running")
    assert ipaddress.ip_address(instance(ec2, iid)["PublicIpAddress"]) in POOL

    # Opting out in a subnet that maps addresses, and opting in where it does not.
    subnet = instance(ec2, iid)["SubnetId"]
    off = ec2.run_instances(ImageId="ami-05a9d2c7e4b1f3801", InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet,
                                                "AssociatePublicIpAddress": False}])["Instances"][0]
    assert "PublicIpAddress" not in off
    vpc = ec2.create_vpc(CidrBlock="10.66.0.0/16")["Vpc"]["VpcId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.66.1.0/24")["Subnet"]["SubnetId"]
    plain = ec2.run_instances(ImageId="ami-05a9d2c7e4b1f3801", InstanceType="t3.nano", MinCount=1, MaxCount=1,
                              SubnetId=private)["Instances"][0]
    assert "PublicIpAddress" not in plain
    on = ec2.run_instances(ImageId="ami-05a9d2c7e4b1f3801", InstanceType="t3.nano", MinCount=1, MaxCount=1,
                           NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": private,
                                               "AssociatePublicIpAddress": True}])["Instances"][0]
    assert ipaddress.ip_address(on["PublicIpAddress"]) in POOL

    held = instance(ec2, iid)["PublicIpAddress"]
    ids = [iid, off["InstanceId"], plain["InstanceId"], on["InstanceId"]]
    ec2.terminate_instances(InstanceIds=ids)
    wait_state(ec2, ids, "terminated")
    assert "PublicIpAddress" not in instance(ec2, iid)
    # Freed: the lowest free address of the pool is available again.
    again = ec2.allocate_address(Domain="vpc")
    assert ipaddress.ip_address(again["PublicIp"]) <= ipaddress.ip_address(held)
    ec2.release_address(AllocationId=again["AllocationId"])
