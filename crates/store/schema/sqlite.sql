-- The schema of a new database, whole: what the migrations in ../migrations/sqlite
-- (and the data changes that go with them) make of an empty one. A test holds the two
-- equal, so a schema change is a new migration and the same change here.
--
-- Rows keep the columns that queries select or order by as real, indexed columns, and
-- the rest of a record as a JSON document in `data`. Regional rows are keyed by their
-- scope, `<account id>/<region>`, in `account_id`.

CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);

-- Accounts and their access keys.
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

-- Instances. `rev` is the record's revision (see doc_revisions below).
CREATE TABLE instances (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    state TEXT NOT NULL,
    host TEXT NOT NULL,
    terminated_ms BIGINT,
    data TEXT NOT NULL,
    vpc_id TEXT,
    subnet_id TEXT,
    public_ip TEXT,
    rev INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX instances_id ON instances(id);
CREATE INDEX instances_state ON instances(state);
CREATE INDEX instances_host ON instances(host, state);
CREATE INDEX instances_account_state ON instances(account_id, state);
CREATE INDEX instances_reservation ON instances(account_id, reservation_id, id);
CREATE INDEX instances_subnet ON instances(account_id, subnet_id, state);
CREATE INDEX instances_vpc ON instances(account_id, vpc_id, state);
CREATE INDEX instances_public_ip ON instances(public_ip);
CREATE INDEX instances_listing ON instances(account_id, id, terminated_ms, rev);
-- An instance's security groups.
CREATE TABLE instance_groups (
    account_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (account_id, group_id, instance_id)
);
CREATE INDEX instance_groups_instance ON instance_groups(account_id, instance_id);
-- RunInstances' client tokens.
CREATE TABLE client_tokens (
    account_id TEXT NOT NULL,
    token TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    params_digest TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, token)
);
-- Accounts' default CPU credit options per burstable family.
CREATE TABLE credit_defaults (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);

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

