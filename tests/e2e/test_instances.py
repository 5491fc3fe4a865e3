"""RunInstances, DescribeInstances (ids, filters, pagination), DescribeInstanceStatus and
ClientToken idempotency, through boto3, the aws CLI and raw signed requests."""

import base64
import re
import uuid

import pytest

from conftest import DEFAULT_IMAGE
from helpers import (
    STATE_CODES,
    all_instances,
    aws_error,
    client_error,
    expect_code,
    instance,
    instance_count,
    instances_by_id,
    launch,
    signed,
    tag_dict,
    wait_state,
)

ID_RE = re.compile(r"^i-[0-9a-f]{17}$")
RES_RE = re.compile(r"^r-[0-9a-f]{17}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


@pytest.fixture(scope="module")
def account_id(strato, ec2):
    return strato.client(service="sts").get_caller_identity()["Account"]


# --------------------------------------------------------------------------- RunInstances


def test_run_instances_cli_full_shape(strato, ec2, account_id):
    ec2.create_key_pair(KeyName="inst-cli-key")
    script = "#!/bin/sh\necho hello from user data\n"
    r = strato.aws(
        "ec2", "run-instances",
        "--image-id", DEFAULT_IMAGE,
        "--instance-type", "t3.small",
        "--count", "1",
        "--key-name", "inst-cli-key",
        "--placement", "AvailabilityZone=us-east-1b",
        "--user-data", script,
        "--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=cli-1},{Key=Env,Value=test}]",
    )
    assert RES_RE.match(r["ReservationId"]), r["ReservationId"]
    assert r["OwnerId"] == account_id
    assert len(r["Instances"]) == 1
    i = r["Instances"][0]
    iid = i["InstanceId"]
    assert ID_RE.match(iid), iid
    assert i["State"] == {"Code": 0, "Name": "pending"}
    assert i["ImageId"] == DEFAULT_IMAGE
    assert i["InstanceType"] == "t3.small"
    assert i["KeyName"] == "inst-cli-key"
    assert i["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert i["AmiLaunchIndex"] == 0
    assert tag_dict(i) == {"Name": "cli-1", "Env": "test"}
    assert TS_RE.match(i["LaunchTime"]), i["LaunchTime"]

    d = strato.aws("ec2", "describe-instances", "--instance-ids", iid)
    assert len(d["Reservations"]) == 1
    res = d["Reservations"][0]
    assert res["ReservationId"] == r["ReservationId"]
    assert res["OwnerId"] == account_id
    assert [x["InstanceId"] for x in res["Instances"]] == [iid]

    running = wait_state(ec2, [iid], "running")[iid]
    assert running["State"] == {"Code": 16, "Name": "running"}
    assert running["Architecture"] == "x86_64"
    assert running["RootDeviceName"] == "/dev/xvda"
    assert running["RootDeviceType"] == "ebs"
    assert running["VirtualizationType"] == "hvm"
    assert running["KeyName"] == "inst-cli-key"
    assert tag_dict(running) == {"Name": "cli-1", "Env": "test"}

    # The CLI base64-encodes --user-data; EC2 hands it back base64-encoded.
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]).decode() == script


def test_run_instances_boto3_defaults(ec2, account_id):
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1)
    i = r["Instances"][0]
    assert r["OwnerId"] == account_id
    assert i["State"]["Name"] == "pending"
    assert "KeyName" not in i
    assert i["Placement"]["AvailabilityZone"] in ("us-east-1a", "us-east-1b", "us-east-1c")
    # No type given: some valid catalog type is chosen.
    types = {t["InstanceType"] for t in ec2.describe_instance_types()["InstanceTypes"]}
    assert i["InstanceType"] in types
    wait_state(ec2, [i["InstanceId"]], "running")


