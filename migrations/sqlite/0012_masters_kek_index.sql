-- Lets key rotation find masters still wrapped under an old KEK.
CREATE INDEX masters_kek_id ON masters (kek_id);
