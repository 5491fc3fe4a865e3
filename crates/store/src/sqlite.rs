//! The embedded SQLite backend.
//!
//! One writer connection behind a mutex (SQLite serialises writers anyway) and a small
//! pool of reader connections in WAL mode, so Describe calls never wait behind a write.

use crate::model::*;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use strato_common::hashing::FastMap;
use strato_common::{AccountId, Error, Result};
use strato_domain::Scope;

const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The migration that files rows under their scope (see [`scope_legacy_rows`]).
const SCOPE_MIGRATION: usize = 9;

/// The migration that numbers record revisions (see [`add_revisions`]).
const REVISIONS_MIGRATION: usize = 10;

/// The migration that gives images a region (see [`add_image_regions`]).
const IMAGE_REGIONS_MIGRATION: usize = 13;

/// Schema migrations (`migrations/sqlite/NNNN_*.sql`), applied in order to a database
/// made by an older binary; `meta.schema_version` records the last one run. Some go with
/// a data change in the same transaction ([`backfill`]). A new database gets
/// [`FRESH_SCHEMA`] instead, which a test holds equal to what the migrations make.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_accounts_instances_images.sql"),
    include_str!("../migrations/sqlite/0002_instance_counts_index.sql"),
    include_str!("../migrations/sqlite/0003_vpc_networking.sql"),
    include_str!("../migrations/sqlite/0004_elastic_ips.sql"),
    include_str!("../migrations/sqlite/0005_network_interfaces.sql"),
    include_str!("../migrations/sqlite/0006_interface_addresses.sql"),
    include_str!("../migrations/sqlite/0007_public_ips.sql"),
    include_str!("../migrations/sqlite/0008_credit_defaults.sql"),
    include_str!("../migrations/sqlite/0009_scope_keys.sql"),
    include_str!("../migrations/sqlite/0010_record_revisions.sql"),
    include_str!("../migrations/sqlite/0011_volumes.sql"),
    include_str!("../migrations/sqlite/0012_snapshots.sql"),
    include_str!("../migrations/sqlite/0013_image_regions.sql"),
    include_str!("../migrations/sqlite/0014_import_tasks.sql"),
];

/// Tables that belong to one account, emptied when the account is deleted.
const ACCOUNT_TABLES: &[&str] = &[
    "instances",
    "tags",
    "key_pairs",
    "client_tokens",
    "network_defaults",
    "vpcs",
    "subnets",
    "security_groups",
    "security_group_rules",
    "internet_gateways",
    "route_tables",
    "dhcp_options",
    "instance_groups",
    "subnet_addresses",
    "elastic_ips",
    "network_interfaces",
    "credit_defaults",
    "volumes",
    "volume_attachments",
    "region_settings",
    "snapshots",
    "snapshot_permissions",
    "import_tasks",
];

/// A record kept in a document table: `account_id`, `id`, the indexed columns
/// [`Document::COLUMNS`], and the whole record as JSON in `data`.
///
/// One generic set of queries serves every such table, so a new resource family costs
/// a migration and an implementation of this trait, not another page of SQL.
pub trait Document: serde::Serialize + serde::de::DeserializeOwned {
    /// The table's name.
    const TABLE: &'static str;
    /// The indexed columns after `account_id` and `id`, in the order
    /// [`Document::column_values`] gives them.
    const COLUMNS: &'static [&'static str];
    /// The owning account and region (the rows' partition key).
    fn scope(&self) -> Scope;
    /// The record's id.
    fn doc_id(&self) -> &str;
    /// The values of [`Document::COLUMNS`] (`None` is SQL NULL).
    fn column_values(&self) -> Vec<Option<String>>;
    /// Whether the table's rows carry a stored revision (see [`add_revisions`]).
    const REVISED: bool = false;
}

fn flag(b: bool) -> Option<String> {
    Some(if b { "true" } else { "false" }.to_string())
}

impl Document for CreditDefault {
    const TABLE: &'static str = "credit_defaults";
    const COLUMNS: &'static [&'static str] = &[];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        &self.family
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![]
    }
}

impl Document for Vpc {
    const TABLE: &'static str = "vpcs";
    const COLUMNS: &'static [&'static str] = &["is_default"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![flag(self.is_default)]
    }
}

impl Document for Subnet {
    const TABLE: &'static str = "subnets";
    const COLUMNS: &'static [&'static str] = &["vpc_id"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![Some(self.vpc_id.to_string())]
    }
}

impl Document for SecurityGroup {
    const TABLE: &'static str = "security_groups";
    const COLUMNS: &'static [&'static str] = &["vpc_id", "name"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![Some(self.vpc_id.to_string()), Some(self.name.clone())]
    }
}

impl Document for SecurityGroupRule {
    const TABLE: &'static str = "security_group_rules";
    const COLUMNS: &'static [&'static str] = &["group_id", "ref_group_id"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![
            Some(self.group_id.to_string()),
            self.referenced_group().map(|g| g.to_string()),
        ]
    }
}

impl Document for InternetGateway {
    const TABLE: &'static str = "internet_gateways";
    const COLUMNS: &'static [&'static str] = &["vpc_id"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![self.vpc_id.as_ref().map(|v| v.to_string())]
    }
}

impl Document for RouteTable {
    const TABLE: &'static str = "route_tables";
    const COLUMNS: &'static [&'static str] = &["vpc_id"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![Some(self.vpc_id.to_string())]
    }
}

impl Document for DhcpOptions {
    const TABLE: &'static str = "dhcp_options";
    const COLUMNS: &'static [&'static str] = &[];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![]
    }
}

impl Document for ElasticIp {
    const TABLE: &'static str = "elastic_ips";
    const COLUMNS: &'static [&'static str] = &["public_ip", "instance_id"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![
            Some(self.public_ip.clone()),
            self.association.as_ref().map(|a| a.instance_id.to_string()),
        ]
    }
}

impl Document for RegionSettings {
    const TABLE: &'static str = "region_settings";
    const COLUMNS: &'static [&'static str] = &[];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        RegionSettings::ID
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![]
    }
}

impl Document for Volume {
    const TABLE: &'static str = "volumes";
    const COLUMNS: &'static [&'static str] = &["state", "client_token"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![
            Some(self.state.as_str().to_string()),
            self.client_token.clone(),
        ]
    }
}

impl Document for Snapshot {
    const TABLE: &'static str = "snapshots";
    const COLUMNS: &'static [&'static str] = &["state", "volume_id"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![
            Some(self.state.as_str().to_string()),
            self.volume_id.as_ref().map(|v| v.to_string()),
        ]
    }
}

impl Document for ImportTask {
    const TABLE: &'static str = "import_tasks";
    const COLUMNS: &'static [&'static str] = &["snapshot_id"];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        &self.id
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![Some(self.snapshot_id.to_string())]
    }
}

impl Document for NetworkInterface {
    const TABLE: &'static str = "network_interfaces";
    const REVISED: bool = true;
    const COLUMNS: &'static [&'static str] = &[
        "subnet_id",
        "instance_id",
        "mac_address",
        "vpc_id",
        "private_ip",
    ];
    fn scope(&self) -> Scope {
        Scope::new(self.account_id.clone(), self.region.clone())
    }
    fn doc_id(&self) -> &str {
        self.id.as_str()
    }
    fn column_values(&self) -> Vec<Option<String>> {
        vec![
            Some(self.subnet_id.to_string()),
            self.attachment.as_ref().map(|a| a.instance_id.to_string()),
            Some(self.mac_address.clone()),
            Some(self.vpc_id.to_string()),
            Some(self.private_ip.clone()),
        ]
    }
}

/// The columns a document write sets after `data`: [`Document::COLUMNS`], and `rev`
/// for revised tables (its value given last, as an integer's text, which the column's
/// integer affinity stores as an integer).
fn revised_columns<T: Document>() -> Vec<&'static str> {
    let mut cols = T::COLUMNS.to_vec();
    if T::REVISED {
        cols.push("rev");
    }
    cols
}

const READERS: usize = 4;

/// How many ids one `IN (…)` list holds (well under SQLite's and PostgreSQL's limits
/// on parameters).
pub const IN_LIST_CHUNK: usize = 500;

/// `?2, ?3, …` for `n` parameters after the account (`?1`).
fn in_list(n: usize) -> String {
    (0..n)
        .map(|i| format!("?{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The network columns of the instances table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkColumn {
    /// `instances.vpc_id`.
    Vpc,
    /// `instances.subnet_id`.
    Subnet,
}

/// The database handle shared by the whole process.
pub struct Db {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// This handle's number, unique in the process (see [`ReadTx`]).
    id: u64,
}

/// A number for a newly opened database, never given before in this process.
fn next_db_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("database: {e}"))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(db_err)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(db_err)
}

/// Decodes the JSON document in column `idx` straight from SQLite's row buffer: the
/// listing paths read thousands of rows per request, and copying each into a `String`
/// first doubles their allocations.
fn json_col<T: serde::de::DeserializeOwned>(
    r: &rusqlite::Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    let bad = |e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e)
    };
    let text = r.get_ref(idx)?.as_str().map_err(|e| bad(Box::new(e)))?;
    serde_json::from_str(text).map_err(|e| bad(Box::new(e)))
}

