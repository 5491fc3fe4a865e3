//! `strato console i-…`: attach to an instance's live serial console.
//!
//! QEMU serves each VM's serial port on `<data>/vms/<id>/console.sock` (and logs it for
//! GetConsoleOutput). Attaching connects to that socket; on a terminal the terminal is
//! put in raw mode and Ctrl-] detaches, leaving the guest untouched. With piped input the
//! command forwards stdin and detaches at end of input, which scripts and tests use.

use anyhow::{bail, Context, Result};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The byte Ctrl-] sends.
const DETACH: u8 = 0x1d;

/// Restores the terminal's settings when dropped, whatever ends the session.
struct RawTerminal {
    saved: String,
}

impl RawTerminal {
    fn enter() -> Result<RawTerminal> {
        let saved = Command::new("stty")
            .arg("-g")
            .stdin(Stdio::inherit())
            .output()
            .context("running stty")?;
        let saved = String::from_utf8_lossy(&saved.stdout).trim().to_string();
        Command::new("stty")
            .args(["raw", "-echo"])
            .stdin(Stdio::inherit())
            .status()
            .context("running stty")?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = Command::new("stty")
            .arg(&self.saved)
            .stdin(Stdio::inherit())
            .status();
    }
}

pub fn attach(data_dir: &Path, instance: &str) -> Result<()> {
    if strato_common::InstanceId::parse_str(instance).is_none() {
        bail!("'{instance}' is not an instance id");
    }
    let sock = strato_drivers::qemu::console_socket(&data_dir.join("vms"), instance);
    let stream = UnixStream::connect(&sock).with_context(|| {
        format!("no live console for {instance} on this host (is it a running QEMU instance?)")
    })?;
    let interactive = std::io::stdin().is_terminal();
    let _raw = if interactive {
        eprint!("Connected to the serial console of {instance}. Detach with Ctrl-].\r\n");
        Some(RawTerminal::enter()?)
    } else {
        None
    };
    let mut from_vm = stream.try_clone()?;
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut out = std::io::stdout();
        while let Ok(n) = from_vm.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
    });
    let mut to_vm = stream.try_clone()?;
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 1024];
    loop {
        let n = stdin.read(&mut buf)?;
        if n == 0 {
            // End of piped input: give the guest a moment to answer, then detach.
            std::thread::sleep(Duration::from_millis(1500));
            break;
        }
        if let Some(pos) = buf[..n].iter().position(|b| *b == DETACH) {
            to_vm.write_all(&buf[..pos])?;
            break;
        }
        to_vm.write_all(&buf[..n])?;
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = reader.join();
    if interactive {
        drop(_raw);
        eprintln!("\nDetached from {instance}.");
    }
    Ok(())
}
