//! The metadata tree of one instance: the paths under `/<version>/` and what they
//! answer, built from an [`InstanceMetadata`].
//!
//! Directories list their entries one per line (no trailing newline), directories
//! among them with a trailing `/`, like EC2. Entries that have no value for this
//! instance (public IPv4 without a public address, `kernel-id` without a kernel,
//! `public-keys/` without a key pair, `tags/` with tags off) are left out of the
//! listing and answer 404, as on EC2.

use std::cmp::Ordering;
use strato_agent_api::metadata::{InstanceMetadata, InterfaceMetadata};
use time::macros::format_description;
use time::OffsetDateTime;

/// Metadata versions listed at `/`. Every one (and `latest`) serves the same tree:
/// nothing Strato serves differs between versions, and clients such as cloud-init
/// probe dated versions (2021-03-23 down to 2009-04-04) and use the first that
/// answers.
pub const VERSIONS: &[&str] = &[
    "1.0",
    "2007-01-19",
    "2007-03-01",
    "2007-08-29",
    "2007-10-10",
    "2007-12-15",
    "2008-02-01",
    "2008-09-01",
    "2009-04-04",
    "2011-01-01",
    "2011-05-01",
    "2012-01-12",
    "2014-02-25",
    "2014-11-05",
    "2015-10-20",
    "2016-04-19",
    "2016-06-30",
    "2016-09-02",
    "2018-03-28",
    "2018-08-17",
    "2018-09-24",
    "2019-10-01",
    "2020-10-27",
    "2021-01-03",
    "2021-03-23",
    "2021-07-15",
    "2022-09-24",
    "2023-03-01",
    "latest",
];

/// What a path resolves to.
#[derive(Debug)]
pub(crate) enum Node {
    Dir(Vec<Entry>),
    Leaf(Vec<u8>),
}

#[derive(Debug)]
pub(crate) struct Entry {
    name: String,
    /// How the entry appears in its parent's listing when that is not simply the
    /// name (`0=my-key` under `public-keys/`, `meta-data` without slash under a
    /// version).
    label: Option<String>,
    node: Node,
}

fn leaf(name: &str, value: impl Into<Vec<u8>>) -> Entry {
    Entry {
        name: name.to_string(),
        label: None,
        node: Node::Leaf(value.into()),
    }
}

fn dir(name: &str, mut entries: Vec<Entry>) -> Entry {
    entries.sort_by(|a, b| listing_order(&a.name, &b.name));
    Entry {
        name: name.to_string(),
        label: None,
        node: Node::Dir(entries),
    }
}

fn labelled(mut e: Entry, label: String) -> Entry {
    e.label = Some(label);
    e
}

