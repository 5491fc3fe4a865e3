"""Images of one's own (simulated host): CreateImage of an instance, RegisterImage of
snapshots, launching them (volumes made of the image's snapshots), DescribeImages
with owners, executable-by and filters, the image attributes and sharing across
accounts, deprecation, CopyImage across regions, DeregisterImage with its snapshots,
bad input that changes nothing, and crashes while an image is made."""

import datetime
import re

import pytest

from conftest import Strato, await_crash, start_crashing
from helpers import DEFAULT_IMAGE, client_error, expect_code, launch, root_volume, wait_state, wait_until

ZONE = "us-east-1a"
MISSING = "ami-0123456789abcdef0"


def image(ec2, iid):
    (img,) = ec2.describe_images(ImageIds=[iid])["Images"]
    return img


def wait_image(ec2, iid, state="available", timeout=30):
    wait_until(lambda: image(ec2, iid)["State"] == state, timeout=timeout, what=f"{iid} {state}")
    return image(ec2, iid)


def own_images(ec2, **kw):
    return sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"], **kw)["Images"])


def instance_volumes(ec2, iid):
    vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]
    return {v["Attachments"][0]["Device"]: v for v in vols}


def new_volume(ec2, size=2):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=size)["VolumeId"]
    wait_until(lambda: ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["State"] == "available",
               what=f"{vid} available")
    return vid


def snapshot_of(ec2, vid):
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return sid


def test_create_image_of_an_instance_and_launch_it(strato, ec2):
    iid = launch(ec2, wait="running", Placement={"AvailabilityZone": ZONE}, BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 10}},
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 3, "VolumeType": "gp3", "DeleteOnTermination": False}}])[0]
    wait_until(lambda: len(instance_volumes(ec2, iid)) == 2, what="both volumes")
    ami = ec2.create_image(InstanceId=iid, Name="web (v1)", Description="baked", NoReboot=True,
                           TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "role", "Value": "web"}]},
                                              {"ResourceType": "snapshot", "Tags": [{"Key": "of", "Value": "web"}]}])["ImageId"]
    assert re.fullmatch(r"ami-[0-9a-f]{17}", ami)
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    img = image(ec2, ami)
    me = img["OwnerId"]
    assert img["State"] == "available" and img["Name"] == "web (v1)" and img["Description"] == "baked"
    assert img["Public"] is False and img["RootDeviceName"] == "/dev/xvda" and img["RootDeviceType"] == "ebs"
    assert img["SourceInstanceId"] == iid and img["KernelId"] == "aki-05a9d2c7e4b1f3801"
    assert img["ImageLocation"] == f"{me}/web (v1)"
    assert {t["Key"]: t["Value"] for t in img["Tags"]} == {"role": "web"}
    maps = {m["DeviceName"]: m["Ebs"] for m in img["BlockDeviceMappings"]}
    assert sorted(maps) == ["/dev/sdf", "/dev/xvda"]
    assert maps["/dev/xvda"]["VolumeSize"] == 10 and maps["/dev/xvda"]["DeleteOnTermination"] is True
    assert maps["/dev/sdf"]["VolumeSize"] == 3 and maps["/dev/sdf"]["DeleteOnTermination"] is False
    assert maps["/dev/sdf"]["VolumeType"] == "gp3"
    snaps = ec2.describe_snapshots(SnapshotIds=[e["SnapshotId"] for e in maps.values()])["Snapshots"]
    assert all(s["State"] == "completed" and f"for {ami}" in s["Description"] for s in snaps)
    assert all({t["Key"]: t["Value"] for t in s["Tags"]} == {"of": "web"} for s in snaps)
    for name, value in [("block-device-mapping.snapshot-id", maps["/dev/sdf"]["SnapshotId"]),
                        ("block-device-mapping.device-name", "/dev/sdf"), ("name", "web*"),
                        ("source-instance-id", iid), ("state", "available"), ("tag:role", "web"),
                        ("block-device-mapping.volume-size", "10"), ("is-public", "false")]:
        assert ami in own_images(ec2, Filters=[{"Name": name, "Values": [value]}]), name
    assert ami not in own_images(ec2, Filters=[{"Name": "state", "Values": ["pending"]}])
    # The image's snapshots cannot go while it is registered.
    expect_code("InvalidSnapshot.InUse", ec2.delete_snapshot, SnapshotId=maps["/dev/sdf"]["SnapshotId"])

    # Launching it gives volumes made of its snapshots, as its mappings say, and the
    # launch may grow them.
    new = launch(ec2, ImageId=ami, wait="running", Placement={"AvailabilityZone": ZONE},
                 BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 5}}])[0]
    vols = wait_until(lambda: (v := instance_volumes(ec2, new)) and len(v) == 2 and v, what="image volumes")
    assert vols["/dev/xvda"]["SnapshotId"] == maps["/dev/xvda"]["SnapshotId"] and vols["/dev/xvda"]["Size"] == 10
    assert vols["/dev/sdf"]["SnapshotId"] == maps["/dev/sdf"]["SnapshotId"] and vols["/dev/sdf"]["Size"] == 5
    assert vols["/dev/sdf"]["Attachments"][0]["DeleteOnTermination"] is False
    inst = ec2.describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"][0]
    assert inst["ImageId"] == ami and inst["RootDeviceName"] == "/dev/xvda"
    # A smaller volume than the image's, and another snapshot, are refused.
    expect_code("InvalidBlockDeviceMapping", ec2.run_instances, ImageId=ami, MinCount=1, MaxCount=1,
                BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 9}}])
    # NoDevice leaves an image's data volume out.
    third = launch(ec2, ImageId=ami, wait="running", BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "NoDevice": ""}])[0]
    wait_until(lambda: list(instance_volumes(ec2, third)) == ["/dev/xvda"], what="root volume only")
    ec2.terminate_instances(InstanceIds=[iid, new, third])


