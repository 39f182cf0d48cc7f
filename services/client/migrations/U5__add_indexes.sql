-- Reverses V5.
DROP INDEX clients_status_idx;
DROP INDEX clients_name_lower_idx;
DROP INDEX client_contacts_one_primary_key;
DROP INDEX client_contacts_client_id_idx;
