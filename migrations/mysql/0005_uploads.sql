-- Staged original uploads, encrypted, deleted once processed.
CREATE TABLE uploads (
    id          CHAR(32)      CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL PRIMARY KEY,
    owner_key   BINARY(32)    NOT NULL,
    ciphertext  LONGBLOB      NOT NULL,
    wrapped_dek VARBINARY(64) NOT NULL,
    kek_id      VARCHAR(32)   CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    created_at  BIGINT        NOT NULL
) ENGINE=InnoDB;