def test_create_image_of_a_stopped_instance_and_bad_requests_change_nothing(strato, ec2):
    iid = launch(ec2, wait="running")[0]
    root = root_volume(ec2, iid)
    before = own_images(ec2)
    snaps_before = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    raw = strato.client(validate=False)
    for kw, code in [
        ({"Name": "x"}, "InvalidParameterValue"),
        ({"Name": "bad*name"}, "InvalidAMIName.Malformed"),
        ({"Name": "ok-name", "Description": "d" * 256}, "InvalidParameterValue"),
        ({"Name": "ok-name", "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "NoDevice": ""}]},
         "InvalidBlockDeviceMapping"),
        ({"Name": "ok-name", "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 2}}]},
         "InvalidBlockDeviceMapping"),
        ({"Name": "ok-name", "BlockDeviceMappings": [{"DeviceName": "/dev/sdg", "Ebs": {}}]}, "MissingParameter"),
        ({"Name": "ok-name", "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "a", "Value": "b"}]}]},
         "InvalidParameterValue"),
    ]:
        expect_code(code, raw.create_image, InstanceId=iid, **kw)
    expect_code("InvalidInstanceID.NotFound", ec2.create_image, InstanceId="i-0123456789abcdef0", Name="ok-name")
    expect_code("InvalidInstanceID.Malformed", ec2.create_image, InstanceId="i-nope", Name="ok-name")
    expect_code("DryRunOperation", ec2.create_image, InstanceId=iid, Name="ok-name", DryRun=True)
    assert own_images(ec2) == before
    assert {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]} == snaps_before

    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "stopped")
    ami = ec2.create_image(InstanceId=iid, Name="stopped-one", BlockDeviceMappings=[
        {"DeviceName": "/dev/sdh", "Ebs": {"VolumeSize": 4, "VolumeType": "io1", "Iops": 200}},
        {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}])["ImageId"]
    img = wait_image(ec2, ami)
    maps = {m["DeviceName"]: m for m in img["BlockDeviceMappings"]}
    assert maps["/dev/sdh"]["Ebs"]["VolumeSize"] == 4 and maps["/dev/sdh"]["Ebs"]["Iops"] == 200
    assert "SnapshotId" not in maps["/dev/sdh"]["Ebs"]
    assert maps["/dev/sdb"]["VirtualName"] == "ephemeral0"
    assert maps["/dev/xvda"]["Ebs"]["SnapshotId"]
    # The name is taken now; the instance is untouched.
    expect_code("InvalidAMIName.Duplicate", ec2.create_image, InstanceId=iid, Name="stopped-one")
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["State"]["Name"] == "stopped" and root_volume(ec2, iid) == root
    # A launch gets an empty io1 data volume as the image maps it.
    new = launch(ec2, ImageId=ami, wait="running")[0]
    vols = wait_until(lambda: (v := instance_volumes(ec2, new)) and len(v) == 2 and v, what="volumes")
    assert vols["/dev/sdh"]["VolumeType"] == "io1" and vols["/dev/sdh"]["Iops"] == 200
    assert not vols["/dev/sdh"].get("SnapshotId")
    ec2.terminate_instances(InstanceIds=[iid, new])


def test_register_image_of_a_snapshot(strato, ec2):
    vid = new_volume(ec2, size=2)
    sid = snapshot_of(ec2, vid)
    ami = ec2.register_image(Name="from-snap", RootDeviceName="/dev/xvda", Architecture="x86_64",
                             BootMode="uefi", EnaSupport=True, ImdsSupport="v2.0", VirtualizationType="hvm",
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda",
                                                   "Ebs": {"SnapshotId": sid, "VolumeSize": 4}}],
                             TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}])["ImageId"]
    img = image(ec2, ami)
    assert img["State"] == "available" and img["BootMode"] == "uefi" and img["ImdsSupport"] == "v2.0"
    assert img["EnaSupport"] is True and "KernelId" not in img
    assert img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == sid
    assert img["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 4
    assert ec2.describe_image_attribute(ImageId=ami, Attribute="bootMode")["BootMode"]["Value"] == "uefi"
    # ImdsSupport v2.0: its instances require tokens unless the launch says otherwise.
    iid = launch(ec2, ImageId=ami, wait="running")[0]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["MetadataOptions"]["HttpTokens"] == "required"
    loose = launch(ec2, ImageId=ami, MetadataOptions={"HttpTokens": "optional"})[0]
    inst = ec2.describe_instances(InstanceIds=[loose])["Reservations"][0]["Instances"][0]
    assert inst["MetadataOptions"]["HttpTokens"] == "optional"
    assert instance_volumes(ec2, iid)["/dev/xvda"]["Size"] == 4
    # With the built-in kernel it boots that kernel; other kernels do not exist.
    k = ec2.register_image(Name="from-snap-kernel", RootDeviceName="/dev/xvda", KernelId="aki-05a9d2c7e4b1f3801",
                           BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}])["ImageId"]
    assert image(ec2, k)["KernelId"] == "aki-05a9d2c7e4b1f3801" and image(ec2, k)["RamdiskId"] == "ari-05a9d2c7e4b1f3801"
    before = own_images(ec2)
    bad = [
        ({"Name": "reg-1", "RootDeviceName": "/dev/xvda",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}]}, "InvalidBlockDeviceMapping"),
        ({"Name": "reg-1", "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}]},
         "MissingParameter"),
        ({"Name": "reg-1", "RootDeviceName": "/dev/xvda", "KernelId": "aki-0123456789abcdef0",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}]}, "InvalidParameterValue"),
        ({"Name": "reg-1", "RootDeviceName": "/dev/xvda", "Architecture": "arm64",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}]}, "InvalidParameterValue"),
        ({"Name": "reg-1", "RootDeviceName": "/dev/xvda",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}]},
         "InvalidSnapshot.NotFound"),
        ({"Name": "reg-1", "RootDeviceName": "/dev/xvda",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid, "VolumeSize": 1}}]},
         "InvalidParameterValue"),
        ({"Name": "from-snap", "RootDeviceName": "/dev/xvda",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}]}, "InvalidAMIName.Duplicate"),
        ({"Name": "reg-1", "RootDeviceName": "/dev/xvda", "TpmSupport": "v2.0",
          "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}]}, "UnsupportedOperation"),
    ]
    raw = strato.client(validate=False)
    for kw, code in bad:
        expect_code(code, raw.register_image, **kw)
    assert own_images(ec2) == before
    ec2.terminate_instances(InstanceIds=[iid, loose])


def test_sharing_an_image_with_another_account(strato, ec2):
    vid = new_volume(ec2, size=1)
    sid = snapshot_of(ec2, vid)
    ami = ec2.register_image(Name="shared-one", RootDeviceName="/dev/xvda", KernelId="aki-05a9d2c7e4b1f3801",
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}])["ImageId"]
    creds_b = strato.create_account("img-b")
    b = strato.client(creds=creds_b)
    b_id = strato.client(creds=creds_b, service="sts").get_caller_identity()["Account"]
    # Private: invisible and unlaunchable for b.
    expect_code("InvalidAMIID.NotFound", b.describe_images, ImageIds=[ami])
    expect_code("InvalidAMIID.NotFound", b.run_instances, ImageId=ami, MinCount=1, MaxCount=1)
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": b_id}]})
    perms = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert perms == [{"UserId": b_id}]
    assert ami in [i["ImageId"] for i in b.describe_images(ExecutableUsers=["self"])["Images"]]
    assert ami not in [i["ImageId"] for i in b.describe_images(Owners=["self"])["Images"]]
    assert image(b, ami)["OwnerId"] == image(ec2, ami)["OwnerId"]
    # b launches it (its root volume made of a's snapshot, which b cannot see) ...
    iid = launch(b, ImageId=ami, wait="running")[0]
    assert root_volume(b, iid)
    expect_code("InvalidSnapshot.NotFound", b.describe_snapshots, SnapshotIds=[sid])
    # ... and changes nothing about it.
    expect_code("AuthFailure", b.modify_image_attribute, ImageId=ami, Description={"Value": "mine"})
    expect_code("AuthFailure", b.describe_image_attribute, ImageId=ami, Attribute="launchPermission")
    expect_code("AuthFailure", b.deregister_image, ImageId=ami)
    expect_code("AuthFailure", b.enable_image_deprecation, ImageId=ami,
                DeprecateAt=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1))
    # The query form of the same change, and public images.
    ec2.modify_image_attribute(ImageId=ami, Attribute="launchPermission", OperationType="remove", UserIds=[b_id])
    expect_code("InvalidAMIID.NotFound", b.describe_images, ImageIds=[ami])
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"Group": "all"}]})
    assert image(b, ami)["Public"] is True
    assert ami in [i["ImageId"] for i in b.describe_images(ExecutableUsers=["all"])["Images"]]
    ec2.reset_image_attribute(ImageId=ami, Attribute="launchPermission")
    expect_code("InvalidAMIID.NotFound", b.describe_images, ImageIds=[ami])
    assert image(ec2, ami)["Public"] is False
    expect_code("InvalidParameterValue", ec2.modify_image_attribute, ImageId=ami,
                LaunchPermission={"Add": [{"UserId": "12345"}]})
    expect_code("InvalidParameterCombination", ec2.modify_image_attribute, ImageId=ami,
                Description={"Value": "x"}, LaunchPermission={"Add": [{"Group": "all"}]})
    ec2.modify_image_attribute(ImageId=ami, Description={"Value": "now described"})
    assert ec2.describe_image_attribute(ImageId=ami, Attribute="description")["Description"]["Value"] == "now described"
    # The built-in image belongs to nobody: no one modifies it.
    expect_code("AuthFailure", ec2.modify_image_attribute, ImageId=DEFAULT_IMAGE, Description={"Value": "x"})
    b.terminate_instances(InstanceIds=[iid])


