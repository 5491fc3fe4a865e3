"""EBS snapshots as resources (simulated host): CreateSnapshot(s), DescribeSnapshots
with owners, restorable-by, filters and pages, DeleteSnapshot, CopySnapshot (also
across regions and encrypting), createVolumePermission sharing and what a shared
account may and may not do, volumes made from snapshots, the aws CLI and its waiter,
and crashes at each step of taking and deleting a snapshot."""

import os
import re
import sqlite3

import pytest

from conftest import Strato, await_crash, start_crashing
from helpers import EC2_VERSION, client_error, expect_code, launch, root_volume, signed, wait_until

ZONE = "us-east-1a"
MISSING = "snap-0123456789abcdef0"


def snaps(ec2, **kw):
    return ec2.describe_snapshots(**kw)["Snapshots"]


def snap(ec2, sid):
    (s,) = snaps(ec2, SnapshotIds=[sid])
    return s


def ids_of(xs, key="SnapshotId"):
    return sorted(x[key] for x in xs)


def wait_snapshot(ec2, sid, state="completed", timeout=20):
    wait_until(lambda: snap(ec2, sid)["State"] == state, timeout=timeout, what=f"{sid} {state}")
    return snap(ec2, sid)


def snapshot_gone(ec2, sid):
    code, _, _ = client_error(ec2.describe_snapshots, SnapshotIds=[sid])
    return code == "InvalidSnapshot.NotFound"


def new_volume(ec2, size=2, **kw):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=size, **kw)["VolumeId"]
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["State"] == "available",
               what=f"{vid} available")
    return vid


def volume(ec2, vid):
    return ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]


def test_create_describe_delete(strato, ec2):
    vid = new_volume(ec2, size=3)
    s = ec2.create_snapshot(VolumeId=vid, Description="nightly", TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": "n1"}]}])
    sid = s["SnapshotId"]
    assert re.fullmatch(r"snap-[0-9a-f]{17}", sid)
    assert s["State"] == "pending" and s["VolumeId"] == vid and s["VolumeSize"] == 3
    assert s["Description"] == "nightly" and s["Encrypted"] is False
    assert {t["Key"]: t["Value"] for t in s["Tags"]} == {"Name": "n1"}
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    d = snap(ec2, sid)
    me = d["OwnerId"]
    assert d["State"] == "completed" and d["Progress"] == "100%" and d["StartTime"] == s["StartTime"]
    assert d["StorageTier"] == "standard" and d["CompletionTime"] >= d["StartTime"]
    for name, value in [("snapshot-id", sid), ("volume-id", vid), ("status", "completed"), ("volume-size", "3"),
                        ("description", "night*"), ("encrypted", "false"), ("owner-id", me),
                        ("progress", "100%"), ("tag:Name", "n1"), ("tag-key", "Name"), ("storage-tier", "standard")]:
        assert sid in ids_of(snaps(ec2, Filters=[{"Name": name, "Values": [value]}])), name
    for name, value in [("status", "pending"), ("volume-size", "4"), ("encrypted", "true")]:
        assert sid not in ids_of(snaps(ec2, Filters=[{"Name": name, "Values": [value]}])), name
    assert sid in ids_of(snaps(ec2, OwnerIds=["self"]))
    assert sid in ids_of(snaps(ec2, OwnerIds=[me]))
    assert sid in ids_of(snaps(ec2, RestorableByUserIds=["self"]))
    assert sid not in ids_of(snaps(ec2, OwnerIds=["amazon"]))
    # Operators see every snapshot with the bytes it holds (none on a simulated host).
    line = [ln for ln in strato.cli("snapshots").stdout.splitlines() if ln.startswith(sid)]
    assert len(line) == 1 and me in line[0] and vid in line[0] and line[0].split()[-1] == "0", line
    expect_code("InvalidParameterValue", ec2.describe_snapshots, Filters=[{"Name": "nope", "Values": ["x"]}])
    # Snapshots are tagged like any resource.
    ec2.create_tags(Resources=[sid], Tags=[{"Key": "env", "Value": "prod"}])
    assert sid in ids_of(snaps(ec2, Filters=[{"Name": "tag:env", "Values": ["prod"]}]))
    # The source volume goes; its snapshot stays.
    ec2.delete_volume(VolumeId=vid)
    assert snap(ec2, sid)["State"] == "completed"
    ec2.delete_snapshot(SnapshotId=sid)
    assert snapshot_gone(ec2, sid)
    expect_code("InvalidSnapshot.NotFound", ec2.delete_snapshot, SnapshotId=sid)
    assert not ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [sid]}])["Tags"]


