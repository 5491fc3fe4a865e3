//! Binding the service's socket inside a VPC's network namespace.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

/// Binds a TCP listener inside network namespace `/run/netns/<ns>` (as `ip netns`
/// names them) and returns it, non-blocking, ready for
/// `tokio::net::TcpListener::from_std`.
///
/// A socket belongs to the namespace it was created in for its whole life, so one
/// process can serve every VPC from its own namespace: a short-lived thread enters
/// the namespace (`setns(2)` changes only the calling thread), creates and binds the
/// socket there, hands it back and exits, leaving every other thread where it was.
///
/// `addr` must exist in the namespace (169.254.169.254 on its `lo`, say). Needs
/// `CAP_SYS_ADMIN` (root).
pub fn bind_in_namespace(ns: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    if ns.is_empty() || ns == "." || ns == ".." || ns.contains('/') || ns.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid network namespace name {ns:?}"),
        ));
    }
    let ns_file = File::open(Path::new("/run/netns").join(ns))?;
    std::thread::Builder::new()
        .name(format!("imds-bind-{ns}"))
        .spawn(move || -> io::Result<TcpListener> {
            move_into_link_name_space(ns_file.as_fd(), Some(LinkNameSpaceType::Network))?;
            let listener = TcpListener::bind(addr)?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })?
        .join()
        .map_err(|_| io::Error::other("namespace bind thread panicked"))?
}
