"""EBS volumes as resources (simulated host): CreateVolume with EC2's types, sizes,
IOPS and throughput rules, DescribeVolumes with its filters and pages, DeleteVolume,
ClientToken, DryRun, tags, tenancy and regions, the aws CLI and its waiters, and
crashes at each step of creating and deleting a volume."""

import re
import os

import pytest

from conftest import DEFAULT_IMAGE as DEFAULT_IMAGE_ID, REGION, Strato, await_crash, start_crashing
from helpers import client_error, expect_code, wait_until

ZONE = "us-east-1a"
MISSING = "vol-0123456789abcdef0"


def volumes(ec2, **kw):
    return ec2.describe_volumes(**kw)["Volumes"]


def volume(ec2, vid):
    (v,) = volumes(ec2, VolumeIds=[vid])
    return v


def wait_volume(ec2, vid, state, timeout=20):
    wait_until(lambda: volume(ec2, vid)["State"] == state, timeout=timeout, what=f"{vid} {state}")
    return volume(ec2, vid)


def gone(ec2, vid):
    code, _, _ = client_error(ec2.describe_volumes, VolumeIds=[vid])
    return code == "InvalidVolume.NotFound"


def ids_of(vs):
    return sorted(v["VolumeId"] for v in vs)


@pytest.fixture(scope="module")
def raw(strato):
    """A client without botocore's own parameter checks, for out-of-range values."""
    return strato.client(validate=False)


def test_create_describe_delete(ec2):
    v = ec2.create_volume(AvailabilityZone=ZONE, Size=8, TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}])
    vid = v["VolumeId"]
    assert re.fullmatch(r"vol-[0-9a-f]{17}", vid)
    assert v["State"] in ("creating", "available")
    assert v["Size"] == 8 and v["VolumeType"] == "gp2" and v["Iops"] == 100
    assert v["AvailabilityZone"] == ZONE and v["Encrypted"] is False
    assert v["MultiAttachEnabled"] is False and v["SnapshotId"] == ""
    assert v["Attachments"] == [] and {t["Key"]: t["Value"] for t in v["Tags"]} == {"Name": "data"}
    assert "Throughput" not in v and "KmsKeyId" not in v
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    d = volume(ec2, vid)
    assert d["State"] == "available" and d["CreateTime"] == v["CreateTime"]
    assert d["AvailabilityZoneId"] == "use1-az1"
    for name, value in [("volume-id", vid), ("status", "available"), ("size", "8"), ("volume-type", "gp2"),
                        ("availability-zone", ZONE), ("availability-zone-id", "use1-az1"), ("encrypted", "false"),
                        ("multi-attach-enabled", "false"), ("tag:Name", "data"), ("tag-key", "Name"),
                        ("create-time", d["CreateTime"].strftime("%Y-%m-%dT%H:%M:%S") + "*")]:
        got = volumes(ec2, Filters=[{"Name": name, "Values": [value]}])
        assert vid in ids_of(got), name
    for name, value in [("status", "in-use"), ("size", "9"), ("volume-type", "gp3"), ("attachment.instance-id", "i-*")]:
        assert vid not in ids_of(volumes(ec2, Filters=[{"Name": name, "Values": [value]}])), name
    expect_code("InvalidParameterValue", ec2.describe_volumes, Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    ec2.delete_volume(VolumeId=vid)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    assert gone(ec2, vid)
    expect_code("InvalidVolume.NotFound", ec2.delete_volume, VolumeId=vid)


def test_types_and_their_figures(ec2):
    cases = [
        (dict(VolumeType="gp3", Size=10), dict(Iops=3000, Throughput=125)),
        (dict(VolumeType="gp3", Size=100, Iops=6000, Throughput=500), dict(Iops=6000, Throughput=500)),
        (dict(VolumeType="gp2", Size=2000), dict(Iops=6000)),
        (dict(VolumeType="io1", Size=10, Iops=500), dict(Iops=500)),
        (dict(VolumeType="io2", Size=10, Iops=10000, MultiAttachEnabled=True), dict(Iops=10000, MultiAttachEnabled=True)),
        (dict(VolumeType="st1", Size=125), dict()),
        (dict(VolumeType="sc1", Size=500), dict()),
        (dict(VolumeType="standard", Size=1), dict()),
    ]
    made = []
    for args, want in cases:
        v = ec2.create_volume(AvailabilityZone=ZONE, **args)
        made.append(v["VolumeId"])
        for k, val in want.items():
            assert v[k] == val, (args, k, v)
        if args["VolumeType"] in ("st1", "sc1", "standard"):
            assert "Iops" not in v, args
        if args["VolumeType"] != "gp3":
            assert "Throughput" not in v, args
    for vid in made:
        wait_volume(ec2, vid, "available")
    got = volumes(ec2, Filters=[{"Name": "volume-type", "Values": ["io1", "io2"]}])
    assert set(made[3:5]) <= set(ids_of(got))
    assert made[4] in ids_of(volumes(ec2, Filters=[{"Name": "multi-attach-enabled", "Values": ["true"]}]))
    for vid in made:
        ec2.delete_volume(VolumeId=vid)


BAD = [
    ("MissingParameter", dict(AvailabilityZone=ZONE)),
    ("MissingParameter", dict(Size=1)),
    ("InvalidParameterValue", dict(AvailabilityZone="us-east-1z", Size=1)),
    ("InvalidParameterValue", dict(AvailabilityZone="eu-west-1a", Size=1)),
    ("InvalidParameterValue", dict(AvailabilityZoneId="use1-az99", Size=1)),
    ("InvalidParameterCombination", dict(AvailabilityZone=ZONE, AvailabilityZoneId="use1-az1", Size=1)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=0)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=16385)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=3, VolumeType="io1", Iops=100)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=124, VolumeType="st1")),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=1025, VolumeType="standard")),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=1, VolumeType="gp4")),
    ("InvalidParameterCombination", dict(AvailabilityZone=ZONE, Size=10, VolumeType="gp2", Iops=300)),
    ("InvalidParameterCombination", dict(AvailabilityZone=ZONE, Size=200, VolumeType="st1", Iops=300)),
    ("MissingParameter", dict(AvailabilityZone=ZONE, Size=10, VolumeType="io1")),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=10, VolumeType="io1", Iops=501)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=10, VolumeType="io1", Iops=99)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=100, VolumeType="io2", Iops=256001)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=10, VolumeType="gp3", Iops=2999)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=100, VolumeType="gp3", Throughput=1001)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=100, VolumeType="gp3", Throughput=124)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=100, VolumeType="gp3", Throughput=751)),
    ("InvalidParameterCombination", dict(AvailabilityZone=ZONE, Size=100, VolumeType="io1", Iops=100, Throughput=200)),
    ("InvalidParameterCombination", dict(AvailabilityZone=ZONE, Size=10, VolumeType="gp3", MultiAttachEnabled=True)),
    ("InvalidParameterDependency", dict(AvailabilityZone=ZONE, Size=1, KmsKeyId="alias/aws/ebs")),
    ("UnsupportedOperation", dict(AvailabilityZone=ZONE, Size=1, Encrypted=True, KmsKeyId="alias/mine")),
    ("InvalidSnapshot.NotFound", dict(AvailabilityZone=ZONE, SnapshotId="snap-0123456789abcdef0")),
    ("InvalidSnapshotID.Malformed", dict(AvailabilityZone=ZONE, SnapshotId="snap-zz")),
    ("UnsupportedOperation", dict(AvailabilityZone=ZONE, Size=1, OutpostArn="arn:aws:outposts:us-east-1:1:outpost/op-1")),
    ("UnsupportedOperation", dict(AvailabilityZone=ZONE, Size=1, VolumeInitializationRate=100)),
    ("InvalidParameterValue", dict(AvailabilityZone=ZONE, Size=1, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}])),
]


