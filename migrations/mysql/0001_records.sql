-- Generic key/value profile records. Values are envelope-encrypted; no email is stored.
CREATE TABLE records (
    owner_key   BINARY(32)     NOT NULL,
    record_key  VARCHAR(64)    CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    ciphertext  MEDIUMBLOB     NOT NULL,
    wrapped_dek VARBINARY(64)  NOT NULL,
    kek_id      VARCHAR(32)    CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    version     BIGINT         NOT NULL,
    created_at  BIGINT         NOT NULL,
    updated_at  BIGINT         NOT NULL,
    PRIMARY KEY (owner_key, record_key)
) ENGINE=InnoDB;
