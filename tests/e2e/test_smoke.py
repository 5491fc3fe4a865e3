"""The path a new user walks first: credentials, a launch, the instance running."""

from conftest import DEFAULT_IMAGE, wait_for_state


def test_caller_identity_and_launch(strato, ec2):
    ident = strato.aws("sts", "get-caller-identity")
    assert len(ident["Account"]) == 12
    r = strato.aws("ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--instance-type", "t3.micro", "--count", "2")
    ids = [i["InstanceId"] for i in r["Instances"]]
    assert len(ids) == 2 and all(i["State"]["Name"] == "pending" for i in r["Instances"])
    desc = wait_for_state(ec2, ids, "running")
    inst = desc["Reservations"][0]["Instances"][0]
    assert inst["State"]["Code"] == 16
    assert inst["ImageId"] == DEFAULT_IMAGE
