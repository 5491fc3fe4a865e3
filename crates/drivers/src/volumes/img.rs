//! `qemu-img`: making, measuring, growing and flattening the qcow2 files of layers that
//! no process is writing.
//!
//! Encrypted layers are LUKS inside qcow2. QEMU reads a layer's key from its file
//! through a `secret` object (`file=`, never a command-line value), so a key never
//! appears in a process list. Each encrypted layer has a secret object of its own,
//! `key-<layer id>` ([`secret_id`]), in every QEMU command line.
//!
//! A chain of layers is always opened from the layers' records, never from the backing
//! file names in the qcow2 headers: qemu-img gets a `json:` filename naming every
//! layer's file, key and parent ([`chain_json`]), as the daemon gets one `--blockdev`
//! per layer.

use super::layers::ChainLayer;
use super::VolumeInfo;
use crate::proc::io_err;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use strato_common::{Error, Result};

/// PBKDF2 time per LUKS key slot, in ms. The passphrase is itself a random 256-bit
/// key, so stretching it protects nothing; a short time keeps opening a layer (every
/// serve) fast. (Making one still takes about two seconds: qemu-img always
/// benchmarks the hash first.)
const LUKS_ITER_TIME_MS: u32 = 10;

/// The id of the secret object holding a layer's key.
pub(crate) fn secret_id(layer: &str) -> String {
    format!("key-{layer}")
}

/// Keyval escaping for a path inside a QEMU option string (commas are doubled).
fn kv(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// `--object secret,…` reading a key file.
fn secret_object(id: &str, key: &Path) -> String {
    format!("secret,id={id},file={},format=raw", kv(key))
}

/// `-o` options encrypting a new image with the key in secret object `secret`.
fn encrypt_opts(secret: &str) -> String {
    format!("encrypt.format=luks,encrypt.key-secret={secret},encrypt.iter-time={LUKS_ITER_TIME_MS}")
}

/// What qemu-img says when its PBKDF2 benchmark measured no CPU time at all.
///
/// Before making a LUKS header, QEMU times a round of PBKDF2 by the thread's user CPU
/// time (`getrusage`), which the kernel splits from system time by tick samples: on a
/// busy host a round can read as 0 ms and QEMU gives up. Nothing is wrong with the
/// request, so the command is run again.
const PBKDF_UNMEASURED: &str = "Unable to get accurate CPU usage";

/// How many times a command is run when only the PBKDF2 benchmark failed.
const PBKDF_ATTEMPTS: usize = 5;

fn run(what: &str, cmd: &mut Command) -> Result<Vec<u8>> {
    let mut attempt = 1;
    loop {
        let out = cmd
            .output()
            .map_err(|e| io_err(&format!("running {what}"), e))?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains(PBKDF_UNMEASURED) && attempt < PBKDF_ATTEMPTS {
            // The output file, if any, is replaced by the next run (create and convert
            // both truncate it).
            attempt += 1;
            continue;
        }
        return Err(Error::Internal(format!("{what} failed: {}", stderr.trim())));
    }
}

/// Makes a sparse qcow2 file of `size_bytes`, LUKS-encrypted with `key` (secret object
/// id, key file), over `backing` (a parent layer's file, which is not opened: its name
/// in the header is informative only, see the module docs).
pub(crate) fn create(
    path: &Path,
    size_bytes: u64,
    key: Option<(&str, &Path)>,
    backing: Option<&Path>,
) -> Result<()> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["create", "-q", "-f", "qcow2"]);
    if let Some(backing) = backing {
        cmd.args(["-u", "-F", "qcow2", "-b"]).arg(backing);
    }
    if let Some((secret, key)) = key {
        cmd.arg("--object")
            .arg(secret_object(secret, key))
            .arg("-o")
            .arg(encrypt_opts(secret));
    }
    cmd.arg(path).arg(size_bytes.to_string());
    run("qemu-img create", &mut cmd).map(|_| ())
}

/// Makes an empty sparse qcow2 file of `size_bytes` (any size: a qcow2 image rounds
/// nothing), replacing any file there.
pub(crate) fn create_plain(path: &Path, size_bytes: u64) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let mut cmd = Command::new("qemu-img");
    cmd.args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(size_bytes.to_string());
    run("qemu-img create", &mut cmd).map(|_| ())
}

/// Sizes of one qcow2 file (its parents are not opened). `-U` (force-share) lets it
/// read a layer a daemon has open.
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

