"""The VPC dataplane with real VMs and real packets.

`strato up --hypervisor tcg --uplink-netns <ns>` runs guests of the built-in image in
VPC namespaces; the test's own namespace plays the internet (see netns.py). Covers:
SSH with a key from CreateKeyPair (the README's command), default-deny inbound,
rules applied to running instances, security-group references, VPC isolation with
overlapping CIDRs, the metadata service from inside guests (IMDSv1/v2, tokens bound to
their instance, HttpTokens=required, the hop limit), Elastic IPs and outbound NAT,
an agent restart, and a clean host after terminate.
"""

import os
import re
import subprocess
import time

import pytest

from conftest import DEFAULT_IMAGE, wait_for_state
from netns import INET_ADDR, Internet, in_ns, namespaces, owned_namespaces, real_vm_strato, sh

IMAGES = os.environ.get("STRATO_IMAGES", "/tmp/strato-test-images")


def qemu_pids(data_dir):
    out = subprocess.run(["pgrep", "-f", f"{data_dir}/vms/"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


@pytest.fixture(scope="module")
def world(tmp_path_factory, request):
    assert os.path.exists(os.path.join(IMAGES, "strato-minimal", "vmlinuz")), \
        f"no built-in image in {IMAGES}; run scripts/build-image.sh"
    inet = Internet("dp").create()
    for s in real_vm_strato(request, "dataplane", inet, stop_timeout=10):
        yield s, inet, tmp_path_factory.mktemp("keys")


def save_key(ec2, key_dir, name):
    k = ec2.create_key_pair(KeyName=name)
    path = os.path.join(key_dir, f"{name}.pem")
    with open(path, "w") as f:
        f.write(k["KeyMaterial"])
    os.chmod(path, 0o600)
    return path


def describe(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def group(ec2, vpc, name, ingress=()):
    gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    if ingress:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=list(ingress))
    return gid


def ssh22(cidr="0.0.0.0/0"):
    return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": cidr}]}


def launch(ec2, key, groups, subnet, **kw):
    r = ec2.run_instances(ImageId=DEFAULT_IMAGE, InstanceType="t3.nano", MinCount=1, MaxCount=1,
                          KeyName=key, SecurityGroupIds=groups, SubnetId=subnet, **kw)
    return r["Instances"][0]["InstanceId"]


@pytest.fixture(scope="module")
def fleet(world):
    """Three instances in the default VPC: `web` (no inbound rule yet), and `client`
    and `other` (SSH open), each with a public address."""
    s, inet, key_dir = world
    ec2 = s.client()
    key = save_key(ec2, key_dir, "dp-key")
    vpc = [v for v in ec2.describe_vpcs()["Vpcs"] if v["IsDefault"]][0]["VpcId"]
    subnet = sorted(ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"],
                    key=lambda x: x["AvailabilityZone"])[0]["SubnetId"]
    web = group(ec2, vpc, "web")
    client = group(ec2, vpc, "client", [ssh22()])
    other = group(ec2, vpc, "other", [ssh22()])
    ids = {name: launch(ec2, "dp-key", [g], subnet) for name, g in
           [("web", web), ("client", client), ("other", other)]}
    wait_for_state(ec2, list(ids.values()), "running", timeout=60)
    info = {name: describe(ec2, iid) for name, iid in ids.items()}
    for name in ("client", "other"):
        inet.wait_ssh(key, info[name]["PublicIpAddress"])
    return {"ec2": ec2, "key": key, "vpc": vpc, "subnet": subnet, "ids": ids, "info": info,
            "groups": {"web": web, "client": client, "other": other}}


def test_instances_show_addresses_and_get_their_hostname_by_dhcp(world, fleet):
    s, inet, _ = world
    c = fleet["info"]["client"]
    assert c["PrivateIpAddress"].startswith("172.31.")
    assert re.match(r"^198\.51\.100\.\d+$", c["PublicIpAddress"])
    eni = c["NetworkInterfaces"][0]
    assert eni["PrivateIpAddress"] == c["PrivateIpAddress"]
    out = inet.ssh(fleet["key"], c["PublicIpAddress"], "hostname; id -un; ip -4 addr show eth0")
    assert out.returncode == 0, out.stderr
    expected = "ip-" + c["PrivateIpAddress"].replace(".", "-")
    assert out.stdout.splitlines()[0].startswith(expected)
    assert out.stdout.splitlines()[1] == "ec2-user"
    assert c["PrivateIpAddress"] in out.stdout
    assert eni["MacAddress"].lower() in inet.ssh(fleet["key"], c["PublicIpAddress"],
                                                   "cat /sys/class/net/eth0/address").stdout


def test_the_readme_ssh_command_logs_in(world, fleet):
    """The README's own command, as typed there (it remembers the host key in root's
    known_hosts, so the entry is removed before and after)."""
    s, inet, _ = world
    addr = fleet["info"]["client"]["PublicIpAddress"]
    sh("ssh-keygen", "-R", addr, check=False)
    try:
        out = inet.run("sh", "-c", f"ssh -i {fleet['key']} -o StrictHostKeyChecking=accept-new "
                                   f"ec2-user@{addr} hostname </dev/null", timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "ip-" + fleet["info"]["client"]["PrivateIpAddress"].replace(".", "-")
    finally:
        sh("ssh-keygen", "-R", addr, check=False)


def test_no_inbound_rule_means_closed_and_a_new_rule_opens_it(world, fleet):
    s, inet, _ = world
    ec2, web = fleet["ec2"], fleet["info"]["web"]
    addr = web["PublicIpAddress"]
    # Booted (its SSH server is up, seen on the console) but unreachable: no rule.
    deadline = time.time() + 120
    while "ssh ready" not in ec2.get_console_output(InstanceId=web["InstanceId"]).get("Output", ""):
        assert time.time() < deadline, "web never started its SSH server"
        time.sleep(1)
    assert not inet.tcp_open(addr, 22)
    ec2.authorize_security_group_ingress(GroupId=fleet["groups"]["web"], IpPermissions=[ssh22()])
    start = time.time()
    while not inet.tcp_open(addr, 22, timeout=0.5):
        assert time.time() - start < 10, "the new rule was not applied"
    out = inet.ssh(fleet["key"], addr, "hostname")
    assert out.returncode == 0 and out.stdout.startswith("ip-172-31-"), out.stderr


def test_a_group_reference_admits_only_its_members(world, fleet):
    s, inet, _ = world
    ec2, g, info, key = fleet["ec2"], fleet["groups"], fleet["info"], fleet["key"]
    ec2.revoke_security_group_ingress(GroupId=g["web"], IpPermissions=[ssh22()])
    ec2.authorize_security_group_ingress(GroupId=g["web"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": g["client"]}]}])
    web_private = info["web"]["PrivateIpAddress"]
    probe = f"echo | nc -w 3 {web_private} 22 | head -c 16"

    def banner(name):
        return inet.ssh(key, info[name]["PublicIpAddress"], probe).stdout

    deadline = time.time() + 10
    while "SSH-2.0" not in banner("client"):
        assert time.time() < deadline, "a member of the referenced group must get in"
    assert "SSH-2.0" not in banner("other"), "a non-member must not"
    assert not inet.tcp_open(info["web"]["PublicIpAddress"], 22), "the internet rule is gone"


IMDS = "169.254.169.254"


def imds_put_token(ttl=60, extra=""):
    return (f"printf 'PUT /latest/api/token HTTP/1.0\\r\\nX-aws-ec2-metadata-token-ttl-seconds: {ttl}\\r\\n"
            f"{extra}\\r\\n' | nc -w 5 {IMDS} 80 | tail -n 1")


def imds_get(path, token=None):
    hdr = f"X-aws-ec2-metadata-token: {token}\\r\\n" if token else ""
    return f"printf 'GET {path} HTTP/1.0\\r\\n{hdr}\\r\\n' | nc -w 5 {IMDS} 80"


def test_metadata_service_from_inside_the_guest(world, fleet):
    s, inet, _ = world
    ec2, info, key = fleet["ec2"], fleet["info"], fleet["key"]
    c_ip = info["client"]["PublicIpAddress"]
    run = lambda cmd, ip=c_ip: inet.ssh(key, ip, cmd).stdout
    token = run(imds_put_token()).strip()
    assert len(token) > 20, token
    doc = run(imds_get("/latest/meta-data/instance-id", token))
    assert doc.startswith("HTTP/1.0 200") or " 200 " in doc.splitlines()[0], doc
    assert doc.rstrip().endswith(info["client"]["InstanceId"])
    # v1 works by default, and the guest sees its own key and addresses.
    assert run(f"wget -q -O - http://{IMDS}/latest/meta-data/local-ipv4") == info["client"]["PrivateIpAddress"]
    pub = run(f"wget -q -O - http://{IMDS}/latest/meta-data/public-keys/0/openssh-key")
    assert pub.startswith("ssh-rsa ")
    assert run(f"wget -q -O - http://{IMDS}/latest/dynamic/instance-identity/document").count(
        info["client"]["InstanceId"]) == 1
    # A token is good only for the instance that asked for it.
    other_token = run(imds_put_token(), ip=info["other"]["PublicIpAddress"]).strip()
    assert " 401 " in run(imds_get("/latest/meta-data/instance-id", other_token)).splitlines()[0]
    # X-Forwarded-For on a token request is refused.
    assert " 403 " in run(imds_put_token(extra="X-Forwarded-For: 1.2.3.4\\r\\n").replace(
        "| tail -n 1", "| head -n 1"))
    # HttpTokens=required: IMDSv1 answers 401, v2 still works.
    ec2.modify_instance_metadata_options(InstanceId=info["client"]["InstanceId"], HttpTokens="required")
    assert " 401 " in run(imds_get("/latest/meta-data/instance-id")).splitlines()[0]
    assert run(imds_get("/latest/meta-data/instance-id", token)).rstrip().endswith(info["client"]["InstanceId"])
    # HttpEndpoint=disabled: nothing is served.
    ec2.modify_instance_metadata_options(InstanceId=info["client"]["InstanceId"], HttpEndpoint="disabled")
    assert " 200 " not in (run(imds_get("/latest/meta-data/instance-id", token)).splitlines() or [""])[0]
    ec2.modify_instance_metadata_options(InstanceId=info["client"]["InstanceId"], HttpEndpoint="enabled",
                                         HttpTokens="optional")


def test_token_responses_carry_the_hop_limit_as_their_ttl(world, fleet):
    """The token's PUT response leaves the metadata service with IP TTL = hop limit,
    so a container one hop further in the guest never gets it. Counted on the wire by
    nftables in the VPC namespace."""
    s, inet, _ = world
    ec2, info, key = fleet["ec2"], fleet["info"], fleet["key"]
    ns = f"strato-{fleet['vpc']}"
    guest = info["other"]["PrivateIpAddress"]
    rules = (f"table inet strato_test {{\n chain out {{\n  type filter hook output priority 0;\n"
             f"  ip daddr {guest} tcp sport 80 ip ttl 1 counter\n"
             f"  ip daddr {guest} tcp sport 80 ip ttl 3 counter\n }}\n}}\n")
    sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=rules)
    try:
        def counts():
            text = in_ns(ns, "nft", "list", "table", "inet", "strato_test", check=True).stdout
            return [int(x) for x in re.findall(r"counter packets (\d+)", text)]

        run = lambda cmd: inet.ssh(key, info["other"]["PublicIpAddress"], cmd).stdout
        assert len(run(imds_put_token()).strip()) > 20
        ttl1, ttl3 = counts()
        assert ttl1 > 0 and ttl3 == 0, (ttl1, ttl3)
        ec2.modify_instance_metadata_options(InstanceId=info["other"]["InstanceId"], HttpPutResponseHopLimit=3)
        assert len(run(imds_put_token()).strip()) > 20
        assert counts()[1] > 0
    finally:
        in_ns(ns, "nft", "delete", "table", "inet", "strato_test")


@pytest.fixture(scope="module")
def twin_vpcs(world, fleet):
    """Two VPCs with the same CIDR, each with a gateway and one instance."""
    s, inet, _ = world
    ec2 = fleet["ec2"]
    out = []
    for n, ip in ((1, "10.77.1.10"), (2, "10.77.1.11")):
        vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24")["Subnet"]["SubnetId"]
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        rt = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]
        ec2.create_route(RouteTableId=rt["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        sg = group(ec2, vpc, f"open{n}", [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        iid = launch(ec2, "dp-key", [sg], subnet, PrivateIpAddress=ip)
        out.append({"vpc": vpc, "id": iid, "ip": ip})
    wait_for_state(ec2, [o["id"] for o in out], "running", timeout=60)
    # No public address yet: an Elastic IP gives the first one its way in.
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=out[0]["id"])
    out[0]["eip"] = alloc["PublicIp"]
    alloc2 = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc2["AllocationId"], InstanceId=out[1]["id"])
    out[1]["eip"] = alloc2["PublicIp"]
    for o in out:
        inet.wait_ssh(fleet["key"], o["eip"], user="root")
    return out


def test_elastic_ip_is_reachable_and_outbound_traffic_leaves_through_nat(world, fleet, twin_vpcs):
    s, inet, _ = world
    x = twin_vpcs[0]
    out = inet.ssh(fleet["key"], x["eip"], "hostname", user="root")
    assert out.stdout.startswith("ip-10-77-1-10"), out.stderr
    seen = inet.ssh(fleet["key"], x["eip"], f"wget -q -O - http://{INET_ADDR}:8080/", user="root").stdout
    assert seen.strip() == x["eip"], "the internet sees the instance's Elastic IP"


def test_vpcs_with_the_same_cidr_cannot_reach_each_other(world, fleet, twin_vpcs):
    s, inet, _ = world
    x, y = twin_vpcs
    run = lambda who, cmd: inet.ssh(fleet["key"], who["eip"], cmd, user="root")
    assert run(x, "ping -c 1 -W 2 10.77.1.1").returncode == 0, "its own router answers"
    assert run(x, f"ping -c 1 -W 2 {y['ip']}").returncode != 0
    assert run(y, f"ping -c 1 -W 2 {x['ip']}").returncode != 0
    assert "SSH-2.0" not in run(x, f"echo | nc -w 3 {y['ip']} 22 | head -c 16").stdout


def test_restarting_strato_keeps_guests_reachable(world, fleet):
    s, inet, _ = world
    key, c = fleet["key"], fleet["info"]["client"]
    s.stop()
    # While Strato is down the kernel keeps forwarding: the guest still answers.
    assert inet.ssh(key, c["PublicIpAddress"], "echo still-here").stdout.strip() == "still-here"
    s.start()
    assert inet.ssh(key, c["PublicIpAddress"], "echo back").stdout.strip() == "back"
    deadline = time.time() + 20
    while True:
        got = inet.ssh(key, c["PublicIpAddress"], f"wget -q -O - http://{IMDS}/latest/meta-data/instance-id").stdout
        if got == c["InstanceId"]:
            break
        assert time.time() < deadline, "the metadata service came back"
        time.sleep(1)


def test_an_address_freed_by_termination_serves_the_next_instance(world, fleet):
    """DHCP forgets the MAC that held an address: the next instance given the same
    private address gets its lease at once."""
    s, inet, _ = world
    ec2, info, key = fleet["ec2"], fleet["info"], fleet["key"]
    old = info["web"]
    ec2.terminate_instances(InstanceIds=[old["InstanceId"]])
    wait_for_state(ec2, [old["InstanceId"]], "terminated", timeout=90)
    iid = launch(ec2, "dp-key", [fleet["groups"]["client"]], fleet["subnet"],
                 PrivateIpAddress=old["PrivateIpAddress"])
    wait_for_state(ec2, [iid], "running", timeout=60)
    addr = describe(ec2, iid)["PublicIpAddress"]
    inet.wait_ssh(key, addr, timeout=120)
    assert inet.ssh(key, addr, "hostname").stdout.startswith("ip-" + old["PrivateIpAddress"].replace(".", "-"))


def test_terminate_leaves_no_tap_rule_or_namespace(world, fleet):
    s, inet, _ = world
    ec2 = s.client()
    owned = owned_namespaces(s.data_dir)
    assert f"strato-{fleet['vpc']}" in owned
    ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
           if i["State"]["Name"] != "terminated"]
    ec2.terminate_instances(InstanceIds=ids)
    wait_for_state(ec2, ids, "terminated", timeout=90)
    deadline = time.time() + 20
    while owned & namespaces():
        assert time.time() < deadline, f"namespaces left: {owned & namespaces()}"
        time.sleep(0.5)
    assert not qemu_pids(s.data_dir)
    links = inet.run("ip", "-o", "link").stdout
    assert not re.search(r"^\d+: u[0-9a-f]+", links, re.M), links
    assert "198.51.100." not in inet.run("ip", "route").stdout
    assert not sh("pgrep", "-f", os.path.join(s.data_dir, "net"), check=False).stdout.strip()
