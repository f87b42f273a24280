-- Staged original uploads, encrypted, deleted once processed.
CREATE TABLE uploads (
    id          TEXT    NOT NULL PRIMARY KEY,
    owner_key   BLOB    NOT NULL,
    ciphertext  BLOB    NOT NULL,
    wrapped_dek BLOB    NOT NULL,
    kek_id      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
