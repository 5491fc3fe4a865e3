//! A synchronous QMP (QEMU Machine Protocol) client over a Unix socket.
//!
//! QMP is line-delimited JSON. On connect QEMU sends a greeting
//! `{"QMP": {"version": …, "capabilities": […]}}`; the client must send
//! `{"execute": "qmp_capabilities"}` before anything else. Each command gets exactly one
//! `{"return": …}` or `{"error": {"class": …, "desc": …}}` reply, but asynchronous
//! events (`{"event": "SHUTDOWN", "data": {"guest": true, "reason": "guest-shutdown"}, …}`)
//! may arrive at any time, including between a command and its reply; they are queued
//! and handed out by [`Qmp::take_events`].

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};
use strato_common::{Error, Result};

/// One QMP connection.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    events: Vec<Value>,
}

fn qmp_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("qmp: {e}"))
}

impl Qmp {
    /// Connects (retrying until `timeout`, since QEMU creates the socket a moment after
    /// it starts) and negotiates capabilities.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(qmp_err(format!("connect {}: {e}", path.display())))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(qmp_err)?;
        let writer = stream.try_clone().map_err(qmp_err)?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            events: vec![],
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(qmp_err(format!("unexpected greeting {greeting}")));
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).map_err(qmp_err)?;
        if n == 0 {
            return Err(qmp_err("connection closed"));
        }
        serde_json::from_str(&line).map_err(qmp_err)
    }

    /// Runs a command and returns its `return` value; events read meanwhile are queued.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut line = msg.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).map_err(qmp_err)?;
        loop {
            let reply = self.read_message()?;
            if reply.get("event").is_some() {
                self.events.push(reply);
                continue;
            }
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                return Err(qmp_err(format!("{command}: {err}")));
            }
            return Err(qmp_err(format!("unexpected reply {reply}")));
        }
    }

    /// Waits up to `timeout` for one event (returns queued events first).
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Value>> {
        if !self.events.is_empty() {
            return Ok(Some(self.events.remove(0)));
        }
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(qmp_err)?;
        let result = match self.read_message() {
            Ok(v) if v.get("event").is_some() => Ok(Some(v)),
            Ok(_) => Ok(None),
            Err(Error::Internal(m))
                if m.contains("timed out")
                    || m.contains("temporarily unavailable")
                    || m.contains("would block") =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        };
        let _ = self
            .reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)));
        result
    }

    /// Hands out the events queued while commands ran.
    pub fn take_events(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.events)
    }

    /// The VM's run state (`running`, `paused`, `shutdown`, `prelaunch`…).
    pub fn status(&mut self) -> Result<String> {
        let v = self.execute("query-status", None)?;
        Ok(v.get("status")
            .and_then(|s| s.as_str())
            .unwrap_or("unknown")
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A scripted QMP server: answers commands and injects an event mid-reply.
    #[test]
    fn negotiates_and_queues_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (s, _) = listener.accept().unwrap();
            let mut w = s.try_clone().unwrap();
            let mut r = BufReader::new(s);
            writeln!(w, r#"{{"QMP": {{"version": {{}}, "capabilities": []}}}}"#).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("qmp_capabilities"));
            writeln!(w, r#"{{"return": {{}}}}"#).unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            assert!(line.contains("query-status"));
            writeln!(w, r#"{{"event": "RESET", "data": {{"guest": true}}}}"#).unwrap();
            writeln!(
                w,
                r#"{{"return": {{"status": "running", "running": true}}}}"#
            )
            .unwrap();
            line.clear();
            r.read_line(&mut line).unwrap();
            writeln!(
                w,
                r#"{{"error": {{"class": "GenericError", "desc": "nope"}}}}"#
            )
            .unwrap();
            writeln!(w, r#"{{"event": "SHUTDOWN", "data": {{"guest": true}}}}"#).unwrap();
        });
        let mut q = Qmp::connect(&path, Duration::from_secs(2)).unwrap();
        assert_eq!(q.status().unwrap(), "running");
        assert_eq!(q.take_events().len(), 1);
        assert!(q.execute("bogus", None).is_err());
        let ev = q.next_event(Duration::from_secs(2)).unwrap().unwrap();
        assert_eq!(ev["event"], "SHUTDOWN");
        server.join().unwrap();
    }
}
