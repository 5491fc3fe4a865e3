//! VPC namespaces with real packets. Needs root and iproute2 (scripts/test.sh runs as
//! root in CI). Every namespace and link a test creates is removed by a guard, even
//! when the test fails; traffic goes only to addresses inside the test's namespaces.

use strato_drivers::net::{ip, ip_in, namespaces, VpcNet};

/// Removes the namespaces a test made, whatever happens.
struct Guard(Vec<String>);

impl Drop for Guard {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A "guest": its own namespace, wired into the VPC with a veth pair.
fn guest(vpc: &VpcNet, name: &str, host_end: &str, cidr: &str, guard: &mut Guard) {
    ip(&["netns", "add", name]).unwrap();
    guard.0.push(name.to_string());
    ip(&[
        "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name,
    ])
    .unwrap();
    vpc.attach(host_end).unwrap();
    ip_in(name, &["addr", "add", cidr, "dev", "eth0"]).unwrap();
    ip_in(name, &["link", "set", "eth0", "up"]).unwrap();
    ip_in(name, &["link", "set", "lo", "up"]).unwrap();
}

fn ping(from_ns: &str, to: &str) -> bool {
    std::process::Command::new("ip")
        .args(["netns", "exec", from_ns, "ping", "-c", "1", "-W", "1", to])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn root() -> bool {
    strato_common::host::is_root()
}

#[test]
fn vpcs_with_the_same_cidr_are_isolated() {
    if !root() {
        eprintln!("skipped: needs root to create network namespaces");
        return;
    }
    let tag = format!("{:08x}", std::process::id());
    let (vpc_a, vpc_b) = (format!("vpc-a{tag}"), format!("vpc-b{tag}"));
    let mut guard = Guard(vec![]);
    let a = VpcNet::ensure(&vpc_a, "10.9.0.1/24").unwrap();
    guard.0.push(a.namespace.clone());
    let b = VpcNet::ensure(&vpc_b, "10.9.0.1/24").unwrap();
    guard.0.push(b.namespace.clone());
    // Idempotent: a second ensure changes nothing and does not fail.
    assert_eq!(VpcNet::ensure(&vpc_a, "10.9.0.1/24").unwrap(), a);

    let (ha1, ha2, hb1) = (
        format!("sa1{tag}"),
        format!("sa2{tag}"),
        format!("sb1{tag}"),
    );
    guest(&a, &format!("sg-a1{tag}"), &ha1, "10.9.0.10/24", &mut guard);
    guest(&a, &format!("sg-a2{tag}"), &ha2, "10.9.0.11/24", &mut guard);
    guest(&b, &format!("sg-b1{tag}"), &hb1, "10.9.0.11/24", &mut guard);

    // Same VPC: reachable, gateway included.
    assert!(ping(&format!("sg-a1{tag}"), "10.9.0.11"));
    assert!(ping(&format!("sg-a1{tag}"), "10.9.0.1"));
    // The same address exists in VPC B, yet A's guest reaches only its own neighbour:
    // take A's .11 away and nothing answers, although B's .11 is up.
    ip_in(&format!("sg-a2{tag}"), &["link", "set", "eth0", "down"]).unwrap();
    assert!(!ping(&format!("sg-a1{tag}"), "10.9.0.11"));
    assert!(
        ping(&format!("sg-b1{tag}"), "10.9.0.1"),
        "VPC B works on its own"
    );

    a.detach(&format!(
        "h{}",
        &format!("sg-a2{tag}")[format!("sg-a2{tag}").len() - 8..]
    ))
    .unwrap();
    a.remove().unwrap();
    b.remove().unwrap();
    a.remove().unwrap();
    let left = namespaces().unwrap();
    assert!(!left.contains(&a.namespace) && !left.contains(&b.namespace));
}
