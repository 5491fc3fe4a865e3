-- Elastic IPs: a document table. A public address belongs to one account at a
-- time (unique across accounts); `instance_id` finds the address associated with
-- an instance when it terminates.
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
