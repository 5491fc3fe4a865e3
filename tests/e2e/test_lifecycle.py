"""The instance state machine: start, stop (and Force), reboot, terminate, protection
attributes, ModifyInstanceAttribute / DescribeInstanceAttribute, console output and
guest-initiated shutdown."""

import base64
import re
import time

import pytest

from conftest import DEFAULT_IMAGE, Strato
from helpers import (
    aws_error,
    client_error,
    expect_code,
    instance,
    instances_by_id,
    launch,
    signed,
    state_of,
    wait_state,
    wait_until,
)

USER_REASON_RE = re.compile(r"^User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$")


@pytest.fixture(scope="module")
def slow():
    """A server whose simulated VMs boot in 1.5 s and stop in 5 s, so that pending and
    stopping can be observed, and Force shown to cut a stop short."""
    s = Strato(boot_ms=1500, stop_ms=5000).start()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def slow_ec2(slow):
    return slow.client()


def console(ec2, iid):
    return ec2.get_console_output(InstanceId=iid).get("Output", "")


def change(resp_list, iid):
    (c,) = [c for c in resp_list if c["InstanceId"] == iid]
    return (c["PreviousState"]["Name"], c["PreviousState"]["Code"], c["CurrentState"]["Name"], c["CurrentState"]["Code"])


# --------------------------------------------------------------------------- the state machine


def test_full_lifecycle_with_state_codes_and_reasons(ec2):
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    iid = r["Instances"][0]["InstanceId"]
    assert r["Instances"][0]["State"] == {"Code": 0, "Name": "pending"}

    i = wait_state(ec2, iid, "running")[iid]
    assert i["State"] == {"Code": 16, "Name": "running"}
    assert "StateReason" not in i
    assert i["StateTransitionReason"] == ""

    s = ec2.stop_instances(InstanceIds=[iid])
    assert change(s["StoppingInstances"], iid) == ("running", 16, "stopping", 64)
    assert state_of(ec2, iid) in ("stopping", "stopped")
    i = wait_state(ec2, iid, "stopped")[iid]
    assert i["State"] == {"Code": 80, "Name": "stopped"}
    assert i["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert i["StateReason"]["Message"] == "Client.UserInitiatedShutdown: User initiated shutdown"
    assert USER_REASON_RE.match(i["StateTransitionReason"]), i["StateTransitionReason"]

    s = ec2.start_instances(InstanceIds=[iid])
    assert change(s["StartingInstances"], iid) == ("stopped", 80, "pending", 0)
    i = wait_state(ec2, iid, "running")[iid]
    assert "StateReason" not in i

    t = ec2.terminate_instances(InstanceIds=[iid])
    assert change(t["TerminatingInstances"], iid) == ("running", 16, "shutting-down", 32)
    i = wait_state(ec2, iid, "terminated")[iid]
    assert i["State"] == {"Code": 48, "Name": "terminated"}
    assert i["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert USER_REASON_RE.match(i["StateTransitionReason"]), i["StateTransitionReason"]

    # Terminated instances stay visible, by id and by filter.
    r = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["terminated"]}])
    assert iid in {x["InstanceId"] for res in r["Reservations"] for x in res["Instances"]}


def test_lifecycle_via_cli(strato, ec2):
    (iid,) = launch(ec2, wait="running")
    r = strato.aws("ec2", "stop-instances", "--instance-ids", iid)
    assert change(r["StoppingInstances"], iid) == ("running", 16, "stopping", 64)
    wait_state(ec2, iid, "stopped")
    r = strato.aws("ec2", "start-instances", "--instance-ids", iid)
    assert change(r["StartingInstances"], iid) == ("stopped", 80, "pending", 0)
    wait_state(ec2, iid, "running")
    assert strato.aws("ec2", "reboot-instances", "--instance-ids", iid) is None
    r = strato.aws("ec2", "terminate-instances", "--instance-ids", iid)
    assert change(r["TerminatingInstances"], iid) == ("running", 16, "shutting-down", 32)
    wait_state(ec2, iid, "terminated")


