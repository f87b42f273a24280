-- Sanitized masters (issue 15): one per live avatar, sealed like a record (own data key,
-- KEK-wrapped, AAD bound to owner and generation), so variants can be derived again.
CREATE TABLE masters (
    owner_key   BINARY(32)    NOT NULL,
    generation  BIGINT        NOT NULL,
    ciphertext  MEDIUMBLOB    NOT NULL,
    wrapped_dek VARBINARY(64) NOT NULL,
    kek_id      VARCHAR(32)   CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    created_at  BIGINT        NOT NULL,
    PRIMARY KEY (owner_key, generation)
) ENGINE=InnoDB;
