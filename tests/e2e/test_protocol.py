"""The wire protocol, spoken by hand: SigV4 (header and presigned), error envelopes,
request ids, hostile inputs, /healthz and /metrics."""

import concurrent.futures
import re
import time
import urllib.parse

import pytest

from conftest import DEFAULT_IMAGE
from helpers import (
    EC2_VERSION,
    get_url,
    healthy,
    http_send,
    launch,
    minutes,
    presigned_url,
    signed,
    wait_state,
)

DESCRIBE = {"Action": "DescribeRegions", "Version": EC2_VERSION}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def assert_success(r, action):
    assert r.status == 200, r.text[:500]
    root = r.xml()
    assert root.tag.endswith(f"{action}Response"), root.tag
    rid = root.findtext("{http://ec2.amazonaws.com/doc/2016-11-15/}requestId")
    assert rid, r.text[:300]
    assert r.headers.get("x-amzn-requestid") == rid
    assert r.headers.get("content-type", "").startswith("text/xml")
    return root


# --------------------------------------------------------------------------- valid requests


def test_signed_post_succeeds_with_request_id(strato):
    r = signed(strato, DESCRIBE)
    root = assert_success(r, "DescribeRegions")
    assert "us-east-1" in r.text
    assert UUID_RE.match(r.headers["x-amzn-requestid"])
    # Every request gets its own id.
    assert signed(strato, DESCRIBE).headers["x-amzn-requestid"] != r.headers["x-amzn-requestid"]
    assert root is not None


def test_signed_get_with_query_string(strato):
    r = signed(strato, {"Action": "DescribeAvailabilityZones", "Version": EC2_VERSION,
                        "ZoneName.1": "us-east-1b"}, method="GET")
    assert_success(r, "DescribeAvailabilityZones")
    assert "<zoneName>us-east-1b</zoneName>" in r.text
    assert "us-east-1a" not in r.text


def test_presigned_get_url(strato):
    url = presigned_url(strato, {"Action": "DescribeRegions", "Version": EC2_VERSION}, expires=300)
    assert "X-Amz-Signature=" in url
    r = get_url(strato, url)
    assert_success(r, "DescribeRegions")
    # Reusable while valid.
    assert get_url(strato, url).status == 200


def test_presigned_url_expired(strato):
    # Signed 10 minutes ago, valid for 60 seconds.
    url = presigned_url(strato, {"Action": "DescribeRegions", "Version": EC2_VERSION}, expires=60, shift=-minutes(10))
    r = get_url(strato, url)
    r.assert_ec2_error("RequestExpired")


def test_presigned_url_tampered(strato):
    url = presigned_url(strato, {"Action": "DescribeRegions", "Version": EC2_VERSION}, expires=300)
    r = get_url(strato, url.replace("Action=DescribeRegions", "Action=DescribeImages"))
    r.assert_ec2_error("SignatureDoesNotMatch", 403)


def test_dry_run_is_412(strato, ec2):
    before = len(ec2.describe_instances()["Reservations"])
    r = signed(strato, {"Action": "RunInstances", "Version": EC2_VERSION, "ImageId": DEFAULT_IMAGE,
                        "MinCount": "1", "MaxCount": "1", "DryRun": "true"})
    r.assert_ec2_error("DryRunOperation", 412)
    assert len(ec2.describe_instances()["Reservations"]) == before


def test_older_api_version_is_served_newer_is_not(strato):
    r = signed(strato, {"Action": "DescribeRegions", "Version": "2014-10-01"})
    assert r.status == 200, r.text
    signed(strato, {"Action": "DescribeRegions", "Version": "2099-01-01"}).assert_ec2_error("NoSuchVersion", 400)
    signed(strato, {"Action": "DescribeRegions", "Version": "yesterday"}).assert_ec2_error("NoSuchVersion", 400)
    signed(strato, {"Action": "DescribeRegions"}).assert_ec2_error("MissingParameter", 400)


# --------------------------------------------------------------------------- authentication failures