def test_idempotent_transitions(ec2):
    (iid,) = launch(ec2, wait="running")
    r = ec2.start_instances(InstanceIds=[iid])
    assert change(r["StartingInstances"], iid) == ("running", 16, "running", 16)
    assert state_of(ec2, iid) == "running"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    r = ec2.stop_instances(InstanceIds=[iid])
    assert change(r["StoppingInstances"], iid) == ("stopped", 80, "stopped", 80)
    r = ec2.terminate_instances(InstanceIds=[iid])
    assert change(r["TerminatingInstances"], iid) == ("stopped", 80, "shutting-down", 32)
    wait_state(ec2, iid, "terminated")
    r = ec2.terminate_instances(InstanceIds=[iid])
    assert change(r["TerminatingInstances"], iid) == ("terminated", 48, "terminated", 48)


def test_incorrect_instance_state(ec2):
    running, stopped, terminated = launch(ec2, count=3, wait="running")
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[terminated])
    wait_state(ec2, stopped, "stopped")
    wait_state(ec2, terminated, "terminated")

    expect_code("IncorrectInstanceState", ec2.start_instances, InstanceIds=[terminated])
    expect_code("IncorrectInstanceState", ec2.stop_instances, InstanceIds=[terminated])
    expect_code("IncorrectInstanceState", ec2.reboot_instances, InstanceIds=[stopped])
    expect_code("IncorrectInstanceState", ec2.reboot_instances, InstanceIds=[terminated])
    expect_code("IncorrectInstanceState", ec2.modify_instance_attribute, InstanceId=running,
                InstanceType={"Value": "t3.small"})
    expect_code("IncorrectInstanceState", ec2.modify_instance_attribute, InstanceId=running,
                UserData={"Value": b"#!/bin/sh\necho x\n"})
    expect_code("IncorrectInstanceState", ec2.modify_instance_attribute, InstanceId=terminated,
                DisableApiTermination={"Value": True})
    # One bad instance spoils the whole call: the running one is not touched.
    expect_code("IncorrectInstanceState", ec2.reboot_instances, InstanceIds=[running, stopped])
    expect_code("IncorrectInstanceState", ec2.start_instances, InstanceIds=[stopped, terminated])
    assert instances_by_id(ec2, [running, stopped]) and state_of(ec2, stopped) == "stopped"
    assert state_of(ec2, running) == "running"


def test_unknown_and_malformed_ids_change_nothing(strato, ec2):
    (iid,) = launch(ec2, wait="running")
    missing = "i-0fedcba9876543210"
    for fn in (ec2.start_instances, ec2.stop_instances, ec2.reboot_instances, ec2.terminate_instances):
        expect_code("InvalidInstanceID.NotFound", fn, InstanceIds=[iid, missing])
        expect_code("InvalidInstanceID.Malformed", fn, InstanceIds=["i-123"])
    expect_code("InvalidInstanceID.NotFound", ec2.modify_instance_attribute, InstanceId=missing,
                DisableApiStop={"Value": True})
    expect_code("InvalidInstanceID.NotFound", ec2.describe_instance_attribute, InstanceId=missing,
                Attribute="instanceType")
    expect_code("InvalidInstanceID.NotFound", ec2.get_console_output, InstanceId=missing)
    expect_code("InvalidInstanceID.Malformed", ec2.get_console_output, InstanceId="i-zz")
    assert state_of(ec2, iid) == "running"
    assert aws_error(strato, "ec2", "terminate-instances", "--instance-ids", missing) == "InvalidInstanceID.NotFound"
    assert state_of(ec2, iid) == "running"


