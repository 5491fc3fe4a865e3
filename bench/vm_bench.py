#!/usr/bin/env python3
"""Benchmarks Strato's real VMs (`strato up --hypervisor tcg`) on this host.

Run it through scripts/bench-vm.sh (builds the release binary and the built-in image
first). Measures, in one run and against one `strato up` on 127.0.0.1:

  1. Launch overhead: RunInstances -> `strato-minimal: init running` in console.log,
     against the very same QEMU command line started by hand (own overlay disk, own
     temp dir, as root), alternating the two, N rounds; also -> `multi-user ready`.
  2. Host memory per idle instance: QEMU RSS/PSS, guest RAM resident, and the part of
     RSS that is not guest RAM (K idle t2.nano instances); Strato's own RSS growth.
  3. Density: idle t2.nano instances launched in batches until a cap, a failure or low
     MemAvailable; checks at the end that they all still run and answer on the console.
  4. Root-disk creation: `qemu-img create -b BASE` for a 64 MiB and a 10 GiB base.

Everything started here is stopped and removed at the end, also on failure, Ctrl-C or
SIGTERM. QEMU processes of other sessions (not under this run's directories) are left
alone. Exit code: 0 all targets met, 2 some target missed, 1 the run failed.
"""

import argparse
import datetime
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
import time

import boto3
import botocore.config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_IMAGE = "ami-05a9d2c7e4b1f3801"
REGION = "us-east-1"
INIT = b"strato-minimal: init running"
READY = b"strato-minimal: multi-user ready"
MIB = 1024 * 1024
KIB = 1024

mono = time.monotonic


def log(*args):
    try:
        print(*args, flush=True)
    except (BrokenPipeError, OSError):
        pass


# ---------------------------------------------------------------------------- stats


def pct(values, p):
    """Nearest-rank percentile."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def med(values):
    return statistics.median(values) if values else float("nan")


def ms(x):
    return f"{x * 1000:.0f}" if x == x else "n/a"


def msf(x):
    return f"{x * 1000:.1f}" if x == x else "n/a"


def mib(x):
    return f"{x / MIB:.1f}" if x == x else "n/a"


def table(headers, rows):
    cols = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(headers))]
    out = []
    for n, r in enumerate(cols):
        out.append("  ".join(c.rjust(w) if i > 0 and re.match(r"^[-+]?[0-9.]+%?$|^n/a$|^$", c) else c.ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# ---------------------------------------------------------------------------- host


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0]) * KIB
    return out


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_times():
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts), idle


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def qemu_procs():
    """{pid: cmdline string} of every qemu-system-x86_64 VM process on the host."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        args = proc_cmdline(int(d))
        if args and args[0].endswith(b"qemu-system-x86_64") and b"-name" in args:
            out[int(d)] = b" ".join(args).decode(errors="replace")
    return out


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * KIB
    except OSError:
        pass
    return float("nan")


def proc_cpu(pid):
    """utime + stime of a process, in clock ticks (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def zombie_children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == ppid:
                out.append(int(d))
    return out


def smaps_rollup(pid):
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"^(\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2)) * KIB
    return out


def smaps_mappings(pid):
    """[(header fields, {field: bytes})] of /proc/<pid>/smaps."""
    maps = []
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                cur = (line.split(), {})
                maps.append(cur)
            else:
                m = re.match(r"^(\w+):\s+(\d+) kB", line)
                if m and cur is not None:
                    cur[1][m.group(1)] = int(m.group(2)) * KIB
    return maps


def guest_ram_and_tcg(pid, guest_bytes):
    """(Rss of the guest RAM mapping, Rss of the TCG code buffer, how the RAM was found).

    Guest RAM (pc.ram) is an anonymous rw-p mapping of exactly the configured size; the
    TCG translation buffer is QEMU's big anonymous rwxp mapping (1 GiB by default)."""
    maps = smaps_mappings(pid)
    anon = [(h, v) for h, v in maps if len(h) == 5 or (len(h) > 5 and h[5] in ("[anon]",))]
    ram = [v for h, v in anon if h[1] == "rw-p" and v.get("Size") == guest_bytes]
    how = "anon rw-p mapping of exactly guest size"
    if not ram:
        ram = sorted((v for h, v in anon if h[1].startswith("rw") and v.get("Size", 0) >= guest_bytes),
                     key=lambda v: v["Size"])[:1]
        how = "smallest anon rw mapping >= guest size"
    tcg = [v for h, v in anon if h[1] == "rwxp" and v.get("Size", 0) >= 64 * MIB]
    ram_rss = ram[0].get("Rss", 0) if ram else float("nan")
    tcg_rss = sum(v.get("Rss", 0) for v in tcg) if tcg else float("nan")
    return ram_rss, tcg_rss, how if ram else "not found"


def cgroup_mem_usage(iid):
    for p in (f"/sys/fs/cgroup/memory/strato/{iid}/memory.usage_in_bytes",
              f"/sys/fs/cgroup/strato/{iid}/memory.current"):
        try:
            with open(p) as f:
                return int(f.read().strip())
        except OSError:
            continue
    return float("nan")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def console_echo(sock_path, timeout=30):
    """Types `echo alive-$((6*7))` on a guest's serial console; (ok, seconds)."""
    t0 = mono()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(sock_path)
        s.settimeout(0.5)
        s.sendall(b"echo alive-$((6*7))\n")
        seen = b""
        while mono() - t0 < timeout:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            seen += chunk
            if b"alive-42" in seen:
                return True, mono() - t0
        return False, mono() - t0
    except OSError:
        return False, mono() - t0
    finally:
        s.close()


