"""Catalog actions: instance types and offerings, images, regions, zones, account
attributes, and STS GetCallerIdentity."""

import pytest

from conftest import DEFAULT_IMAGE
from helpers import aws_error, client_error, expect_code

# Real EC2 figures: (vCPUs, MiB).
EXPECTED_TYPES = {
    "t2.nano": (1, 512), "t2.micro": (1, 1024), "t2.small": (1, 2048), "t2.medium": (2, 4096),
    "t3.nano": (2, 512), "t3.micro": (2, 1024), "t3.small": (2, 2048), "t3.medium": (2, 4096),
    "t3.large": (2, 8192), "t3.xlarge": (4, 16384), "t3.2xlarge": (8, 32768),
    "m5.large": (2, 8192), "m5.xlarge": (4, 16384), "m5.2xlarge": (8, 32768), "m5.4xlarge": (16, 65536),
    "c5.large": (2, 4096), "c5.xlarge": (4, 8192), "c5.2xlarge": (8, 16384), "c5.4xlarge": (16, 32768),
    "r5.large": (2, 16384), "r5.xlarge": (4, 32768), "r5.2xlarge": (8, 65536),
    "i3.large": (2, 15616), "i3.xlarge": (4, 31232), "i3.2xlarge": (8, 62464),
    "i4i.large": (2, 16384), "i4i.xlarge": (4, 32768), "i4i.2xlarge": (8, 65536),
    "d3.xlarge": (4, 32768), "d3.2xlarge": (8, 65536),
}


def all_types(ec2, **kw):
    out = []
    for page in ec2.get_paginator("describe_instance_types").paginate(**kw):
        out += page["InstanceTypes"]
    return out


# --------------------------------------------------------------------------- instance types


