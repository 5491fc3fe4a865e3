-- EBS snapshots: a document table; `snapshot_permissions` finds the snapshots other
-- accounts shared with an account (grantee = its id, or `all` for public ones),
-- kept by `WriteTx::put_snapshot` with the document in one transaction.
CREATE TABLE IF NOT EXISTS snapshots (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    volume_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS snapshots_id ON snapshots(id);
CREATE TABLE IF NOT EXISTS snapshot_permissions (
    account_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    region TEXT NOT NULL,
    grantee TEXT NOT NULL,
    PRIMARY KEY (account_id, snapshot_id, grantee)
);
CREATE INDEX IF NOT EXISTS snapshot_permissions_grantee ON snapshot_permissions(region, grantee);
