//! The VPC dataplane with real packets. Needs root, iproute2, nft and python3
//! (scripts/test.sh installs them and runs as root in CI). "Guests" are namespaces the
//! test creates, wired in with a veth whose VPC end stands in for a VM's tap; every
//! namespace is removed by a guard even when a test fails, and traffic goes only to
//! addresses inside the test's own namespaces.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::process::{Child, Command, Stdio};
use strato_agent_api::{PortSpec, RuleSpec, VpcNetSpec};
use strato_drivers::net::{self, ip, ip_in, nft};

/// Removes the namespaces a test made, whatever happens.
struct Guard(Vec<String>, Vec<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.1 {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

fn root() -> bool {
    if !strato_common::host::is_root() {
        eprintln!("skipped: needs root to create network namespaces");
        return false;
    }
    true
}

fn tag() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{:06x}{:02x}",
        std::process::id() & 0xffffff,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// An interface id whose tap name is unique to this test.
fn eni(tag: &str, n: u8) -> String {
    format!("eni-{tag}{n:02x}000000")
}

fn rule(proto: &str, from: Option<i32>, to: Option<i32>, cidr: &str) -> RuleSpec {
    RuleSpec {
        protocol: proto.into(),
        from_port: from,
        to_port: to,
        cidrs: vec![cidr.into()],
    }
}

fn port(eni: &str, mac: &str, ip: &str, ingress: Vec<RuleSpec>) -> PortSpec {
    PortSpec {
        interface_id: eni.into(),
        mac: mac.into(),
        private_ip: ip.into(),
        subnet_cidr: "10.9.0.0/24".into(),
        public_ip: None,
        hostname: format!("ip-{}", ip.replace('.', "-")),
        ingress,
        egress: vec![rule("-1", None, None, "0.0.0.0/0")],
    }
}

/// A "guest" namespace plugged into VPC namespace `vpc_ns` as `p`'s port.
fn guest(vpc_ns: &str, name: &str, p: &PortSpec, guard: &mut Guard) {
    ip(&["netns", "add", name]).unwrap();
    guard.0.push(name.to_string());
    let tap = p.tap_name();
    ip_in(
        vpc_ns,
        &[
            "link", "add", &tap, "type", "veth", "peer", "name", "eth0", "netns", name,
        ],
    )
    .unwrap();
    net::configure_port(vpc_ns, &tap, &p.subnet_cidr, &p.private_ip).unwrap();
    ip_in(name, &["link", "set", "eth0", "address", &p.mac]).unwrap();
    ip_in(
        name,
        &[
            "addr",
            "add",
            &format!("{}/24", p.private_ip),
            "dev",
            "eth0",
        ],
    )
    .unwrap();
    ip_in(name, &["link", "set", "eth0", "up"]).unwrap();
    ip_in(name, &["link", "set", "lo", "up"]).unwrap();
    ip_in(name, &["route", "add", "default", "via", "10.9.0.1"]).unwrap();
}

/// A ping that must succeed, retried a few times.
fn ping_ok(from_ns: &str, to: &str) -> bool {
    (0..5).any(|_| ping(from_ns, to))
}

fn ping(from_ns: &str, to: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", from_ns, "ping", "-c", "1", "-W", "1", to])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A TCP echo-ish server in `ns` on `port` that answers each connection with the
/// peer's address, then keeps echoing lines.
fn serve(ns: &str, port: u16, guard: &mut Guard) {
    let code = format!(
        "import socket,threading\n\
         s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('0.0.0.0',{port}));s.listen(8);print('ready',flush=True)\n\
         def h(c,a):\n  c.sendall((a[0]+'\\n').encode())\n  f=c.makefile()\n  \
         for l in f: c.sendall(l.encode())\n\
         while True:\n  c,a=s.accept();threading.Thread(target=h,args=(c,a),daemon=True).start()\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &code])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Listening before anyone connects (a busy machine starts python slowly).
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    guard.1.push(child);
}

/// Like [`connect`], for connections that must succeed: retried for a few seconds so
/// a loaded machine (first ARP resolution, slow python start) does not fail the test.
fn connect_ok(ns: &str, addr: &str, port: u16) -> Option<String> {
    for _ in 0..5 {
        if let Some(seen) = connect(ns, addr, port) {
            return Some(seen);
        }
    }
    None
}

/// Connects from `ns` to `addr:port`, returns the first line (the address the server
/// saw), or `None` when no connection could be made within a second.
fn connect(ns: &str, addr: &str, port: u16) -> Option<String> {
    let code = format!(
        "import socket\ns=socket.create_connection(('{addr}',{port}),timeout=1)\n\
         print(s.makefile().readline().strip())"
    );
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &code])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn security_groups_and_anti_spoofing() {
    if !root() {
        return;
    }
    let t = tag();
    let vpc_id = format!("vpc-{t}000000000");
    let mut guard = Guard(vec![], vec![]);
    let ns = net::ensure_vpc_namespace(&vpc_id).unwrap();
    guard.0.push(ns.clone());
    // Idempotent.
    assert_eq!(net::ensure_vpc_namespace(&vpc_id).unwrap(), ns);
    let web = port(
        &eni(&t, 1),
        "02:00:00:00:01:01",
        "10.9.0.10",
        vec![rule("tcp", Some(8080), Some(8080), "0.0.0.0/0")],
    );
    let client = port(&eni(&t, 2), "02:00:00:00:01:02", "10.9.0.11", vec![]);
    let mut vpc = VpcNetSpec {
        vpc_id: vpc_id.clone(),
        domain: "ec2.internal".into(),
        internet: false,
        ports: vec![web.clone(), client.clone()],
    };
    nft::load(&ns, &nft::render(&vpc)).unwrap();
    let (g_web, g_client) = (format!("sw{t}"), format!("sc{t}"));
    guest(&ns, &g_web, &web, &mut guard);
    guest(&ns, &g_client, &client, &mut guard);
    serve(&g_web, 8080, &mut guard);
    serve(&g_web, 9090, &mut guard);

    // Allowed port: open, and the server sees the client's real address.
    assert_eq!(
        connect_ok(&g_client, "10.9.0.10", 8080).as_deref(),
        Some("10.9.0.11")
    );
    // No rule: closed. No ICMP rule: no ping. The router itself answers ping.
    assert_eq!(connect(&g_client, "10.9.0.10", 9090), None);
    assert!(!ping(&g_client, "10.9.0.10"));
    assert!(ping_ok(&g_client, "10.9.0.1"));
    // Inbound is denied by default: the client has no rules at all.
    serve(&g_client, 8080, &mut guard);
    assert_eq!(connect(&g_web, "10.9.0.11", 8080), None);

    // A long-lived connection survives the removal of the rule that admitted it;
    // new connections do not get in.
    let code = "import socket,sys,time\n\
        s=socket.create_connection(('10.9.0.10',8080),timeout=2);f=s.makefile()\n\
        f.readline();sys.stdout.write('ready\\n');sys.stdout.flush()\n\
        sys.stdin.readline();s.sendall(b'ping\\n');print(f.readline().strip())";
    let mut held = Command::new("ip")
        .args(["netns", "exec", &g_client, "python3", "-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(held.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    vpc.ports[0].ingress.clear();
    nft::load(&ns, &nft::render(&vpc)).unwrap();
    assert_eq!(connect(&g_client, "10.9.0.10", 8080), None);
    std::io::Write::write_all(held.stdin.as_mut().unwrap(), b"go\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "ping", "the established flow still flows");
    let _ = held.wait();

    // Allow ICMP from the client's address only, then spoof: a forged source address
    // and a forged MAC are both dropped at the port.
    vpc.ports[0].ingress = vec![rule("icmp", Some(-1), Some(-1), "10.9.0.11/32")];
    nft::load(&ns, &nft::render(&vpc)).unwrap();
    assert!(ping_ok(&g_client, "10.9.0.10"));
    ip_in(&g_client, &["addr", "add", "10.9.0.12/24", "dev", "eth0"]).unwrap();
    let spoofed = Command::new("ip")
        .args([
            "netns",
            "exec",
            &g_client,
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            "-I",
            "10.9.0.12",
            "10.9.0.1",
        ])
        .output()
        .unwrap();
    assert!(
        !spoofed.status.success(),
        "a forged source address must not pass"
    );
    ip_in(
        &g_client,
        &["link", "set", "eth0", "address", "02:00:00:00:01:99"],
    )
    .unwrap();
    // The router has the real MAC cached; flush so it must learn (and refuse) again.
    let _ = ip_in(&ns, &["neigh", "flush", "all"]);
    assert!(!ping(&g_client, "10.9.0.1"), "a forged MAC must not pass");
    ip_in(
        &g_client,
        &["link", "set", "eth0", "address", "02:00:00:00:01:02"],
    )
    .unwrap();
    assert!(ping(&g_client, "10.9.0.1"));
}

#[test]
fn vpcs_with_the_same_cidr_are_isolated_and_public_addresses_nat() {
    if !root() {
        return;
    }
    let t = tag();
    let mut guard = Guard(vec![], vec![]);
    // The test's "internet": a namespace with one address of its own.
    let inet = format!("si{t}");
    ip(&["netns", "add", &inet]).unwrap();
    guard.0.push(inet.clone());
    ip_in(&inet, &["link", "set", "lo", "up"]).unwrap();
    ip_in(&inet, &["addr", "add", "203.0.113.1/32", "dev", "lo"]).unwrap();

    let mut guests = vec![];
    for (n, public) in [(1u8, Some("198.51.100.71")), (2u8, None)] {
        let vpc_id = format!("vpc-{t}{n:02x}0000000");
        let ns = net::ensure_vpc_namespace(&vpc_id).unwrap();
        guard.0.push(ns.clone());
        let mut p = port(
            &eni(&t, n),
            &format!("02:00:00:00:02:0{n}"),
            "10.9.0.10",
            vec![rule("-1", None, None, "0.0.0.0/0")],
        );
        p.public_ip = public.map(str::to_string);
        let vpc = VpcNetSpec {
            vpc_id: vpc_id.clone(),
            domain: "ec2.internal".into(),
            internet: true,
            ports: vec![p.clone()],
        };
        net::ensure_uplink(&ns, &vpc_id, Some(&inet)).unwrap();
        net::ensure_uplink(&ns, &vpc_id, Some(&inet)).unwrap();
        if let Some(public) = public {
            net::add_public_address(&ns, &vpc_id, Some(&inet), public).unwrap();
        }
        nft::load(&ns, &nft::render(&vpc)).unwrap();
        let g = format!("sg{n}{t}");
        guest(&ns, &g, &p, &mut guard);
        guests.push((g, ns));
    }
    serve(&inet, 7000, &mut guard);
    serve(&guests[0].0, 22, &mut guard);

    // The same private address in two VPCs: each guest reaches only its own router.
    assert!(ping_ok(&guests[0].0, "10.9.0.1"));
    assert!(ping_ok(&guests[1].0, "10.9.0.1"));
    // A public address: reachable from the internet, and outbound traffic leaves
    // with the public address as its source.
    assert_eq!(
        connect_ok(&inet, "198.51.100.71", 22).as_deref(),
        Some("169.254.0.1")
    );
    assert_eq!(
        connect_ok(&guests[0].0, "203.0.113.1", 7000).as_deref(),
        Some("198.51.100.71")
    );
    // No public address: no way out, even with a gateway.
    assert_eq!(connect(&guests[1].0, "203.0.113.1", 7000), None);
    // Withdrawing the address withdraws reachability.
    net::remove_public_address(
        &guests[0].1,
        &format!("vpc-{t}010000000"),
        Some(&inet),
        "198.51.100.71",
    )
    .unwrap();
    assert!(net::public_addresses(&guests[0].1).unwrap().is_empty());
    assert_eq!(connect(&inet, "198.51.100.71", 22), None);
}
