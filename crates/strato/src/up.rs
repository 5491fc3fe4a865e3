//! `strato up`: the whole system in one process.

use crate::cli::{env_text, HypervisorChoice, LogFormat, UpArgs};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use strato_agent::net::{NetAgent, NetConfig};
use strato_agent::Agent;
use strato_agent_api::AgentClient;
use strato_control::{accounts, ControlConfig, ControlPlane};
use strato_drivers::qemu::{
    self as qemu_driver, accel, cgroup::Layout, Accel, QemuConfig, QemuDriver,
};
use strato_drivers::sim::{SimConfig, SimDriver};
use strato_drivers::volumes::{qcow2::Qcow2VolumeStore, sim::SimVolumeStore, VolumeStore};
use strato_drivers::Hypervisor;
use strato_server::{metrics::Metrics, router, AppState};
use strato_store::Db;
use tracing_subscriber::EnvFilter;

/// The name of the single host in one-process mode.
const LOCAL_HOST: &str = "local";

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_env("STRATO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// The KVM probe costs a boot timeout on hosts where KVM cannot run stock kernels, so
/// its verdict is remembered per QEMU build and kernel.
fn probe_accel(dir: &Path, qemu: &Path, kernel: &Path, initrd: &Path) -> (Accel, String) {
    let version = std::process::Command::new(qemu)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    let kmeta = std::fs::metadata(kernel).ok();
    let key = format!(
        "{version}|{}|{:?}",
        kmeta.as_ref().map(|m| m.len()).unwrap_or(0),
        kmeta.and_then(|m| m.modified().ok())
    );
    let cache = dir.join("accel-probe.json");
    if let Ok(text) = std::fs::read_to_string(&cache) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if v["key"] == key.as_str() {
                if let (Some(a), Some(r)) = (v["accel"].as_str(), v["reason"].as_str()) {
                    let accel = if a == "kvm" { Accel::Kvm } else { Accel::Tcg };
                    return (accel, format!("{r} (cached probe)"));
                }
            }
        }
    }
    tracing::info!("probing whether KVM boots a guest on this host (up to 20 s)");
    let (accel, reason) = match accel::probe_kvm(qemu, kernel, initrd, Duration::from_secs(20)) {
        Ok(t) => (Accel::Kvm, format!("KVM probe guest booted in {t:.1?}")),
        Err(why) => (Accel::Tcg, format!("TCG because {why}")),
    };
    let _ = std::fs::write(
        &cache,
        serde_json::json!({"key": key, "accel": accel.to_string(), "reason": reason}).to_string(),
    );
    (accel, reason)
}

/// The hypervisor driver and the volume store that goes with it: the simulated
/// driver keeps volumes as records (`<data>/sim-volumes`), QEMU gets qcow2 disks in
/// `<data>/volumes` served by qemu-storage-daemon. Last, the image store root
/// volumes are made from.
/// Last, why the built-in image cannot boot here, when its files are missing on a
/// QEMU host.
type HostDrivers = (
    Arc<dyn Hypervisor>,
    Arc<dyn VolumeStore>,
    PathBuf,
    Option<String>,
);

/// Says, so that nobody can miss it, that instances will not be real VMs.
fn shout_simulated(why: &str) {
    let line = "=".repeat(78);
    eprintln!("{line}\nstrato up: INSTANCES ARE SIMULATED: no guest runs, nothing boots.\n  {why}\n{line}");
    tracing::warn!("instances run on the simulated hypervisor: {why}");
}

/// `scripts/build-image.sh` of the checkout this binary was built in, if there is one
/// (`target/<profile>/strato` two levels below it).
fn image_build_script() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|d| d.join("scripts/build-image.sh"))
        .find(|p| p.is_file())
}

/// Builds the built-in image into `minimal` with the checkout's script, its progress
/// shown on this terminal. `STRATO_BUILD_IMAGE=0` turns this off.
fn build_builtin_image(minimal: &Path) -> std::result::Result<(), String> {
    if std::env::var("STRATO_BUILD_IMAGE").as_deref() == Ok("0") {
        return Err("STRATO_BUILD_IMAGE=0".into());
    }
    if !strato_common::host::is_root() {
        return Err("building it needs root".into());
    }
    let script = image_build_script().ok_or("scripts/build-image.sh is not next to this binary")?;
    eprintln!(
        "strato up: the built-in image is missing; building it into {} with {} (Debian packages, about a minute)",
        minimal.display(),
        script.display()
    );
    let status = std::process::Command::new(&script)
        .arg(minimal)
        .status()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!("{} failed ({status})", script.display()));
    }
    Ok(())
}

