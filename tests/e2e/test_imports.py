"""Importing disk images (simulated host; the disks are real files the host checks
with qemu-img): ImportSnapshot and ImportImage from a file of the host or an http URL,
their tasks' progress and status messages, images booting what was imported,
files that are not disk images failing with nothing left behind, CancelImportTask,
bad requests that change nothing, and a crash while importing."""

import http.server
import os
import sqlite3
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import Strato, await_crash, start_crashing
from helpers import expect_code, launch, root_volume, wait_until


def store_snapshots(data_dir):
    db = os.path.join(data_dir, "sim-volumes", "volumes.db")
    with sqlite3.connect(db) as c:
        return sorted(r[0] for r in c.execute("SELECT id FROM snapshots"))


def snapshot_task(ec2, tid):
    (t,) = ec2.describe_import_snapshot_tasks(ImportTaskIds=[tid])["ImportSnapshotTasks"]
    return t


def image_task(ec2, tid):
    (t,) = ec2.describe_import_image_tasks(ImportTaskIds=[tid])["ImportImageTasks"]
    return t


def wait_snapshot_task(ec2, tid, status="completed", timeout=30):
    wait_until(lambda: snapshot_task(ec2, tid)["SnapshotTaskDetail"]["Status"] == status, timeout=timeout,
               what=f"{tid} {status}")
    return snapshot_task(ec2, tid)


def wait_image_task(ec2, tid, status="completed", timeout=30):
    wait_until(lambda: image_task(ec2, tid)["Status"] == status, timeout=timeout, what=f"{tid} {status}")
    return image_task(ec2, tid)


@pytest.fixture(scope="module")
def disks():
    """A qcow2 disk, a raw disk with a boot sector, a raw disk of zeros and a text file."""
    d = tempfile.mkdtemp(prefix="strato-import-")
    os.chmod(d, 0o755)
    qcow = os.path.join(d, "data.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", qcow, "3G"], check=True)
    boot = os.path.join(d, "boot.raw")
    with open(boot, "wb") as f:
        f.write(b"\0" * 510 + b"\x55\xaa")
        f.truncate(2 * 1024 * 1024)
    zeros = os.path.join(d, "zeros.raw")
    with open(zeros, "wb") as f:
        f.truncate(1024 * 1024)
    text = os.path.join(d, "notes.txt")
    with open(text, "w") as f:
        f.write("not a disk image\n")
    # GPT disks partitioned as UEFI-only images are (an EFI system partition) and as
    # Debian's and Ubuntu's cloud images are (a BIOS boot partition too).
    esp = "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
    linux = "type=0FC63DAF-8483-4772-8E79-3D69D8477DE4"
    bios = "type=21686148-6449-6E6F-744E-656564454649"
    parted = {}
    for name, parts in [("uefi", [esp, linux]), ("both", [bios, esp, linux])]:
        path = parted[name] = os.path.join(d, f"gpt-{name}.raw")
        with open(path, "wb") as f:
            f.truncate(16 * 1024 * 1024)
        subprocess.run(["sfdisk", "-q", path], input="label: gpt\n" + "".join(
            f"size=4MiB, {p}\n" for p in parts), text=True, check=True)
    yield {"dir": d, "qcow2": qcow, "boot": boot, "zeros": zeros, "text": text,
           "gpt-uefi": parted["uefi"], "gpt-both": parted["both"]}
    subprocess.run(["rm", "-rf", d])


class SlowHandler(http.server.SimpleHTTPRequestHandler):
    delay = 0.0

    def do_GET(self):
        time.sleep(self.delay)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web(disks):
    """An HTTP server on loopback serving the disks' directory."""
    handler = lambda *a, **kw: SlowHandler(*a, directory=disks["dir"], **kw)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_import_snapshot_of_a_file(strato, ec2, disks):
    r = ec2.import_snapshot(Description="data disk", DiskContainer={
        "Format": "QCOW2", "Url": disks["qcow2"], "Description": "the disk"},
        TagSpecifications=[{"ResourceType": "import-snapshot-task", "Tags": [{"Key": "k", "Value": "v"}]}])
    tid = r["ImportTaskId"]
    assert tid.startswith("import-snap-") and r["SnapshotTaskDetail"]["Status"] == "active"
    assert r["SnapshotTaskDetail"]["Format"] == "QCOW2" and r["Description"] == "data disk"
    t = wait_snapshot_task(ec2, tid)
    d = t["SnapshotTaskDetail"]
    assert d["StatusMessage"] == "completed" and d["DiskImageSize"] == 3 * 1024 ** 3
    assert {x["Key"]: x["Value"] for x in t["Tags"]} == {"k": "v"}
    (s,) = ec2.describe_snapshots(SnapshotIds=[d["SnapshotId"]])["Snapshots"]
    assert s["State"] == "completed" and s["VolumeSize"] == 3 and tid in s["Description"]
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", SnapshotId=d["SnapshotId"])["VolumeId"]
    assert ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Size"] == 3
    assert tid in [x["ImportTaskId"] for x in ec2.describe_import_snapshot_tasks()["ImportSnapshotTasks"]]


