"""CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair, checked against openssl
and ssh-keygen."""

import base64
import hashlib
import os
import re
import subprocess
import uuid

import pytest

from conftest import DEFAULT_IMAGE
from helpers import aws_error, client_error, expect_code, instance, launch

COLON_HEX_SHA1 = re.compile(r"^([0-9a-f]{2}:){19}[0-9a-f]{2}$")
COLON_HEX_MD5 = re.compile(r"^([0-9a-f]{2}:){15}[0-9a-f]{2}$")
KEY_ID = re.compile(r"^key-[0-9a-f]{17}$")


def sh(cmd, input=None, check=True):
    out = subprocess.run(cmd, shell=True, capture_output=True, input=input, timeout=30)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} failed: {out.stderr.decode(errors='replace')}")
    return out.stdout.decode(errors="replace").strip()


def digest_of(openssl_output):
    # "MD5(stdin)= aa:bb:..." or "(stdin)= aa:bb:..." depending on the openssl version.
    return openssl_output.split("= ")[-1].strip()


def write_private(tmp_path, name, material):
    path = tmp_path / name
    path.write_text(material)
    os.chmod(path, 0o600)
    return path


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ssh_keygen(tmp_path, kind, bits=None):
    path = tmp_path / f"gen-{kind}-{uuid.uuid4().hex[:6]}"
    sh(f"ssh-keygen -q -t {kind} {'-b ' + str(bits) if bits else ''} -N '' -C test@strato -f {path}")
    return path, (tmp_path / f"{path.name}.pub")


def md5_spki_of_ssh_pub(pub_path):
    return digest_of(sh(f"ssh-keygen -e -m PKCS8 -f {pub_path} | openssl pkey -pubin -outform DER | openssl md5 -c"))


def ssh_sha256(pub_path):
    line = sh(f"ssh-keygen -l -E sha256 -f {pub_path}")
    return line.split()[1].removeprefix("SHA256:")


# --------------------------------------------------------------------------- create


def test_create_rsa_pem_key_is_a_real_private_key(ec2, tmp_path):
    name = unique("rsa")
    k = ec2.create_key_pair(KeyName=name)
    assert k["KeyName"] == name
    assert KEY_ID.match(k["KeyPairId"]), k["KeyPairId"]
    material = k["KeyMaterial"]
    assert material.startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert material.rstrip().endswith("-----END RSA PRIVATE KEY-----")
    path = write_private(tmp_path, "rsa.pem", material)
    assert "RSA key ok" in sh(f"openssl rsa -in {path} -check -noout")
    assert "2048 bit" in sh(f"openssl rsa -in {path} -text -noout | head -1")
    # EC2's fingerprint of a key it created: SHA-1 of the PKCS#8 DER, colon hex (59 chars).
    fp = k["KeyFingerprint"]
    assert len(fp) == 59 and COLON_HEX_SHA1.match(fp), fp
    assert fp == digest_of(sh(f"openssl pkcs8 -topk8 -nocrypt -in {path} -outform DER | openssl sha1 -c"))
    # The public key ssh derives from it is the one EC2 stored.
    pub = sh(f"ssh-keygen -y -f {path}")
    d = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
    assert d["PublicKey"].split()[:2] == pub.split()[:2]
    assert d["KeyFingerprint"] == fp
    assert d["KeyPairId"] == k["KeyPairId"]
    assert d["KeyType"] == "rsa"
    assert d["CreateTime"]


def test_create_ed25519_key(ec2, tmp_path):
    name = unique("ed")
    k = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    material = k["KeyMaterial"]
    assert material.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    path = write_private(tmp_path, "ed", material)
    pub = sh(f"ssh-keygen -y -f {path}")
    assert pub.startswith("ssh-ed25519 ")
    (tmp_path / "ed.pub").write_text(pub + "\n")
    fp = k["KeyFingerprint"]
    assert len(fp) == 44 and fp.endswith("="), fp
    assert fp == ssh_sha256(tmp_path / "ed.pub") + "="
    blob = base64.b64decode(pub.split()[1])
    assert fp == base64.b64encode(hashlib.sha256(blob).digest()).decode()
    d = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
    assert d["KeyType"] == "ed25519"
    assert d["PublicKey"].split()[:2] == pub.split()[:2]