@pytest.mark.parametrize("code,args", BAD, ids=[f"{c}-{i}" for i, (c, _) in enumerate(BAD)])
def test_bad_create_is_refused_and_changes_nothing(raw, code, args):
    before = ids_of(volumes(raw))
    got, status, msg = client_error(raw.create_volume, **args)
    assert got == code, f"{args}: {got}: {msg}"
    assert status == 400 and msg
    assert ids_of(volumes(raw)) == before


def test_malformed_and_missing_ids(ec2):
    expect_code("InvalidVolumeID.Malformed", ec2.describe_volumes, VolumeIds=["vol-xyz"])
    expect_code("InvalidVolumeID.Malformed", ec2.delete_volume, VolumeId="volume-1")
    _, msg = expect_code("InvalidVolume.NotFound", ec2.describe_volumes, VolumeIds=[MISSING])
    assert MISSING in msg
    other = "vol-0123456789abcdef1"
    _, msg = expect_code("InvalidVolume.NotFound", ec2.describe_volumes, VolumeIds=[MISSING, other])
    assert MISSING in msg and other in msg
    expect_code("InvalidVolume.NotFound", ec2.delete_volume, VolumeId=MISSING)


def test_dry_run(ec2):
    before = ids_of(volumes(ec2))
    expect_code("DryRunOperation", ec2.create_volume, AvailabilityZone=ZONE, Size=1, DryRun=True)
    assert ids_of(volumes(ec2)) == before
    # DryRun checks the parameters first.
    expect_code("InvalidParameterValue", ec2.create_volume, AvailabilityZone=ZONE, Size=0, DryRun=True)
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    wait_volume(ec2, vid, "available")
    expect_code("DryRunOperation", ec2.delete_volume, VolumeId=vid, DryRun=True)
    expect_code("DryRunOperation", ec2.describe_volumes, DryRun=True)
    assert volume(ec2, vid)["State"] == "available"
    ec2.delete_volume(VolumeId=vid)


def test_client_token(ec2):
    a = ec2.create_volume(AvailabilityZone=ZONE, Size=2, ClientToken="vol-token-1")
    b = ec2.create_volume(AvailabilityZone=ZONE, Size=2, ClientToken="vol-token-1")
    assert a["VolumeId"] == b["VolumeId"]
    expect_code("IdempotentParameterMismatch", ec2.create_volume, AvailabilityZone=ZONE, Size=3,
                ClientToken="vol-token-1")
    assert len([v for v in volumes(ec2) if v["VolumeId"] == a["VolumeId"]]) == 1
    wait_volume(ec2, a["VolumeId"], "available")
    ec2.delete_volume(VolumeId=a["VolumeId"])


def test_pages(ec2, raw):
    made = [ec2.create_volume(AvailabilityZone=ZONE, Size=1, TagSpecifications=[
        {"ResourceType": "volume", "Tags": [{"Key": "page", "Value": "yes"}]}])["VolumeId"] for _ in range(12)]
    seen, token = [], None
    flt = [{"Name": "tag:page", "Values": ["yes"]}]
    while True:
        kw = {"MaxResults": 5, "Filters": flt}
        if token:
            kw["NextToken"] = token
        r = ec2.describe_volumes(**kw)
        assert len(r["Volumes"]) <= 5
        seen += [v["VolumeId"] for v in r["Volumes"]]
        token = r.get("NextToken")
        if not token:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 12
    paginated = [v["VolumeId"] for p in ec2.get_paginator("describe_volumes").paginate(
        Filters=flt, PaginationConfig={"PageSize": 5}) for v in p["Volumes"]]
    assert sorted(paginated) == sorted(made)
    # Without filters a page is read on its own: the same volumes, each once.
    unfiltered = [v["VolumeId"] for p in ec2.get_paginator("describe_volumes").paginate(
        PaginationConfig={"PageSize": 5}) for v in p["Volumes"]]
    assert len(unfiltered) == len(set(unfiltered)) and set(made) <= set(unfiltered)
    assert sorted(unfiltered) == ids_of(volumes(ec2))
    # Above 500 EC2 answers pages of 500; below 5 is refused.
    assert len(raw.describe_volumes(MaxResults=1000, Filters=flt)["Volumes"]) == 12
    expect_code("InvalidParameterValue", raw.describe_volumes, MaxResults=4)
    expect_code("InvalidParameterCombination", ec2.describe_volumes, VolumeIds=made[:1], MaxResults=5)
    expect_code("InvalidPaginationToken", ec2.describe_volumes, MaxResults=5, NextToken="garbage!")
    for vid in made:
        wait_volume(ec2, vid, "available")
        ec2.delete_volume(VolumeId=vid)


def test_encrypted_volumes_name_the_default_key(ec2):
    v = ec2.create_volume(AvailabilityZone=ZONE, Size=1, Encrypted=True)
    assert v["Encrypted"] is True
    assert re.fullmatch(r"arn:aws:kms:us-east-1:\d{12}:key/[0-9a-f-]{36}", v["KmsKeyId"])
    w = ec2.create_volume(AvailabilityZone=ZONE, Size=1, Encrypted=True, KmsKeyId="alias/aws/ebs")
    assert w["KmsKeyId"] == v["KmsKeyId"]
    enc = ids_of(volumes(ec2, Filters=[{"Name": "encrypted", "Values": ["true"]}]))
    assert {v["VolumeId"], w["VolumeId"]} <= set(enc)
    for x in (v, w):
        wait_volume(ec2, x["VolumeId"], "available")
        ec2.delete_volume(VolumeId=x["VolumeId"])


