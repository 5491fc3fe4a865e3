"""Network namespaces for end-to-end tests: the test's own "internet", and commands
run inside namespaces. Everything a test creates here is removed by its fixture,
even when the test fails; traffic goes only to addresses inside these namespaces or
to the VPC namespaces of the Strato the test started."""

import json
import os
import signal
import subprocess
import time

INET_ADDR = "203.0.113.1"

# Answers every HTTP request with the client's address: proves what source address
# reached the "internet" (the NATed public address).
WHOAMI_SERVER = r"""
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (self.client_address[0] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("0.0.0.0", 8080), H).serve_forever()
"""


def sh(*cmd, check=True, timeout=60, input=None):
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr}{out.stdout}")
    return out


def in_ns(ns, *cmd, check=False, timeout=60):
    return sh("ip", "netns", "exec", ns, *cmd, check=check, timeout=timeout)


def namespaces():
    return set(l.split()[0] for l in sh("ip", "netns", "list").stdout.splitlines() if l.strip())


class Internet:
    """A namespace standing in for the internet: one address (203.0.113.1) with a
    `whoami` HTTP server on port 8080. Strato's VPC uplinks lead here
    (`strato up --uplink-netns`)."""

    def __init__(self, tag):
        self.ns = f"stinet-{tag}-{os.getpid()}"
        self.server = None

    def create(self):
        sh("ip", "netns", "add", self.ns)
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")
        sh("ip", "-n", self.ns, "addr", "add", f"{INET_ADDR}/32", "dev", "lo")
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "python3", "-c", WHOAMI_SERVER],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def remove(self):
        if self.server:
            self.server.kill()
            self.server.wait()
        sh("ip", "netns", "del", self.ns, check=False)

    def run(self, *cmd, check=False, timeout=60):
        return in_ns(self.ns, *cmd, check=check, timeout=timeout)

    def tcp_open(self, addr, port, timeout=1.5):
        code = (f"import socket\ns=socket.create_connection(('{addr}',{port}),timeout={timeout})\n"
                f"s.settimeout({timeout})\nprint(s.recv(64))")
        return self.run("python3", "-c", code, timeout=timeout + 10).returncode == 0

    def ssh(self, key, addr, command, user="ec2-user", timeout=30):
        """The README's ssh command, run from inside this namespace."""
        return self.run(
            "ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
            f"{user}@{addr}", command, timeout=timeout)

    def wait_ssh(self, key, addr, timeout=180, user="ec2-user"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.ssh(key, addr, "echo ok", user=user)
            if last.returncode == 0 and "ok" in last.stdout:
                return
            time.sleep(1)
        raise AssertionError(f"ssh {user}@{addr} never worked: {last.stderr if last else ''}")


def owned_namespaces(data_dir):
    """The VPC namespaces a Strato data directory's agent has created."""
    try:
        with open(os.path.join(data_dir, "net", "owned.json")) as f:
            return set(json.load(f))
    except OSError:
        return set()


def remove_owned_namespaces(data_dir):
    """Last-resort cleanup after a failed test: the namespaces and the dnsmasq
    processes a Strato data directory's agent left behind."""
    # (No leading dashes in the pattern: pkill would take it for an option.)
    sh("pkill", "-f", f"{os.path.join(data_dir, 'net')}/", check=False)
    for ns in owned_namespaces(data_dir):
        sh("ip", "netns", "del", ns, check=False)


def keep_log_on_failure(request, strato, name):
    """When a test of the session failed, copies the server's log where CI output
    points to it (the data directory itself is removed)."""
    if request.session.testsfailed:
        os.makedirs("/tmp/strato-e2e-logs", exist_ok=True)
        dest = f"/tmp/strato-e2e-logs/{name}-{os.getpid()}.log"
        with open(dest, "w") as f:
            f.write(strato.read_log())
        print(f"strato log kept in {dest}")


def vm_processes(data_dir):
    """The QEMU processes of a Strato data directory's VMs."""
    out = subprocess.run(["pgrep", "-f", f"{data_dir}/vms/"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def real_vm_strato(request, tag, inet, stop_timeout=20):
    """A generator for module fixtures: `strato up --hypervisor tcg` whose VPC uplinks
    lead into `inet`; yields the running Strato. Afterwards, whatever happened:
    every instance terminated, the server stopped (its log kept if a test failed),
    leftover QEMU processes killed, namespaces and data directory removed, `inet` too."""
    from conftest import Strato, wait_for_state
    images = os.environ.get("STRATO_IMAGES", "/tmp/strato-test-images")
    s = Strato(hypervisor="tcg", extra_args=["--images-dir", images, "--stop-timeout-secs",
                                             str(stop_timeout), "--uplink-netns", inet.ns])
    # QEMU runs as unprivileged uids that must be able to enter the data directory.
    os.chmod(s.data_dir, 0o711)
    try:
        s.start()
        yield s
    finally:
        try:
            ec2 = s.client()
            ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
                   if i["State"]["Name"] != "terminated"]
            if ids:
                ec2.terminate_instances(InstanceIds=ids)
                wait_for_state(ec2, ids, "terminated", timeout=90)
        except Exception:
            pass
        s.stop()
        keep_log_on_failure(request, s, tag)
        for pid in vm_processes(s.data_dir):
            os.kill(pid, signal.SIGKILL)
        remove_owned_namespaces(s.data_dir)
        s.cleanup()
        inet.remove()