def test_min_max_count_launches_max_in_one_reservation(ec2):
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.nano", MinCount=2, MaxCount=3)
    ids = [i["InstanceId"] for i in r["Instances"]]
    assert len(ids) == 3 and len(set(ids)) == 3
    assert sorted(i["AmiLaunchIndex"] for i in r["Instances"]) == [0, 1, 2]
    d = ec2.describe_instances(Filters=[{"Name": "reservation-id", "Values": [r["ReservationId"]]}])
    assert len(d["Reservations"]) == 1
    assert d["Reservations"][0]["ReservationId"] == r["ReservationId"]
    assert {i["InstanceId"] for i in d["Reservations"][0]["Instances"]} == set(ids)


def test_describe_groups_instances_by_reservation(ec2):
    a = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=2, MaxCount=2)
    b = ec2.run_instances(ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1)
    ids = [i["InstanceId"] for i in a["Instances"] + b["Instances"]]
    d = ec2.describe_instances(InstanceIds=ids)
    groups = {res["ReservationId"]: {i["InstanceId"] for i in res["Instances"]} for res in d["Reservations"]}
    assert groups == {
        a["ReservationId"]: {i["InstanceId"] for i in a["Instances"]},
        b["ReservationId"]: {b["Instances"][0]["InstanceId"]},
    }


BAD_RUNS = [
    ({"ImageId": "ami-12345678"}, "InvalidAMIID.NotFound"),
    ({"ImageId": "ami-0123456789abcdef0"}, "InvalidAMIID.NotFound"),
    ({"ImageId": "ami-zzzz"}, "InvalidAMIID.Malformed"),
    ({"ImageId": "not-an-ami"}, "InvalidAMIID.Malformed"),
    ({"ImageId": ""}, "MissingParameter"),
    ({"InstanceType": "t3.mega"}, "InvalidParameterValue"),
    ({"InstanceType": "m5.large "}, "InvalidParameterValue"),
    ({"MinCount": 3, "MaxCount": 2}, "InvalidParameterValue"),
    ({"MinCount": 0, "MaxCount": 1}, "InvalidParameterValue"),
    ({"MinCount": 1, "MaxCount": 0}, "InvalidParameterValue"),
    ({"KeyName": "no-such-key"}, "InvalidKeyPair.NotFound"),
    ({"InstanceInitiatedShutdownBehavior": "explode"}, "InvalidParameterValue"),
    ({"Placement": {"AvailabilityZone": "us-west-2a"}}, "InvalidParameterValue"),
    ({"Placement": {"AvailabilityZone": "us-east-1z"}}, "InvalidParameterValue"),
    ({"TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "aws:owner", "Value": "x"}]}]},
     "InvalidParameterValue"),
    ({"TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "k" * 129, "Value": "x"}]}]},
     "InvalidParameterValue"),
    ({"TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v" * 257}]}]},
     "InvalidParameterValue"),
    ({"UserData": "x" * (16 * 1024 + 1)}, "InvalidParameterValue"),
]


@pytest.mark.parametrize("overrides,code", BAD_RUNS, ids=[c + ":" + ",".join(o) for o, c in BAD_RUNS])
def test_run_instances_invalid_parameters_launch_nothing(ec2, overrides, code):
    before = instance_count(ec2)
    args = {"ImageId": DEFAULT_IMAGE, "InstanceType": "t3.micro", "MinCount": 1, "MaxCount": 1}
    args.update(overrides)
    status, _ = expect_code(code, ec2.run_instances, **args)
    assert status == 400
    assert instance_count(ec2) == before


def test_run_instances_cli_errors(strato, ec2):
    before = instance_count(ec2)
    assert aws_error(strato, "ec2", "run-instances", "--image-id", "ami-00000000") == "InvalidAMIID.NotFound"
    assert aws_error(strato, "ec2", "run-instances", "--image-id", DEFAULT_IMAGE,
                     "--instance-type", "x9.huge") == "InvalidParameterValue"
    assert instance_count(ec2) == before


