//! The layering of the workspace, checked from the manifests: a crate may depend only on
//! the layers below it. The tree reads bottom-up as
//!
//! ```text
//! common → domain → store → control → server → strato (binary)
//!        ↘ agent-api → drivers → agent ↗
//! ```
//!
//! with the wire codecs (`sigv4`, `ec2-wire`) used only by the front door. Only normal
//! `[dependencies]` count: tests may assemble the whole stack.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::BTreeMap;
use std::path::Path;

/// Each crate's normal dependencies on other workspace crates.
fn workspace_deps() -> BTreeMap<String, Vec<String>> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let doc: toml::Table = text.parse().unwrap();
        let name = doc["package"]["name"].as_str().unwrap().to_string();
        let deps = doc
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| {
                t.keys()
                    .filter(|k| k.starts_with("strato"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        out.insert(name, deps);
    }
    out
}

/// (crate, a crate it must never depend on, why).
const FORBIDDEN: &[(&str, &str, &str)] = &[
    (
        "strato-server",
        "strato-store",
        "the front door reaches data only through the control plane",
    ),
    (
        "strato-server",
        "strato-drivers",
        "the front door knows no hypervisor",
    ),
    (
        "strato-server",
        "strato-agent",
        "the front door knows no host agent",
    ),
    (
        "strato-control",
        "strato-ec2-wire",
        "the control plane knows no wire format",
    ),
    (
        "strato-control",
        "strato-server",
        "the control plane is below the front door",
    ),
    (
        "strato-drivers",
        "strato-control",
        "drivers act on specs, not on the control plane",
    ),
    (
        "strato-drivers",
        "strato-store",
        "drivers never read the database",
    ),
    (
        "strato-agent",
        "strato-control",
        "the agent talks to the control plane through agent-api",
    ),
    (
        "strato-agent",
        "strato-store",
        "the agent never reads the database",
    ),
    (
        "strato-store",
        "strato-control",
        "the store is below the control plane",
    ),
    (
        "strato-domain",
        "strato-store",
        "domain records carry no I/O",
    ),
    (
        "strato-common",
        "strato-domain",
        "common is the bottom layer",
    ),
    (
        "strato-scheduler",
        "strato-store",
        "placement is pure: it reads no database",
    ),
    (
        "strato-scheduler",
        "strato-drivers",
        "placement is pure: it touches no host",
    ),
    (
        "strato-scheduler",
        "strato-control",
        "the control plane calls placement, not the other way round",
    ),
];

#[test]
fn no_crate_depends_on_a_layer_it_must_not() {
    let deps = workspace_deps();
    assert!(deps.len() >= 10, "found only {:?}", deps.keys());
    let mut broken = vec![];
    for (krate, forbidden, why) in FORBIDDEN {
        let Some(d) = deps.get(*krate) else {
            broken.push(format!("{krate} is missing from the workspace"));
            continue;
        };
        if d.iter().any(|x| x == forbidden) {
            broken.push(format!("{krate} depends on {forbidden}: {why}"));
        }
    }
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn the_check_sees_real_dependencies() {
    // Guards the parser: the binary does depend on the server, the server on control.
    let deps = workspace_deps();
    assert!(deps["strato"].iter().any(|d| d == "strato-server"));
    assert!(deps["strato-server"].iter().any(|d| d == "strato-control"));
}
