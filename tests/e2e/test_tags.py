"""CreateTags, DeleteTags, DescribeTags on instances, images and key pairs."""

import uuid

import pytest

from conftest import DEFAULT_IMAGE
from helpers import aws_error, client_error, expect_code, instance, launch, tag_dict, wait_state


def tags_of(ec2, rid):
    r = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [rid]}])
    return {t["Key"]: t["Value"] for t in r["Tags"]}


def test_create_tags_on_instance_visible_everywhere(strato, ec2):
    (iid,) = launch(ec2)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "Name", "Value": "web"}, {"Key": "Env", "Value": "prod"}])
    assert tag_dict(instance(ec2, iid)) == {"Name": "web", "Env": "prod"}
    r = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid]}])
    assert sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in r["Tags"]) == [
        (iid, "instance", "Env", "prod"), (iid, "instance", "Name", "web")]
    # Overwriting a value; an empty value is a value.
    strato.aws("ec2", "create-tags", "--resources", iid, "--tags", "Key=Env,Value=dev", "Key=Empty,Value=")
    assert tags_of(ec2, iid) == {"Name": "web", "Env": "dev", "Empty": ""}
    d = strato.aws("ec2", "describe-tags", "--filters", f"Name=resource-id,Values={iid}", "Name=key,Values=Env")
    assert [(t["Key"], t["Value"]) for t in d["Tags"]] == [("Env", "dev")]


def test_tags_from_run_instances(ec2):
    (iid,) = launch(ec2, TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Born", "Value": "tagged"}]}])
    assert tags_of(ec2, iid) == {"Born": "tagged"}


def test_create_tags_on_many_resources_at_once(ec2):
    ids = launch(ec2, count=3)
    k = ec2.create_key_pair(KeyName=f"multi-{uuid.uuid4().hex[:8]}")
    ec2.create_tags(Resources=ids + [k["KeyPairId"]], Tags=[{"Key": "Batch", "Value": "multi"}])
    for rid in ids + [k["KeyPairId"]]:
        assert tags_of(ec2, rid) == {"Batch": "multi"}


def test_delete_tags_semantics(strato, ec2):
    (iid,) = launch(ec2)
    tags = [{"Key": k, "Value": v} for k, v in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]]
    ec2.create_tags(Resources=[iid], Tags=tags)
    # Key only: deleted whatever the value.
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "a"}])
    assert tags_of(ec2, iid) == {"b": "2", "c": "3", "d": "4"}
    # Key and value: deleted only when the value matches.
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "b", "Value": "wrong"}])
    assert tags_of(ec2, iid) == {"b": "2", "c": "3", "d": "4"}
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "b", "Value": "2"}])
    assert tags_of(ec2, iid) == {"c": "3", "d": "4"}
    # A key that is not there is no error.
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "zzz"}])
    strato.aws("ec2", "delete-tags", "--resources", iid, "--tags", "Key=c")
    assert tags_of(ec2, iid) == {"d": "4"}
    # No tags at all: every tag of the resource goes.
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "e", "Value": "5"}])
    ec2.delete_tags(Resources=[iid])
    assert tags_of(ec2, iid) == {}
    assert "Tags" not in instance(ec2, iid) or instance(ec2, iid)["Tags"] == []


def test_tags_on_the_builtin_image(strato, ec2):
    ec2.create_tags(Resources=[DEFAULT_IMAGE], Tags=[{"Key": "Mine", "Value": "yes"}])
    img = ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0]
    assert tag_dict(img) == {"Mine": "yes"}
    r = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["image"]}])
    assert [(t["ResourceId"], t["Key"], t["Value"]) for t in r["Tags"]] == [(DEFAULT_IMAGE, "Mine", "yes")]
    imgs = ec2.describe_images(Filters=[{"Name": "tag:Mine", "Values": ["yes"]}])["Images"]
    assert [i["ImageId"] for i in imgs] == [DEFAULT_IMAGE]
    ec2.delete_tags(Resources=[DEFAULT_IMAGE], Tags=[{"Key": "Mine"}])
    assert "Tags" not in ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0] or \
        ec2.describe_images(ImageIds=[DEFAULT_IMAGE])["Images"][0]["Tags"] == []


def test_tags_on_key_pairs(ec2):
    k = ec2.create_key_pair(KeyName=f"tagk-{uuid.uuid4().hex[:8]}")
    ec2.create_tags(Resources=[k["KeyPairId"]], Tags=[{"Key": "Role", "Value": "deploy"}])
    d = ec2.describe_key_pairs(KeyPairIds=[k["KeyPairId"]])["KeyPairs"][0]
    assert tag_dict(d) == {"Role": "deploy"}
    r = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [k["KeyPairId"]]}])
    assert [t["ResourceType"] for t in r["Tags"]] == ["key-pair"]


