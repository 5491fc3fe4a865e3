#!/usr/bin/env python3
"""Benchmarks Strato's EBS volumes. Run it through scripts/bench-volumes.sh.

Against a `strato up --hypervisor tcg` on 127.0.0.1 (real qcow2 disks, real VMs):

  1. CreateVolume until DescribeVolumes shows `available`, for 1 GiB and 1 TiB gp3
     volumes (and 1 GiB encrypted, for information): the same for both sizes is the
     point (disks are sparse), goal <= 50 ms.
  2. AttachVolume until the guest's kernel reports the new disk on its console
     (`[vdX] ... logical blocks`), goal <= 2 s under TCG; and until the API shows the
     attachment `attached`.
  3. Snapshots of a 1 GiB volume with 1 GiB written (by qemu-io into its top layer):
     CreateSnapshot until DescribeSnapshots shows `completed` (goal <= 2 s);
     CreateVolume from it until `available` (goal <= 100 ms); after rewriting 10% of
     the volume (1,638 random 64 KiB clusters), the host bytes of the next snapshot's
     layer as a share of the volume (goal <= 12 %).

Against a `strato up --hypervisor sim` (the listing costs the control plane only):

  4. DescribeVolumes of 10,000 volumes of one account, a page at a time: EC2 answers
     at most 500 volumes a page (a larger MaxResults gets 500), so a page is 500 and a
     listing 20 pages; server time (Server-Timing) and client time, goal p99 <= 20 ms.

Prints tables (also to target/bench-volumes.txt via the script). Everything started is
stopped and removed at the end. Exit code: 0 all goals met, 2 some missed, 1 failure.
"""

import argparse
import json
import os
import random
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
READY = b"strato-minimal: multi-user ready"
DISK_LINE = re.compile(rb"\[(vd[a-z]+)\] \d+ 512-byte logical blocks")
mono = time.monotonic


def top_file(s, vid):
    """The qcow2 file a volume writes: the layer its `top` names."""
    vols = os.path.join(s.data_dir, "volumes")
    with open(os.path.join(vols, vid, "top")) as f:
        return os.path.join(vols, "layers", f.read().strip() + ".qcow2")


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def med(values):
    return statistics.median(values) if values else float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Strato:
    def __init__(self, binary, hypervisor, images_dir):
        self.binary, self.hypervisor, self.images_dir = binary, hypervisor, images_dir
        self.data_dir = tempfile.mkdtemp(prefix="strato-volbench-")
        os.chmod(self.data_dir, 0o711)  # QEMU's per-VM uids walk into it
        self.port = free_port()
        self.proc = None

    def start(self):
        env = dict(os.environ, STRATO_LOG="warn", STRATO_THROTTLE_SCALE="1000")
        self.logf = open(os.path.join(self.data_dir, "strato.log"), "ab")
        args = [self.binary, "up", "--hypervisor", self.hypervisor, "--data-dir", self.data_dir,
                "--listen", f"127.0.0.1:{self.port}", "--sim-boot-ms", "0", "--sim-stop-ms", "0"]
        if self.images_dir:
            args += ["--images-dir", self.images_dir]
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = mono() + 60
        while mono() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("strato exited early; log in " + self.data_dir)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        text = subprocess.run([self.binary, "env", "--data-dir", self.data_dir],
                              capture_output=True, text=True, timeout=30).stdout
        creds = dict(re.findall(r"^export (\w+)=(.*)$", text, re.M))
        self.ec2 = boto3.client(
            "ec2", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"},
                                          max_pool_connections=16))
        self.server_ms = []
        self.ec2.meta.events.register("after-call.ec2.DescribeVolumes", self._server_time)
        return self

    def _server_time(self, http_response, **_):
        m = re.search(r"dur=([0-9.]+)", http_response.headers.get("server-timing", ""))
        if m:
            self.server_ms.append(float(m.group(1)))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                ec2 = self.ec2
                ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                       for i in r["Instances"] if i["State"]["Name"] != "terminated"]
                if ids:
                    ec2.terminate_instances(InstanceIds=ids)
                    deadline = mono() + 60
                    while mono() < deadline and any(
                            i["State"]["Name"] != "terminated"
                            for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                            for i in r["Instances"]):
                        time.sleep(0.5)
            except Exception as e:  # noqa: BLE001 - best effort before stopping
                print(f"  (cleanup: {e})")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Serving daemons of volumes still attached, if any survived.
        subprocess.run(["pkill", "-f", f"qemu-storage-daemon.*{self.data_dir}"], check=False)
        subprocess.run(["pkill", "-9", "-f", f"qemu-system-x86_64.*{self.data_dir}"], check=False)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def wait_volume(ec2, vid, pred, timeout=30, interval=0.002):
    t0 = mono()
    while mono() - t0 < timeout:
        v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
        if pred(v):
            return mono() - t0
        time.sleep(interval)
    raise RuntimeError(f"{vid} did not get there in {timeout}s")


