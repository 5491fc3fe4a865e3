//! Command-line interface.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use strato_control::accounts;
use strato_store::Db;

#[derive(Parser)]
#[command(
    name = "strato",
    version,
    about = "An EC2-compatible compute cloud on your own Linux hosts"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub struct DataDir {
    /// Where Strato keeps its database and VM state.
    #[arg(long, global = true, env = "STRATO_DATA_DIR", default_value_os_t = default_data_dir())]
    pub data_dir: PathBuf,
}

/// `/var/lib/strato` for root (QEMU's unprivileged users must be able to walk into
/// it, which they cannot under /root), `~/.local/share/strato` otherwise.
fn default_data_dir() -> PathBuf {
    if strato_common::host::is_root() {
        return PathBuf::from("/var/lib/strato");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/strato"),
        None => PathBuf::from("strato-data"),
    }
}

/// Which hypervisor runs instances.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum HypervisorChoice {
    /// Real VMs when this host can run them; otherwise the simulator.
    Auto,
    /// QEMU with KVM acceleration.
    Kvm,
    /// QEMU with TCG software emulation.
    Tcg,
    /// The simulated hypervisor: full API behaviour, no guest.
    Sim,
}

#[derive(Args, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub dir: DataDir,
    /// Address the EC2 endpoint listens on.
    #[arg(long, env = "STRATO_LISTEN", default_value = "127.0.0.1:8773")]
    pub listen: String,
    #[arg(long, env = "STRATO_HYPERVISOR", value_enum, default_value_t = HypervisorChoice::Auto)]
    pub hypervisor: HypervisorChoice,
    /// The default region: the one `strato env` and the startup banner name, and the
    /// one data from before regions belongs to. It must be among `--regions`.
    #[arg(long, env = "STRATO_REGION", default_value = "us-east-1")]
    pub region: String,
    /// The regions this endpoint serves, comma-separated (the region a request is
    /// signed for selects one); default: every AWS commercial region, with its real
    /// availability zones.
    #[arg(long, env = "STRATO_REGIONS", value_delimiter = ',', value_parser = parse_region)]
    pub regions: Vec<String>,
    /// Where images live (`<dir>/strato-minimal/…`); default `<data-dir>/images`.
    #[arg(long, env = "STRATO_IMAGES_DIR")]
    pub images_dir: Option<PathBuf>,
    /// Seconds a guest gets to power down after StopInstances before power is cut.
    #[arg(long, env = "STRATO_STOP_TIMEOUT_SECS", default_value_t = 60)]
    pub stop_timeout_secs: u64,
    /// Simulated hypervisor: milliseconds from start to running.
    #[arg(long, env = "STRATO_SIM_BOOT_MS", default_value_t = 1500)]
    pub sim_boot_ms: u64,
    /// Simulated hypervisor: milliseconds from stop to stopped.
    #[arg(long, env = "STRATO_SIM_STOP_MS", default_value_t = 1000)]
    pub sim_stop_ms: u64,
    /// The most live instances one account may have.
    #[arg(long, env = "STRATO_MAX_INSTANCES", default_value_t = 20_000)]
    pub max_instances_per_account: i64,
    /// The IPv4 block Elastic IPs are allocated from (its network and broadcast
    /// addresses are never handed out).
    #[arg(long, env = "STRATO_PUBLIC_IP_POOL", default_value = strato_control::DEFAULT_PUBLIC_IP_POOL, value_parser = parse_pool)]
    pub public_ip_pool: strato_common::cidr::Ipv4Cidr,
    /// The most public addresses (Elastic IPs and instances' public IPs, all regions
    /// together) one account may hold; default: half the pool.
    #[arg(long, env = "STRATO_PUBLIC_IPS_PER_ACCOUNT")]
    pub public_ips_per_account: Option<usize>,
    /// The network namespace VPC uplinks (internet gateways) lead to; public and
    /// Elastic IPs are routed there. Default: the host's own namespace, so the host
    /// reaches instances' public addresses directly.
    #[arg(long, env = "STRATO_UPLINK_NETNS")]
    pub uplink_netns: Option<String>,
    /// Throttle each account's requests per action with token buckets shaped like
    /// EC2's (`RequestLimitExceeded`, which SDKs retry); `--throttle false` disables.
    #[arg(long, env = "STRATO_THROTTLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub throttle: bool,
    /// Multiplies every throttling bucket's size and refill rate (1 = EC2's defaults:
    /// 200 tokens and 10/s for changes, 100 and 20/s for reads, 50 and 10/s for
    /// unfiltered Describe calls).
    #[arg(long, env = "STRATO_THROTTLE_SCALE", default_value_t = 1.0)]
    pub throttle_scale: f64,
    /// The most client connections served at once; more are answered with
    /// `RequestLimitExceeded` (HTTP 503) and closed.
    #[arg(long, env = "STRATO_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Log format.
    #[arg(long, env = "STRATO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Root credentials to create on first start (for scripted set-ups).
    #[arg(
        long,
        env = "STRATO_ROOT_ACCESS_KEY_ID",
        requires = "root_secret_access_key"
    )]
    pub root_access_key_id: Option<String>,
    #[arg(
        long,
        env = "STRATO_ROOT_SECRET_ACCESS_KEY",
        requires = "root_access_key_id"
    )]
    pub root_secret_access_key: Option<String>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Start the endpoint, control plane, host agent and store in this process.
    Up(UpArgs),
    /// Print the environment for the aws CLI and SDKs (use with eval).
    Env {
        #[command(flatten)]
        dir: DataDir,
        /// Print the credentials of this account (name or id) instead of root's.
        #[arg(long)]
        account: Option<String>,
    },
    /// Attach to an instance's live serial console (Ctrl-] detaches).
    Console {
        #[command(flatten)]
        dir: DataDir,
        /// The instance id.
        instance: String,
    },
    /// Show what this host's Strato runs: endpoint, hypervisor and why, instances.
    Status {
        #[command(flatten)]
        dir: DataDir,
    },
    /// List every snapshot of every account with the bytes the host holds for it
    /// alone (the blocks changed since the snapshot of its volume before it).
    Snapshots {
        #[command(flatten)]
        dir: DataDir,
    },
    /// Publish machine images to every account.
    Images {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        cmd: ImagesCmd,
    },
    /// Manage accounts (tenants).
    Accounts {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        cmd: AccountsCmd,
    },
    /// Manage access keys.
    AccessKeys {
        #[command(flatten)]
        dir: DataDir,
        #[command(subcommand)]
        cmd: KeysCmd,
    },
}

