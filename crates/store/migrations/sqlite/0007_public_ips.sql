-- Instances' public addresses (auto-assigned ones, and Elastic IPs while
-- associated) as a column: an address must never be handed out twice, and the
-- pool's free addresses are found without reading instance documents.
ALTER TABLE instances ADD COLUMN public_ip TEXT;
CREATE INDEX instances_public_ip ON instances(public_ip);