def test_deprecation_hides_an_image_from_others(strato, ec2):
    vid = new_volume(ec2, size=1)
    sid = snapshot_of(ec2, vid)
    ami = ec2.register_image(Name="old-one", RootDeviceName="/dev/xvda",
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}])["ImageId"]
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"Group": "all"}]})
    b = strato.client(creds=strato.create_account("img-dep"))
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    ec2.enable_image_deprecation(ImageId=ami, DeprecateAt=past)
    assert image(ec2, ami)["DeprecationTime"].startswith(past.strftime("%Y-%m-%dT%H:%M"))
    assert ami in own_images(ec2)
    listed = lambda **kw: [i["ImageId"] for i in b.describe_images(ExecutableUsers=["all"], **kw)["Images"]]
    assert ami not in listed()
    assert ami in listed(IncludeDeprecated=True)
    assert image(b, ami)["ImageId"] == ami  # by id, always
    ec2.disable_image_deprecation(ImageId=ami)
    assert "DeprecationTime" not in image(ec2, ami) and ami in listed()
    expect_code("InvalidParameterValue", ec2.enable_image_deprecation, ImageId=ami,
                DeprecateAt=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3700 * 1.0))


def test_copy_image_across_regions(strato, ec2):
    iid = launch(ec2, wait="running")[0]
    ami = ec2.create_image(InstanceId=iid, Name="to-copy", NoReboot=True,
                           TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "app", "Value": "x"}]}])["ImageId"]
    wait_image(ec2, ami)
    west = strato.client(region="eu-west-1")
    expect_code("InvalidAMIID.NotFound", west.describe_images, ImageIds=[ami])
    copy = west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="copied", CopyImageTags=True,
                           ClientToken="copy-1")["ImageId"]
    again = west.copy_image(SourceImageId=ami, SourceRegion="us-east-1", Name="copied", ClientToken="copy-1")["ImageId"]
    assert again == copy
    img = wait_image(west, copy)
    assert img["SourceImageId"] == ami and img["SourceImageRegion"] == "us-east-1"
    assert {t["Key"]: t["Value"] for t in img["Tags"]} == {"app": "x"}
    src_snap = image(ec2, ami)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    new_snap = img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert new_snap != src_snap
    assert west.describe_snapshots(SnapshotIds=[new_snap])["Snapshots"][0]["State"] == "completed"
    expect_code("InvalidAMIID.NotFound", ec2.describe_images, ImageIds=[copy])
    wid = launch(west, ImageId=copy, wait="running")[0]
    assert root_volume(west, wid)
    expect_code("InvalidAMIID.NotFound", west.copy_image, SourceImageId=MISSING, SourceRegion="us-east-1", Name="copy-n1")
    expect_code("InvalidParameterValue", west.copy_image, SourceImageId=DEFAULT_IMAGE, SourceRegion="us-east-1",
                Name="copy-n2")
    west.terminate_instances(InstanceIds=[wid])
    ec2.terminate_instances(InstanceIds=[iid])


