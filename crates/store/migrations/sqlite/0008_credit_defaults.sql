-- Accounts' default CPU credit options per burstable family.
CREATE TABLE credit_defaults (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
