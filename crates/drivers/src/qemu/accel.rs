//! Choosing between KVM and TCG.
//!
//! `/dev/kvm` existing is not enough: some hosts expose a paravirtual KVM that cannot
//! boot stock kernels (the guest hangs right after decompression, and `-cpu host`
//! aborts). So the probe boots the real image kernel under KVM with a timeout and
//! looks for its init marker on the serial console; only then is KVM used.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A QEMU accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

impl Accel {
    /// The CPU model to give guests: the host's under KVM, QEMU's portable one under
    /// TCG, with Intel's vendor id: an AMD-vendor qemu64 cannot describe
    /// hyperthreads without `topoext`, which TCG lacks, so the guest would see every
    /// thread as a core; Intel's CPUID leaf 0xB carries the `-smp` topology as is (and
    /// EC2's T3 and M5 are Intel Xeons).
    pub fn cpu_model(self) -> &'static str {
        match self {
            Accel::Kvm => "host",
            Accel::Tcg => "qemu64,vendor=GenuineIntel",
        }
    }

    /// The `-accel` argument. TCG's translation cache is capped: by default it may grow
    /// to 1 GiB, which the VM's memory cgroup (guest RAM plus [`Accel::overhead_bytes`])
    /// would not hold, and a guest that runs much code (a full distribution booting)
    /// would get its QEMU killed by the OOM killer.
    pub fn qemu_arg(self) -> String {
        match self {
            Accel::Kvm => "kvm".into(),
            Accel::Tcg => format!("tcg,tb-size={TCG_TB_MIB}"),
        }
    }

    /// Memory a QEMU process needs beyond guest RAM under this accelerator: device
    /// state, firmware, the display's video memory, I/O buffers, and under TCG its
    /// translation cache.
    pub fn overhead_bytes(self) -> u64 {
        const BASE: u64 = 256 << 20;
        match self {
            Accel::Kvm => BASE,
            Accel::Tcg => BASE + ((TCG_TB_MIB as u64) << 20),
        }
    }
}

impl Accel {
    /// CPU time QEMU's own threads get beyond the vCPUs', in percent of one CPU: the
    /// main loop (device emulation, virtio queues, NBD clients of the volumes, timers)
    /// and the RCU and worker threads. On EC2 that work runs on the Nitro cards, not on
    /// the instance's vCPUs; charging it to the VM's quota instead throttled a 1-vCPU
    /// guest whenever it did I/O (a Debian guest under TCG was throttled in 86% of the
    /// periods and booted 30 to 40% slower than the same QEMU outside a cgroup). The
    /// guest still gets at most its vCPUs: each vCPU is one thread, which runs on at most
    /// one CPU. Under TCG the main loop also runs timers and interrupts at emulation
    /// speed, so it gets a whole CPU.
    pub fn emulator_cpu_percent(self) -> u32 {
        match self {
            Accel::Kvm => 50,
            Accel::Tcg => 100,
        }
    }
}

/// TCG's translation cache, MiB.
const TCG_TB_MIB: u32 = 128;

/// The marker the probe waits for on the console.
pub const PROBE_MARKER: &str = "strato-minimal: init running";

/// Boots `kernel` + `initrd` under KVM for at most `timeout`; `Ok(())` when the marker
/// appeared, otherwise a reason.
pub fn probe_kvm(
    qemu: &Path,
    kernel: &Path,
    initrd: &Path,
    timeout: Duration,
) -> Result<Duration, String> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Err("/dev/kvm is not available".into());
    }
    let started = Instant::now();
    let mut child = Command::new(qemu)
        .args([
            "-machine", "pc", "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1",
        ])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args(["-serial", "stdio"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 root=/dev/nonexistent"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", qemu.display()))?;
    let mut stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&seen).contains(PROBE_MARKER) {
                        let _ = tx.send(true);
                        return;
                    }
                }
            }
        }
        let _ = tx.send(false);
    });
    let booted = rx.recv_timeout(timeout).unwrap_or(false);
    let _ = child.kill();
    let status = child.wait();
    if booted {
        return Ok(started.elapsed());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let err = err.lines().next().unwrap_or("").trim().to_string();
    Err(match status {
        _ if !err.is_empty() => format!("KVM probe guest failed: {err}"),
        _ => format!("KVM probe guest did not boot within {timeout:?}"),
    })
}
