"""The instance options real tools send at launch and read back: CPU credits (the
Terraform aws_instance read path), monitoring, EBS optimisation, CPU options,
maintenance and private DNS options, volume and interface tag specifications,
GetPasswordData, ResetInstanceAttribute, SourceDestCheck, and the DescribeVpcs
`cidr-block` filter Ansible sends."""

import pytest

from helpers import expect_code, instance, launch, tag_dict, wait_state


def credits_of(ec2, ids):
    r = ec2.describe_instance_credit_specifications(InstanceIds=ids)
    return {c["InstanceId"]: c["CpuCredits"] for c in r["InstanceCreditSpecifications"]}


def test_terraform_t3_launch_and_read_path(strato, ec2):
    # What aws_instance sends for a t3 with volume_tags, then reads after apply.
    [iid] = launch(
        ec2, InstanceType="t3.micro", ClientToken="tf-credit-1",
        CreditSpecification={"CpuCredits": "unlimited"},
        Monitoring={"Enabled": False}, EbsOptimized=False, DisableApiTermination=False,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]},
            {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "web-root"}]},
        ],
    )
    wait_state(ec2, [iid], "running")
    assert credits_of(ec2, [iid]) == {iid: "unlimited"}
    for attr in ("instanceInitiatedShutdownBehavior", "disableApiStop", "disableApiTermination", "userData"):
        ec2.describe_instance_attribute(InstanceId=iid, Attribute=attr)
    pw = ec2.get_password_data(InstanceId=iid)
    assert pw["InstanceId"] == iid and pw["PasswordData"] == ""
    i = instance(ec2, iid)
    assert i["Monitoring"] == {"State": "disabled"}
    assert i["EbsOptimized"] is False
    assert i["MaintenanceOptions"]["AutoRecovery"] == "default"
    assert i["PrivateDnsNameOptions"]["HostnameType"] == "ip-name"
    assert tag_dict(i) == {"Name": "web"}
    ec2.terminate_instances(InstanceIds=[iid])


def test_credit_defaults_and_changes(strato, ec2):
    other = strato.client(strato.create_account("credits-other"))
    assert ec2.get_default_credit_specification(InstanceFamily="t2")[
        "InstanceFamilyCreditSpecification"] == {"InstanceFamily": "t2", "CpuCredits": "standard"}
    assert ec2.get_default_credit_specification(InstanceFamily="t3")[
        "InstanceFamilyCreditSpecification"]["CpuCredits"] == "unlimited"
    [t2, t3, m5] = [launch(ec2, InstanceType=t)[0] for t in ("t2.micro", "t3.nano", "m5.large")]
    got = credits_of(ec2, [t2, t3])
    assert got == {t2: "standard", t3: "unlimited"}
    # Without ids: only burstable instances; a non-burstable one named is refused.
    listed = {c["InstanceId"] for c in ec2.describe_instance_credit_specifications()["InstanceCreditSpecifications"]}
    assert {t2, t3} <= listed and m5 not in listed
    expect_code("UnsupportedOperation", ec2.describe_instance_credit_specifications, InstanceIds=[m5])
    expect_code("InvalidParameterCombination", ec2.run_instances, ImageId=instance(ec2, t2)["ImageId"],
                InstanceType="m5.large", MinCount=1, MaxCount=1, CreditSpecification={"CpuCredits": "standard"})
    # The account default applies to later launches only, and only in this account.
    r = ec2.modify_default_credit_specification(InstanceFamily="t3", CpuCredits="standard")
    assert r["InstanceFamilyCreditSpecification"]["CpuCredits"] == "standard"
    [t3b] = launch(ec2, InstanceType="t3.micro")
    assert credits_of(ec2, [t3, t3b]) == {t3: "unlimited", t3b: "standard"}
    assert other.get_default_credit_specification(InstanceFamily="t3")[
        "InstanceFamilyCreditSpecification"]["CpuCredits"] == "unlimited"
    expect_code("InvalidParameterValue", ec2.modify_default_credit_specification,
                InstanceFamily="t3", CpuCredits="infinite")
    # Per-instance changes report each instance's own outcome.
    r = ec2.modify_instance_credit_specification(InstanceCreditSpecifications=[
        {"InstanceId": t2, "CpuCredits": "unlimited"},
        {"InstanceId": m5, "CpuCredits": "unlimited"},
        {"InstanceId": "i-0123456789abcdef0", "CpuCredits": "unlimited"},
    ])
    assert [s["InstanceId"] for s in r["SuccessfulInstanceCreditSpecifications"]] == [t2]
    failed = {u["InstanceId"]: u["Error"]["Code"] for u in r["UnsuccessfulInstanceCreditSpecifications"]}
    assert failed == {m5: "InstanceCreditSpecification.NotSupported", "i-0123456789abcdef0": "InvalidInstanceID.NotFound"}
    assert credits_of(ec2, [t2]) == {t2: "unlimited"}
    expect_code("DryRunOperation", ec2.modify_instance_credit_specification, DryRun=True,
                InstanceCreditSpecifications=[{"InstanceId": t2, "CpuCredits": "standard"}])
    assert credits_of(ec2, [t2]) == {t2: "unlimited"}
    # Another account sees none of it.
    expect_code("InvalidInstanceID.NotFound", other.describe_instance_credit_specifications, InstanceIds=[t2])
    ec2.terminate_instances(InstanceIds=[t2, t3, m5, t3b])


