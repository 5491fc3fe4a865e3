#!/usr/bin/env python3
"""Benchmarks Strato's VPC dataplane with real VMs (`strato up --hypervisor tcg`).

Run it through scripts/bench-net.sh. In one run, against one `strato up` whose VPC
uplinks lead into a namespace this script creates (the "internet", 203.0.113.1):

  1. Rule enforcement: AuthorizeSecurityGroupIngress returns -> the first new TCP
     connection to the instance's public address on port 22 is accepted. A prober
     thread inside the internet namespace starts a fresh non-blocking connect every
     2 ms; only attempts started after the call returned count. Then the rule is
     revoked and the port checked closed again. N rounds; p50/p90/p99.
  2. Launch: RunInstances -> `strato-minimal: init running` on the console (the
     previous issue's measure), -> the SSH server's banner from the internet, and ->
     a full `ssh -i key ec2-user@<public ip> true` login. M launches, one at a time;
     medians, and SSH-minus-init (what networking adds).

Everything it starts (strato, VMs, namespaces, dnsmasq) is removed at the end, also on
failure or Ctrl-C. Exit code 0 when the 2-second enforcement goal holds at p99, 2
when it does not, 1 when the run failed.
"""

import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import boto3
import botocore.config

DEFAULT_IMAGE = "ami-05a9d2c7e4b1f3801"
REGION = "us-east-1"
INET_ADDR = "203.0.113.1"
INIT = b"strato-minimal: init running"
CLONE_NEWNET = 0x40000000
mono = time.monotonic


def log(*a):
    print(*a, flush=True)


def pct(values, p):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))]


def sh(*cmd, check=True, timeout=60):
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {out.stderr}")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class InNamespace:
    """Runs socket work on a thread that has entered a network namespace."""

    def __init__(self, ns):
        self.ns = ns

    def call(self, fn, *args):
        result = {}

        def body():
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            try:
                result["value"] = fn(*args)
            except BaseException as e:  # handed to the caller
                result["error"] = e

        t = threading.Thread(target=body)
        t.start()
        t.join()
        if "error" in result:
            raise result["error"]
        return result["value"]


def first_accept(addr, port, not_before, timeout, every=0.002):
    """Starts a new connect every `every` s until one completes; returns the monotonic
    time it completed, counting only attempts started at or after `not_before`."""
    pending = []
    deadline = mono() + timeout
    try:
        while mono() < deadline:
            s = socket.socket()
            s.setblocking(False)
            started = mono()
            try:
                s.connect((addr, port))
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                time.sleep(every)
                continue
            pending.append((s, started))
            end = mono() + every
            while mono() < end:
                for sock, t in list(pending):
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err == 0:
                        try:
                            sock.getpeername()
                        except OSError:
                            continue
                        if t >= not_before:
                            return mono()
                    elif err:
                        pending.remove((sock, t))
                        sock.close()
                time.sleep(0.0002)
        return None
    finally:
        for sock, _ in pending:
            sock.close()


def port_open(addr, port, timeout=0.3):
    try:
        with socket.create_connection((addr, port), timeout=timeout):
            return True
    except OSError:
        return False