def test_tags_on_volumes(ec2):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    ec2.create_tags(Resources=[vid], Tags=[{"Key": "team", "Value": "db"}])
    assert {t["Key"]: t["Value"] for t in volume(ec2, vid)["Tags"]} == {"team": "db"}
    tags = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["volume"]},
                                      {"Name": "resource-id", "Values": [vid]}])["Tags"]
    assert [(t["Key"], t["ResourceType"]) for t in tags] == [("team", "volume")]
    ec2.delete_tags(Resources=[vid], Tags=[{"Key": "team"}])
    assert "Tags" not in volume(ec2, vid)
    expect_code("InvalidVolume.NotFound", ec2.create_tags, Resources=[MISSING], Tags=[{"Key": "a", "Value": "b"}])
    wait_volume(ec2, vid, "available")
    ec2.delete_volume(VolumeId=vid)


def test_tenancy_and_regions(strato, ec2):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    other = strato.client(creds=strato.create_account("volumes-b"))
    assert vid not in ids_of(volumes(other))
    expect_code("InvalidVolume.NotFound", other.describe_volumes, VolumeIds=[vid])
    expect_code("InvalidVolume.NotFound", other.delete_volume, VolumeId=vid)
    expect_code("InvalidVolume.NotFound", other.create_tags, Resources=[vid], Tags=[{"Key": "a", "Value": "b"}])
    west = strato.client(region="eu-west-1")
    assert vid not in ids_of(volumes(west))
    expect_code("InvalidVolume.NotFound", west.delete_volume, VolumeId=vid)
    w = west.create_volume(AvailabilityZone="eu-west-1b", Size=1)
    assert w["AvailabilityZone"] == "eu-west-1b"
    assert w["VolumeId"] not in ids_of(volumes(ec2))
    wait_volume(ec2, vid, "available")
    wait_volume(west, w["VolumeId"], "available")
    assert volume(ec2, vid)["State"] == "available"
    ec2.delete_volume(VolumeId=vid)
    west.delete_volume(VolumeId=w["VolumeId"])


def test_aws_cli(strato):
    v = strato.aws("ec2", "create-volume", "--availability-zone", ZONE, "--size", "4", "--volume-type", "gp3",
                   "--tag-specifications", "ResourceType=volume,Tags=[{Key=Name,Value=cli}]")
    vid = v["VolumeId"]
    assert v["VolumeType"] == "gp3" and v["Iops"] == 3000 and v["Throughput"] == 125
    strato.aws("ec2", "wait", "volume-available", "--volume-ids", vid)
    d = strato.aws("ec2", "describe-volumes", "--filters", "Name=tag:Name,Values=cli")["Volumes"]
    assert [x["VolumeId"] for x in d] == [vid]
    strato.aws("ec2", "delete-volume", "--volume-id", vid)
    strato.aws("ec2", "wait", "volume-deleted", "--volume-ids", vid)


@pytest.mark.parametrize("point", ["volume-create-committed", "volume-disk-made"])
def test_crash_while_creating_converges(point):
    """Killed after the volume's record committed or after its disk was made: after a
    restart the volume the API may have reported becomes available, and nothing else
    is left behind."""
    s = Strato(extra_args=()).start()
    try:
        s.stop()
        crashing = start_crashing(s.data_dir, point)
        ec2 = crashing.client()
        client_error_or_none = None
        try:
            ec2.create_volume(AvailabilityZone=ZONE, Size=1, ClientToken=f"crash-{point}")
        except Exception as e:  # the connection dies with the process
            client_error_or_none = e
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            # The retry with the same token answers the one volume, which converges.
            vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1, ClientToken=f"crash-{point}")["VolumeId"]
            assert ids_of(volumes(ec2)) == [vid], client_error_or_none
            wait_volume(ec2, vid, "available")
        finally:
            again.stop()
    finally:
        s.cleanup()


@pytest.mark.parametrize("point", ["volume-delete-committed", "volume-disk-deleted"])
def test_crash_while_deleting_converges(point):
    s = Strato().start()
    try:
        ec2 = s.client()
        vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
        wait_volume(ec2, vid, "available")
        s.stop()
        crashing = start_crashing(s.data_dir, point)
        try:
            crashing.client().delete_volume(VolumeId=vid)
        except Exception:
            pass
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            wait_until(lambda: gone(ec2, vid), timeout=20, what=f"{vid} deleted")
            # The disk is gone too: nothing of it is left in the volume store.
            wait_until(lambda: not any(vid in p for p in _store_entries(s.data_dir)), timeout=10,
                       what="the disk removed")
        finally:
            again.stop()
    finally:
        s.cleanup()


def _store_entries(data_dir):
    out = []
    for root, dirs, files in os.walk(data_dir):
        out += [os.path.join(root, n) for n in dirs + files]
    return out


# --------------------------------------------------------------------------- attachments

from helpers import launch, wait_state  # noqa: E402


def zone_of(ec2, iid):
    r = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return r["Placement"]["AvailabilityZone"]


def attachment(ec2, vid):
    v = volume(ec2, vid)
    return v["Attachments"][0] if v["Attachments"] else None