def test_instance_types_real_figures(ec2):
    types = {t["InstanceType"]: t for t in all_types(ec2)}
    assert {n.split(".")[0] for n in types} == {"t2", "t3", "m5", "c5", "r5", "i3", "i4i", "d3"}
    for name, (vcpus, mib) in EXPECTED_TYPES.items():
        assert name in types, name
        t = types[name]
        assert t["VCpuInfo"]["DefaultVCpus"] == vcpus, name
        assert t["MemoryInfo"]["SizeInMiB"] == mib, name
        assert t["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
        assert t["CurrentGeneration"] is True
        assert t["BurstablePerformanceSupported"] is name.startswith("t")
        assert t["Hypervisor"] == ("xen" if name.startswith("t2") else "nitro")
    assert types["t2.micro"]["FreeTierEligible"] is True
    assert types["m5.large"]["FreeTierEligible"] is False


def test_instance_types_by_name_and_filters(strato, ec2):
    r = ec2.describe_instance_types(InstanceTypes=["m5.large", "c5.xlarge"])
    assert sorted(t["InstanceType"] for t in r["InstanceTypes"]) == ["c5.xlarge", "m5.large"]
    names = lambda **kw: sorted(t["InstanceType"] for t in all_types(ec2, **kw))
    assert names(Filters=[{"Name": "vcpu-info.default-vcpus", "Values": ["4"]}]) == [
        "c5.xlarge", "d3.xlarge", "i3.xlarge", "i4i.xlarge", "m5.xlarge", "r5.xlarge", "t3.xlarge"]
    assert names(Filters=[{"Name": "instance-type", "Values": ["r5.*"]}]) == ["r5.2xlarge", "r5.large", "r5.xlarge"]
    assert names(Filters=[{"Name": "free-tier-eligible", "Values": ["true"]}]) == ["t2.micro", "t3.micro"]
    assert names(Filters=[{"Name": "memory-info.size-in-mib", "Values": ["16384"]},
                          {"Name": "burstable-performance-supported", "Values": ["false"]}]) == [
        "c5.2xlarge", "i4i.large", "m5.xlarge", "r5.large"]
    d = strato.aws("ec2", "describe-instance-types", "--instance-types", "t3.micro")
    assert [(t["InstanceType"], t["VCpuInfo"]["DefaultVCpus"], t["MemoryInfo"]["SizeInMiB"])
            for t in d["InstanceTypes"]] == [("t3.micro", 2, 1024)]


def test_instance_type_filters_take_the_answers_values(ec2):
    # vcpu-info.default-vcpus selects exactly the types with that many vCPUs.
    names = lambda *f: sorted(t["InstanceType"] for t in all_types(
        ec2, Filters=[{"Name": n, "Values": v} for n, v in f]))
    for vcpus in (1, 2, 8, 16):
        assert names(("vcpu-info.default-vcpus", [str(vcpus)])) == sorted(
            n for n, (v, _) in EXPECTED_TYPES.items() if v == vcpus), vcpus
    assert names(("vcpu-info.default-vcpus", ["3"])) == []
    # Values read back from an answer select the type they were read from.
    t = ec2.describe_instance_types(InstanceTypes=["m5.2xlarge"])["InstanceTypes"][0]
    read_back = [
        ("vcpu-info.valid-cores", [str(t["VCpuInfo"]["ValidCores"][-1])]),
        ("processor-info.sustained-clock-speed-in-ghz", [str(t["ProcessorInfo"]["SustainedClockSpeedInGhz"])]),
        ("network-info.efa-supported", [str(t["NetworkInfo"]["EfaSupported"]).lower()]),
        ("network-info.maximum-network-cards", [str(t["NetworkInfo"]["MaximumNetworkCards"])]),
        ("nitro-enclaves-support", [t["NitroEnclavesSupport"]]),
        ("supported-boot-mode", t["SupportedBootModes"]),
        ("hypervisor", [t["Hypervisor"]]),
    ]
    for name, values in read_back:
        assert "m5.2xlarge" in names((name, values)), (name, values)
    # Four valid cores at 3.1 GHz: the 8- and 16-vCPU m5, the 8-vCPU r5 and d3.
    assert names(*read_back) == ["d3.2xlarge", "m5.2xlarge", "m5.4xlarge", "r5.2xlarge"]
    # t2 takes no CPU options, so shows no valid core counts and matches none.
    t2 = ec2.describe_instance_types(InstanceTypes=["t2.micro"])["InstanceTypes"][0]
    assert "ValidCores" not in t2["VCpuInfo"]
    assert "t2.micro" not in names(("vcpu-info.valid-cores", ["*"]))
    # Instance storage: only the storage-optimized types have any.
    assert names(("instance-storage-info.disk.type", ["*"])) == sorted(
        n for n in EXPECTED_TYPES if n.split(".")[0] in ("i3", "i4i", "d3"))
    # A feature Strato lacks: the filter is accepted and matches nothing.
    assert names(("network-info.efa-supported", ["true"])) == []


def test_instance_types_unknown_name(strato, ec2):
    # EC2 answers InvalidInstanceType: "The following supplied instance types do not exist: [...]".
    code, status, msg = client_error(ec2.describe_instance_types, InstanceTypes=["t3.micro", "t3.gigantic"])
    assert status == 400
    assert "t3.gigantic" in msg
    assert code == "InvalidInstanceType", code


def test_instance_types_pagination_and_errors(strato, ec2):
    seen = []
    token = None
    pages = 0
    while True:
        args = {"MaxResults": 5}
        if token:
            args["NextToken"] = token
        r = ec2.describe_instance_types(**args)
        pages += 1
        assert len(r["InstanceTypes"]) <= 5
        seen += [t["InstanceType"] for t in r["InstanceTypes"]]
        token = r.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == len(EXPECTED_TYPES)
    assert pages == 6
    raw = strato.client(validate=False)
    expect_code("InvalidParameterValue", raw.describe_instance_types, MaxResults=4)
    expect_code("InvalidParameterValue", raw.describe_instance_types, MaxResults=101)
    assert len(ec2.describe_instance_types(MaxResults=100)["InstanceTypes"]) == len(EXPECTED_TYPES)
    expect_code("InvalidPaginationToken", ec2.describe_instance_types, MaxResults=5, NextToken="@@@")
    expect_code("InvalidParameterValue", ec2.describe_instance_types, Filters=[{"Name": "nope", "Values": ["1"]}])


# --------------------------------------------------------------------------- offerings


def offerings(ec2, **kw):
    out = []
    for page in ec2.get_paginator("describe_instance_type_offerings").paginate(**kw):
        out += page["InstanceTypeOfferings"]
    return out


def test_offerings_by_location_type(strato, ec2):
    region = offerings(ec2)
    assert {o["Location"] for o in region} == {"us-east-1"}
    assert {o["LocationType"] for o in region} == {"region"}
    assert {o["InstanceType"] for o in region} == set(EXPECTED_TYPES)
    assert len(region) == len(EXPECTED_TYPES)

    az = offerings(ec2, LocationType="availability-zone")
    # us-east-1 has six zones, as on AWS.
    assert {o["Location"] for o in az} == {"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d", "us-east-1e", "us-east-1f"}
    assert len(az) == 6 * len(EXPECTED_TYPES)
    assert {o["LocationType"] for o in az} == {"availability-zone"}

    azid = offerings(ec2, LocationType="availability-zone-id")
    assert {o["Location"] for o in azid} == {f"use1-az{n}" for n in range(1, 7)}

    d = strato.aws("ec2", "describe-instance-type-offerings", "--location-type", "availability-zone",
                   "--filters", "Name=instance-type,Values=m5.large", "Name=location,Values=us-east-1b")
    assert d["InstanceTypeOfferings"] == [
        {"InstanceType": "m5.large", "LocationType": "availability-zone", "Location": "us-east-1b"}]


def test_offerings_pagination_and_errors(strato, ec2):
    seen = []
    token = None
    while True:
        args = {"MaxResults": 5, "LocationType": "availability-zone"}
        if token:
            args["NextToken"] = token
        r = ec2.describe_instance_type_offerings(**args)
        assert len(r["InstanceTypeOfferings"]) <= 5
        seen += [(o["InstanceType"], o["Location"]) for o in r["InstanceTypeOfferings"]]
        token = r.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 6 * len(EXPECTED_TYPES)
    expect_code("InvalidParameterValue", ec2.describe_instance_type_offerings, LocationType="planet")
    expect_code("InvalidParameterValue", ec2.describe_instance_type_offerings,
                Filters=[{"Name": "zone", "Values": ["x"]}])
    raw = strato.client(validate=False)
    expect_code("InvalidParameterValue", raw.describe_instance_type_offerings, MaxResults=4)


# --------------------------------------------------------------------------- images


def test_builtin_image(strato, ec2):
    imgs = ec2.describe_images()["Images"]
    by_id = {i["ImageId"]: i for i in imgs}
    assert DEFAULT_IMAGE in by_id
    img = by_id[DEFAULT_IMAGE]
    assert img["Name"] == "strato-minimal-x86_64"
    assert img["ImageOwnerAlias"] == "strato"
    assert img["State"] == "available"
    assert img["Public"] is True
    assert img["Architecture"] == "x86_64"
    assert img["ImageType"] == "machine"
    assert img["RootDeviceType"] == "ebs"
    assert img["RootDeviceName"] == "/dev/xvda"
    assert img["VirtualizationType"] == "hvm"
    assert img["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
    assert len(img["OwnerId"]) == 12 and img["OwnerId"].isdigit()
    d = strato.aws("ec2", "describe-images", "--owners", "strato")
    assert [i["ImageId"] for i in d["Images"]] == [DEFAULT_IMAGE]


def test_images_owners_and_filters(ec2):
    me = ec2.describe_images  # noqa: shorthand
    ids = lambda **kw: [i["ImageId"] for i in me(**kw)["Images"]]
    assert ids(Owners=["strato"]) == [DEFAULT_IMAGE]
    assert ids(Owners=["self"]) == []
    assert DEFAULT_IMAGE not in ids(Owners=["amazon"])
    owner = me(ImageIds=[DEFAULT_IMAGE])["Images"][0]["OwnerId"]
    assert ids(Owners=[owner]) == [DEFAULT_IMAGE]
    assert ids(Owners=["self", "strato"]) == [DEFAULT_IMAGE]
    assert ids(ImageIds=[DEFAULT_IMAGE]) == [DEFAULT_IMAGE]
    assert ids(Filters=[{"Name": "name", "Values": ["strato-minimal-*"]}]) == [DEFAULT_IMAGE]
    assert ids(Filters=[{"Name": "name", "Values": ["ubuntu-*"]}]) == []
    assert ids(Filters=[{"Name": "owner-alias", "Values": ["strato"]},
                        {"Name": "architecture", "Values": ["x86_64", "arm64"]}]) == [DEFAULT_IMAGE]
    assert ids(Filters=[{"Name": "architecture", "Values": ["arm64"]}]) == []
    assert ids(Filters=[{"Name": "is-public", "Values": ["true"]}]) == [DEFAULT_IMAGE]
    assert ids(Filters=[{"Name": "image-id", "Values": ["ami-05a9d2c7*"]}]) == [DEFAULT_IMAGE]
    assert ids(ExecutableUsers=["all"]) == [DEFAULT_IMAGE]


def test_images_errors(strato, ec2):
    expect_code("InvalidAMIID.NotFound", ec2.describe_images, ImageIds=["ami-0123456789abcdef0"])
    expect_code("InvalidAMIID.NotFound", ec2.describe_images, ImageIds=[DEFAULT_IMAGE, "ami-12345678"])
    expect_code("InvalidAMIID.Malformed", ec2.describe_images, ImageIds=["ami-xyz"])
    expect_code("InvalidAMIID.Malformed", ec2.describe_images, ImageIds=["i-0123456789abcdef0"])
    expect_code("InvalidParameterValue", ec2.describe_images, Filters=[{"Name": "flavour", "Values": ["x"]}])
    expect_code("InvalidParameterCombination", ec2.describe_images, ImageIds=[DEFAULT_IMAGE], MaxResults=5)
    assert aws_error(strato, "ec2", "describe-images", "--image-ids", "ami-00000001") == "InvalidAMIID.NotFound"


# --------------------------------------------------------------------------- regions and zones


def test_regions(strato, ec2):
    # By default every AWS commercial region is served, all on this one endpoint.
    r = {x["RegionName"]: x for x in ec2.describe_regions()["Regions"]}
    for name in ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2", "af-south-1", "sa-east-1"):
        assert name in r, name
    assert len(r) >= 30
    assert r["us-east-1"]["OptInStatus"] == "opt-in-not-required"
    assert r["af-south-1"]["OptInStatus"] == "opted-in"
    assert len({x["Endpoint"] for x in r.values()}) == 1
    assert [x["RegionName"] for x in ec2.describe_regions(RegionNames=["eu-west-1"])["Regions"]] == ["eu-west-1"]
    assert len(ec2.describe_regions(AllRegions=True)["Regions"]) == len(r)
    eu = [x["RegionName"] for x in ec2.describe_regions(Filters=[{"Name": "region-name", "Values": ["eu-*"]}])["Regions"]]
    assert "eu-west-1" in eu and "us-east-1" not in eu
    expect_code("InvalidParameterValue", ec2.describe_regions, RegionNames=["moon-base-1"])
    expect_code("InvalidParameterValue", ec2.describe_regions, Filters=[{"Name": "x", "Values": ["y"]}])
    d = strato.aws("ec2", "describe-regions")
    assert "us-east-1" in [x["RegionName"] for x in d["Regions"]]


def test_availability_zones(strato, ec2):
    z = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(x["ZoneName"], x["ZoneId"]) for x in z] == [
        (f"us-east-1{c}", f"use1-az{n}") for n, c in enumerate("abcdef", 1)]
    for x in z:
        assert x["State"] == "available"
        assert x["RegionName"] == "us-east-1"
        assert x["ZoneType"] == "availability-zone"
    names = lambda **kw: [x["ZoneName"] for x in ec2.describe_availability_zones(**kw)["AvailabilityZones"]]
    assert names(ZoneNames=["us-east-1b"]) == ["us-east-1b"]
    assert names(ZoneIds=["use1-az3"]) == ["us-east-1c"]
    assert names(Filters=[{"Name": "zone-id", "Values": ["use1-az1", "use1-az2"]}]) == ["us-east-1a", "us-east-1b"]
    assert names(Filters=[{"Name": "zone-name", "Values": ["*c"]}]) == ["us-east-1c"]
    # Another region's zones are not this region's.
    expect_code("InvalidParameterValue", ec2.describe_availability_zones, ZoneNames=["eu-west-1a"])
    assert names(Filters=[{"Name": "state", "Values": ["impaired"]}]) == []
    expect_code("InvalidParameterValue", ec2.describe_availability_zones, ZoneNames=["us-east-1z"])
    expect_code("InvalidParameterValue", ec2.describe_availability_zones, ZoneIds=["use1-az9"])
    expect_code("InvalidParameterValue", ec2.describe_availability_zones, Filters=[{"Name": "size", "Values": ["1"]}])
    d = strato.aws("ec2", "describe-availability-zones", "--zone-names", "us-east-1a")
    assert [x["ZoneId"] for x in d["AvailabilityZones"]] == ["use1-az1"]


def test_zone_and_region_filters_take_the_answers_values(ec2):
    zones = lambda *f: [x["ZoneName"] for x in ec2.describe_availability_zones(
        Filters=[{"Name": n, "Values": v} for n, v in f])["AvailabilityZones"]]
    assert zones(("zone-id", ["use1-az4"])) == ["us-east-1d"]
    assert zones(("zone-id", ["use1-az*"]), ("zone-name", ["*f"])) == ["us-east-1f"]
    z = ec2.describe_availability_zones(ZoneNames=["us-east-1e"])["AvailabilityZones"][0]
    for name, key in [("zone-type", "ZoneType"), ("opt-in-status", "OptInStatus"),
                      ("region-name", "RegionName"), ("group-name", "GroupName"),
                      ("network-border-group", "NetworkBorderGroup"), ("state", "State")]:
        assert "us-east-1e" in zones((name, [z[key]])), name
    assert zones(("zone-type", ["local-zone"])) == []
    # A plain zone has no parent zone: accepted, matches nothing.
    assert zones(("parent-zone-name", ["*"])) == []
    r = ec2.describe_regions(RegionNames=["us-east-1"])["Regions"][0]
    by_endpoint = ec2.describe_regions(Filters=[{"Name": "endpoint", "Values": [r["Endpoint"]]}])["Regions"]
    assert "us-east-1" in [x["RegionName"] for x in by_endpoint]
    assert ec2.describe_regions(Filters=[{"Name": "endpoint", "Values": ["ec2.example.com"]}])["Regions"] == []


# --------------------------------------------------------------------------- account attributes and STS


def test_account_attributes(strato, ec2):
    attrs = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
             for a in ec2.describe_account_attributes()["AccountAttributes"]}
    for name in ("supported-platforms", "default-vpc", "max-instances", "max-elastic-ips",
                 "vpc-max-elastic-ips", "vpc-max-security-groups-per-interface"):
        assert name in attrs, name
    assert attrs["supported-platforms"] == ["VPC"]
    assert int(attrs["max-instances"][0]) > 0
    one = ec2.describe_account_attributes(AttributeNames=["max-instances"])["AccountAttributes"]
    assert [a["AttributeName"] for a in one] == ["max-instances"]
    expect_code("InvalidParameterValue", ec2.describe_account_attributes, AttributeNames=["favourite-colour"])
    d = strato.aws("ec2", "describe-account-attributes", "--attribute-names", "supported-platforms")
    assert d["AccountAttributes"][0]["AttributeValues"] == [{"AttributeValue": "VPC"}]


