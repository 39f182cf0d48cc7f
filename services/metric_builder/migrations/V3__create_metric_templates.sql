-- Templates are ready-made bundles of metrics ("SaaS basics") a client
-- adopts in one step.
CREATE TABLE metric_templates (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL UNIQUE,
	description text NOT NULL DEFAULT '',
	category_id integer REFERENCES metric_categories (id) ON DELETE SET NULL,
	-- dashboard layout and defaults, read by the UI as is
	settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER metric_templates_set_updated_at BEFORE UPDATE ON metric_templates
	FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE metric_template_items (
	template_id uuid NOT NULL REFERENCES metric_templates (id) ON DELETE CASCADE,
	-- a definition used by a template must be taken out of it before deletion
	definition_id uuid NOT NULL REFERENCES metric_definitions (id) ON DELETE RESTRICT,
	position smallint NOT NULL CHECK (position >= 0),
	PRIMARY KEY (template_id, definition_id),
	CONSTRAINT metric_template_items_position_key UNIQUE (template_id, position)
);
