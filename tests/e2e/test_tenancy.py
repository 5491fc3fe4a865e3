"""Tenant isolation: account B can neither see nor change anything of account A, and
names, tokens and tags are per account."""

import uuid

import pytest

from conftest import DEFAULT_IMAGE
from helpers import (
    all_instances,
    aws_error,
    client_error,
    expect_code,
    instance,
    instances_by_id,
    launch,
    signed,
    tag_dict,
    wait_state,
    wait_until,
)


@pytest.fixture(scope="module")
def creds_b(strato):
    return strato.create_account("b")


@pytest.fixture(scope="module")
def ec2b(strato, creds_b):
    return strato.client(creds_b)


@pytest.fixture(scope="module")
def a(strato, ec2):
    """Account A's resources: a running and a stopped instance, key pairs, tags."""
    run, stop = launch(ec2, count=2, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Owner", "Value": "A"}]}])
    wait_state(ec2, [run, stop], "running")
    ec2.stop_instances(InstanceIds=[stop])
    wait_state(ec2, [stop], "stopped")
    shared = ec2.create_key_pair(KeyName="shared-name", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "Owner", "Value": "A"}]}])
    only = ec2.create_key_pair(KeyName="a-only-key")
    wait_until(lambda: "is running" in ec2.get_console_output(InstanceId=run).get("Output", ""), what="console")
    return {"run": run, "stop": stop, "shared": shared, "only": only}


def snapshot(ec2, a):
    inst = instances_by_id(ec2, [a["run"], a["stop"]])
    attrs = {
        iid: {
            "type": inst[iid]["InstanceType"],
            "state": inst[iid]["State"]["Name"],
            "tags": tag_dict(inst[iid]),
            "dat": ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
                "DisableApiTermination"]["Value"],
            "das": ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiStop")[
                "DisableApiStop"]["Value"],
            "sb": ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")[
                "InstanceInitiatedShutdownBehavior"]["Value"],
        }
        for iid in (a["run"], a["stop"])
    }
    keys = {k["KeyName"]: (k["KeyPairId"], k["KeyFingerprint"], tag_dict(k))
            for k in ec2.describe_key_pairs()["KeyPairs"]}
    boots = ec2.get_console_output(InstanceId=a["run"])["Output"].count("boot #")
    return attrs, keys, boots


def test_caller_identity_differs(strato, ec2, ec2b, creds_b):
    ida = strato.client(service="sts").get_caller_identity()
    idb = strato.client(creds_b, service="sts").get_caller_identity()
    assert ida["Account"] != idb["Account"]
    assert idb["Arn"] == f"arn:aws:iam::{idb['Account']}:root"
    cli = strato.aws("sts", "get-caller-identity", creds=creds_b)
    assert cli["Account"] == idb["Account"]
    r = ec2b.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1)
    assert r["OwnerId"] == idb["Account"]
    d = ec2b.describe_instances(InstanceIds=[r["Instances"][0]["InstanceId"]])
    assert d["Reservations"][0]["OwnerId"] == idb["Account"]


def test_instances_invisible_across_accounts(strato, ec2, ec2b, creds_b, a):
    (b_own,) = launch(ec2b)
    b_seen = {i["InstanceId"] for i in all_instances(ec2b)}
    assert a["run"] not in b_seen and a["stop"] not in b_seen
    assert b_own in b_seen
    a_seen = {i["InstanceId"] for i in all_instances(ec2)}
    assert b_own not in a_seen
    # Paged listings too.
    token, paged = None, set()
    while True:
        kw = {"MaxResults": 5, **({"NextToken": token} if token else {})}
        r = ec2b.describe_instances(**kw)
        paged |= {i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]}
        token = r.get("NextToken")
        if not token:
            break
    assert a["run"] not in paged and a["stop"] not in paged
    # By id, by filter.
    expect_code("InvalidInstanceID.NotFound", ec2b.describe_instances, InstanceIds=[a["run"]])
    expect_code("InvalidInstanceID.NotFound", ec2b.describe_instances, InstanceIds=[b_own, a["stop"]])
    r = ec2b.describe_instances(Filters=[{"Name": "instance-id", "Values": [a["run"], a["stop"]]}])
    assert r["Reservations"] == []
    r = ec2b.describe_instances(Filters=[{"Name": "tag:Owner", "Values": ["A"]}])
    assert r["Reservations"] == []
    assert aws_error(strato, "ec2", "describe-instances", "--instance-ids", a["run"], creds=creds_b) \
        == "InvalidInstanceID.NotFound"