fn choose_hypervisor(args: &UpArgs, dir: &Path) -> Result<HostDrivers> {
    let images = args
        .images_dir
        .clone()
        .unwrap_or_else(|| dir.join("images"));
    let sim = || -> Result<HostDrivers> {
        let driver = SimDriver::open(
            &dir.join("sim"),
            SimConfig {
                boot_delay: Duration::from_millis(args.sim_boot_ms),
                stop_delay: Duration::from_millis(args.sim_stop_ms),
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let volumes =
            SimVolumeStore::open(&dir.join("sim-volumes")).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((Arc::new(driver), Arc::new(volumes), images.clone(), None))
    };
    if args.hypervisor == HypervisorChoice::Sim {
        shout_simulated("--hypervisor sim asked for the simulator.");
        return sim();
    }
    let minimal = images.join("strato-minimal");
    let (kernel, initrd) = (minimal.join("vmlinuz"), minimal.join("initrd.img"));
    if which("qemu-system-x86_64").is_none() {
        let why = "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)";
        if args.hypervisor == HypervisorChoice::Auto {
            shout_simulated(&format!("--hypervisor auto: {why}."));
            return sim();
        }
        bail!("--hypervisor {:?}: {why}", args.hypervisor);
    }
    // QEMU is here, so instances are real VMs: a missing built-in image is built now,
    // or (where it cannot be) shown as failed with the fix, never simulated.
    let mut image_missing = None;
    if !kernel.exists() {
        let fix = format!(
            "the built-in image is not in {}: run scripts/build-image.sh {} (as root) and restart strato",
            minimal.display(),
            minimal.display()
        );
        if args.hypervisor != HypervisorChoice::Auto {
            bail!("--hypervisor {:?}: {fix}", args.hypervisor);
        }
        if let Err(why) = build_builtin_image(&minimal) {
            eprintln!("strato up: cannot build the built-in image ({why}); {fix}");
            tracing::warn!(%why, "{fix}");
            image_missing = Some(fix);
        }
    }
    let qemu = which("qemu-system-x86_64").expect("checked above");
    let (accel, reason) = match args.hypervisor {
        HypervisorChoice::Kvm => (Accel::Kvm, "forced by --hypervisor kvm".to_string()),
        HypervisorChoice::Tcg => (Accel::Tcg, "forced by --hypervisor tcg".to_string()),
        _ => probe_accel(dir, &qemu, &kernel, &initrd),
    };
    let driver = QemuDriver::open(QemuConfig {
        dir: dir.join("vms"),
        images: images.clone(),
        qemu_binary: qemu,
        accel,
        accel_reason: reason,
        stop_timeout: Duration::from_secs(args.stop_timeout_secs),
        reboot_timeout: Duration::from_secs(60),
        drop_privileges: strato_common::host::is_root(),
        kvm_gid: qemu_driver::kvm_gid(),
        // Creating cgroups needs root; without it limits are reported as not enforced.
        cgroups: if strato_common::host::is_root() {
            Layout::detect(Path::new("/sys/fs/cgroup"))
        } else {
            Layout::None
        },
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let volumes =
        Arc::new(Qcow2VolumeStore::open(&dir.join("volumes")).map_err(|e| anyhow::anyhow!("{e}"))?);
    let driver = driver
        .with_volumes(volumes.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((Arc::new(driver), volumes, images, image_missing))
}

pub fn run(args: UpArgs) -> Result<()> {
    init_logging(args.log_format);
    // Refused before anything is opened or bound: a start that fails must not be seen
    // listening, even for a moment.
    if !args.regions.is_empty() && !args.regions.contains(&args.region) {
        bail!(
            "the default region {} is not among --regions ({})",
            args.region,
            args.regions.join(",")
        );
    }
    let dir = args.dir.data_dir.clone();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // One `strato up` per data directory: a second would fight over the VMs.
    let lock = std::fs::File::create(dir.join("strato.lock"))?;
    if lock.try_lock().is_err() {
        bail!("another `strato up` is using {}", dir.display());
    }
    let db = Arc::new(Db::open(&dir.join("strato.db")).map_err(|e| anyhow::anyhow!("{e}"))?);
    let given = args
        .root_access_key_id
        .clone()
        .zip(args.root_secret_access_key.clone());
    let (root, key) = accounts::ensure_root(&db, given).map_err(|e| anyhow::anyhow!("{e}"))?;

    let (driver, volume_store, images, image_missing) = choose_hypervisor(&args, &dir)?;
    tracing::info!(hypervisor = %driver.describe(), "hypervisor chosen");
    let real_vms = driver.kind() != "sim";
    let (agent, mut reports) = Agent::new(LOCAL_HOST, driver);
    let mut volume_reports = agent
        .set_volumes(volume_store, images)
        .expect("a new agent has no volume store yet");

    // Every connection is a descriptor: let the connection cap, not the kernel's soft
    // limit (often 1,024), decide how many clients are served at once.
    match strato_server::http::raise_fd_limit() {
        Ok(n) => tracing::info!(limit = n, "descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the descriptor limit"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let endpoint = format!("http://{addr}");
        db.write(|tx| {
            tx.meta_set("endpoint", &endpoint)?;
            tx.meta_set("region", &args.region)?;
            tx.meta_set("hypervisor", &agent.hypervisor_description())
        })
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut cfg = ControlConfig::new(&args.region, &endpoint);
        if !args.regions.is_empty() {
            cfg.regions = args.regions.clone();
        }
        cfg.max_instances_per_account = args.max_instances_per_account;
        cfg.public_ip_pool = args.public_ip_pool;
        cfg.public_ips_per_account = args.public_ips_per_account;
        let control = Arc::new(ControlPlane::new(db.clone(), agent.clone() as Arc<dyn AgentClient>, cfg));
        control
            .register_builtin_images(image_missing.as_deref())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Real VMs get real networks: VPC namespaces, nftables and the metadata
        // service (the simulator has no packets to carry).
        if real_vms && strato_common::host::is_root() {
            let net = NetAgent::start(
                NetConfig {
                    state_dir: dir.join("net"),
                    uplink_ns: args.uplink_netns.clone(),
                },
                Some(crate::metadata::server(control.clone())),
            );
            agent.set_network(net);
        }

        // Reports from the agent drive instance state.
        let c2 = control.clone();
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                let c3 = c2.clone();
                let res = tokio::task::spawn_blocking(move || c3.handle_report(&report)).await;
                if let Ok(Err(e)) = res {
                    tracing::error!(error = %e, "could not apply agent report");
                }
            }
        });
        // Reports about volumes and snapshots drive their states.
        let c2 = control.clone();
        tokio::spawn(async move {
            while let Some(report) = volume_reports.recv().await {
                let c3 = c2.clone();
                let res =
                    tokio::task::spawn_blocking(move || c3.handle_storage_report(&report)).await;
                if let Ok(Err(e)) = res {
                    tracing::error!(error = %e, "could not apply a storage report");
                }
            }
        });
        // Volumes first: a VM that starts finds its disks made.
        let nv = control.sync_volumes().map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(volumes = nv, "host volumes synchronised");
        // Snapshots after volumes: one that must still be taken finds its volume.
        let ns = control.sync_snapshots().map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(snapshots = ns, "host snapshots synchronised");
        // Instances from before primary interfaces were stored get theirs (once).
        control.adopt_primary_interfaces().map_err(|e| anyhow::anyhow!("{e}"))?;
        let n = control.sync_agent().map_err(|e| anyhow::anyhow!("{e}"))?;
        tracing::info!(instances = n, "host agent synchronised");
        tokio::spawn(agent.clone().run());
        let c4 = control.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let c5 = c4.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || c5.purge_terminated()).await {
                    tracing::warn!(error = %e, "purging terminated instances failed");
                }
            }
        });

        let state = Arc::new(AppState {
            control: control.clone(),
            metrics: Metrics::new(),
            throttle: strato_server::throttle::Throttle::new(strato_server::throttle::ThrottleConfig {
                enabled: args.throttle,
                scale: args.throttle_scale,
            }),
        });
        eprintln!(
            "Strato is up: EC2 endpoint {endpoint}, default region {} ({} regions served), hypervisor {}\nRoot account {} ({}). Use it with:\n\n{}",
            args.region,
            control.cfg.regions.len(),
            agent.hypervisor_description(),
            root.id,
            root.name,
            env_text(&endpoint, &key.access_key_id, &key.secret_access_key, &args.region)
        );
        let limits = strato_server::http::HttpLimits {
            max_connections: args.max_connections,
            ..Default::default()
        };
        strato_server::http::serve(listener, router(state), limits, shutdown_signal()).await?;
        tracing::info!("shut down cleanly");
        drop(lock);
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
    }
}
