-- The people to call at a client. A contact without any way to reach them is useless.
CREATE TABLE client_contacts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	client_id uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
	full_name text NOT NULL CHECK (length(btrim(full_name)) > 0),
	email text CHECK (position('@' IN email) > 1),
	phone text CHECK (phone ~ '^\+[0-9]{6,15}$'),
	role text NOT NULL DEFAULT 'primary' CHECK (role IN ('primary', 'billing', 'technical', 'executive')),
	is_primary boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (email IS NOT NULL OR phone IS NOT NULL)
);

CREATE TRIGGER client_contacts_set_updated_at BEFORE UPDATE ON client_contacts
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
