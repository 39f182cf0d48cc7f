-- task_builder: the kinds of work there are and how they flow. Running tasks
-- live in task_tracker, which reads these definitions.

-- Keeps updated_at current on every table that has one.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

CREATE TABLE task_categories (
	id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- sub-categories move up to the root when their parent goes, not away
	parent_id integer REFERENCES task_categories (id) ON DELETE SET NULL,
	slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
	name text NOT NULL CHECK (length(btrim(name)) > 0),
	-- hex colour the board uses for the category's cards
	color text NOT NULL DEFAULT '#6b7280' CHECK (color ~ '^#[0-9a-f]{6}$'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (parent_id IS DISTINCT FROM id)
);

CREATE TRIGGER task_categories_set_updated_at BEFORE UPDATE ON task_categories
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
