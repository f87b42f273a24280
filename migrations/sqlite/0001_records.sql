-- Generic key/value profile records. Values are envelope-encrypted; no email is stored.
CREATE TABLE records (
    owner_key   BLOB    NOT NULL,
    record_key  TEXT    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    wrapped_dek BLOB    NOT NULL,
    kek_id      TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (owner_key, record_key)
);
