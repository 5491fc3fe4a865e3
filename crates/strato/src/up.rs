//! `strato up`: the whole system in one process.

use crate::cli::{env_text, HypervisorChoice, LogFormat, UpArgs};
use anyhow::{bail, Context, Result};
use std::sync::Arc;
use std::time::Duration;
use strato_agent::Agent;
use strato_agent_api::AgentClient;
use strato_control::{accounts, ControlConfig, ControlPlane};
use strato_drivers::sim::{SimConfig, SimDriver};
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

fn choose_hypervisor(args: &UpArgs, dir: &std::path::Path) -> Result<Arc<dyn Hypervisor>> {
    let sim = || -> Result<Arc<dyn Hypervisor>> {
        let driver = SimDriver::open(
            &dir.join("sim"),
            SimConfig {
                boot_delay: Duration::from_millis(args.sim_boot_ms),
                stop_delay: Duration::from_millis(args.sim_stop_ms),
            },
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Arc::new(driver))
    };
    match args.hypervisor {
        HypervisorChoice::Sim => sim(),
        HypervisorChoice::Auto => {
            tracing::warn!(
                "hypervisor auto: the QEMU driver is not part of this build yet, so instances run on the simulated hypervisor"
            );
            sim()
        }
        HypervisorChoice::Kvm | HypervisorChoice::Tcg => bail!(
            "--hypervisor {:?} needs the QEMU driver, which this build does not include yet; use --hypervisor sim",
            args.hypervisor
        ),
    }
}

pub fn run(args: UpArgs) -> Result<()> {
    init_logging(args.log_format);
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

    let driver = choose_hypervisor(&args, &dir)?;
    tracing::info!(hypervisor = %driver.describe(), "hypervisor chosen");
    let (agent, mut reports) = Agent::new(LOCAL_HOST, driver);

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
        cfg.max_instances_per_account = args.max_instances_per_account;
        let control = Arc::new(ControlPlane::new(db.clone(), agent.clone() as Arc<dyn AgentClient>, cfg));
        control.register_builtin_images().map_err(|e| anyhow::anyhow!("{e}"))?;

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
        });
        eprintln!(
            "Strato is up: EC2 endpoint {endpoint}, region {}, hypervisor {}\nRoot account {} ({}). Use it with:\n\n{}",
            args.region,
            agent.hypervisor_description(),
            root.id,
            root.name,
            env_text(&endpoint, &key.access_key_id, &key.secret_access_key, &args.region)
        );
        axum::serve(listener, router(state))
            .with_graceful_shutdown(shutdown_signal())
            .await?;
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
