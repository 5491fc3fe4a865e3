-- VPC networking. Network resources are document tables (indexed columns plus the
-- record as JSON), keyed by (account_id, id) like every other table; each column
-- here is one a query selects by. Instances gain their VPC and subnet as columns
-- (DeleteSubnet and DeleteVpc count the live instances in them), a join table of
-- their security groups (DeleteSecurityGroup asks whether any live instance uses
-- a group), and the private addresses taken in each subnet.
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
ALTER TABLE instances ADD COLUMN vpc_id TEXT;
ALTER TABLE instances ADD COLUMN subnet_id TEXT;
CREATE INDEX instances_subnet ON instances(account_id, subnet_id, state);
CREATE INDEX instances_vpc ON instances(account_id, vpc_id, state);
CREATE TABLE instance_groups (
    account_id TEXT NOT NULL,
    group_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (account_id, group_id, instance_id)
);
CREATE INDEX instance_groups_instance ON instance_groups(account_id, instance_id);
CREATE TABLE subnet_addresses (
    account_id TEXT NOT NULL,
    subnet_id TEXT NOT NULL,
    address BIGINT NOT NULL,
    instance_id TEXT NOT NULL,
    PRIMARY KEY (account_id, subnet_id, address)
);
CREATE INDEX subnet_addresses_instance ON subnet_addresses(account_id, instance_id);