/// [`json_col`] for the record types listings read in bulk: decoded through the
/// process-wide cache of recently decoded documents ([`crate::decoded`]).
fn doc_col<T: crate::decoded::Cached>(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<T> {
    let bad = |e: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e)
    };
    let text = r.get_ref(idx)?.as_bytes().map_err(|e| bad(Box::new(e)))?;
    T::cache().decode(text).map_err(|e| bad(Box::new(e)))
}

fn open_conn(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(db_err)?;
    conn.execute_batch(
        // A 64 MiB page cache per connection keeps hot pages out of pread().
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; \
         PRAGMA busy_timeout=10000; PRAGMA cache_size=-65536;",
    )
    .map_err(db_err)?;
    Ok(conn)
}

impl Db {
    /// Opens (creating and migrating if needed) the database file at `path`.
    pub fn open(path: &Path) -> Result<Db> {
        let mut writer = open_conn(path)?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| open_conn(path).map(Mutex::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Db {
            writer: Mutex::new(writer),
            readers,
            id: next_db_id(),
        })
    }

    /// Runs `f` in one write transaction: all of its changes land, or none do.
    pub fn write<T>(&self, f: impl FnOnce(&WriteTx) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let out = f(&WriteTx::new(&tx, self.id))?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Runs read-only queries on a pooled reader connection (a consistent snapshot).
    pub fn read<T>(&self, f: impl FnOnce(&ReadTx) -> Result<T>) -> Result<T> {
        // Pick a free reader if there is one; otherwise wait on one chosen by thread.
        for r in &self.readers {
            if let Ok(mut conn) = r.try_lock() {
                return read_in(&mut conn, self.id, f);
            }
        }
        let idx = fastrand_index(self.readers.len());
        let mut conn = self.readers[idx].lock().unwrap_or_else(|p| p.into_inner());
        read_in(&mut conn, self.id, f)
    }
}

fn read_in<T>(conn: &mut Connection, db: u64, f: impl FnOnce(&ReadTx) -> Result<T>) -> Result<T> {
    let tx = conn.transaction().map_err(db_err)?;
    let out = f(&ReadTx::new(&tx, db));
    drop(tx);
    out
}

fn fastrand_index(n: usize) -> usize {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos as usize % n
}

/// The schema of a new database (`schema/sqlite.sql`): what [`MIGRATIONS`] and their
/// [`backfill`]s make of an empty one, written out whole, so a new database is made in
/// one step. `the_fresh_schema_is_what_the_migrations_make` holds the two equal: a
/// change to the schema is a new migration and the same change here.
const FRESH_SCHEMA: &str = include_str!("../schema/sqlite.sql");

/// Brings the database to [`SCHEMA_VERSION`]: a new one gets [`FRESH_SCHEMA`], an older
/// one the migrations it has not run, all in one transaction.
fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    )
    .map_err(db_err)?;
    let current = schema_version(conn)?;
    if current > SCHEMA_VERSION {
        return Err(Error::Internal(format!(
            "database schema version {current} is newer than this binary ({SCHEMA_VERSION})"
        )));
    }
    let fresh = current == 0 && !has_table(conn, "accounts")?;
    let tx = conn.transaction().map_err(db_err)?;
    if fresh {
        tx.execute_batch(FRESH_SCHEMA).map_err(db_err)?;
        set_schema_version(&tx, SCHEMA_VERSION as usize)?;
    } else {
        run_migrations(&tx, current as usize)?;
    }
    tx.commit().map_err(db_err)
}

/// Runs the migrations after `from` (and their backfills) in `tx`.
fn run_migrations(tx: &rusqlite::Transaction, from: usize) -> Result<()> {
    for (i, m) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(m).map_err(db_err)?;
        backfill(&WriteTx::new(tx, next_db_id()), i + 1)?;
        set_schema_version(tx, i + 1)?;
    }
    Ok(())
}

fn schema_version(conn: &Connection) -> Result<i64> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(db_err)?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

fn set_schema_version(conn: &Connection, version: usize) -> Result<()> {
    conn.execute(
        "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![version.to_string()],
    )
    .map(|_| ())
    .map_err(db_err)
}

fn has_table(conn: &Connection, table: &str) -> Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
    .map_err(db_err)
}

/// Adds `images.region` where it is missing (built-in images keep `NULL`: every
/// region offers them; images of accounts did not exist before).
fn add_image_regions(tx: &WriteTx) -> Result<()> {
    let has: bool = tx
        .conn
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('images') WHERE name = 'region'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(db_err)?
        > 0;
    if !has {
        tx.conn
            .execute_batch("ALTER TABLE images ADD COLUMN region TEXT;")
            .map_err(db_err)?;
    }
    Ok(())
}

/// Data changes that go with a schema migration, in the same transaction: columns
/// added to a document table are filled from the documents already stored.
fn backfill(tx: &WriteTx, version: usize) -> Result<()> {
    if version == 6 {
        tx.refresh_columns::<NetworkInterface>()?;
    }
    if version == SCOPE_MIGRATION {
        scope_legacy_rows(tx)?;
    }
    if version == REVISIONS_MIGRATION {
        add_revisions(tx)?;
    }
    if version == IMAGE_REGIONS_MIGRATION {
        add_image_regions(tx)?;
    }
    if version == 7 {
        // Until now only Elastic IPs gave instances a public address.
        let rows: Vec<(String, String, String)> = {
            let mut st = tx
                .conn
                .prepare("SELECT account_id, id, data FROM instances WHERE state <> 'terminated'")
                .map_err(db_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db_err)?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(db_err)?
        };
        for (account, id, data) in rows {
            let inst: Instance = from_json(&data)?;
            if let Some(ip) = inst.public_ip {
                tx.conn
                    .execute(
                        "UPDATE instances SET public_ip = ?3 WHERE account_id = ?1 AND id = ?2",
                        params![account, id, ip],
                    )
                    .map_err(db_err)?;
            }
        }
    }
    Ok(())
}

/// Record revisions: every write of an instance's or an interface's document gives the
/// row a number never given before in this database (one counter for both tables), so
/// a listing can tell from an index alone which records it has decoded already and
/// read the documents of only the others (see [`ReadTx::instances_page`] and
/// [`crate::decoded`]). The store's writes number their rows ([`WriteTx::next_revision`]);
/// triggers number the rows of any write that did not (another tool's, or a path
/// that forgot), so none is missed; rows already stored are numbered by rewriting
/// their documents in place. Safe to run again.
fn add_revisions(tx: &WriteTx) -> Result<()> {
    for table in ["instances", "network_interfaces"] {
        let has_rev = tx
            .conn
            .prepare(&format!(
                "SELECT 1 FROM pragma_table_info('{table}') WHERE name = 'rev'"
            ))
            .and_then(|mut st| st.exists([]))
            .map_err(db_err)?;
        if !has_rev {
            tx.conn
                .execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;"
                ))
                .map_err(db_err)?;
        }
    }
    tx.conn
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS doc_revisions (n INTEGER NOT NULL);
             INSERT INTO doc_revisions(n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM doc_revisions);",
        )
        .map_err(db_err)?;
    for table in ["instances", "network_interfaces"] {
        for (event, when) in [
            ("insert", "INSERT ON {table} WHEN NEW.rev = 0"),
            ("update", "UPDATE OF data ON {table} WHEN NEW.rev = OLD.rev"),
        ] {
            let when = when.replace("{table}", table);
            tx.conn
                .execute_batch(&format!(
                    "DROP TRIGGER IF EXISTS {table}_rev_{event};
                     CREATE TRIGGER {table}_rev_{event} AFTER {when} BEGIN
                         UPDATE doc_revisions SET n = n + 1;
                         UPDATE {table} SET rev = (SELECT n FROM doc_revisions) WHERE rowid = NEW.rowid;
                     END;"
                ))
                .map_err(db_err)?;
        }
    }
    tx.conn
        .execute_batch(
            "UPDATE instances SET data = data;
             UPDATE network_interfaces SET data = data;
             CREATE INDEX IF NOT EXISTS instances_listing ON instances(account_id, id, terminated_ms, rev);
             DROP INDEX IF EXISTS network_interfaces_instance;
             CREATE INDEX network_interfaces_instance ON network_interfaces(account_id, instance_id, rev);",
        )
        .map_err(db_err)
}

