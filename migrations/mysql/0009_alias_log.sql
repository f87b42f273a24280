-- Aliases in the order they were added, so API nodes can keep their in-memory filter of
-- known aliases current by reading only what is new (src/store/alias_feed.rs).
CREATE TABLE alias_log (
    alias BINARY(32) NOT NULL PRIMARY KEY,
    seq   BIGINT NOT NULL AUTO_INCREMENT UNIQUE
) ENGINE=InnoDB;