@pytest.mark.parametrize("key_type,algo", [("rsa", "ssh-rsa"), ("ed25519", "ssh-ed25519")])
def test_create_ppk(ec2, key_type, algo):
    name = unique(f"ppk-{key_type}")
    k = ec2.create_key_pair(KeyName=name, KeyType=key_type, KeyFormat="ppk")
    lines = k["KeyMaterial"].splitlines()
    assert lines[0] == f"PuTTY-User-Key-File-3: {algo}"
    assert "Encryption: none" in lines
    assert any(l.startswith("Private-MAC: ") for l in lines)
    if key_type == "rsa":
        assert COLON_HEX_SHA1.match(k["KeyFingerprint"])
    else:
        assert len(k["KeyFingerprint"]) == 44 and k["KeyFingerprint"].endswith("=")


def test_create_via_cli(strato, ec2, tmp_path):
    name = unique("cli")
    k = strato.aws("ec2", "create-key-pair", "--key-name", name, "--key-type", "ed25519")
    assert k["KeyName"] == name and k["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    path = write_private(tmp_path, "cli-ed", k["KeyMaterial"])
    assert sh(f"ssh-keygen -y -f {path}").startswith("ssh-ed25519 ")
    assert aws_error(strato, "ec2", "create-key-pair", "--key-name", name) == "InvalidKeyPair.Duplicate"
    d = strato.aws("ec2", "describe-key-pairs", "--key-names", name)
    assert [x["KeyFingerprint"] for x in d["KeyPairs"]] == [k["KeyFingerprint"]]


def test_create_errors(strato, ec2):
    name = unique("dup")
    ec2.create_key_pair(KeyName=name)
    code, status, msg = client_error(ec2.create_key_pair, KeyName=name)
    assert (code, status) == ("InvalidKeyPair.Duplicate", 400)
    assert name in msg
    expect_code("InvalidParameterValue", ec2.create_key_pair, KeyName=unique("t"), KeyType="dsa")
    expect_code("InvalidParameterValue", ec2.create_key_pair, KeyName=unique("t"), KeyType="RSA")
    expect_code("InvalidParameterValue", ec2.create_key_pair, KeyName=unique("t"), KeyFormat="der")
    expect_code("InvalidParameterValue", ec2.create_key_pair, KeyName="k" * 256)
    expect_code("InvalidParameterValue", ec2.create_key_pair, KeyName="ключ")
    expect_code("MissingParameter", ec2.create_key_pair, KeyName="")
    expect_code("InvalidParameterValue", ec2.create_key_pair, KeyName=unique("t"),
                TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}])
    expect_code("InvalidParameterValue", ec2.create_key_pair, KeyName=unique("t"),
                TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "aws:x", "Value": "b"}]}])
    # None of the failures created anything.
    names = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert "k" * 256 not in names and "ключ" not in names
    assert not [n for n in names if n.startswith("t-")]
    # 255 characters is fine.
    long = "k" * 255
    assert ec2.create_key_pair(KeyName=long)["KeyName"] == long


def test_create_dry_run(ec2):
    name = unique("dry")
    code, status, _ = client_error(ec2.create_key_pair, KeyName=name, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=[name])
    # A dry run of a duplicate reports the duplicate.
    ec2.create_key_pair(KeyName=name)
    expect_code("InvalidKeyPair.Duplicate", ec2.create_key_pair, KeyName=name, DryRun=True)


def test_create_with_tags(ec2):
    name = unique("tagged")
    k = ec2.create_key_pair(KeyName=name, TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "Purpose", "Value": "ci"}, {"Key": "Owner", "Value": "me"}]}])
    assert {t["Key"]: t["Value"] for t in k["Tags"]} == {"Purpose": "ci", "Owner": "me"}
    d = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"][0]
    assert {t["Key"]: t["Value"] for t in d["Tags"]} == {"Purpose": "ci", "Owner": "me"}
    t = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [k["KeyPairId"]]}])["Tags"]
    assert {(x["Key"], x["Value"], x["ResourceType"]) for x in t} == {("Purpose", "ci", "key-pair"),
                                                                      ("Owner", "me", "key-pair")}