def test_deregister_with_and_without_snapshots(strato, ec2):
    iid = launch(ec2, wait="running")[0]
    keep = ec2.create_image(InstanceId=iid, Name="dereg-keep", NoReboot=True)["ImageId"]
    drop = ec2.create_image(InstanceId=iid, Name="dereg-drop", NoReboot=True)["ImageId"]
    keep_snap = wait_image(ec2, keep)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    drop_snap = wait_image(ec2, drop)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    running = launch(ec2, ImageId=drop, wait="running")[0]
    expect_code("DryRunOperation", ec2.deregister_image, ImageId=keep, DryRun=True)
    ec2.deregister_image(ImageId=keep)
    expect_code("InvalidAMIID.NotFound", ec2.describe_images, ImageIds=[keep])
    expect_code("InvalidAMIID.NotFound", ec2.run_instances, ImageId=keep, MinCount=1, MaxCount=1)
    expect_code("InvalidAMIID.NotFound", ec2.deregister_image, ImageId=keep)
    # Its snapshot stays, no longer in use; its name is free again.
    ec2.delete_snapshot(SnapshotId=keep_snap)
    r = ec2.deregister_image(ImageId=drop, DeleteAssociatedSnapshots=True)
    assert r["DeleteSnapshotResults"] == [{"SnapshotId": drop_snap, "ReturnCode": "success"}]
    wait_until(lambda: client_error(ec2.describe_snapshots, SnapshotIds=[drop_snap])[0] == "InvalidSnapshot.NotFound",
               what="snapshot gone")
    # The instance launched from it keeps running and can stop and start.
    ec2.stop_instances(InstanceIds=[running])
    wait_state(ec2, [running], "stopped")
    ec2.start_instances(InstanceIds=[running])
    wait_state(ec2, [running], "running")
    again = ec2.create_image(InstanceId=iid, Name="dereg-keep", NoReboot=True)["ImageId"]
    wait_image(ec2, again)
    ec2.terminate_instances(InstanceIds=[iid, running])


