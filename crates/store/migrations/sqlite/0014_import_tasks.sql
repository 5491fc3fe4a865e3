-- Import tasks (ImportSnapshot, ImportImage): a document table; `snapshot_id`
-- finds a task from its snapshot's host report.
CREATE TABLE IF NOT EXISTS import_tasks (
    account_id TEXT NOT NULL,
    id TEXT NOT NULL,
    snapshot_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (account_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS import_tasks_id ON import_tasks(id);