#[derive(Subcommand)]
pub enum ImagesCmd {
    /// Import a disk image file of this host as an image every account can launch,
    /// through the running `strato up` (ImportImage as the root account), with a
    /// progress bar. `aws ec2 describe-images --owners strato` lists it.
    Import {
        /// The disk image (raw, qcow2, vmdk, vhd or vhdx; detected unless --format).
        file: std::path::PathBuf,
        /// The image's name (`debian-12-amd64-20261207`).
        #[arg(long)]
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// RAW, QCOW2, VMDK, VHD or VHDX (default: what qemu-img detects).
        #[arg(long)]
        format: Option<String>,
        /// legacy-bios, uefi or uefi-preferred (default: what the disk's partitions are
        /// made for; legacy-bios when they do not tell).
        #[arg(long)]
        boot_mode: Option<String>,
        /// Every account may launch it (else only the root account).
        #[arg(long)]
        public: bool,
        /// The owner alias it shows (`--owners strato` selects it).
        #[arg(long, default_value = "strato")]
        owner_alias: String,
        /// The region it goes to (default: the one `strato up` serves by default).
        #[arg(long)]
        region: Option<String>,
        /// Do nothing when the root account already has an available image of this
        /// name in the region (for scripts that publish an image once).
        #[arg(long)]
        if_missing: bool,
    },
}

#[derive(Subcommand)]
enum AccountsCmd {
    /// Create an account with one access key (printed as an environment).
    Create {
        name: String,
        #[arg(long, requires = "secret_access_key")]
        access_key_id: Option<String>,
        #[arg(long, requires = "access_key_id")]
        secret_access_key: Option<String>,
    },
    /// List accounts.
    List,
    /// Delete an account and everything it owns.
    Delete { account: String },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Add an access key to an account.
    Create {
        account: String,
        #[arg(long, requires = "secret_access_key")]
        access_key_id: Option<String>,
        #[arg(long, requires = "access_key_id")]
        secret_access_key: Option<String>,
    },
    /// List an account's access keys.
    List { account: String },
    /// Delete an access key.
    Delete { access_key_id: String },
}