def test_run_instances_missing_counts_raw(strato, ec2):
    before = instance_count(ec2)
    r = signed(strato, {"Action": "RunInstances", "Version": "2016-11-15", "ImageId": DEFAULT_IMAGE, "MaxCount": "1"})
    r.assert_ec2_error("MissingParameter", 400)
    assert "MinCount" in r.text
    r = signed(strato, {"Action": "RunInstances", "Version": "2016-11-15", "ImageId": DEFAULT_IMAGE, "MinCount": "1"})
    r.assert_ec2_error("MissingParameter", 400)
    r = signed(strato, {"Action": "RunInstances", "Version": "2016-11-15", "ImageId": DEFAULT_IMAGE,
                        "MinCount": "one", "MaxCount": "1"})
    r.assert_ec2_error("InvalidParameterValue", 400)
    assert instance_count(ec2) == before


def test_run_instances_invalid_base64_user_data_raw(strato, ec2):
    before = instance_count(ec2)
    r = signed(strato, {"Action": "RunInstances", "Version": "2016-11-15", "ImageId": DEFAULT_IMAGE,
                        "MinCount": "1", "MaxCount": "1", "UserData": "!!!not base64***"})
    r.assert_ec2_error("InvalidParameterValue", 400)
    assert instance_count(ec2) == before


