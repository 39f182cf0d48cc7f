-- Contacts are always listed per client; the FK alone is not indexed.
CREATE INDEX client_contacts_client_id_idx ON client_contacts (client_id);

-- At most one primary contact per client, enforced where it cannot be raced.
CREATE UNIQUE INDEX client_contacts_one_primary_key ON client_contacts (client_id) WHERE is_primary;

-- Search by name ignores case; the admin console's type-ahead uses it.
CREATE INDEX clients_name_lower_idx ON clients (lower(name) text_pattern_ops);

-- Dashboards count clients by status, mostly the non-closed ones.
CREATE INDEX clients_status_idx ON clients (status) WHERE status <> 'closed';