def test_instance_status_invisible(ec2b, a):
    expect_code("InvalidInstanceID.NotFound", ec2b.describe_instance_status, InstanceIds=[a["run"]])
    expect_code("InvalidInstanceID.NotFound", ec2b.describe_instance_status, InstanceIds=[a["stop"]],
                IncludeAllInstances=True)
    seen = {s["InstanceId"] for s in ec2b.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]}
    assert a["run"] not in seen and a["stop"] not in seen


def test_instance_actions_on_foreign_ids_are_not_found_and_change_nothing(strato, ec2, ec2b, creds_b, a):
    before = snapshot(ec2, a)
    (b_own,) = launch(ec2b, wait="running")
    calls = [
        (ec2b.stop_instances, dict(InstanceIds=[a["run"]])),
        (ec2b.stop_instances, dict(InstanceIds=[a["run"]], Force=True)),
        (ec2b.start_instances, dict(InstanceIds=[a["stop"]])),
        (ec2b.reboot_instances, dict(InstanceIds=[a["run"]])),
        (ec2b.terminate_instances, dict(InstanceIds=[a["run"]])),
        (ec2b.terminate_instances, dict(InstanceIds=[a["stop"]])),
        (ec2b.terminate_instances, dict(InstanceIds=[b_own, a["run"]])),
        (ec2b.modify_instance_attribute, dict(InstanceId=a["run"], DisableApiTermination={"Value": True})),
        (ec2b.modify_instance_attribute, dict(InstanceId=a["run"], DisableApiStop={"Value": True})),
        (ec2b.modify_instance_attribute, dict(InstanceId=a["run"],
                                              InstanceInitiatedShutdownBehavior={"Value": "terminate"})),
        (ec2b.modify_instance_attribute, dict(InstanceId=a["stop"], InstanceType={"Value": "m5.large"})),
        (ec2b.modify_instance_attribute, dict(InstanceId=a["stop"], UserData={"Value": b"#!/bin/sh\npoweroff\n"})),
        (ec2b.describe_instance_attribute, dict(InstanceId=a["run"], Attribute="instanceType")),
        (ec2b.describe_instance_attribute, dict(InstanceId=a["stop"], Attribute="userData")),
        (ec2b.get_console_output, dict(InstanceId=a["run"])),
    ]
    for fn, kw in calls:
        expect_code("InvalidInstanceID.NotFound", fn, **kw)
        # A dry run must not reveal that the id exists elsewhere.
        expect_code("InvalidInstanceID.NotFound", fn, DryRun=True, **kw)
    for action in ("StopInstances", "TerminateInstances", "RebootInstances"):
        signed(strato, {"Action": action, "Version": "2016-11-15", "InstanceId.1": a["run"]},
               creds=creds_b).assert_ec2_error("InvalidInstanceID.NotFound")
    assert aws_error(strato, "ec2", "terminate-instances", "--instance-ids", a["run"], creds=creds_b) \
        == "InvalidInstanceID.NotFound"
    # B's own instance in the mixed call was not touched either.
    assert instance(ec2b, b_own)["State"]["Name"] == "running"
    assert snapshot(ec2, a) == before
    # And A can still drive its instances.
    assert instance(ec2, a["run"])["State"]["Name"] == "running"


