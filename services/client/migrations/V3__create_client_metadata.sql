-- Free-form settings per client (CRM ids, billing flags). Keys are namespaced
-- ("crm.account_id") so teams do not collide.
CREATE TABLE client_metadata (
	client_id uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	key text NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$' AND length(key) <= 100),
	value jsonb NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (client_id, key)
);

CREATE TRIGGER client_metadata_set_updated_at BEFORE UPDATE ON client_metadata
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
