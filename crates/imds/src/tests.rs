//! The service driven over real TCP on loopback. Clients bind distinct 127.0.0.x
//! source addresses, which the fake source maps to instances, so every request
//! goes through the same accept → connection → TTL path as in production.

use super::*;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use strato_agent_api::metadata::{InterfaceMetadata, MetadataAccess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

const VPC: &str = "vpc-0123456789abcdef0";
/// Instance A: everything set (public address, keys, user data, tags, two NICs).
const A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
/// Instance B: the minimum (no public address, no key, no user data), with a kernel.
const B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Nobody.
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

fn instance_a() -> InstanceMetadata {
    let nic = |n: u32, mac: &str, ip: &str, public: Option<&str>| InterfaceMetadata {
        interface_id: format!("eni-000000000000000a{n}"),
        device_number: n,
        mac: mac.into(),
        private_ip: ip.into(),
        public_ip: public.map(Into::into),
        subnet_id: "subnet-0aaaaaaaaaaaaaaaa".into(),
        subnet_cidr: "10.0.1.0/24".into(),
        vpc_id: VPC.into(),
        vpc_cidr: "10.0.0.0/16".into(),
        security_group_ids: vec!["sg-0aaaaaaaaaaaaaaaa".into(), "sg-0bbbbbbbbbbbbbbbb".into()],
        security_groups: vec!["default".into(), "web".into()],
        owner_id: "123456789012".into(),
        local_hostname: format!("ip-{}.ec2.internal", ip.replace('.', "-")),
    };
    InstanceMetadata {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        availability_zone: "us-east-1a".into(),
        availability_zone_id: "use1-az1".into(),
        instance_id: "i-0aaaaaaaaaaaaaaaa".into(),
        image_id: "ami-0123456789abcdef0".into(),
        instance_type: "t3.micro".into(),
        reservation_id: "r-0aaaaaaaaaaaaaaaa".into(),
        launch_index: 0,
        architecture: "x86_64".into(),
        kernel_id: None,
        ramdisk_id: None,
        launch_time_ms: 1_795_683_600_250,
        local_hostname: "ip-10-0-1-5.ec2.internal".into(),
        private_ip: "10.0.1.5".into(),
        public_ip: Some("203.0.113.10".into()),
        public_hostname: Some("ec2-203-0-113-10.compute-1.amazonaws.com".into()),
        security_groups: vec!["default".into(), "web".into()],
        interfaces: vec![
            nic(0, "02:00:0a:00:01:05", "10.0.1.5", Some("203.0.113.10")),
            nic(1, "02:00:0a:00:01:06", "10.0.1.6", None),
        ],
        public_keys: vec![(
            "my-key".into(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB my-key".into(),
        )],
        user_data: Some(b"#cloud-config\nhostname: a\n".to_vec()),
        tags: vec![
            ("Name".into(), "web 1".into()),
            ("env".into(), "prod".into()),
            ("a/b".into(), "unservable".into()),
        ],
        block_devices: vec![
            ("ami".into(), "/dev/sda1".into()),
            ("root".into(), "/dev/sda1".into()),
            ("ebs1".into(), "sdf".into()),
            ("ephemeral0".into(), "sdb".into()),
        ],
        options: MetadataAccess {
            hop_limit: 2,
            tags_enabled: true,
            ..MetadataAccess::default()
        },
    }
}

fn instance_b() -> InstanceMetadata {
    let mut b = instance_a();
    b.instance_id = "i-0bbbbbbbbbbbbbbbb".into();
    b.availability_zone_id = String::new();
    b.private_ip = "10.0.1.7".into();
    b.public_ip = None;
    b.public_hostname = None;
    b.kernel_id = Some("aki-0123456789abcdef0".into());
    b.ramdisk_id = Some("ari-0123456789abcdef0".into());
    b.interfaces.truncate(1);
    b.interfaces[0].public_ip = None;
    b.public_keys.clear();
    b.user_data = None;
    b.tags.clear();
    b.block_devices.clear();
    b.options = MetadataAccess::default();
    b
}

struct Fake(Mutex<HashMap<Ipv4Addr, InstanceMetadata>>);

impl MetadataSource for Fake {
    fn instance_metadata(&self, vpc_id: &str, ip: Ipv4Addr) -> Option<InstanceMetadata> {
        if vpc_id != VPC {
            return None;
        }
        self.0.lock().unwrap().get(&ip).cloned()
    }
}

struct Harness {
    imds: Arc<Imds>,
    source: Arc<Fake>,
    addr: SocketAddr,
    now: Arc<Mutex<SystemTime>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

impl Harness {
    async fn start() -> Harness {
        let source = Arc::new(Fake(Mutex::new(HashMap::from([
            (A, instance_a()),
            (B, instance_b()),
        ]))));
        let now = Arc::new(Mutex::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000)));
        let clock_now = now.clone();
        let imds = Imds::with_clock(source.clone(), Arc::new(move || *clock_now.lock().unwrap()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(imds.clone(), VPC.to_string(), listener));
        Harness {
            imds,
            source,
            addr,
            now,
            task,
        }
    }

    fn edit(&self, ip: Ipv4Addr, f: impl FnOnce(&mut InstanceMetadata)) {
        f(self.source.0.lock().unwrap().get_mut(&ip).unwrap());
    }

    fn advance(&self, d: Duration) {
        *self.now.lock().unwrap() += d;
    }

    /// Sends `raw` (one or more requests) from `from` and reads until the server
    /// closes. Returns the bytes and the client's local address.
    async fn exchange(&self, from: Ipv4Addr, raw: &str) -> (Vec<u8>, SocketAddr) {
        let sock = TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::new(from.into(), 0)).unwrap();
        let mut s = sock.connect(self.addr).await.unwrap();
        let local = s.local_addr().unwrap();
        s.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("server closes the connection")
            .unwrap();
        (out, local)
    }

    async fn call(
        &self,
        from: Ipv4Addr,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let (bytes, _) = self
            .exchange(from, &request(method, path, headers, true))
            .await;
        let mut all = parse_responses(&bytes);
        assert_eq!(all.len(), 1, "{}", String::from_utf8_lossy(&bytes));
        all.remove(0)
    }

    async fn get(&self, from: Ipv4Addr, path: &str) -> Resp {
        self.call(from, "GET", path, &[]).await
    }

    async fn get_with_token(&self, from: Ipv4Addr, path: &str, token: &str) -> Resp {
        self.call(from, "GET", path, &[(TOKEN_HEADER, token)]).await
    }

    async fn token(&self, from: Ipv4Addr, ttl: &str) -> String {
        let r = self
            .call(from, "PUT", "/latest/api/token", &[(TOKEN_TTL_HEADER, ttl)])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.text().to_string()
    }

    /// The writes the server made to the connection whose client end is `client`.
    fn writes_to(&self, client: SocketAddr) -> Vec<WriteRecord> {
        let w = self.imds.writes.lock().unwrap();
        w.iter().filter(|w| w.peer == client).cloned().collect()
    }
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], close: bool) -> String {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 169.254.169.254\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    if method == "PUT" {
        r.push_str("Content-Length: 0\r\n");
    }
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    r
}