def test_attach_and_detach_on_a_running_instance(ec2):
    (iid,) = launch(ec2, wait="running")
    zone = zone_of(ec2, iid)
    vid = ec2.create_volume(AvailabilityZone=zone, Size=2)["VolumeId"]
    wait_volume(ec2, vid, "available")
    a = ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    assert a["State"] == "attaching" and a["Device"] == "/dev/sdf" and a["InstanceId"] == iid
    assert a["VolumeId"] == vid and a["DeleteOnTermination"] is False
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    wait_until(lambda: (attachment(ec2, vid) or {}).get("State") == "attached", what="attached")
    v = volume(ec2, vid)
    assert v["State"] == "in-use" and v["Attachments"][0]["AttachTime"] == a["AttachTime"]
    for name, value in [("attachment.instance-id", iid), ("attachment.status", "attached"),
                        ("attachment.device", "/dev/sdf"), ("attachment.delete-on-termination", "false"),
                        ("status", "in-use")]:
        assert vid in ids_of(volumes(ec2, Filters=[{"Name": name, "Values": [value]}])), name
    expect_code("VolumeInUse", ec2.delete_volume, VolumeId=vid)
    expect_code("VolumeInUse", ec2.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdg")
    expect_code("DryRunOperation", ec2.detach_volume, VolumeId=vid, DryRun=True)
    assert attachment(ec2, vid)["State"] == "attached"
    d = ec2.detach_volume(VolumeId=vid)
    assert d["State"] == "detaching" and d["InstanceId"] == iid
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    assert volume(ec2, vid)["Attachments"] == []
    expect_code("IncorrectState", ec2.detach_volume, VolumeId=vid)
    ec2.delete_volume(VolumeId=vid)
    ec2.terminate_instances(InstanceIds=[iid])


def test_attach_errors_change_nothing(strato, ec2):
    (iid,) = launch(ec2, wait="running")
    zone = zone_of(ec2, iid)
    other_zone = "us-east-1b" if zone != "us-east-1b" else "us-east-1c"
    vid = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    far = ec2.create_volume(AvailabilityZone=other_zone, Size=1)["VolumeId"]
    wait_volume(ec2, vid, "available")
    wait_volume(ec2, far, "available")
    cases = [
        ("InvalidVolume.ZoneMismatch", dict(VolumeId=far, InstanceId=iid, Device="/dev/sdf")),
        ("InvalidParameterValue", dict(VolumeId=vid, InstanceId=iid, Device="/dev/foo")),
        ("InvalidParameterValue", dict(VolumeId=vid, InstanceId=iid, Device="/dev/xvda")),
        ("InvalidInstanceID.NotFound", dict(VolumeId=vid, InstanceId="i-0123456789abcdef0", Device="/dev/sdf")),
        ("InvalidInstanceID.Malformed", dict(VolumeId=vid, InstanceId="i-zz", Device="/dev/sdf")),
        ("InvalidVolume.NotFound", dict(VolumeId=MISSING, InstanceId=iid, Device="/dev/sdf")),
        ("InvalidVolumeID.Malformed", dict(VolumeId="vol-q", InstanceId=iid, Device="/dev/sdf")),
        ("UnsupportedOperation", dict(VolumeId=vid, InstanceId=iid, Device="/dev/sdf", EbsCardIndex=1)),
        ("DryRunOperation", dict(VolumeId=vid, InstanceId=iid, Device="/dev/sdf", DryRun=True)),
    ]
    for code, args in cases:
        got, _, msg = client_error(ec2.attach_volume, **args)
        assert got == code, f"{args}: {got} {msg}"
        assert volume(ec2, vid)["State"] == "available" and volume(ec2, far)["State"] == "available"
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    # The device name is taken on that instance now.
    third = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    wait_volume(ec2, third, "available")
    expect_code("InvalidParameterValue", ec2.attach_volume, VolumeId=third, InstanceId=iid, Device="/dev/sdf")
    # Another account sees none of it.
    other = strato.client(creds=strato.create_account("attach-b"))
    expect_code("InvalidVolume.NotFound", other.detach_volume, VolumeId=vid)
    expect_code("InvalidVolume.NotFound", other.attach_volume, VolumeId=vid, InstanceId=iid, Device="/dev/sdg")
    expect_code("IncorrectState", ec2.detach_volume, VolumeId=vid, InstanceId="i-0123456789abcdef0")
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    # Not marked DeleteOnTermination: kept, detached.
    wait_volume(ec2, vid, "available")
    for x in (vid, far, third):
        ec2.delete_volume(VolumeId=x)


def test_attach_to_a_stopped_instance_plugs_at_start(ec2):
    (iid,) = launch(ec2, wait="running")
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    vid = ec2.create_volume(AvailabilityZone=zone_of(ec2, iid), Size=1)["VolumeId"]
    wait_volume(ec2, vid, "available")
    a = ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/xvdg")
    assert a["State"] == "attached"
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "running")
    assert attachment(ec2, vid)["State"] == "attached"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    d = ec2.detach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/xvdg")
    assert d["State"] == "detached"
    assert volume(ec2, vid)["State"] == "available"
    ec2.delete_volume(VolumeId=vid)
    ec2.terminate_instances(InstanceIds=[iid])


def test_multi_attach(ec2):
    a, b = launch(ec2, count=2, wait="running", Placement={"AvailabilityZone": ZONE})
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=4, VolumeType="io2", Iops=100,
                            MultiAttachEnabled=True)["VolumeId"]
    wait_volume(ec2, vid, "available")
    ec2.attach_volume(VolumeId=vid, InstanceId=a, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=vid, InstanceId=b, Device="/dev/sdf")
    wait_until(lambda: [x["State"] for x in volume(ec2, vid)["Attachments"]] == ["attached", "attached"],
               what="both attached")
    expect_code("MissingParameter", ec2.detach_volume, VolumeId=vid)
    ec2.detach_volume(VolumeId=vid, InstanceId=a)
    wait_until(lambda: [x["InstanceId"] for x in volume(ec2, vid)["Attachments"]] == [b], what="one left")
    assert volume(ec2, vid)["State"] == "in-use"
    ec2.terminate_instances(InstanceIds=[a, b])
    wait_volume(ec2, vid, "available")
    ec2.delete_volume(VolumeId=vid)


@pytest.mark.parametrize("point", ["volume-attach-committed", "volume-detach-committed"])
def test_crash_while_attaching_or_detaching_converges(point):
    s = Strato().start()
    try:
        ec2 = s.client()
        (iid,) = launch(ec2, wait="running")
        vid = ec2.create_volume(AvailabilityZone=zone_of(ec2, iid), Size=1)["VolumeId"]
        wait_volume(ec2, vid, "available")
        if point == "volume-detach-committed":
            ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
            wait_until(lambda: (attachment(ec2, vid) or {}).get("State") == "attached", what="attached")
        s.stop()
        crashing = start_crashing(s.data_dir, point)
        try:
            c = crashing.client()
            if point == "volume-attach-committed":
                c.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
            else:
                c.detach_volume(VolumeId=vid)
        except Exception:
            pass
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            if point == "volume-attach-committed":
                wait_until(lambda: (attachment(ec2, vid) or {}).get("State") == "attached", what="attached")
            else:
                wait_volume(ec2, vid, "available")
        finally:
            again.stop()
    finally:
        s.cleanup()