def test_import_snapshot_over_http_and_failures_leave_nothing(strato, ec2, disks, web):
    tid = ec2.import_snapshot(DiskContainer={"Format": "qcow2", "Url": f"{web}/data.qcow2"})["ImportTaskId"]
    assert wait_snapshot_task(ec2, tid)["SnapshotTaskDetail"]["SnapshotId"]
    before = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    for container, reason in [
        ({"Format": "VMDK", "Url": disks["text"]}, "is not a VMDK disk image"),
        ({"Format": "RAW", "Url": disks["text"]}, "not a whole number of 512-byte sectors"),
        ({"Format": "VHD", "Url": disks["qcow2"]}, "is a QCOW2 disk image, not VHD"),
        ({"Format": "RAW", "Url": "/nonexistent/disk.raw"}, "cannot read /nonexistent/disk.raw"),
        ({"Format": "RAW", "Url": f"{web}/missing.raw"}, "could not download"),
    ]:
        tid = ec2.import_snapshot(DiskContainer=container)["ImportTaskId"]
        d = wait_snapshot_task(ec2, tid, status="deleted")["SnapshotTaskDetail"]
        assert d["StatusMessage"].startswith("ClientError: ") and reason in d["StatusMessage"], d
        assert "SnapshotId" not in d
    after = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert after == before
    wait_until(lambda: set(store_snapshots(strato.data_dir)) >= before
               and len(store_snapshots(strato.data_dir)) == len(
                   {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}),
               what="the store holds only recorded snapshots")


def test_import_image_boots_what_was_imported(strato, ec2, disks):
    r = ec2.import_image(Description="my os", BootMode="uefi", DiskContainers=[
        {"Format": "RAW", "Url": f"file://{disks['boot']}", "DeviceName": "/dev/xvda"}],
        TagSpecifications=[{"ResourceType": "import-image-task", "Tags": [{"Key": "os", "Value": "mine"}]}])
    tid = r["ImportTaskId"]
    assert tid.startswith("import-ami-") and r["Status"] == "active" and "ImageId" not in r
    t = wait_image_task(ec2, tid)
    ami = t["ImageId"]
    assert t["Platform"] == "Linux" and t["BootMode"] == "uefi" and t["SnapshotDetails"][0]["Status"] == "completed"
    (img,) = ec2.describe_images(ImageIds=[ami])["Images"]
    assert img["State"] == "available" and img["Name"] == tid and img["BootMode"] == "uefi"
    assert img["Description"] == "my os" and {x["Key"]: x["Value"] for x in img["Tags"]} == {"os": "mine"}
    m = img["BlockDeviceMappings"][0]
    assert m["DeviceName"] == "/dev/xvda" and m["Ebs"]["VolumeSize"] == 1
    assert m["Ebs"]["SnapshotId"] == t["SnapshotDetails"][0]["SnapshotId"]
    iid = launch(ec2, ImageId=ami, wait="running")[0]
    assert root_volume(ec2, iid)
    ec2.terminate_instances(InstanceIds=[iid])
    # A disk with no partition table, boot sector or file system is no image.
    images_before = ec2.describe_images(Owners=["self"])["Images"]
    tid = ec2.import_image(DiskContainers=[{"Format": "RAW", "Url": disks["zeros"]}])["ImportTaskId"]
    t = wait_image_task(ec2, tid, status="deleted")
    assert "no partition table, boot sector or file system" in t["StatusMessage"], t
    assert "ImageId" not in t
    assert ec2.describe_images(Owners=["self"])["Images"] == images_before


