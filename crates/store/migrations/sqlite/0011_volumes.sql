-- EBS volumes: a document table; `volume_attachments` finds the volumes of an
-- instance (several instances share a multi-attach volume), kept by
-- `WriteTx::put_volume` with the document in one transaction.
CREATE TABLE IF NOT EXISTS volumes (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    client_token TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS volumes_id ON volumes(id);
CREATE INDEX IF NOT EXISTS volumes_client_token ON volumes(account_id, client_token);
CREATE TABLE IF NOT EXISTS volume_attachments (
    account_id TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (account_id, volume_id, instance_id)
);
CREATE INDEX IF NOT EXISTS volume_attachments_instance ON volume_attachments(account_id, instance_id);
CREATE TABLE IF NOT EXISTS region_settings (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