# --------------------------------------------------------------------------- import


def test_import_rsa_from_ssh_keygen_cli(strato, ec2, tmp_path):
    _, pub = ssh_keygen(tmp_path, "rsa", 2048)
    name = unique("imp-rsa")
    r = strato.aws("ec2", "import-key-pair", "--key-name", name, "--public-key-material", f"fileb://{pub}")
    assert r["KeyName"] == name
    assert KEY_ID.match(r["KeyPairId"])
    fp = r["KeyFingerprint"]
    # Imported RSA: MD5 of the SubjectPublicKeyInfo DER, colon hex (47 chars).
    assert len(fp) == 47 and COLON_HEX_MD5.match(fp), fp
    assert fp == md5_spki_of_ssh_pub(pub)
    d = strato.aws("ec2", "describe-key-pairs", "--key-names", name, "--include-public-key")["KeyPairs"][0]
    assert d["KeyFingerprint"] == fp
    assert d["KeyType"] == "rsa"
    assert d["PublicKey"].split()[:2] == pub.read_text().split()[:2]


def test_import_rsa_4096_boto3(ec2, tmp_path):
    _, pub = ssh_keygen(tmp_path, "rsa", 4096)
    r = ec2.import_key_pair(KeyName=unique("imp4096"), PublicKeyMaterial=pub.read_bytes())
    assert r["KeyFingerprint"] == md5_spki_of_ssh_pub(pub)


def test_import_other_rsa_encodings_give_the_same_fingerprint(ec2, tmp_path):
    priv, pub = ssh_keygen(tmp_path, "rsa", 2048)
    expected = md5_spki_of_ssh_pub(pub)
    pem_spki = sh(f"ssh-keygen -e -m PKCS8 -f {pub}").encode()
    pem_pkcs1 = sh(f"ssh-keygen -e -m PEM -f {pub}").encode()
    rfc4716 = sh(f"ssh-keygen -e -m RFC4716 -f {pub}").encode()
    assert pem_spki.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert pem_pkcs1.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert rfc4716.startswith(b"---- BEGIN SSH2 PUBLIC KEY ----")
    for material in (pem_spki, pem_pkcs1, rfc4716):
        r = ec2.import_key_pair(KeyName=unique("enc"), PublicKeyMaterial=material)
        assert r["KeyFingerprint"] == expected, material[:40]


def test_import_ed25519_from_ssh_keygen(ec2, tmp_path):
    _, pub = ssh_keygen(tmp_path, "ed25519")
    name = unique("imp-ed")
    r = ec2.import_key_pair(KeyName=name, PublicKeyMaterial=pub.read_bytes())
    assert r["KeyFingerprint"] == ssh_sha256(pub) + "="
    assert len(r["KeyFingerprint"]) == 44
    d = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
    assert d["KeyType"] == "ed25519"
    assert d["PublicKey"].split()[:2] == pub.read_text().split()[:2]


def test_import_public_key_of_a_created_pair(ec2, tmp_path):
    """The public key of an EC2-created pair, re-imported, carries the imported-style MD5."""
    created = ec2.create_key_pair(KeyName=unique("orig"))
    path = write_private(tmp_path, "orig.pem", created["KeyMaterial"])
    pub = tmp_path / "orig.pub"
    pub.write_text(sh(f"ssh-keygen -y -f {path}") + "\n")
    r = ec2.import_key_pair(KeyName=unique("again"), PublicKeyMaterial=pub.read_bytes())
    assert r["KeyFingerprint"] == md5_spki_of_ssh_pub(pub)
    assert r["KeyFingerprint"] == digest_of(sh(f"openssl rsa -in {path} -pubout -outform DER | openssl md5 -c"))
    assert r["KeyFingerprint"] != created["KeyFingerprint"]


