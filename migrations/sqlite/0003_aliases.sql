-- Keyed lookup aliases (HMAC of the MD5, SHA-256 and public id) -> owner.
CREATE TABLE aliases (
    alias     BLOB NOT NULL PRIMARY KEY,
    owner_key BLOB NOT NULL
);
