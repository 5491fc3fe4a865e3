"""The management CLI: `strato accounts …`, `strato access-keys …`, `strato env`, run
beside a live server on the same data directory."""

import os
import re
import subprocess
import uuid

import pytest

from conftest import STRATO_BIN
from helpers import aws_error, expect_code, launch, wait_state

EXPORT_RE = re.compile(r"^export (\w+)=(.*)$", re.M)


def exports(text):
    return dict(EXPORT_RE.findall(text))


def sts_account(strato, creds):
    return strato.client(creds, service="sts").get_caller_identity()["Account"]


def fresh_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def fake_key_id():
    return "AKIA" + uuid.uuid4().hex[:16].upper()


def test_env_prints_root_credentials(strato):
    out = strato.cli("env")
    env = exports(out.stdout)
    assert env["AWS_ENDPOINT_URL"] == strato.endpoint
    assert env["AWS_ACCESS_KEY_ID"] == strato.creds["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"] == strato.creds["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert len(sts_account(strato, env)) == 12


def test_accounts_list_shows_root_and_created(strato):
    name = fresh_name("listed")
    created = strato.cli("accounts", "create", name).stdout
    m = re.search(r"^# account (\d{12}) \((.+)\)$", created, re.M)
    assert m and m.group(2) == name, created
    account_id = m.group(1)
    creds = exports(created)
    out = strato.cli("accounts", "list").stdout
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["ACCOUNT", "NAME"]
    rows = {l.split()[1]: l.split() for l in lines[1:] if l.strip()}
    assert "root" in rows
    assert rows[name][0] == account_id
    assert creds["AWS_ACCESS_KEY_ID"] in rows[name][2]
    assert strato.creds["AWS_ACCESS_KEY_ID"] in rows["root"][2]
    assert sts_account(strato, creds) == account_id


def test_accounts_create_with_given_key(strato):
    name = fresh_name("given")
    key_id, secret = fake_key_id(), "s3cr3t/" + uuid.uuid4().hex + "+XYZ"
    out = strato.cli("accounts", "create", name, "--access-key-id", key_id, "--secret-access-key", secret).stdout
    env = exports(out)
    assert env["AWS_ACCESS_KEY_ID"] == key_id
    assert env["AWS_SECRET_ACCESS_KEY"] == secret
    creds = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    ec2 = strato.client(creds)
    assert ec2.describe_instances()["Reservations"] == []
    (iid,) = launch(ec2)
    assert strato.aws("sts", "get-caller-identity", creds=creds)["Account"] == sts_account(strato, creds)
    d = strato.aws("ec2", "describe-instances", "--instance-ids", iid, creds=creds)
    assert d["Reservations"][0]["Instances"][0]["InstanceId"] == iid
    # The same key id cannot be given twice.
    again = strato.cli("accounts", "create", fresh_name("dupkey"), "--access-key-id", key_id,
                       "--secret-access-key", secret, check=False)
    assert again.returncode != 0


def test_accounts_create_rejects_bad_input(strato):
    name = fresh_name("twice")
    strato.cli("accounts", "create", name)
    assert strato.cli("accounts", "create", name, check=False).returncode != 0
    bad_key = strato.cli("accounts", "create", fresh_name("badkey"), "--access-key-id", "short",
                         "--secret-access-key", "x" * 40, check=False)
    assert bad_key.returncode != 0
    only_id = strato.cli("accounts", "create", fresh_name("half"), "--access-key-id", fake_key_id(), check=False)
    assert only_id.returncode != 0
    names = strato.cli("accounts", "list").stdout
    assert names.count(f" {name} ") == 1
    assert "badkey-" not in names and "half-" not in names


def test_env_for_account(strato):
    name = fresh_name("envacct")
    created = exports(strato.cli("accounts", "create", name).stdout)
    env = exports(strato.cli("env", "--account", name).stdout)
    assert env["AWS_ACCESS_KEY_ID"] == created["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"] == created["AWS_SECRET_ACCESS_KEY"]
    account_id = sts_account(strato, env)
    # By account id as well as by name.
    by_id = exports(strato.cli("env", "--account", account_id).stdout)
    assert by_id["AWS_ACCESS_KEY_ID"] == created["AWS_ACCESS_KEY_ID"]
    missing = strato.cli("env", "--account", "no-such-account", check=False)
    assert missing.returncode != 0
    assert "no-such-account" in missing.stderr


def test_access_keys_lifecycle(strato):
    name = fresh_name("keys")
    first = exports(strato.cli("accounts", "create", name).stdout)
    account_id = sts_account(strato, first)

    out = strato.cli("access-keys", "create", name).stdout
    second = dict(re.findall(r"^(AWS_\w+)=(.*)$", out, re.M))
    assert second["AWS_ACCESS_KEY_ID"] != first["AWS_ACCESS_KEY_ID"]
    assert sts_account(strato, second) == account_id

    given_id, given_secret = fake_key_id(), "given-" + uuid.uuid4().hex
    out = strato.cli("access-keys", "create", account_id, "--access-key-id", given_id,
                     "--secret-access-key", given_secret).stdout
    assert f"AWS_ACCESS_KEY_ID={given_id}" in out
    third = {"AWS_ACCESS_KEY_ID": given_id, "AWS_SECRET_ACCESS_KEY": given_secret}
    assert sts_account(strato, third) == account_id

    listed = strato.cli("access-keys", "list", name).stdout.split()
    assert set(listed) == {first["AWS_ACCESS_KEY_ID"], second["AWS_ACCESS_KEY_ID"], given_id}

    # Resources are the account's, whichever key is used.
    ec2_first = strato.client(first)
    (iid,) = launch(ec2_first)
    assert strato.client(third).describe_instances(InstanceIds=[iid])["Reservations"]

    out = strato.cli("access-keys", "delete", second["AWS_ACCESS_KEY_ID"]).stdout
    assert second["AWS_ACCESS_KEY_ID"] in out
    expect_code("AuthFailure", strato.client(second).describe_instances)
    expect_code("AuthFailure", strato.client(second, service="sts").get_caller_identity)
    assert aws_error(strato, "ec2", "describe-instances", creds=second) == "AuthFailure"
    # The other keys keep working.
    assert strato.client(first).describe_instances(InstanceIds=[iid])["Reservations"]
    assert sts_account(strato, third) == account_id
    listed = strato.cli("access-keys", "list", name).stdout.split()
    assert set(listed) == {first["AWS_ACCESS_KEY_ID"], given_id}

    assert strato.cli("access-keys", "delete", second["AWS_ACCESS_KEY_ID"], check=False).returncode != 0
    assert strato.cli("access-keys", "list", "no-such-account", check=False).returncode != 0
    assert strato.cli("access-keys", "create", "no-such-account", check=False).returncode != 0


def test_accounts_delete(strato):
    name = fresh_name("doomed")
    creds = exports(strato.cli("accounts", "create", name).stdout)
    ec2 = strato.client(creds)
    (iid,) = launch(ec2, wait="running")
    refused = strato.cli("accounts", "delete", name, check=False)
    assert refused.returncode != 0
    assert sts_account(strato, creds)
    ec2.terminate_instances(InstanceIds=[iid])
    wait_state(ec2, [iid], "terminated")
    strato.cli("accounts", "delete", name)
    assert name not in strato.cli("accounts", "list").stdout
    expect_code("AuthFailure", strato.client(creds).describe_instances)
    assert strato.cli("accounts", "delete", "root", check=False).returncode != 0
    assert strato.cli("accounts", "delete", "no-such-account", check=False).returncode != 0


def test_data_dir_flag_after_subcommand_arguments(strato):
    """`--data-dir` given last, as one naturally types it (and as the original e2e
    harness did: `strato <args…> --data-dir DIR`), must work for every command."""
    env = {k: v for k, v in os.environ.items() if k != "STRATO_DATA_DIR"}

    def run(*args):
        return subprocess.run([STRATO_BIN, *args, "--data-dir", strato.data_dir],
                              capture_output=True, text=True, timeout=60, env=env)

    results = {
        "env": run("env"),
        "env --account root": run("env", "--account", "root"),
        "accounts list": run("accounts", "list"),
        "accounts create": run("accounts", "create", fresh_name("flag")),
        "access-keys list": run("access-keys", "list", "root"),
    }
    failed = {k: r.stderr.strip().splitlines()[0] for k, r in results.items() if r.returncode != 0}
    assert not failed, failed
