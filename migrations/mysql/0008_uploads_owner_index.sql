CREATE INDEX uploads_owner_key ON uploads (owner_key);