/// Files every row of a regional table under `account/region`, and writes the region
/// into each document that has a `region` member (instances carry theirs in their zone).
fn scope_legacy_rows(tx: &WriteTx) -> Result<()> {
    let region = tx
        .meta_get("region")?
        .unwrap_or_else(|| "us-east-1".to_string());
    const DOC_TABLES: &[&str] = &[
        "key_pairs",
        "vpcs",
        "subnets",
        "security_groups",
        "security_group_rules",
        "internet_gateways",
        "route_tables",
        "dhcp_options",
        "elastic_ips",
        "network_interfaces",
        "credit_defaults",
    ];
    let exists = |table: &str| has_table(tx.conn, table);
    for table in DOC_TABLES {
        if !exists(table)? {
            continue;
        }
        let rows: Vec<(i64, String)> = {
            let mut st = tx
                .conn
                .prepare(&format!("SELECT rowid, data FROM {table}"))
                .map_err(db_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db_err)?;
            rows.collect::<std::result::Result<_, _>>()
                .map_err(db_err)?
        };
        for (rowid, data) in rows {
            let mut doc: serde_json::Value = serde_json::from_str(&data).map_err(db_err)?;
            if let Some(obj) = doc.as_object_mut() {
                obj.entry("region")
                    .or_insert_with(|| serde_json::Value::String(region.clone()));
            }
            tx.conn
                .execute(
                    &format!("UPDATE {table} SET data = ?2 WHERE rowid = ?1"),
                    params![rowid, doc.to_string()],
                )
                .map_err(db_err)?;
        }
    }
    for table in ACCOUNT_TABLES {
        if !exists(table)? {
            continue;
        }
        tx.conn
            .execute(
                &format!(
                    "UPDATE {table} SET account_id = account_id || '/' || ?1 WHERE instr(account_id, '/') = 0"
                ),
                [region.as_str()],
            )
            .map_err(db_err)?;
    }
    Ok(())
}

/// A read transaction: queries only, on a consistent snapshot of the database. What
/// [`Db::read`] gives; a [`WriteTx`] offers every query too (it dereferences to one).
/// Changes are methods of [`WriteTx`] alone: a write inside [`Db::write`] compiles,
///
/// ```
/// # fn f(db: &strato_store::Db) -> strato_common::Result<()> {
/// db.write(|tx| tx.meta_set("k", "v"))
/// # }
/// ```
///
/// and the same inside [`Db::read`] does not:
///
/// ```compile_fail
/// # fn f(db: &strato_store::Db) -> strato_common::Result<()> {
/// db.read(|tx| tx.meta_set("k", "v"))
/// # }
/// ```
pub struct ReadTx<'a> {
    conn: &'a Connection,
    /// Which open database this is ([`Db::id`]): stored revisions are numbered per
    /// database, so the process-wide cache of decoded records keys them by both.
    db: u64,
}

/// A write transaction: the queries of [`ReadTx`] and the changes. What [`Db::write`]
/// gives; all of its changes land when the closure returns `Ok`, or none do.
pub struct WriteTx<'a> {
    read: ReadTx<'a>,
    /// Revisions taken from the counter for this transaction's writes and not yet
    /// given: the next one and the last one ([`WriteTx::next_revision`]).
    revs: std::cell::Cell<(i64, i64)>,
}

impl<'a> ReadTx<'a> {
    fn new(conn: &'a Connection, db: u64) -> Self {
        ReadTx { conn, db }
    }
}

impl<'a> WriteTx<'a> {
    fn new(conn: &'a Connection, db: u64) -> Self {
        WriteTx {
            read: ReadTx::new(conn, db),
            revs: std::cell::Cell::new((1, 0)),
        }
    }
}

impl<'a> std::ops::Deref for WriteTx<'a> {
    type Target = ReadTx<'a>;

    fn deref(&self) -> &ReadTx<'a> {
        &self.read
    }
}

/// How many revisions a transaction takes from the counter at a time: one counter
/// update per this many rows written (numbers left unused are never given).
const REVISION_BLOCK: i64 = 256;

