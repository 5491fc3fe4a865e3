//! `qemu-img`: making, measuring and growing qcow2 files that no process is serving.
//!
//! Encrypted disks are LUKS inside qcow2. QEMU reads their key from a file through a
//! `secret` object (`file=`, never a command-line value), so the key never appears in
//! a process list.

use super::VolumeInfo;
use crate::proc::io_err;
use std::path::Path;
use std::process::Command;
use strato_common::{Error, Result};

/// The id of the secret object holding a volume's key in every QEMU command line.
pub(crate) const SECRET_ID: &str = "vol-key";

/// PBKDF2 time per LUKS key slot, in ms. The passphrase is itself a random 256-bit
/// key, so stretching it protects nothing; a short time keeps opening a disk (every
/// serve) fast. (Making one still takes about a second and a half: qemu-img always
/// benchmarks the hash first.)
const LUKS_ITER_TIME_MS: u32 = 10;

/// Keyval escaping for a path inside a QEMU option string (commas are doubled).
fn kv(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// `--object secret,…` reading a key file.
fn secret_object(key: &Path) -> String {
    format!("secret,id={SECRET_ID},file={},format=raw", kv(key))
}

fn run(what: &str, cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .map_err(|e| io_err(&format!("running {what}"), e))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Makes a sparse qcow2 file of `size_bytes` (LUKS-encrypted with the key in `key`).
pub(crate) fn create(path: &Path, size_bytes: u64, key: Option<&Path>) -> Result<()> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["create", "-q", "-f", "qcow2"]);
    if let Some(key) = key {
        cmd.arg("--object").arg(secret_object(key)).arg("-o").arg(format!(
            "encrypt.format=luks,encrypt.key-secret={SECRET_ID},encrypt.iter-time={LUKS_ITER_TIME_MS}"
        ));
    }
    cmd.arg(path).arg(size_bytes.to_string());
    run("qemu-img create", &mut cmd).map(|_| ())
}

/// Sizes of a qcow2 file. `-U` (force-share) lets it read a disk a daemon has open.
pub(crate) fn info(path: &Path) -> Option<VolumeInfo> {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(VolumeInfo {
        size_bytes: v["virtual-size"].as_u64()?,
        allocated_bytes: v["actual-size"].as_u64().unwrap_or(0),
    })
}

/// Grows a qcow2 file nobody has open. An encrypted one must be opened with its key,
/// hence `--image-opts`.
pub(crate) fn resize(path: &Path, size_bytes: u64, key: Option<&Path>) -> Result<()> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["resize", "-q"]);
    match key {
        Some(key) => {
            cmd.arg("--object")
                .arg(secret_object(key))
                .arg("--image-opts")
                .arg(format!(
                    "driver=qcow2,file.filename={},encrypt.key-secret={SECRET_ID}",
                    kv(path)
                ));
        }
        None => {
            cmd.args(["-f", "qcow2"]).arg(path);
        }
    }
    cmd.arg(size_bytes.to_string());
    run("qemu-img resize", &mut cmd).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_in_paths_are_escaped() {
        assert_eq!(kv(Path::new("/a,b/c")), "/a,,b/c");
        assert_eq!(
            secret_object(Path::new("/v/key")),
            "secret,id=vol-key,file=/v/key,format=raw"
        );
    }
}
