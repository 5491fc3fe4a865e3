//! Cross-checks of freshly created keys against the real tools users run on
//! EC2 key material: `ssh-keygen`, `openssl` and `puttygen`. The fixed
//! known-answer tests cover the same algorithms without any tool, so each
//! check here is skipped (with a note on stderr) where its tool is missing.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use strato_keys::{create_key, import_public_key, KeyFormat, KeyType};

fn have(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("skipping: {tool} not installed");
    }
    found
}

/// Writes a private key with the 0600 mode ssh-keygen insists on.
fn write_key(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&path)
        .unwrap()
        .write_all(contents.as_bytes())
        .unwrap();
    path
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a shell pipeline, for the openssl commands AWS documents.
fn sh(script: &str) -> String {
    run(Command::new("sh").arg("-c").arg(script))
}

fn openssl_digest(output: &str) -> String {
    // "SHA1(stdin)= ab:cd:..." across OpenSSL versions.
    output.rsplit(' ').next().unwrap().trim().to_string()
}

#[test]
fn ssh_keygen_reads_created_ed25519_key() {
    if !have("ssh-keygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(KeyType::Ed25519, KeyFormat::Pem, "tool-check").unwrap();
    let path = write_key(dir.path(), "id_ed25519", &key.key_material);
    let public = run(Command::new("ssh-keygen").arg("-y").arg("-f").arg(&path));
    assert_eq!(
        public.trim().trim_end_matches(" tool-check"),
        key.public_key_openssh
    );
    let listed = run(Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&path));
    let printed = listed.split_whitespace().nth(1).unwrap();
    assert_eq!(
        format!("{}=", printed.strip_prefix("SHA256:").unwrap()),
        key.fingerprint
    );
}

#[test]
fn openssl_agrees_with_created_rsa_fingerprints() {
    if !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = create_key(KeyType::Rsa, KeyFormat::Pem, "tool-check").unwrap();
    let path = write_key(dir.path(), "key.pem", &key.key_material);
    let p = path.display();
    let sha1 = sh(&format!(
        "openssl pkcs8 -in {p} -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c"
    ));
    assert_eq!(openssl_digest(&sha1), key.fingerprint);

    let md5 = sh(&format!(
        "openssl rsa -in {p} -pubout -outform DER 2>/dev/null | openssl md5 -c"
    ));
    let imported = import_public_key(key.public_key_openssh.as_bytes()).unwrap();
    assert_eq!(openssl_digest(&md5), imported.fingerprint);

    if have("ssh-keygen") {
        let public = run(Command::new("ssh-keygen").arg("-y").arg("-f").arg(&path));
        assert_eq!(public.trim(), key.public_key_openssh);
    }
}

#[test]
fn puttygen_converts_created_ppk_files() {
    if !have("puttygen") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for key_type in [KeyType::Rsa, KeyType::Ed25519] {
        let key = create_key(key_type, KeyFormat::Ppk, "ppk-check").unwrap();
        let path = write_key(dir.path(), &format!("{key_type}.ppk"), &key.key_material);
        // puttygen verifies the MAC and the key's consistency while loading.
        let public = run(Command::new("puttygen").arg(&path).args([
            "-O",
            "public-openssh",
            "-o",
            "/dev/stdout",
        ]));
        assert_eq!(
            public.trim(),
            format!("{} ppk-check", key.public_key_openssh)
        );
        let private = run(Command::new("puttygen").arg(&path).args([
            "-O",
            "private-openssh-new",
            "-o",
            "/dev/stdout",
        ]));
        assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
        if have("ssh-keygen") {
            let converted = write_key(dir.path(), &format!("{key_type}.openssh"), &private);
            let derived = run(Command::new("ssh-keygen")
                .arg("-y")
                .arg("-f")
                .arg(&converted));
            assert!(derived.starts_with(&key.public_key_openssh), "{derived}");
        }
    }
}