def test_import_image_takes_the_boot_mode_the_partitions_show(strato, ec2, disks):
    """Without BootMode, a disk with an EFI system partition and nothing a BIOS boots
    is imported as uefi; one a BIOS boots too (a BIOS boot partition, or an MBR with
    boot code) as legacy-bios, as is one whose partitions tell nothing. A BootMode given
    wins."""
    for disk, given, want in [("gpt-uefi", None, "uefi"), ("gpt-both", None, "legacy-bios"),
                              ("boot", None, "legacy-bios"), ("gpt-uefi", "legacy-bios", "legacy-bios"),
                              ("gpt-both", "uefi", "uefi")]:
        extra = {"BootMode": given} if given else {}
        r = ec2.import_image(DiskContainers=[{"Format": "RAW", "Url": disks[disk]}], **extra)
        assert "BootMode" not in r or given
        t = wait_image_task(ec2, r["ImportTaskId"])
        assert t["BootMode"] == want, (disk, given, t)
        (img,) = ec2.describe_images(ImageIds=[t["ImageId"]])["Images"]
        assert img["BootMode"] == want, (disk, given, img)
        ec2.deregister_image(ImageId=t["ImageId"], DeleteAssociatedSnapshots=True)


def test_cancel_an_import_while_it_downloads(strato, ec2, disks, web):
    SlowHandler.delay = 3.0
    try:
        tid = ec2.import_snapshot(DiskContainer={"Format": "QCOW2", "Url": f"{web}/data.qcow2"})["ImportTaskId"]
        assert snapshot_task(ec2, tid)["SnapshotTaskDetail"]["Status"] == "active"
        r = ec2.cancel_import_task(ImportTaskId=tid, CancelReason="changed my mind")
        assert r["PreviousState"] == "active" and r["State"] == "deleting"
        d = snapshot_task(ec2, tid)["SnapshotTaskDetail"]
        assert d["Status"] == "deleted" and "changed my mind" in d["StatusMessage"]
        expect_code("IncorrectState", ec2.cancel_import_task, ImportTaskId=tid)
        time.sleep(4)
    finally:
        SlowHandler.delay = 0.0
    recorded = {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    wait_until(lambda: set(store_snapshots(strato.data_dir)) == recorded, timeout=20,
               what="the cancelled import released")


def test_bad_import_requests_change_nothing(strato, ec2, disks):
    raw = strato.client(validate=False)
    before = ec2.describe_import_snapshot_tasks()["ImportSnapshotTasks"]
    for kw, code in [
        ({"DiskContainer": {"Url": disks["qcow2"]}}, "MissingParameter"),
        ({"DiskContainer": {"Format": "ISO", "Url": disks["qcow2"]}}, "InvalidParameterValue"),
        ({"DiskContainer": {"Format": "RAW"}}, "MissingParameter"),
        ({"DiskContainer": {"Format": "RAW", "Url": "s3://bucket/key"}}, "InvalidParameterValue"),
        ({"DiskContainer": {"Format": "RAW", "UserBucket": {"S3Bucket": "b", "S3Key": "k"}}}, "UnsupportedOperation"),
        ({"DiskContainer": {"Format": "RAW", "Url": disks["boot"]},
          "TagSpecifications": [{"ResourceType": "snapshot", "Tags": [{"Key": "a", "Value": "b"}]}]},
         "InvalidParameterValue"),
        ({"DiskContainer": {"Format": "RAW", "Url": disks["boot"]}, "RoleName": "vmimport"}, "UnsupportedOperation"),
        ({"DiskContainer": {"Format": "RAW", "Url": disks["boot"]}, "DryRun": True}, "DryRunOperation"),
    ]:
        expect_code(code, raw.import_snapshot, **kw)
    for kw, code in [
        ({"DiskContainers": [{"Format": "RAW", "Url": disks["boot"]}] * 2}, "UnsupportedOperation"),
        ({"DiskContainers": [{"Format": "RAW", "Url": disks["boot"]}], "Architecture": "arm64"}, "InvalidParameterValue"),
        ({"DiskContainers": [{"Format": "RAW", "Url": disks["boot"]}], "Platform": "Windows"}, "InvalidParameterValue"),
        ({"DiskContainers": [{"SnapshotId": "snap-0123456789abcdef0"}]}, "UnsupportedOperation"),
    ]:
        expect_code(code, raw.import_image, **kw)
    assert ec2.describe_import_snapshot_tasks()["ImportSnapshotTasks"] == before
    expect_code("InvalidParameterValue", ec2.describe_import_snapshot_tasks, ImportTaskIds=["import-snap-0123456789abcdef0"])
    expect_code("InvalidParameterValue", ec2.cancel_import_task, ImportTaskId="nope")


def test_client_token_and_the_aws_cli(strato, ec2, disks):
    a = ec2.import_snapshot(ClientToken="imp-1", DiskContainer={"Format": "RAW", "Url": disks["boot"]})["ImportTaskId"]
    b = ec2.import_snapshot(ClientToken="imp-1", DiskContainer={"Format": "RAW", "Url": disks["boot"]})["ImportTaskId"]
    assert a == b
    out = strato.aws("ec2", "import-snapshot", "--disk-container", f"Format=RAW,Url={disks['boot']}")
    tid = out["ImportTaskId"]
    wait_snapshot_task(ec2, tid)
    listed = strato.aws("ec2", "describe-import-snapshot-tasks", "--import-task-ids", tid)
    assert listed["ImportSnapshotTasks"][0]["SnapshotTaskDetail"]["Status"] == "completed"


@pytest.mark.parametrize("point", ["import-committed", "snapshot-data-imported"])
def test_crash_while_importing_converges(point, disks):
    s = Strato().start()
    try:
        s.stop()
        crashing = start_crashing(s.data_dir, point)
        try:
            crashing.client().import_image(DiskContainers=[{"Format": "RAW", "Url": disks["boot"]}])
        except Exception:
            pass
        await_crash(crashing)
        again = Strato(data_dir=s.data_dir).start()
        try:
            ec2 = again.client()
            (t,) = ec2.describe_import_image_tasks()["ImportImageTasks"]
            t = wait_image_task(ec2, t["ImportTaskId"])
            (img,) = ec2.describe_images(Owners=["self"])["Images"]
            assert img["ImageId"] == t["ImageId"]
            snaps = [x["SnapshotId"] for x in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]]
            assert snaps == [t["SnapshotDetails"][0]["SnapshotId"]]
            wait_until(lambda: store_snapshots(s.data_dir) == snaps, what="the store holds the one snapshot")
        finally:
            again.stop()
    finally:
        s.cleanup()


