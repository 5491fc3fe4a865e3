//! Persistence for the control plane.
//!
//! The store owns the schema and every query. It is the single source of truth: the
//! control plane reads and writes records here inside transactions, and host state is
//! derived from it by reconciliation.
//!
//! Rows keep the columns that queries select or order by (`account_id`, `id`, `state`…)
//! as real indexed columns, and the rest of a record as a JSON document in `data`. The
//! SQL is kept to what SQLite and PostgreSQL share (numbered parameters, `ON CONFLICT`
//! upserts, no SQLite-only functions) so a PostgreSQL backend is a second
//! [`Db`] implementation, not a rewrite.

/// The records, which live in `strato-domain` so that layers above the store need not
/// depend on it.
pub use strato_domain as model;
mod decoded;
mod sqlite;

pub use model::*;
pub use sqlite::{Db, Document, NetworkColumn, ReadTx, WriteTx};
