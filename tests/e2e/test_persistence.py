"""State survives a restart: a clean SIGTERM and a kill -9. Each test runs its own
server(s) on one data directory."""

import signal
import time
import uuid

import pytest

from conftest import DEFAULT_IMAGE, Strato
from helpers import instances_by_id, launch, tag_dict, wait_state, wait_until


@pytest.fixture
def servers():
    """Yields a list to register servers in; all are stopped (and the first one's data
    directory removed) at the end."""
    started = []
    yield started
    for s in reversed(started):
        s.cleanup()


def console(ec2, iid):
    return ec2.get_console_output(InstanceId=iid).get("Output", "")


def snapshot(ec2, ids):
    inst = instances_by_id(ec2, ids)
    instances = {
        iid: {
            "state": i["State"],
            "type": i["InstanceType"],
            "tags": tag_dict(i),
            "launch": i["LaunchTime"],
            "key": i.get("KeyName"),
            "az": i["Placement"]["AvailabilityZone"],
            "reason": i.get("StateReason", {}).get("Code"),
            "transition": i["StateTransitionReason"],
            "token": i.get("ClientToken"),
            "dat": ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
                "DisableApiTermination"]["Value"],
            "ud": ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData").get("UserData", {}).get("Value"),
        }
        for iid, i in inst.items()
    }
    keys = {k["KeyName"]: (k["KeyPairId"], k["KeyFingerprint"], k["KeyType"], k["PublicKey"], tag_dict(k))
            for k in ec2.describe_key_pairs(IncludePublicKey=True)["KeyPairs"]}
    tags = sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in ec2.describe_tags()["Tags"])
    image_tags = tag_dict(ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0])
    return {"instances": instances, "keys": keys, "tags": tags, "image_tags": image_tags}


def populate(s):
    """Builds a varied state; returns (ids dict, client token, args of the idempotent run)."""
    ec2 = s.client()
    ec2.create_key_pair(KeyName="persist-rsa", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "kind", "Value": "created"}]}])
    ed = ec2.create_key_pair(KeyName="persist-ed", KeyType="ed25519")
    pub = ec2.describe_key_pairs(KeyNames=["persist-ed"], IncludePublicKey=True)["KeyPairs"][0]["PublicKey"]
    ec2.import_key_pair(KeyName="persist-imported", PublicKeyMaterial=pub.encode())
    ec2.create_tags(Resources=[DEFAULT_IMAGE], Tags=[{"Key": "img", "Value": "tagged"}])
    token = f"persist-{uuid.uuid4()}"
    run_args = dict(ImageId=DEFAULT_IMAGE, InstanceType="t3.small", MinCount=1, MaxCount=1, ClientToken=token,
                    KeyName="persist-rsa", UserData="#!/bin/sh\necho persisted\n",
                    Placement={"AvailabilityZone": "us-east-1c"},
                    TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "keeper"}]}])
    r = ec2.run_instances(**run_args)
    running = r["Instances"][0]["InstanceId"]
    stopped, terminated = launch(ec2, count=2, InstanceType="m5.large")
    wait_state(ec2, [running, stopped, terminated], "running")
    ec2.modify_instance_attribute(InstanceId=running, DisableApiTermination={"Value": True})
    ec2.create_tags(Resources=[stopped], Tags=[{"Key": "Name", "Value": "sleeper"}])
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[terminated])
    wait_state(ec2, [stopped], "stopped")
    wait_state(ec2, [terminated], "terminated")
    ec2.modify_instance_attribute(InstanceId=stopped, InstanceType={"Value": "c5.large"})
    wait_until(lambda: "is running" in console(ec2, running), what="console banner")
    assert ed["KeyName"] == "persist-ed"
    return {"running": running, "stopped": stopped, "terminated": terminated}, run_args


def check_restarted(s2, ids, before, run_args, reservation):
    ec2 = s2.client()
    # Immediately after the restart the running instance is running, not re-booting.
    first = instances_by_id(ec2, [ids["running"]])[ids["running"]]
    assert first["State"]["Name"] == "running", first["State"]
    assert snapshot(ec2, list(ids.values())) == before
    # It stays running, and the guest was not booted a second time.
    deadline = time.time() + 1.0
    while time.time() < deadline:
        assert instances_by_id(ec2, [ids["running"]])[ids["running"]]["State"]["Name"] == "running"
        time.sleep(0.1)
    out = console(ec2, ids["running"])
    assert "boot #1" in out and "boot #2" not in out, out
    # The ClientToken is remembered: no new launch.
    again = ec2.run_instances(**run_args)
    assert again["ReservationId"] == reservation
    assert [i["InstanceId"] for i in again["Instances"]] == [ids["running"]]
    # Everything is still operable.
    ec2.start_instances(InstanceIds=[ids["stopped"]])
    wait_state(ec2, [ids["stopped"]], "running")
    wait_until(lambda: "Memory: 4096MiB" in console(ec2, ids["stopped"]), what="resized boot after restart")
    ec2.stop_instances(InstanceIds=[ids["running"]])
    wait_state(ec2, [ids["running"]], "stopped")


