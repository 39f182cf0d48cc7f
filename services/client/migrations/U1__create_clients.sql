-- Reverses V1 in the opposite order of creation.
DROP TRIGGER clients_set_updated_at ON clients;
DROP TABLE clients;
DROP FUNCTION set_updated_at();