/// Opens the store of an existing data directory (for the management commands, which
/// run beside a live `strato up`: SQLite's locking makes that safe).
pub fn open_db(dir: &Path) -> Result<Db> {
    let path = dir.join("strato.db");
    if !path.exists() {
        bail!(
            "no Strato data in {} (run `strato up --data-dir {}` first)",
            dir.display(),
            dir.display()
        );
    }
    Db::open(&path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The shell environment a client needs.
pub fn env_text(endpoint: &str, key_id: &str, secret: &str, region: &str) -> String {
    format!(
        "export AWS_ENDPOINT_URL={endpoint}\nexport AWS_ACCESS_KEY_ID={key_id}\nexport AWS_SECRET_ACCESS_KEY={secret}\nexport AWS_REGION={region}\nexport AWS_DEFAULT_REGION={region}\n"
    )
}

pub fn stored(db: &Db, key: &str, default: &str) -> String {
    db.read(|tx| tx.meta_get(key))
        .ok()
        .flatten()
        .unwrap_or_else(|| default.to_string())
}

fn err(e: strato_common::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

impl Cli {
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Up(args) => crate::up::run(args),
            Command::Console { dir, instance } => crate::console::attach(&dir.data_dir, &instance),
            Command::Status { dir } => {
                let db = open_db(&dir.data_dir)?;
                let running = std::fs::File::open(dir.data_dir.join("strato.lock"))
                    .map(|f| f.try_lock().is_err())
                    .unwrap_or(false);
                println!("data directory: {}", dir.data_dir.display());
                println!(
                    "strato up:      {}",
                    if running { "running" } else { "not running" }
                );
                println!(
                    "endpoint:       {}",
                    stored(&db, "endpoint", "(never started)")
                );
                println!("region:         {}", stored(&db, "region", "us-east-1"));
                println!(
                    "hypervisor:     {}",
                    stored(&db, "hypervisor", "(never started)")
                );
                let counts = db
                    .read(|tx| {
                        tx.instance_state_counts(
                            strato_common::time_fmt::now_ms()
                                - strato_control::TERMINATED_VISIBILITY_MS,
                        )
                    })
                    .map_err(err)?;
                let text: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
                println!(
                    "instances:      {}",
                    if text.is_empty() {
                        "none".to_string()
                    } else {
                        text.join(", ")
                    }
                );
                Ok(())
            }
            Command::Snapshots { dir } => {
                let db = open_db(&dir.data_dir)?;
                let all = db.read(|tx| tx.all_snapshots()).map_err(err)?;
                println!(
                    "{:<22} {:<12} {:<14} {:<21} {:<9} {:>8} {:>14}",
                    "SNAPSHOT", "OWNER", "REGION", "VOLUME", "STATE", "SIZE", "STORED BYTES"
                );
                let mut total = 0u64;
                for s in &all {
                    let stored = s.stored_bytes.unwrap_or(0);
                    total += stored;
                    println!(
                        "{:<22} {:<12} {:<14} {:<21} {:<9} {:>5} GiB {:>14}",
                        s.id,
                        s.account_id,
                        s.region,
                        s.volume_id
                            .as_ref()
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                        s.state.as_str(),
                        s.volume_size_gib,
                        s.stored_bytes
                            .map(|b| b.to_string())
                            .unwrap_or_else(|| "-".into())
                    );
                }
                println!("{} snapshots, {total} bytes stored", all.len());
                Ok(())
            }
            Command::Env { dir, account } => {
                let db = open_db(&dir.data_dir)?;
                let endpoint = stored(&db, "endpoint", "http://127.0.0.1:8773");
                let region = stored(&db, "region", "us-east-1");
                let name = account.as_deref().unwrap_or(accounts::ROOT_ACCOUNT_NAME);
                let (acct, keys) = db
                    .read(|tx| {
                        let Some(a) = tx.find_account(name)? else {
                            return Ok(None);
                        };
                        let keys = tx.access_keys_of(&a.id)?;
                        Ok(Some((a, keys)))
                    })
                    .map_err(err)?
                    .with_context(|| format!("no account '{name}'"))?;
                let key = keys
                    .first()
                    .with_context(|| format!("account {} has no access keys", acct.id))?;
                print!(
                    "{}",
                    env_text(
                        &endpoint,
                        &key.access_key_id,
                        &key.secret_access_key,
                        &region
                    )
                );
                Ok(())
            }
            Command::Images { dir, cmd } => crate::images::run(&dir.data_dir, cmd),
            Command::Accounts { dir, cmd } => {
                let db = open_db(&dir.data_dir)?;
                match cmd {
                    AccountsCmd::Create {
                        name,
                        access_key_id,
                        secret_access_key,
                    } => {
                        let given = access_key_id.zip(secret_access_key);
                        let (acct, key) =
                            accounts::create_account(&db, &name, given).map_err(err)?;
                        let endpoint = stored(&db, "endpoint", "http://127.0.0.1:8773");
                        let region = stored(&db, "region", "us-east-1");
                        println!("# account {} ({})", acct.id, acct.name);
                        print!(
                            "{}",
                            env_text(
                                &endpoint,
                                &key.access_key_id,
                                &key.secret_access_key,
                                &region
                            )
                        );
                    }
                    AccountsCmd::List => {
                        println!("{:<14} {:<24} ACCESS KEYS", "ACCOUNT", "NAME");
                        let list = db
                            .read(|tx| {
                                let mut v = vec![];
                                for a in tx.list_accounts()? {
                                    let keys = tx.access_keys_of(&a.id)?;
                                    v.push((a, keys));
                                }
                                Ok(v)
                            })
                            .map_err(err)?;
                        for (a, keys) in list {
                            let ids: Vec<&str> =
                                keys.iter().map(|k| k.access_key_id.as_str()).collect();
                            println!("{:<14} {:<24} {}", a.id, a.name, ids.join(","));
                        }
                    }
                    AccountsCmd::Delete { account } => {
                        let acct = db
                            .read(|tx| tx.find_account(&account))
                            .map_err(err)?
                            .with_context(|| format!("no account '{account}'"))?;
                        if acct.name == accounts::ROOT_ACCOUNT_NAME {
                            bail!("the root account cannot be deleted");
                        }
                        let live = db
                            .read(|tx| tx.count_live_instances_everywhere(&acct.id))
                            .map_err(err)?;
                        if live > 0 {
                            bail!(
                                "account {} still has {live} instances; terminate them first",
                                acct.id
                            );
                        }
                        db.write(|tx| tx.delete_account(&acct.id)).map_err(err)?;
                        println!("deleted account {} ({})", acct.id, acct.name);
                    }
                }
                Ok(())
            }
            Command::AccessKeys { dir, cmd } => {
                let db = open_db(&dir.data_dir)?;
                match cmd {
                    KeysCmd::Create {
                        account,
                        access_key_id,
                        secret_access_key,
                    } => {
                        let key = accounts::create_access_key(
                            &db,
                            &account,
                            access_key_id.zip(secret_access_key),
                        )
                        .map_err(err)?;
                        println!("AWS_ACCESS_KEY_ID={}", key.access_key_id);
                        println!("AWS_SECRET_ACCESS_KEY={}", key.secret_access_key);
                    }
                    KeysCmd::List { account } => {
                        let keys = db
                            .read(|tx| {
                                let a = tx.find_account(&account)?.ok_or_else(|| {
                                    strato_common::Error::invalid_value(format!(
                                        "no account '{account}'"
                                    ))
                                })?;
                                tx.access_keys_of(&a.id)
                            })
                            .map_err(err)?;
                        for k in keys {
                            println!("{}", k.access_key_id);
                        }
                    }
                    KeysCmd::Delete { access_key_id } => {
                        if !db
                            .write(|tx| tx.delete_access_key(&access_key_id))
                            .map_err(err)?
                        {
                            bail!("no access key '{access_key_id}'");
                        }
                        println!("deleted access key {access_key_id}");
                    }
                }
                Ok(())
            }
        }
    }
}

/// Parses `--public-ip-pool`: an IPv4 block in canonical form.
fn parse_pool(s: &str) -> Result<strato_common::cidr::Ipv4Cidr, String> {
    strato_common::cidr::Ipv4Cidr::parse(s)
        .ok_or_else(|| format!("'{s}' is not an IPv4 block such as 198.51.100.0/24"))
}

/// A region name: lowercase letters, digits and dashes, as AWS names regions.
fn parse_region(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && s.bytes().last().is_some_and(|b| b.is_ascii_digit());
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}' is not a region name (like eu-west-1)"))
    }
}
