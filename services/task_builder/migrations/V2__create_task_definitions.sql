-- A task definition is the template every task instance is created from.
CREATE TABLE task_definitions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	key text NOT NULL UNIQUE CHECK (key ~ '^[a-z][a-z0-9_]{1,62}$'),
	title text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
	description text NOT NULL DEFAULT '',
	category_id integer REFERENCES task_categories (id) ON DELETE SET NULL,
	-- 1 is most urgent
	default_priority smallint NOT NULL DEFAULT 3 CHECK (default_priority BETWEEN 1 AND 5),
	estimated_minutes integer CHECK (estimated_minutes > 0),
	-- JSON Schema of the form a task of this kind collects
	form_schema jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(form_schema) = 'object'),
	status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'archived')),
	version integer NOT NULL DEFAULT 1 CHECK (version > 0),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER task_definitions_set_updated_at BEFORE UPDATE ON task_definitions
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
