-- One row per accepted upload, so the per-owner rate and daily quota hold across every
-- API node (issue 16). Rows older than a day are deleted as uploads come in.
CREATE TABLE upload_events (
    owner_key  BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    id         TEXT    NOT NULL,
    PRIMARY KEY (owner_key, created_at, id)
);