def test_import_errors(ec2, tmp_path):
    priv, pub = ssh_keygen(tmp_path, "rsa", 2048)
    _, ecdsa_pub = ssh_keygen(tmp_path, "ecdsa")
    name = unique("imp-dup")
    ec2.import_key_pair(KeyName=name, PublicKeyMaterial=pub.read_bytes())
    expect_code("InvalidKeyPair.Duplicate", ec2.import_key_pair, KeyName=name, PublicKeyMaterial=pub.read_bytes())
    bad = [
        b"this is not a key",
        b"ssh-rsa !!!notbase64!!!",
        ecdsa_pub.read_bytes(),
        priv.read_bytes(),
        b"ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x03abc"),
        bytes(range(256)),
    ]
    for material in bad:
        expect_code("InvalidKey.Format", ec2.import_key_pair, KeyName=unique("bad"), PublicKeyMaterial=material)
    names = {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]}
    assert not [n for n in names if n.startswith("bad-")]
    expect_code("MissingParameter", ec2.import_key_pair, KeyName=unique("empty"), PublicKeyMaterial=b"")


def test_import_dry_run(ec2, tmp_path):
    _, pub = ssh_keygen(tmp_path, "ed25519")
    name = unique("imp-dry")
    code, status, _ = client_error(ec2.import_key_pair, KeyName=name, PublicKeyMaterial=pub.read_bytes(), DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=[name])


def test_same_public_key_under_two_names(ec2, tmp_path):
    _, pub = ssh_keygen(tmp_path, "ed25519")
    a = ec2.import_key_pair(KeyName=unique("twin"), PublicKeyMaterial=pub.read_bytes())
    b = ec2.import_key_pair(KeyName=unique("twin"), PublicKeyMaterial=pub.read_bytes())
    assert a["KeyFingerprint"] == b["KeyFingerprint"]
    assert a["KeyPairId"] != b["KeyPairId"]


# --------------------------------------------------------------------------- describe


def test_describe_filters_and_lookup(ec2):
    tag = unique("flt")
    rsa = ec2.create_key_pair(KeyName=f"{tag}-rsa", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "Group", "Value": tag}]}])
    ed = ec2.create_key_pair(KeyName=f"{tag}-ed", KeyType="ed25519", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "Group", "Value": tag}, {"Key": "Special", "Value": "yes"}]}])

    def names(**kw):
        return {k["KeyName"] for k in ec2.describe_key_pairs(**kw)["KeyPairs"]}

    assert names(KeyNames=[f"{tag}-rsa", f"{tag}-ed"]) == {f"{tag}-rsa", f"{tag}-ed"}
    assert names(KeyPairIds=[ed["KeyPairId"]]) == {f"{tag}-ed"}
    assert names(Filters=[{"Name": "key-name", "Values": [f"{tag}-*"]}]) == {f"{tag}-rsa", f"{tag}-ed"}
    assert names(Filters=[{"Name": "key-name", "Values": [f"{tag}-?d"]}]) == {f"{tag}-ed"}
    assert names(Filters=[{"Name": "tag:Group", "Values": [tag]},
                          {"Name": "key-type", "Values": ["ed25519"]}]) == {f"{tag}-ed"}
    assert names(Filters=[{"Name": "tag:Group", "Values": [tag]},
                          {"Name": "key-type", "Values": ["rsa", "ed25519"]}]) == {f"{tag}-rsa", f"{tag}-ed"}
    assert names(Filters=[{"Name": "fingerprint", "Values": [rsa["KeyFingerprint"]]}]) == {f"{tag}-rsa"}
    assert names(Filters=[{"Name": "key-pair-id", "Values": [rsa["KeyPairId"]]}]) == {f"{tag}-rsa"}
    assert names(Filters=[{"Name": "tag-key", "Values": ["Special"]}, {"Name": "tag:Group", "Values": [tag]}]) \
        == {f"{tag}-ed"}
    assert names(Filters=[{"Name": "tag:Group", "Values": [tag.upper()]}]) == set()
    # Public keys only on request.
    plain = ec2.describe_key_pairs(KeyNames=[f"{tag}-rsa"])["KeyPairs"][0]
    assert "PublicKey" not in plain
    full = ec2.describe_key_pairs(KeyNames=[f"{tag}-rsa"], IncludePublicKey=True)["KeyPairs"][0]
    assert full["PublicKey"].startswith("ssh-rsa ")


