-- A metric definition is published once and then only versioned: trackers
-- store values against (id, version), so a published row must keep meaning
-- what it meant.
CREATE TABLE metric_definitions (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	key text NOT NULL UNIQUE CHECK (key ~ '^[a-z][a-z0-9_]{1,62}$'),
	name text NOT NULL CHECK (length(btrim(name)) > 0),
	description text NOT NULL DEFAULT '',
	-- uncategorised rather than gone when a category is removed
	category_id integer REFERENCES metric_categories (id) ON DELETE SET NULL,
	unit text NOT NULL DEFAULT 'count',
	value_type text NOT NULL CHECK (value_type IN ('integer', 'decimal', 'percentage', 'duration', 'boolean')),
	aggregation text NOT NULL DEFAULT 'sum' CHECK (aggregation IN ('sum', 'avg', 'min', 'max', 'count', 'last')),
	direction text NOT NULL DEFAULT 'neutral'
		CHECK (direction IN ('higher_is_better', 'lower_is_better', 'neutral')),
	version integer NOT NULL DEFAULT 1 CHECK (version > 0),
	status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'retired')),
	-- NULL: a platform-wide metric; else the client (in the client service) that owns it
	owner_client_id uuid,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	published_at timestamptz,
	CHECK (status = 'draft' OR published_at IS NOT NULL),
	-- a percentage cannot be summed across clients meaningfully
	CHECK (value_type <> 'percentage' OR aggregation IN ('avg', 'min', 'max', 'last'))
);

CREATE TRIGGER metric_definitions_set_updated_at BEFORE UPDATE ON metric_definitions
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();