/// Alphabetical, except that numeric names (public key indexes) sort as numbers.
fn listing_order(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

impl Node {
    /// The bytes a GET of this node returns.
    pub(crate) fn into_body(self) -> Vec<u8> {
        match self {
            Node::Leaf(v) => v,
            Node::Dir(entries) => entries
                .iter()
                .map(|e| match (&e.label, &e.node) {
                    (Some(l), _) => l.clone(),
                    (None, Node::Dir(_)) => format!("{}/", e.name),
                    (None, Node::Leaf(_)) => e.name.clone(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes(),
        }
    }

    fn child(self, name: &str) -> Option<Node> {
        match self {
            Node::Leaf(_) => None,
            Node::Dir(entries) => entries.into_iter().find(|e| e.name == name).map(|e| e.node),
        }
    }
}

/// Resolves a request path, given as its non-empty, percent-decoded segments
/// (`[]` is `/`). `None` is 404.
///
/// A trailing slash does not matter: directories answer with and without it, and
/// so do values (EC2 is lenient the same way, and clients build paths both ways).
pub(crate) fn resolve(md: &InstanceMetadata, segments: &[String]) -> Option<Node> {
    let Some((version, rest)) = segments.split_first() else {
        return Some(Node::Leaf(VERSIONS.join("\n").into_bytes()));
    };
    if !VERSIONS.contains(&version.as_str()) {
        return None;
    }
    let mut node = version_tree(md);
    for seg in rest {
        node = node.child(seg)?;
    }
    Some(node)
}

/// `/<version>/`: `dynamic`, `meta-data` and `user-data`, listed without slashes
/// as EC2 does at this level.
fn version_tree(md: &InstanceMetadata) -> Node {
    let mut entries = vec![
        labelled(dynamic(md), "dynamic".into()),
        labelled(meta_data(md), "meta-data".into()),
    ];
    // EC2 stores no empty user data: without any, the path is absent.
    if let Some(ud) = md.user_data.as_ref().filter(|u| !u.is_empty()) {
        entries.push(leaf("user-data", ud.clone()));
    }
    let Entry { node, .. } = dir("", entries);
    node
}

fn dynamic(md: &InstanceMetadata) -> Entry {
    // The signed forms (`signature`, `pkcs7`, `rsa2048`) need an AWS-style signing
    // certificate nobody could verify against; they are left out (404).
    dir(
        "dynamic",
        vec![dir(
            "instance-identity",
            vec![leaf("document", identity_document(md))],
        )],
    )
}

fn lines<S: AsRef<str>>(items: &[S]) -> String {
    items
        .iter()
        .map(|s| s.as_ref())
        .collect::<Vec<_>>()
        .join("\n")
}

fn meta_data(md: &InstanceMetadata) -> Entry {
    let mut e = vec![
        leaf("ami-id", md.image_id.as_str()),
        leaf("ami-launch-index", md.launch_index.to_string()),
        leaf("ami-manifest-path", "(unknown)"),
        dir(
            "block-device-mapping",
            if md.block_devices.is_empty() {
                vec![leaf("ami", "/dev/xvda"), leaf("root", "/dev/xvda")]
            } else {
                md.block_devices
                    .iter()
                    .map(|(name, device)| leaf(name, device.as_str()))
                    .collect()
            },
        ),
        leaf("hostname", md.local_hostname.as_str()),
        leaf("instance-action", "none"),
        leaf("instance-id", md.instance_id.as_str()),
        leaf("instance-life-cycle", "on-demand"),
        leaf("instance-type", md.instance_type.as_str()),
        leaf("local-hostname", md.local_hostname.as_str()),
        leaf("local-ipv4", md.private_ip.as_str()),
        leaf("reservation-id", md.reservation_id.as_str()),
        leaf("security-groups", lines(&md.security_groups)),
        dir(
            "services",
            vec![leaf("domain", "amazonaws.com"), leaf("partition", "aws")],
        ),
    ];
    if let Some(k) = &md.kernel_id {
        e.push(leaf("kernel-id", k.as_str()));
    }
    if let Some(r) = &md.ramdisk_id {
        e.push(leaf("ramdisk-id", r.as_str()));
    }
    if let Some(primary) = md.interfaces.first() {
        e.push(leaf("mac", primary.mac.as_str()));
    }
    if !md.interfaces.is_empty() {
        let macs = md.interfaces.iter().map(interface).collect();
        e.push(dir(
            "network",
            vec![dir("interfaces", vec![dir("macs", macs)])],
        ));
    }
    let mut placement = vec![
        leaf("availability-zone", md.availability_zone.as_str()),
        leaf("region", md.region.as_str()),
    ];
    if !md.availability_zone_id.is_empty() {
        placement.push(leaf(
            "availability-zone-id",
            md.availability_zone_id.as_str(),
        ));
    }
    e.push(dir("placement", placement));
    if let Some(ip) = &md.public_ip {
        e.push(leaf("public-ipv4", ip.as_str()));
        if let Some(h) = &md.public_hostname {
            e.push(leaf("public-hostname", h.as_str()));
        }
    }
    if !md.public_keys.is_empty() {
        let keys = md
            .public_keys
            .iter()
            .enumerate()
            .map(|(i, (name, key))| {
                let idx = i.to_string();
                labelled(
                    dir(&idx, vec![leaf("openssh-key", key.as_str())]),
                    format!("{idx}={name}"),
                )
            })
            .collect();
        e.push(dir("public-keys", keys));
    }
    if md.options.tags_enabled {
        // A key that is empty or holds a `/` cannot be a path segment (EC2 refuses
        // such keys while tags are in metadata); it is left out.
        let tags = md
            .tags
            .iter()
            .filter(|(k, _)| !k.is_empty() && !k.contains('/'))
            .map(|(k, v)| leaf(k, v.as_str()))
            .collect();
        e.push(dir("tags", vec![dir("instance", tags)]));
    }
    dir("meta-data", e)
}

/// `network/interfaces/macs/<mac>/`.
fn interface(nic: &InterfaceMetadata) -> Entry {
    let mut e = vec![
        leaf("device-number", nic.device_number.to_string()),
        leaf("interface-id", nic.interface_id.as_str()),
        leaf("local-hostname", nic.local_hostname.as_str()),
        leaf("local-ipv4s", nic.private_ip.as_str()),
        leaf("mac", nic.mac.as_str()),
        leaf("owner-id", nic.owner_id.as_str()),
        leaf("security-group-ids", lines(&nic.security_group_ids)),
        leaf("security-groups", lines(&nic.security_groups)),
        leaf("subnet-id", nic.subnet_id.as_str()),
        leaf("subnet-ipv4-cidr-block", nic.subnet_cidr.as_str()),
        leaf("vpc-id", nic.vpc_id.as_str()),
        leaf("vpc-ipv4-cidr-block", nic.vpc_cidr.as_str()),
        leaf("vpc-ipv4-cidr-blocks", nic.vpc_cidr.as_str()),
    ];
    if let Some(public) = &nic.public_ip {
        e.push(leaf("public-ipv4s", public.as_str()));
        // Public address → the private address it maps to.
        e.push(dir(
            "ipv4-associations",
            vec![leaf(public, nic.private_ip.as_str())],
        ));
    }
    dir(&nic.mac, e)
}

/// `dynamic/instance-identity/document`, laid out like EC2's: two-space indent,
/// `" : "` between key and value, EC2's key order, `null` for absent values.
pub(crate) fn identity_document(md: &InstanceMetadata) -> String {
    let s = |v: &str| serde_json::Value::from(v).to_string();
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_string(), s);
    let fields: [(&str, String); 15] = [
        ("accountId", s(&md.account_id)),
        ("architecture", s(&md.architecture)),
        ("availabilityZone", s(&md.availability_zone)),
        ("billingProducts", "null".into()),
        ("devpayProductCodes", "null".into()),
        ("marketplaceProductCodes", "null".into()),
        ("imageId", s(&md.image_id)),
        ("instanceId", s(&md.instance_id)),
        ("instanceType", s(&md.instance_type)),
        ("kernelId", opt(&md.kernel_id)),
        ("pendingTime", s(&pending_time(md.launch_time_ms))),
        ("privateIp", s(&md.private_ip)),
        ("ramdiskId", opt(&md.ramdisk_id)),
        ("region", s(&md.region)),
        ("version", s("2017-09-30")),
    ];
    let body = fields
        .iter()
        .map(|(k, v)| format!("  \"{k}\" : {v}"))
        .collect::<Vec<_>>()
        .join(",\n");
    format!("{{\n{body}\n}}")
}

/// Epoch milliseconds as `2026-11-26T09:00:00Z` (whole seconds, like EC2).
fn pending_time(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_time_is_iso8601_seconds() {
        assert_eq!(pending_time(1_795_683_600_123), "2026-11-26T09:00:00Z");
        assert_eq!(pending_time(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn numeric_names_sort_as_numbers() {
        let mut v = vec!["10", "2", "0", "b", "a"];
        v.sort_by(|a, b| listing_order(a, b));
        assert_eq!(v, ["0", "2", "10", "a", "b"]);
    }
}
