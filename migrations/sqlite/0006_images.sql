-- Sanitized fixed-size variants. live = 1 only for the generation the avatar record points at.
CREATE TABLE images (
    id           TEXT    NOT NULL PRIMARY KEY,
    owner_key    BLOB    NOT NULL,
    generation   INTEGER NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    bytes        BLOB    NOT NULL,
    live         INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL
);