def test_missing_instance_ids_raw(strato):
    for action in ("StartInstances", "StopInstances", "RebootInstances", "TerminateInstances"):
        signed(strato, {"Action": action, "Version": "2016-11-15"}).assert_ec2_error("MissingParameter", 400)
    signed(strato, {"Action": "ModifyInstanceAttribute", "Version": "2016-11-15",
                    "DisableApiStop.Value": "true"}).assert_ec2_error("MissingParameter", 400)
    signed(strato, {"Action": "DescribeInstanceAttribute", "Version": "2016-11-15",
                    "Attribute": "instanceType"}).assert_ec2_error("MissingParameter", 400)
    signed(strato, {"Action": "GetConsoleOutput", "Version": "2016-11-15"}).assert_ec2_error("MissingParameter", 400)


def test_multi_instance_stop_and_start(ec2):
    ids = launch(ec2, count=3, wait="running")
    r = ec2.stop_instances(InstanceIds=ids)
    assert {c["InstanceId"] for c in r["StoppingInstances"]} == set(ids)
    wait_state(ec2, ids, "stopped")
    r = ec2.start_instances(InstanceIds=ids)
    assert all(c["CurrentState"]["Name"] == "pending" for c in r["StartingInstances"])
    wait_state(ec2, ids, "running")
    ec2.terminate_instances(InstanceIds=ids)
    wait_state(ec2, ids, "terminated")


# --------------------------------------------------------------------------- dry runs


