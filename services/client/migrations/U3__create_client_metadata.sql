-- Reverses V3.
DROP TRIGGER client_metadata_set_updated_at ON client_metadata;
DROP TABLE client_metadata;
