-- The keyed lookup aliases (as in `aliases`) a takedown covers. Aliases are derived from
-- the email, so they come back identical when a deleted profile is created again: the
-- takedown outlives re-uploads and profile deletion.
CREATE TABLE takedown_aliases (
    alias       BLOB NOT NULL PRIMARY KEY,
    takedown_id TEXT NOT NULL
);
