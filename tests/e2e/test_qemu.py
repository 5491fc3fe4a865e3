"""Real virtual machines: `strato up --hypervisor tcg` driven through the EC2 API.

Needs qemu-system-x86_64 and the built-in image in $STRATO_IMAGES (scripts/test.sh builds
it). Guests are reached through their serial console socket, the same one
`strato console` attaches to.
"""

import re
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import DEFAULT_IMAGE, Strato, wait_for_state
from helpers import expect_code
from netns import Internet, keep_log_on_failure, remove_owned_namespaces

IMAGES = os.environ.get("STRATO_IMAGES", "/tmp/strato-test-images")


def qemu_pids():
    out = subprocess.run(["pgrep", "-f", "qemu-system-x86_64 -name guest="], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def qemu_pid_of(iid):
    out = subprocess.run(["pgrep", "-f", f"guest={iid},"], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    return pids[0] if pids else None


@pytest.fixture(scope="module")
def vm_strato(request):
    assert os.path.exists(os.path.join(IMAGES, "strato-minimal", "vmlinuz")), \
        f"no built-in image in {IMAGES}; run scripts/build-image.sh"
    # Instances get real networks; their uplinks lead into a namespace of this test's
    # own rather than into the host's.
    inet = Internet("qemu").create()
    s = Strato(hypervisor="tcg", extra_args=["--images-dir", IMAGES, "--stop-timeout-secs", "20",
                                             "--uplink-netns", inet.ns])
    # QEMU runs as unprivileged uids that must be able to enter the data directory.
    os.chmod(s.data_dir, 0o711)
    s.start()
    yield s
    try:
        ec2 = s.client()
        ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            wait_for_state(ec2, ids, "terminated", timeout=60)
    finally:
        s.stop()
        keep_log_on_failure(request, s, "qemu")
        for pid in qemu_pids():
            os.kill(pid, signal.SIGKILL)
        # Before the data directory goes: it lists the namespaces to remove.
        remove_owned_namespaces(s.data_dir)
        s.cleanup()
        inet.remove()


def console_text(ec2, iid):
    out = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", "")
    return out


def wait_console(ec2, iid, needle, count=1, timeout=120):
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = console_text(ec2, iid)
        if text.count(needle) >= count:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{needle!r} x{count} not in console of {iid}:\n{text[-3000:]}")


class Console:
    """The guest's serial console (a root shell), as `strato console` sees it."""

    def __init__(self, strato, iid):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(os.path.join(strato.data_dir, "vms", iid, "console.sock"))
        self.sock.settimeout(0.5)

    def run(self, command, timeout=30):
        """Types a command and returns what the guest printed up to its end marker.

        The marker is computed by the shell (`DONE-$((40+2))` prints `DONE-42`), so the
        echo of the typed line never matches it.
        """
        marker = "DONE-42"
        self.sock.sendall(command.encode() + b"; echo DONE-$((40+2))\n")
        seen = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                break
            seen += chunk
            if marker.encode() in seen:
                return seen.decode(errors="replace")
        raise AssertionError(f"{marker!r} not seen after {command!r}: {seen[-2000:]!r}")

    def close(self):
        self.sock.close()


def launch(ec2, n=1, **kw):
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.nano", MinCount=n, MaxCount=n, **kw)
    return [i["InstanceId"] for i in r["Instances"]]


def test_boot_marker_disk_persistence_and_reboot(vm_strato):
    ec2 = vm_strato.client()
    (iid,) = launch(ec2)
    wait_for_state(ec2, [iid], "running", timeout=30)
    wait_console(ec2, iid, "strato-minimal: multi-user ready")
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["KernelId"].startswith("aki-") and inst["RamdiskId"].startswith("ari-")

    con = Console(vm_strato, iid)
    con.run("echo strato-was-here > /root/proof && sync")
    con.close()

    ec2.stop_instances(InstanceIds=[iid])
    wait_for_state(ec2, [iid], "stopped", timeout=60)
    assert qemu_pid_of(iid) is None, "a stopped instance has no QEMU process"
    ec2.start_instances(InstanceIds=[iid])
    wait_for_state(ec2, [iid], "running", timeout=30)
    wait_console(ec2, iid, "strato-minimal: boot 2")
    con = Console(vm_strato, iid)
    out = con.run("cat /root/proof")
    assert "strato-was-here" in out.split("DONE-$((40+2))", 1)[-1]
    con.close()

    pid = qemu_pid_of(iid)
    ec2.reboot_instances(InstanceIds=[iid])
    wait_console(ec2, iid, "strato-minimal: boot 3", timeout=120)
    assert qemu_pid_of(iid) == pid, "a reboot keeps the same VM process"
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_terminate_leaves_nothing_behind(vm_strato):
    ec2 = vm_strato.client()
    (iid,) = launch(ec2)
    wait_for_state(ec2, [iid], "running", timeout=30)
    vm_dir = os.path.join(vm_strato.data_dir, "vms", iid)
    assert os.path.isdir(vm_dir) and qemu_pid_of(iid)
    # Sandboxed: seccomp flags, an unprivileged uid of its own, a private directory,
    # and a cgroup sized to t3.nano (2 vCPUs, 512 MiB + QEMU's allowance).
    pid = qemu_pid_of(iid)
    args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    assert b"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" in args
    uid = int([l for l in open(f"/proc/{pid}/status") if l.startswith("Uid:")][0].split()[1])
    if os.geteuid() == 0:
        assert uid >= 900000
        st = os.stat(vm_dir)
        assert st.st_uid == uid and (st.st_mode & 0o077) == 0
        limits = {
            "/sys/fs/cgroup/memory/strato/%s/memory.limit_in_bytes" % iid: str((512 + 256) * 1024 * 1024),
            "/sys/fs/cgroup/cpu/strato/%s/cpu.cfs_quota_us" % iid: "200000",
            "/sys/fs/cgroup/strato/%s/memory.max" % iid: str((512 + 256) * 1024 * 1024),
            "/sys/fs/cgroup/strato/%s/cpu.max" % iid: "200000 100000",
        }
        present = {p: v for p, v in limits.items() if os.path.exists(p)}
        assert present, "the VM has a cgroup"
        for path, want in present.items():
            assert open(path).read().strip() == want, path
        procs = [p for p in present if "memory" in p][0].rsplit("/", 1)[0] + "/cgroup.procs"
        assert str(pid) in open(procs).read().split()
    ec2.terminate_instances(InstanceIds=[iid])
    wait_for_state(ec2, [iid], "terminated", timeout=60)
    assert qemu_pid_of(iid) is None
    assert not os.path.exists(vm_dir)
    for hierarchy in ["/sys/fs/cgroup/strato", "/sys/fs/cgroup/cpu/strato", "/sys/fs/cgroup/memory/strato"]:
        assert not os.path.exists(os.path.join(hierarchy, iid))


def test_guest_poweroff_follows_shutdown_behaviour(vm_strato):
    ec2 = vm_strato.client()
    (stop_id,) = launch(ec2)
    (term_id,) = launch(ec2, InstanceInitiatedShutdownBehavior="terminate")
    for iid in (stop_id, term_id):
        wait_console(ec2, iid, "strato-minimal: multi-user ready")
        con = Console(vm_strato, iid)
        con.run("sync")
        con.sock.sendall(b"poweroff\n")
        # Stay connected until the guest has taken the line.
        time.sleep(1)
        con.close()
    wait_for_state(ec2, [stop_id], "stopped", timeout=60)
    wait_for_state(ec2, [term_id], "terminated", timeout=60)
    reason = ec2.describe_instances(InstanceIds=[stop_id])["Reservations"][0]["Instances"][0]["StateReason"]
    assert reason["Code"] == "Client.InstanceInitiatedShutdown"


def test_killed_qemu_leaves_instance_stopped_with_reason(vm_strato):
    ec2 = vm_strato.client()
    (iid,) = launch(ec2)
    wait_for_state(ec2, [iid], "running", timeout=30)
    os.kill(qemu_pid_of(iid), signal.SIGKILL)
    wait_for_state(ec2, [iid], "stopped", timeout=30)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["StateReason"]["Code"] == "Server.InternalError"
    ec2.start_instances(InstanceIds=[iid])
    wait_for_state(ec2, [iid], "running", timeout=30)


def test_kill_strato_keeps_vms_running_and_readopts(vm_strato):
    ec2 = vm_strato.client()
    (iid,) = launch(ec2)
    wait_for_state(ec2, [iid], "running", timeout=30)
    pid = qemu_pid_of(iid)
    vm_strato.stop(sig=signal.SIGKILL)
    assert qemu_pid_of(iid) == pid, "QEMU outlives Strato"
    vm_strato.start()
    ec2 = vm_strato.client()
    wait_for_state(ec2, [iid], "running", timeout=30)
    time.sleep(2)
    assert qemu_pid_of(iid) == pid, "the VM was adopted, not restarted"
    ec2.stop_instances(InstanceIds=[iid], Force=True)
    wait_for_state(ec2, [iid], "stopped", timeout=30)


def test_run_eight_at_once(vm_strato):
    ec2 = vm_strato.client()
    ids = launch(ec2, 8)
    wait_for_state(ec2, ids, "running", timeout=60)
    for iid in ids:
        wait_console(ec2, iid, "strato-minimal: init running", timeout=240)
    ec2.terminate_instances(InstanceIds=ids)
    wait_for_state(ec2, ids, "terminated", timeout=120)


def test_kill_strato_while_launching_then_restart(vm_strato):
    ec2 = vm_strato.client()
    ids = launch(ec2, 2)
    vm_strato.stop(sig=signal.SIGKILL)
    vm_strato.start()
    ec2 = vm_strato.client()
    wait_for_state(ec2, ids, "running", timeout=60)
    for iid in ids:
        pids = subprocess.run(["pgrep", "-f", f"guest={iid},"], capture_output=True, text=True).stdout.split()
        assert len(pids) == 1, f"{iid} has {len(pids)} QEMU processes"
    known = {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    on_disk = set(os.listdir(os.path.join(vm_strato.data_dir, "vms")))
    assert on_disk <= known, f"orphaned VM directories: {on_disk - known}"
    ec2.terminate_instances(InstanceIds=ids)
    wait_for_state(ec2, ids, "terminated", timeout=60)


def test_host_restart_starts_what_should_run(vm_strato):
    """A host crash is simulated by killing Strato and QEMU and changing the boot id the
    VM was started under: the instance that should run is started again, the stopped
    one stays stopped."""
    import json
    ec2 = vm_strato.client()
    run_id, stop_id = launch(ec2, 2)
    wait_for_state(ec2, [run_id, stop_id], "running", timeout=30)
    ec2.stop_instances(InstanceIds=[stop_id], Force=True)
    wait_for_state(ec2, [stop_id], "stopped", timeout=30)
    wait_console(ec2, run_id, "strato-minimal: init running")
    old_pid = qemu_pid_of(run_id)
    vm_strato.stop(sig=signal.SIGKILL)
    os.kill(old_pid, signal.SIGKILL)
    for iid in (run_id, stop_id):
        path = os.path.join(vm_strato.data_dir, "vms", iid, "vm.json")
        rec = json.load(open(path))
        rec["host_boot_id"] = "a-previous-boot"
        json.dump(rec, open(path, "w"))
    vm_strato.start()
    ec2 = vm_strato.client()
    wait_for_state(ec2, [run_id], "running", timeout=30)
    deadline = time.time() + 30
    while qemu_pid_of(run_id) in (None, old_pid) and time.time() < deadline:
        time.sleep(0.2)
    assert qemu_pid_of(run_id) not in (None, old_pid), "the instance was started again"
    # A second boot in the same console log (the guest's own boot counter may not have
    # reached the disk before the simulated power loss, as on a real crash).
    wait_console(ec2, run_id, "strato-minimal: init running", count=2)
    time.sleep(2)
    assert ec2.describe_instances(InstanceIds=[stop_id])["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped"
    assert qemu_pid_of(stop_id) is None


def test_strato_console_and_status(vm_strato):
    from conftest import STRATO_BIN
    ec2 = vm_strato.client()
    (iid,) = launch(ec2)
    wait_console(ec2, iid, "strato-minimal: multi-user ready")
    out = subprocess.run(
        [STRATO_BIN, "console", iid, "--data-dir", vm_strato.data_dir],
        input="echo console-$((6*7))\n", capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "console-42" in out.stdout
    # Detaching left the guest running and the console usable.
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    status = subprocess.run([STRATO_BIN, "status", "--data-dir", vm_strato.data_dir], capture_output=True, text=True)
    assert "qemu/tcg" in status.stdout and "running" in status.stdout
    missing = subprocess.run([STRATO_BIN, "console", "i-0000000000000000f", "--data-dir", vm_strato.data_dir],
                             capture_output=True, text=True, input="")
    assert missing.returncode != 0 and "no live console" in missing.stderr


def test_cpu_options_are_the_guests_real_topology(vm_strato):
    # t3.nano: 2 vCPUs, by default one core with two threads; CpuOptions can ask for
    # one core with one thread, and the guest's kernel sees exactly that.
    ec2 = vm_strato.client()
    (default,) = launch(ec2)
    (single,) = launch(ec2, CpuOptions={"CoreCount": 1, "ThreadsPerCore": 1})
    seen = {}
    for iid in (default, single):
        wait_console(ec2, iid, "strato-minimal: multi-user ready")
        c = Console(vm_strato, iid)
        try:
            out = c.run("echo cpus=$(grep -c ^processor /proc/cpuinfo)"
                        " siblings=$(cat /sys/devices/system/cpu/cpu0/topology/thread_siblings_list)")
        finally:
            c.close()
        seen[iid] = re.findall(r"cpus=(\d+) siblings=(\S+)", out)[-1]
    assert seen[default] == ("2", "0-1"), seen
    assert seen[single] == ("1", "0"), seen
    assert ec2.describe_instances(InstanceIds=[single])["Reservations"][0]["Instances"][0]["CpuOptions"] == \
        {"CoreCount": 1, "ThreadsPerCore": 1}
    ec2.terminate_instances(InstanceIds=[default, single])


def png_pixels(data):
    """(width, height, raw scanlines) of a PNG, read with the standard library only."""
    import struct
    import zlib
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


def test_console_screenshot_is_the_guests_display(vm_strato):
    import base64
    ec2 = vm_strato.client()
    (iid,) = launch(ec2)
    wait_for_state(ec2, [iid], "running", timeout=30)
    wait_console(ec2, iid, "strato-minimal: multi-user ready")
    r = ec2.get_console_screenshot(InstanceId=iid, WakeUp=True)
    assert r["InstanceId"] == iid
    width, height, raw = png_pixels(base64.b64decode(r["ImageData"]))
    # The VGA text console the firmware wrote on (80×25 cells of 9×16 pixels).
    assert (width, height) == (720, 400), (width, height)
    assert len(set(raw)) > 2, "the screen is blank: the firmware's text is missing"
    expect_code("DryRunOperation", ec2.get_console_screenshot, InstanceId=iid, DryRun=True)
    ec2.stop_instances(InstanceIds=[iid], Force=True)
    wait_for_state(ec2, [iid], "stopped", timeout=60)
    expect_code("IncorrectInstanceState", ec2.get_console_screenshot, InstanceId=iid)
    ec2.terminate_instances(InstanceIds=[iid])