def test_get_caller_identity(strato, ec2):
    sts = strato.client(service="sts")
    ident = sts.get_caller_identity()
    account = ident["Account"]
    assert len(account) == 12 and account.isdigit()
    assert ident["Arn"] == f"arn:aws:iam::{account}:root"
    assert ident["UserId"]
    cli = strato.aws("sts", "get-caller-identity")
    assert cli["Account"] == account and cli["Arn"] == ident["Arn"]
    # The account that owns what this caller launches.
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1)
    assert r["OwnerId"] == account


# --------------------------------------------------------------------------- DryRun on read-only actions


READ_ONLY = [
    ("describe_instances", {}),
    ("describe_instance_status", {}),
    ("describe_instance_types", {}),
    ("describe_instance_type_offerings", {}),
    ("describe_images", {}),
    ("describe_regions", {}),
    ("describe_availability_zones", {}),
    ("describe_account_attributes", {}),
    ("describe_key_pairs", {}),
    ("describe_tags", {}),
]


@pytest.mark.parametrize("method,kw", READ_ONLY, ids=[m for m, _ in READ_ONLY])
def test_dry_run_on_describe_actions(ec2, method, kw):
    """EC2 answers DryRunOperation (412) to a permitted dry run of any action."""
    code, status, _ = client_error(getattr(ec2, method), DryRun=True, **kw)
    assert (code, status) == ("DryRunOperation", 412)