def test_bad_requests_are_refused_and_change_nothing(ec2, strato):
    vid = new_volume(ec2)
    before = ids_of(snaps(ec2, OwnerIds=["self"]))
    raw = strato.client(validate=False)
    cases = [
        ("InvalidVolume.NotFound", ec2.create_snapshot, dict(VolumeId="vol-0123456789abcdef0")),
        ("InvalidVolumeID.Malformed", ec2.create_snapshot, dict(VolumeId="vol-zz")),
        ("InvalidParameterValue", ec2.create_snapshot, dict(VolumeId=vid, Description="d" * 256)),
        ("InvalidParameterValue", ec2.create_snapshot, dict(VolumeId=vid, TagSpecifications=[
            {"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}])),
        ("UnsupportedOperation", raw.create_snapshot, dict(VolumeId=vid, Location="local")),
        ("UnsupportedOperation", raw.create_snapshot, dict(VolumeId=vid, OutpostArn="arn:aws:outposts:x")),
        ("DryRunOperation", ec2.create_snapshot, dict(VolumeId=vid, DryRun=True)),
        ("InvalidSnapshot.NotFound", ec2.describe_snapshots, dict(SnapshotIds=[MISSING])),
        ("InvalidSnapshotID.Malformed", ec2.describe_snapshots, dict(SnapshotIds=["snap-zz"])),
        ("InvalidSnapshot.NotFound", ec2.delete_snapshot, dict(SnapshotId=MISSING)),
        ("InvalidSnapshotID.Malformed", ec2.delete_snapshot, dict(SnapshotId="snap-q")),
        ("InvalidParameterValue", ec2.describe_snapshots, dict(OwnerIds=["someone"])),
        ("InvalidParameterValue", ec2.describe_snapshots, dict(RestorableByUserIds=["nobody"])),
        ("InvalidSnapshot.NotFound", ec2.create_volume, dict(AvailabilityZone=ZONE, SnapshotId=MISSING)),
        ("InvalidSnapshot.NotFound", ec2.copy_snapshot, dict(SourceRegion="us-east-1", SourceSnapshotId=MISSING)),
        ("UnsupportedOperation", raw.copy_snapshot, dict(SourceRegion="us-east-1", SourceSnapshotId=MISSING,
                                                         CompletionDurationMinutes=15)),
    ]
    for code, fn, args in cases:
        got, _, msg = client_error(fn, **args)
        assert got == code, f"{fn.__name__} {args}: {got} {msg}"
    assert ids_of(snaps(ec2, OwnerIds=["self"])) == before
    ec2.delete_volume(VolumeId=vid)


def test_volumes_from_snapshots(ec2):
    vid = new_volume(ec2, size=4, VolumeType="gp3")
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    wait_snapshot(ec2, sid)
    same = ec2.create_volume(AvailabilityZone="us-east-1b", SnapshotId=sid)
    assert same["Size"] == 4 and same["SnapshotId"] == sid
    bigger = ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=sid, Size=10, VolumeType="io2", Iops=200)
    assert bigger["Size"] == 10
    for v in (same, bigger):
        wait_until(lambda v=v: volume(ec2, v["VolumeId"])["State"] == "available", what="from snapshot")
    got = ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [sid]}])["Volumes"]
    assert ids_of(got, "VolumeId") == sorted([same["VolumeId"], bigger["VolumeId"]])
    code, _, msg = client_error(ec2.create_volume, AvailabilityZone=ZONE, SnapshotId=sid, Size=3)
    assert code == "InvalidParameterValue" and "smaller" in msg
    # A snapshot of an encrypted volume gives encrypted volumes.
    enc = new_volume(ec2, size=1, Encrypted=True)
    esid = ec2.create_snapshot(VolumeId=enc)["SnapshotId"]
    e = wait_snapshot(ec2, esid)
    assert e["Encrypted"] is True and e["KmsKeyId"].startswith("arn:aws:kms:us-east-1:")
    ev = ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=esid)
    assert ev["Encrypted"] is True
    # Deleting the snapshot leaves the volumes made from it.
    ec2.delete_snapshot(SnapshotId=sid)
    assert volume(ec2, same["VolumeId"])["SnapshotId"] == sid
    for v in (vid, same["VolumeId"], bigger["VolumeId"], enc, ev["VolumeId"]):
        wait_until(lambda v=v: volume(ec2, v)["State"] == "available", what="available")
        ec2.delete_volume(VolumeId=v)
    ec2.delete_snapshot(SnapshotId=esid)