def test_sigterm_then_restart_keeps_everything(servers):
    s = Strato().start()
    servers.append(s)
    ids, run_args = populate(s)
    ec2 = s.client()
    reservation = ec2.describe_instances(InstanceIds=[ids["running"]])["Reservations"][0]["ReservationId"]
    before = snapshot(ec2, list(ids.values()))
    assert before["instances"][ids["running"]]["state"]["Name"] == "running"
    assert before["instances"][ids["stopped"]]["state"]["Name"] == "stopped"
    assert before["instances"][ids["terminated"]]["state"]["Name"] == "terminated"

    t0 = time.time()
    rc = s.stop(sig=signal.SIGTERM, timeout=10)
    assert rc == 0, f"exit status {rc} after SIGTERM:\n{s.read_log()[-3000:]}"
    assert time.time() - t0 < 5

    s2 = Strato(data_dir=s.data_dir).start()
    servers.append(s2)
    assert s2.creds["AWS_ACCESS_KEY_ID"] == s.creds["AWS_ACCESS_KEY_ID"]
    assert s2.creds["AWS_SECRET_ACCESS_KEY"] == s.creds["AWS_SECRET_ACCESS_KEY"]
    check_restarted(s2, ids, before, run_args, reservation)


def test_kill_9_then_restart_keeps_everything(servers):
    s = Strato().start()
    servers.append(s)
    ids, run_args = populate(s)
    ec2 = s.client()
    reservation = ec2.describe_instances(InstanceIds=[ids["running"]])["Reservations"][0]["ReservationId"]
    before = snapshot(ec2, list(ids.values()))
    rc = s.stop(sig=signal.SIGKILL)
    assert rc == -signal.SIGKILL

    s2 = Strato(data_dir=s.data_dir).start()
    servers.append(s2)
    check_restarted(s2, ids, before, run_args, reservation)


def test_kill_9_during_transitions(servers):
    s = Strato(boot_ms=1500, stop_ms=1500).start()
    servers.append(s)
    ec2 = s.client()
    to_stop, to_terminate = launch(ec2, count=2, wait="running")
    (booting,) = launch(ec2)
    ec2.stop_instances(InstanceIds=[to_stop])
    ec2.terminate_instances(InstanceIds=[to_terminate])
    states = {i: x["State"]["Name"] for i, x in instances_by_id(ec2, [to_stop, to_terminate, booting]).items()}
    assert states == {to_stop: "stopping", to_terminate: "shutting-down", booting: "pending"}
    s.stop(sig=signal.SIGKILL)

    s2 = Strato(data_dir=s.data_dir, boot_ms=1500, stop_ms=1500).start()
    servers.append(s2)
    ec2 = s2.client()
    wait_state(ec2, [booting], "running")
    wait_state(ec2, [to_stop], "stopped")
    wait_state(ec2, [to_terminate], "terminated")
    out = console(ec2, booting)
    assert "boot #2" not in out, out


def test_guest_poweroff_while_server_is_down(servers):
    s = Strato().start()
    servers.append(s)
    ec2 = s.client()
    (iid,) = launch(ec2, UserData="#!/bin/sh\nsleep 1\npoweroff\n", wait="running")
    assert s.stop() == 0
    # The simulated guest keeps wall-clock time: let its poweroff fall into the downtime.
    time.sleep(1.5)
    s2 = Strato(data_dir=s.data_dir).start()
    servers.append(s2)
    ec2 = s2.client()
    i = wait_state(ec2, [iid], "stopped")[iid]
    assert i["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    out = console(ec2, iid)
    # The guest powered itself off during the downtime: it must be reported stopped,
    # not booted again on restart.
    assert "boot #2" not in out, out


def test_second_account_survives_restart(servers):
    s = Strato().start()
    servers.append(s)
    creds_b = s.create_account("tenant-b")
    b = s.client(creds_b)
    (iid,) = launch(b)
    b.create_key_pair(KeyName="b-key")
    account_b = s.client(creds_b, service="sts").get_caller_identity()["Account"]
    assert s.stop() == 0
    s2 = Strato(data_dir=s.data_dir).start()
    servers.append(s2)
    b2 = s2.client(creds_b)
    assert s2.client(creds_b, service="sts").get_caller_identity()["Account"] == account_b
    assert list(instances_by_id(b2, [iid])) == [iid]
    assert [k["KeyName"] for k in b2.describe_key_pairs()["KeyPairs"]] == ["b-key"]
    assert s2.client().describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}])["Reservations"] == []
    assert s2.env_for("tenant-b")["AWS_ACCESS_KEY_ID"] == creds_b["AWS_ACCESS_KEY_ID"]
