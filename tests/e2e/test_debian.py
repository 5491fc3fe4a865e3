"""A stock Debian 12 cloud image on real VMs.

The image is built from Debian's packages by scripts/build-debian-image.sh (debootstrap
with cloud-init, openssh-server, the cloud kernel, growpart and GRUB, the packages'
configuration as shipped) and imported with ImportImage, as an operator would import
Debian's own genericcloud image. Under `strato up --hypervisor tcg`, the instance boots
through OVMF and GRUB, cloud-init detects EC2 from the platform's identity and reads
the metadata service, and then:

- SSH works as Debian's default user `debian` with the key from CreateKeyPair, and as a
  user that the #cloud-config user data adds;
- `write_files` and `runcmd` of the user data took effect;
- the hostname is the instance's private DNS name;
- the root file system was grown to the 4 GiB root volume.
"""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import wait_for_state
from netns import Internet, real_vm_strato

IMAGES = os.environ.get("STRATO_IMAGES", "/tmp/strato-test-images")
DISK = os.path.join(IMAGES, "debian-12", "disk.raw")


@pytest.fixture(scope="module")
def world(request, tmp_path_factory):
    assert os.path.exists(DISK), f"no {DISK}: run scripts/build-debian-image.sh"
    inet = Internet("deb").create()
    for s in real_vm_strato(request, "debian", inet):
        yield s, inet, tmp_path_factory.mktemp("debian-keys")


def import_debian(ec2):
    # No BootMode: the disk's partitions (an EFI system partition, nothing for a BIOS)
    # make it uefi.
    tid = ec2.import_image(Description="Debian 12 (bookworm) with cloud-init",
                           DiskContainers=[{"Format": "RAW", "Url": DISK}])["ImportTaskId"]
    deadline = time.time() + 300
    while (t := ec2.describe_import_image_tasks(ImportTaskIds=[tid])["ImportImageTasks"][0])["Status"] != "completed":
        assert t["Status"] == "active" and time.time() < deadline, t
        time.sleep(1)
    return t["ImageId"]


CLOUD_CONFIG = """#cloud-config
users:
  - default
  - name: alice
    shell: /bin/bash
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys:
      - {key}
write_files:
  - path: /etc/strato/greeting.txt
    content: |
      written by cloud-init from user data
    permissions: "0640"
runcmd:
  - [sh, -c, "echo ran-as-$(id -un) > /var/tmp/runcmd-marker"]
"""


def test_a_stock_debian_cloud_image_boots_runs_its_user_data_and_takes_ssh(world):
    s, inet, key_dir = world
    ec2 = s.client()
    ami = import_debian(ec2)
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["BootMode"] == "uefi" and img["State"] == "available", img
    root_device = img["RootDeviceName"]

    k = ec2.create_key_pair(KeyName="debian-key")
    key = os.path.join(key_dir, "debian-key.pem")
    with open(key, "w") as f:
        f.write(k["KeyMaterial"])
    os.chmod(key, 0o600)
    pub = subprocess.run(["ssh-keygen", "-y", "-f", key], capture_output=True, text=True,
                         check=True).stdout.strip()

    vpc = [v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]][0]["VpcId"]
    sg = ec2.create_security_group(GroupName="debian-ssh", Description="ssh", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1,
                          KeyName="debian-key", SecurityGroupIds=[sg],
                          UserData=CLOUD_CONFIG.format(key=pub),
                          BlockDeviceMappings=[{"DeviceName": root_device,
                                                "Ebs": {"VolumeSize": 4, "VolumeType": "gp3"}}])
    iid = r["Instances"][0]["InstanceId"]
    wait_for_state(ec2, [iid], "running", timeout=60)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    addr = inst["PublicIpAddress"]

    inet.wait_ssh(key, addr, timeout=900, user="debian")
    run = lambda cmd, user="debian", timeout=60: inet.ssh(key, addr, cmd, user=user, timeout=timeout)

    # SSH opens before cloud-init's last stage (runcmd) is done: wait for it, as one
    # does on EC2. It finished without errors (no module failed).
    out = run("sudo -n cloud-init status --wait >/dev/null; sudo -n cloud-init status; "
              "sudo -n cat /run/cloud-init/result.json", timeout=600)
    assert out.stdout.startswith("status: done"), out.stdout + out.stderr
    result = json.loads(out.stdout.split("\n", 1)[1])["v1"]
    assert result["errors"] == [] and result["datasource"].startswith("DataSourceEc2"), result

    out = run("hostname; id -un; sudo -n cat /etc/strato/greeting.txt; "
              "stat -c %a /etc/strato/greeting.txt; cat /var/tmp/runcmd-marker")
    assert out.returncode == 0, out.stderr
    # sudo looks its host name up: the VPC's resolver knows it.
    assert "unable to resolve host" not in out.stderr, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "ip-" + inst["PrivateIpAddress"].replace(".", "-"), lines
    assert lines[1] == "debian"
    assert lines[2] == "written by cloud-init from user data"
    assert lines[3] == "640"
    assert lines[4] == "ran-as-root"
    out = run("getent hosts $(hostname).ec2.internal; grep -c '^search ec2.internal' /etc/resolv.conf")
    assert out.stdout.split() == [inst["PrivateIpAddress"], inst["PrivateDnsName"], "1"], out.stdout

    # The user the user data added, with its own key line and sudo rule.
    out = run("id -un; sudo -n id -un", user="alice")
    assert out.stdout.split() == ["alice", "root"], (out.stdout, out.stderr)

    # Grown to the 4 GiB volume: the partition by growpart, the file system by resize2fs.
    out = run("df -B1 --output=size / | tail -1; lsblk -bdno SIZE /dev/vda")
    fs, disk = (int(x) for x in out.stdout.split())
    assert disk == 4 << 30, out.stdout
    assert fs > 3.5 * (1 << 30), f"root file system not grown: {fs} bytes"

    # cloud-init identified EC2 and read the metadata service (IMDSv2 token first).
    out = run("cloud-id; sudo -n cat /run/cloud-init/instance-data.json | python3 -c "
              "'import json,sys; d=json.load(sys.stdin)[\"v1\"]; print(d[\"instance_id\"], d[\"region\"])'; "
              "sudo -n grep -c \"Using metadata source: 'http://169.254.169.254'\" "
              "/var/log/cloud-init.log")
    lines = out.stdout.splitlines()
    assert lines[0] == "aws", out.stdout
    assert lines[1] == f"{iid} us-east-1", out.stdout
    assert int(lines[2]) >= 1, out.stdout
    # Before it reads the metadata service, cloud-init checks each candidate address
    # (169.254.169.254, [fd00:ec2::254], instance-data.) with DNS lookups: none may wait
    # on a dead address or nameserver (a timeout costs 5 s and more, per lookup).
    out = run("sudo -n grep -o 'Resolving URL: .* took [0-9.]* seconds' /var/log/cloud-init.log")
    waits = {m[0]: float(m[1]) for m in re.findall(r"Resolving URL: (\S+) took ([0-9.]+) seconds", out.stdout)}
    assert "http://[fd00:ec2::254]" in waits and all(t < 3 for t in waits.values()), waits

    ec2.terminate_instances(InstanceIds=[iid])
    wait_for_state(ec2, [iid], "terminated", timeout=120)
    ec2.deregister_image(ImageId=ami, DeleteAssociatedSnapshots=True)
