//! Shared vocabulary for every Strato crate: typed resource IDs, the one domain
//! error type, and small helpers (timestamps) that the wire and the store agree on.

pub mod base64;
pub mod bounded;
pub mod cidr;
pub mod crash;
pub mod error;
pub mod filter;
pub mod hashing;
pub mod host;
pub mod ids;
pub mod time_fmt;

pub use error::{Error, ResourceKind, Result};
pub use ids::*;