def test_key_pairs_are_per_account(strato, ec2, ec2b, a):
    b_names = {k["KeyName"] for k in ec2b.describe_key_pairs()["KeyPairs"]}
    assert "shared-name" not in b_names and "a-only-key" not in b_names
    expect_code("InvalidKeyPair.NotFound", ec2b.describe_key_pairs, KeyNames=["shared-name"])
    expect_code("InvalidKeyPair.NotFound", ec2b.describe_key_pairs, KeyPairIds=[a["shared"]["KeyPairId"]])
    r = ec2b.describe_key_pairs(Filters=[{"Name": "key-pair-id", "Values": [a["shared"]["KeyPairId"]]}])
    assert r["KeyPairs"] == []
    # B may use the same name; it is a different key.
    bk = ec2b.create_key_pair(KeyName="shared-name")
    assert bk["KeyPairId"] != a["shared"]["KeyPairId"]
    assert bk["KeyFingerprint"] != a["shared"]["KeyFingerprint"]
    assert ec2b.describe_key_pairs(KeyNames=["shared-name"])["KeyPairs"][0]["KeyPairId"] == bk["KeyPairId"]
    assert ec2.describe_key_pairs(KeyNames=["shared-name"])["KeyPairs"][0]["KeyPairId"] == a["shared"]["KeyPairId"]
    # B deleting "its" name removes only its own pair.
    ec2b.delete_key_pair(KeyName="shared-name")
    expect_code("InvalidKeyPair.NotFound", ec2b.describe_key_pairs, KeyNames=["shared-name"])
    assert ec2.describe_key_pairs(KeyNames=["shared-name"])["KeyPairs"][0]["KeyPairId"] == a["shared"]["KeyPairId"]
    # Deleting a name B never had succeeds, as on EC2, and does not touch A's.
    ec2b.delete_key_pair(KeyName="a-only-key")
    ec2b.delete_key_pair(KeyName="shared-name")
    assert {k["KeyName"] for k in ec2.describe_key_pairs(KeyNames=["a-only-key", "shared-name"])["KeyPairs"]} == {
        "a-only-key", "shared-name"}
    # By id: not found, and A's pair survives.
    expect_code("InvalidKeyPair.NotFound", ec2b.delete_key_pair, KeyPairId=a["only"]["KeyPairId"])
    expect_code("InvalidKeyPair.NotFound", ec2b.delete_key_pair, KeyPairId=a["only"]["KeyPairId"], DryRun=True)
    assert ec2.describe_key_pairs(KeyPairIds=[a["only"]["KeyPairId"]])["KeyPairs"][0]["KeyName"] == "a-only-key"
    # A duplicate check is per account too: B can import under A's name.
    pub = ec2.describe_key_pairs(KeyNames=["a-only-key"], IncludePublicKey=True)["KeyPairs"][0]["PublicKey"]
    imp = ec2b.import_key_pair(KeyName="a-only-key", PublicKeyMaterial=pub.encode())
    assert imp["KeyPairId"] != a["only"]["KeyPairId"]
    ec2b.delete_key_pair(KeyName="a-only-key")
    assert ec2.describe_key_pairs(KeyNames=["a-only-key"])["KeyPairs"][0]["KeyPairId"] == a["only"]["KeyPairId"]


def test_run_instances_with_foreign_key_name(strato, ec2b, creds_b, a):
    expect_code("InvalidKeyPair.NotFound", ec2b.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                KeyName="a-only-key")
    assert aws_error(strato, "ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--key-name", "a-only-key",
                     creds=creds_b) == "InvalidKeyPair.NotFound"


def test_tags_are_per_account(strato, ec2, ec2b, creds_b, a):
    before = snapshot(ec2, a)
    for rid in (a["run"], a["stop"]):
        expect_code("InvalidInstanceID.NotFound", ec2b.create_tags, Resources=[rid],
                    Tags=[{"Key": "Owner", "Value": "B"}])
        expect_code("InvalidInstanceID.NotFound", ec2b.delete_tags, Resources=[rid], Tags=[{"Key": "Owner"}])
        expect_code("InvalidInstanceID.NotFound", ec2b.delete_tags, Resources=[rid])
        expect_code("InvalidInstanceID.NotFound", ec2b.create_tags, Resources=[rid],
                    Tags=[{"Key": "Owner", "Value": "B"}], DryRun=True)
    expect_code("InvalidKeyPair.NotFound", ec2b.create_tags, Resources=[a["shared"]["KeyPairId"]],
                Tags=[{"Key": "Owner", "Value": "B"}])
    expect_code("InvalidKeyPair.NotFound", ec2b.delete_tags, Resources=[a["shared"]["KeyPairId"]])
    assert aws_error(strato, "ec2", "create-tags", "--resources", a["run"], "--tags", "Key=x,Value=y",
                     creds=creds_b) == "InvalidInstanceID.NotFound"
    assert snapshot(ec2, a) == before
    # DescribeTags shows only the caller's own.
    b_tags = ec2b.describe_tags()["Tags"]
    assert not {t["ResourceId"] for t in b_tags} & {a["run"], a["stop"], a["shared"]["KeyPairId"]}
    assert ec2b.describe_tags(Filters=[{"Name": "resource-id", "Values": [a["run"]]}])["Tags"] == []
    assert ec2b.describe_tags(Filters=[{"Name": "value", "Values": ["A"]}])["Tags"] == []
    # Tags on the shared image are per account.
    ec2.create_tags(Resources=[DEFAULT_IMAGE], Tags=[{"Key": "Seen", "Value": "by-A"}])
    assert "Tags" not in ec2b.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0] or \
        tag_dict(ec2b.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0]) == {}
    ec2b.create_tags(Resources=[DEFAULT_IMAGE], Tags=[{"Key": "Seen", "Value": "by-B"}])
    assert tag_dict(ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0]) == {"Seen": "by-A"}
    assert tag_dict(ec2b.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0]) == {"Seen": "by-B"}
    ec2b.delete_tags(Resources=[DEFAULT_IMAGE])
    assert tag_dict(ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0]) == {"Seen": "by-A"}
    ec2.delete_tags(Resources=[DEFAULT_IMAGE])