def test_dry_run_changes_nothing(strato, ec2):
    running, stopped = launch(ec2, count=2, wait="running")
    ec2.stop_instances(InstanceIds=[stopped])
    wait_state(ec2, stopped, "stopped")
    before = instances_by_id(ec2, [running, stopped])
    calls = [
        (ec2.stop_instances, dict(InstanceIds=[running])),
        (ec2.stop_instances, dict(InstanceIds=[running], Force=True)),
        (ec2.start_instances, dict(InstanceIds=[stopped])),
        (ec2.reboot_instances, dict(InstanceIds=[running])),
        (ec2.terminate_instances, dict(InstanceIds=[running, stopped])),
        (ec2.modify_instance_attribute, dict(InstanceId=stopped, InstanceType={"Value": "t3.large"})),
        (ec2.modify_instance_attribute, dict(InstanceId=running, DisableApiTermination={"Value": True})),
        (ec2.modify_instance_attribute, dict(InstanceId=running, InstanceInitiatedShutdownBehavior={"Value": "terminate"})),
    ]
    for fn, kw in calls:
        code, status, _ = client_error(fn, DryRun=True, **kw)
        assert (code, status) == ("DryRunOperation", 412), fn
    assert aws_error(strato, "ec2", "terminate-instances", "--instance-ids", running, "--dry-run") == "DryRunOperation"
    after = instances_by_id(ec2, [running, stopped])
    for iid in (running, stopped):
        assert after[iid]["State"] == before[iid]["State"]
        assert after[iid]["InstanceType"] == before[iid]["InstanceType"]
    assert ec2.describe_instance_attribute(InstanceId=running, Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"] is False
    assert ec2.describe_instance_attribute(InstanceId=running, Attribute="instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    # A dry run on a wrong state reports the state problem, not success.
    code, _, _ = client_error(ec2.reboot_instances, InstanceIds=[stopped], DryRun=True)
    assert code == "IncorrectInstanceState"
    # And the instances keep working afterwards.
    assert console(ec2, running).count("boot #") == 1


# --------------------------------------------------------------------------- reboot and console


def test_reboot_keeps_running_and_boots_again(ec2):
    (iid,) = launch(ec2, wait="running")
    wait_until(lambda: "is running" in console(ec2, iid), what="console banner")
    assert "boot #1" in console(ec2, iid)
    assert ec2.reboot_instances(InstanceIds=[iid])["ResponseMetadata"]["HTTPStatusCode"] == 200
    seen_states = set()

    def rebooted():
        seen_states.add(state_of(ec2, iid))
        out = console(ec2, iid)
        return "boot #2" in out and out.count("is running") >= 2

    wait_until(rebooted, what="second boot in console")
    assert seen_states == {"running"}
    out = console(ec2, iid)
    assert "reboot: Restarting system" in out
    assert state_of(ec2, iid) == "running"


def test_console_output_encodings(strato, ec2):
    (iid,) = launch(ec2, InstanceType="m5.xlarge", wait="running")
    wait_until(lambda: "is running" in console(ec2, iid), what="console banner")
    r = ec2.get_console_output(InstanceId=iid)
    assert r["InstanceId"] == iid
    assert r["Timestamp"]
    assert f"strato-sim: {iid} is running" in r["Output"]
    assert "Allowing 4 CPUs, Memory: 16384MiB" in r["Output"]
    cli = strato.aws("ec2", "get-console-output", "--instance-id", iid)
    assert cli["InstanceId"] == iid
    assert f"{iid} is running" in cli["Output"]
    raw = signed(strato, {"Action": "GetConsoleOutput", "Version": "2016-11-15", "InstanceId": iid})
    assert raw.status == 200
    m = re.search(r"<output>([^<]*)</output>", raw.text)
    assert m, raw.text
    assert f"{iid} is running" in base64.b64decode(m.group(1)).decode()
    code, status, _ = client_error(ec2.get_console_output, InstanceId=iid, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)


# --------------------------------------------------------------------------- protection attributes


def test_disable_api_termination(strato, ec2):
    (iid,) = launch(ec2, DisableApiTermination=True, wait="running")
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")
    assert attr["InstanceId"] == iid and attr["DisableApiTermination"]["Value"] is True
    expect_code("OperationNotPermitted", ec2.terminate_instances, InstanceIds=[iid])
    assert aws_error(strato, "ec2", "terminate-instances", "--instance-ids", iid) == "OperationNotPermitted"
    assert state_of(ec2, iid) == "running"
    # Protection does not stop a stop.
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    expect_code("OperationNotPermitted", ec2.terminate_instances, InstanceIds=[iid])
    assert state_of(ec2, iid) == "stopped"
    strato.aws("ec2", "modify-instance-attribute", "--instance-id", iid, "--no-disable-api-termination")
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiTermination")[
        "DisableApiTermination"]["Value"] is False
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")


def test_disable_api_termination_set_at_runtime_and_multi_terminate(ec2):
    protected, free = launch(ec2, count=2, wait="running")
    ec2.modify_instance_attribute(InstanceId=protected, DisableApiTermination={"Value": True})
    expect_code("OperationNotPermitted", ec2.terminate_instances, InstanceIds=[free, protected])
    assert state_of(ec2, protected) == "running"
    ec2.modify_instance_attribute(InstanceId=protected, DisableApiTermination={"Value": False})
    ec2.terminate_instances(InstanceIds=[free, protected])
    wait_state(ec2, [free, protected], "terminated")


def test_disable_api_stop(strato, ec2):
    (iid,) = launch(ec2, DisableApiStop=True, wait="running")
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="disableApiStop")["DisableApiStop"]["Value"] is True
    expect_code("OperationNotPermitted", ec2.stop_instances, InstanceIds=[iid])
    expect_code("OperationNotPermitted", ec2.stop_instances, InstanceIds=[iid], Force=True)
    assert aws_error(strato, "ec2", "stop-instances", "--instance-ids", iid) == "OperationNotPermitted"
    assert state_of(ec2, iid) == "running"
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": False})
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": True})
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    # Stop protection does not protect against termination.
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")


# --------------------------------------------------------------------------- attributes


def test_modify_instance_type_while_stopped(strato, ec2):
    (iid,) = launch(ec2, InstanceType="t3.micro", wait="running")
    wait_until(lambda: "Memory: 1024MiB" in console(ec2, iid), what="first boot banner")
    expect_code("IncorrectInstanceState", ec2.modify_instance_attribute, InstanceId=iid,
                InstanceType={"Value": "t3.small"})
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    expect_code("InvalidParameterValue", ec2.modify_instance_attribute, InstanceId=iid,
                InstanceType={"Value": "t3.enormous"})
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")
    assert attr["InstanceType"]["Value"] == "t3.small"
    assert instance(ec2, iid)["InstanceType"] == "t3.small"
    # The CLI's shorthand and the legacy Attribute/Value form both work.
    strato.aws("ec2", "modify-instance-attribute", "--instance-id", iid, "--instance-type", "Value=c5.xlarge")
    d = strato.aws("ec2", "describe-instance-attribute", "--instance-id", iid, "--attribute", "instanceType")
    assert d["InstanceType"]["Value"] == "c5.xlarge"
    ec2.modify_instance_attribute(InstanceId=iid, Attribute="instanceType", Value="t3.small")
    assert instance(ec2, iid)["InstanceType"] == "t3.small"
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    # The new shape reaches the hypervisor: the second boot has 2048 MiB.
    wait_until(lambda: "Memory: 2048MiB" in console(ec2, iid), what="resized boot banner")