def test_sharing_lets_another_account_restore_and_nothing_else(strato, ec2):
    vid = new_volume(ec2)
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    wait_snapshot(ec2, sid)
    creds_b = strato.create_account("snap-b")
    b = strato.client(creds=creds_b)
    b_id = b.describe_security_groups()["SecurityGroups"][0]["OwnerId"]
    me = snap(ec2, sid)["OwnerId"]
    # Not shared: invisible to B.
    assert sid not in ids_of(snaps(b))
    expect_code("InvalidSnapshot.NotFound", b.describe_snapshots, SnapshotIds=[sid])
    expect_code("InvalidSnapshot.NotFound", b.create_volume, AvailabilityZone=ZONE, SnapshotId=sid)
    expect_code("InvalidSnapshot.NotFound", b.copy_snapshot, SourceRegion="us-east-1", SourceSnapshotId=sid)
    attr = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
    assert attr["CreateVolumePermissions"] == [] and attr["SnapshotId"] == sid
    expect_code("DryRunOperation", ec2.modify_snapshot_attribute, SnapshotId=sid, Attribute="createVolumePermission",
                OperationType="add", UserIds=[b_id], DryRun=True)
    assert ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []
    ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission",
                                  OperationType="add", UserIds=[b_id])
    assert ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == [{"UserId": b_id}]
    # Shared: B sees it (without the owner's tags), restores and copies it...
    seen = snap(b, sid)
    assert seen["OwnerId"] == me and "Tags" not in seen
    assert sid in ids_of(snaps(b))
    assert sid in ids_of(snaps(b, RestorableByUserIds=["self"]))
    assert sid in ids_of(snaps(b, OwnerIds=[me]))
    assert sid not in ids_of(snaps(b, OwnerIds=["self"]))
    bv = b.create_volume(AvailabilityZone=ZONE, SnapshotId=sid)["VolumeId"]
    copy = b.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=sid, Description="mine now")["SnapshotId"]
    c = wait_snapshot(b, copy)
    assert c["OwnerId"] == b_id and c["Description"] == "mine now"
    # ...and nothing else.
    for fn, args in [(b.delete_snapshot, dict(SnapshotId=sid)),
                     (b.describe_snapshot_attribute, dict(SnapshotId=sid, Attribute="createVolumePermission")),
                     (b.modify_snapshot_attribute, dict(SnapshotId=sid, Attribute="createVolumePermission",
                                                        OperationType="add", GroupNames=["all"])),
                     (b.reset_snapshot_attribute, dict(SnapshotId=sid, Attribute="createVolumePermission")),
                     (b.create_tags, dict(Resources=[sid], Tags=[{"Key": "a", "Value": "b"}]))]:
        expect_code("InvalidSnapshot.NotFound", fn, **args)
    assert snap(ec2, sid)["State"] == "completed"
    # Public: any account.
    creds_c = strato.create_account("snap-c")
    cc = strato.client(creds=creds_c)
    assert sid not in ids_of(snaps(cc))
    ec2.modify_snapshot_attribute(SnapshotId=sid, CreateVolumePermission={"Add": [{"Group": "all"}]})
    assert sid in ids_of(snaps(cc)) and sid in ids_of(snaps(cc, RestorableByUserIds=["all"]))
    perms = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")[
        "CreateVolumePermissions"]
    assert {"Group": "all"} in perms and {"UserId": b_id} in perms
    ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission",
                                  OperationType="remove", UserIds=[b_id])
    ec2.reset_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
    assert ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []
    expect_code("InvalidSnapshot.NotFound", b.create_volume, AvailabilityZone=ZONE, SnapshotId=sid)
    assert sid not in ids_of(snaps(cc))
    # B's own volume and copy stay B's.
    wait_until(lambda: volume(b, bv)["State"] == "available", what="B's volume")
    assert snap(b, copy)["State"] == "completed"
    # Encrypted snapshots (default key) cannot be shared; bad permission requests change nothing.
    enc = new_volume(ec2, size=1, Encrypted=True)
    esid = ec2.create_snapshot(VolumeId=enc)["SnapshotId"]
    for args in [dict(OperationType="add", UserIds=[b_id]),
                 dict(OperationType="add", UserIds=["12345"]),
                 dict(OperationType="add", GroupNames=["everyone"])]:
        expect_code("InvalidParameterValue", ec2.modify_snapshot_attribute, SnapshotId=esid,
                    Attribute="createVolumePermission", **args)
    expect_code("InvalidParameterValue", ec2.modify_snapshot_attribute, SnapshotId=sid,
                Attribute="productCodes", OperationType="add", UserIds=[b_id])
    expect_code("MissingParameter", ec2.modify_snapshot_attribute, SnapshotId=sid,
                Attribute="createVolumePermission", OperationType="add")
    assert ec2.describe_snapshot_attribute(SnapshotId=esid, Attribute="createVolumePermission")[
        "CreateVolumePermissions"] == []
    b.delete_volume(VolumeId=bv)
    b.delete_snapshot(SnapshotId=copy)
    for s in (sid, esid):
        ec2.delete_snapshot(SnapshotId=s)
    for v in (vid, enc):
        ec2.delete_volume(VolumeId=v)