def test_unsigned_request(strato):
    r = http_send(strato, "POST", "/", body=urllib.parse.urlencode(DESCRIBE).encode(),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    r.assert_ec2_error("MissingAuthenticationToken", 401)
    r = http_send(strato, "GET", "/?" + urllib.parse.urlencode(DESCRIBE))
    r.assert_ec2_error("MissingAuthenticationToken", 401)


def test_bad_secret(strato):
    r = signed(strato, DESCRIBE, secret="x" * 40)
    r.assert_ec2_error("SignatureDoesNotMatch", 403)


def test_unknown_access_key(strato):
    r = signed(strato, DESCRIBE, key_id="AKIAUNKNOWNKEY000000", secret="x" * 40)
    r.assert_ec2_error("AuthFailure", 401)


def test_request_too_old(strato):
    r = signed(strato, DESCRIBE, shift=-minutes(20))
    r.assert_ec2_error("RequestExpired")
    r = signed(strato, DESCRIBE, shift=minutes(20))
    r.assert_ec2_error("RequestExpired")
    # Within the 15-minute skew is fine.
    assert signed(strato, DESCRIBE, shift=-minutes(5)).status == 200


def test_wrong_region_in_scope(strato):
    # Every served region is fine; a region that does not exist is refused.
    assert signed(strato, DESCRIBE, region="eu-west-1").status == 200
    r = signed(strato, DESCRIBE, region="xx-fake-1")
    r.assert_ec2_error("AuthFailure", 401)
    assert "xx-fake-1" in r.text


def test_wrong_service_in_scope(strato):
    r = signed(strato, DESCRIBE, service="s3")
    assert r.status in (401, 403), r
    r.assert_ec2_error()


def test_malformed_authorization_header(strato):
    body = urllib.parse.urlencode(DESCRIBE).encode()
    for auth in ("AWS4-HMAC-SHA256 garbage",
                 "AWS4-HMAC-SHA256 Credential=AKIA/20200101/us-east-1/ec2/aws4_request",
                 "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=zz",
                 "AWS4-HMAC-SHA256 Credential=AKIAX/2020/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, "
                 "Signature=" + "0" * 64):
        r = http_send(strato, "POST", "/", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Amz-Date": "20200101T000000Z",
            "Authorization": auth})
        assert r.status in (400, 403), (auth, r)
        r.assert_ec2_error("IncompleteSignature")
    r = http_send(strato, "POST", "/", body=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic dXNlcjpwYXNz"})
    r.assert_ec2_error("IncompleteSignature")


def test_tampered_body(strato):
    def tamper(headers, body):
        return headers, body.replace(b"DescribeRegions", b"DescribeImages!")
    r = signed(strato, DESCRIBE, tamper=tamper)
    r.assert_ec2_error("SignatureDoesNotMatch", 403)


def test_sts_errors_use_the_sts_envelope(strato):
    r = signed(strato, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, service="sts",
               secret="y" * 40)
    assert r.status == 403
    root = r.xml()
    assert root.tag.endswith("ErrorResponse")
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text
    assert r.body_request_id == r.headers["x-amzn-requestid"]
    ok = signed(strato, {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, service="sts")
    assert ok.status == 200 and "<Account>" in ok.text
    assert ok.body_request_id == ok.headers["x-amzn-requestid"]


# --------------------------------------------------------------------------- unknown and hostile input


def test_unknown_action(strato):
    r = signed(strato, {"Action": "LaunchTheRockets", "Version": EC2_VERSION})
    r.assert_ec2_error("InvalidAction", 400)
    assert "LaunchTheRockets" in r.text
    r = signed(strato, {"Action": "describeinstances", "Version": EC2_VERSION})
    r.assert_ec2_error("InvalidAction", 400)


def test_missing_action(strato):
    r = signed(strato, {"Version": EC2_VERSION})
    r.assert_ec2_error()


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_http_methods(strato, method):
    r = signed(strato, DESCRIBE, method=method)
    r.assert_ec2_error()
    r = http_send(strato, method, "/", body=b"Action=DescribeRegions")
    r.assert_ec2_error()
    assert healthy(strato)


GARBAGE_BODIES = [
    b"\x00\x01\x02\x03\xff\xfe\xfd",
    b"&&&===&&&",
    b"Action",
    b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=%FF%FE%00&Filter.1.Value.1=x",
    b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=\xff\xfe\xfa",
    b"Action=DescribeInstances&Version=2016-11-15&Filter.99999.Name=bogus&Filter.99999.Value.1=x",
    b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=instance-type",
    b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Value.1=t3.micro",
    b"Action=DescribeInstances&Version=2016-11-15&MaxResults=99999999999999999999999",
    b"Action=DescribeInstances&Version=2016-11-15&MaxResults=-5",
    b"Action=RunInstances&Version=2016-11-15&ImageId=ami-05a9d2c7e4b1f3801&MinCount=1&MaxCount=1&DryRun=maybe",
    b"Action=DescribeInstances&Version=2016-11-15&NextToken=%00%00",
    b"Action=RunInstances&Version=2016-11-15&ImageId=" + b"a" * 200_000 + b"&MinCount=1&MaxCount=1",
    b"Action=CreateKeyPair&Version=2016-11-15&KeyName=" + b"k" * 500_000,
    b"Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-" + b"0" * 300_000,
    b"Action=RunInstances&Version=2016-11-15&ImageId=ami-05a9d2c7e4b1f3801&MinCount=1&MaxCount=1"
    b"&TagSpecification.1.ResourceType=instance&TagSpecification.1.Tag.1.Value=nokey",
    b"Action=RunInstances&Version=2016-11-15&ImageId=ami-05a9d2c7e4b1f3801&MinCount=1&MaxCount=-1",
    b"Action=CreateTags&Version=2016-11-15&ResourceId.1=ami-05a9d2c7e4b1f3801&Tag.1.Value=x",
    b"Action=ImportKeyPair&Version=2016-11-15&KeyName=x&PublicKeyMaterial=%%%",
    b"Action=ModifyInstanceAttribute&Version=2016-11-15&InstanceId=i-0123456789abcdef0&Attribute=kernel&Value=x",
]


@pytest.mark.parametrize("body", GARBAGE_BODIES, ids=[f"body{n}" for n in range(len(GARBAGE_BODIES))])
def test_garbage_bodies_get_4xx_xml(strato, body):
    r = signed(strato, body=body)
    r.assert_ec2_error()
    assert healthy(strato)


def test_many_list_members_and_deep_indexes(strato):
    params = {"Action": "DescribeInstances", "Version": EC2_VERSION}
    for n in range(1, 2001):
        params[f"InstanceId.{n}"] = f"i-{n:017x}"
    r = signed(strato, params)
    r.assert_ec2_error("InvalidInstanceID.NotFound")
    params = {"Action": "DescribeInstances", "Version": EC2_VERSION,
              "Filter.99999.Name": "instance-type", "Filter.99999.Value.99999": "t3.micro",
              "Filter.4294967296.Name": "instance-type", "Filter.18446744073709551617.Value.1": "x"}
    r = signed(strato, params)
    assert r.status < 500, r
    if r.status >= 400:
        r.assert_ec2_error()
    assert healthy(strato)


def test_oversized_body(strato):
    body = b"Action=DescribeRegions&Version=2016-11-15&Pad=" + b"x" * (3 * 1024 * 1024)
    r = signed(strato, body=body)
    r.assert_ec2_error()
    assert healthy(strato)


def test_invalid_utf8_in_unsigned_and_signed_requests(strato):
    r = http_send(strato, "POST", "/?Action=%FF%FE", body=b"\xff\xfe\xfd=\xc3\x28")
    r.assert_ec2_error("MissingAuthenticationToken")
    r = signed(strato, body=b"Action=\xc3\x28&Version=2016-11-15")
    r.assert_ec2_error()
    assert healthy(strato)


def test_garbage_auth_headers_never_5xx(strato):
    body = urllib.parse.urlencode(DESCRIBE).encode()
    headers_list = [
        {"Authorization": "\u00ff\u00fe".encode("latin-1").decode("latin-1")},
        {"Authorization": "AWS4-HMAC-SHA256 " + "Credential=" * 5000},
        {"Authorization": "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=" + "f" * 64,
         "X-Amz-Date": "not-a-date"},
        {"Authorization": "", "X-Amz-Date": "20200101T000000Z"},
    ]
    for h in headers_list:
        h = dict(h, **{"Content-Type": "application/x-www-form-urlencoded"})
        r = http_send(strato, "POST", "/", body=body, headers=h)
        assert 400 <= r.status < 500, (h, r)
        r.assert_ec2_error()
    # Query authentication with broken parameters.
    r = http_send(strato, "GET", "/?Action=DescribeRegions&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=abc")
    r.assert_ec2_error("IncompleteSignature")
    assert healthy(strato)


def test_concurrent_requests(strato, ec2):
    def one(n):
        if n % 3 == 0:
            return signed(strato, DESCRIBE).status
        if n % 3 == 1:
            return signed(strato, {"Action": "DescribeInstances", "Version": EC2_VERSION}).status
        return signed(strato, {"Action": "RunInstances", "Version": EC2_VERSION, "ImageId": DEFAULT_IMAGE,
                               "MinCount": "1", "MaxCount": "1", "DryRun": "true"}).status

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(96)))
    assert statuses.count(200) == 64
    assert statuses.count(412) == 32


