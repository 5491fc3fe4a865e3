"""The front door on the AWS model: every parameter is walked through the EC2 model, so
a name the model lacks, a member Strato does not honour, a bad enum or range, a value
XML cannot carry and too many filter values are refused by name and change nothing;
operations of the model Strato does not serve answer UnsupportedOperation; requests
are throttled per account like EC2's; the HTTP edge answers in EC2's envelope and
bounds slow and idle clients."""

import socket
import time

import pytest

from conftest import DEFAULT_IMAGE, Strato
from helpers import EC2_VERSION, expect_code, http_send, signed


def test_unknown_parameter_is_refused_by_name(strato):
    r = signed(strato, {"Action": "DescribeRegions", "Version": EC2_VERSION, "Colour": "blue"})
    r.assert_ec2_error("UnknownParameter", 400)
    assert "Colour" in r.text
    # Below a known member too: a misspelt filter member.
    r = signed(strato, {"Action": "DescribeVpcs", "Version": EC2_VERSION,
                        "Filter.1.Nme": "cidr-block", "Filter.1.Value.1": "10.0.0.0/16"})
    r.assert_ec2_error("UnknownParameter", 400)
    assert "Filter.1.Nme" in r.text


@pytest.mark.parametrize("extra, named", [
    ({"BlockDeviceMapping.1.DeviceName": "/dev/sdf", "BlockDeviceMapping.1.Ebs.VolumeSize": "1",
      "BlockDeviceMapping.1.Ebs.OutpostArn": "arn:aws:outposts:us-east-1:123456789012:outpost/op-0123"},
     "BlockDeviceMapping.1.Ebs.OutpostArn"),
    ({"HibernationOptions.Configured": "true"}, "HibernationOptions.Configured"),
    ({"Ipv6AddressCount": "1"}, "Ipv6AddressCount"),
    ({"IamInstanceProfile.Name": "web"}, "IamInstanceProfile.Name"),
    ({"LaunchTemplate.LaunchTemplateName": "web"}, "LaunchTemplate.LaunchTemplateName"),
])
def test_unhonoured_run_instances_parameters_are_refused_and_launch_nothing(strato, ec2, extra, named):
    before = len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]])
    params = {"Action": "RunInstances", "Version": EC2_VERSION, "ImageId": DEFAULT_IMAGE,
              "MinCount": "1", "MaxCount": "1", **extra}
    r = signed(strato, params)
    r.assert_ec2_error("UnsupportedOperation", 400)
    assert named in r.text and "RunInstances" in r.text, r.text
    after = len([i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]])
    assert after == before


def test_defaults_sent_explicitly_are_accepted(strato, ec2):
    # Terraform sends these with their default values on every call.
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16", AmazonProvidedIpv6CidrBlock=False)["Vpc"]["VpcId"]
    try:
        expect_code("UnsupportedOperation", ec2.create_vpc, CidrBlock="10.78.0.0/16",
                    AmazonProvidedIpv6CidrBlock=True)
        sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", Ipv6Native=False)["Subnet"]
        ec2.delete_subnet(SubnetId=sub["SubnetId"])
    finally:
        ec2.delete_vpc(VpcId=vpc)


def test_operations_of_the_model_not_served_answer_unsupported_operation(strato):
    r = signed(strato, {"Action": "DescribeVpnGateways", "Version": EC2_VERSION})
    r.assert_ec2_error("UnsupportedOperation", 400)
    assert "DescribeVpnGateways" in r.text
    # A name that is not in the model at all.
    signed(strato, {"Action": "DescribeVolumez", "Version": EC2_VERSION}).assert_ec2_error("InvalidAction", 400)