/// The blockdev options of a chain (top first) as one nested JSON object: each layer a
/// qcow2 node over its file, with its key when encrypted and its parent as `backing`
/// (`null` below the last). Layers below the top are opened read-only.
pub(crate) fn chain_json(chain: &[ChainLayer]) -> Value {
    let mut below = Value::Null;
    for (i, l) in chain.iter().enumerate().rev() {
        let mut node = json!({
            "driver": "qcow2",
            "file": {"driver": "file", "filename": l.path.display().to_string()},
            "backing": below,
        });
        if l.key.is_some() {
            node["encrypt"] = json!({"format": "luks", "key-secret": secret_id(&l.id)});
        }
        if i > 0 {
            node["read-only"] = json!(true);
        }
        below = node;
    }
    below
}

/// `--object` arguments with the keys of a chain's encrypted layers.
fn chain_secrets(cmd: &mut Command, chain: &[ChainLayer]) {
    for l in chain {
        if let Some(key) = &l.key {
            cmd.arg("--object")
                .arg(secret_object(&secret_id(&l.id), key));
        }
    }
}

fn chain_filename(chain: &[ChainLayer]) -> String {
    format!("json:{}", chain_json(chain))
}

/// Grows the top of a chain nobody has open (the chain is opened whole, each layer
/// with its key: a qcow2 driver growing over a parent wants to see it).
pub(crate) fn resize(chain: &[ChainLayer], size_bytes: u64) -> Result<()> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["resize", "-q"]);
    chain_secrets(&mut cmd, chain);
    cmd.arg(chain_filename(chain)).arg(size_bytes.to_string());
    run("qemu-img resize", &mut cmd).map(|_| ())
}

/// Copies what a chain (top first) reads as into a new qcow2 file without a parent,
/// LUKS-encrypted with `key` (secret object id, key file). Sparse: what reads as zeros
/// is not written. The chain's layers are only read (`-U`: one of them may be open in a
/// daemon as a read-only parent).
pub(crate) fn convert(chain: &[ChainLayer], out: &Path, key: Option<(&str, &Path)>) -> Result<()> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-q", "-U", "-O", "qcow2"]);
    chain_secrets(&mut cmd, chain);
    if let Some((secret, key)) = key {
        cmd.arg("--object")
            .arg(secret_object(secret, key))
            .arg("-o")
            .arg(encrypt_opts(secret));
    }
    cmd.arg(chain_filename(chain)).arg(out);
    run("qemu-img convert", &mut cmd).map(|_| ())
}

/// The format of a disk image (`qcow2`, `raw`…) as qemu-img detects it.
pub(crate) fn format(path: &Path) -> Result<String> {
    let out = run(
        "qemu-img info",
        Command::new("qemu-img")
            .args(["info", "--output=json", "-U"])
            .arg(path),
    )?;
    let info: Value = serde_json::from_slice(&out).map_err(Error::internal)?;
    info["format"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Internal(format!("qemu-img info {}: no format", path.display())))
}

/// Copies a disk image from outside the store (a machine image's root disk, qcow2 or
/// raw, without a parent of its own) into a new qcow2 file without a parent. Sparse:
/// what reads as zeros is not written.
pub(crate) fn import(src: &Path, out: &Path) -> Result<()> {
    let fmt = format(src)?;
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-q", "-U", "-f", &fmt, "-O", "qcow2"])
        .arg(src)
        .arg(out);
    run("qemu-img convert", &mut cmd).map(|_| ())
}

/// The qemu-img format of an EC2 disk container format (`RAW`, `VMDK`, `VHD`, `VHDX`,
/// `QCOW2`; any case): VHD is qemu's `vpc`.
pub fn qemu_format(ec2: &str) -> Option<&'static str> {
    match ec2.to_ascii_lowercase().as_str() {
        "raw" => Some("raw"),
        "vmdk" => Some("vmdk"),
        "vhd" | "vpc" => Some("vpc"),
        "vhdx" => Some("vhdx"),
        "qcow2" => Some("qcow2"),
        _ => None,
    }
}

/// The EC2 name of a qemu-img format, for messages.
fn ec2_format(fmt: &str) -> String {
    match fmt {
        "vpc" => "VHD".into(),
        f => f.to_ascii_uppercase(),
    }
}

/// What [`check_disk`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedDisk {
    /// The virtual size, bytes.
    pub size: u64,
    /// For a bootable disk: the firmware its partitions are made for ([`boot_mode_of`]).
    pub boot_mode: Option<&'static str>,
}