def test_monitoring_ebs_optimized_cpu_and_maintenance_options(strato, ec2):
    [iid] = launch(ec2, InstanceType="m5.xlarge", Monitoring={"Enabled": True}, EbsOptimized=True,
                   CpuOptions={"CoreCount": 1, "ThreadsPerCore": 1},
                   MaintenanceOptions={"AutoRecovery": "disabled"})
    i = instance(ec2, iid)
    assert i["Monitoring"] == {"State": "enabled"}
    assert i["EbsOptimized"] is True
    assert i["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    assert i["MaintenanceOptions"]["AutoRecovery"] == "disabled"
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="ebsOptimized")["EbsOptimized"]["Value"] is True
    # The type's default topology otherwise (m5.xlarge: 4 vCPUs = 2 cores x 2 threads).
    [plain] = launch(ec2, InstanceType="m5.xlarge")
    assert instance(ec2, plain)["CpuOptions"] == {"CoreCount": 2, "ThreadsPerCore": 2}
    for bad in ({"CoreCount": 3}, {"ThreadsPerCore": 3}, {"CoreCount": 0}):
        expect_code("InvalidParameterValue", ec2.run_instances, ImageId=instance(ec2, iid)["ImageId"],
                    InstanceType="m5.xlarge", MinCount=1, MaxCount=1, CpuOptions=bad)
    expect_code("InvalidParameterCombination", ec2.run_instances, ImageId=instance(ec2, iid)["ImageId"],
                InstanceType="t2.micro", MinCount=1, MaxCount=1, CpuOptions={"CoreCount": 1})
    # Unsupported private DNS options are refused by name, the defaults accepted.
    expect_code("UnsupportedOperation", ec2.run_instances, ImageId=instance(ec2, iid)["ImageId"],
                MinCount=1, MaxCount=1, PrivateDnsNameOptions={"HostnameType": "resource-name"})
    [dns] = launch(ec2, PrivateDnsNameOptions={"HostnameType": "ip-name", "EnableResourceNameDnsARecord": False})
    # EbsOptimized changes while stopped, as EC2.
    wait_state(ec2, [plain], "running")
    expect_code("IncorrectInstanceState", ec2.modify_instance_attribute, InstanceId=plain,
                EbsOptimized={"Value": True})
    ec2.stop_instances(InstanceIds=[plain])
    wait_state(ec2, [plain], "stopped")
    ec2.modify_instance_attribute(InstanceId=plain, EbsOptimized={"Value": True})
    assert instance(ec2, plain)["EbsOptimized"] is True
    ec2.terminate_instances(InstanceIds=[iid, plain, dns])


def test_source_dest_check_and_reset(strato, ec2):
    [iid] = launch(ec2)
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": True})
    expect_code("UnsupportedOperation", ec2.modify_instance_attribute, InstanceId=iid,
                SourceDestCheck={"Value": False})
    ec2.reset_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")
    expect_code("UnsupportedOperation", ec2.reset_instance_attribute, InstanceId=iid, Attribute="kernel")
    expect_code("InvalidParameterValue", ec2.reset_instance_attribute, InstanceId=iid, Attribute="userData")
    expect_code("InvalidInstanceID.NotFound", ec2.get_password_data, InstanceId="i-0123456789abcdef0")
    ec2.terminate_instances(InstanceIds=[iid])


def test_interface_tags_at_launch(strato, ec2):
    [iid] = launch(ec2, TagSpecifications=[
        {"ResourceType": "network-interface", "Tags": [{"Key": "role", "Value": "primary"}]}])
    eni = instance(ec2, iid)["NetworkInterfaces"][0]["NetworkInterfaceId"]
    n = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert tag_dict({"Tags": n.get("TagSet", [])}) == {"role": "primary"}
    expect_code("InvalidParameterValue", ec2.run_instances, ImageId=instance(ec2, iid)["ImageId"],
                MinCount=1, MaxCount=1, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "a", "Value": "b"}]}])
    ec2.terminate_instances(InstanceIds=[iid])


def test_describe_vpcs_cidr_block_filter(strato, ec2):
    # Ansible's ec2_vpc_net looks its VPC up this way on every run.
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "ansible-net"}]}])["Vpc"]["VpcId"]
    try:
        got = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["ansible-net"]},
                                         {"Name": "cidr-block", "Values": ["10.91.0.0/16"]}])["Vpcs"]
        assert [v["VpcId"] for v in got] == [vpc]
        assert ec2.describe_vpcs(Filters=[{"Name": "cidr-block", "Values": ["10.92.0.0/16"]}])["Vpcs"] == []
    finally:
        ec2.delete_vpc(VpcId=vpc)
