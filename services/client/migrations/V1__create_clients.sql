-- client: the organisations the platform serves.

-- Every table with an updated_at column gets it from this trigger, so no
-- writer can forget it.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

CREATE TABLE clients (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
	legal_name text,
	kind text NOT NULL DEFAULT 'business' CHECK (kind IN ('enterprise', 'business', 'individual', 'partner')),
	status text NOT NULL DEFAULT 'prospect' CHECK (status IN ('prospect', 'active', 'suspended', 'closed')),
	-- ISO 3166-1 alpha-2, upper case, as billing and tax export expect it
	country_code char(2) CHECK (country_code ~ '^[A-Z]{2}$'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	closed_at timestamptz,
	-- a closed client always says when, and only a closed one does
	CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);

CREATE TRIGGER clients_set_updated_at BEFORE UPDATE ON clients
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
