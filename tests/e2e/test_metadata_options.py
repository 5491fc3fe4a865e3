"""RunInstances MetadataOptions and ModifyInstanceMetadataOptions (the settings the
instance metadata service will enforce)."""

from helpers import aws_error, expect_code, instance, launch, wait_state


def md(ec2, iid):
    return instance(ec2, iid)["MetadataOptions"]


def test_defaults_and_launch_options(ec2):
    (plain,) = launch(ec2)
    assert md(ec2, plain) | {"State": None} == {
        "State": None, "HttpTokens": "optional", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled",
        "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "disabled"}
    (strict,) = launch(ec2, MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
    got = md(ec2, strict)
    assert (got["HttpTokens"], got["HttpPutResponseHopLimit"]) == ("required", 2)
    found = ec2.describe_instances(Filters=[{"Name": "metadata-options.http-tokens", "Values": ["required"]}])
    ids = [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]]
    assert strict in ids and plain not in ids
    expect_code("InvalidParameterValue", ec2.run_instances, ImageId=instance(ec2, plain)["ImageId"],
                MinCount=1, MaxCount=1, MetadataOptions={"HttpTokens": "sometimes"})


def test_modify_validates_and_applies(strato, ec2):
    (iid,) = launch(ec2, wait="running")
    r = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required", HttpPutResponseHopLimit=3)
    assert r["InstanceId"] == iid
    assert r["InstanceMetadataOptions"]["HttpTokens"] == "required"
    assert md(ec2, iid)["HttpPutResponseHopLimit"] == 3
    out = strato.aws("ec2", "modify-instance-metadata-options", "--instance-id", iid, "--http-endpoint", "disabled")
    assert out["InstanceMetadataOptions"]["HttpEndpoint"] == "disabled"
    assert md(ec2, iid)["HttpTokens"] == "required", "unnamed settings are kept"

    raw = strato.client(validate=False)
    for bad in [{"HttpTokens": "maybe"}, {"HttpPutResponseHopLimit": 0}, {"HttpPutResponseHopLimit": 65},
                {"HttpEndpoint": "on"}, {"InstanceMetadataTags": "yes"}]:
        expect_code("InvalidParameterValue", raw.modify_instance_metadata_options, InstanceId=iid, **bad)
    expect_code("MissingParameter", raw.modify_instance_metadata_options, InstanceId=iid)
    expect_code("InvalidInstanceID.NotFound", ec2.modify_instance_metadata_options,
                InstanceId="i-0000000000000000f", HttpTokens="optional")
    expect_code("InvalidInstanceID.Malformed", ec2.modify_instance_metadata_options,
                InstanceId="i-xyz", HttpTokens="optional")
    before = md(ec2, iid)
    expect_code("DryRunOperation", ec2.modify_instance_metadata_options, InstanceId=iid,
                HttpTokens="optional", DryRun=True)
    assert md(ec2, iid) == before

    other = strato.create_account("md-other")
    theirs = strato.client(other)
    expect_code("InvalidInstanceID.NotFound", theirs.modify_instance_metadata_options,
                InstanceId=iid, HttpTokens="optional")
    assert md(ec2, iid) == before

    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "terminated")
    assert aws_error(strato, "ec2", "modify-instance-metadata-options", "--instance-id", iid,
                     "--http-tokens", "optional") == "IncorrectInstanceState"
