//! Per-VM cgroups that cap a QEMU process at its instance type's CPU and memory.
//!
//! Works with the unified hierarchy (cgroup v2: `/sys/fs/cgroup/cgroup.controllers`)
//! and with the legacy one (v1: separate `cpu` and `memory` mounts), since hosts still
//! ship both. Groups live under `strato/<instance-id>` in each hierarchy.

use std::path::{Path, PathBuf};
use strato_common::{Error, Result};

/// CPU and memory limits of one VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time the whole QEMU process may use, in percent of one CPU: its vCPUs
    /// plus QEMU's own threads (see [`super::accel::Accel::emulator_cpu_percent`]).
    pub cpu_percent: u32,
    /// Hard memory cap for the whole QEMU process (guest RAM plus overhead).
    pub memory_bytes: u64,
}

/// The period CPU quotas are expressed against (the kernel's default).
const PERIOD_US: u64 = 100_000;

impl Limits {
    /// The CPU quota per [`PERIOD_US`].
    fn quota_us(&self) -> u64 {
        self.cpu_percent as u64 * PERIOD_US / 100
    }
}

/// Which cgroup layout the host has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    V2 {
        root: PathBuf,
    },
    V1 {
        cpu: PathBuf,
        memory: PathBuf,
    },
    /// No usable cgroup filesystem: limits cannot be enforced (reported to operators).
    None,
}

impl Layout {
    /// Detects the layout under `base` (normally `/sys/fs/cgroup`).
    pub fn detect(base: &Path) -> Layout {
        if base.join("cgroup.controllers").exists() {
            return Layout::V2 {
                root: base.to_path_buf(),
            };
        }
        let cpu = base.join("cpu");
        let memory = base.join("memory");
        if cpu.join("cpu.cfs_quota_us").exists() && memory.join("memory.limit_in_bytes").exists() {
            return Layout::V1 { cpu, memory };
        }
        Layout::None
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Layout::V2 { .. } => "cgroup v2",
            Layout::V1 { .. } => "cgroup v1",
            Layout::None => "no cgroups (limits not enforced)",
        }
    }

    fn dirs(&self, name: &str) -> Vec<PathBuf> {
        match self {
            Layout::V2 { root } => vec![root.join("strato").join(name)],
            Layout::V1 { cpu, memory } => vec![
                cpu.join("strato").join(name),
                memory.join("strato").join(name),
            ],
            Layout::None => vec![],
        }
    }

    /// Creates the VM's group with its limits (idempotent).
    pub fn create(&self, name: &str, limits: Limits) -> Result<()> {
        let io =
            |e: std::io::Error, p: &Path| Error::Internal(format!("cgroup {}: {e}", p.display()));
        match self {
            Layout::V2 { root } => {
                let parent = root.join("strato");
                std::fs::create_dir_all(&parent).map_err(|e| io(e, &parent))?;
                // Controllers must be enabled on every ancestor for the leaf to use them.
                for dir in [root.as_path(), parent.as_path()] {
                    let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+cpu +memory");
                }
                let dir = parent.join(name);
                std::fs::create_dir_all(&dir).map_err(|e| io(e, &dir))?;
                write(
                    &dir.join("cpu.max"),
                    &format!("{} {PERIOD_US}", limits.quota_us()),
                )?;
                write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
            }
            Layout::V1 { cpu, memory } => {
                let c = cpu.join("strato").join(name);
                let m = memory.join("strato").join(name);
                std::fs::create_dir_all(&c).map_err(|e| io(e, &c))?;
                std::fs::create_dir_all(&m).map_err(|e| io(e, &m))?;
                write(&c.join("cpu.cfs_period_us"), &PERIOD_US.to_string())?;
                write(&c.join("cpu.cfs_quota_us"), &limits.quota_us().to_string())?;
                write(
                    &m.join("memory.limit_in_bytes"),
                    &limits.memory_bytes.to_string(),
                )?;
            }
            Layout::None => {}
        }
        Ok(())
    }

    /// Moves a process into the VM's group.
    pub fn add(&self, name: &str, pid: u32) -> Result<()> {
        for dir in self.dirs(name) {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Removes the VM's group (its processes must have exited).
    pub fn remove(&self, name: &str) -> Result<()> {
        for dir in self.dirs(name) {
            match std::fs::remove_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Internal(format!(
                        "removing cgroup {}: {e}",
                        dir.display()
                    )))
                }
            }
        }
        Ok(())
    }
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value)
        .map_err(|e| Error::Internal(format!("writing {value} to {}: {e}", path.display())))
}