def banner(addr, timeout=1.0):
    try:
        with socket.create_connection((addr, 22), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-2.0")
    except OSError:
        return False


class Bench:
    def __init__(self, args):
        self.args = args
        self.inet = f"stbench-{os.getpid()}"
        self.data_dir = tempfile.mkdtemp(prefix="strato-netbench-")
        os.chmod(self.data_dir, 0o711)
        self.key_dir = tempfile.mkdtemp(prefix="strato-netbench-keys-")
        self.port = free_port()
        self.proc = None

    def start(self):
        sh("ip", "netns", "add", self.inet)
        sh("ip", "-n", self.inet, "link", "set", "lo", "up")
        sh("ip", "-n", self.inet, "addr", "add", f"{INET_ADDR}/32", "dev", "lo")
        self.log = open(os.path.join(self.data_dir, "strato.log"), "ab")
        self.proc = subprocess.Popen(
            [self.args.strato_bin, "up", "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}",
             "--hypervisor", "tcg", "--images-dir", self.args.images_dir, "--uplink-netns", self.inet,
             "--stop-timeout-secs", "5"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = mono() + 30
        while not port_open("127.0.0.1", self.port, 0.2):
            if self.proc.poll() is not None or mono() > deadline:
                raise RuntimeError("strato did not start")
            time.sleep(0.05)
        text = subprocess.run([self.args.strato_bin, "env"], capture_output=True, text=True, check=True,
                              env=dict(os.environ, STRATO_DATA_DIR=self.data_dir)).stdout
        env = dict(re.findall(r"^export (\w+)=(.*)$", text, re.M))
        self.ec2 = boto3.client(
            "ec2", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(retries={"max_attempts": 1}))
        self.ns = InNamespace(self.inet)

    def cleanup(self):
        try:
            ids = [i["InstanceId"] for r in self.ec2.describe_instances()["Reservations"]
                   for i in r["Instances"] if i["State"]["Name"] != "terminated"]
            if ids:
                self.ec2.terminate_instances(InstanceIds=ids)
                deadline = mono() + 60
                while mono() < deadline and any(
                        i["State"]["Name"] != "terminated"
                        for r in self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
                        for i in r["Instances"]):
                    time.sleep(0.5)
        except Exception:
            pass
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        out = sh("pgrep", "-f", self.data_dir, check=False).stdout.split()
        for pid in out:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        try:
            import json
            with open(os.path.join(self.data_dir, "net", "owned.json")) as f:
                for ns in json.load(f):
                    sh("ip", "netns", "del", ns, check=False)
        except OSError:
            pass
        sh("ip", "netns", "del", self.inet, check=False)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.rmtree(self.key_dir, ignore_errors=True)

    def setup_network(self):
        ec2 = self.ec2
        k = ec2.create_key_pair(KeyName="bench")
        self.key = os.path.join(self.key_dir, "bench.pem")
        with open(self.key, "w") as f:
            f.write(k["KeyMaterial"])
        os.chmod(self.key, 0o600)
        self.vpc = [v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]][0]["VpcId"]
        self.open_sg = ec2.create_security_group(GroupName="ssh", Description="ssh", VpcId=self.vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=self.open_sg, IpPermissions=[self.ssh_rule()])
        self.closed_sg = ec2.create_security_group(GroupName="probe", Description="probe", VpcId=self.vpc)["GroupId"]

    @staticmethod
    def ssh_rule():
        return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}

    def run_one(self, sg):
        t0 = mono()
        iid = self.ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                                     KeyName="bench", SecurityGroupIds=[sg])["Instances"][0]["InstanceId"]
        return iid, t0

    def public_ip(self, iid):
        i = self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        return i.get("PublicIpAddress")

    def ssh_ok(self, addr):
        out = subprocess.run(
            ["ip", "netns", "exec", self.inet, "ssh", "-i", self.key, "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
             "-o", "LogLevel=ERROR", f"ec2-user@{addr}", "true"], capture_output=True, timeout=30)
        return out.returncode == 0

    def bench_launch(self):
        rows = []
        for n in range(self.args.launches):
            iid, t0 = self.run_one(self.open_sg)
            console = os.path.join(self.data_dir, "vms", iid, "console.log")
            t_init = t_banner = t_ssh = None
            addr = None
            deadline = t0 + self.args.launch_timeout
            while mono() < deadline and t_ssh is None:
                if t_init is None:
                    try:
                        with open(console, "rb") as f:
                            if INIT in f.read():
                                t_init = mono()
                    except OSError:
                        pass
                if addr is None:
                    addr = self.public_ip(iid)
                elif t_init is None:
                    pass  # the guest is not up yet: nothing to probe
                elif t_banner is None:
                    if self.ns.call(banner, addr, 0.5):
                        t_banner = mono()
                elif self.ssh_ok(addr):
                    t_ssh = mono()
                time.sleep(0.02)
            if t_ssh is None:
                try:
                    with open(console, "rb") as f:
                        tail = f.read()[-1500:].decode(errors="replace")
                except OSError as e:
                    tail = str(e)
                net_dir = os.path.join(self.data_dir, "net")
                for root, _dirs, files in os.walk(net_dir):
                    for name in files:
                        if name in ("hosts", "dnsmasq.log", "dnsmasq.conf"):
                            with open(os.path.join(root, name), errors="replace") as f:
                                tail += f"\n--- {os.path.join(root, name)}\n" + f.read()[-1500:]
                raise RuntimeError(f"{iid}: no SSH within {self.args.launch_timeout} s (init seen: {t_init is not None}, "
                                   f"banner seen: {t_banner is not None}, address {addr}); console:\n{tail}")
            rows.append((t_init - t0, t_banner - t0, t_ssh - t0))
            log(f"  launch {n + 1}: init {rows[-1][0]:.2f} s, ssh banner {rows[-1][1]:.2f} s, "
                f"ssh login {rows[-1][2]:.2f} s")
            self.ec2.terminate_instances(InstanceIds=[iid])
        return rows

    def bench_rules(self):
        iid, _ = self.run_one(self.closed_sg)
        deadline = mono() + 240
        addr = None
        while addr is None:
            addr = self.public_ip(iid)
            time.sleep(0.2)
        console = os.path.join(self.data_dir, "vms", iid, "console.log")
        while True:
            try:
                with open(console, "rb") as f:
                    if b"ssh ready" in f.read():
                        break
            except OSError:
                pass
            if mono() > deadline:
                raise RuntimeError("the probe instance's SSH server never started")
            time.sleep(0.2)
        lat = []
        for n in range(self.args.rounds):
            # Closed first: a connection attempt must not get through.
            if self.ns.call(port_open, addr, 22, 0.3):
                raise RuntimeError("port 22 open before the rule was added")
            self.ec2.authorize_security_group_ingress(GroupId=self.closed_sg, IpPermissions=[self.ssh_rule()])
            t_ret = mono()
            t_open = self.ns.call(first_accept, addr, 22, t_ret, 10.0)
            if t_open is None:
                raise RuntimeError("the rule was not enforced within 10 s")
            lat.append(t_open - t_ret)
            self.ec2.revoke_security_group_ingress(GroupId=self.closed_sg, IpPermissions=[self.ssh_rule()])
            end = mono() + 10
            while self.ns.call(port_open, addr, 22, 0.3):
                if mono() > end:
                    raise RuntimeError("the revoked rule still admits new connections")
                time.sleep(0.05)
        self.ec2.terminate_instances(InstanceIds=[iid])
        return lat

    def run(self):
        log(f"host: {os.cpu_count()} CPUs, {os.uname().release}; strato {self.args.strato_bin}; "
            f"rounds {self.args.rounds}, launches {self.args.launches}")
        self.start()
        self.setup_network()
        log("\n== security group rule enforcement (AuthorizeSecurityGroupIngress returned -> new TCP "
            "connection accepted)")
        lat = self.bench_rules()
        ms = [x * 1000 for x in lat]
        log(f"  rounds {len(ms)}: p50 {pct(ms, 50):.1f} ms, p90 {pct(ms, 90):.1f} ms, "
            f"p99 {pct(ms, 99):.1f} ms, max {max(ms):.1f} ms (goal: within 2000 ms)")
        log("\n== launch (RunInstances -> ...), one at a time")
        rows = self.bench_launch()
        med = lambda i: statistics.median(r[i] for r in rows)
        log(f"  median of {len(rows)}: init {med(0):.2f} s, ssh banner {med(1):.2f} s, "
            f"ssh login {med(2):.2f} s; ssh login minus init {statistics.median(r[2] - r[0] for r in rows):.2f} s")
        return 0 if pct(ms, 99) <= 2000 else 2


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strato-bin", default="target/release/strato")
    p.add_argument("--images-dir", default="/tmp/strato-test-images")
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--launches", type=int, default=5)
    p.add_argument("--launch-timeout", type=float, default=240, help="seconds until SSH must answer")
    args = p.parse_args()
    b = Bench(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        rc = b.run()
    except KeyboardInterrupt:
        log("interrupted")
        rc = 1
    except Exception as e:
        log(f"benchmark failed: {e}")
        try:
            with open(os.path.join(b.data_dir, "strato.log"), "rb") as f:
                log(f.read()[-3000:].decode(errors="replace"))
        except OSError:
            pass
        rc = 1
    finally:
        b.cleanup()
    sys.exit(rc)


if __name__ == "__main__":
    main()
