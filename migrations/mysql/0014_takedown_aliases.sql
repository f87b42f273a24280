-- The keyed lookup aliases (as in `aliases`) a takedown covers. Aliases are derived from
-- the email, so they come back identical when a deleted profile is created again: the
-- takedown outlives re-uploads and profile deletion.
CREATE TABLE takedown_aliases (
    alias       BINARY(32) NOT NULL PRIMARY KEY,
    takedown_id CHAR(32)   CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL
) ENGINE=InnoDB;