results = []  # (what, value text, goal text, met or None)


def record(what, value, goal=None, met=None):
    results.append((what, value, goal or "-", met))
    flag = "" if met is None else ("  PASS" if met else "  MISS")
    print(f"  {what:<62} {value:>22}  {goal or '':<12}{flag}", flush=True)


def bench_create(s, rounds):
    ec2 = s.ec2
    print("== CreateVolume until available (qcow2 volume store, TCG host)")
    for label, kw in [("1 GiB gp3", dict(Size=1)), ("1 TiB gp3", dict(Size=1024)),
                      ("1 GiB gp3 encrypted", dict(Size=1, Encrypted=True))]:
        times, made = [], []
        n = rounds if "encrypted" not in label else max(3, rounds // 5)
        for _ in range(n):
            t0 = mono()
            vid = ec2.create_volume(AvailabilityZone="us-east-1a", VolumeType="gp3", **kw)["VolumeId"]
            wait_volume(ec2, vid, lambda v: v["State"] == "available")
            times.append(mono() - t0)
            made.append(vid)
        goal = None if "encrypted" in label else "<= 50 ms"
        p50 = med(times) * 1000
        record(f"CreateVolume {label} -> available, p50 ({n} volumes)", f"{p50:.1f} ms", goal,
               None if goal is None else p50 <= 50)
        record(f"CreateVolume {label} -> available, p90", f"{pct(times, 90) * 1000:.1f} ms")
        if label == "1 TiB gp3":
            sizes = [os.path.getsize(top_file(s, v)) for v in made]
            record("host bytes of a new 1 TiB volume's file, largest", f"{max(sizes) / 1024:.0f} KiB")
        for vid in made:
            ec2.delete_volume(VolumeId=vid)


def bench_attach(s, rounds):
    ec2 = s.ec2
    print("== AttachVolume until the guest sees the disk (TCG)")
    iid = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                            Placement={"AvailabilityZone": "us-east-1a"})["Instances"][0]["InstanceId"]
    log = os.path.join(s.data_dir, "vms", iid, "console.log")
    deadline = mono() + 180
    while mono() < deadline:
        try:
            with open(log, "rb") as f:
                if READY in f.read():
                    break
        except OSError:
            pass
        time.sleep(0.2)
    else:
        raise RuntimeError("guest did not boot")

    def disk_lines():
        with open(log, "rb") as f:
            return len(DISK_LINE.findall(f.read()))

    seen, api = [], []
    for r in range(rounds):
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        wait_volume(ec2, vid, lambda v: v["State"] == "available")
        before = disk_lines()
        t0 = mono()
        ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
        t_api = None
        while mono() - t0 < 30:
            if disk_lines() > before:
                seen.append(mono() - t0)
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("the guest never reported the disk")
        wait_volume(ec2, vid, lambda v: bool(v["Attachments"]) and v["Attachments"][0]["State"] == "attached",
                    interval=0.01)
        t_api = mono() - t0
        api.append(t_api)
        ec2.detach_volume(VolumeId=vid)
        wait_volume(ec2, vid, lambda v: v["State"] == "available", interval=0.05)
        ec2.delete_volume(VolumeId=vid)
    p50 = med(seen)
    record(f"AttachVolume -> guest kernel reports the disk, p50 ({rounds})", f"{p50 * 1000:.0f} ms",
           "<= 2000 ms", p50 <= 2.0)
    record("AttachVolume -> guest kernel reports the disk, max", f"{max(seen) * 1000:.0f} ms")
    record("AttachVolume -> API shows attached, p50", f"{med(api) * 1000:.0f} ms")