def test_encryption_by_default(strato):
    creds = strato.create_account("ebs-default")
    ec2 = strato.client(creds=creds)
    west = strato.client(creds=creds, region="eu-west-1")
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    expect_code("DryRunOperation", ec2.enable_ebs_encryption_by_default, DryRun=True)
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert ec2.enable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    # Per region: another region of the same account is unchanged.
    assert west.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    v = ec2.create_volume(AvailabilityZone=ZONE, Size=1, Encrypted=False)
    assert v["Encrypted"] is True and v["KmsKeyId"].startswith("arn:aws:kms:us-east-1:")
    assert ec2.disable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    w = ec2.create_volume(AvailabilityZone=ZONE, Size=1)
    assert w["Encrypted"] is False
    for x in (v, w):
        wait_volume(ec2, x["VolumeId"], "available")
        ec2.delete_volume(VolumeId=x["VolumeId"])


# --------------------------------------------------------------------------- modifications

def modification(ec2, vid):
    (m,) = ec2.describe_volumes_modifications(VolumeIds=[vid])["VolumesModifications"]
    return m


def wait_modified(ec2, vid, timeout=20):
    wait_until(lambda: modification(ec2, vid)["ModificationState"] == "completed", timeout=timeout,
               what=f"{vid} modified")
    return modification(ec2, vid)


def test_modify_a_detached_volume(strato, ec2):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=2)["VolumeId"]
    wait_volume(ec2, vid, "available")
    expect_code("InvalidVolumeModification.NotFound", ec2.describe_volumes_modifications, VolumeIds=[vid])
    assert vid not in [m["VolumeId"] for m in ec2.describe_volumes_modifications()["VolumesModifications"]]
    m = ec2.modify_volume(VolumeId=vid, Size=8, VolumeType="gp3", Iops=4000)["VolumeModification"]
    assert m["ModificationState"] == "modifying" and m["VolumeId"] == vid
    assert (m["OriginalSize"], m["OriginalVolumeType"], m["OriginalIops"]) == (2, "gp2", 100)
    assert (m["TargetSize"], m["TargetVolumeType"], m["TargetIops"], m["TargetThroughput"]) == (8, "gp3", 4000, 125)
    done = wait_modified(ec2, vid)
    assert done["Progress"] == 100 and done["EndTime"] >= done["StartTime"]
    v = volume(ec2, vid)
    assert (v["Size"], v["VolumeType"], v["Iops"], v["Throughput"], v["State"]) == (8, "gp3", 4000, 125, "available")
    for name, value in [("modification-state", "completed"), ("target-size", "8"), ("original-size", "2"),
                        ("target-volume-type", "gp3"), ("original-volume-type", "gp2"), ("volume-id", vid)]:
        got = ec2.describe_volumes_modifications(Filters=[{"Name": name, "Values": [value]}])["VolumesModifications"]
        assert vid in [x["VolumeId"] for x in got], name
    # What the request does not name stays (gp3's IOPS), and a second modification is fine once done.
    ec2.modify_volume(VolumeId=vid, Throughput=200)
    wait_modified(ec2, vid)
    v = volume(ec2, vid)
    assert (v["Iops"], v["Throughput"], v["Size"]) == (4000, 200, 8)
    ec2.delete_volume(VolumeId=vid)


def test_bad_modifications_are_refused_and_change_nothing(strato, ec2):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=10, VolumeType="gp3")["VolumeId"]
    wait_volume(ec2, vid, "available")
    raw = strato.client(validate=False)
    cases = [
        ("InvalidParameterValue", dict(VolumeId=vid, Size=5)),
        ("InvalidParameterValue", dict(VolumeId=vid, Size=10)),
        ("InvalidParameterValue", dict(VolumeId=vid, Size=20000)),
        ("InvalidParameterCombination", dict(VolumeId=vid, VolumeType="gp2", Iops=500)),
        ("InvalidParameterCombination", dict(VolumeId=vid, MultiAttachEnabled=True)),
        ("MissingParameter", dict(VolumeId=vid, VolumeType="io2")),
        ("InvalidParameterValue", dict(VolumeId=vid, Iops=100000)),
        ("MissingParameter", dict(VolumeId=vid)),
        ("InvalidVolume.NotFound", dict(VolumeId=MISSING, Size=20)),
        ("InvalidVolumeID.Malformed", dict(VolumeId="vol-x", Size=20)),
        ("DryRunOperation", dict(VolumeId=vid, Size=20, DryRun=True)),
    ]
    for code, args in cases:
        got, _, msg = client_error(raw.modify_volume, **args)
        assert got == code, f"{args}: {got} {msg}"
    v = volume(ec2, vid)
    assert (v["Size"], v["VolumeType"], v["Iops"]) == (10, "gp3", 3000)
    expect_code("InvalidVolumeModification.NotFound", ec2.describe_volumes_modifications, VolumeIds=[vid])
    other = strato.client(creds=strato.create_account("modify-b"))
    expect_code("InvalidVolume.NotFound", other.modify_volume, VolumeId=vid, Size=20)
    expect_code("InvalidVolume.NotFound", other.describe_volumes_modifications, VolumeIds=[vid])
    expect_code("InvalidVolume.NotFound", other.describe_volume_status, VolumeIds=[vid])
    expect_code("InvalidVolume.NotFound", other.modify_volume_attribute, VolumeId=vid, AutoEnableIO={"Value": True})
    ec2.delete_volume(VolumeId=vid)


def test_modify_an_attached_volume_reaches_its_vm(ec2):
    (iid,) = launch(ec2, wait="running", Placement={"AvailabilityZone": ZONE})
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    wait_volume(ec2, vid, "available")
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    wait_until(lambda: (attachment(ec2, vid) or {}).get("State") == "attached", what="attached")
    ec2.modify_volume(VolumeId=vid, Size=4, VolumeType="io2", Iops=150)
    states = set()
    wait_until(lambda: states.add(modification(ec2, vid)["ModificationState"])
               or "completed" in states, what="completed")
    assert states <= {"modifying", "optimizing", "completed"}
    v = volume(ec2, vid)
    assert (v["Size"], v["VolumeType"], v["Iops"], v["State"]) == (4, "io2", 150, "in-use")
    ec2.terminate_instances(InstanceIds=[iid])
    wait_volume(ec2, vid, "available")
    ec2.delete_volume(VolumeId=vid)