/// Checks that `path` is a disk image of qemu-img format `fmt` and returns its virtual
/// size. With `bootable`, it must also start with a partition table (MBR or GPT), a
/// boot sector or a file system (ext2/3/4, XFS), and the boot mode its partitions show
/// is read from the same first bytes. Errors are [`Error::InvalidParameterValue`] with
/// a message for the user.
pub fn check_disk(path: &Path, fmt: &str, bootable: bool) -> Result<CheckedDisk> {
    let bad = |why: String| Error::InvalidParameterValue(why);
    let meta =
        std::fs::metadata(path).map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(bad(format!("{} is not a file", path.display())));
    }
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(path)
        .output()
        .map_err(|e| io_err("running qemu-img info", e))?;
    if !out.status.success() {
        return Err(bad(format!(
            "{} is not a disk image qemu-img can read: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let info: Value = serde_json::from_slice(&out.stdout).map_err(Error::internal)?;
    let found = info["format"].as_str().unwrap_or("raw");
    if found != fmt {
        return Err(bad(if found == "raw" {
            format!(
                "{} is not a {} disk image: it has no {} header",
                path.display(),
                ec2_format(fmt),
                ec2_format(fmt)
            )
        } else {
            format!(
                "{} is a {} disk image, not {}",
                path.display(),
                ec2_format(found),
                ec2_format(fmt)
            )
        }));
    }
    // qemu-img rounds a raw file up to whole sectors: the file's own length counts.
    let size = if fmt == "raw" {
        meta.len()
    } else {
        info["virtual-size"].as_u64().unwrap_or(0)
    };
    if size == 0 || size % 512 != 0 {
        return Err(bad(format!(
            "{} is not a disk image: its size ({size} bytes) is not a whole number of 512-byte sectors",
            path.display()
        )));
    }
    let mut boot_mode = None;
    if bootable {
        // Enough for the GPT header and 128 entries of 128 bytes after it.
        let n = usize::try_from(size.min(64 * 1024)).expect("at most 64 KiB");
        let head = first_bytes(path, fmt, n)?;
        let at = |o: usize, m: &[u8]| head.get(o..o + m.len()) == Some(m);
        let known = at(510, &[0x55, 0xAA]) // MBR, or a protective MBR before GPT
            || at(512, b"EFI PART") // GPT header
            || at(1080, &[0x53, 0xEF]) // ext2/3/4 superblock magic
            || at(0, b"XFSB");
        if !known {
            return Err(bad(format!(
                "{} has no partition table, boot sector or file system: it is not a bootable disk image",
                path.display()
            )));
        }
        boot_mode = boot_mode_of(&head);
    }
    Ok(CheckedDisk { size, boot_mode })
}

/// GPT partition type of an EFI system partition (C12A7328-F81F-11D2-BA4B-00A0C93EC93B),
/// as stored on disk (the first three fields little-endian).
const GPT_ESP: [u8; 16] = [
    0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B,
];
/// GPT partition type of a BIOS boot partition, where GRUB for BIOS keeps its core on a
/// GPT disk (21686148-6449-6E6F-744E-656564454649).
const GPT_BIOS_BOOT: [u8; 16] = *b"Hah!IdontNeedEFI";
/// MBR partition type of an EFI system partition.
const MBR_ESP: u8 = 0xEF;

/// The firmware the partitions of a disk image (its first 64 KiB) are made for, as
/// ImportImage takes it when the request names no boot mode: `uefi` for a disk that has an EFI system
/// partition and nothing a BIOS boots (no BIOS boot partition on GPT, no boot code in
/// the MBR), `legacy-bios` for one a BIOS boots, `None` when the partition table does
/// not tell (a disk without one, or a GPT too large to read here). A disk made for both
/// (as Debian's and Ubuntu's cloud images are) is `legacy-bios`, EC2's default.
fn boot_mode_of(head: &[u8]) -> Option<&'static str> {
    let u32_at = |o: usize| {
        head.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let u64_at = |o: usize| {
        head.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if head.get(510..512) != Some(&[0x55, 0xAA][..]) {
        return None;
    }
    // The MBR's boot code: zeros when nothing was installed for a BIOS to run.
    let mbr_code = head[..440].iter().any(|&b| b != 0);
    let (esp, bios_boot) = if head.get(512..520) == Some(&b"EFI PART"[..]) {
        let first = usize::try_from(u64_at(512 + 72)?).ok()?.checked_mul(512)?;
        let count = u32_at(512 + 80)? as usize;
        let size = u32_at(512 + 84)? as usize;
        if size < 16 {
            return None;
        }
        let types: Vec<&[u8]> = (0..count)
            .map_while(|i| head.get(first + i * size..first + i * size + 16))
            .collect();
        (
            types.iter().any(|t| *t == GPT_ESP),
            types.iter().any(|t| *t == GPT_BIOS_BOOT),
        )
    } else {
        let esp = (0..4).any(|i| head[446 + i * 16 + 4] == MBR_ESP);
        (esp, false)
    };
    match (esp, bios_boot || mbr_code) {
        (true, false) => Some("uefi"),
        (_, true) => Some("legacy-bios"),
        (false, false) => None,
    }
}

/// The first `n` bytes a disk image reads as (through its format).
fn first_bytes(path: &Path, fmt: &str, n: usize) -> Result<Vec<u8>> {
    let tmp = tempfile::NamedTempFile::new().map_err(|e| io_err("a temporary file", e))?;
    run(
        "qemu-img dd",
        Command::new("qemu-img")
            .args([
                "dd",
                "-U",
                "-f",
                fmt,
                "-O",
                "raw",
                &format!("bs={n}"),
                "count=1",
            ])
            .arg(format!("if={}", path.display()))
            .arg(format!("of={}", tmp.path().display())),
    )?;
    std::fs::read(tmp.path()).map_err(|e| io_err("reading a disk's first bytes", e))
}

/// Converts a disk image of qemu-img format `fmt` from outside the store into a new
/// qcow2 file without a parent, LUKS-encrypted with `key` (secret object id, key
/// file), calling `progress` with the percentage done as qemu-img reports it.
pub(crate) fn import_disk(
    src: &Path,
    fmt: &str,
    out: &Path,
    key: Option<(&str, &Path)>,
    progress: &dyn Fn(u8),
) -> Result<()> {
    use std::io::Read;
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-p", "-U", "-f", fmt, "-O", "qcow2"]);
    if let Some((secret, key)) = key {
        cmd.arg("--object")
            .arg(secret_object(secret, key))
            .arg("-o")
            .arg(encrypt_opts(secret));
    }
    cmd.arg(src).arg(out);
    for attempt in 1..=PBKDF_ATTEMPTS {
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| io_err("running qemu-img convert", e))?;
        // `-p` prints `    (12.34/100%)` and a carriage return as it goes.
        let mut stdout = child.stdout.take().expect("piped");
        let mut buf = [0u8; 256];
        let mut line = Vec::new();
        let mut last = None;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                if b == b'\r' || b == b'\n' {
                    let text = String::from_utf8_lossy(&line);
                    if let Some(p) = text
                        .trim()
                        .strip_prefix('(')
                        .and_then(|t| t.split('/').next())
                        .and_then(|t| t.parse::<f64>().ok())
                    {
                        let p = p.clamp(0.0, 100.0) as u8;
                        if last != Some(p) {
                            last = Some(p);
                            progress(p);
                        }
                    }
                    line.clear();
                } else {
                    line.push(b);
                }
            }
        }
        let out = child
            .wait_with_output()
            .map_err(|e| io_err("running qemu-img convert", e))?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !(stderr.contains(PBKDF_UNMEASURED) && attempt < PBKDF_ATTEMPTS) {
            return Err(Error::Internal(format!(
                "qemu-img convert failed: {}",
                stderr.trim()
            )));
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A command that prints `msg` and fails for its first `fails` runs, counting runs
    /// in a file of `dir`.
    fn flaky(dir: &Path, fails: usize, msg: &str) -> Command {
        let count = dir.join("runs");
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"n=$(($(cat "$1" 2>/dev/null || echo 0) + 1)); echo $n > "$1"; [ $n -gt "$2" ] && echo ok || { echo "$3" >&2; exit 1; }"#)
            .arg("flaky")
            .arg(&count)
            .arg(fails.to_string())
            .arg(msg);
        cmd
    }

    /// A disk's first 64 KiB: a (protective) MBR with `code` in its boot code area and
    /// `mbr_type` as its first partition's type, and when `gpt` is given a GPT header at
    /// LBA 1 with those partition types from LBA 2.
    fn head(code: bool, mbr_type: u8, gpt: Option<&[[u8; 16]]>) -> Vec<u8> {
        let mut h = vec![0u8; 64 * 1024];
        if code {
            h[0..3].copy_from_slice(&[0xEB, 0x63, 0x90]);
        }
        h[446 + 4] = mbr_type;
        h[510..512].copy_from_slice(&[0x55, 0xAA]);
        if let Some(types) = gpt {
            h[512..520].copy_from_slice(b"EFI PART");
            h[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
            h[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
            h[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
            for (i, t) in types.iter().enumerate() {
                let at = 1024 + i * 128;
                h[at..at + 16].copy_from_slice(t);
            }
        }
        h
    }

    #[test]
    fn the_boot_mode_follows_the_partitions() {
        const LINUX: [u8; 16] = [0xAF; 16];
        // UEFI only: an ESP, no BIOS boot partition, no MBR boot code.
        assert_eq!(
            boot_mode_of(&head(false, 0xEE, Some(&[GPT_ESP, LINUX]))),
            Some("uefi")
        );
        // Both (Debian's and Ubuntu's cloud images): a BIOS boot partition and an ESP.
        assert_eq!(
            boot_mode_of(&head(true, 0xEE, Some(&[LINUX, GPT_BIOS_BOOT, GPT_ESP]))),
            Some("legacy-bios")
        );
        // GPT with an ESP and boot code in the protective MBR.
        assert_eq!(
            boot_mode_of(&head(true, 0xEE, Some(&[GPT_ESP, LINUX]))),
            Some("legacy-bios")
        );
        // MBR: an ESP alone is UEFI; boot code is BIOS.
        assert_eq!(boot_mode_of(&head(false, MBR_ESP, None)), Some("uefi"));
        assert_eq!(boot_mode_of(&head(true, 0x83, None)), Some("legacy-bios"));
        // Nothing to tell: no boot code, no ESP; no MBR signature; a short read.
        assert_eq!(boot_mode_of(&head(false, 0x83, None)), None);
        assert_eq!(boot_mode_of(&vec![0u8; 4096]), None);
        assert_eq!(boot_mode_of(&head(true, 0xEE, None)[..300]), None);
        // A GPT whose entries lie beyond what was read tells nothing of them.
        let mut far = head(false, 0xEE, Some(&[GPT_ESP]));
        far[512 + 72..512 + 80].copy_from_slice(&4096u64.to_le_bytes());
        assert_eq!(boot_mode_of(&far), None);
    }

    #[test]
    fn an_unmeasured_pbkdf_benchmark_is_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let msg = format!("qemu-img: /v/x.qcow2: {PBKDF_UNMEASURED}");
        let out = run("flaky", &mut flaky(dir.path(), 2, &msg)).unwrap();
        assert_eq!(out, b"ok\n");
        let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
        assert_eq!(runs.trim(), "3");
    }

    #[test]
    fn other_failures_and_endless_benchmark_failures_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = run("flaky", &mut flaky(dir.path(), 1, "qemu-img: no space")).unwrap_err();
        assert!(err.to_string().contains("no space"), "{err}");
        let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
        assert_eq!(runs.trim(), "1", "a real failure is not run again");

        let dir = tempfile::tempdir().unwrap();
        let err = run("flaky", &mut flaky(dir.path(), 99, PBKDF_UNMEASURED)).unwrap_err();
        assert!(err.to_string().contains(PBKDF_UNMEASURED), "{err}");
        let runs = std::fs::read_to_string(dir.path().join("runs")).unwrap();
        assert_eq!(runs.trim(), PBKDF_ATTEMPTS.to_string());
    }

    #[test]
    fn commas_in_paths_are_escaped() {
        assert_eq!(kv(Path::new("/a,b/c")), "/a,,b/c");
        assert_eq!(
            secret_object("key-ab", Path::new("/v/ab.key")),
            "secret,id=key-ab,file=/v/ab.key,format=raw"
        );
    }

    #[test]
    fn chains_open_from_the_records() {
        let chain = [
            ChainLayer {
                id: "bb".into(),
                path: PathBuf::from("/v/layers/bb.qcow2"),
                key: Some(PathBuf::from("/v/layers/bb.key")),
            },
            ChainLayer {
                id: "aa".into(),
                path: PathBuf::from("/v/layers/aa.qcow2"),
                key: None,
            },
        ];
        let j = chain_json(&chain);
        assert_eq!(j["file"]["filename"], "/v/layers/bb.qcow2");
        assert_eq!(j["encrypt"]["key-secret"], "key-bb");
        assert!(j.get("read-only").is_none());
        assert_eq!(j["backing"]["file"]["filename"], "/v/layers/aa.qcow2");
        assert_eq!(j["backing"]["read-only"], true);
        assert!(j["backing"].get("encrypt").is_none());
        assert!(j["backing"]["backing"].is_null());
    }
}