-- Images: built-ins have no owner and no region (every region offers them).
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    owner TEXT,
    public BOOLEAN NOT NULL,
    data TEXT NOT NULL,
    region TEXT
);
CREATE INDEX images_owner ON images(owner);
-- The accounts an image is shared with (by id).
CREATE TABLE image_permissions (
    image_id TEXT NOT NULL,
    grantee TEXT NOT NULL,
    PRIMARY KEY (image_id, grantee)
);
CREATE INDEX image_permissions_grantee ON image_permissions(grantee);
-- ImportSnapshot and ImportImage tasks.
CREATE TABLE import_tasks (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX import_tasks_id ON import_tasks(id);

-- VPC networking.
CREATE TABLE network_defaults (
    account_id TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL
);
CREATE TABLE vpcs (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    is_default TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX vpcs_id ON vpcs(id);
CREATE INDEX vpcs_default ON vpcs(account_id, is_default);
CREATE TABLE subnets (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX subnets_id ON subnets(id);
CREATE INDEX subnets_vpc ON subnets(account_id, vpc_id);
-- The private addresses taken in each subnet.
CREATE TABLE subnet_addresses (
    account_id TEXT NOT NULL,
    subnet_id TEXT NOT NULL,
    address BIGINT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (account_id, subnet_id, address)
);
CREATE INDEX subnet_addresses_instance ON subnet_addresses(account_id, instance_id);
CREATE TABLE security_groups (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX security_groups_id ON security_groups(id);
CREATE UNIQUE INDEX security_groups_name ON security_groups(account_id, vpc_id, name);
CREATE TABLE security_group_rules (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    ref_group_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX security_group_rules_id ON security_group_rules(id);
CREATE INDEX security_group_rules_group ON security_group_rules(account_id, group_id);
CREATE INDEX security_group_rules_ref ON security_group_rules(account_id, ref_group_id);
CREATE TABLE internet_gateways (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    vpc_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX internet_gateways_id ON internet_gateways(id);
CREATE INDEX internet_gateways_vpc ON internet_gateways(account_id, vpc_id);
CREATE TABLE route_tables (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX route_tables_id ON route_tables(id);
CREATE INDEX route_tables_vpc ON route_tables(account_id, vpc_id);
CREATE TABLE dhcp_options (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX dhcp_options_id ON dhcp_options(id);
-- Public addresses are unique across accounts.
CREATE TABLE elastic_ips (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    public_ip TEXT NOT NULL,
    instance_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX elastic_ips_id ON elastic_ips(id);
CREATE UNIQUE INDEX elastic_ips_public_ip ON elastic_ips(public_ip);
CREATE INDEX elastic_ips_instance ON elastic_ips(account_id, instance_id);
-- Network interfaces; the metadata service finds an instance by (vpc_id, private_ip).
CREATE TABLE network_interfaces (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    subnet_id TEXT NOT NULL,
    instance_id TEXT,
    mac_address TEXT NOT NULL,
    data TEXT NOT NULL,
    vpc_id TEXT,
    private_ip TEXT,
    rev INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX network_interfaces_id ON network_interfaces(id);
CREATE UNIQUE INDEX network_interfaces_mac ON network_interfaces(mac_address);
CREATE INDEX network_interfaces_subnet ON network_interfaces(account_id, subnet_id);
CREATE INDEX network_interfaces_address ON network_interfaces(vpc_id, private_ip);
CREATE INDEX network_interfaces_instance ON network_interfaces(account_id, instance_id, rev);

-- EBS: volumes, the instances each is attached to, snapshots and the accounts they are
-- shared with (grantee: an account id, or `all`), and each region's EBS settings.
CREATE TABLE volumes (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    client_token TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX volumes_id ON volumes(id);
CREATE INDEX volumes_client_token ON volumes(account_id, client_token);
CREATE TABLE volume_attachments (
    account_id TEXT NOT NULL,
    volume_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (account_id, volume_id, instance_id)
);
CREATE INDEX volume_attachments_instance ON volume_attachments(account_id, instance_id);
CREATE TABLE region_settings (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE TABLE snapshots (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    volume_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX snapshots_id ON snapshots(id);
CREATE TABLE snapshot_permissions (
    account_id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    region TEXT NOT NULL,
    grantee TEXT NOT NULL,
    PRIMARY KEY (account_id, snapshot_id, grantee)
);
CREATE INDEX snapshot_permissions_grantee ON snapshot_permissions(region, grantee);

-- Record revisions: every write of an instance's or an interface's document numbers
-- its row from this one counter; the triggers number a write that did not.
CREATE TABLE doc_revisions (n INTEGER NOT NULL);
INSERT INTO doc_revisions(n) VALUES (0);
CREATE TRIGGER instances_rev_insert AFTER INSERT ON instances WHEN NEW.rev = 0 BEGIN
    UPDATE doc_revisions SET n = n + 1;
    UPDATE instances SET rev = (SELECT n FROM doc_revisions) WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER instances_rev_update AFTER UPDATE OF data ON instances WHEN NEW.rev = OLD.rev BEGIN
    UPDATE doc_revisions SET n = n + 1;
    UPDATE instances SET rev = (SELECT n FROM doc_revisions) WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER network_interfaces_rev_insert AFTER INSERT ON network_interfaces WHEN NEW.rev = 0 BEGIN
    UPDATE doc_revisions SET n = n + 1;
    UPDATE network_interfaces SET rev = (SELECT n FROM doc_revisions) WHERE rowid = NEW.rowid;
END;
CREATE TRIGGER network_interfaces_rev_update AFTER UPDATE OF data ON network_interfaces WHEN NEW.rev = OLD.rev BEGIN
    UPDATE doc_revisions SET n = n + 1;
    UPDATE network_interfaces SET rev = (SELECT n FROM doc_revisions) WHERE rowid = NEW.rowid;
END;