def test_copy_snapshot_across_regions_and_encrypting(strato, ec2):
    vid = new_volume(ec2, size=5)
    sid = ec2.create_snapshot(VolumeId=vid, TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])["SnapshotId"]
    wait_snapshot(ec2, sid)
    west = strato.client(region="eu-west-1")
    assert sid not in ids_of(snaps(west))
    r = west.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=sid, Encrypted=True, Description="dr",
                           TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "site", "Value": "dr"}]}])
    wid = r["SnapshotId"]
    assert r["Tags"] == [{"Key": "site", "Value": "dr"}]
    w = wait_snapshot(west, wid)
    assert w["Encrypted"] is True and w["KmsKeyId"].startswith("arn:aws:kms:eu-west-1:")
    assert w["VolumeSize"] == 5 and w["Description"] == "dr"
    assert wid not in ids_of(snaps(ec2, OwnerIds=["self"]))
    wv = west.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=wid)
    assert wv["Encrypted"] is True and wv["Size"] == 5
    expect_code("InvalidParameterDependency", ec2.copy_snapshot, SourceRegion="us-east-1",
                SourceSnapshotId=sid, KmsKeyId="alias/aws/ebs")
    # The copy is independent of its source.
    ec2.delete_snapshot(SnapshotId=sid)
    assert snap(west, wid)["State"] == "completed"
    # The SDK adds PresignedUrl and DestinationRegion itself; a wrong destination is refused.
    local = ec2.copy_snapshot(SourceRegion="eu-west-1", SourceSnapshotId=wid)["SnapshotId"]
    assert wait_snapshot(ec2, local)["Encrypted"] is True
    # (botocore overwrites DestinationRegion with the client's region: send it raw.)
    r = signed(strato, {"Action": "CopySnapshot", "Version": EC2_VERSION, "SourceRegion": "eu-west-1",
                        "SourceSnapshotId": wid, "DestinationRegion": "us-east-1"}, region="eu-west-1")
    r.assert_ec2_error("InvalidParameterValue", 400)
    expect_code("InvalidSnapshot.NotFound", ec2.copy_snapshot, SourceRegion="ap-south-1", SourceSnapshotId=wid)
    expect_code("InvalidParameterValue", ec2.copy_snapshot, SourceRegion="xx-nowhere-1", SourceSnapshotId=wid)
    expect_code("UnsupportedOperation", ec2.copy_snapshot, SourceRegion="eu-west-1", SourceSnapshotId=wid,
                Encrypted=True, KmsKeyId="arn:aws:kms:us-east-1:111122223333:key/other")
    wait_until(lambda: volume(west, wv["VolumeId"])["State"] == "available", what="west volume")
    west.delete_volume(VolumeId=wv["VolumeId"])
    west.delete_snapshot(SnapshotId=wid)
    ec2.delete_snapshot(SnapshotId=local)
    ec2.delete_volume(VolumeId=vid)