# --------------------------------------------------------------------------- health and metrics


def test_healthz(strato):
    r = http_send(strato, "GET", "/healthz")
    assert r.status == 200 and r.text.strip() == "ok"


def metric_value(text, name, labels):
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


def test_metrics(strato, ec2):
    ids = launch(ec2, count=2)
    wait_state(ec2, ids, "running")
    r = http_send(strato, "GET", "/metrics")
    assert r.status == 200
    text = r.text
    assert "strato_api_requests" in text
    assert "strato_api_request_duration_seconds" in text
    assert 'strato_instances{state="running"}' in text
    running = sum(1 for res in ec2.describe_instances(
        Filters=[{"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for _ in res["Instances"])
    assert metric_value(text, "strato_instances", {"state": "running"}) == running
    for state in ("pending", "stopping", "stopped", "shutting-down", "terminated"):
        assert metric_value(text, "strato_instances", {"state": state}) is not None, state
    # Request counters move.
    counter = next(n for n in ("strato_api_requests_total", "strato_api_requests")
                   if metric_value(text, n, {"action": "RunInstances"}) is not None)
    before = metric_value(text, counter, {"action": "DescribeRegions", "code": "OK"}) or 0
    for _ in range(3):
        ec2.describe_regions()
    signed(strato, {"Action": "DescribeRegions", "Version": EC2_VERSION}, secret="bad" * 10)
    after_text = http_send(strato, "GET", "/metrics").text
    assert metric_value(after_text, counter, {"action": "DescribeRegions", "code": "OK"}) == before + 3
    assert (metric_value(after_text, counter, {"action": "DescribeRegions", "code": "SignatureDoesNotMatch"}) or 0) >= 1
    assert metric_value(after_text, "strato_api_request_duration_seconds_count", {"action": "DescribeRegions"}) >= 4
    # The gauge follows state changes.
    ec2.stop_instances(InstanceIds=ids)
    wait_state(ec2, ids, "stopped")
    text = http_send(strato, "GET", "/metrics").text
    assert metric_value(text, "strato_instances", {"state": "running"}) == running - 2
    assert metric_value(text, "strato_instances", {"state": "stopped"}) >= 2


def test_server_still_healthy_at_the_end(strato, ec2):
    assert healthy(strato)
    assert "us-east-1" in [r["RegionName"] for r in ec2.describe_regions()["Regions"]]
    assert strato.proc.poll() is None
    time.sleep(0)  # nothing to wait for; the checks above are the point