def test_volume_status_and_attributes(ec2):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    wait_volume(ec2, vid, "available")
    (st,) = ec2.describe_volume_status(VolumeIds=[vid])["VolumeStatuses"]
    assert st["VolumeStatus"]["Status"] == "ok" and st["AvailabilityZone"] == ZONE
    assert {"Name": "io-enabled", "Status": "passed"} in st["VolumeStatus"]["Details"]
    assert st["Events"] == [] and st["Actions"] == []
    got = ec2.describe_volume_status(Filters=[{"Name": "volume-status.status", "Values": ["ok"]}])["VolumeStatuses"]
    assert vid in [x["VolumeId"] for x in got]
    got = ec2.describe_volume_status(Filters=[{"Name": "volume-status.status", "Values": ["impaired"]}])
    assert vid not in [x["VolumeId"] for x in got["VolumeStatuses"]]
    expect_code("InvalidParameterValue", ec2.describe_volume_status, Filters=[{"Name": "nope", "Values": ["x"]}])
    expect_code("InvalidVolume.NotFound", ec2.describe_volume_status, VolumeIds=[MISSING])
    a = ec2.describe_volume_attribute(VolumeId=vid, Attribute="autoEnableIO")
    assert a["AutoEnableIO"] == {"Value": False} and a["VolumeId"] == vid
    expect_code("DryRunOperation", ec2.modify_volume_attribute, VolumeId=vid, AutoEnableIO={"Value": True},
                DryRun=True)
    assert ec2.describe_volume_attribute(VolumeId=vid, Attribute="autoEnableIO")["AutoEnableIO"]["Value"] is False
    ec2.modify_volume_attribute(VolumeId=vid, AutoEnableIO={"Value": True})
    assert ec2.describe_volume_attribute(VolumeId=vid, Attribute="autoEnableIO")["AutoEnableIO"]["Value"] is True
    assert ec2.describe_volume_attribute(VolumeId=vid, Attribute="productCodes")["ProductCodes"] == []
    ec2.delete_volume(VolumeId=vid)


def test_crash_while_modifying_converges():
    s = Strato().start()
    try:
        ec2 = s.client()
        vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
        wait_volume(ec2, vid, "available")
        s.stop()
        crashing = start_crashing(s.data_dir, "volume-modify-committed")
        try:
            crashing.client().modify_volume(VolumeId=vid, Size=6)
        except Exception:
            pass
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            wait_modified(ec2, vid)
            assert volume(ec2, vid)["Size"] == 6
        finally:
            again.stop()
    finally:
        s.cleanup()


def test_block_device_mapping_and_delete_on_termination(strato, ec2):
    (iid,) = launch(ec2, wait="running", Placement={"AvailabilityZone": ZONE})

    def mapping(check=True):
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        if not check:  # while attachments move, the reads below may see a later state
            return inst["BlockDeviceMappings"]
        attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")
        assert attr["BlockDeviceMappings"] == inst["BlockDeviceMappings"]
        # The same on a page, and on a page filtered by interfaces (other read paths).
        for kw in ({"MaxResults": 1000},
                   {"Filters": [{"Name": "network-interface.status", "Values": ["in-use"]}]}):
            listed = [i for r in ec2.describe_instances(**kw)["Reservations"] for i in r["Instances"]
                      if i["InstanceId"] == iid]
            assert listed[0]["BlockDeviceMappings"] == inst["BlockDeviceMappings"], kw
        return inst["BlockDeviceMappings"]

    # The root volume, from the start.
    (m0,) = mapping()
    root = m0["Ebs"]["VolumeId"]
    assert m0["DeviceName"] == "/dev/xvda" and m0["Ebs"]["DeleteOnTermination"] is True
    assert m0["Ebs"]["Status"] == "attached"
    keep = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    doomed = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    for v in (keep, doomed):
        wait_volume(ec2, v, "available")
    ec2.attach_volume(VolumeId=keep, InstanceId=iid, Device="/dev/sdg")
    a = ec2.attach_volume(VolumeId=doomed, InstanceId=iid, Device="/dev/sdf")
    wait_until(lambda: [m["Ebs"]["Status"] for m in mapping(check=False)] == ["attached"] * 3, what="attached")
    m = mapping()
    assert [x["DeviceName"] for x in m] == ["/dev/sdf", "/dev/sdg", "/dev/xvda"]
    assert m[0]["Ebs"]["VolumeId"] == doomed and m[0]["Ebs"]["DeleteOnTermination"] is False
    assert m[0]["Ebs"]["AttachTime"] == a["AttachTime"]
    change = [{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True}}]
    expect_code("DryRunOperation", ec2.modify_instance_attribute, InstanceId=iid, BlockDeviceMappings=change,
                DryRun=True)
    assert mapping()[0]["Ebs"]["DeleteOnTermination"] is False
    for bad in ([{"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": True}}],
                [{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": True, "VolumeId": keep}}]):
        expect_code("InvalidParameterValue", ec2.modify_instance_attribute, InstanceId=iid, BlockDeviceMappings=bad)
    other = strato.client(creds=strato.create_account("bdm-b"))
    expect_code("InvalidInstanceID.NotFound", other.modify_instance_attribute, InstanceId=iid,
                BlockDeviceMappings=change)
    assert mapping()[0]["Ebs"]["DeleteOnTermination"] is False
    ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=change)
    assert mapping()[0]["Ebs"]["DeleteOnTermination"] is True
    assert volume(ec2, doomed)["Attachments"][0]["DeleteOnTermination"] is True
    assert volume(ec2, keep)["Attachments"][0]["DeleteOnTermination"] is False
    # Terminating deletes exactly the volumes marked for it (the root volume is).
    ec2.terminate_instances(InstanceIds=[iid])
    for v in (doomed, root):
        wait_until(lambda v=v: v not in ids_of(volumes(ec2)), what=f"{v} deleted with its instance")
        assert gone(ec2, v)
    wait_volume(ec2, keep, "available")
    ec2.delete_volume(VolumeId=keep)


def test_run_instances_makes_and_attaches_mapped_volumes(strato, ec2):
    snap_src = ec2.create_volume(AvailabilityZone=ZONE, Size=3)["VolumeId"]
    wait_volume(ec2, snap_src, "available")
    snap = ec2.create_snapshot(VolumeId=snap_src)["SnapshotId"]
    wait_until(lambda: ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["State"] == "completed",
               what="snapshot")
    mappings = [
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 8, "VolumeType": "gp3", "Iops": 4000}},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 2, "Encrypted": True, "DeleteOnTermination": False}},
        {"DeviceName": "/dev/sdh", "Ebs": {"SnapshotId": snap}},
        {"DeviceName": "/dev/sdi", "NoDevice": ""},
    ]
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE_ID, MinCount=2, MaxCount=2, Placement={"AvailabilityZone": ZONE},
                          BlockDeviceMappings=mappings,
                          TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "made", "Value": "launch"}]}])
    ids = [i["InstanceId"] for i in r["Instances"]]
    wait_state(ec2, ids, "running")
    for iid in ids:
        wait_until(lambda iid=iid: [m["Ebs"]["Status"] for m in ec2.describe_instances(InstanceIds=[iid])[
            "Reservations"][0]["Instances"][0]["BlockDeviceMappings"]] == ["attached"] * 4, what=f"{iid} mapped")
        vols = volumes(ec2, Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])
        by_dev = {v["Attachments"][0]["Device"]: v for v in vols}
        assert sorted(by_dev) == ["/dev/sdf", "/dev/sdg", "/dev/sdh", "/dev/xvda"]
        root = by_dev.pop("/dev/xvda")
        assert (root["Size"], root["VolumeType"], root["Iops"]) == (8, "gp3", 3000)
        vols = list(by_dev.values())
        f, g, h = by_dev["/dev/sdf"], by_dev["/dev/sdg"], by_dev["/dev/sdh"]
        assert (f["Size"], f["VolumeType"], f["Iops"], f["Encrypted"]) == (8, "gp3", 4000, False)
        assert (g["Size"], g["VolumeType"], g["Encrypted"]) == (2, "gp2", True)
        assert (h["Size"], h["SnapshotId"]) == (3, snap)
        assert f["Attachments"][0]["DeleteOnTermination"] is True
        assert g["Attachments"][0]["DeleteOnTermination"] is False
        assert all(v["State"] == "in-use" and v["AvailabilityZone"] == ZONE for v in vols)
        assert all({t["Key"]: t["Value"] for t in v["Tags"]} == {"made": "launch"} for v in vols)
    kept = [v["VolumeId"] for v in volumes(ec2, Filters=[{"Name": "attachment.device", "Values": ["/dev/sdg"]},
                                                         {"Name": "attachment.instance-id", "Values": ids}])]
    assert len(kept) == 2
    ec2.terminate_instances(InstanceIds=ids)
    wait_state(ec2, ids, "terminated")
    # Exactly the volumes marked DeleteOnTermination go.
    wait_until(lambda: sorted(v["VolumeId"] for v in volumes(ec2, Filters=[
        {"Name": "tag:made", "Values": ["launch"]}])) == sorted(kept), what="the launch's volumes settled")
    for v in kept:
        wait_volume(ec2, v, "available")
        ec2.delete_volume(VolumeId=v)
    ec2.delete_snapshot(SnapshotId=snap)
    ec2.delete_volume(VolumeId=snap_src)


