"""Every region on one endpoint: the region a request is signed for selects it, every
regional resource belongs to (account, region), each region has its own default VPC
and zones, and `--regions` limits what is served."""

from conftest import DEFAULT_IMAGE, Strato
from helpers import EC2_VERSION, expect_code, signed


def test_resources_are_invisible_across_regions(strato):
    us = strato.client(region="us-east-1")
    eu = strato.client(region="eu-west-1")
    # Key pairs: the same name in two regions, each seeing only its own.
    a = us.create_key_pair(KeyName="region-key")["KeyPairId"]
    b = eu.create_key_pair(KeyName="region-key")["KeyPairId"]
    assert a != b
    assert [k["KeyPairId"] for k in us.describe_key_pairs(KeyNames=["region-key"])["KeyPairs"]] == [a]
    assert [k["KeyPairId"] for k in eu.describe_key_pairs(KeyNames=["region-key"])["KeyPairs"]] == [b]
    # A VPC, its tags and its id belong to its region.
    vpc = eu.create_vpc(CidrBlock="10.97.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "in-ireland"}]}])["Vpc"]["VpcId"]
    expect_code("InvalidVpcID.NotFound", us.describe_vpcs, VpcIds=[vpc])
    expect_code("InvalidVpcID.NotFound", us.create_tags, Resources=[vpc], Tags=[{"Key": "k", "Value": "v"}])
    assert us.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"] == []
    assert eu.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"][0]["Value"] == "in-ireland"
    # Instances run in their region's zones, with the region's DNS names.
    r = eu.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    i = r["Instances"][0]
    assert i["Placement"]["AvailabilityZone"].startswith("eu-west-1")
    assert i["PrivateDnsName"].endswith(".eu-west-1.compute.internal")
    assert i["InstanceId"] not in {x["InstanceId"] for res in us.describe_instances()["Reservations"]
                                   for x in res["Instances"]}
    expect_code("InvalidInstanceID.NotFound", us.terminate_instances, InstanceIds=[i["InstanceId"]])
    expect_code("InvalidParameterValue", eu.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                Placement={"AvailabilityZone": "us-east-1a"})
    # Elastic IPs come from the one pool but belong to a region.
    alloc = eu.allocate_address(Domain="vpc")["AllocationId"]
    assert alloc not in {x["AllocationId"] for x in us.describe_addresses()["Addresses"]}
    expect_code("InvalidAllocationID.NotFound", us.release_address, AllocationId=alloc)
    eu.release_address(AllocationId=alloc)
    eu.terminate_instances(InstanceIds=[i["InstanceId"]])
    eu.delete_vpc(VpcId=vpc)
    us.delete_key_pair(KeyName="region-key")
    eu.delete_key_pair(KeyName="region-key")


def test_each_region_has_its_default_vpc_and_zones(strato):
    us = strato.client(region="us-east-1")
    eu = strato.client(region="eu-west-1")
    usw1 = strato.client(region="us-west-1")
    default = lambda c: c.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    [v_us], [v_eu], [v_w1] = default(us), default(eu), default(usw1)
    assert len({v_us["VpcId"], v_eu["VpcId"], v_w1["VpcId"]}) == 3
    assert v_eu["CidrBlock"] == "172.31.0.0/16"
    zones = lambda c, v: sorted(s["AvailabilityZone"] for s in c.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["Subnets"])
    assert zones(eu, v_eu) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    # us-west-1 has two zones, b and c, as AWS names them.
    assert zones(usw1, v_w1) == ["us-west-1b", "us-west-1c"]
    az = eu.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"], z["RegionName"]) for z in az] == [
        ("eu-west-1a", "euw1-az1", "eu-west-1"), ("eu-west-1b", "euw1-az2", "eu-west-1"),
        ("eu-west-1c", "euw1-az3", "eu-west-1")]
    # The default VPC's DHCP options name the region's internal domain.
    dopt = eu.describe_dhcp_options(DhcpOptionsIds=[v_eu["DhcpOptionsId"]])["DhcpOptions"][0]
    conf = {c["Key"]: [x["Value"] for x in c["Values"]] for c in dopt["DhcpConfigurations"]}
    assert conf["domain-name"] == ["eu-west-1.compute.internal"]
    # The aws CLI picks the region the same way.
    out = strato.aws("ec2", "describe-availability-zones", "--region", "ap-southeast-2")
    assert [z["ZoneName"] for z in out["AvailabilityZones"]] == [
        "ap-southeast-2a", "ap-southeast-2b", "ap-southeast-2c"]


def test_served_regions_are_configurable():
    s = Strato(extra_args=["--regions", "us-east-1,eu-west-1"]).start()
    try:
        r = s.client(region="eu-west-1").describe_regions()["Regions"]
        assert sorted(x["RegionName"] for x in r) == ["eu-west-1", "us-east-1"]
        every = {x["RegionName"]: x["OptInStatus"]
                 for x in s.client().describe_regions(AllRegions=True)["Regions"]}
        assert every["af-south-1"] == "not-opted-in" and every["eu-west-1"] == "opt-in-not-required"
        # A region not served answers as EC2 does for one that does not exist.
        r = signed(s, {"Action": "DescribeRegions", "Version": EC2_VERSION}, region="us-west-2")
        r.assert_ec2_error("AuthFailure", 401)
        assert "us-west-2" in r.text
    finally:
        s.stop()
    # The default region must be served.
    bad = Strato(extra_args=["--regions", "eu-west-1"])
    try:
        bad.start()
        raise AssertionError("strato up accepted a default region it does not serve")
    except RuntimeError as e:
        assert "not among --regions" in str(e)
    finally:
        bad.stop()
