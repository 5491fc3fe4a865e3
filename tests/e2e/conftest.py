"""End-to-end harness: starts a real `strato up --hypervisor sim` per test module and
hands tests boto3 clients and an aws CLI runner bound to it.

The binary is taken from $STRATO_BIN (default: target/debug/strato). Every server gets
its own temporary data directory and a free loopback port, and is stopped (SIGTERM,
then SIGKILL) even when a test fails.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import shutil

import boto3
import botocore.config
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STRATO_BIN = os.environ.get("STRATO_BIN", os.path.join(ROOT, "target", "debug", "strato"))
DEFAULT_IMAGE = "ami-05a9d2c7e4b1f3801"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Strato:
    """One running `strato up` process with its data directory."""

    def __init__(self, data_dir=None, boot_ms=300, stop_ms=300, extra_args=(), hypervisor="sim"):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="strato-e2e-")
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.boot_ms = boot_ms
        self.stop_ms = stop_ms
        self.extra_args = list(extra_args)
        self.hypervisor = hypervisor
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "strato.log")

    def start(self, timeout=30):
        env = dict(os.environ)
        env.setdefault("STRATO_LOG", "info")
        # Tests poll and loop far faster than EC2's request budget allows (their
        # clients do not retry): throttle, but 50 times as generously. The throttling
        # tests pass their own --throttle-scale, which wins over the environment.
        env.setdefault("STRATO_THROTTLE_SCALE", "50")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                STRATO_BIN, "up",
                "--data-dir", self.data_dir,
                "--listen", f"127.0.0.1:{self.port}",
                "--hypervisor", self.hypervisor,
                "--sim-boot-ms", str(self.boot_ms),
                "--sim-stop-ms", str(self.stop_ms),
                *self.extra_args,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strato exited early:\n{self.read_log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"strato did not listen:\n{self.read_log()}")
        self.creds = self.env_for()
        return self

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-2000000:]
        except OSError:
            return ""

    def cli(self, *args, check=True):
        """Runs the strato binary's management commands on this data directory.

        The directory is passed as STRATO_DATA_DIR: the binary accepts `--data-dir` only
        directly after `accounts` / `access-keys`, not after their subcommands'
        arguments (test_cli.py checks the trailing flag separately)."""
        env = dict(os.environ, STRATO_DATA_DIR=self.data_dir)
        out = subprocess.run(
            [STRATO_BIN, *args],
            capture_output=True, text=True, timeout=60, env=env,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"strato {args} failed: {out.stderr}")
        return out

    def env_for(self, account=None):
        args = ["env"] + (["--account", account] if account else [])
        text = self.cli(*args).stdout
        env = dict(re.findall(r"^export (\w+)=(.*)$", text, re.M))
        return env

    def create_account(self, name):
        text = self.cli("accounts", "create", name).stdout
        return dict(re.findall(r"^export (\w+)=(.*)$", text, re.M))

    def client(self, creds=None, service="ec2", retries=0, validate=True, region=REGION):
        """A boto3 client signing for `region`; `validate=False` turns off botocore's own
        parameter checks so out-of-range values reach the server and its answer can be tested."""
        creds = creds or self.creds
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(
                retries={"max_attempts": retries + 1, "mode": "standard"},
                parameter_validation=validate,
            ),
        )

    def aws(self, *args, creds=None, check=True):
        """Runs the real aws CLI against this endpoint; returns parsed JSON (or None)."""
        creds = creds or self.creds
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(creds)
        env["AWS_ENDPOINT_URL"] = self.endpoint
        env["AWS_DEFAULT_REGION"] = REGION
        env["AWS_REGION"] = REGION
        env["AWS_MAX_ATTEMPTS"] = "1"
        env["AWS_CONFIG_FILE"] = "/dev/null"
        env["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
        out = subprocess.run(["aws", *args, "--output", "json"], capture_output=True, text=True, env=env, timeout=120)
        if check and out.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({out.returncode}): {out.stderr}")
        if not check:
            return out
        return json.loads(out.stdout) if out.stdout.strip() else None

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()
            self.log = None
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)



def start_crashing(data_dir, point):
    """A `strato up` on `data_dir` that aborts at crash point `point`
    (`STRATO_CRASH_AT`, see common/src/crash.rs)."""
    os.environ["STRATO_CRASH_AT"] = point
    try:
        return Strato(data_dir=data_dir).start()
    finally:
        del os.environ["STRATO_CRASH_AT"]


def await_crash(s, timeout=10):
    """Waits for a `start_crashing` server to abort at its point, then cleans it up."""
    deadline = time.time() + timeout
    while s.proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert s.proc.returncode == -signal.SIGABRT, s.read_log()
    s.stop()


@pytest.fixture(scope="module")
def strato():
    s = Strato().start()
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def ec2(strato):
    return strato.client()


def wait_for_state(ec2, ids, state, timeout=20):
    """Polls DescribeInstances until every instance is in `state`."""
    ids = list(ids)
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        r = ec2.describe_instances(InstanceIds=ids)
        states = {i["InstanceId"]: i["State"]["Name"] for res in r["Reservations"] for i in res["Instances"]}
        last = states
        if all(states.get(i) == state for i in ids):
            return r
        time.sleep(0.1)
    raise AssertionError(f"instances did not reach {state}: {last}")


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]
