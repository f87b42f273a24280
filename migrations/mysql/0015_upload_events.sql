-- One row per accepted upload, so the per-owner rate and daily quota hold across every
-- API node (issue 16). Rows older than a day are deleted as uploads come in.
CREATE TABLE upload_events (
    owner_key  BINARY(32) NOT NULL,
    created_at BIGINT     NOT NULL,
    id         CHAR(32)   CHARACTER SET ascii COLLATE ascii_general_ci NOT NULL,
    PRIMARY KEY (owner_key, created_at, id)
) ENGINE=InnoDB;