@pytest.mark.parametrize("code,mapping", [
    ("InvalidBlockDeviceMapping", {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 4}}),
    ("InvalidBlockDeviceMapping", {"DeviceName": "/dev/xvda", "NoDevice": ""}),
    ("InvalidBlockDeviceMapping", {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 500, "VolumeType": "st1"}}),
    ("InvalidBlockDeviceMapping", {"DeviceName": "/dev/xvda",
                                   "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}),
    ("InvalidParameterValue", {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20000}}),
    ("InvalidParameterValue", {"DeviceName": "/dev/xvda", "Ebs": {"VolumeType": "io1", "Iops": 10}}),
    ("MissingParameter", {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 8, "VolumeType": "io1"}}),
    ("InvalidParameterValue", {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 0}}),
    ("InvalidParameterValue", {"DeviceName": "/dev/foo", "Ebs": {"VolumeSize": 8}}),
    ("InvalidSnapshot.NotFound", {"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}),
    ("MissingParameter", {"DeviceName": "/dev/sdf", "Ebs": {}}),
    ("InvalidParameterCombination", {"DeviceName": "/dev/sdf", "NoDevice": "", "Ebs": {"VolumeSize": 1}}),
    ("UnsupportedOperation", {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 8, "Encrypted": True,
                                                              "KmsKeyId": "arn:aws:kms:us-east-1:1:key/x"}}),
])
def test_bad_launch_mappings_launch_nothing(strato, code, mapping):
    ec2 = strato.client(validate=False)
    before = len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]])
    vols_before = set(ids_of(volumes(ec2)))
    got, _, msg = client_error(ec2.run_instances, ImageId=DEFAULT_IMAGE_ID, MinCount=1, MaxCount=1,
                               BlockDeviceMappings=[mapping])
    assert got == code, f"{mapping}: {got} {msg}"
    assert len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]) == before
    # No new volume (earlier tests' volumes may still be going away meanwhile).
    assert set(ids_of(volumes(ec2))) <= vols_before


# --------------------------------------------------------------------------- root volumes

def test_every_instance_boots_from_a_root_volume(strato, ec2):
    """The root disk is an EBS volume: shown, shaped by the root device's mapping,
    detached and replaced only while the instance is stopped, and deleted with it
    unless told otherwise."""
    (iid,) = launch(ec2, wait="running", Placement={"AvailabilityZone": ZONE},
                    TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "k", "Value": "v"}]}])
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["RootDeviceType"] == "ebs" and inst["RootDeviceName"] == "/dev/xvda"
    root = wait_until(lambda: [v for v in volumes(ec2, Filters=[
        {"Name": "attachment.instance-id", "Values": [iid]}]) if v["State"] == "in-use"], what="root in use")[0]
    rid = root["VolumeId"]
    # The image's mapping: 8 GiB of gp3, not encrypted, deleted with the instance.
    assert (root["Size"], root["VolumeType"], root["Iops"], root["Throughput"]) == (8, "gp3", 3000, 125)
    assert root["Encrypted"] is False and root["SnapshotId"] == "" and root["AvailabilityZone"] == ZONE
    (a,) = root["Attachments"]
    assert (a["Device"], a["InstanceId"], a["State"], a["DeleteOnTermination"]) == ("/dev/xvda", iid, "attached", True)
    assert {t["Key"]: t["Value"] for t in root["Tags"]} == {"k": "v"}

    # Not while it runs: detaching (even forced), or a second volume at the root device.
    code, _, msg = client_error(ec2.detach_volume, VolumeId=rid)
    assert code == "IncorrectState" and "root volume" in msg, msg
    expect_code("IncorrectState", ec2.detach_volume, VolumeId=rid, Force=True)
    spare = ec2.create_volume(AvailabilityZone=ZONE, Size=8)["VolumeId"]
    wait_volume(ec2, spare, "available")
    expect_code("InvalidParameterValue", ec2.attach_volume, VolumeId=spare, InstanceId=iid, Device="/dev/xvda")
    assert volume(ec2, rid)["Attachments"][0]["State"] == "attached"

    # Stopped: the root volume comes off; the instance cannot start without one, and a
    # volume attached at the root device becomes its root (the original is kept).
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    ec2.detach_volume(VolumeId=rid)
    wait_volume(ec2, rid, "available")
    code, _, msg = client_error(ec2.start_instances, InstanceIds=[iid])
    assert code == "IncorrectInstanceState" and "/dev/xvda" in msg, msg
    st1 = ec2.create_volume(AvailabilityZone=ZONE, Size=125, VolumeType="st1")["VolumeId"]
    wait_volume(ec2, st1, "available")
    expect_code("InvalidParameterValue", ec2.attach_volume, VolumeId=st1, InstanceId=iid, Device="/dev/xvda")
    ec2.attach_volume(VolumeId=spare, InstanceId=iid, Device="/dev/xvda")
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "running")
    mapped = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]
    assert [(m["DeviceName"], m["Ebs"]["VolumeId"]) for m in mapped] == [("/dev/xvda", spare)]
    # Attached by AttachVolume: kept at termination unless marked.
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    wait_volume(ec2, spare, "available")
    for v in (rid, spare, st1):
        ec2.delete_volume(VolumeId=v)