impl ReadTx<'_> {
    // ---- meta -------------------------------------------------------------------------
    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(db_err)
    }

    // ---- accounts and keys ------------------------------------------------------------
    pub fn list_accounts(&self) -> Result<Vec<Account>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, name, created_ms FROM accounts ORDER BY created_ms, id")
            .map_err(db_err)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(db_err)?;
        rows.map(|r| {
            let (id, name, created_ms) = r.map_err(db_err)?;
            Ok(Account {
                id: AccountId::parse(&id).ok_or_else(|| db_err("bad account id"))?,
                name,
                created_ms,
            })
        })
        .collect()
    }

    /// Finds an account by id or name.
    pub fn find_account(&self, id_or_name: &str) -> Result<Option<Account>> {
        Ok(self
            .list_accounts()?
            .into_iter()
            .find(|a| a.id.as_str() == id_or_name || a.name == id_or_name))
    }

    pub fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        self.conn
            .prepare_cached(
                "SELECT access_key_id, account_id, secret, created_ms FROM access_keys WHERE access_key_id = ?1",
            )
            .map_err(db_err)?
            .query_row([access_key_id], row_to_access_key)
            .optional()
            .map_err(db_err)
    }

    pub fn access_keys_of(&self, account: &AccountId) -> Result<Vec<AccessKey>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT access_key_id, account_id, secret, created_ms FROM access_keys
                 WHERE account_id = ?1 ORDER BY created_ms, access_key_id",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map([account.as_str()], row_to_access_key)
            .map_err(db_err)?;
        rows.map(|r| r.map_err(db_err)).collect()
    }

    // ---- instances ----------------------------------------------------------------------
    pub fn instance(&self, scope: &Scope, id: &str) -> Result<Option<Instance>> {
        self.conn
            .prepare_cached("SELECT data FROM instances WHERE account_id = ?1 AND id = ?2")
            .map_err(db_err)?
            .query_row(params![scope.key(), id], |r| doc_col(r, 0))
            .optional()
            .map_err(db_err)
    }

    /// The public addresses of the given instances of an account, as (instance id,
    /// address) for those that hold one: one query per [`IN_LIST_CHUNK`] ids, never one
    /// per instance (what DescribeNetworkInterfaces shows on primary interfaces).
    pub fn public_ips_of_instances(
        &self,
        scope: &Scope,
        instances: &[&str],
    ) -> Result<Vec<(String, String)>> {
        // Instances without an address are dropped here rather than by the query, so
        // the planner has only the primary key to choose.
        let rows = self.rows_of_ids(
            scope,
            instances,
            "SELECT id, public_ip FROM instances WHERE account_id = ?1 AND id IN (?IDS)",
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?)),
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, ip)| Some((id, ip?)))
            .collect())
    }

    /// An instance by id regardless of account: only for the host agent's reports.
    pub fn instance_any_account(&self, id: &str) -> Result<Option<Instance>> {
        self.conn
            .prepare_cached("SELECT data FROM instances WHERE id = ?1")
            .map_err(db_err)?
            .query_row([id], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db_err)?
            .map(|s| from_json(&s))
            .transpose()
    }

    /// Up to `limit` instances of an account with ids after `after`, in id order,
    /// skipping terminated instances that ended before `visible_since_ms`.
    pub fn instances_page(
        &self,
        scope: &Scope,
        after: Option<&str>,
        limit: usize,
        visible_since_ms: i64,
    ) -> Result<Vec<std::sync::Arc<Instance>>> {
        // Answered by the `instances_listing` index alone; documents are read only for
        // the revisions not decoded yet.
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT rowid, rev FROM instances
                 WHERE account_id = ?1 AND id > ?2 AND (terminated_ms IS NULL OR terminated_ms >= ?3)
                 ORDER BY id LIMIT ?4",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(
                params![
                    scope.key(),
                    after.unwrap_or(""),
                    visible_since_ms,
                    limit as i64
                ],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map_err(db_err)?;
        let mut revs = Vec::with_capacity(limit.min(1000));
        for r in rows {
            revs.push(r.map_err(db_err)?);
        }
        self.revised("instances", &revs)
    }

    /// The records of a revised table ([`crate::decoded`]) whose `(rowid, rev)` pairs
    /// a listing found, in that order: those decoded before from the cache, the others
    /// read by rowid and decoded (in this transaction's snapshot, so a row read is
    /// the revision the index showed).
    fn revised<T: crate::decoded::Cached>(
        &self,
        table: &str,
        rows: &[(i64, i64)],
    ) -> Result<Vec<std::sync::Arc<T>>> {
        let cache = T::cache();
        let mut out = cache.by_revs(self.db, rows.iter().map(|&(_, rev)| rev as u64));
        let mut missing = out.iter().zip(rows).filter(|(v, _)| v.is_none()).peekable();
        if missing.peek().is_none() {
            return Ok(out.into_iter().flatten().collect());
        }
        let sql = format!("SELECT rev, data FROM {table} WHERE rowid = ?1");
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let mut read = Vec::new();
        for (_, &(rowid, _)) in missing {
            let v = st
                .query_row([rowid], |r| {
                    let rev = r.get::<_, i64>(0)? as u64;
                    let text = r.get_ref(1)?.as_bytes()?;
                    Ok(cache.decode_rev(self.db, rev, text).map_err(db_err))
                })
                .map_err(db_err)??;
            read.push(v);
        }
        let mut read = read.into_iter();
        for v in out.iter_mut().filter(|v| v.is_none()) {
            *v = read.next();
        }
        Ok(out.into_iter().flatten().collect())
    }

    pub fn instances_in_reservation(
        &self,
        scope: &Scope,
        reservation: &str,
    ) -> Result<Vec<Instance>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT data FROM instances WHERE account_id = ?1 AND reservation_id = ?2 ORDER BY id",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![scope.key(), reservation], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
    }

    /// Every instance placed on `host` that is not yet terminated: what its agent must run.
    pub fn instances_on_host(&self, host: &str) -> Result<Vec<Instance>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT data FROM instances WHERE host = ?1 AND state <> 'terminated' ORDER BY id",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map([host], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
    }

    /// Instance counts by state across all accounts (for metrics).
    pub fn instance_state_counts(&self, visible_since_ms: i64) -> Result<Vec<(String, i64)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT state, COUNT(*) FROM instances
                 WHERE terminated_ms IS NULL OR terminated_ms >= ?1 GROUP BY state",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map([visible_since_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?;
        rows.map(|r| r.map_err(db_err)).collect()
    }

    /// Ids of the account's instances that ended before `before_ms` (past their
    /// visibility window, awaiting purge).
    pub fn expired_instance_ids(&self, scope: &Scope, before_ms: i64) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id FROM instances
                 WHERE account_id = ?1 AND terminated_ms IS NOT NULL AND terminated_ms < ?2",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![scope.key(), before_ms], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| r.map_err(db_err)).collect()
    }

    pub fn count_live_instances(&self, scope: &Scope) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM instances WHERE account_id = ?1 AND state <> 'terminated'",
                [scope.key()],
                |r| r.get(0),
            )
            .map_err(db_err)
    }

    /// Instances not terminated of `account` in every region.
    pub fn count_live_instances_everywhere(&self, account: &AccountId) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM instances WHERE (account_id = ?1 OR account_id LIKE ?1 || '/%') AND state <> 'terminated'",
                [account.as_str()],
                |r| r.get(0),
            )
            .map_err(db_err)
    }

    // ---- client tokens ------------------------------------------------------------------
    pub fn client_token(&self, scope: &Scope, token: &str) -> Result<Option<ClientTokenRecord>> {
        self.conn
            .prepare_cached(
                "SELECT token, reservation_id, params_digest FROM client_tokens
                 WHERE account_id = ?1 AND token = ?2",
            )
            .map_err(db_err)?
            .query_row(params![scope.key(), token], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()
            .map_err(db_err)?
            .map(|(token, res, params_digest)| {
                Ok(ClientTokenRecord {
                    token,
                    reservation_id: strato_common::ResourceId::parse(&res)?,
                    params_digest,
                })
            })
            .transpose()
    }

    // ---- tags ---------------------------------------------------------------------------
    /// Tags of the resources whose ids lie in `[first, last]`, grouped by resource: one
    /// range query for a whole page instead of one query per resource.
    pub fn tags_in_range(
        &self,
        scope: &Scope,
        first: &str,
        last: &str,
    ) -> Result<FastMap<String, Vec<(String, String)>>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT resource_id, key, value FROM tags
                 WHERE account_id = ?1 AND resource_id >= ?2 AND resource_id <= ?3
                 ORDER BY resource_id, key",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![scope.key(), first, last], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(db_err)?;
        let mut out: FastMap<String, Vec<(String, String)>> = FastMap::default();
        for r in rows {
            let (id, k, v) = r.map_err(db_err)?;
            out.entry(id).or_default().push((k, v));
        }
        Ok(out)
    }

    /// Tags of one resource, sorted by key.
    pub fn tags_of(&self, scope: &Scope, resource_id: &str) -> Result<Vec<(String, String)>> {
        Ok(self
            .tags_in_range(scope, resource_id, resource_id)?
            .remove(resource_id)
            .unwrap_or_default())
    }

    /// All tags of an account after a `(resource_id, key)` position, in that order.
    pub fn tags_page(
        &self,
        scope: &Scope,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<Tag>> {
        let (rid, key) = after.unwrap_or(("", ""));
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT resource_id, resource_type, key, value FROM tags
                 WHERE account_id = ?1 AND (resource_id > ?2 OR (resource_id = ?2 AND key > ?3))
                 ORDER BY resource_id, key LIMIT ?4",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![scope.key(), rid, key, limit as i64], |r| {
                Ok(Tag {
                    resource_id: r.get(0)?,
                    resource_type: r.get(1)?,
                    key: r.get(2)?,
                    value: r.get(3)?,
                })
            })
            .map_err(db_err)?;
        rows.map(|r| r.map_err(db_err)).collect()
    }

    // ---- key pairs ----------------------------------------------------------------------
    pub fn key_pairs(&self, scope: &Scope) -> Result<Vec<KeyPair>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT data FROM key_pairs WHERE account_id = ?1 ORDER BY name")
            .map_err(db_err)?;
        let rows = st
            .query_map([scope.key()], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
    }

    pub fn key_pair_by_name(&self, scope: &Scope, name: &str) -> Result<Option<KeyPair>> {
        self.conn
            .prepare_cached("SELECT data FROM key_pairs WHERE account_id = ?1 AND name = ?2")
            .map_err(db_err)?
            .query_row(params![scope.key(), name], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db_err)?
            .map(|s| from_json(&s))
            .transpose()
    }

    pub fn key_pair_by_id(&self, scope: &Scope, id: &str) -> Result<Option<KeyPair>> {
        self.conn
            .prepare_cached("SELECT data FROM key_pairs WHERE account_id = ?1 AND id = ?2")
            .map_err(db_err)?
            .query_row(params![scope.key(), id], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db_err)?
            .map(|s| from_json(&s))
            .transpose()
    }

    // ---- images -------------------------------------------------------------------------
    /// Images the account may see and launch in `region`: built-in and public ones,
    /// its own, and those shared with it, in id order (deregistered ones never).
    pub fn visible_images(&self, account: &AccountId, region: &str) -> Result<Vec<Image>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT data FROM images WHERE (region IS NULL OR region = ?2)
                 AND (public = TRUE OR owner = ?1
                      OR id IN (SELECT image_id FROM image_permissions WHERE grantee = ?1))
                 ORDER BY id",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![account.as_str(), region], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        let all: Vec<Image> = rows
            .map(|r| from_json(&r.map_err(db_err)?))
            .collect::<Result<_>>()?;
        Ok(all
            .into_iter()
            .filter(|i| i.launchable_by(account))
            .collect())
    }

    /// An image by id regardless of visibility (for building host specs).
    pub fn image(&self, id: &str) -> Result<Option<Image>> {
        self.conn
            .prepare_cached("SELECT data FROM images WHERE id = ?1")
            .map_err(db_err)?
            .query_row([id], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db_err)?
            .map(|s| from_json(&s))
            .transpose()
    }

    /// An image the account may see and launch in `region`.
    pub fn visible_image(
        &self,
        account: &AccountId,
        region: &str,
        id: &str,
    ) -> Result<Option<Image>> {
        Ok(self
            .image(id)?
            .filter(|i| i.region.as_deref().is_none_or(|r| r == region))
            .filter(|i| i.launchable_by(account)))
    }

    /// The images an account owns in `region`, deregistered ones included.
    pub fn owned_images(&self, account: &AccountId, region: &str) -> Result<Vec<Image>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT data FROM images WHERE owner = ?1 AND region = ?2 ORDER BY id")
            .map_err(db_err)?;
        let rows = st
            .query_map(params![account.as_str(), region], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
    }

    // ---- document tables (network resources) ---------------------------------------------
    /// One record of the account by id.
    pub fn get_doc<T: Document>(&self, scope: &Scope, id: &str) -> Result<Option<T>> {
        let sql = format!(
            "SELECT data FROM {} WHERE account_id = ?1 AND id = ?2",
            T::TABLE
        );
        self.conn
            .prepare_cached(&sql)
            .map_err(db_err)?
            .query_row(params![scope.key(), id], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db_err)?
            .map(|s| from_json(&s))
            .transpose()
    }

    /// Every record of the account, in id order.
    pub fn list_docs<T: Document>(&self, scope: &Scope) -> Result<Vec<T>> {
        let sql = format!(
            "SELECT data FROM {} WHERE account_id = ?1 ORDER BY id",
            T::TABLE
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let rows = st
            .query_map([scope.key()], |r| json_col(r, 0))
            .map_err(db_err)?;
        rows.map(|r| r.map_err(db_err)).collect()
    }

    /// Up to `limit` records of the account with ids after `after`, in id order: one
    /// page of a listing without filters, read without touching the others.
    pub fn list_docs_after<T: Document>(
        &self,
        scope: &Scope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>> {
        let sql = format!(
            "SELECT data FROM {} WHERE account_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            T::TABLE
        );
        self.docs_of(
            &sql,
            params![scope.key(), after.unwrap_or(""), limit as i64],
        )
    }

    /// The records of the account whose indexed `column` equals `value`, in id order.
    /// `column` must be one of [`Document::COLUMNS`].
    pub fn list_docs_by<T: Document>(
        &self,
        scope: &Scope,
        column: &str,
        value: &str,
    ) -> Result<Vec<T>> {
        if !T::COLUMNS.contains(&column) {
            return Err(db_err(format!("{} has no column {column}", T::TABLE)));
        }
        let sql = format!(
            "SELECT data FROM {} WHERE account_id = ?1 AND {column} = ?2 ORDER BY id",
            T::TABLE
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let rows = st
            .query_map(params![scope.key(), value], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
    }

    /// Runs a query whose first column is a document and collects the documents.
    fn docs_of<T: Document>(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<T>> {
        let mut st = self.conn.prepare_cached(sql).map_err(db_err)?;
        let rows = st
            .query_map(params, |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
    }

    // ---- volumes -----------------------------------------------------------------------------
    /// The volumes attached (in any attachment state) to an instance, in id order.
    pub fn volumes_of_instance(&self, scope: &Scope, instance: &str) -> Result<Vec<Volume>> {
        self.docs_of(
            "SELECT v.data FROM volume_attachments a JOIN volumes v
               ON v.account_id = a.account_id AND v.id = a.volume_id
             WHERE a.account_id = ?1 AND a.instance_id = ?2 ORDER BY v.id",
            params![scope.key(), instance],
        )
    }

    /// Whether any volume of the scope is attached (in any state) to an instance: one
    /// index probe, so listings of instances skip looking for volumes when none is.
    pub fn any_volume_attached(&self, scope: &Scope) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM volume_attachments WHERE account_id = ?1 LIMIT 1")
            .map_err(db_err)?
            .query_row(params![scope.key()], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(db_err)
    }

    /// The volumes attached (in any attachment state) to any of the given instances:
    /// one indexed query per [`IN_LIST_CHUNK`] ids, each volume once.
    pub fn volumes_of_instances(&self, scope: &Scope, instances: &[&str]) -> Result<Vec<Volume>> {
        let texts = self.rows_of_ids(
            scope,
            instances,
            "SELECT DISTINCT v.id, v.data FROM volume_attachments a JOIN volumes v
               ON v.account_id = a.account_id AND v.id = a.volume_id
             WHERE a.account_id = ?1 AND a.instance_id IN (?IDS)",
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?;
        let mut seen = std::collections::HashSet::new();
        texts
            .into_iter()
            .filter(|(id, _)| seen.insert(id.clone()))
            .map(|(_, data)| from_json(&data))
            .collect()
    }

    /// Every volume attached (in any attachment state) to some instance, of every
    /// account: the disks of the host's VMs at startup.
    pub fn attached_volumes(&self) -> Result<Vec<Volume>> {
        self.docs_of(
            "SELECT v.data FROM volumes v WHERE EXISTS (SELECT 1 FROM volume_attachments a
               WHERE a.account_id = v.account_id AND a.volume_id = v.id) ORDER BY v.id",
            [],
        )
    }

    /// Every volume of every account that the host must keep (all but deleted ones),
    /// for the agent's startup sync.
    pub fn live_volumes(&self) -> Result<Vec<Volume>> {
        self.docs_of(
            "SELECT data FROM volumes WHERE state <> 'deleted' ORDER BY id",
            [],
        )
    }

    /// A volume by id alone (host reports name no account).
    pub fn volume_by_id(&self, id: &str) -> Result<Option<Volume>> {
        Ok(self
            .docs_of::<Volume>("SELECT data FROM volumes WHERE id = ?1", params![id])?
            .into_iter()
            .next())
    }

    // ---- snapshots ---------------------------------------------------------------------------
    /// The import task making a snapshot, if any (host reports).
    pub fn import_task_of_snapshot(&self, snapshot: &str) -> Result<Option<ImportTask>> {
        Ok(self
            .docs_of::<ImportTask>(
                "SELECT data FROM import_tasks WHERE snapshot_id = ?1",
                params![snapshot],
            )?
            .into_iter()
            .next())
    }

    /// A snapshot by id alone, of any account (host reports, shared snapshots).
    pub fn snapshot_by_id(&self, id: &str) -> Result<Option<Snapshot>> {
        Ok(self
            .docs_of::<Snapshot>("SELECT data FROM snapshots WHERE id = ?1", params![id])?
            .into_iter()
            .next())
    }

    /// The snapshots of other accounts in `region` that `account` may create volumes
    /// from: shared with it by id, or public.
    pub fn snapshots_shared_with(&self, region: &str, account: &str) -> Result<Vec<Snapshot>> {
        self.docs_of(
            "SELECT DISTINCT s.data FROM snapshot_permissions p JOIN snapshots s
               ON s.account_id = p.account_id AND s.id = p.snapshot_id
             WHERE p.region = ?1 AND p.grantee IN (?2, 'all') ORDER BY s.id",
            params![region, account],
        )
    }

    /// Every snapshot of every account, for the agent's startup sync.
    pub fn all_snapshots(&self) -> Result<Vec<Snapshot>> {
        self.docs_of("SELECT data FROM snapshots ORDER BY id", [])
    }

    // ---- network interfaces ----------------------------------------------------------------
    /// The interfaces attached to the given instances of an account: one indexed
    /// query per [`IN_LIST_CHUNK`] ids, never one per instance.
    pub fn interfaces_of_instances(
        &self,
        scope: &Scope,
        instances: &[&str],
    ) -> Result<Vec<std::sync::Arc<NetworkInterface>>> {
        let revs = self.rows_of_ids(
            scope,
            instances,
            "SELECT rowid, rev FROM network_interfaces WHERE account_id = ?1 AND instance_id IN (?IDS)",
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
        )?;
        self.revised("network_interfaces", &revs)
    }

    /// Runs `sql` once per [`IN_LIST_CHUNK`] of `ids` (the account's scope is `?1`,
    /// the chunk's ids go where `sql` says `(?IDS)`), collecting what `row` reads of
    /// every row: a query per chunk, never one per id.
    fn rows_of_ids<T>(
        &self,
        scope: &Scope,
        ids: &[&str],
        sql: &str,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>> {
        let key = scope.key();
        let mut out = vec![];
        for chunk in ids.chunks(IN_LIST_CHUNK) {
            let sql = sql.replace("(?IDS)", &format!("({})", in_list(chunk.len())));
            let mut st = self.conn.prepare(&sql).map_err(db_err)?;
            let params = std::iter::once(key.as_str()).chain(chunk.iter().copied());
            let rows = st
                .query_map(rusqlite::params_from_iter(params), &row)
                .map_err(db_err)?;
            for r in rows {
                out.push(r.map_err(db_err)?);
            }
        }
        Ok(out)
    }

    /// The interfaces attached to instances whose ids lie in `first..=last`, by one
    /// range scan of the instance index: for a page of instances read in id order this
    /// is much cheaper than an `IN` list of a thousand ids. The caller drops those of
    /// instances it did not ask about.
    pub fn interfaces_in_instance_range(
        &self,
        scope: &Scope,
        first: &str,
        last: &str,
    ) -> Result<Vec<std::sync::Arc<NetworkInterface>>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT rowid, rev FROM network_interfaces
                 WHERE account_id = ?1 AND instance_id >= ?2 AND instance_id <= ?3",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![scope.key(), first, last], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db_err)?;
        // About one interface per instance of the range.
        let mut revs = Vec::with_capacity(1024);
        for r in rows {
            revs.push(r.map_err(db_err)?);
        }
        self.revised("network_interfaces", &revs)
    }

    /// The interfaces attached to the given instances of an account, each with its
    /// subnet (what VM specs need): one query per [`IN_LIST_CHUNK`] ids.
    pub fn nics_of_instances(
        &self,
        scope: &Scope,
        instances: &[&str],
    ) -> Result<Vec<(NetworkInterface, Subnet)>> {
        let key = scope.key();
        let mut out = vec![];
        for chunk in instances.chunks(IN_LIST_CHUNK) {
            let sql = format!(
                "SELECT n.data, s.data FROM network_interfaces n
                 JOIN subnets s ON s.account_id = n.account_id AND s.id = n.subnet_id
                 WHERE n.account_id = ?1 AND n.instance_id IN ({})",
                in_list(chunk.len())
            );
            let params = std::iter::once(key.as_str()).chain(chunk.iter().copied());
            out.extend(self.interface_rows(&sql, rusqlite::params_from_iter(params))?);
        }
        Ok(out)
    }

    /// The interfaces attached to one instance, each with its subnet.
    pub fn interfaces_of_instance(
        &self,
        scope: &Scope,
        instance: &str,
    ) -> Result<Vec<(NetworkInterface, Subnet)>> {
        self.nics_of_instances(scope, &[instance])
    }

    /// The interfaces attached to the instances on `host` that are not terminated,
    /// each with its subnet: what a host agent's specs need, in one query.
    pub fn interfaces_on_host(&self, host: &str) -> Result<Vec<(NetworkInterface, Subnet)>> {
        self.interface_rows(
            "SELECT n.data, s.data FROM instances i
             JOIN network_interfaces n ON n.account_id = i.account_id AND n.instance_id = i.id
             JOIN subnets s ON s.account_id = n.account_id AND s.id = n.subnet_id
             WHERE i.host = ?1 AND i.state <> 'terminated'",
            [host],
        )
    }

    fn interface_rows(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<(NetworkInterface, Subnet)>> {
        let mut st = self.conn.prepare(sql).map_err(db_err)?;
        let rows = st
            .query_map(params, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(db_err)?;
        rows.map(|r| {
            let (n, s) = r.map_err(db_err)?;
            Ok((from_json(&n)?, from_json(&s)?))
        })
        .collect()
    }

    /// Every interface attached to an instance, across accounts (startup repairs).
    pub fn attached_interfaces(&self) -> Result<Vec<NetworkInterface>> {
        self.docs_of(
            "SELECT data FROM network_interfaces WHERE instance_id IS NOT NULL",
            [],
        )
    }

    /// The interface of any account with private address `ip` in VPC `vpc` (the
    /// metadata service's lookup; an index answers it).
    pub fn interface_at(&self, vpc: &str, ip: &str) -> Result<Option<NetworkInterface>> {
        Ok(self
            .docs_of(
                "SELECT data FROM network_interfaces WHERE vpc_id = ?1 AND private_ip = ?2",
                params![vpc, ip],
            )?
            .into_iter()
            .next())
    }

    // ---- network defaults, instances in networks -----------------------------------------
    /// True once the account's default network resources have been created (they are
    /// created once; deleting them later does not bring them back).
    pub fn network_defaults_done(&self, scope: &Scope) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM network_defaults WHERE account_id = ?1")
            .map_err(db_err)?
            .query_row([scope.key()], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(db_err)
    }

    /// How many instances that are not terminated have `column` (`vpc_id` or
    /// `subnet_id`) equal to `value`.
    pub fn count_live_instances_in(
        &self,
        scope: &Scope,
        column: NetworkColumn,
        value: &str,
    ) -> Result<i64> {
        let sql = match column {
            NetworkColumn::Vpc => {
                "SELECT COUNT(*) FROM instances WHERE account_id = ?1 AND vpc_id = ?2 AND state <> 'terminated'"
            }
            NetworkColumn::Subnet => {
                "SELECT COUNT(*) FROM instances WHERE account_id = ?1 AND subnet_id = ?2 AND state <> 'terminated'"
            }
        };
        self.conn
            .prepare_cached(sql)
            .map_err(db_err)?
            .query_row(params![scope.key(), value], |r| r.get(0))
            .map_err(db_err)
    }

    /// How many instances that are not terminated are members of the group.
    pub fn count_live_instances_in_group(&self, scope: &Scope, group: &str) -> Result<i64> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM instance_groups g JOIN instances i
                   ON i.account_id = g.account_id AND i.id = g.instance_id
                 WHERE g.account_id = ?1 AND g.group_id = ?2 AND i.state <> 'terminated'",
            )
            .map_err(db_err)?
            .query_row(params![scope.key(), group], |r| r.get(0))
            .map_err(db_err)
    }

    /// The address indexes (offsets from the subnet's network address) taken in a
    /// subnet, ascending.
    pub fn subnet_addresses(&self, scope: &Scope, subnet: &str) -> Result<Vec<u64>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT address FROM subnet_addresses WHERE account_id = ?1 AND subnet_id = ?2
                 ORDER BY address",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![scope.key(), subnet], |r| r.get::<_, i64>(0))
            .map_err(db_err)?;
        rows.map(|r| r.map(|a| a as u64).map_err(db_err)).collect()
    }

    /// How many addresses are taken in each subnet of the account (one query for a
    /// whole DescribeSubnets answer).
    pub fn subnet_address_counts(&self, scope: &Scope) -> Result<HashMap<String, u64>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT subnet_id, COUNT(*) FROM subnet_addresses WHERE account_id = ?1
                 GROUP BY subnet_id",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map([scope.key()], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(db_err)?;
        rows.map(|r| r.map(|(s, n)| (s, n as u64)).map_err(db_err))
            .collect()
    }

    /// True when any account's network interface has this MAC address.
    pub fn mac_address_taken(&self, mac: &str) -> Result<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM network_interfaces WHERE mac_address = ?1")
            .map_err(db_err)?
            .query_row([mac], |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
            .map_err(db_err)
    }

    /// Every public address in use: allocated as an Elastic IP, or held by a live
    /// instance (the pool's taken addresses).
    pub fn public_ips_in_use(&self) -> Result<Vec<String>> {
        // `> ''` (not `IS NOT NULL`) so the planner walks the index, not the table.
        self.strings(
            "SELECT public_ip FROM elastic_ips
             UNION SELECT public_ip FROM instances
             WHERE public_ip > '' AND state <> 'terminated'",
        )
    }

    /// How many public addresses `account` holds in all its regions: its Elastic IPs
    /// and the addresses of its live instances (an associated Elastic IP counts once).
    pub fn public_ips_of_account(&self, account: &AccountId) -> Result<i64> {
        // Rows with a public address are bounded by the pool, and the public_ip
        // index finds them, so this stays cheap however many instances the account has.
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM (
                   SELECT public_ip FROM elastic_ips
                   WHERE account_id >= ?1 || '/' AND account_id < ?1 || '0'
                   UNION SELECT public_ip FROM instances
                   WHERE public_ip > '' AND state <> 'terminated'
                     AND substr(account_id, 1, length(?1) + 1) = ?1 || '/')",
            )
            .map_err(db_err)?
            .query_row([account.as_str()], |r| r.get(0))
            .map_err(db_err)
    }

    /// Whether `ip` is an Elastic IP or held by a live instance (two index lookups).
    pub fn public_ip_in_use(&self, ip: &str) -> Result<bool> {
        self.conn
            .prepare_cached(
                "SELECT 1 FROM elastic_ips WHERE public_ip = ?1
                 UNION ALL SELECT 1 FROM instances WHERE public_ip = ?1 AND state <> 'terminated'
                 LIMIT 1",
            )
            .map_err(db_err)?
            .query_row([ip], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(db_err)
    }

    /// The single text column of every row `sql` (without parameters) selects.
    fn strings(&self, sql: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(db_err)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)
    }

    /// Every instance that is not terminated, across accounts (startup repairs).
    pub fn live_instances(&self) -> Result<Vec<Instance>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT data FROM instances WHERE state <> 'terminated' ORDER BY id")
            .map_err(db_err)?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err)?;
        rows.map(|r| from_json(&r.map_err(db_err)?)).collect()
    }
}

