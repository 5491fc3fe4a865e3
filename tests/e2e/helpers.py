"""Shared helpers for the e2e suite: launching, polling, raw signed HTTP, CLI errors."""

import datetime
import http.client
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from conftest import DEFAULT_IMAGE, REGION

EC2_VERSION = "2016-11-15"
STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}


# --------------------------------------------------------------------------- polling


def wait_until(predicate, timeout=20, interval=0.05, what="condition"):
    """Polls `predicate` until it returns a truthy value; returns that value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def instances_by_id(ec2, ids):
    r = ec2.describe_instances(InstanceIds=list(ids))
    return {i["InstanceId"]: i for res in r["Reservations"] for i in res["Instances"]}


def instance(ec2, iid):
    return instances_by_id(ec2, [iid])[iid]


def state_of(ec2, iid):
    return instance(ec2, iid)["State"]["Name"]


def wait_state(ec2, ids, state, timeout=20):
    """Waits for every instance in `ids` to be in `state`; returns {id: instance}."""
    if isinstance(ids, str):
        ids = [ids]

    def check():
        got = instances_by_id(ec2, ids)
        return got if all(got[i]["State"]["Name"] == state for i in ids) else None

    return wait_until(check, timeout=timeout, what=f"{ids} to be {state}")


def all_instances(ec2, **kw):
    """Every instance the caller sees (following NextToken), as a list."""
    out = []
    token = None
    while True:
        args = dict(kw)
        if token:
            args["NextToken"] = token
        r = ec2.describe_instances(**args)
        out.extend(i for res in r["Reservations"] for i in res["Instances"])
        token = r.get("NextToken")
        if not token:
            return out


def instance_count(ec2):
    return len(all_instances(ec2))


def launch(ec2, count=1, wait=None, **kw):
    """RunInstances with sensible defaults; returns the list of instance ids."""
    kw.setdefault("ImageId", DEFAULT_IMAGE)
    kw.setdefault("InstanceType", "t3.micro")
    r = ec2.run_instances(MinCount=kw.pop("MinCount", count), MaxCount=kw.pop("MaxCount", count), **kw)
    ids = [i["InstanceId"] for i in r["Instances"]]
    if wait:
        wait_state(ec2, ids, wait)
    return ids


def root_volume(ec2, iid, device="/dev/xvda"):
    """The id of the volume attached at the instance's root device (waits for it)."""
    def find():
        vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]},
                                             {"Name": "attachment.device", "Values": [device]}])["Volumes"]
        return vols[0]["VolumeId"] if vols else None
    return wait_until(find, what=f"{iid}'s root volume")


def tag_dict(obj):
    return {t["Key"]: t["Value"] for t in obj.get("Tags", [])}


# --------------------------------------------------------------------------- errors


def client_error(fn, *args, **kwargs):
    """Calls a boto3 method expecting a ClientError; returns (code, http status, message)."""
    import botocore.exceptions

    with pytest.raises(botocore.exceptions.ClientError) as exc:
        fn(*args, **kwargs)
    err = exc.value.response["Error"]
    status = exc.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return err["Code"], status, err.get("Message", "")


def expect_code(code, fn, *args, **kwargs):
    got, status, msg = client_error(fn, *args, **kwargs)
    assert got == code, f"expected {code}, got {got} ({status}): {msg}"
    return status, msg


def aws_error(strato, *args, creds=None):
    """Runs the aws CLI expecting failure; returns the EC2 error code it printed."""
    out = strato.aws(*args, creds=creds, check=False)
    assert out.returncode != 0, f"aws {' '.join(args)} unexpectedly succeeded: {out.stdout}"
    m = re.search(r"An error occurred \(([^)]+)\)", out.stderr)
    assert m, f"no error code in aws output: {out.stderr}"
    return m.group(1)


# --------------------------------------------------------------------------- raw HTTP


class RawResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body
        self.text = body.decode("utf-8", errors="replace")

    def xml(self):
        return ET.fromstring(self.body)

    @property
    def error_code(self):
        m = re.search(r"<Code>([^<]*)</Code>", self.text)
        return m.group(1) if m else None

    @property
    def body_request_id(self):
        m = re.search(r"<(?:RequestID|requestId|RequestId)>([^<]*)</", self.text)
        return m.group(1) if m else None

    def assert_ec2_error(self, code=None, status=None):
        """Checks EC2's error envelope: <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/>."""
        # EC2 answers its errors with 4xx, except throttling (503), which a test names.
        assert 400 <= self.status < 500 or self.status == status == 503, \
            f"expected a 4xx, got {self.status}: {self.text[:500]}"
        if status is not None:
            assert self.status == status, f"expected HTTP {status}, got {self.status}: {self.text[:500]}"
        try:
            root = self.xml()
        except ET.ParseError:
            raise AssertionError(
                f"error body is not XML (HTTP {self.status}, content-type "
                f"{self.headers.get('content-type')!r}): {self.text[:300]!r}") from None
        assert root.tag == "Response", self.text[:500]
        err = root.find("./Errors/Error")
        assert err is not None, self.text[:500]
        got = err.findtext("Code")
        assert got, self.text[:500]
        assert err.findtext("Message") is not None
        rid = root.findtext("RequestID")
        assert rid, f"no RequestID in {self.text[:500]}"
        assert self.headers.get("x-amzn-requestid") == rid
        if code is not None:
            assert got == code, f"expected {code}, got {got}: {self.text[:500]}"
        return got

    def __repr__(self):
        return f"<RawResponse {self.status} {self.text[:300]!r}>"


def http_send(strato, method, path, body=b"", headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", strato.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return RawResponse(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


def encode(params):
    if isinstance(params, (bytes, str)):
        return params if isinstance(params, bytes) else params.encode()
    return urllib.parse.urlencode(params).encode()


def with_version(params):
    p = dict(params)
    p.setdefault("Version", EC2_VERSION)
    return p


def signed(strato, params=None, body=None, method="POST", creds=None, region=REGION, service="ec2",
           query="", key_id=None, secret=None, shift=None, extra_headers=None, tamper=None):
    """Sends a request signed with botocore's SigV4Auth.

    `params` become the form body (POST) or query string (GET); `body` gives raw bytes.
    `shift` (a timedelta) moves the signing clock; `tamper(headers, body)` may alter the
    request after signing.
    """
    creds = creds or strato.creds
    key_id = key_id or creds["AWS_ACCESS_KEY_ID"]
    secret = secret or creds["AWS_SECRET_ACCESS_KEY"]
    if params is not None and body is None and method != "GET":
        body = encode(params)
    if params is not None and method == "GET":
        query = urllib.parse.urlencode(params)
    url = f"{strato.endpoint}/" + (f"?{query}" if query else "")
    headers = {}
    if body:
        headers["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8"
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body or b"", headers=headers)
    cred = botocore.credentials.Credentials(key_id, secret)
    with shifted_clock(shift):
        botocore.auth.SigV4Auth(cred, service, region).add_auth(req)
    prepared = req.prepare()
    hdrs = dict(prepared.headers.items())
    data = prepared.body or b""
    if isinstance(data, str):
        data = data.encode()
    if tamper:
        hdrs, data = tamper(hdrs, data)
    path = "/" + (f"?{query}" if query else "")
    return http_send(strato, method, path, body=data, headers=hdrs)


def presigned_url(strato, params, expires=60, creds=None, shift=None, region=REGION):
    creds = creds or strato.creds
    url = f"{strato.endpoint}/?{urllib.parse.urlencode(params)}"
    req = botocore.awsrequest.AWSRequest(method="GET", url=url)
    cred = botocore.credentials.Credentials(creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])
    with shifted_clock(shift):
        botocore.auth.SigV4QueryAuth(cred, "ec2", region, expires=expires).add_auth(req)
    return req.prepare().url


def get_url(strato, url):
    parsed = urllib.parse.urlsplit(url)
    return http_send(strato, "GET", parsed.path + ("?" + parsed.query if parsed.query else ""))


class shifted_clock:
    """Moves botocore's signing clock by a timedelta while active."""

    def __init__(self, shift):
        self.shift = shift

    def __enter__(self):
        if self.shift:
            self.orig = botocore.auth.get_current_datetime
            orig, shift = self.orig, self.shift
            botocore.auth.get_current_datetime = lambda *a, **k: orig(*a, **k) + shift
        return self

    def __exit__(self, *exc):
        if self.shift:
            botocore.auth.get_current_datetime = self.orig
        return False


def healthy(strato):
    r = http_send(strato, "GET", "/healthz")
    return r.status == 200 and r.text.strip() == "ok"


def minutes(n):
    return datetime.timedelta(minutes=n)