def test_run_instances_dry_run(strato, ec2):
    before = instance_count(ec2)
    code, status, _ = client_error(ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=2, MaxCount=2, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    # A dry run still validates: a bad image is reported as such, not as a dry-run success.
    code, _, _ = client_error(ec2.run_instances, ImageId="ami-00000000", MinCount=1, MaxCount=1, DryRun=True)
    assert code == "InvalidAMIID.NotFound"
    assert aws_error(strato, "ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--dry-run") == "DryRunOperation"
    assert instance_count(ec2) == before


# --------------------------------------------------------------------------- ClientToken


def test_client_token_same_params_is_idempotent(ec2):
    token = f"tok-{uuid.uuid4()}"
    args = dict(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=2, MaxCount=2, ClientToken=token,
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Tok", "Value": token}]}])
    first = ec2.run_instances(**args)
    ids = sorted(i["InstanceId"] for i in first["Instances"])
    assert len(ids) == 2
    before = instance_count(ec2)
    for _ in range(3):
        again = ec2.run_instances(**args)
        assert again["ReservationId"] == first["ReservationId"]
        assert sorted(i["InstanceId"] for i in again["Instances"]) == ids
    assert instance_count(ec2) == before
    tagged = all_instances(ec2, Filters=[{"Name": "tag:Tok", "Values": [token]}])
    assert sorted(i["InstanceId"] for i in tagged) == ids
    assert all(i["ClientToken"] == token for i in tagged)
    by_token = all_instances(ec2, Filters=[{"Name": "client-token", "Values": [token]}])
    assert sorted(i["InstanceId"] for i in by_token) == ids


def test_client_token_different_params_is_mismatch(ec2):
    token = f"tok-{uuid.uuid4()}"
    ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken=token)
    before = instance_count(ec2)
    expect_code("IdempotentParameterMismatch", ec2.run_instances, ImageId=DEFAULT_IMAGE, InstanceType="t3.small",
                MinCount=1, MaxCount=1, ClientToken=token)
    expect_code("IdempotentParameterMismatch", ec2.run_instances, ImageId=DEFAULT_IMAGE, InstanceType="t3.micro",
                MinCount=2, MaxCount=2, ClientToken=token)
    assert instance_count(ec2) == before


def test_client_token_cli(strato, ec2):
    token = f"cli-{uuid.uuid4()}"
    args = ("ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--instance-type", "t3.micro",
            "--count", "1", "--client-token", token)
    a = strato.aws(*args)
    before = instance_count(ec2)
    b = strato.aws(*args)
    assert a["ReservationId"] == b["ReservationId"]
    assert [i["InstanceId"] for i in a["Instances"]] == [i["InstanceId"] for i in b["Instances"]]
    assert instance_count(ec2) == before
    assert aws_error(strato, "ec2", "run-instances", "--image-id", DEFAULT_IMAGE, "--instance-type", "t3.large",
                     "--count", "1", "--client-token", token) == "IdempotentParameterMismatch"
    assert instance_count(ec2) == before


# --------------------------------------------------------------------------- DescribeInstances by id


def test_describe_unknown_and_malformed_ids(strato, ec2):
    (iid,) = launch(ec2)
    code, status, msg = client_error(ec2.describe_instances, InstanceIds=["i-0123456789abcdef0"])
    assert (code, status) == ("InvalidInstanceID.NotFound", 400)
    assert "i-0123456789abcdef0" in msg
    expect_code("InvalidInstanceID.NotFound", ec2.describe_instances, InstanceIds=[iid, "i-00000000"])
    expect_code("InvalidInstanceID.Malformed", ec2.describe_instances, InstanceIds=["i-xyz"])
    expect_code("InvalidInstanceID.Malformed", ec2.describe_instances, InstanceIds=["bogus"])
    expect_code("InvalidInstanceID.Malformed", ec2.describe_instances, InstanceIds=["I-0123456789ABCDEF0"])
    assert aws_error(strato, "ec2", "describe-instances", "--instance-ids", "i-0000000000000000f") \
        == "InvalidInstanceID.NotFound"


def test_describe_pagination_parameter_errors(ec2):
    (iid,) = launch(ec2)
    expect_code("InvalidParameterCombination", ec2.describe_instances, InstanceIds=[iid], MaxResults=5)
    expect_code("InvalidParameterValue", ec2.describe_instances, MaxResults=4)
    expect_code("InvalidParameterValue", ec2.describe_instances, MaxResults=1001)
    expect_code("InvalidParameterValue", ec2.describe_instances, MaxResults=0)
    expect_code("InvalidPaginationToken", ec2.describe_instances, MaxResults=5, NextToken="garbage!!")
    expect_code("InvalidPaginationToken", ec2.describe_instances, MaxResults=5, NextToken="dGhpcyBpcyBub3QgYSB0b2tlbg")
    assert len(ec2.describe_instances(MaxResults=5)["Reservations"]) >= 1
    ec2.describe_instances(MaxResults=1000)


def test_describe_unknown_filter(strato, ec2):
    expect_code("InvalidParameterValue", ec2.describe_instances,
                Filters=[{"Name": "bogus-filter", "Values": ["x"]}])
    assert aws_error(strato, "ec2", "describe-instances", "--filters", "Name=no-such-thing,Values=1") \
        == "InvalidParameterValue"


# --------------------------------------------------------------------------- filters


@pytest.fixture(scope="module")
def fleet(ec2):
    batch = f"b-{uuid.uuid4()}"
    spec = [
        ("A", "t3.micro", "us-east-1a", {"Name": "web-1", "Env": "prod"}),
        ("B", "t3.small", "us-east-1b", {"Name": "web-2", "Env": "dev"}),
        ("C", "m5.large", "us-east-1c", {"Name": "db-1", "Env": "prod", "Team": "data"}),
        ("D", "t2.micro", "us-east-1a", {"Name": "web-10", "Env": "Prod"}),
    ]
    ids = {}
    for label, itype, az, tags in spec:
        tags = dict(tags, Batch=batch)
        (ids[label],) = launch(
            ec2, InstanceType=itype, Placement={"AvailabilityZone": az},
            TagSpecifications=[{"ResourceType": "instance",
                                "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}])
    wait_state(ec2, list(ids.values()), "running")
    ec2.stop_instances(InstanceIds=[ids["D"]])
    wait_state(ec2, [ids["D"]], "stopped")
    return batch, ids


def labels(ec2, fleet, *filters, ids=None):
    batch, idmap = fleet
    back = {v: k for k, v in idmap.items()}
    fl = [{"Name": "tag:Batch", "Values": [batch]}] + [{"Name": n, "Values": list(v)} for n, v in filters]
    if ids:
        r = ec2.describe_instances(InstanceIds=[idmap[x] for x in ids], Filters=fl)
        found = [i for res in r["Reservations"] for i in res["Instances"]]
    else:
        found = all_instances(ec2, Filters=fl)
    return {back[i["InstanceId"]] for i in found}


@pytest.mark.parametrize("filters,expected", [
    ([], "ABCD"),
    ([("instance-type", ["t3.micro", "t3.small"])], "AB"),
    ([("instance-type", ["t3.micro"]), ("tag:Env", ["prod"])], "A"),
    ([("instance-type", ["m5.large"]), ("tag:Env", ["dev"])], ""),
    ([("instance-type", ["t3.micro", "m5.large"]), ("tag:Env", ["prod", "dev"])], "AC"),
    ([("tag:Name", ["web-*"])], "ABD"),
    ([("tag:Name", ["web-?"])], "AB"),
    ([("tag:Name", ["web-??"])], "D"),
    ([("tag:Name", ["*-1*"])], "ACD"),
    ([("tag:Name", ["*"])], "ABCD"),
    ([("tag:Name", ["web"])], ""),
    ([("instance-type", ["t?.micro"])], "AD"),
    ([("instance-type", ["*.micro"])], "AD"),
    ([("instance-type", ["t3.*"])], "AB"),
    ([("tag-key", ["Team"])], "C"),
    ([("tag-key", ["Team", "Nope"])], "C"),
    ([("tag-key", ["Nope"])], ""),
    ([("tag-key", ["Te*"])], "C"),
    ([("tag-value", ["dev"])], "B"),
    ([("tag-value", ["prod"])], "AC"),
    ([("tag:Env", ["PROD"])], ""),
    ([("tag:Env", ["Prod"])], "D"),
    ([("tag:env", ["prod"])], ""),
    ([("tag:Team", ["*"])], "C"),
    ([("instance-state-name", ["stopped"])], "D"),
    ([("instance-state-name", ["running"])], "ABC"),
    ([("instance-state-name", ["running", "stopped"])], "ABCD"),
    ([("instance-state-name", ["run*"])], "ABC"),
    ([("instance-state-code", ["80"])], "D"),
    ([("instance-state-code", ["16"])], "ABC"),
    ([("availability-zone", ["us-east-1b"])], "B"),
    ([("availability-zone", ["us-east-1a"]), ("instance-state-name", ["running"])], "A"),
    ([("image-id", [DEFAULT_IMAGE])], "ABCD"),
    ([("image-id", ["ami-00000000"])], ""),
    ([("architecture", ["x86_64"])], "ABCD"),
])
def test_instance_filters(ec2, fleet, filters, expected):
    assert labels(ec2, fleet, *filters) == set(expected)


def test_instance_id_and_reservation_filters(ec2, fleet):
    _, ids = fleet
    assert labels(ec2, fleet, ("instance-id", [ids["A"], ids["C"]])) == {"A", "C"}
    res = instance(ec2, ids["B"])
    d = ec2.describe_instances(InstanceIds=[ids["B"]])
    rid = d["Reservations"][0]["ReservationId"]
    assert labels(ec2, fleet, ("reservation-id", [rid])) == {"B"}
    assert res["InstanceId"] == ids["B"]


def test_filters_combine_with_instance_ids(ec2, fleet):
    assert labels(ec2, fleet, ("instance-type", ["t3.*"]), ids="ABC") == {"A", "B"}
    assert labels(ec2, fleet, ("tag:Env", ["nothing"]), ids="ABC") == set()


def test_filters_via_cli(strato, fleet):
    batch, ids = fleet
    d = strato.aws("ec2", "describe-instances", "--filters",
                   f"Name=tag:Batch,Values={batch}", "Name=tag:Env,Values=prod,dev")
    got = {i["InstanceId"] for r in d["Reservations"] for i in r["Instances"]}
    assert got == {ids["A"], ids["B"], ids["C"]}
    d = strato.aws("ec2", "describe-instances", "--filters",
                   f"Name=tag:Batch,Values={batch}", "Name=instance-state-name,Values=stopped",
                   "--query", "Reservations[].Instances[].InstanceId")
    assert d == [ids["D"]]


# --------------------------------------------------------------------------- pagination


@pytest.fixture(scope="module")
def paged(ec2):
    batch = f"pg-{uuid.uuid4()}"
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.nano", MinCount=23, MaxCount=23,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Batch", "Value": batch}]}])
    ids = [i["InstanceId"] for i in r["Instances"]]
    assert len(ids) == 23
    return batch, set(ids)