def host_bytes(path):
    """Bytes the host really holds for a file (it is sparse)."""
    return os.stat(path).st_blocks * 512


def snapshot_layer(s, sid):
    """The layer file a snapshot freezes (see qcow2.rs: snapshots/<id>.json)."""
    vols = os.path.join(s.data_dir, "volumes")
    with open(os.path.join(vols, "snapshots", sid + ".json")) as f:
        layer = json.load(f)["layer"]
    return os.path.join(vols, "layers", layer + ".qcow2")


def qemu_io(path, commands):
    """Writes into a volume's top layer while nothing serves it (qemu-io follows the
    chain): the bench's stand-in for a guest writing, without a guest's slowness."""
    subprocess.run(["qemu-io", "-f", "qcow2", path], input="\n".join(commands + ["quit"]) + "\n",
                   text=True, check=True, capture_output=True)


def wait_snapshot(ec2, sid, timeout=60, interval=0.002):
    t0 = mono()
    while mono() - t0 < timeout:
        if ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["State"] == "completed":
            return mono() - t0
        time.sleep(interval)
    raise RuntimeError(f"{sid} did not complete in {timeout}s")


def bench_snapshots(s, rounds):
    ec2 = s.ec2
    print("== Snapshots (qcow2 layers): a 1 GiB volume with 1 GiB written")
    gib = 1 << 30
    to_completed, restore, second = [], [], []
    made_vols, made_snaps = [], []
    rng = random.Random(7)
    for r in range(rounds):
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, VolumeType="gp3")["VolumeId"]
        wait_volume(ec2, vid, lambda v: v["State"] == "available")
        made_vols.append(vid)
        qemu_io(top_file(s, vid), [f"write -P 0x{0x40 + r:02x} 0 1G"])
        t0 = mono()
        sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
        wait_snapshot(ec2, sid)
        to_completed.append(mono() - t0)
        made_snaps.append(sid)
        t0 = mono()
        rv = ec2.create_volume(AvailabilityZone="us-east-1b", SnapshotId=sid)["VolumeId"]
        wait_volume(ec2, rv, lambda v: v["State"] == "available")
        restore.append(mono() - t0)
        made_vols.append(rv)
        first_bytes = host_bytes(snapshot_layer(s, sid))
        # Rewrite 10% of the volume: 1,638 clusters of 64 KiB at random places.
        clusters = rng.sample(range(gib // 65536), gib // 65536 // 10)
        qemu_io(top_file(s, vid), [f"write -P 0x{0x80 + r:02x} {c * 65536} 64k" for c in clusters])
        t0 = mono()
        sid2 = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
        wait_snapshot(ec2, sid2)
        made_snaps.append(sid2)
        second.append((host_bytes(snapshot_layer(s, sid2)), first_bytes, mono() - t0))
    p50 = med(to_completed) * 1000
    record(f"CreateSnapshot -> completed, 1 GiB written, p50 ({rounds})", f"{p50:.1f} ms", "<= 2000 ms",
           p50 <= 2000)
    record("CreateSnapshot -> completed, 1 GiB written, max", f"{max(to_completed) * 1000:.1f} ms")
    p50 = med(restore) * 1000
    record(f"CreateVolume from that snapshot -> available, p50 ({rounds})", f"{p50:.1f} ms", "<= 100 ms",
           p50 <= 100)
    record("CreateVolume from that snapshot -> available, max", f"{max(restore) * 1000:.1f} ms")
    share = max(b for b, _, _ in second) / gib * 100
    record("first snapshot's host bytes (1 GiB written), median",
           f"{med([f for _, f, _ in second]) / (1 << 20):.1f} MiB")
    record("second snapshot after rewriting 10%: host bytes, largest",
           f"{max(b for b, _, _ in second) / (1 << 20):.1f} MiB")
    record("second snapshot after rewriting 10%: share of the volume", f"{share:.1f} %", "<= 12 %",
           share <= 12)
    record("second snapshot -> completed, p50", f"{med([t for _, _, t in second]) * 1000:.1f} ms")
    for sid in made_snaps:
        ec2.delete_snapshot(SnapshotId=sid)
    for vid in made_vols:
        ec2.delete_volume(VolumeId=vid)


def bench_listing(s, count, listings):
    ec2 = s.ec2
    print(f"== DescribeVolumes of {count} volumes (simulated host: the control plane's cost)")
    t0 = mono()
    lock = threading.Lock()
    made = []

    def worker(n):
        c = boto3.client("ec2", endpoint_url=ec2.meta.endpoint_url, region_name=REGION,
                         aws_access_key_id=ec2._request_signer._credentials.access_key,
                         aws_secret_access_key=ec2._request_signer._credentials.secret_key,
                         config=botocore.config.Config(retries={"max_attempts": 5, "mode": "standard"}))
        for _ in range(n):
            vid = c.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
            with lock:
                made.append(vid)

    threads = [threading.Thread(target=worker, args=(count // 8 + (1 if i < count % 8 else 0),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seed = mono() - t0
    record(f"seeding: CreateVolume x{count}, 8 clients", f"{count / seed:.0f} req/s")
    # Quiet first: every volume's host report applied (no writes during the listing).
    deadline = mono() + 120
    while ec2.describe_volumes(Filters=[{"Name": "status", "Values": ["creating"]}])["Volumes"]:
        if mono() > deadline:
            raise RuntimeError("volumes still creating after 120 s")
        time.sleep(0.2)
    record("seeding: until every volume is available", f"{mono() - t0:.1f} s")
    # One listing to warm up (first touch of the pages), not counted.
    token = None
    while True:
        r = ec2.describe_volumes(MaxResults=500, **({"NextToken": token} if token else {}))
        token = r.get("NextToken")
        if not token:
            break
    client = []
    s.server_ms.clear()
    for _ in range(listings):
        token, n = None, 0
        while True:
            kw = {"MaxResults": 500}
            if token:
                kw["NextToken"] = token
            t = mono()
            r = ec2.describe_volumes(**kw)
            client.append(mono() - t)
            n += len(r["Volumes"])
            token = r.get("NextToken")
            if not token:
                break
        assert n == count, n
    server = s.server_ms
    p99 = pct(server, 99)
    record(f"DescribeVolumes page of 500, server time p50 ({len(server)} pages)", f"{med(server):.2f} ms")
    record("DescribeVolumes page of 500, server time p99", f"{p99:.2f} ms", "<= 20 ms", p99 <= 20)
    record("DescribeVolumes page of 500, client time p50 / p99",
           f"{med(client) * 1000:.1f} / {pct(client, 99) * 1000:.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strato-bin", required=True)
    ap.add_argument("--images-dir", required=True)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--attach-rounds", type=int, default=5)
    ap.add_argument("--snapshot-rounds", type=int, default=5)
    ap.add_argument("--volumes", type=int, default=10000)
    ap.add_argument("--listings", type=int, default=10)
    a = ap.parse_args()
    print(f"volume benchmark, {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, "
          f"load {open('/proc/loadavg').read().split()[0]}")
    started = []
    try:
        s = Strato(a.strato_bin, "tcg", a.images_dir).start()
        started.append(s)
        bench_create(s, a.rounds)
        bench_attach(s, a.attach_rounds)
        bench_snapshots(s, a.snapshot_rounds)
        s.stop()
        started.remove(s)
        s = Strato(a.strato_bin, "sim", None).start()
        started.append(s)
        bench_listing(s, a.volumes, a.listings)
    except Exception as e:  # noqa: BLE001
        print(f"benchmark failed: {e}")
        for s in started:
            s.stop()
        return 1
    for s in started:
        s.stop()
    missed = [w for w, _, _, met in results if met is False]
    print("goals missed: " + (", ".join(missed) if missed else "none"))
    return 2 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