/// Splits a stream of HTTP/1.1 responses (each with Content-Length).
fn parse_responses(mut bytes: &[u8]) -> Vec<Resp> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("complete head");
        let head = std::str::from_utf8(&bytes[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let len: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let body = bytes[end + 4..end + 4 + len].to_vec();
        bytes = &bytes[end + 4 + len..];
        out.push(Resp {
            status,
            headers,
            body,
        });
    }
    out
}

fn default_ttl() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_default_ttl")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(64)
}

// ---- tokens ----

#[tokio::test]
async fn token_put_returns_token_and_granted_ttl() {
    let h = Harness::start().await;
    let r = h
        .call(
            A,
            "PUT",
            "/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("server"), Some("EC2ws"));
    assert_eq!(r.header(TOKEN_TTL_HEADER), Some("21600"));
    assert!(r.text().len() > 40, "{}", r.text());

    let r = h
        .get_with_token(A, "/latest/meta-data/instance-id", r.text())
        .await;
    assert_eq!((r.status, r.text()), (200, "i-0aaaaaaaaaaaaaaaa"));
}

#[tokio::test]
async fn token_ttl_must_be_1_to_21600_seconds() {
    let h = Harness::start().await;
    for ttl in ["1", "21600", "300"] {
        h.token(A, ttl).await;
    }
    for bad in [
        "0",
        "21601",
        "-1",
        "abc",
        "1.5",
        "+5",
        "99999999999999999999999",
    ] {
        let r = h
            .call(A, "PUT", "/latest/api/token", &[(TOKEN_TTL_HEADER, bad)])
            .await;
        assert_eq!(r.status, 400, "ttl {bad:?}");
        assert_eq!(r.header(TOKEN_TTL_HEADER), None);
    }
    let r = h.call(A, "PUT", "/latest/api/token", &[]).await;
    assert_eq!(r.status, 400, "missing ttl");
    let r = h
        .call(A, "PUT", "/latest/api/token", &[(TOKEN_TTL_HEADER, "")])
        .await;
    assert_eq!(r.status, 400, "empty ttl");
}

#[tokio::test]
async fn token_put_with_x_forwarded_for_is_forbidden() {
    let h = Harness::start().await;
    let r = h
        .call(
            A,
            "PUT",
            "/latest/api/token",
            &[
                (TOKEN_TTL_HEADER, "60"),
                ("X-Forwarded-For", "198.51.100.1"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("403 - Forbidden"), "{}", r.text());
}

#[tokio::test]
async fn token_expires_with_the_clock() {
    let h = Harness::start().await;
    let t = h.token(A, "10").await;
    let path = "/latest/meta-data/ami-id";
    assert_eq!(h.get_with_token(A, path, &t).await.status, 200);
    h.advance(Duration::from_millis(9_999));
    assert_eq!(h.get_with_token(A, path, &t).await.status, 200);
    h.advance(Duration::from_millis(1));
    let r = h.get_with_token(A, path, &t).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("401 - Unauthorized"), "{}", r.text());
}

#[tokio::test]
async fn token_of_another_instance_or_forged_is_refused() {
    let h = Harness::start().await;
    let ta = h.token(A, "60").await;
    let tb = h.token(B, "60").await;
    assert_ne!(ta, tb);
    let path = "/latest/meta-data/instance-id";
    assert_eq!(h.get_with_token(B, path, &tb).await.status, 200);
    assert_eq!(
        h.get_with_token(B, path, &ta).await.status,
        401,
        "A's token used by B"
    );
    assert_eq!(
        h.get_with_token(A, path, &tb).await.status,
        401,
        "B's token used by A"
    );
    assert_eq!(h.get_with_token(B, path, "AAAA").await.status, 401);
    assert_eq!(h.get_with_token(B, path, "").await.status, 401);
    // Another service instance (another key) issued it: refused too.
    let other = Harness::start().await;
    let foreign = other.token(B, "60").await;
    assert_eq!(h.get_with_token(B, path, &foreign).await.status, 401);
}

#[tokio::test]
async fn imdsv1_allowed_unless_tokens_required() {
    let h = Harness::start().await;
    let r = h.get(A, "/latest/meta-data/instance-id").await;
    assert_eq!((r.status, r.text()), (200, "i-0aaaaaaaaaaaaaaaa"));

    h.edit(A, |m| m.options.tokens_required = true);
    let r = h.get(A, "/latest/meta-data/instance-id").await;
    assert_eq!(r.status, 401);
    // Auth comes before the path: an unknown path is 401 too, not 404.
    assert_eq!(h.get(A, "/latest/meta-data/nothing").await.status, 401);
    // IMDSv2 still works, and the other instance is unaffected.
    let t = h.token(A, "60").await;
    let r = h
        .get_with_token(A, "/latest/meta-data/instance-id", &t)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(h.get(B, "/latest/meta-data/instance-id").await.status, 200);
}

#[tokio::test]
async fn disabled_endpoint_answers_403_to_everything() {
    let h = Harness::start().await;
    let t = h.token(A, "60").await;
    h.edit(A, |m| m.options.enabled = false);
    assert_eq!(h.get(A, "/").await.status, 403);
    assert_eq!(h.get(A, "/latest/meta-data/instance-id").await.status, 403);
    let r = h
        .get_with_token(A, "/latest/meta-data/instance-id", &t)
        .await;
    assert_eq!(r.status, 403);
    let r = h
        .call(A, "PUT", "/latest/api/token", &[(TOKEN_TTL_HEADER, "60")])
        .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn unknown_caller_gets_404() {
    let h = Harness::start().await;
    let r = h.get(STRANGER, "/latest/meta-data/instance-id").await;
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("<title>404 - Not Found</title>"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("content-type"), Some("text/html"));
    let r = h
        .call(
            STRANGER,
            "PUT",
            "/latest/api/token",
            &[(TOKEN_TTL_HEADER, "60")],
        )
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn only_get_head_and_token_put_are_allowed() {
    let h = Harness::start().await;
    for m in ["POST", "DELETE", "PATCH", "OPTIONS"] {
        let r = h.call(A, m, "/latest/meta-data/", &[]).await;
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    let r = h
        .call(A, "PUT", "/latest/meta-data/", &[(TOKEN_TTL_HEADER, "60")])
        .await;
    assert_eq!(r.status, 405);
    let r = h
        .call(A, "POST", "/latest/api/token", &[(TOKEN_TTL_HEADER, "60")])
        .await;
    assert_eq!((r.status, r.header("allow")), (405, Some("PUT")));
    let r = h.get(A, "/latest/api/token").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("PUT")));
}

#[tokio::test]
async fn head_answers_headers_only() {
    let h = Harness::start().await;
    let (bytes, _) = h
        .exchange(
            A,
            &request("HEAD", "/latest/meta-data/instance-id", &[], true),
        )
        .await;
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("content-length: 19\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "no body expected: {text}");
}

// ---- hop limit ----

/// The TTL the socket had when the server wrote the response containing `needle`.
fn ttl_of(writes: &[WriteRecord], needle: &str) -> u32 {
    let hits: Vec<_> = writes
        .iter()
        .filter(|w| String::from_utf8_lossy(&w.bytes).contains(needle))
        .collect();
    assert_eq!(hits.len(), 1, "one write with {needle:?} in {writes:#?}");
    hits[0].ttl
}

#[tokio::test]
async fn token_response_leaves_with_the_hop_limit() {
    let h = Harness::start().await;
    let dflt = default_ttl();
    assert_ne!(
        dflt, 2,
        "the test needs a default TTL other than A's hop limit"
    );
    // A keep-alive connection: GET, PUT, GET. The first GET goes out with the
    // default TTL, the token with A's hop limit (2); the TTL stays there.
    let raw = [
        request("GET", "/latest/meta-data/ami-id", &[], false),
        request(
            "PUT",
            "/latest/api/token",
            &[(TOKEN_TTL_HEADER, "60")],
            false,
        ),
        request("GET", "/latest/meta-data/instance-type", &[], true),
    ]
    .concat();
    let (bytes, client) = h.exchange(A, &raw).await;
    let resps = parse_responses(&bytes);
    assert_eq!(resps.len(), 3);
    let token = resps[1].text();
    let writes = h.writes_to(client);
    assert_eq!(ttl_of(&writes, "ami-0123456789abcdef0"), dflt);
    assert_eq!(ttl_of(&writes, token), 2);
    assert_eq!(
        ttl_of(&writes, "t3.micro"),
        2,
        "TTL not raised after a token"
    );

    // A fresh connection starts at the default again; another hop limit is used
    // as configured.
    h.edit(A, |m| m.options.hop_limit = 5);
    let (bytes, client) = h
        .exchange(
            A,
            &request(
                "PUT",
                "/latest/api/token",
                &[(TOKEN_TTL_HEADER, "60")],
                true,
            ),
        )
        .await;
    let token = parse_responses(&bytes).remove(0).body;
    let writes = h.writes_to(client);
    assert_eq!(ttl_of(&writes, std::str::from_utf8(&token).unwrap()), 5);
    let (_, client) = h
        .exchange(A, &request("GET", "/latest/meta-data/ami-id", &[], true))
        .await;
    assert_eq!(ttl_of(&h.writes_to(client), "ami-0123456789abcdef0"), dflt);
}

#[tokio::test]
async fn refused_token_request_keeps_the_default_ttl() {
    let h = Harness::start().await;
    let (_, client) = h
        .exchange(
            A,
            &request("PUT", "/latest/api/token", &[(TOKEN_TTL_HEADER, "0")], true),
        )
        .await;
    assert_eq!(
        ttl_of(&h.writes_to(client), "400 - Bad Request"),
        default_ttl()
    );
}

// ---- paths ----

#[tokio::test]
async fn root_lists_versions() {
    let h = Harness::start().await;
    let r = h.get(A, "/").await;
    assert_eq!(r.status, 200);
    let versions: Vec<_> = r.text().split('\n').collect();
    for v in [
        "latest",
        "1.0",
        "2009-04-04",
        "2016-09-02",
        "2018-09-24",
        "2021-03-23",
    ] {
        assert!(versions.contains(&v), "{v} in {versions:?}");
    }
    assert!(!r.text().ends_with('\n'));
}

#[tokio::test]
async fn versions_serve_the_same_tree() {
    let h = Harness::start().await;
    let latest = h.get(A, "/latest/").await;
    assert_eq!(latest.text(), "dynamic\nmeta-data\nuser-data");
    assert_eq!(h.get(A, "/latest").await.text(), latest.text());
    for v in [
        "2021-03-23",
        "2018-09-24",
        "2016-09-02",
        "2009-04-04",
        "1.0",
    ] {
        assert_eq!(
            h.get(A, &format!("/{v}/")).await.text(),
            latest.text(),
            "{v}"
        );
        let r = h.get(A, &format!("/{v}/meta-data/instance-id")).await;
        assert_eq!(r.text(), "i-0aaaaaaaaaaaaaaaa", "{v}");
    }
    assert_eq!(h.get(A, "/2099-01-01/meta-data/").await.status, 404);
    assert_eq!(h.get(A, "/meta-data/").await.status, 404);
    // No user data: not listed.
    assert_eq!(h.get(B, "/latest/").await.text(), "dynamic\nmeta-data");
}

#[tokio::test]
async fn meta_data_listing_of_a_full_instance() {
    let h = Harness::start().await;
    let r = h.get(A, "/latest/meta-data/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let expected = [
        "ami-id",
        "ami-launch-index",
        "ami-manifest-path",
        "block-device-mapping/",
        "hostname",
        "instance-action",
        "instance-id",
        "instance-life-cycle",
        "instance-type",
        "local-hostname",
        "local-ipv4",
        "mac",
        "network/",
        "placement/",
        "public-hostname",
        "public-ipv4",
        "public-keys/",
        "reservation-id",
        "security-groups",
        "services/",
        "tags/",
    ]
    .join("\n");
    assert_eq!(r.text(), expected);
    assert_eq!(h.get(A, "/latest/meta-data").await.text(), expected);
}

#[tokio::test]
async fn meta_data_listing_of_a_minimal_instance() {
    let h = Harness::start().await;
    let expected = [
        "ami-id",
        "ami-launch-index",
        "ami-manifest-path",
        "block-device-mapping/",
        "hostname",
        "instance-action",
        "instance-id",
        "instance-life-cycle",
        "instance-type",
        "kernel-id",
        "local-hostname",
        "local-ipv4",
        "mac",
        "network/",
        "placement/",
        "ramdisk-id",
        "reservation-id",
        "security-groups",
        "services/",
    ]
    .join("\n");
    assert_eq!(h.get(B, "/latest/meta-data/").await.text(), expected);
    for absent in [
        "public-ipv4",
        "public-hostname",
        "public-keys/",
        "public-keys/0/openssh-key",
        "tags/instance/",
    ] {
        let r = h.get(B, &format!("/latest/meta-data/{absent}")).await;
        assert_eq!(r.status, 404, "{absent}");
    }
    assert_eq!(h.get(B, "/latest/user-data").await.status, 404);
    assert_eq!(
        h.get(B, "/latest/meta-data/kernel-id").await.text(),
        "aki-0123456789abcdef0"
    );
    assert_eq!(
        h.get(B, "/latest/meta-data/ramdisk-id").await.text(),
        "ari-0123456789abcdef0"
    );
    assert_eq!(
        h.get(B, "/latest/meta-data/placement/").await.text(),
        "availability-zone\nregion",
        "no zone id known"
    );
    assert_eq!(
        h.get(B, "/latest/meta-data/block-device-mapping/root")
            .await
            .text(),
        "/dev/xvda",
        "a record without block devices"
    );
}

#[tokio::test]
async fn meta_data_values() {
    let h = Harness::start().await;
    let cases = [
        ("ami-id", "ami-0123456789abcdef0"),
        ("ami-launch-index", "0"),
        ("ami-manifest-path", "(unknown)"),
        ("block-device-mapping/", "ami\nebs1\nephemeral0\nroot"),
        ("block-device-mapping/ami", "/dev/sda1"),
        ("block-device-mapping/root", "/dev/sda1"),
        ("block-device-mapping/ebs1", "sdf"),
        ("block-device-mapping/ephemeral0", "sdb"),
        ("hostname", "ip-10-0-1-5.ec2.internal"),
        ("instance-action", "none"),
        ("instance-id", "i-0aaaaaaaaaaaaaaaa"),
        ("instance-life-cycle", "on-demand"),
        ("instance-type", "t3.micro"),
        ("local-hostname", "ip-10-0-1-5.ec2.internal"),
        ("local-ipv4", "10.0.1.5"),
        ("mac", "02:00:0a:00:01:05"),
        (
            "placement/",
            "availability-zone\navailability-zone-id\nregion",
        ),
        ("placement/availability-zone", "us-east-1a"),
        ("placement/availability-zone-id", "use1-az1"),
        ("placement/region", "us-east-1"),
        (
            "public-hostname",
            "ec2-203-0-113-10.compute-1.amazonaws.com",
        ),
        ("public-ipv4", "203.0.113.10"),
        ("public-keys/", "0=my-key"),
        ("public-keys/0/", "openssh-key"),
        (
            "public-keys/0/openssh-key",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB my-key",
        ),
        ("reservation-id", "r-0aaaaaaaaaaaaaaaa"),
        ("security-groups", "default\nweb"),
        ("services/", "domain\npartition"),
        ("services/domain", "amazonaws.com"),
        ("services/partition", "aws"),
        ("tags/", "instance/"),
        ("tags/instance/", "Name\nenv"),
        ("tags/instance/Name", "web 1"),
        ("tags/instance/env", "prod"),
    ];
    for (path, want) in cases {
        let r = h.get(A, &format!("/latest/meta-data/{path}")).await;
        assert_eq!((r.status, r.text()), (200, want), "{path}");
    }
    // Percent-encoded segments are decoded.
    assert_eq!(
        h.get(A, "/latest/meta-data/tags/instance/Na%6De")
            .await
            .text(),
        "web 1"
    );
}

#[tokio::test]
async fn network_interfaces_tree() {
    let h = Harness::start().await;
    let base = "/latest/meta-data/network/interfaces/macs";
    assert_eq!(
        h.get(A, "/latest/meta-data/network/").await.text(),
        "interfaces/"
    );
    assert_eq!(
        h.get(A, "/latest/meta-data/network/interfaces/")
            .await
            .text(),
        "macs/"
    );
    assert_eq!(
        h.get(A, &format!("{base}/")).await.text(),
        "02:00:0a:00:01:05/\n02:00:0a:00:01:06/"
    );
    let primary = format!("{base}/02:00:0a:00:01:05");
    let listing = [
        "device-number",
        "interface-id",
        "ipv4-associations/",
        "local-hostname",
        "local-ipv4s",
        "mac",
        "owner-id",
        "public-ipv4s",
        "security-group-ids",
        "security-groups",
        "subnet-id",
        "subnet-ipv4-cidr-block",
        "vpc-id",
        "vpc-ipv4-cidr-block",
        "vpc-ipv4-cidr-blocks",
    ]
    .join("\n");
    assert_eq!(h.get(A, &format!("{primary}/")).await.text(), listing);
    let cases = [
        ("device-number", "0"),
        ("interface-id", "eni-000000000000000a0"),
        ("ipv4-associations/", "203.0.113.10"),
        ("ipv4-associations/203.0.113.10", "10.0.1.5"),
        ("local-hostname", "ip-10-0-1-5.ec2.internal"),
        ("local-ipv4s", "10.0.1.5"),
        ("mac", "02:00:0a:00:01:05"),
        ("owner-id", "123456789012"),
        ("public-ipv4s", "203.0.113.10"),
        (
            "security-group-ids",
            "sg-0aaaaaaaaaaaaaaaa\nsg-0bbbbbbbbbbbbbbbb",
        ),
        ("security-groups", "default\nweb"),
        ("subnet-id", "subnet-0aaaaaaaaaaaaaaaa"),
        ("subnet-ipv4-cidr-block", "10.0.1.0/24"),
        ("vpc-id", VPC),
        ("vpc-ipv4-cidr-block", "10.0.0.0/16"),
        ("vpc-ipv4-cidr-blocks", "10.0.0.0/16"),
    ];
    for (leaf, want) in cases {
        let r = h.get(A, &format!("{primary}/{leaf}")).await;
        assert_eq!((r.status, r.text()), (200, want), "{leaf}");
    }
    let second = format!("{base}/02:00:0a:00:01:06");
    assert_eq!(
        h.get(A, &format!("{second}/device-number")).await.text(),
        "1"
    );
    assert_eq!(
        h.get(A, &format!("{second}/local-ipv4s")).await.text(),
        "10.0.1.6"
    );
    assert_eq!(
        h.get(A, &format!("{second}/public-ipv4s")).await.status,
        404
    );
    assert_eq!(
        h.get(A, &format!("{base}/02:00:00:00:00:00/")).await.status,
        404
    );
}

#[tokio::test]
async fn tags_hidden_unless_enabled() {
    let h = Harness::start().await;
    h.edit(A, |m| m.options.tags_enabled = false);
    assert!(!h
        .get(A, "/latest/meta-data/")
        .await
        .text()
        .contains("tags/"));
    assert_eq!(
        h.get(A, "/latest/meta-data/tags/instance/Name")
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn user_data_is_raw_bytes() {
    let h = Harness::start().await;
    let r = h.get(A, "/latest/user-data").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"#cloud-config\nhostname: a\n");
    let binary: Vec<u8> = (0..=255).collect();
    h.edit(A, |m| m.user_data = Some(binary.clone()));
    assert_eq!(h.get(A, "/2009-04-04/user-data").await.body, binary);
    h.edit(A, |m| m.user_data = Some(Vec::new()));
    assert_eq!(h.get(A, "/latest/user-data").await.status, 404);
}

#[tokio::test]
async fn identity_document_is_ec2s() {
    let h = Harness::start().await;
    assert_eq!(
        h.get(A, "/latest/dynamic/").await.text(),
        "instance-identity/"
    );
    assert_eq!(
        h.get(A, "/latest/dynamic").await.text(),
        "instance-identity/"
    );
    assert_eq!(
        h.get(A, "/latest/dynamic/instance-identity/").await.text(),
        "document"
    );
    let r = h.get(A, "/latest/dynamic/instance-identity/document").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain"));
    let want = r#"{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-east-1a",
  "billingProducts" : null,
  "devpayProductCodes" : null,
  "marketplaceProductCodes" : null,
  "imageId" : "ami-0123456789abcdef0",
  "instanceId" : "i-0aaaaaaaaaaaaaaaa",
  "instanceType" : "t3.micro",
  "kernelId" : null,
  "pendingTime" : "2026-11-26T09:00:00Z",
  "privateIp" : "10.0.1.5",
  "ramdiskId" : null,
  "region" : "us-east-1",
  "version" : "2017-09-30"
}"#;
    assert_eq!(r.text(), want);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["instanceId"], "i-0aaaaaaaaaaaaaaaa");

    let b = h.get(B, "/latest/dynamic/instance-identity/document").await;
    let v: serde_json::Value = serde_json::from_slice(&b.body).unwrap();
    assert_eq!(v["kernelId"], "aki-0123456789abcdef0");
    assert_eq!(v["ramdiskId"], "ari-0123456789abcdef0");
    for signed in ["signature", "pkcs7", "rsa2048"] {
        let r = h
            .get(A, &format!("/latest/dynamic/instance-identity/{signed}"))
            .await;
        assert_eq!(r.status, 404, "{signed}");
    }
}

#[tokio::test]
async fn trailing_slashes_and_unknown_paths() {
    let h = Harness::start().await;
    // Directories with or without slash; values too.
    assert_eq!(
        h.get(A, "/latest/meta-data/placement").await.text(),
        h.get(A, "/latest/meta-data/placement/").await.text()
    );
    assert_eq!(
        h.get(A, "/latest/meta-data/instance-id/").await.text(),
        "i-0aaaaaaaaaaaaaaaa"
    );
    assert_eq!(
        h.get(A, "//latest//meta-data/instance-id").await.text(),
        "i-0aaaaaaaaaaaaaaaa"
    );
    assert_eq!(
        h.get(A, "/latest/meta-data/instance-id?x=1").await.text(),
        "i-0aaaaaaaaaaaaaaaa"
    );
    for p in [
        "/latest/meta-data/nothing",
        "/latest/meta-data/instance-id/more",
        "/latest/meta-data/iam/",
        "/latest/dynamic/instance-identity/document/x",
        "/favicon.ico",
    ] {
        let r = h.get(A, p).await;
        assert_eq!(r.status, 404, "{p}");
        assert_eq!(r.header("server"), Some("EC2ws"));
        assert!(
            r.text().contains("<h1>404 - Not Found</h1>"),
            "{}",
            r.text()
        );
    }
}

#[tokio::test]
async fn serve_stops_when_dropped() {
    let h = Harness::start().await;
    // An idle keep-alive connection is open while the service goes away.
    let mut idle = TcpStream::connect(h.addr).await.unwrap();
    idle.write_all(request("GET", "/", &[], false).as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(n > 0);
    let addr = h.addr;
    drop(h);
    // The aborted connection task closes the socket; the listener is gone.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
        .await
        .expect("connection closed with the service")
        .ok();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(addr).await.is_err());
}

// ---- namespaces ----

/// Deletes the test namespace even when the test fails.
struct NetnsGuard(String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn ip(args: &[&str]) {
    let status = std::process::Command::new("ip")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "ip {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_in_namespace_serves_inside_it() {
    if !strato_common::host::is_root() {
        eprintln!("skipped: bind_in_namespace needs root (setns, ip netns)");
        return;
    }
    if std::process::Command::new("ip").arg("-V").output().is_err() {
        eprintln!("skipped: no `ip` command");
        return;
    }
    let ns = format!("strato-imdstest-{}", std::process::id());
    ip(&["netns", "add", &ns]);
    let _guard = NetnsGuard(ns.clone());
    ip(&["-n", &ns, "link", "set", "lo", "up"]);
    ip(&["-n", &ns, "addr", "add", "169.254.169.254/32", "dev", "lo"]);
    ip(&["-n", &ns, "addr", "add", "10.0.1.5/32", "dev", "lo"]);

    let source = Arc::new(Fake(Mutex::new(HashMap::from([(
        "10.0.1.5".parse().unwrap(),
        instance_a(),
    )]))));
    let imds = Imds::new(source);
    let std_listener = bind_in_namespace(&ns, "169.254.169.254:80".parse().unwrap()).unwrap();
    let listener = TcpListener::from_std(std_listener).unwrap();
    let task = tokio::spawn(serve(imds, VPC.to_string(), listener));

    // The socket lives in the namespace: the address it holds is not local here
    // (checked with bind, which sends nothing; tests send no traffic outside
    // loopback and their own namespaces).
    assert_eq!(
        std::net::TcpListener::bind("169.254.169.254:0")
            .map(drop)
            .map_err(|e| e.kind()),
        Err(io::ErrorKind::AddrNotAvailable),
        "169.254.169.254 must not be local to the test's own namespace"
    );

    // A client thread inside the namespace, from the instance's address.
    let ns_file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
    let client = std::thread::spawn(move || -> io::Result<Vec<u8>> {
        use std::os::fd::AsFd;
        rustix::thread::move_into_link_name_space(
            ns_file.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )?;
        // A runtime of this thread's own, so its sockets are made in the namespace.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let sock = TcpSocket::new_v4()?;
            sock.bind("10.0.1.5:0".parse().unwrap())?;
            let mut s = sock.connect("169.254.169.254:80".parse().unwrap()).await?;
            let req = request("GET", "/latest/meta-data/instance-id", &[], true);
            s.write_all(req.as_bytes()).await?;
            let mut out = Vec::new();
            s.read_to_end(&mut out).await?;
            Ok(out)
        })
    });
    let out = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap()
        .unwrap();
    task.abort();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.ends_with("\r\n\r\ni-0aaaaaaaaaaaaaaaa"), "{out}");
    assert!(bind_in_namespace("../etc", "127.0.0.1:0".parse().unwrap()).is_err());
}
