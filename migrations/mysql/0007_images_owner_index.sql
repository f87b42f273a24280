CREATE INDEX images_owner_key ON images (owner_key, generation);
