-- Reverses V3.
DROP TABLE refresh_tokens;