def walk(ec2, page_size, **kw):
    pages = []
    token = None
    while True:
        args = dict(kw, MaxResults=page_size)
        if token:
            args["NextToken"] = token
        r = ec2.describe_instances(**args)
        pages.append([i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]])
        token = r.get("NextToken")
        if not token:
            return pages
        assert len(pages) < 1000, "pagination does not terminate"


def test_pagination_with_filter(ec2, paged):
    batch, ids = paged
    pages = walk(ec2, 5, Filters=[{"Name": "tag:Batch", "Values": [batch]}])
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) == 23
    assert set(flat) == ids
    # Stable: walking again gives exactly the same pages.
    assert walk(ec2, 5, Filters=[{"Name": "tag:Batch", "Values": [batch]}]) == pages


def test_pagination_without_filter_sees_everything_once(ec2, paged):
    _, ids = paged
    pages = walk(ec2, 5)
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat))
    assert all(len(p) == 5 for p in pages[:-1])
    assert 1 <= len(pages[-1]) <= 5
    assert ids <= set(flat)
    everything = {i["InstanceId"] for i in all_instances(ec2)}
    assert set(flat) == everything


def test_pagination_is_stable_while_instances_are_added(ec2, paged):
    batch, ids = paged
    flt = [{"Name": "tag:Batch", "Values": [batch]}]
    r = ec2.describe_instances(MaxResults=5, Filters=flt)
    seen = [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]]
    token = r["NextToken"]
    # New, unrelated instances appear between pages.
    launch(ec2, count=3)
    while token:
        r = ec2.describe_instances(MaxResults=5, Filters=flt, NextToken=token)
        seen += [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]]
        token = r.get("NextToken")
    assert len(seen) == len(set(seen))
    assert set(seen) == ids