def test_operators_publish_an_image_with_strato_images_import(strato, ec2, disks):
    out = strato.cli("images", "import", disks["boot"], "--name", "debian-12-amd64-test", "--public",
                     "--description", "published").stdout
    ami = out.split()[0]
    assert ami.startswith("ami-") and "public" in out, out
    other = strato.client(creds=strato.create_account("img-pub"))
    found = other.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["debian-12*"]}])["Images"]
    assert [i["ImageId"] for i in found] == [ami]
    assert found[0]["ImageOwnerAlias"] == "strato" and found[0]["Public"] is True
    assert found[0]["Description"] == "published"
    iid = launch(other, ImageId=ami, wait="running")[0]
    assert root_volume(other, iid)
    expect_code("AuthFailure", other.deregister_image, ImageId=ami)
    other.terminate_instances(InstanceIds=[iid])
    # --if-missing (quickstart publishes debian-12-amd64 this way): the image is there, so
    # nothing is imported again; under a new name it is.
    again = strato.cli("images", "import", disks["boot"], "--name", "debian-12-amd64-test", "--public",
                       "--if-missing").stdout
    assert again.split()[0] == ami and "already published" in again, again
    debian = lambda: other.describe_images(Owners=["strato"], Filters=[{"Name": "name", "Values": ["debian-12*"]}])["Images"]
    assert len(debian()) == 1
    fresh = strato.cli("images", "import", disks["boot"], "--name", "debian-12-amd64-new", "--public",
                       "--if-missing").stdout.split()[0]
    assert fresh != ami and len(debian()) == 2
    strato.client().deregister_image(ImageId=fresh)
    # A file that is not a disk image fails with the host's reason, and nothing is published.
    bad = strato.cli("images", "import", disks["text"], "--name", "bad-one", "--format", "vmdk", check=False)
    assert bad.returncode != 0 and "not a VMDK disk image" in bad.stderr, bad.stderr
