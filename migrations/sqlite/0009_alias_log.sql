-- Aliases in the order they were added, so API nodes can keep their in-memory filter of
-- known aliases current by reading only what is new (src/store/alias_feed.rs).
CREATE TABLE alias_log (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    alias BLOB NOT NULL UNIQUE
);