def test_modify_user_data_while_stopped(ec2):
    (iid,) = launch(ec2, UserData="#!/bin/sh\necho first\n", wait="running")
    first = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(first) == b"#!/bin/sh\necho first\n"
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"#!/bin/sh\necho second\n"})
    got = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(got) == b"#!/bin/sh\necho second\n"


def test_modify_anytime_attributes_while_running(strato, ec2):
    (iid,) = launch(ec2, wait="running")
    get = lambda a, k: ec2.describe_instance_attribute(InstanceId=iid, Attribute=a)[k]["Value"]
    assert get("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior") == "stop"
    assert get("disableApiTermination", "DisableApiTermination") is False
    assert get("disableApiStop", "DisableApiStop") is False
    ec2.modify_instance_attribute(InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    assert get("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior") == "terminate"
    strato.aws("ec2", "modify-instance-attribute", "--instance-id", iid,
               "--instance-initiated-shutdown-behavior", "Value=stop")
    assert get("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior") == "stop"
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": True})
    assert get("disableApiStop", "DisableApiStop") is True
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": False})
    expect_code("InvalidParameterValue", ec2.modify_instance_attribute, InstanceId=iid,
                InstanceInitiatedShutdownBehavior={"Value": "explode"})
    assert get("instanceInitiatedShutdownBehavior", "InstanceInitiatedShutdownBehavior") == "stop"
    assert state_of(ec2, iid) == "running"


def test_describe_instance_attribute_names_and_errors(strato, ec2):
    (iid,) = launch(ec2, InstanceType="t3.medium", InstanceInitiatedShutdownBehavior="terminate")
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"] == "t3.medium"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="rootDeviceName")["RootDeviceName"]["Value"] == "/dev/xvda"
    assert "Value" not in ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData").get("UserData", {})
    for name in ("kernel", "ramdisk", "blockDeviceMapping", "productCodes", "sourceDestCheck", "groupSet",
                 "ebsOptimized", "sriovNetSupport", "enaSupport", "enclaveOptions", "disableApiStop"):
        r = ec2.describe_instance_attribute(InstanceId=iid, Attribute=name)
        assert r["InstanceId"] == iid
    expect_code("InvalidParameterValue", ec2.describe_instance_attribute, InstanceId=iid, Attribute="bogus")
    expect_code("InvalidInstanceID.Malformed", ec2.describe_instance_attribute, InstanceId="i-1", Attribute="instanceType")
    signed(strato, {"Action": "DescribeInstanceAttribute", "Version": "2016-11-15", "InstanceId": iid}
           ).assert_ec2_error("MissingParameter", 400)
    # Nothing to modify.
    expect_code("MissingParameter", ec2.modify_instance_attribute, InstanceId=iid)


# --------------------------------------------------------------------------- guest-initiated shutdown


def test_guest_poweroff_with_stop_behaviour(ec2):
    (iid,) = launch(ec2, UserData="#!/bin/sh\nsleep 0.3\npoweroff\n")
    i = wait_state(ec2, iid, "stopped")[iid]
    assert i["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    assert i["StateTransitionReason"].startswith("Instance initiated shutdown")
    out = console(ec2, iid)
    assert "reboot: Power down" in out
    assert "boot #2" not in out


def test_guest_poweroff_with_terminate_behaviour(ec2):
    (iid,) = launch(ec2, UserData="#!/bin/sh\nsleep 0.3\nshutdown -h now\n",
                    InstanceInitiatedShutdownBehavior="terminate")
    i = wait_state(ec2, iid, "terminated")[iid]
    assert i["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    assert i["State"]["Code"] == 48


def test_shutdown_behaviour_changed_at_runtime_applies(ec2):
    (iid,) = launch(ec2, UserData="#!/bin/sh\nsleep 1\npoweroff\n", InstanceInitiatedShutdownBehavior="stop")
    ec2.modify_instance_attribute(InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    i = wait_state(ec2, iid, "terminated", timeout=20)[iid]
    assert i["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"


def test_guest_poweroff_after_attribute_change_does_not_reboot(ec2):
    """A guest shutdown is a stop, also when an attribute was edited while it ran: the
    guest must not be booted a second time."""
    (iid,) = launch(ec2, UserData="#!/bin/sh\nsleep 1\npoweroff\n", wait="running")
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": True})
    i = wait_state(ec2, iid, "stopped")[iid]
    assert i["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    out = console(ec2, iid)
    assert "boot #2" not in out, out


# --------------------------------------------------------------------------- slow hypervisor: pending, stopping, Force


def test_pending_and_stopping_are_observable(slow_ec2):
    ec2 = slow_ec2
    (iid,) = launch(ec2)
    assert state_of(ec2, iid) == "pending"
    # Stopping a pending instance is refused; starting it is a no-op.
    expect_code("IncorrectInstanceState", ec2.stop_instances, InstanceIds=[iid])
    r = ec2.start_instances(InstanceIds=[iid])
    assert change(r["StartingInstances"], iid) == ("pending", 0, "pending", 0)
    st = ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"]
    assert st[0]["InstanceState"]["Name"] == "pending"
    wait_state(ec2, iid, "running")
    ec2.stop_instances(InstanceIds=[iid])
    assert state_of(ec2, iid) == "stopping"
    i = instance(ec2, iid)
    assert i["State"]["Code"] == 64
    assert i["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    expect_code("IncorrectInstanceState", ec2.start_instances, InstanceIds=[iid])
    expect_code("IncorrectInstanceState", ec2.reboot_instances, InstanceIds=[iid])
    expect_code("IncorrectInstanceState", ec2.modify_instance_attribute, InstanceId=iid,
                InstanceType={"Value": "t3.small"})
    r = ec2.stop_instances(InstanceIds=[iid])
    assert change(r["StoppingInstances"], iid) == ("stopping", 64, "stopping", 64)
    # Terminating a stopping instance is allowed.
    r = ec2.terminate_instances(InstanceIds=[iid])
    assert change(r["TerminatingInstances"], iid) == ("stopping", 64, "shutting-down", 32)


def test_force_stop_cuts_a_slow_stop_short(slow_ec2):
    ec2 = slow_ec2
    a, b = launch(ec2, count=2, wait="running")
    started = time.time()
    ec2.stop_instances(InstanceIds=[a])
    assert state_of(ec2, a) == "stopping"
    ec2.stop_instances(InstanceIds=[a], Force=True)
    wait_state(ec2, a, "stopped", timeout=3)
    # Directly with Force from running.
    r = ec2.stop_instances(InstanceIds=[b], Force=True)
    assert change(r["StoppingInstances"], b) == ("running", 16, "stopping", 64)
    wait_state(ec2, b, "stopped", timeout=3)
    # Both well under the 5 s a normal stop takes here.
    assert time.time() - started < 4.5
    assert instance(ec2, b)["StateReason"]["Code"] == "Client.UserInitiatedShutdown"


def test_terminate_pending_instance(slow_ec2):
    ec2 = slow_ec2
    (iid,) = launch(ec2)
    r = ec2.terminate_instances(InstanceIds=[iid])
    assert change(r["TerminatingInstances"], iid) == ("pending", 0, "shutting-down", 32)
    assert state_of(ec2, iid) in ("shutting-down", "terminated")