def test_root_device_mapping_shapes_the_root_volume(ec2):
    (iid,) = launch(ec2, wait="running", Placement={"AvailabilityZone": ZONE}, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "VolumeType": "io2", "Iops": 2000,
                                            "Encrypted": True, "DeleteOnTermination": False}}])
    rid = wait_until(lambda: [v["VolumeId"] for v in volumes(ec2, Filters=[
        {"Name": "attachment.instance-id", "Values": [iid]}])], what="root volume")[0]
    r = wait_volume(ec2, rid, "in-use")
    assert (r["Size"], r["VolumeType"], r["Iops"], r["Encrypted"]) == (20, "io2", 2000, True)
    assert r["KmsKeyId"].startswith("arn:aws:kms:") and r["Attachments"][0]["DeleteOnTermination"] is False
    # ModifyInstanceAttribute marks it after all; terminating then deletes it.
    ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": True}}])
    assert volume(ec2, rid)["Attachments"][0]["DeleteOnTermination"] is True
    ec2.terminate_instances(InstanceIds=[iid])
    wait_until(lambda: rid not in ids_of(volumes(ec2)), what=f"{rid} deleted with its instance")
    assert gone(ec2, rid)


def test_root_volume_kept_when_not_deleted_on_termination(ec2):
    (iid,) = launch(ec2, wait="running", Placement={"AvailabilityZone": ZONE}, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False}}])
    rid = wait_until(lambda: [v["VolumeId"] for v in volumes(ec2, Filters=[
        {"Name": "attachment.instance-id", "Values": [iid]}])], what="root volume")[0]
    assert volume(ec2, rid)["Size"] == 8
    ec2.terminate_instances(InstanceIds=[iid])
    r = wait_volume(ec2, rid, "available")
    assert r["Attachments"] == []
    ec2.delete_volume(VolumeId=rid)


# --------------------------------------------------------------------------- instance store

def test_storage_optimized_types_have_an_instance_store(strato, ec2):
    types = {t["InstanceType"]: t for t in ec2.describe_instance_types(
        InstanceTypes=["i3.large", "i4i.large", "d3.xlarge", "t3.micro"])["InstanceTypes"]}
    i3, d3, t3 = types["i3.large"], types["d3.xlarge"], types["t3.micro"]
    assert i3["InstanceStorageSupported"] is True
    assert i3["InstanceStorageInfo"]["TotalSizeInGB"] == 475
    assert i3["InstanceStorageInfo"]["Disks"] == [{"SizeInGB": 475, "Count": 1, "Type": "ssd"}]
    assert i3["InstanceStorageInfo"]["NvmeSupport"] == "required"
    assert types["i4i.large"]["InstanceStorageInfo"]["TotalSizeInGB"] == 468
    assert d3["InstanceStorageInfo"]["Disks"] == [{"SizeInGB": 1980, "Count": 3, "Type": "hdd"}]
    assert d3["InstanceStorageInfo"]["TotalSizeInGB"] == 5940
    assert t3["InstanceStorageSupported"] is False and "InstanceStorageInfo" not in t3
    hdd = [t["InstanceType"] for t in ec2.describe_instance_types(Filters=[
        {"Name": "instance-storage-info.disk.type", "Values": ["hdd"]}])["InstanceTypes"]]
    assert sorted(hdd) == ["d3.2xlarge", "d3.xlarge"]
    with_store = [t["InstanceType"] for t in ec2.describe_instance_types(Filters=[
        {"Name": "instance-storage-supported", "Values": ["true"]}])["InstanceTypes"]]
    assert {"i3.large", "i4i.large", "d3.xlarge"} <= set(with_store) and "t3.micro" not in with_store

    # Every disk of the store is the instance's; a mapping may name one (ephemeralN).
    (iid,) = launch(ec2, wait="running", InstanceType="d3.xlarge", BlockDeviceMappings=[
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}])
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert [m["DeviceName"] for m in inst["BlockDeviceMappings"]] == ["/dev/xvda"], "instance store is not EBS"
    out = wait_until(lambda: ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", "").count(
        "instance-store disk") == 3 and ec2.get_console_output(InstanceId=iid, Latest=True)["Output"],
        what="three instance-store disks at boot")
    serials = re.findall(r"instance-store disk (AWS[0-9A-F]{17}) \(ephemeral(\d), 1980000000000 bytes\)", out)
    assert sorted(n for _, n in serials) == ["0", "1", "2"] and len({s for s, _ in serials}) == 3, out
    ec2.terminate_instances(InstanceIds=[iid])


@pytest.mark.parametrize("code,itype,mapping", [
    ("InvalidBlockDeviceMapping", "i3.large", {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral1"}),
    ("InvalidBlockDeviceMapping", "t3.micro", {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}),
    ("InvalidParameterValue", "i3.large", {"DeviceName": "/dev/sdb", "VirtualName": "scratch"}),
    ("InvalidParameterCombination", "i3.large", {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0",
                                                  "Ebs": {"VolumeSize": 1}}),
])
def test_bad_instance_store_mappings_launch_nothing(strato, code, itype, mapping):
    ec2 = strato.client(validate=False)
    before = len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]])
    vols_before = set(ids_of(volumes(ec2)))
    got, _, msg = client_error(ec2.run_instances, ImageId=DEFAULT_IMAGE_ID, MinCount=1, MaxCount=1,
                               InstanceType=itype, BlockDeviceMappings=[mapping])
    assert got == code, f"{mapping}: {got} {msg}"
    assert len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]) == before
    # No new volume (earlier tests' volumes may still be going away meanwhile).
    assert set(ids_of(volumes(ec2))) <= vols_before
