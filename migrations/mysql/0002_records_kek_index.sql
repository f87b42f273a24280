-- Lets key rotation find rows still wrapped under an old KEK.
CREATE INDEX records_kek_id ON records (kek_id);
