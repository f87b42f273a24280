-- Operator takedowns (issue 16). No email and no hash of one: the target is recorded by
-- `subject`, a short keyed id, and found through takedown_aliases.
CREATE TABLE takedowns (
    id            TEXT    NOT NULL PRIMARY KEY,
    subject       TEXT    NOT NULL,
    target_kind   TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    blocked_until INTEGER
);