class ConsoleWatch:
    """Follows a console.log that QEMU appends to, looking for the boot markers."""

    def __init__(self, path):
        self.path = path
        self.f = None
        self.buf = b""

    def poll(self):
        if self.f is None:
            try:
                self.f = open(self.path, "rb")
            except OSError:
                return self.buf
        chunk = self.f.read()
        if chunk:
            self.buf += chunk
        return self.buf

    def close(self):
        if self.f:
            self.f.close()


# ---------------------------------------------------------------------------- strato


class Strato:
    def __init__(self, binary, images_dir, stop_timeout):
        self.binary = binary
        self.images_dir = images_dir
        self.data_dir = tempfile.mkdtemp(prefix="strato-vmbench-")
        # QEMU runs as unprivileged uids (900000+) that must be able to enter it.
        os.chmod(self.data_dir, 0o711)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.stop_timeout = stop_timeout
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "strato.log")

    def start(self):
        env = dict(os.environ)
        env.setdefault("STRATO_LOG", "info")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "up", "--hypervisor", "tcg", "--images-dir", self.images_dir,
             "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}",
             "--stop-timeout-secs", str(self.stop_timeout)],
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )
        deadline = mono() + 30
        while mono() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strato exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"strato did not listen:\n{self.log_tail()}")
        text = subprocess.run([self.binary, "env", "--data-dir", self.data_dir],
                              capture_output=True, text=True, timeout=30).stdout
        self.creds = dict(re.findall(r"^export (\w+)=(.*)$", text, re.M))
        self.ec2 = boto3.client(
            "ec2", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=self.creds["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.creds["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(retries={"max_attempts": 3, "mode": "standard"},
                                          max_pool_connections=20),
        )
        return self

    def status_text(self):
        return subprocess.run([self.binary, "status", "--data-dir", self.data_dir],
                              capture_output=True, text=True, timeout=30).stdout

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def rss(self):
        return status_kib(self.proc.pid, "VmRSS")

    def vm_dir(self, iid):
        return os.path.join(self.data_dir, "vms", iid)

    def qemu_pid(self, iid):
        try:
            with open(os.path.join(self.vm_dir(iid), "qemu.pid")) as f:
                pid = int(f.read().strip())
            if f"guest={iid},".encode() in b" ".join(proc_cmdline(pid)):
                return pid
        except (OSError, ValueError):
            pass
        for pid, cmd in qemu_procs().items():
            if f"guest={iid}," in cmd:
                return pid
        return None

    def states(self, ids):
        out = {}
        ids = list(ids)
        for i in range(0, len(ids), 200):
            r = self.ec2.describe_instances(InstanceIds=ids[i:i + 200])
            for res in r["Reservations"]:
                for inst in res["Instances"]:
                    out[inst["InstanceId"]] = inst["State"]["Name"]
        return out

    def our_qemu(self):
        return {p: c for p, c in qemu_procs().items() if self.data_dir + "/" in c}

    def terminate(self, ids, timeout=120):
        """Terminates and waits until the instances are terminated and their QEMU gone."""
        ids = list(ids)
        if not ids:
            return 0.0
        t0 = mono()
        for i in range(0, len(ids), 200):
            self.ec2.terminate_instances(InstanceIds=ids[i:i + 200])
        want = set(ids)
        while mono() - t0 < timeout:
            st = self.states(ids)
            alive = {p for p, c in self.our_qemu().items() if any(f"guest={i}," in c for i in want)}
            if all(st.get(i) == "terminated" for i in ids) and not alive:
                return mono() - t0
            time.sleep(0.2)
        raise RuntimeError(f"instances not terminated after {timeout}s")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None


# ---------------------------------------------------------------------------- the run


class Bench:
    def __init__(self, args):
        self.a = args
        self.strato = None
        self.hand_procs = []
        self.tmp_dirs = []
        self.launched = []
        self.results = {}
        self.targets = []  # (name, met: bool, detail)
        self.unrelated_at_start = {}
        self.notes = []

    # -- helpers ------------------------------------------------------------

    def mkdtemp(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix)
        self.tmp_dirs.append(d)
        return d

    def run_instances(self, itype, n):
        r = self.strato.ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType=itype, MinCount=n, MaxCount=n)
        ids = [i["InstanceId"] for i in r["Instances"]]
        self.launched.extend(ids)
        return ids

    def follow(self, dir_path, t0, timeout, extra_mark=None, proc=None, disk=None):
        """Polls a VM directory from t0: the root disk (`disk`, a function giving its
        path or None while unknown; default the directory's disk.qcow2), qemu.pid, then
        the console markers.

        Polls every 5 ms until QEMU's pid file exists, then every 20 ms. With `proc`
        (a by-hand QEMU), fails at once when that process exits instead of waiting."""
        marks = {}
        w = ConsoleWatch(os.path.join(dir_path, "console.log"))
        if disk is None:
            own = os.path.join(dir_path, "disk.qcow2")
            disk = lambda: own  # noqa: E731
        pidf = os.path.join(dir_path, "qemu.pid")
        try:
            while mono() - t0 < timeout:
                now = mono() - t0
                path = disk() if "disk" not in marks else None
                if path and os.path.exists(path):
                    marks["disk"] = now
                if "qemu" not in marks and os.path.exists(pidf):
                    marks["qemu"] = now
                buf = w.poll()
                if "init" not in marks and INIT in buf:
                    marks["init"] = now
                if "ready" not in marks and READY in buf:
                    marks["ready"] = now
                    return marks
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"by-hand QEMU exited with {proc.returncode} before {READY!r}: "
                                       f"see {os.path.join(dir_path, 'qemu.log')}")
                time.sleep(0.005 if "qemu" not in marks else 0.02)
        finally:
            w.close()
        raise RuntimeError(f"no {READY!r} in {dir_path} after {timeout}s: {marks}")

    # -- header ---------------------------------------------------------------

    def header(self):
        qv = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        model = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        mem = meminfo()
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--"]).returncode != 0
        try:
            thp = open("/sys/kernel/mm/transparent_hugepage/enabled").read().strip()
        except OSError:
            thp = "n/a"
        hyp = next((l.split(":", 1)[1].strip() for l in self.strato.status_text().splitlines()
                    if l.startswith("hypervisor")), "unknown")
        log("=" * 78)
        log("Strato VM benchmark (bench/vm_bench.py)")
        log("=" * 78)
        log(f"date:         {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
        log(f"host:         {os.uname().nodename}, kernel {os.uname().release}")
        log(f"cores:        {os.cpu_count()} ({model})")
        log(f"memory:       {mem['MemTotal'] / (1 << 30):.1f} GiB total, {mem['MemAvailable'] / (1 << 30):.1f} GiB available; THP {thp}")
        log(f"qemu:         {qv}")
        log(f"accelerator:  {hyp}   (from `strato status`)")
        log(f"strato:       {self.a.strato_bin} (commit {commit}{', with uncommitted changes' if dirty else ''}), "
            f"endpoint {self.strato.endpoint}, --stop-timeout-secs {self.a.stop_timeout}")
        log(f"image:        {DEFAULT_IMAGE} = {self.image_dir}")
        log(f"load average: {loadavg()} at start")
        if self.unrelated_at_start:
            log(f"NOTE:         {len(self.unrelated_at_start)} QEMU process(es) of another session were running at start "
                f"and were left alone: " + ", ".join(sorted(re.search(r'guest=([^,\s]+)', c).group(1)
                                                           if re.search(r'guest=([^,\s]+)', c) else str(p)
                                                           for p, c in self.unrelated_at_start.items())))
        else:
            log("other QEMU:   none running at start")
        log("")

    # -- 4. root disks --------------------------------------------------------

    def bench_disks(self):
        a = self.a
        log(f"--- [4] root-disk creation: qemu-img create -f qcow2 -F qcow2 -b BASE (x{a.disk_reps}) ---")
        d = self.mkdtemp("strato-vmbench-disk-")
        base64 = os.path.realpath(os.path.join(self.image_dir, "root.qcow2"))
        base10 = os.path.join(d, "base10g.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", base10, "10G"], check=True)
        t0 = mono()
        filled = "none"
        if shutil.which("qemu-io"):
            subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 512M", "-c", "write -P 0xcd 9G 64M", base10],
                           check=True, capture_output=True)
            filled = "576 MiB written with qemu-io (0xab at 0, 0xcd at 9G)"
        log(f"10 GiB base: {filled} in {mono() - t0:.1f}s; file {os.path.getsize(base10) / MIB:.0f} MiB")

        def virt(p):
            out = subprocess.run(["qemu-img", "info", p], capture_output=True, text=True).stdout
            m = re.search(r"virtual size: ([^\n]+)", out)
            return m.group(1) if m else "?"

        cases = [
            ("64 MiB base (built-in root.qcow2)", base64, [], False),
            ("10 GiB base (576 MiB of data)", base10, [], False),
            (f"64 MiB base, info + create with a size ({self.disk_size_arg or 'no size'})",
             base64, [self.disk_size_arg] if self.disk_size_arg else [], True),
        ]
        rows = []
        res = {}
        for n in range(a.disk_reps):
            for name, base, extra, with_info in cases:
                out = os.path.join(d, f"ov-{n}-{len(name)}.qcow2")
                t = mono()
                if with_info:
                    subprocess.run(["qemu-img", "info", "--output=json", base], check=True, capture_output=True)
                subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", base, out, *extra], check=True)
                res.setdefault(name, []).append(mono() - t)
                os.unlink(out)
        for name, base, extra, _ in cases:
            v = res[name]
            rows.append([name, virt(base), msf(med(v)), msf(pct(v, 90)), msf(min(v)), msf(max(v))])
        log(table(["overlay on", "base virtual", "median ms", "p90 ms", "min ms", "max ms"], rows))
        m64, m10 = med(res[cases[0][0]]), med(res[cases[1][0]])
        same = abs(m10 - m64) <= max(0.005, 0.2 * m64)
        self.results["disk"] = (res, cases)
        self.targets.append(("[4] qemu-img create overlay, median",
                             f"64 MiB base {msf(m64)} ms, 10 GiB base {msf(m10)} ms",
                             "< 50 ms, same for both (within 5 ms or 20%)",
                             m64 < 0.05 and m10 < 0.05 and same))
        log("")

    # -- 1. launch overhead -----------------------------------------------------

    def root_volume(self, iid):
        vols = self.strato.ec2.describe_volumes(Filters=[
            {"Name": "attachment.instance-id", "Values": [iid]},
            {"Name": "attachment.device", "Values": ["/dev/xvda"]}])["Volumes"]
        return vols[0] if vols else None

    def strato_once(self, itype="t3.nano", timeout=180):
        t0 = mono()
        (iid,) = self.run_instances(itype, 1)
        api = mono() - t0
        # The root volume's disk: its `top` in the volume store (asked for once the
        # launch returned; the mark is when it is first seen to exist).
        vol = self.root_volume(iid)
        top = os.path.join(self.strato.data_dir, "volumes", vol["VolumeId"], "top") if vol else None
        marks = self.follow(self.strato.vm_dir(iid), t0, timeout, disk=lambda: top)
        marks["api"] = api
        return iid, marks

    def hand_once(self, n, timeout=180):
        d = self.mkdtemp("strato-vmbench-hand-")
        args = [x.replace(self.tmpl_dir, d) for x in self.tmpl]
        args = [re.sub(r"guest=[^,]+,", f"guest=vmbench-hand-{n},", x) for x in args]
        # Strato hands QEMU its tap as an inherited descriptor (`tap,fd=N`), which a
        # process started here does not have: give the by-hand VM a tap of its own by
        # name instead, made before the clock starts as Strato's is made by its agent.
        taps = []
        for i, x in enumerate(args):
            m = re.match(r"tap,id=([^,]+),fd=\d+(.*)", x)
            if m:
                tap = f"vmbh{n}n{len(taps)}"
                subprocess.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
                subprocess.run(["ip", "link", "set", tap, "up"], check=True)
                taps.append(tap)
                args[i] = f"tap,id={m.group(1)},ifname={tap},script=no,downscript=no{m.group(2)}"
        logf = open(os.path.join(d, "qemu.log"), "wb")
        t0 = mono()
        # The overlay is created inside the clock, as Strato's is.
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", self.base_abs,
                        os.path.join(d, "disk.qcow2"), *([self.disk_size_arg] if self.disk_size_arg else [])],
                       check=True)
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.hand_procs.append(p)
        try:
            marks = self.follow(d, t0, timeout, proc=p)
        finally:
            p.kill()
            p.wait()
            logf.close()
            for tap in taps:
                subprocess.run(["ip", "link", "del", tap], capture_output=True)
            self.hand_procs.remove(p)
            shutil.rmtree(d, ignore_errors=True)
            self.tmp_dirs.remove(d)
        return marks

    def bench_launch(self):
        a = self.a
        log(f"--- [1] launch: RunInstances (t3.nano) vs the same QEMU command line by hand, {a.rounds} rounds ---")
        # Warm-up (not counted): captures Strato's QEMU command line once.
        iid, m = self.strato_once()
        pid = self.strato.qemu_pid(iid)
        self.tmpl = [x.decode() for x in proc_cmdline(pid) if x != b""]
        self.tmpl_dir = self.strato.vm_dir(iid)
        # Strato's VM boots its root volume over NBD from the volume's
        # qemu-storage-daemon: the by-hand VM boots the same image from a local qcow2
        # overlay of the root volume's size instead (the same argument position, so it
        # is `vda` too), so the comparison charges Strato for serving the volume.
        vol = self.root_volume(iid)
        vid = vol["VolumeId"]
        self.disk_size_arg = f"{vol['Size']}G"
        with open(os.path.join(self.tmpl_dir, "vm.json")) as f:
            self.base_abs = os.path.join(json.load(f)["image_path"], "root.qcow2")
        tmpl, swapped = [], False
        i = 0
        while i < len(self.tmpl):
            opt, val = self.tmpl[i], self.tmpl[i + 1] if i + 1 < len(self.tmpl) else ""
            if opt in ("-blockdev", "-device") and vid in val:
                if not swapped:
                    tmpl += ["-drive", f"file={os.path.join(self.tmpl_dir, 'disk.qcow2')},if=virtio,"
                                       f"format=qcow2,cache=writeback"]
                    swapped = True
                i += 2
                continue
            tmpl.append(opt)
            i += 1
        assert swapped, f"the root volume {vid} is not on the command line: {self.tmpl}"
        self.tmpl = tmpl
        self.strato.terminate([iid])
        log("Strato's QEMU command line (captured from /proc/<pid>/cmdline of the warm-up VM):")
        log("  " + " ".join(x if " " not in x else repr(x) for x in self.tmpl))
        log(f"By hand: the same arguments with {self.tmpl_dir} replaced by a fresh temp dir and the guest name "
            f"changed, and Strato's root volume (NBD from its qemu-storage-daemon) replaced by a local "
            f"overlay; run as root (no uid change, no cgroup); the overlay "
            f"`qemu-img create -q -f qcow2 -F qcow2 -b {self.base_abs} disk.qcow2"
            f"{' ' + self.disk_size_arg if self.disk_size_arg else ''}` is created INSIDE the clock "
            f"(Strato's root volume is made inside its clock too). Order alternates each round.")
        self.hand_once(0)  # warm-up, not counted
        rows_s, rows_h = [], []
        for r in range(a.rounds):
            order = ["strato", "hand"] if r % 2 == 0 else ["hand", "strato"]
            line = []
            for which in order:
                time.sleep(a.settle)
                if which == "strato":
                    iid, m = self.strato_once()
                    self.strato.terminate([iid])
                    rows_s.append(m)
                    line.append(f"strato init {ms(m['init'])} ms ready {ms(m['ready'])} ms")
                else:
                    m = self.hand_once(r + 1)
                    rows_h.append(m)
                    line.append(f"hand init {ms(m['init'])} ms ready {ms(m['ready'])} ms")
            log(f"  round {r + 1}/{a.rounds}: " + "; ".join(line))
        self.results["launch"] = (rows_s, rows_h)

        def col(rows, k):
            return [m[k] for m in rows if k in m]

        def stat_row(name, v):
            return [name, ms(med(v)), ms(pct(v, 90)), ms(min(v)), ms(max(v))]

        rows = [
            stat_row("strato: RunInstances returned", col(rows_s, "api")),
            stat_row("strato: root volume's disk seen", col(rows_s, "disk")),
            stat_row("strato: qemu.pid written", col(rows_s, "qemu")),
            stat_row("strato: 'init running'", col(rows_s, "init")),
            stat_row("strato: 'multi-user ready'", col(rows_s, "ready")),
            stat_row("hand:   disk.qcow2 created", col(rows_h, "disk")),
            stat_row("hand:   qemu.pid written", col(rows_h, "qemu")),
            stat_row("hand:   'init running'", col(rows_h, "init")),
            stat_row("hand:   'multi-user ready'", col(rows_h, "ready")),
        ]
        log("")
        log(table(["time from start (ms)", "median", "p90", "min", "max"], rows))
        ratios_init = [s["init"] / h["init"] - 1 for s, h in zip(rows_s, rows_h)]
        ratios_ready = [s["ready"] / h["ready"] - 1 for s, h in zip(rows_s, rows_h)]
        mi_s, mi_h = med(col(rows_s, "init")), med(col(rows_h, "init"))
        mr_s, mr_h = med(col(rows_s, "ready")), med(col(rows_h, "ready"))
        pre_s = med(col(rows_s, "qemu"))
        pre_h = med(col(rows_h, "qemu"))
        log("")
        log(table(["overhead (strato/hand - 1)", "median of per-round ratios", "ratio of medians", "min", "max"], [
            ["to 'init running'", f"{med(ratios_init) * 100:+.1f}%", f"{(mi_s / mi_h - 1) * 100:+.1f}%",
             f"{min(ratios_init) * 100:+.1f}%", f"{max(ratios_init) * 100:+.1f}%"],
            ["to 'multi-user ready'", f"{med(ratios_ready) * 100:+.1f}%", f"{(mr_s / mr_h - 1) * 100:+.1f}%",
             f"{min(ratios_ready) * 100:+.1f}%", f"{max(ratios_ready) * 100:+.1f}%"],
        ]))
        log(f"start-up before QEMU runs (to qemu.pid): strato median {ms(pre_s)} ms vs hand {ms(pre_h)} ms "
            f"(difference {ms(pre_s - pre_h)} ms); QEMU pid -> 'init running': strato "
            f"{ms(med([m['init'] - m['qemu'] for m in rows_s]))} ms, hand {ms(med([m['init'] - m['qemu'] for m in rows_h]))} ms")
        self.targets.append(("[1] launch overhead to 'init running'",
                             f"{med(ratios_init) * 100:+.1f}% (median of per-round ratios)",
                             "<= +10%", med(ratios_init) <= 0.10))
        log("")

    # -- 2. memory -----------------------------------------------------------------

    def wait_ready(self, ids, t0, timeout):
        """Waits for `running` and the ready marker on every instance; (t_running, t_ready, missing)."""
        watches = {i: ConsoleWatch(os.path.join(self.strato.vm_dir(i), "console.log")) for i in ids}
        t_run = None
        pending = set(ids)
        try:
            while mono() - t0 < timeout:
                if t_run is None:
                    st = self.strato.states(ids)
                    if all(st.get(i) == "running" for i in ids):
                        t_run = mono() - t0
                for i in list(pending):
                    if READY in watches[i].poll():
                        pending.discard(i)
                        watches[i].close()
                        watches[i].buf = b""
                if not pending and t_run is not None:
                    return t_run, mono() - t0, set()
                time.sleep(0.5)
        finally:
            for w in watches.values():
                w.close()
        return t_run, None, pending

    def bench_memory(self):
        a = self.a
        log(f"--- [2] host memory per idle instance: {a.idle} x {a.density_type} ---")
        rss0 = self.strato.rss()
        mem0 = meminfo()["MemAvailable"]
        t0 = mono()
        ids = self.run_instances(a.density_type, a.idle)
        t_run, t_ready, missing = self.wait_ready(ids, t0, a.batch_timeout)
        if missing:
            raise RuntimeError(f"{len(missing)} of {a.idle} guests not ready after {a.batch_timeout}s")
        log(f"{a.idle} launched in one RunInstances: all running after {t_run:.1f}s, all 'multi-user ready' after {t_ready:.1f}s; idling {a.idle_secs}s")
        time.sleep(a.idle_secs)
        guest = self.guest_mib * MIB
        per = []
        how = set()
        for iid in ids:
            pid = self.strato.qemu_pid(iid)
            roll = smaps_rollup(pid)
            ram, tcg, h = guest_ram_and_tcg(pid, guest)
            how.add(h)
            per.append({
                "rss": roll.get("Rss", float("nan")), "pss": roll.get("Pss", float("nan")),
                "vmrss": status_kib(pid, "VmRSS"), "hwm": status_kib(pid, "VmHWM"),
                "anon": roll.get("Anonymous", float("nan")), "thp": roll.get("AnonHugePages", float("nan")),
                "ram": ram, "tcg": tcg, "cg": cgroup_mem_usage(iid),
            })
        rss1 = self.strato.rss()
        mem1 = meminfo()["MemAvailable"]

        def row(name, k, note=""):
            v = [p[k] for p in per]
            return [name, mib(med(v)), mib(min(v)), mib(max(v)), note]

        for p in per:
            p["nonram"] = p["rss"] - p["ram"]
            p["other"] = p["rss"] - p["ram"] - p["tcg"]
        log(table(["per QEMU process (MiB)", "median", "min", "max", "note"], [
            ["guest RAM configured", f"{self.guest_mib:.1f}", "", "", f"{a.density_type}"],
            row("RSS (smaps_rollup)", "rss"),
            row("PSS (smaps_rollup)", "pss"),
            row("VmHWM (peak RSS, status)", "hwm"),
            row("  of which AnonHugePages", "thp", "THP-backed"),
            row("guest RAM resident", "ram", "Rss of the guest RAM mapping"),
            row("RSS - guest RAM resident", "nonram", "QEMU's own memory (the overhead)"),
            row("  of which TCG code buffer", "tcg", "anon rwxp mapping (1 GiB reserved)"),
            row("  of which everything else", "other", "heap, libs, stacks, devices"),
            row("cgroup memory usage", "cg", "incl. page cache charged"),
        ]))
        log(f"guest RAM mapping found as: {', '.join(sorted(how))}")
        grow = (rss1 - rss0) / a.idle
        log(f"strato process RSS: {mib(rss0)} MiB before, {mib(rss1)} MiB after -> {grow / KIB:+.1f} KiB per instance")
        log(f"MemAvailable: {mib(mem0)} MiB before, {mib(mem1)} MiB after -> {mib((mem0 - mem1) / a.idle)} MiB per instance")
        self.results["memory"] = per
        self.mem_avail_before = mem0
        self.mem_ids = ids
        self.mem_batch = (t_run, t_ready)
        log("")

    # -- 3. density -------------------------------------------------------------------

    def bench_density(self):
        a = self.a
        log(f"--- [3] density: idle {a.density_type} ({self.guest_mib} MiB, smallest memory) in batches of {a.batch} "
            f"up to {a.cap}; stop if MemAvailable < {a.min_avail_gib} GiB, a launch fails or guests stop booting ---")
        mem_start = self.mem_avail_before
        ids = list(self.mem_ids)
        batches = [(1, len(ids), self.mem_batch[0], self.mem_batch[1], loadavg(), meminfo()["MemAvailable"], "from [2]")]
        per_guest = med([p["rss"] for p in self.results["memory"]])
        stop_reason = f"reached the cap of {a.cap}"
        t_all = mono()
        while len(ids) < a.cap:
            n = min(a.batch, a.cap - len(ids))
            avail = meminfo()["MemAvailable"]
            need = a.min_avail_gib * (1 << 30) + n * per_guest * 1.5
            if avail < need:
                stop_reason = (f"MemAvailable guard: {mib(avail)} MiB left, another {n} guests at 1.5 x the measured "
                               f"{mib(per_guest)} MiB RSS each could take it below {a.min_avail_gib:g} GiB")
                break
            if mono() - t_all > a.density_budget:
                stop_reason = f"time budget of {a.density_budget}s used up"
                break
            t0 = mono()
            try:
                new = self.run_instances(a.density_type, n)
            except Exception as e:  # noqa: BLE001 - any launch failure ends the test
                stop_reason = f"RunInstances failed: {e}"
                break
            t_run, t_ready, missing = self.wait_ready(new, t0, a.batch_timeout)
            ids.extend(new)
            batches.append((len(batches) + 1, n, t_run, t_ready, loadavg(), meminfo()["MemAvailable"],
                            f"{len(missing)} not ready" if missing else ""))
            b = batches[-1]
            log(f"  batch {b[0]}: +{n} -> {len(ids)}: running after {b[2] and f'{b[2]:.1f}s'}, "
                f"ready after {b[3] and f'{b[3]:.1f}s'}, load {b[4]}, MemAvailable {mib(b[5])} MiB {b[6]}")
            if missing:
                stop_reason = f"{len(missing)} guests of batch {b[0]} not 'multi-user ready' within {a.batch_timeout}s"
                break
        log(table(["batch", "launched", "to all running (s)", "to all ready (s)", "load avg after", "MemAvailable after (MiB)", "note"],
                  [[b[0], b[1], f"{b[2]:.1f}" if b[2] else "n/a", f"{b[3]:.1f}" if b[3] else "n/a", b[4], mib(b[5]), b[6]]
                   for b in batches]))
        log(f"stopped because: {stop_reason}")
        # Idle state of the host with everything running (the newest guests keep busy
        # for a while after 'multi-user ready', so let them settle first).
        time.sleep(a.settle_secs)
        procs = self.strato.our_qemu()
        tick = os.sysconf("SC_CLK_TCK")
        sp = self.strato.proc.pid
        p0 = {p: proc_cpu(p) for p in [*procs, sp]}
        c0, i0 = cpu_times()
        w0 = mono()
        time.sleep(10)
        c1, i1 = cpu_times()
        wall = mono() - w0
        p1 = {p: proc_cpu(p) for p in [*procs, sp]}
        busy = 1 - (i1 - i0) / max(1, c1 - c0)
        guest_cpu = [(p1[p] - p0[p]) / tick / wall for p in procs if p0.get(p) is not None and p1.get(p) is not None]
        strato_cpu = (p1[sp] - p0[sp]) / tick / wall if p0.get(sp) is not None and p1.get(sp) is not None else float("nan")
        st = self.strato.states(ids)
        running = [i for i in ids if st.get(i) == "running"]
        procs = self.strato.our_qemu()
        ready = 0
        for i in ids:
            try:
                with open(os.path.join(self.strato.vm_dir(i), "console.log"), "rb") as f:
                    ready += READY in f.read()
            except OSError:
                pass
        sample = random.sample(running, min(5, len(running)))
        echoes = [(i, *console_echo(os.path.join(self.strato.vm_dir(i), "console.sock"))) for i in sample]
        mem_end = meminfo()["MemAvailable"]
        total_rss = sum(smaps_rollup(p).get("Rss", 0) for p in procs)
        log("")
        log(table(["density at the end", "value"], [
            ["instances launched", len(ids)],
            ["state 'running' (DescribeInstances)", len(running)],
            ["QEMU processes alive", len(procs)],
            ["consoles showing 'multi-user ready'", ready],
            ["MemAvailable before [2] / now (MiB)", f"{mib(mem_start)} / {mib(mem_end)}"],
            ["MemAvailable used per instance (MiB)", mib((mem_start - mem_end) / max(1, len(ids)))],
            ["sum of QEMU RSS (MiB)", mib(total_rss)],
            ["load average (1/5/15 min)", loadavg()],
            [f"host CPU busy (10 s sample, after {a.settle_secs:.0f} s idle)", f"{busy * 100:.0f}% of {os.cpu_count()} cores"],
            ["  all QEMU processes together", f"{sum(guest_cpu) * 100:.0f}% of a core"],
            ["  per idle QEMU (median / max)", f"{med(guest_cpu) * 100:.1f}% / {max(guest_cpu) * 100:.1f}% of a core"],
            ["  strato process", f"{strato_cpu * 100:.1f}% of a core"],
            ["console echo alive-42 (random guests)", f"{sum(1 for e in echoes if e[1])}/{len(echoes)} ok"],
        ]))
        log("console checks: " + ", ".join(f"{e[0]} {'ok' if e[1] else 'FAILED'} in {e[2]:.2f}s" for e in echoes))
        ok = len(running) == len(ids) and len(procs) == len(ids) and all(e[1] for e in echoes)
        self.targets.append((f"[3] density, idle {a.density_type}",
                             f"{len(ids)} launched, {len(running)} running, {sum(1 for e in echoes if e[1])}/{len(echoes)} consoles answered",
                             ">= 50, all running + responsive", len(ids) >= 50 and ok))
        log("")
        t = self.strato.terminate(ids, timeout=240)
        left = self.strato.our_qemu()
        zombies = zombie_children(self.strato.proc.pid)
        log(f"terminated all {len(ids)} in {t:.1f}s; QEMU processes of this run left: {len(left)}; "
            f"exited-but-unreaped (zombie) children of strato: {len(zombies)}")
        log("")

    # -- cleanup ------------------------------------------------------------------------

    def cleanup(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        for p in list(self.hand_procs):
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:  # noqa: BLE001
                pass
        s = self.strato
        if s and s.proc and s.proc.poll() is None:
            try:
                ids = [i for i, st in s.states(self.launched).items() if st != "terminated"] if self.launched else []
                if ids:
                    log(f"cleanup: terminating {len(ids)} instance(s)")
                    s.terminate(ids, timeout=90)
            except Exception as e:  # noqa: BLE001
                log(f"cleanup: terminate failed ({e}); killing QEMU directly")
        markers = ([s.data_dir + "/"] if s else []) + [d + "/" for d in self.tmp_dirs]
        for pid, cmd in qemu_procs().items():
            if any(m in cmd for m in markers) or "guest=vmbench-hand-" in cmd:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        time.sleep(0.5)
        for iid in self.launched:
            for h in ("/sys/fs/cgroup/cpu/strato", "/sys/fs/cgroup/memory/strato", "/sys/fs/cgroup/strato"):
                try:
                    os.rmdir(os.path.join(h, iid))
                except OSError:
                    pass
        left = {p: c for p, c in qemu_procs().items() if any(m in c for m in markers) or "guest=vmbench-hand-" in c}
        if s:
            s.stop()
            shutil.rmtree(s.data_dir, ignore_errors=True)
        for d in self.tmp_dirs:
            shutil.rmtree(d, ignore_errors=True)
        others = {p: c for p, c in qemu_procs().items() if p not in left}
        log(f"cleanup: strato stopped, temp dirs removed; QEMU processes of this run left: {len(left)}; "
            f"other sessions' QEMU processes running now (left alone): {len(others)}")

    # -- main -------------------------------------------------------------------------

    def run(self):
        a = self.a
        self.image_dir = os.path.join(a.images_dir, "strato-minimal")
        if not os.path.exists(os.path.join(self.image_dir, "root.qcow2")):
            raise RuntimeError(f"no built-in image in {self.image_dir}; run scripts/build-image.sh")
        self.unrelated_at_start = qemu_procs()
        self.strato = Strato(a.strato_bin, a.images_dir, a.stop_timeout).start()
        self.header()
        # Guest memory of the density type, from the catalog.
        r = self.strato.ec2.describe_instance_types(InstanceTypes=[a.density_type])
        self.guest_mib = r["InstanceTypes"][0]["MemoryInfo"]["SizeInMiB"]
        self.disk_size_arg = None
        t_start = mono()
        self.bench_launch()  # sets disk_size_arg (the root volume's size), used by [4]'s sized row
        self.bench_disks()
        self.bench_memory()
        self.bench_density()
        log("=" * 78)
        log("SUMMARY")
        log("=" * 78)
        rows_s, rows_h = self.results["launch"]
        per = self.results["memory"]
        res, cases = self.results["disk"]
        log(table(["measure", "result", "target", "met"], [
            ["[1] RunInstances -> 'init running' (median)", f"strato {ms(med([m['init'] for m in rows_s]))} ms / hand {ms(med([m['init'] for m in rows_h]))} ms", "", ""],
            ["[1] RunInstances -> 'multi-user ready' (median)", f"strato {ms(med([m['ready'] for m in rows_s]))} ms / hand {ms(med([m['ready'] for m in rows_h]))} ms", "", ""],
            ["[2] QEMU RSS / PSS per idle instance (median)", f"{mib(med([p['rss'] for p in per]))} / {mib(med([p['pss'] for p in per]))} MiB (guest RAM {self.guest_mib} MiB configured)", "", ""],
            ["[2] QEMU RSS beyond guest RAM (median)", f"{mib(med([p['nonram'] for p in per]))} MiB", "", ""],
            ["[1] RunInstances -> root volume's disk seen (median)", f"{ms(med([m['disk'] for m in rows_s]))} ms", "", ""],
        ] + [[t[0], t[1], t[2], "yes" if t[3] else "NO"] for t in self.targets]))
        log(f"total benchmark time: {mono() - t_start:.0f}s")
        return 0 if all(t[3] for t in self.targets) else 2


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strato-bin", default=os.path.join(ROOT, "target", "release", "strato"))
    p.add_argument("--images-dir", default="/tmp/strato-test-images")
    p.add_argument("--rounds", type=int, default=7, help="launch-overhead rounds (each: one Strato, one by-hand)")
    p.add_argument("--settle", type=float, default=1.0, help="seconds of quiet before each launch measurement")
    p.add_argument("--idle", type=int, default=10, help="idle instances for the memory measurement")
    p.add_argument("--idle-secs", type=float, default=10)
    p.add_argument("--density-type", default="t2.nano")
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--cap", type=int, default=100,
                   help="most instances in the density test (the MemAvailable guard usually stops it first)")
    p.add_argument("--settle-secs", type=float, default=20, help="idle time before the density CPU sample")
    p.add_argument("--batch-timeout", type=float, default=240)
    p.add_argument("--density-budget", type=float, default=360, help="no new batch after this many seconds")
    p.add_argument("--min-avail-gib", type=float, default=2)
    p.add_argument("--disk-reps", type=int, default=20)
    p.add_argument("--stop-timeout-secs", dest="stop_timeout", type=int, default=5)
    a = p.parse_args()
    if os.geteuid() != 0:
        log("vm_bench.py must run as root (Strato starts QEMU under unprivileged uids)")
        return 1
    bench = Bench(a)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    # Also SIGINT: a shell that starts this in the background hands it down ignored.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    rc = 1
    try:
        rc = bench.run()
    except KeyboardInterrupt as e:
        log(f"\ninterrupted ({e or 'Ctrl-C'}); cleaning up")
        rc = 130
    except Exception as e:  # noqa: BLE001
        import traceback
        log(f"\nbenchmark FAILED: {e}")
        log(traceback.format_exc())
        if bench.strato:
            log("strato log tail:\n" + bench.strato.log_tail())
        rc = 1
    finally:
        bench.cleanup()
    return rc


if __name__ == "__main__":
    sys.exit(main())