impl WriteTx<'_> {
    /// A revision never given before in this database, for a row about to be written
    /// (see [`add_revisions`]). Taken from the counter [`REVISION_BLOCK`] at a time;
    /// the counter's update rolls back with the transaction, which is safe: no reader
    /// saw a row with those numbers.
    fn next_revision(&self) -> Result<i64> {
        let (next, last) = self.revs.get();
        if next <= last {
            self.revs.set((next + 1, last));
            return Ok(next);
        }
        let last: i64 = self
            .conn
            .prepare_cached("UPDATE doc_revisions SET n = n + ?1 RETURNING n")
            .map_err(db_err)?
            .query_row([REVISION_BLOCK], |r| r.get(0))
            .map_err(db_err)?;
        let first = last - REVISION_BLOCK + 1;
        self.revs.set((first + 1, last));
        Ok(first)
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    pub fn insert_account(&self, a: &Account) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO accounts(id, name, created_ms) VALUES (?1, ?2, ?3)",
                params![a.id.as_str(), a.name, a.created_ms],
            )
            .map(|_| ())
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::InvalidParameterValue(format!(
                        "an account named '{}' or with id {} already exists",
                        a.name, a.id
                    ))
                }
                e => db_err(e),
            })
    }

    /// Deletes an account, its keys and everything it owns.
    pub fn delete_account(&self, id: &AccountId) -> Result<bool> {
        for table in ACCOUNT_TABLES {
            self.conn
                .execute(
                    &format!(
                        "DELETE FROM {table} WHERE account_id = ?1 OR account_id LIKE ?1 || '/%'"
                    ),
                    [id.as_str()],
                )
                .map_err(db_err)?;
        }
        self.conn
            .execute(
                "DELETE FROM image_permissions WHERE grantee = ?1
                 OR image_id IN (SELECT id FROM images WHERE owner = ?1)",
                [id.as_str()],
            )
            .map_err(db_err)?;
        self.conn
            .execute("DELETE FROM images WHERE owner = ?1", [id.as_str()])
            .map_err(db_err)?;
        self.conn
            .execute(
                "DELETE FROM access_keys WHERE account_id = ?1",
                [id.as_str()],
            )
            .map_err(db_err)?;
        let n = self
            .conn
            .execute("DELETE FROM accounts WHERE id = ?1", [id.as_str()])
            .map_err(db_err)?;
        Ok(n > 0)
    }

    pub fn insert_access_key(&self, k: &AccessKey) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO access_keys(access_key_id, account_id, secret, created_ms) VALUES (?1, ?2, ?3, ?4)",
                params![k.access_key_id, k.account_id.as_str(), k.secret_access_key, k.created_ms],
            )
            .map(|_| ())
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::InvalidParameterValue(format!(
                        "access key {} already exists",
                        k.access_key_id
                    ))
                }
                e => db_err(e),
            })
    }

    pub fn delete_access_key(&self, access_key_id: &str) -> Result<bool> {
        self.conn
            .execute(
                "DELETE FROM access_keys WHERE access_key_id = ?1",
                [access_key_id],
            )
            .map(|n| n > 0)
            .map_err(db_err)
    }

    pub fn insert_instance(&self, i: &Instance) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO instances(account_id, id, reservation_id, state, host, terminated_ms, data, vpc_id, subnet_id, public_ip, rev)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(db_err)?
            .execute(params![
                Scope::of_instance(i).key(),
                i.id.as_str(),
                i.reservation_id.as_str(),
                i.state.name(),
                i.host,
                i.terminated_ms,
                to_json(i)?,
                i.vpc_id.as_ref().map(|v| v.as_str()),
                i.subnet_id.as_ref().map(|v| v.as_str()),
                i.public_ip,
                self.next_revision()?,
            ])
            .map(|_| ())
            .map_err(db_err)
    }

    /// Replaces an instance record (the whole document and its indexed columns).
    pub fn update_instance(&self, i: &Instance) -> Result<()> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE instances SET state = ?3, host = ?4, terminated_ms = ?5, data = ?6, public_ip = ?7, rev = ?8
                 WHERE account_id = ?1 AND id = ?2",
            )
            .map_err(db_err)?
            .execute(params![
                Scope::of_instance(i).key(),
                i.id.as_str(),
                i.state.name(),
                i.host,
                i.terminated_ms,
                to_json(i)?,
                i.public_ip,
                self.next_revision()?,
            ])
            .map_err(db_err)?;
        if n == 1 {
            Ok(())
        } else {
            Err(db_err(format!("instance {} vanished during update", i.id)))
        }
    }

    /// Removes terminated instances (and their tags, group memberships and any
    /// address still recorded for them) that ended before `before_ms`.
    pub fn purge_terminated(&self, before_ms: i64) -> Result<usize> {
        self.conn
            .execute(
                "DELETE FROM tags WHERE resource_type = 'instance' AND resource_id IN
                 (SELECT id FROM instances WHERE terminated_ms IS NOT NULL AND terminated_ms < ?1)",
                [before_ms],
            )
            .map_err(db_err)?;
        // Addresses are given back when an instance reaches `terminated`; clearing any
        // row that still names a purged instance means no address can outlive the
        // instance record that could release it.
        for table in ["instance_groups", "subnet_addresses"] {
            self.conn
                .execute(
                    &format!(
                        "DELETE FROM {table} WHERE instance_id IN
                         (SELECT id FROM instances WHERE terminated_ms IS NOT NULL AND terminated_ms < ?1)"
                    ),
                    [before_ms],
                )
                .map_err(db_err)?;
        }
        self.conn
            .execute(
                "DELETE FROM instances WHERE terminated_ms IS NOT NULL AND terminated_ms < ?1",
                [before_ms],
            )
            .map_err(db_err)
    }

    pub fn insert_client_token(
        &self,
        scope: &Scope,
        rec: &ClientTokenRecord,
        now_ms: i64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO client_tokens(account_id, token, reservation_id, params_digest, created_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    scope.key(),
                    rec.token,
                    rec.reservation_id.to_string(),
                    rec.params_digest,
                    now_ms
                ],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Sets (inserts or overwrites) one tag.
    pub fn put_tag(&self, scope: &Scope, t: &Tag) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO tags(account_id, resource_id, key, resource_type, value) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(account_id, resource_id, key) DO UPDATE SET value = excluded.value",
            )
            .map_err(db_err)?
            .execute(params![
                scope.key(),
                t.resource_id,
                t.key,
                t.resource_type,
                t.value
            ])
            .map(|_| ())
            .map_err(db_err)
    }

    /// Deletes a tag; when `value` is given only a tag with that exact value goes.
    pub fn delete_tag(
        &self,
        scope: &Scope,
        resource_id: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<()> {
        match value {
            Some(v) => self.conn.execute(
                "DELETE FROM tags WHERE account_id = ?1 AND resource_id = ?2 AND key = ?3 AND value = ?4",
                params![scope.key(), resource_id, key, v],
            ),
            None => self.conn.execute(
                "DELETE FROM tags WHERE account_id = ?1 AND resource_id = ?2 AND key = ?3",
                params![scope.key(), resource_id, key],
            ),
        }
        .map(|_| ())
        .map_err(db_err)
    }

    pub fn delete_tags_of(&self, scope: &Scope, resource_id: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM tags WHERE account_id = ?1 AND resource_id = ?2",
                params![scope.key(), resource_id],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    pub fn insert_key_pair(&self, k: &KeyPair) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO key_pairs(account_id, name, id, data) VALUES (?1, ?2, ?3, ?4)",
                params![k.scope().key(), k.name, k.id.as_str(), to_json(k)?],
            )
            .map(|_| ())
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    Error::KeyPairDuplicate(k.name.clone())
                }
                e => db_err(e),
            })
    }

    pub fn delete_key_pair(&self, scope: &Scope, name: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM key_pairs WHERE account_id = ?1 AND name = ?2",
                params![scope.key(), name],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Inserts or replaces an image, with the index rows of the accounts it is shared
    /// with.
    pub fn put_image(&self, img: &Image) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO images(id, owner, public, region, data) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, public = excluded.public,
                 region = excluded.region, data = excluded.data",
            )
            .map_err(db_err)?
            .execute(params![
                img.id.as_str(),
                img.owner.as_ref().map(|o| o.as_str().to_string()),
                img.public,
                img.region,
                to_json(img)?
            ])
            .map_err(db_err)?;
        self.conn
            .prepare_cached("DELETE FROM image_permissions WHERE image_id = ?1")
            .map_err(db_err)?
            .execute([img.id.as_str()])
            .map_err(db_err)?;
        for a in &img.shared_with {
            self.conn
                .prepare_cached(
                    "INSERT INTO image_permissions(image_id, grantee) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(db_err)?
                .execute(params![img.id.as_str(), a.as_str()])
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Inserts a record; a second record with the same id is an internal error (ids are
    /// random), a broken unique column (a security group name) is reported by the
    /// caller's own check before it gets here.
    pub fn insert_doc<T: Document>(&self, d: &T) -> Result<()> {
        let cols = revised_columns::<T>();
        let names: String = cols.iter().map(|c| format!(", {c}")).collect();
        let marks: String = (0..cols.len()).map(|i| format!(", ?{}", i + 4)).collect();
        let sql = format!(
            "INSERT INTO {}(account_id, id, data{names}) VALUES (?1, ?2, ?3{marks})",
            T::TABLE
        );
        let mut values: Vec<Option<String>> = vec![
            Some(d.scope().key()),
            Some(d.doc_id().to_string()),
            Some(to_json(d)?),
        ];
        values.extend(d.column_values());
        if T::REVISED {
            values.push(Some(self.next_revision()?.to_string()));
        }
        self.conn
            .prepare_cached(&sql)
            .map_err(db_err)?
            .execute(rusqlite::params_from_iter(values))
            .map(|_| ())
            .map_err(db_err)
    }

    /// Writes a record, new or changed.
    pub fn put_doc<T: Document>(&self, d: &T) -> Result<()> {
        if self.get_doc::<T>(&d.scope(), d.doc_id())?.is_some() {
            self.update_doc(d)
        } else {
            self.insert_doc(d)
        }
    }

    /// Removes the rows of an index table (`table`, keyed by `account_id` and `column`)
    /// that point at one record, before they are written again or the record goes.
    fn delete_index_rows(&self, table: &str, column: &str, scope: &Scope, id: &str) -> Result<()> {
        self.conn
            .prepare_cached(&format!(
                "DELETE FROM {table} WHERE account_id = ?1 AND {column} = ?2"
            ))
            .map_err(db_err)?
            .execute(params![scope.key(), id])
            .map(|_| ())
            .map_err(db_err)
    }

    /// Replaces a record and its indexed columns.
    pub fn update_doc<T: Document>(&self, d: &T) -> Result<()> {
        let sets: String = revised_columns::<T>()
            .iter()
            .enumerate()
            .map(|(i, c)| format!(", {c} = ?{}", i + 4))
            .collect();
        let sql = format!(
            "UPDATE {} SET data = ?3{sets} WHERE account_id = ?1 AND id = ?2",
            T::TABLE
        );
        let mut values: Vec<Option<String>> = vec![
            Some(d.scope().key()),
            Some(d.doc_id().to_string()),
            Some(to_json(d)?),
        ];
        values.extend(d.column_values());
        if T::REVISED {
            values.push(Some(self.next_revision()?.to_string()));
        }
        let n = self
            .conn
            .prepare_cached(&sql)
            .map_err(db_err)?
            .execute(rusqlite::params_from_iter(values))
            .map_err(db_err)?;
        if n == 1 {
            Ok(())
        } else {
            Err(db_err(format!(
                "{} {} vanished during update",
                T::TABLE,
                d.doc_id()
            )))
        }
    }

    /// Deletes a record and its tags; true when it existed.
    pub fn delete_doc<T: Document>(&self, scope: &Scope, id: &str) -> Result<bool> {
        let sql = format!("DELETE FROM {} WHERE account_id = ?1 AND id = ?2", T::TABLE);
        let n = self
            .conn
            .prepare_cached(&sql)
            .map_err(db_err)?
            .execute(params![scope.key(), id])
            .map_err(db_err)?;
        self.delete_tags_of(scope, id)?;
        Ok(n > 0)
    }

    /// Rewrites the indexed columns of every record of a document table from its
    /// document (after a migration added columns).
    fn refresh_columns<T: Document>(&self) -> Result<()> {
        let sql = format!("SELECT data FROM {}", T::TABLE);
        let docs: Vec<T> = {
            let mut st = self.conn.prepare(&sql).map_err(db_err)?;
            let rows = st
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(db_err)?;
            rows.map(|r| from_json(&r.map_err(db_err)?))
                .collect::<Result<_>>()?
        };
        for d in &docs {
            self.update_doc(d)?;
        }
        Ok(())
    }

    /// Writes a volume (new or changed) and the index of its attachments.
    pub fn put_volume(&self, v: &Volume) -> Result<()> {
        let scope = v.scope();
        self.put_doc(v)?;
        self.delete_index_rows("volume_attachments", "volume_id", &scope, v.id.as_str())?;
        for a in &v.attachments {
            self.conn
                .prepare_cached(
                    "INSERT INTO volume_attachments(account_id, volume_id, instance_id) VALUES (?1, ?2, ?3)
                     ON CONFLICT DO NOTHING",
                )
                .map_err(db_err)?
                .execute(params![scope.key(), v.id.as_str(), a.instance_id.as_str()])
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Removes a volume, its attachments' index rows and its tags.
    pub fn delete_volume(&self, scope: &Scope, id: &str) -> Result<bool> {
        self.delete_index_rows("volume_attachments", "volume_id", scope, id)?;
        self.delete_doc::<Volume>(scope, id)
    }

    /// Writes a snapshot (new or changed) and the index of who it is shared with.
    pub fn put_snapshot(&self, s: &Snapshot) -> Result<()> {
        let scope = s.scope();
        self.put_doc(s)?;
        self.delete_index_rows("snapshot_permissions", "snapshot_id", &scope, s.id.as_str())?;
        let grantees = s
            .shared_with
            .iter()
            .map(|a| a.as_str())
            .chain(s.public.then_some("all"));
        for g in grantees {
            self.conn
                .prepare_cached(
                    "INSERT INTO snapshot_permissions(account_id, snapshot_id, region, grantee)
                     VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                )
                .map_err(db_err)?
                .execute(params![scope.key(), s.id.as_str(), s.region, g])
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Removes a snapshot, its permissions' index rows and its tags.
    pub fn delete_snapshot(&self, scope: &Scope, id: &str) -> Result<bool> {
        self.delete_index_rows("snapshot_permissions", "snapshot_id", scope, id)?;
        self.delete_doc::<Snapshot>(scope, id)
    }

    /// Records that the account's default network resources exist.
    pub fn mark_network_defaults_done(&self, scope: &Scope, now_ms: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO network_defaults(account_id, created_ms) VALUES (?1, ?2)
                 ON CONFLICT(account_id) DO NOTHING",
                params![scope.key(), now_ms],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Replaces the security groups an instance is a member of.
    pub fn set_instance_groups(
        &self,
        scope: &Scope,
        instance: &str,
        groups: &[&str],
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "DELETE FROM instance_groups WHERE account_id = ?1 AND instance_id = ?2",
            )
            .map_err(db_err)?
            .execute(params![scope.key(), instance])
            .map_err(db_err)?;
        let mut st = self
            .conn
            .prepare_cached(
                "INSERT INTO instance_groups(account_id, group_id, instance_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )
            .map_err(db_err)?;
        for g in groups {
            st.execute(params![scope.key(), g, instance])
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Takes an address of a subnet for an instance. The primary key makes a double
    /// allocation fail instead of silently sharing an address.
    pub fn take_subnet_address(
        &self,
        scope: &Scope,
        subnet: &str,
        address: u64,
        instance: &str,
    ) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO subnet_addresses(account_id, subnet_id, address, instance_id)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(db_err)?
            .execute(params![scope.key(), subnet, address as i64, instance])
            .map(|_| ())
            .map_err(db_err)
    }

    /// Gives back every address held under `holder`: a network interface's id, or
    /// the id of an instance launched before primary interfaces were stored.
    pub fn release_instance_addresses(&self, scope: &Scope, holder: &str) -> Result<()> {
        self.conn
            .prepare_cached(
                "DELETE FROM subnet_addresses WHERE account_id = ?1 AND instance_id = ?2",
            )
            .map_err(db_err)?
            .execute(params![scope.key(), holder])
            .map(|_| ())
            .map_err(db_err)
    }

    /// Moves the addresses of a subnet held under `from` to `to` (an instance's
    /// address passing to its primary interface); returns how many moved.
    pub fn move_subnet_addresses(
        &self,
        scope: &Scope,
        subnet: &str,
        from: &str,
        to: &str,
    ) -> Result<usize> {
        self.conn
            .prepare_cached(
                "UPDATE subnet_addresses SET instance_id = ?4
                 WHERE account_id = ?1 AND subnet_id = ?2 AND instance_id = ?3",
            )
            .map_err(db_err)?
            .execute(params![scope.key(), subnet, from, to])
            .map_err(db_err)
    }
}

fn row_to_access_key(r: &rusqlite::Row) -> rusqlite::Result<AccessKey> {
    let account: String = r.get(1)?;
    Ok(AccessKey {
        access_key_id: r.get(0)?,
        account_id: AccountId::parse(&account).ok_or(rusqlite::Error::InvalidQuery)?,
        secret_access_key: r.get(2)?,
        created_ms: r.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database's schema, object by object, as SQLite describes it: each table's
    /// columns (name, type, not null, default, key position), each index's table,
    /// uniqueness, partiality and columns, each trigger's text with its spacing
    /// collapsed. The text SQLite keeps of a table differs between a `CREATE TABLE`
    /// and one grown by `ALTER TABLE`, so tables and indexes are compared by what they
    /// are, not how they were written.
    fn schema_of(conn: &Connection) -> Vec<String> {
        let objects: Vec<(String, String, String, Option<String>)> = conn
            .prepare(
                "SELECT type, name, tbl_name, sql FROM sqlite_master
                 WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        let strings = |sql: &str, args: &[&str]| -> Vec<String> {
            conn.prepare(sql)
                .unwrap()
                .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0))
                .unwrap()
                .collect::<std::result::Result<_, _>>()
                .unwrap()
        };
        objects
            .into_iter()
            .map(|(kind, name, table, sql)| match kind.as_str() {
                "table" => format!(
                    "table {name}: {}",
                    strings(
                        "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' ||
                                coalesce(dflt_value, '-') || ' ' || pk
                         FROM pragma_table_info(?1) ORDER BY cid",
                        &[&name]
                    )
                    .join(", ")
                ),
                "index" => format!(
                    "index {name} on {table} {}: {}",
                    strings(
                        "SELECT \"unique\" || ' ' || partial FROM pragma_index_list(?1) WHERE name = ?2",
                        &[&table, &name]
                    )
                    .join(""),
                    strings(
                        "SELECT coalesce(name, '?') FROM pragma_index_info(?1) ORDER BY seqno",
                        &[&name]
                    )
                    .join(", ")
                ),
                _ => format!(
                    "{kind} {name} on {table}: {}",
                    sql.unwrap_or_default()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            })
            .collect()
    }

    #[test]
    fn the_fresh_schema_is_what_the_migrations_make() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let mut migrated = Connection::open_in_memory().unwrap();
        migrated
            .execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
            .unwrap();
        let tx = migrated.transaction().unwrap();
        run_migrations(&tx, 0).unwrap();
        tx.commit().unwrap();
        let (a, b) = (schema_of(&fresh), schema_of(&migrated));
        assert!(a.len() > 30, "{a:?}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                x, y,
                "the fresh schema (left) and the migrated one (right) differ"
            );
        }
        assert_eq!(a.len(), b.len(), "fresh {a:#?}\nmigrated {b:#?}");
        for conn in [&fresh, &migrated] {
            assert_eq!(schema_version(conn).unwrap(), SCHEMA_VERSION);
            let counters: i64 = conn
                .query_row("SELECT COUNT(*) FROM doc_revisions", [], |r| r.get(0))
                .unwrap();
            assert_eq!(counters, 1, "one revision counter");
        }
    }

    #[test]
    fn a_new_database_is_the_fresh_schema_and_an_old_one_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strato.db");
        // A database at version 8 (before scopes), made by the migrations of the time.
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.execute_batch("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
                .unwrap();
            let tx = conn.transaction().unwrap();
            for m in &MIGRATIONS[..8] {
                tx.execute_batch(m).unwrap();
            }
            set_schema_version(&tx, 8).unwrap();
            tx.execute(
                "INSERT INTO key_pairs(account_id, id, name, data) VALUES ('000000000001', 'key-1', 'k', '{}')",
                [],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let db = Db::open(&path).unwrap();
        let scoped: String = db
            .read(|tx| {
                tx.conn
                    .query_row("SELECT account_id FROM key_pairs", [], |r| r.get(0))
                    .map_err(db_err)
            })
            .unwrap();
        assert_eq!(scoped, "000000000001/us-east-1", "the old row was migrated");
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(schema_of(&conn), schema_of(&fresh));
    }
}
