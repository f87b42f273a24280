-- Sanitized fixed-size variants. live = 1 only for the generation the avatar record points at.
CREATE TABLE images (
    id           CHAR(32)    CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL PRIMARY KEY,
    owner_key    BINARY(32)  NOT NULL,
    generation   BIGINT      NOT NULL,
    size         INT         NOT NULL,
    content_type VARCHAR(32) CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    bytes        MEDIUMBLOB  NOT NULL,
    live         TINYINT     NOT NULL DEFAULT 0,
    created_at   BIGINT      NOT NULL
) ENGINE=InnoDB;
