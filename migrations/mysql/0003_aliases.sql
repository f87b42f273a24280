-- Keyed lookup aliases (HMAC of the MD5, SHA-256 and public id) -> owner.
CREATE TABLE aliases (
    alias     BINARY(32) NOT NULL PRIMARY KEY,
    owner_key BINARY(32) NOT NULL
) ENGINE=InnoDB;
