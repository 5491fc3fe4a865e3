-- Accounts' own images: an image belongs to a region (`NULL` for built-ins, which
-- every region offers); `image_permissions` finds the images shared with an
-- account by id, kept by `WriteTx::put_image` with the document in one transaction.
-- (The `region` column is added by `backfill`, only where it is missing: a
-- migration may run again over a database rewound to an older version.)
CREATE TABLE IF NOT EXISTS image_permissions (
    image_id TEXT NOT NULL,
    grantee TEXT NOT NULL,
    PRIMARY KEY (image_id, grantee)
);
CREATE INDEX IF NOT EXISTS image_permissions_grantee ON image_permissions(grantee);
