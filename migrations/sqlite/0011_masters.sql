-- Sanitized masters (issue 15): one per live avatar, sealed like a record (own data key,
-- KEK-wrapped, AAD bound to owner and generation), so variants can be derived again.
CREATE TABLE masters (
    owner_key   BLOB    NOT NULL,
    generation  INTEGER NOT NULL,
    ciphertext  BLOB    NOT NULL,
    wrapped_dek BLOB    NOT NULL,
    kek_id      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (owner_key, generation)
);