def test_create_snapshots_of_an_instance(ec2):
    (iid,) = launch(ec2, wait="running", Placement={"AvailabilityZone": ZONE})
    vols = [new_volume(ec2, size=n) for n in (1, 2, 3)]
    ec2.create_tags(Resources=[vols[0]], Tags=[{"Key": "role", "Value": "db"}])
    for v, dev in zip(vols, ("/dev/sdf", "/dev/sdg", "/dev/sdh")):
        ec2.attach_volume(VolumeId=v, InstanceId=iid, Device=dev)
    wait_until(lambda: all(volume(ec2, v)["Attachments"][0]["State"] == "attached" for v in vols),
               what="attached")
    root = root_volume(ec2, iid)
    r = ec2.create_snapshots(InstanceSpecification={"InstanceId": iid, "ExcludeDataVolumeIds": [vols[2]],
                                                    "ExcludeBootVolume": True},
                             Description="together", CopyTagsFromSource="volume",
                             TagSpecifications=[{"ResourceType": "snapshot",
                                                 "Tags": [{"Key": "set", "Value": "s1"}]}])["Snapshots"]
    assert sorted(s["VolumeId"] for s in r) == sorted(vols[:2])
    by_vol = {s["VolumeId"]: s for s in r}
    assert {t["Key"]: t["Value"] for t in by_vol[vols[0]]["Tags"]} == {"set": "s1", "role": "db"}
    assert {t["Key"]: t["Value"] for t in by_vol[vols[1]]["Tags"]} == {"set": "s1"}
    for s in r:
        assert s["Description"] == "together" and s["State"] == "pending"
        wait_snapshot(ec2, s["SnapshotId"])
    # Without ExcludeBootVolume the root volume is in the set too.
    with_root = ec2.create_snapshots(InstanceSpecification={"InstanceId": iid})["Snapshots"]
    assert sorted(s["VolumeId"] for s in with_root) == sorted(vols + [root])
    for s in with_root:
        wait_snapshot(ec2, s["SnapshotId"])
        ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
    # The excluded volume must be an attached data volume; a bad instance changes nothing.
    before = ids_of(snaps(ec2, OwnerIds=["self"]))
    other = new_volume(ec2, size=1)
    expect_code("InvalidParameterValue", ec2.create_snapshots,
                InstanceSpecification={"InstanceId": iid, "ExcludeDataVolumeIds": [other]})
    expect_code("InvalidParameterValue", ec2.create_snapshots,
                InstanceSpecification={"InstanceId": iid, "ExcludeDataVolumeIds": [root]})
    expect_code("InvalidInstanceID.NotFound", ec2.create_snapshots,
                InstanceSpecification={"InstanceId": "i-0123456789abcdef0"})
    expect_code("DryRunOperation", ec2.create_snapshots, InstanceSpecification={"InstanceId": iid}, DryRun=True)
    assert ids_of(snaps(ec2, OwnerIds=["self"])) == before
    ec2.terminate_instances(InstanceIds=[iid])
    for s in r:
        ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
    for v in vols + [other]:
        wait_until(lambda v=v: volume(ec2, v)["State"] == "available", what="detached")
        ec2.delete_volume(VolumeId=v)


