//! The metadata service as the host agent opens it: one listener per VPC namespace,
//! answering from the control plane's records.

use std::net::SocketAddr;
use std::sync::Arc;
use strato_agent::net::MetadataServer;
use strato_agent_api::MetadataSource;
use strato_common::{Error, Result};
use strato_imds::Imds;

struct Server {
    imds: Arc<Imds>,
    runtime: tokio::runtime::Handle,
}

/// A metadata server backed by `source` (the control plane), serving on the current
/// tokio runtime.
pub fn server(source: Arc<dyn MetadataSource>) -> Arc<dyn MetadataServer> {
    Arc::new(Server {
        imds: Imds::new(source),
        runtime: tokio::runtime::Handle::current(),
    })
}

impl MetadataServer for Server {
    fn serve(&self, ns: &str, vpc_id: &str) -> Result<tokio::task::JoinHandle<()>> {
        let addr: SocketAddr = format!("{}:80", strato_drivers::net::METADATA_ADDR)
            .parse()
            .expect("a valid address");
        // Non-blocking already, as tokio wants it.
        let std_listener = strato_imds::bind_in_namespace(ns, addr)
            .map_err(|e| Error::Internal(format!("metadata listener in {ns}: {e}")))?;
        let _guard = self.runtime.enter();
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .map_err(|e| Error::Internal(format!("metadata listener: {e}")))?;
        tracing::info!(namespace = %ns, vpc = %vpc_id, "metadata service listening");
        Ok(self.runtime.spawn(strato_imds::serve(
            self.imds.clone(),
            vpc_id.to_string(),
            listener,
        )))
    }
}