def test_client_tokens_are_per_account(ec2, ec2b):
    token = f"shared-{uuid.uuid4()}"
    ra = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken=token)
    # Same token, different parameters, other account: a fresh launch, not a mismatch.
    rb = ec2b.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.small", MinCount=2, MaxCount=2, ClientToken=token)
    assert rb["ReservationId"] != ra["ReservationId"]
    assert len(rb["Instances"]) == 2
    # Same token, same parameters, other account: also independent.
    rb2 = ec2b.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.small", MinCount=2, MaxCount=2, ClientToken=token)
    assert rb2["ReservationId"] == rb["ReservationId"]
    ra2 = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken=token)
    assert ra2["ReservationId"] == ra["ReservationId"]
    assert [i["InstanceId"] for i in ra2["Instances"]] == [ra["Instances"][0]["InstanceId"]]
    # A's idempotent answer contains only A's instances.
    r = ec2.describe_instances(Filters=[{"Name": "client-token", "Values": [token]}])
    assert [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]] == [
        ra["Instances"][0]["InstanceId"]]


def test_elastic_ips_are_per_account(strato, ec2, ec2b, creds_b, a):
    r = ec2.allocate_address(Domain="vpc")
    alloc, ip = r["AllocationId"], r["PublicIp"]
    assoc = ec2.associate_address(AllocationId=alloc, InstanceId=a["run"])["AssociationId"]
    assert ec2b.describe_addresses()["Addresses"] == []
    expect_code("InvalidAllocationID.NotFound", ec2b.describe_addresses, AllocationIds=[alloc])
    expect_code("InvalidAddress.NotFound", ec2b.describe_addresses, PublicIps=[ip])
    expect_code("InvalidAllocationID.NotFound", ec2b.release_address, AllocationId=alloc)
    expect_code("InvalidAssociationID.NotFound", ec2b.disassociate_address, AssociationId=assoc)
    expect_code("InvalidAllocationID.NotFound", ec2b.associate_address, AllocationId=alloc,
                InstanceId=a["run"], AllowReassociation=True)
    assert aws_error(strato, "ec2", "release-address", "--public-ip", ip,
                     creds=creds_b) == "InvalidAddress.NotFound"
    # B's own address cannot go to A's instance.
    b_alloc = ec2b.allocate_address(Domain="vpc")["AllocationId"]
    expect_code("InvalidInstanceID.NotFound", ec2b.associate_address, AllocationId=b_alloc,
                InstanceId=a["run"])
    (got,) = ec2.describe_addresses(AllocationIds=[alloc])["Addresses"]
    assert got["AssociationId"] == assoc
    assert instance(ec2, a["run"])["PublicIpAddress"] == ip
    ec2b.release_address(AllocationId=b_alloc)
    ec2.disassociate_address(AssociationId=assoc)
    ec2.release_address(AllocationId=alloc)


def test_b_cannot_see_a_terminated_instance(ec2, ec2b):
    (iid,) = launch(ec2, wait="running")
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    expect_code("InvalidInstanceID.NotFound", ec2b.describe_instances, InstanceIds=[iid])
    r = ec2b.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}])
    assert iid not in {i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]}


def test_a_still_works_after_all_of_b(ec2, a):
    ec2.reboot_instances(InstanceIds=[a["run"]])
    wait_until(lambda: "boot #2" in ec2.get_console_output(InstanceId=a["run"]).get("Output", ""),
               what="A's own reboot")
    ec2.start_instances(InstanceIds=[a["stop"]])
    wait_state(ec2, [a["stop"]], "running")
    code, status, _ = client_error(ec2.terminate_instances, InstanceIds=[a["run"], a["stop"]], DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