def test_the_aws_cli_makes_and_waits_for_an_image(strato, ec2):
    iid = launch(ec2, wait="running")[0]
    out = strato.aws("ec2", "create-image", "--instance-id", iid, "--name", "cli-image", "--no-reboot")
    ami = out["ImageId"]
    strato.aws("ec2", "wait", "image-available", "--image-ids", ami)
    listed = strato.aws("ec2", "describe-images", "--owners", "self", "--filters", "Name=name,Values=cli-*")
    assert [i["ImageId"] for i in listed["Images"]] == [ami]
    strato.aws("ec2", "deregister-image", "--image-id", ami, "--delete-associated-snapshots")
    ec2.terminate_instances(InstanceIds=[iid])


@pytest.mark.parametrize("point", ["image-create-committed", "snapshot-data-taken"])
def test_crash_while_creating_an_image_converges(point):
    """Killed after the image and its snapshots committed, or after the host took the
    snapshots: after a restart the image becomes available, nothing is orphaned."""
    s = Strato().start()
    try:
        ec2 = s.client()
        iid = launch(ec2, wait="running")[0]
        s.stop()
        crashing = start_crashing(s.data_dir, point)
        try:
            crashing.client().create_image(InstanceId=iid, Name="crashy", NoReboot=True)
        except Exception:
            pass
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            (ami,) = own_images(ec2)
            img = wait_image(ec2, ami)
            (m,) = img["BlockDeviceMappings"]
            snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
            assert [x["SnapshotId"] for x in snaps] == [m["Ebs"]["SnapshotId"]]
            assert snaps[0]["State"] == "completed"
            launch(ec2, ImageId=ami, wait="running")
        finally:
            again.stop()
    finally:
        s.cleanup()