def test_describe_errors(strato, ec2):
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=["no-such-key-pair"])
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyPairIds=["key-0123456789abcdef0"])
    code, status, _ = client_error(ec2.describe_key_pairs, KeyPairIds=["key-zz"])
    assert status == 400 and code.startswith("InvalidKeyPair"), code
    expect_code("InvalidParameterValue", ec2.describe_key_pairs, Filters=[{"Name": "color", "Values": ["red"]}])
    assert aws_error(strato, "ec2", "describe-key-pairs", "--key-names", "nope-nope") == "InvalidKeyPair.NotFound"


# --------------------------------------------------------------------------- delete


def test_delete_by_name_and_id(strato, ec2):
    a = ec2.create_key_pair(KeyName=unique("del-a"), TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "x", "Value": "y"}]}])
    b = ec2.create_key_pair(KeyName=unique("del-b"))
    r = ec2.delete_key_pair(KeyName=a["KeyName"])
    assert r["Return"] is True
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=[a["KeyName"]])
    # Its tags went with it.
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [a["KeyPairId"]]}])["Tags"] == []
    ec2.delete_key_pair(KeyPairId=b["KeyPairId"])
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyPairIds=[b["KeyPairId"]])
    # Deleting a name that does not exist succeeds, as on EC2; an unknown id does not.
    assert ec2.delete_key_pair(KeyName="never-existed-key")["Return"] is True
    expect_code("InvalidKeyPair.NotFound", ec2.delete_key_pair, KeyPairId="key-0123456789abcdef0")
    # The name is free again; a new pair gets a new id.
    again = ec2.create_key_pair(KeyName=a["KeyName"])
    assert again["KeyPairId"] != a["KeyPairId"]
    assert strato.aws("ec2", "delete-key-pair", "--key-name", a["KeyName"]).get("Return") is True
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=[a["KeyName"]])


def test_delete_dry_run_and_missing_parameter(strato, ec2):
    k = ec2.create_key_pair(KeyName=unique("del-dry"))
    code, status, _ = client_error(ec2.delete_key_pair, KeyName=k["KeyName"], DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    code, status, _ = client_error(ec2.delete_key_pair, KeyPairId=k["KeyPairId"], DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert ec2.describe_key_pairs(KeyNames=[k["KeyName"]])["KeyPairs"][0]["KeyPairId"] == k["KeyPairId"]
    expect_code("MissingParameter", ec2.delete_key_pair)


def test_instance_keeps_key_name_after_key_deletion(ec2):
    name = unique("inst-key")
    ec2.create_key_pair(KeyName=name)
    (iid,) = launch(ec2, KeyName=name)
    r = ec2.describe_instances(Filters=[{"Name": "key-name", "Values": [name]}])
    assert [i["InstanceId"] for res in r["Reservations"] for i in res["Instances"]] == [iid]
    ec2.delete_key_pair(KeyName=name)
    assert instance(ec2, iid)["KeyName"] == name
    expect_code("InvalidKeyPair.NotFound", ec2.run_instances, ImageId=DEFAULT_IMAGE, MinCount=1, MaxCount=1,
                KeyName=name)


def test_concurrent_creates_of_one_name(strato, ec2):
    """Racing CreateKeyPair calls for one name: exactly one wins, the rest are told
    InvalidKeyPair.Duplicate (never an internal error)."""
    import concurrent.futures

    import botocore.exceptions

    name = unique("race")
    clients = [strato.client() for _ in range(8)]

    def create(c):
        try:
            return c.create_key_pair(KeyName=name)["KeyPairId"]
        except botocore.exceptions.ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, clients))
    wins = [r for r in results if r.startswith("key-")]
    assert len(wins) == 1, results
    assert sorted(set(results) - set(wins)) == ["InvalidKeyPair.Duplicate"], results
    assert ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"][0]["KeyPairId"] == wins[0]


def test_key_name_with_punctuation(ec2):
    name = "deploy key (prod) #1 @ team/a+b=c"
    k = ec2.create_key_pair(KeyName=name)
    assert k["KeyName"] == name
    assert ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"][0]["KeyPairId"] == k["KeyPairId"]
    ec2.delete_key_pair(KeyName=name)
    expect_code("InvalidKeyPair.NotFound", ec2.describe_key_pairs, KeyNames=[name])
