-- The first schema: accounts, access keys, instances, tags, key pairs, images and
-- client tokens.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_ms BIGINT NOT NULL
);
CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
CREATE INDEX access_keys_account ON access_keys(account_id);
CREATE TABLE instances (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    state TEXT NOT NULL,
    host TEXT NOT NULL,
    terminated_ms BIGINT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX instances_id ON instances(id);
CREATE INDEX instances_reservation ON instances(account_id, reservation_id);
CREATE INDEX instances_state ON instances(state);
CREATE INDEX instances_host ON instances(host, state);
CREATE TABLE tags (
    account_id TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    key TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (account_id, resource_id, key)
);
CREATE INDEX tags_key ON tags(account_id, key);
CREATE TABLE key_pairs (
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    owner TEXT,
    public BOOLEAN NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX images_owner ON images(owner);
CREATE TABLE client_tokens (
    account_id TEXT NOT NULL,
    token TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    params_digest TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, token)
);
