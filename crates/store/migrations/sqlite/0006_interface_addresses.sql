-- Every instance's primary interface is a network interface row, and the instance
-- metadata service finds the instance behind a request by the VPC and source
-- address of one of its interfaces: an index on (vpc_id, private_ip). Rows written
-- before get these columns from their documents (see `backfill`).
ALTER TABLE network_interfaces ADD COLUMN vpc_id TEXT;
ALTER TABLE network_interfaces ADD COLUMN private_ip TEXT;
CREATE INDEX network_interfaces_address ON network_interfaces(vpc_id, private_ip);