def test_tags_on_terminated_instance_remain_visible(ec2):
    (iid,) = launch(ec2, wait="running",
                    TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Gone", "Value": "soon"}]}])
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert tags_of(ec2, iid) == {"Gone": "soon"}
    assert tag_dict(instance(ec2, iid)) == {"Gone": "soon"}


BAD_TAGS = [
    ([{"Key": "aws:reserved", "Value": "x"}], "InvalidParameterValue"),
    ([{"Key": "AWS:Reserved", "Value": "x"}], "InvalidParameterValue"),
    ([{"Key": "k" * 129, "Value": "x"}], "InvalidParameterValue"),
    ([{"Key": "", "Value": "x"}], "InvalidParameterValue"),
    ([{"Key": "k", "Value": "v" * 257}], "InvalidParameterValue"),
    ([{"Key": f"k{n}", "Value": "v"} for n in range(51)], "TagLimitExceeded"),
]


@pytest.mark.parametrize("tags,code", BAD_TAGS, ids=["aws-prefix", "AWS-prefix", "long-key", "empty-key",
                                                      "long-value", "too-many"])
def test_invalid_tags_are_rejected(ec2, tags, code):
    (iid,) = launch(ec2)
    expect_code(code, ec2.create_tags, Resources=[iid], Tags=tags)
    assert tags_of(ec2, iid) == {}


def test_tag_limits_accept_the_maximum(ec2):
    (iid,) = launch(ec2)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    ec2.create_tags(Resources=[iid], Tags=[{"Key": f"n{n}", "Value": "v"} for n in range(49)])
    assert len(tags_of(ec2, iid)) == 50
    # The 51st tag on the resource is one too many, and nothing of the call is kept.
    expect_code("TagLimitExceeded", ec2.create_tags, Resources=[iid], Tags=[{"Key": "extra", "Value": "x"}])
    assert len(tags_of(ec2, iid)) == 50 and "extra" not in tags_of(ec2, iid)


def test_create_tags_resource_errors(strato, ec2):
    (iid,) = launch(ec2)
    expect_code("InvalidInstanceID.NotFound", ec2.create_tags, Resources=["i-0123456789abcdef0"],
                Tags=[{"Key": "a", "Value": "b"}])
    expect_code("InvalidAMIID.NotFound", ec2.create_tags, Resources=["ami-0123456789abcdef0"],
                Tags=[{"Key": "a", "Value": "b"}])
    expect_code("InvalidKeyPair.NotFound", ec2.create_tags, Resources=["key-0123456789abcdef0"],
                Tags=[{"Key": "a", "Value": "b"}])
    expect_code("InvalidID", ec2.create_tags, Resources=["foo-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])
    # Network resources are taggable kinds: a missing one is that kind's NotFound.
    expect_code("InvalidVpcID.NotFound", ec2.create_tags, Resources=["vpc-12345678"], Tags=[{"Key": "a", "Value": "b"}])
    expect_code("InvalidID", ec2.create_tags, Resources=["vpc-cidr-assoc-12345678"], Tags=[{"Key": "a", "Value": "b"}])
    expect_code("InvalidID", ec2.create_tags, Resources=["nonsense"], Tags=[{"Key": "a", "Value": "b"}])
    code, _, _ = client_error(ec2.create_tags, Resources=["i-xyz"], Tags=[{"Key": "a", "Value": "b"}])
    assert code in ("InvalidID", "InvalidInstanceID.Malformed"), code
    assert aws_error(strato, "ec2", "create-tags", "--resources", "bogus-123", "--tags", "Key=a,Value=b") == "InvalidID"
    # All or nothing: one bad resource and the good one is not tagged either.
    expect_code("InvalidInstanceID.NotFound", ec2.create_tags, Resources=[iid, "i-0123456789abcdef0"],
                Tags=[{"Key": "a", "Value": "b"}])
    assert tags_of(ec2, iid) == {}
    expect_code("InvalidInstanceID.NotFound", ec2.delete_tags, Resources=["i-0123456789abcdef0"])
    expect_code("InvalidID", ec2.delete_tags, Resources=["foo-0123456789abcdef0"])
    expect_code("MissingParameter", ec2.create_tags, Resources=[iid], Tags=[])
    expect_code("MissingParameter", ec2.create_tags, Resources=[], Tags=[{"Key": "a", "Value": "b"}])


def test_tag_dry_runs_change_nothing(ec2):
    (iid,) = launch(ec2)
    ec2.create_tags(Resources=[iid], Tags=[{"Key": "keep", "Value": "1"}])
    code, status, _ = client_error(ec2.create_tags, Resources=[iid], Tags=[{"Key": "new", "Value": "2"}], DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    code, status, _ = client_error(ec2.delete_tags, Resources=[iid], Tags=[{"Key": "keep"}], DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    code, status, _ = client_error(ec2.delete_tags, Resources=[iid], DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert tags_of(ec2, iid) == {"keep": "1"}
    # Dry runs still validate.
    code, _, _ = client_error(ec2.create_tags, Resources=["i-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}],
                              DryRun=True)
    assert code == "InvalidInstanceID.NotFound"


@pytest.fixture(scope="module")
def tagged(ec2):
    marker = uuid.uuid4().hex[:8]
    ids = launch(ec2, count=4)
    for n, iid in enumerate(ids):
        ec2.create_tags(Resources=[iid], Tags=[{"Key": f"dt-{marker}", "Value": f"v{n}"},
                                               {"Key": f"dt-{marker}-x", "Value": "same"}])
    return marker, ids


def test_describe_tags_filters(ec2, tagged):
    marker, ids = tagged

    def tags(*filters):
        r = ec2.describe_tags(Filters=[{"Name": n, "Values": v} for n, v in filters])
        return {(t["ResourceId"], t["Key"], t["Value"]) for t in r["Tags"]}

    assert tags(("key", [f"dt-{marker}"])) == {(i, f"dt-{marker}", f"v{n}") for n, i in enumerate(ids)}
    assert tags(("key", [f"dt-{marker}*"])) == (
        {(i, f"dt-{marker}", f"v{n}") for n, i in enumerate(ids)} | {(i, f"dt-{marker}-x", "same") for i in ids})
    assert tags(("key", [f"dt-{marker}"]), ("value", ["v1", "v3"])) == {
        (ids[1], f"dt-{marker}", "v1"), (ids[3], f"dt-{marker}", "v3")}
    assert tags(("key", [f"dt-{marker}"]), ("value", ["v?"])) == tags(("key", [f"dt-{marker}"]))
    assert tags(("resource-id", [ids[0]]), ("key", [f"dt-{marker}*"])) == {
        (ids[0], f"dt-{marker}", "v0"), (ids[0], f"dt-{marker}-x", "same")}
    assert tags(("resource-type", ["key-pair"]), ("key", [f"dt-{marker}*"])) == set()
    assert tags(("key", [f"DT-{marker}"])) == set()
    expect_code("InvalidParameterValue", ec2.describe_tags, Filters=[{"Name": "colour", "Values": ["x"]}])


def test_describe_tags_pagination(ec2, tagged):
    marker, ids = tagged
    flt = [{"Name": "key", "Values": [f"dt-{marker}*"]}]
    seen = []
    token = None
    pages = 0
    while True:
        args = {"Filters": flt, "MaxResults": 5}
        if token:
            args["NextToken"] = token
        r = ec2.describe_tags(**args)
        pages += 1
        assert len(r["Tags"]) <= 5
        seen += [(t["ResourceId"], t["Key"]) for t in r["Tags"]]
        token = r.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 8
    assert pages == 2
    pager = ec2.get_paginator("describe_tags")
    got = [t for p in pager.paginate(Filters=flt, PaginationConfig={"PageSize": 5}) for t in p["Tags"]]
    assert len(got) == 8
    expect_code("InvalidParameterValue", ec2.describe_tags, MaxResults=4)
    expect_code("InvalidParameterValue", ec2.describe_tags, MaxResults=1001)
    expect_code("InvalidPaginationToken", ec2.describe_tags, MaxResults=5, NextToken="%%%")


def test_tag_text_round_trips(ec2):
    (iid,) = launch(ec2)
    odd = {"Name with spaces": "a<b>&\"'c", "unicode-ключ": "ü€😀", "path/like:key=1": "  padded  "}
    ec2.create_tags(Resources=[iid], Tags=[{"Key": k, "Value": v} for k, v in odd.items()])
    assert tags_of(ec2, iid) == odd
    assert tag_dict(instance(ec2, iid)) == odd
    r = ec2.describe_instances(Filters=[{"Name": "tag:unicode-ключ", "Values": ["ü€😀"]}])
    assert [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]] == [iid]


def test_escaped_wildcards_match_literally(ec2):
    marker = uuid.uuid4().hex[:8]
    star, other, q = launch(ec2, count=3)
    ec2.create_tags(Resources=[star], Tags=[{"Key": f"lit-{marker}", "Value": "a*b"}])
    ec2.create_tags(Resources=[other], Tags=[{"Key": f"lit-{marker}", "Value": "aXb"}])
    ec2.create_tags(Resources=[q], Tags=[{"Key": f"lit-{marker}", "Value": "a?b"}])

    def found(value):
        r = ec2.describe_instances(Filters=[{"Name": f"tag:lit-{marker}", "Values": [value]}])
        return {i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]}

    assert found("a*b") == {star, other, q}
    assert found("a?b") == {star, other, q}
    assert found("a\\*b") == {star}
    assert found("a\\?b") == {q}