def test_boto3_paginator(ec2, paged):
    batch, ids = paged
    pager = ec2.get_paginator("describe_instances")
    pages = list(pager.paginate(Filters=[{"Name": "tag:Batch", "Values": [batch]}],
                                PaginationConfig={"PageSize": 5}))
    assert len(pages) == 5
    got = [i["InstanceId"] for p in pages for res in p["Reservations"] for i in res["Instances"]]
    assert len(got) == 23 and set(got) == ids


def test_cli_pagination(strato, paged):
    batch, ids = paged
    d = strato.aws("ec2", "describe-instances", "--page-size", "5",
                   "--filters", f"Name=tag:Batch,Values={batch}")
    got = [i["InstanceId"] for r in d["Reservations"] for i in r["Instances"]]
    assert len(got) == 23 and set(got) == ids


# --------------------------------------------------------------------------- DescribeInstanceStatus


def test_instance_status_running_only_by_default(ec2, fleet):
    _, ids = fleet
    r = ec2.describe_instance_status(InstanceIds=list(ids.values()))
    got = {s["InstanceId"]: s for s in r["InstanceStatuses"]}
    assert set(got) == {ids["A"], ids["B"], ids["C"]}
    for s in got.values():
        assert s["InstanceState"] == {"Code": 16, "Name": "running"}
        assert s["InstanceStatus"]["Status"] == "ok"
        assert s["SystemStatus"]["Status"] == "ok"
        assert s["InstanceStatus"]["Details"][0] == {"Name": "reachability", "Status": "passed"}
    assert got[ids["B"]]["AvailabilityZone"] == "us-east-1b"
    # The stopped one alone: empty, not an error.
    assert ec2.describe_instance_status(InstanceIds=[ids["D"]])["InstanceStatuses"] == []