def test_crash_while_copying_or_deregistering_converges():
    """Killed after CopyImage committed, or after DeregisterImage with its snapshots
    committed: after a restart the copy becomes available with its own snapshot, and
    the deregistered image's snapshot is released, nothing orphaned."""
    s = Strato().start()
    try:
        ec2 = s.client()
        iid = launch(ec2, wait="running")[0]
        ami = ec2.create_image(InstanceId=iid, Name="crash-src", NoReboot=True)["ImageId"]
        src_snap = wait_image(ec2, ami)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        s.stop()
        crashing = start_crashing(s.data_dir, "image-copy-committed")
        try:
            crashing.client(region="eu-west-1").copy_image(SourceImageId=ami, SourceRegion="us-east-1",
                                                           Name="crash-copy")
        except Exception:
            pass
        await_crash(crashing)
        s.start()
        west = s.client(region="eu-west-1")
        (copy,) = own_images(west)
        copy_snap = wait_image(west, copy)["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
        assert copy_snap != src_snap
        s.stop()
        crashing = start_crashing(s.data_dir, "image-deregister-committed")
        try:
            crashing.client().deregister_image(ImageId=ami, DeleteAssociatedSnapshots=True)
        except Exception:
            pass
        await_crash(crashing)
        s.start()
        ec2 = s.client()
        assert own_images(ec2) == []
        wait_until(lambda: client_error(ec2.describe_snapshots, SnapshotIds=[src_snap])[0]
                   == "InvalidSnapshot.NotFound", what="the source snapshot released")
        assert own_images(s.client(region="eu-west-1")) == [copy]
    finally:
        s.cleanup()
