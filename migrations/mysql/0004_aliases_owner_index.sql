CREATE INDEX aliases_owner_key ON aliases (owner_key);