def test_instance_status_include_all(strato, ec2, fleet):
    _, ids = fleet
    r = ec2.describe_instance_status(InstanceIds=list(ids.values()), IncludeAllInstances=True)
    got = {s["InstanceId"]: s for s in r["InstanceStatuses"]}
    assert set(got) == set(ids.values())
    assert got[ids["D"]]["InstanceState"] == {"Code": 80, "Name": "stopped"}
    assert got[ids["D"]]["InstanceStatus"]["Status"] == "not-applicable"
    d = strato.aws("ec2", "describe-instance-status", "--include-all-instances", "--instance-ids", ids["D"])
    assert [s["InstanceId"] for s in d["InstanceStatuses"]] == [ids["D"]]
    assert d["InstanceStatuses"][0]["InstanceState"]["Name"] == "stopped"


def test_instance_status_filters_and_errors(ec2, fleet):
    _, ids = fleet
    r = ec2.describe_instance_status(IncludeAllInstances=True,
                                     Filters=[{"Name": "instance-state-name", "Values": ["stopped"]}])
    assert ids["D"] in {s["InstanceId"] for s in r["InstanceStatuses"]}
    assert all(s["InstanceState"]["Name"] == "stopped" for s in r["InstanceStatuses"])
    r = ec2.describe_instance_status(Filters=[{"Name": "availability-zone", "Values": ["us-east-1c"]}])
    assert ids["C"] in {s["InstanceId"] for s in r["InstanceStatuses"]}
    assert all(s["AvailabilityZone"] == "us-east-1c" for s in r["InstanceStatuses"])
    expect_code("InvalidInstanceID.NotFound", ec2.describe_instance_status, InstanceIds=["i-0123456789abcdef0"])
    expect_code("InvalidInstanceID.Malformed", ec2.describe_instance_status, InstanceIds=["i-nope"])
    expect_code("InvalidParameterValue", ec2.describe_instance_status,
                Filters=[{"Name": "tag:Env", "Values": ["prod"]}])
    expect_code("InvalidParameterValue", ec2.describe_instance_status,
                Filters=[{"Name": "bogus", "Values": ["x"]}])
    expect_code("InvalidParameterCombination", ec2.describe_instance_status, InstanceIds=[ids["A"]], MaxResults=5)
    expect_code("InvalidParameterValue", ec2.describe_instance_status, MaxResults=4)


def test_instance_status_pagination(ec2, paged):
    wait_state(ec2, sorted(paged[1]), "running")
    seen = []
    token = None
    while True:
        args = {"MaxResults": 5, "IncludeAllInstances": True}
        if token:
            args["NextToken"] = token
        r = ec2.describe_instance_status(**args)
        assert len(r["InstanceStatuses"]) <= 5
        seen += [s["InstanceId"] for s in r["InstanceStatuses"]]
        token = r.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen))
    assert paged[1] <= set(seen)


def test_state_codes_in_describe(ec2, fleet):
    _, ids = fleet
    got = instances_by_id(ec2, ids.values())
    for i in got.values():
        assert STATE_CODES[i["State"]["Name"]] == i["State"]["Code"]


# --------------------------------------------------------------------------- concurrency and user data edge cases


def test_concurrent_runs_with_one_client_token_launch_once(strato, ec2):
    import concurrent.futures

    token = f"race-{uuid.uuid4()}"
    clients = [strato.client() for _ in range(8)]

    def run(c):
        return c.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                               ClientToken=token)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, clients))
    assert len({r["ReservationId"] for r in results}) == 1
    assert len({r["Instances"][0]["InstanceId"] for r in results}) == 1
    found = all_instances(ec2, Filters=[{"Name": "client-token", "Values": [token]}])
    assert len(found) == 1


def test_user_data_binary_and_size_limit(ec2):
    blob = bytes(range(256)) * 4
    (iid,) = launch(ec2, UserData=blob)
    got = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(got) == blob
    exactly = b"#" * (16 * 1024)
    (iid2,) = launch(ec2, UserData=exactly)
    got = ec2.describe_instance_attribute(InstanceId=iid2, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(got) == exactly