def test_pages(strato):
    creds = strato.create_account("snap-pages")
    ec2 = strato.client(creds=creds)
    vid = new_volume(ec2, size=1)
    made = sorted(ec2.create_snapshot(VolumeId=vid)["SnapshotId"] for _ in range(7))
    seen, token = [], None
    while True:
        kw = {"MaxResults": 5, "OwnerIds": ["self"]}
        if token:
            kw["NextToken"] = token
        r = ec2.describe_snapshots(**kw)
        assert len(r["Snapshots"]) <= 5
        seen += [s["SnapshotId"] for s in r["Snapshots"]]
        token = r.get("NextToken")
        if not token:
            break
    assert seen == made
    pages = list(ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"], PaginationConfig={"PageSize": 5}))
    assert sum(len(p["Snapshots"]) for p in pages) == 7
    expect_code("InvalidParameterValue", ec2.describe_snapshots, MaxResults=4)
    expect_code("InvalidParameterCombination", ec2.describe_snapshots, SnapshotIds=[made[0]], MaxResults=5)


def test_regions_and_tenancy_of_listings(strato, ec2):
    vid = new_volume(ec2)
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    west = strato.client(region="eu-west-1")
    assert sid not in ids_of(snaps(west))
    expect_code("InvalidSnapshot.NotFound", west.delete_snapshot, SnapshotId=sid)
    expect_code("InvalidSnapshot.NotFound", west.create_volume, AvailabilityZone="eu-west-1a", SnapshotId=sid)
    other = strato.client(creds=strato.create_account("snap-t"))
    assert sid not in ids_of(snaps(other))
    expect_code("InvalidVolume.NotFound", other.create_snapshot, VolumeId=vid)
    wait_snapshot(ec2, sid)
    ec2.delete_snapshot(SnapshotId=sid)
    ec2.delete_volume(VolumeId=vid)


def test_aws_cli(strato):
    vid = strato.aws("ec2", "create-volume", "--availability-zone", ZONE, "--size", "2")["VolumeId"]
    strato.aws("ec2", "wait", "volume-available", "--volume-ids", vid)
    s = strato.aws("ec2", "create-snapshot", "--volume-id", vid, "--description", "from the cli")
    sid = s["SnapshotId"]
    strato.aws("ec2", "wait", "snapshot-completed", "--snapshot-ids", sid)
    d = strato.aws("ec2", "describe-snapshots", "--owner-ids", "self",
                   "--filters", "Name=description,Values=from the cli")["Snapshots"]
    assert [x["SnapshotId"] for x in d] == [sid]
    strato.aws("ec2", "delete-snapshot", "--snapshot-id", sid)
    strato.aws("ec2", "delete-volume", "--volume-id", vid)


# --------------------------------------------------------------------------- crashes

def _store_snapshots(data_dir):
    """The snapshots the simulated host's volume store holds."""
    db = os.path.join(data_dir, "sim-volumes", "volumes.db")
    with sqlite3.connect(db) as c:
        return sorted(r[0] for r in c.execute("SELECT id FROM snapshots"))


@pytest.mark.parametrize("point", ["snapshot-create-committed", "snapshot-data-taken"])
def test_crash_while_snapshotting_converges(point):
    """Killed after the snapshot's record committed, or after the host took it: after a
    restart it is completed, and the host holds exactly the snapshots the API shows."""
    s = Strato().start()
    try:
        vid = new_volume(s.client(), size=1)
        s.stop()
        crashing = start_crashing(s.data_dir, point)
        try:
            crashing.client().create_snapshot(VolumeId=vid)
        except Exception:
            pass
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            listed = snaps(ec2, OwnerIds=["self"])
            assert len(listed) == 1, listed
            sid = listed[0]["SnapshotId"]
            wait_snapshot(ec2, sid)
            assert _store_snapshots(s.data_dir) == [sid]
            ec2.create_volume(AvailabilityZone=ZONE, SnapshotId=sid)
        finally:
            again.stop()
    finally:
        s.cleanup()


@pytest.mark.parametrize("point", ["snapshot-delete-committed", "snapshot-data-released"])
def test_crash_while_deleting_converges(point):
    s = Strato().start()
    try:
        ec2 = s.client()
        vid = new_volume(ec2, size=1)
        sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
        keep = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
        wait_snapshot(ec2, sid)
        wait_snapshot(ec2, keep)
        s.stop()
        crashing = start_crashing(s.data_dir, point)
        try:
            crashing.client().delete_snapshot(SnapshotId=sid)
        except Exception:
            pass
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            assert snapshot_gone(ec2, sid)
            assert ids_of(snaps(ec2, OwnerIds=["self"])) == [keep]
            wait_until(lambda: _store_snapshots(s.data_dir) == [keep], what="the data released")
        finally:
            again.stop()
    finally:
        s.cleanup()


def test_orphaned_snapshot_data_is_released_at_startup():
    """Data the host holds for a snapshot no record names (its record never committed)
    is released when Strato starts."""
    s = Strato().start()
    try:
        s.stop()
        db = os.path.join(s.data_dir, "sim-volumes", "volumes.db")
        with sqlite3.connect(db) as c:
            c.execute("INSERT INTO snapshots(id, size_bytes, encrypted) VALUES ('snap-0fedcba9876543210', 1, 0)")
        again = Strato(data_dir=s.data_dir).start()
        try:
            wait_until(lambda: _store_snapshots(s.data_dir) == [], what="the orphan released")
        finally:
            again.stop()
    finally:
        s.cleanup()