def test_model_values_are_checked(strato):
    def call(**params):
        return signed(strato, {"Version": EC2_VERSION, **params})
    # An enum value the model does not list.
    r = call(Action="RunInstances", ImageId=DEFAULT_IMAGE, MinCount="1", MaxCount="1",
             InstanceInitiatedShutdownBehavior="explode")
    r.assert_ec2_error("InvalidParameterValue", 400)
    assert "explode" in r.text and "terminate" in r.text
    # A range: DescribeVpcs takes 5 to 1000 results a page.
    call(Action="DescribeVpcs", MaxResults="1").assert_ec2_error("InvalidParameterValue", 400)
    call(Action="DescribeVpcs", MaxResults="five").assert_ec2_error("InvalidParameterValue", 400)
    # A boolean and a required member.
    call(Action="DescribeKeyPairs", IncludePublicKey="yes").assert_ec2_error("InvalidParameterValue", 400)
    call(Action="CreateKeyPair").assert_ec2_error("MissingParameter", 400)
    # A long value is echoed cut short, never whole.
    r = call(Action="DescribeImages", **{"Owner.1": "x", "Filter.1.Name": "state",
                                          "Filter.1.Value.1": "a", "ExecutableBy.1": "y" * 5000})
    assert len(r.text) < 4000


def test_characters_xml_cannot_carry_are_refused(strato, ec2):
    vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
    try:
        for bad in ("\ufffe", "\uffff", "a\x01b"):
            expect_code("InvalidParameterValue", ec2.create_tags, Resources=[vpc],
                        Tags=[{"Key": "k", "Value": bad}])
        # Nothing was stored, and every listing stays parseable for boto3.
        assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [vpc]}])["Tags"] == []
        ec2.describe_vpcs()
    finally:
        ec2.delete_vpc(VpcId=vpc)


def test_filter_values_are_limited(strato, ec2):
    values = [f"v{n}*" for n in range(201)]
    status, msg = expect_code("FilterLimitExceeded", ec2.describe_tags,
                              Filters=[{"Name": "value", "Values": values}])
    assert status == 400 and "200" in msg
    # Exactly 200 is fine.
    ec2.describe_tags(Filters=[{"Name": "value", "Values": values[:200]}])


def test_create_network_interface_client_token_is_idempotent(strato, ec2):
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.1.0/24")["Subnet"]["SubnetId"]
    try:
        a = ec2.create_network_interface(SubnetId=sub, ClientToken="eni-token-1")["NetworkInterface"]
        b = ec2.create_network_interface(SubnetId=sub, ClientToken="eni-token-1")["NetworkInterface"]
        assert a["NetworkInterfaceId"] == b["NetworkInterfaceId"]
        expect_code("IdempotentParameterMismatch", ec2.create_network_interface, SubnetId=sub,
                    ClientToken="eni-token-1", Description="other")
        # boto3 fills a fresh token in by itself: two calls, two interfaces.
        c = ec2.create_network_interface(SubnetId=sub)["NetworkInterface"]
        assert c["NetworkInterfaceId"] != a["NetworkInterfaceId"]
        ids = {n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces(
            Filters=[{"Name": "subnet-id", "Values": [sub]}])["NetworkInterfaces"]}
        assert ids == {a["NetworkInterfaceId"], c["NetworkInterfaceId"]}
        for n in ids:
            ec2.delete_network_interface(NetworkInterfaceId=n)
    finally:
        ec2.delete_subnet(SubnetId=sub)
        ec2.delete_vpc(VpcId=vpc)


# --------------------------------------------------------------------------- throttling


def test_requests_are_throttled_per_account_and_retried_by_sdks():
    # 0.05 of EC2's budget: unfiltered Describe calls get 2.5 tokens and 0.5 a second.
    s = Strato(extra_args=["--throttle-scale", "0.05"]).start()
    try:
        codes = [signed(s, {"Action": "DescribeRegions", "Version": EC2_VERSION}) for _ in range(12)]
        limited = [r for r in codes if r.status == 503]
        assert len(limited) >= 8, [r.status for r in codes]
        limited[0].assert_ec2_error("RequestLimitExceeded", 503)
        # Another account has buckets of its own.
        other = s.client(s.create_account("throttle-other"))
        other.describe_regions()
        # Another action has its own bucket too.
        s.client().describe_availability_zones()
        # boto3's standard retry mode waits out the bucket.
        patient = s.client(retries=6)
        t0 = time.time()
        for _ in range(3):
            patient.describe_regions()
        assert time.time() - t0 < 60
    finally:
        s.stop()


