-- Operator takedowns (issue 16). No email and no hash of one: the target is recorded by
-- `subject`, a short keyed id, and found through takedown_aliases.
CREATE TABLE takedowns (
    id            CHAR(32)     CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL PRIMARY KEY,
    subject       VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    target_kind   VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    reason        VARCHAR(1024) NOT NULL,
    actor         VARCHAR(128) NOT NULL,
    created_at    BIGINT       NOT NULL,
    blocked_until BIGINT       NULL
) ENGINE=InnoDB;
