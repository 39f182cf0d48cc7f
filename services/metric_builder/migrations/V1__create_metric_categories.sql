-- metric_builder: what can be measured and how. The values themselves are
-- recorded by metric_tracker, which reads these definitions.

-- Keeps updated_at current on every table that has one.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

-- Categories nest (Finance > Revenue > Recurring); removing a branch removes its sub-branches.
CREATE TABLE metric_categories (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	parent_id integer REFERENCES metric_categories (id) ON DELETE CASCADE,
	slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
	name text NOT NULL CHECK (length(btrim(name)) > 0),
	description text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (parent_id IS DISTINCT FROM id)
);

CREATE TRIGGER metric_categories_set_updated_at BEFORE UPDATE ON metric_categories
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