def test_throttling_can_be_turned_off():
    s = Strato(extra_args=["--throttle", "false", "--throttle-scale", "0.01"]).start()
    try:
        for _ in range(20):
            assert signed(s, {"Action": "DescribeRegions", "Version": EC2_VERSION}).status == 200
    finally:
        s.stop()


# --------------------------------------------------------------------------- the HTTP edge


def test_too_many_headers_and_long_uris_get_the_envelope(strato):
    headers = {f"X-Pad-{n}": "x" for n in range(150)}
    r = http_send(strato, "POST", "/", body=b"Action=DescribeRegions", headers=headers)
    r.assert_ec2_error("RequestHeaderFieldsTooLarge", 431)
    r = http_send(strato, "GET", "/?Action=DescribeRegions&Pad=" + "x" * 20000)
    r.assert_ec2_error("RequestURITooLong", 414)


def test_connection_cap_and_slow_headers():
    s = Strato(extra_args=["--max-connections", "4"]).start()
    held = []
    try:
        for _ in range(4):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            held.append(c)
        time.sleep(0.3)
        # Over the cap: EC2's envelope with 503, and the connection is closed.
        r = http_send(s, "POST", "/", body=b"Action=DescribeRegions")
        r.assert_ec2_error("RequestLimitExceeded", 503)
        # A client that never finishes its headers is cut off after the header timeout
        # (10 s), which frees its slot.
        time.sleep(11)
        for c in held:
            c.settimeout(5)
            got = c.recv(4096)
            assert got == b"" or got.startswith(b"HTTP/1.1 408"), got[:200]
        assert signed(s, {"Action": "DescribeRegions", "Version": EC2_VERSION}).status == 200
    finally:
        for c in held:
            c.close()
        s.stop()


def test_a_thousand_slow_clients_do_not_starve_a_real_one():
    """1,000 connections trickling their headers a byte a second (a slowloris) hold
    sockets but no worker: a real client's requests are still answered at once."""
    import resource
    import statistics
    import threading

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    s = Strato().start()
    slow = []
    stop = threading.Event()
    try:
        baseline = []
        for _ in range(20):
            t0 = time.monotonic()
            assert signed(s, {"Action": "DescribeRegions", "Version": EC2_VERSION}).status == 200
            baseline.append(time.monotonic() - t0)
        for _ in range(1000):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
            c.sendall(b"P")
            slow.append(c)
        request = b"OST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: yes\r\n"

        def trickle():
            # One more header byte a second on every slow connection.
            for i in range(len(request)):
                if stop.wait(1.0):
                    return
                for c in slow:
                    try:
                        c.sendall(request[i:i + 1])
                    except OSError:
                        pass

        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        time.sleep(1.5)
        during = []
        for _ in range(20):
            t0 = time.monotonic()
            assert signed(s, {"Action": "DescribeRegions", "Version": EC2_VERSION}).status == 200
            during.append(time.monotonic() - t0)
        # Generous bounds for a shared 2-core machine: served in well under a second,
        # and not an order of magnitude slower than without the slow clients.
        assert max(during) < 1.0, during
        assert statistics.median(during) < max(0.05, 10 * statistics.median(baseline)), (baseline, during)
        # The slow clients are cut off by the header timeout (10 s from their first
        # byte), not kept forever.
        time.sleep(11)
        stop.set()
        cut = 0
        for c in slow:
            c.settimeout(0.2)
            try:
                got = c.recv(4096)
                if got == b"" or got.startswith(b"HTTP/1.1 408"):
                    cut += 1
            except OSError:
                cut += 1
        assert cut == len(slow), f"{len(slow) - cut} slow connections still open"
    finally:
        stop.set()
        for c in slow:
            c.close()
        s.stop()
