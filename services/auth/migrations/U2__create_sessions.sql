-- Reverses V2.
DROP TABLE sessions;
