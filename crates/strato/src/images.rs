//! `strato images import`: an operator publishes a disk image file of this host as an
//! image of the installation. The running `strato up` does the work: this command asks
//! it for an ImportImage as the root account (signed like any client), follows the
//! task with a progress bar, and then names the image and makes it public in the
//! store, which only an operator may do (EC2's API has no call that sets an owner
//! alias).

use crate::cli::{open_db, stored, ImagesCmd};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;
use std::time::Duration;
use strato_common::ImageId;
use strato_common::ResourceId;
use strato_control::accounts;
use strato_store::Db;

const API_VERSION: &str = "2016-11-15";

/// A signed EC2 Query client of the running endpoint, as the root account.
struct Client {
    http: reqwest::blocking::Client,
    endpoint: String,
    host: String,
    key_id: String,
    secret: String,
    region: String,
}

impl Client {
    fn new(db: &Db, region: Option<String>) -> Result<Client> {
        let endpoint = stored(db, "endpoint", "http://127.0.0.1:8773");
        let region = region.unwrap_or_else(|| stored(db, "region", "us-east-1"));
        let (_, keys) = db
            .read(|tx| {
                let a = tx.find_account(accounts::ROOT_ACCOUNT_NAME)?;
                let keys = match &a {
                    Some(a) => tx.access_keys_of(&a.id)?,
                    None => vec![],
                };
                Ok((a, keys))
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = keys
            .into_iter()
            .next()
            .context("the root account has no access key; has `strato up` run here?")?;
        let host = endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        if endpoint.starts_with("https://") {
            bail!(
                "the endpoint {endpoint} is https; this command speaks http to a local `strato up`"
            );
        }
        Ok(Client {
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            endpoint,
            host,
            key_id: key.access_key_id,
            secret: key.secret_access_key,
            region,
        })
    }

    /// One action; the answer's XML, or the EC2 error it carried.
    fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String> {
        let mut body = format!("Action={action}&Version={API_VERSION}");
        for (k, v) in params {
            body.push('&');
            body.push_str(&form(k));
            body.push('=');
            body.push_str(&form(v));
        }
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let signed = strato_sigv4::sign_headers(
            "POST",
            &self.host,
            "/",
            "",
            &[("content-type".to_string(), content_type.to_string())],
            body.as_bytes(),
            &self.key_id,
            &self.secret,
            &self.region,
            "ec2",
            time::OffsetDateTime::now_utc(),
        );
        let mut req = self
            .http
            .post(format!("{}/", self.endpoint.trim_end_matches('/')))
            .header("content-type", content_type)
            .body(body);
        for (k, v) in signed {
            req = req.header(k, v);
        }
        let resp = req
            .send()
            .with_context(|| format!("cannot reach `strato up` at {}", self.endpoint))?;
        let status = resp.status();
        let text = resp.text()?;
        if !status.is_success() {
            bail!(
                "{action} failed: {} {}",
                tag(&text, "Code").unwrap_or_default(),
                tag(&text, "Message").unwrap_or_default()
            );
        }
        Ok(text)
    }
}

/// Form-encodes a Query parameter.
fn form(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<name>` element of an answer (the answers this command
/// reads are flat enough for that).
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The EC2 format name of a disk image file, as qemu-img detects it.
fn detect_format(file: &Path) -> Result<String> {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "--output=json", "-U"])
        .arg(file)
        .output()
        .context("running qemu-img (apt-get install qemu-utils)")?;
    if !out.status.success() {
        bail!(
            "{} is not a disk image: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let info: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(match info["format"].as_str().unwrap_or("raw") {
        "vpc" => "VHD".into(),
        f => f.to_ascii_uppercase(),
    })
}

/// The root account's available image named `name` in `region`, if any.
fn published(db: &Db, name: &str, region: &str) -> Result<Option<String>> {
    db.read(|tx| {
        let Some(root) = tx.find_account(accounts::ROOT_ACCOUNT_NAME)? else {
            return Ok(None);
        };
        Ok(tx
            .owned_images(&root.id, region)?
            .into_iter()
            .find(|i| i.name == name && i.state == strato_store::model::ImageState::Available)
            .map(|i| i.id.to_string()))
    })
    .map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn run(dir: &Path, cmd: ImagesCmd) -> Result<()> {
    match cmd {
        ImagesCmd::Import {
            file,
            name,
            description,
            format,
            boot_mode,
            public,
            owner_alias,
            region,
            if_missing,
        } => {
            if !["strato", "amazon", "aws-marketplace"].contains(&owner_alias.as_str()) {
                bail!("--owner-alias must be strato, amazon or aws-marketplace (the aliases `--owners` selects by)");
            }
            strato_control::images::make::check_name(&name).map_err(|e| anyhow::anyhow!("{e}"))?;
            let file = std::fs::canonicalize(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let format = match format {
                Some(f) => f.to_ascii_uppercase(),
                None => detect_format(&file)?,
            };
            let db = open_db(dir)?;
            let client = Client::new(&db, region)?;
            if if_missing {
                if let Some(id) = published(&db, &name, &client.region)? {
                    println!("{id}\t{name}\talready published\t{}", client.region);
                    return Ok(());
                }
            }
            let url = file.display().to_string();
            let desc = description.clone().unwrap_or_default();
            let mut params = vec![
                ("DiskContainer.1.Format", format.as_str()),
                ("DiskContainer.1.Url", url.as_str()),
                ("Description", desc.as_str()),
            ];
            if let Some(mode) = &boot_mode {
                params.push(("BootMode", mode));
            }
            let answer = client.call("ImportImage", &params)?;
            let task = tag(&answer, "importTaskId").context("no importTaskId in the answer")?;
            let bar = ProgressBar::new(100);
            bar.set_style(
                ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos:>3}% {elapsed}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            bar.set_message("importing");
            let image = loop {
                std::thread::sleep(Duration::from_millis(300));
                let answer = client.call(
                    "DescribeImportImageTasks",
                    &[("ImportTaskId.1", task.as_str())],
                )?;
                let status = tag(&answer, "status").unwrap_or_default();
                let message = tag(&answer, "statusMessage").unwrap_or_default();
                match status.as_str() {
                    "completed" => {
                        bar.set_position(100);
                        bar.finish_with_message("imported");
                        break tag(&answer, "imageId").context("no imageId in the task")?;
                    }
                    "deleted" => {
                        bar.abandon_with_message("failed");
                        bail!("the import failed: {message}");
                    }
                    _ => {
                        if let Some(p) = tag(&answer, "progress").and_then(|p| p.parse().ok()) {
                            bar.set_position(p);
                        }
                        bar.set_message(message);
                    }
                }
            };
            let id = ImageId::parse(&image).map_err(|e| anyhow::anyhow!("{e}"))?;
            db.write(|tx| {
                let mut img = tx.image(id.as_str())?.ok_or_else(|| {
                    strato_common::Error::Internal(format!("image {id} vanished"))
                })?;
                img.name = name.clone();
                if let Some(d) = &description {
                    img.description = d.clone();
                }
                img.public = public;
                img.owner_alias = Some(owner_alias.clone());
                tx.put_image(&img)
            })
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{image}\t{name}\t{}\t{}",
                if public { "public" } else { "private" },
                client.region
            );
            Ok(())
        }
    }
}
