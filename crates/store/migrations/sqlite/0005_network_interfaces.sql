-- Network interfaces made by CreateNetworkInterface: a document table. MAC
-- addresses are unique across accounts; `subnet_id` and `instance_id` answer
-- DeleteSubnet and a terminating instance.
CREATE TABLE network_interfaces (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    subnet_id TEXT NOT NULL,
    instance_id TEXT,
    mac_address TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX network_interfaces_id ON network_interfaces(id);
CREATE UNIQUE INDEX network_interfaces_mac ON network_interfaces(mac_address);
CREATE INDEX network_interfaces_subnet ON network_interfaces(account_id, subnet_id);
CREATE INDEX network_interfaces_instance ON network_interfaces(account_id, instance_id);
