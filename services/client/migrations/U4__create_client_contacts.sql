-- Reverses V4.
DROP TRIGGER client_contacts_set_updated_at ON client_contacts;
DROP TABLE client_contacts;
