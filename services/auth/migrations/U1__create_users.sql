-- Reverses V1 in the opposite order of creation.
DROP TRIGGER users_set_updated_at ON users;
DROP INDEX users_email_lower_key;
DROP TABLE users;
DROP FUNCTION set_updated_at();
